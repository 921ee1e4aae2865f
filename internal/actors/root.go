package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// RootName is the name of a node's root actor.
func RootName(nodeID string) string { return "clusterkit/" + nodeID }

// NewRootProps returns the props of a node's root actor. Spawn it named
// RootName(cfg.NodeID); stopping it stops the whole tree.
func NewRootProps(cfg *Config) *actor.Props {
	dispatch := &dispatchState{last: cfg.LastDelivered}
	for _, s := range cfg.Subscriptions {
		dispatch.subs = append(dispatch.subs, &subscription{pid: s.PID, filter: s.Filter})
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &rootActor{cfg: cfg, dispatch: dispatch}
	}, actor.WithSupervisor(backoffStrategy()))
}

type rootActor struct {
	cfg         *Config
	dispatch    *dispatchState
	children    Children
	callbacks   int
	initialized bool
}

func (r *rootActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.spawnChildren(ctx)
	case *GetChildren:
		c := r.children
		ctx.Respond(&c)
	case *RegisterCallback:
		pid, err := r.spawnCallback(ctx, msg)
		if err != nil {
			ctx.Respond(err)
			return
		}
		ctx.RequestWithCustomSender(r.children.Hooks, &addCallback{pid: pid, filter: msg.Filter}, ctx.Sender())
	}
}

// spawnCallback starts the actor of a Go callback. Callback actors are the
// root's children (not the dispatcher's), so a restart of the dispatcher does
// not stop them.
func (r *rootActor) spawnCallback(ctx actor.Context, msg *RegisterCallback) (*actor.PID, error) {
	r.callbacks++
	name := fmt.Sprintf("callback-%d", r.callbacks)
	if msg.Name != "" {
		name += "-" + msg.Name
	}
	fn, log, stats, handle := msg.Fn, r.cfg.Logger.With("callback", name), r.cfg.Stats, msg.Handle
	state := r.cfg.CallbackRegistry.add(name, msg.Hook)
	pid, err := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &callbackActor{fn: fn, log: log, stats: stats, state: state, handle: handle}
	}, actor.WithMailbox(actor.Unbounded(&state.queue))), name)
	if err != nil {
		state.drop()
		return nil, err
	}
	state.setPID(pid)
	handle.spawned(ctx.ActorSystem(), pid)
	return pid, nil
}

func (r *rootActor) spawnChildren(ctx actor.Context) {
	cfg, stats := r.cfg, r.cfg.Stats
	spawn := func(name string, gauge *QueueGauge, producer actor.Producer) *actor.PID {
		opts := []actor.PropsOption{actor.WithSupervisor(backoffStrategy())}
		if gauge != nil {
			opts = append(opts, actor.WithMailbox(actor.Unbounded(gauge)))
		} else {
			opts = append(opts, actor.WithMailbox(actor.Unbounded()))
		}
		pid, err := ctx.SpawnNamed(actor.PropsFromProducer(producer, opts...), name)
		if err != nil {
			panic(fmt.Sprintf("spawn %s: %v", name, err))
		}
		return pid
	}
	// Callbacks registered before start join the dispatcher before it runs.
	if !r.initialized {
		r.initialized = true
		for _, cb := range cfg.Callbacks {
			pid, err := r.spawnCallback(ctx, cb)
			if err != nil {
				panic(fmt.Sprintf("spawn callback: %v", err))
			}
			r.dispatch.subs = append(r.dispatch.subs, &subscription{pid: pid, filter: cb.Filter, callback: true})
		}
	}
	// hooks and partitions first: state starts delivering applied entries as
	// soon as it starts.
	r.children.Hooks = spawn("hooks", &stats.HooksQueue, func() actor.Actor { return newHooksActor(cfg, r.dispatch) })
	r.children.Partitions = spawn("partitions", &stats.PartitionsQueue, func() actor.Actor { return newPartitionsActor(cfg) })
	r.children.Rebalancer = spawn("rebalancer", nil, func() actor.Actor { return newRebalancerActor(cfg) })
	r.children.Ready = spawn("ready", nil, func() actor.Actor { return newReadyActor(cfg) })
	r.children.Health = spawn("health", nil, func() actor.Actor { return newHealthActor(cfg) })
	r.children.State = spawn("state", &stats.StateQueue, func() actor.Actor { return newStateActor(cfg) })
}
