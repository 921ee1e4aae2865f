package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// partitionsActor turns applied entries into lifecycle events, in log order,
// and hands each entry's events to the dispatcher as one batch. Deriving is
// pure (raftfsm.Events), so every node produces the same sequence.
type partitionsActor struct {
	cfg   *Config
	log   *slog.Logger
	hooks *actor.PID
	// openFor is the nonce of the life whose registration opened delivery
	// (0: closed). The entries before a life's admission are history this
	// process did not witness as a member (a new node's catch-up, what a
	// restarted or wiped node missed, which its rejoin and reload events
	// summarise), and nothing is delivered after its own NodeLeave until a
	// new life is admitted. Every node thus delivers the same events from
	// its own registration on, and never an event twice.
	openFor uint64
	// nonce is the current life's, as the state actor announced it in this
	// mailbox: entries forwarded before a new life began are judged by the
	// life that saw them.
	nonce uint64
}

// lifeRenewed tells the partitions actor that the node began a new life.
type lifeRenewed struct{ nonce uint64 }

// selfRemoved tells the partitions actor that the node learned from another
// member (not from its own log) that its life nonce was removed: it delivers
// the NodeLeave the log would have delivered, and closes.
type selfRemoved struct {
	nonce uint64
	event *messages.Event
}

func newPartitionsActor(cfg *Config) actor.Actor {
	return &partitionsActor{cfg: cfg, log: cfg.Logger.With("actor", "partitions")}
}

func (p *partitionsActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		p.hooks = sibling(ctx.Parent(), "hooks")
		p.nonce = p.cfg.Life.Nonce()
		if p.registered(p.cfg.FSM.View()) {
			p.openFor = p.nonce
		}
	case *lifeRenewed:
		p.nonce = msg.nonce
	case *raftfsm.Applied:
		p.applied(ctx, msg)
	case *selfRemoved:
		p.log.Debug("own removal learned from a member", "open_for", p.openFor, "nonce", msg.nonce, "index", SeqOf(Payload(msg.event)).Index)
		if p.openFor == msg.nonce && msg.nonce != 0 {
			p.cfg.Stats.EventsPublished[kindBit(KindOf(msg.event))].Add(1)
			p.cfg.Stats.Emitted.Store(SeqOf(Payload(msg.event)).Index)
			ctx.Send(p.hooks, &EventBatch{Events: []*messages.Event{msg.event}})
			p.openFor = 0
		}
	}
}

func (p *partitionsActor) registered(v *raftfsm.View) bool {
	n, ok := v.Nonce(p.cfg.NodeID)
	return ok && n == p.nonce
}

func (p *partitionsActor) applied(ctx actor.Context, a *raftfsm.Applied) {
	defer p.cfg.Stats.Derived.Store(a.Index)
	nonce := p.nonce
	if a.Restored {
		p.log.Info("state restored from snapshot", "index", a.Index, "members", len(a.Next.Members()), "table_version", a.Next.TableVersion())
		if p.registered(a.Next) {
			p.openFor = nonce
		}
		return
	}
	if p.openFor != nonce {
		// Closed, or opened by a life that has ended (the node rejoins as
		// a new one): deliver from this life's admission on.
		p.openFor = 0
		mine := func(n *raftfsm.Node) bool {
			if n == nil || n.ID != p.cfg.NodeID {
				return false
			}
			got, _ := a.Next.Nonce(n.ID)
			return got == nonce
		}
		if a.Err != nil || (!mine(a.Change.Joined) && !mine(a.Change.Rejoined)) {
			return
		}
		p.openFor = nonce
	}
	if left := a.Change.Left; left != nil && left.ID == p.cfg.NodeID {
		// This life's own removal: its NodeLeave is the last event it delivers.
		defer func() { p.openFor = 0 }()
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
	p.cfg.Stats.Emitted.Store(a.Index)
	ctx.Send(p.hooks, &EventBatch{Events: events})
}
