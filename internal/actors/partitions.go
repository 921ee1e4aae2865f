package actors

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

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
	// openFor is the nonce of the life whose events this node delivers (0:
	// closed). A life's events run from its admission to its own NodeLeave:
	// the entries before are history this process did not witness as that
	// member (a new node's catch-up, what a restarted or wiped node missed,
	// which its rejoin and reload events summarise), and nothing is
	// delivered after its NodeLeave until a new life is admitted. A node
	// that rejoins as a new life first catches up with the log, delivering
	// what its old life missed up to its NodeLeave. Every node thus delivers
	// the same events for the seqs its lives cover, and never one twice.
	openFor uint64
	// nonce is the current life's, as the state actor announced it in this
	// mailbox.
	nonce uint64
}

// lifeRenewed tells the partitions actor that the node began a new life.
type lifeRenewed struct{ nonce uint64 }

// selfRemoved tells the partitions actor that a life was removed and the
// node stays out (it will not catch up with the log): it delivers the
// NodeLeave the log derives, unless the entry already did, and closes.
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
		if p.openFor == msg.nonce && msg.nonce != 0 {
			p.emit(ctx, []*messages.Event{msg.event})
			p.openFor = 0
		}
	}
}

func (p *partitionsActor) registered(v *raftfsm.View) bool {
	n, ok := v.Nonce(p.cfg.NodeID)
	return ok && n == p.nonce
}

// emit hands events to the dispatcher.
func (p *partitionsActor) emit(ctx actor.Context, events []*messages.Event) {
	for _, e := range events {
		p.cfg.Stats.EventsPublished[kindBit(KindOf(e))].Add(1)
	}
	p.cfg.Stats.Emitted.Store(SeqOf(Payload(events[len(events)-1])).Index)
	ctx.Send(p.hooks, &EventBatch{Events: events})
}

func (p *partitionsActor) applied(ctx actor.Context, a *raftfsm.Applied) {
	defer p.cfg.Stats.Derived.Store(a.Index)
	if p.cfg.OnView != nil && a.Next != a.Prev {
		p.cfg.OnView(a.Next)
	}
	if a.Restored {
		p.log.Info("state restored from snapshot", "index", a.Index, "members", len(a.Next.Members()), "table_version", a.Next.TableVersion())
		if p.openFor != 0 {
			// The snapshot may cover the open life's removal: its
			// NodeLeave, as the skipped entry would have derived it.
			if n, member := a.Next.Nonce(p.cfg.NodeID); !member || n != p.openFor {
				if d, ok := a.Next.Departed(p.cfg.NodeID); ok && d.Nonce == p.openFor && d.Index != 0 {
					p.emit(ctx, []*messages.Event{d.LeaveEvent()})
				}
				p.openFor = 0
			}
		}
		wasOpen := p.openFor != 0
		if p.openFor == 0 && p.registered(a.Next) {
			p.openFor = p.nonce
		}
		if p.openFor != 0 {
			// The entries the snapshot skipped may have changed what this
			// node holds: tell it, so it never misses an instruction about
			// its own data.
			prev := a.Prev
			if !wasOpen {
				prev = nil
			}
			if evs := raftfsm.SnapshotEvents(prev, a.Next, p.cfg.NodeID, a.Index, time.Now()); len(evs) > 0 {
				p.log.Info("partition changes derived from the installed snapshot", "index", a.Index, "events", len(evs))
				p.emit(ctx, evs)
			}
		}
		return
	}
	p.observeHandoffs(a)
	p.logDecisions(a)
	mine := func(n *raftfsm.Node) bool {
		if n == nil || n.ID != p.cfg.NodeID {
			return false
		}
		got, _ := a.Next.Nonce(n.ID)
		return got == p.nonce
	}
	if a.Err == nil && p.openFor != p.nonce && (mine(a.Change.Joined) || mine(a.Change.Rejoined)) {
		p.openFor = p.nonce // this life's admission
	}
	if p.openFor == 0 {
		return
	}
	ownLeave := false
	if left := a.Change.Left; left != nil && left.ID == p.cfg.NodeID && a.Err == nil {
		// The open life's own removal: its NodeLeave is the last event it
		// delivers (the entry's later events, the promotions of its
		// replicas, concern the members it left).
		ownLeave = true
		defer func() { p.openFor = 0 }()
	}
	if a.Err != nil {
		p.log.Debug("entry rejected", "index", a.Index, "origin", a.Origin, "error", a.Err)
		return
	}
	events := raftfsm.Events(a, time.Now())
	if ownLeave {
		for i, e := range events {
			if e.GetNodeLeave() != nil {
				events = events[:i+1]
				break
			}
		}
	}
	if len(events) == 0 {
		return
	}
	if r := a.Change.Rebalance; r != nil {
		p.cfg.Stats.Rebalances.Add(1)
		// Every rebalance is observed (a zero duration too), so the
		// histogram's count equals rebalances_total.
		p.cfg.Stats.RebalanceDuration.Observe(time.Duration(max(0, events[len(events)-1].GetRebalanceComplete().GetDurationNanos())))
		p.log.Debug("partition table committed", "index", a.Index, "trigger", r.GetTrigger(),
			"trigger_node", r.GetTriggerNodeId(), "moved", events[0].GetRebalanceStart().GetPartitionsToMove(),
			"nodes_affected", events[0].GetRebalanceStart().GetNodesAffected())
	}
	p.emit(ctx, events)
}

// logDecisions logs the decisions an entry commits (a member removed, a
// rebalance started, a rebalance complete) once: at INFO on the node that
// leads when it applies the entry, the one that decided them, and at DEBUG
// on the others. Admissions, promotions and leadership changes are logged
// where the leader decides them ("admitted node", "promoted to voter",
// "became leader"). Every decision line has the entry's index.
func (p *partitionsActor) logDecisions(a *raftfsm.Applied) {
	c := &a.Change
	if a.Err != nil || (c.Left == nil && !c.SpanOpened && c.SpanClosed == nil) {
		return
	}
	lvl := slog.LevelDebug
	if p.cfg.Raft != nil && p.cfg.Raft.State() == raft.Leader {
		lvl = slog.LevelInfo
	}
	ctx := context.Background()
	if l := c.Left; l != nil {
		p.log.Log(ctx, lvl, "member removed", "peer", l.ID, "reason", c.LeaveReason, "removed_by", a.Origin,
			"index", a.Index, "primaries", len(c.LeftPrimary), "replicas", len(c.LeftReplica))
	}
	if c.SpanOpened {
		span := a.Next.Span()
		if span == nil {
			span = c.SpanClosed
		}
		p.log.Log(ctx, lvl, "rebalance started", "index", a.Index, "trigger", span.GetTrigger(),
			"trigger_node", span.GetTriggerNodeId(), "partitions_to_move", span.GetPartitionsToMove(),
			"moves", span.GetMovesPlanned(), "nodes_affected", span.GetNodesAffected())
	}
	if span := c.SpanClosed; span != nil {
		var took time.Duration
		if st := span.GetStartedAtUnixNano(); st != 0 {
			end := a.Time
			if end.IsZero() {
				end = time.Now()
			}
			took = max(0, end.Sub(time.Unix(0, st)))
		}
		p.log.Log(ctx, lvl, "rebalance complete", "index", a.Index, "start_index", span.GetStartIndex(),
			"trigger", span.GetTrigger(), "trigger_node", span.GetTriggerNodeId(),
			"partitions_moved", span.GetPartitionsToMove(), "moves", span.GetMovesPlanned(), "took", took)
	}
}

// observeHandoffs records how long each acknowledged copy took: from the
// entry that added the owner to the MarkReady that made it ready.
func (p *partitionsActor) observeHandoffs(a *raftfsm.Applied) {
	for _, n := range a.Change.Readied {
		pa := a.Prev.Assignment(int(n))
		i := slices.Index(pa.GetOwners(), a.Change.ReadiedBy)
		if since := pa.LoadSince(i); since > 0 && !a.Time.IsZero() {
			p.cfg.Stats.HandoffDuration.Observe(time.Duration(max(0, a.Time.UnixNano()-since)))
		}
	}
}
