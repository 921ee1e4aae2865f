package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/raftfsm"
)

// partitionsActor turns applied entries into lifecycle events, in log order,
// and hands each entry's events to the dispatcher as one batch. Deriving is
// pure (raftfsm.Events), so every node produces the same sequence.
type partitionsActor struct {
	cfg   *Config
	log   *slog.Logger
	hooks *actor.PID
	// open once this node's current incarnation is registered: the entries
	// before it are history this process did not witness (a new node's
	// catch-up, or what a restarted node missed, which its rejoin and reload
	// events summarise). Every node thus delivers the same events from its
	// own registration on.
	open bool
}

func newPartitionsActor(cfg *Config) actor.Actor {
	return &partitionsActor{cfg: cfg, log: cfg.Logger.With("actor", "partitions")}
}

func (p *partitionsActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.hooks = sibling(ctx.Parent(), "hooks")
		p.open = p.registered(p.cfg.FSM.View())
	case *raftfsm.Applied:
		p.applied(ctx, msg)
	}
}

func (p *partitionsActor) registered(v *raftfsm.View) bool {
	m, ok := v.Member(p.cfg.NodeID)
	return ok && m.Incarnation == p.cfg.Self.GetIncarnation()
}

func (p *partitionsActor) applied(ctx actor.Context, a *raftfsm.Applied) {
	if a.Restored {
		p.log.Info("state restored from snapshot", "index", a.Index, "members", len(a.Next.Members()), "table_version", a.Next.TableVersion())
		p.open = p.open || p.registered(a.Next)
		return
	}
	if !p.open {
		mine := func(n *raftfsm.Node) bool {
			return n != nil && n.ID == p.cfg.NodeID && n.Incarnation == p.cfg.Self.GetIncarnation()
		}
		if !mine(a.Change.Joined) && !mine(a.Change.Rejoined) {
			p.open = a.Err == nil && p.registered(a.Next) // e.g. an update of an incarnation already known
			return
		}
		p.open = true
	}
	if a.Err != nil {
		p.log.Debug("entry rejected", "index", a.Index, "origin", a.Origin, "error", a.Err)
		return
	}
	events := raftfsm.Events(a, time.Now())
	if len(events) == 0 {
		return
	}
	for _, e := range events {
		p.cfg.Stats.EventsPublished[kindBit(KindOf(e))].Add(1)
	}
	if r := a.Change.Rebalance; r != nil {
		p.cfg.Stats.Rebalances.Add(1)
		// Every rebalance is observed (a zero duration too), so the
		// histogram's count equals rebalances_total.
		p.cfg.Stats.RebalanceDuration.Observe(time.Duration(max(0, events[len(events)-1].GetRebalanceComplete().GetDurationNanos())))
		p.log.Info("partition table committed", "index", a.Index, "trigger", r.GetTrigger(),
			"trigger_node", r.GetTriggerNodeId(), "moved", events[0].GetRebalanceStart().GetPartitionsToMove(),
			"nodes_affected", events[0].GetRebalanceStart().GetNodesAffected())
	}
	ctx.Send(p.hooks, &EventBatch{Events: events})
}
