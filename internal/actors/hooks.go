package actors

import (
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// hooksActor is the event dispatcher. It keeps the subscriptions (user PIDs it
// watches, and one child actor per Go callback) and delivers each event, in
// seq order, to every subscription whose filter matches. A slow or panicking
// subscriber delays or breaks only its own mailbox.
type hooksActor struct {
	cfg *Config
	log *slog.Logger
	*dispatchState
}

// dispatchState outlives restarts of the hooks actor, so a crash there loses
// no subscription and delivers nothing twice. Only the hooks actor touches it.
type dispatchState struct {
	subs []*subscription
	last Seq
	// pending holds events waiting for their seq to be persisted (with a
	// DataDir) before they are delivered.
	pending []*messages.Event
}

// Persisted tells the dispatcher that the seq of the last delivered event is
// durable up to Seq: pending events up to it may be delivered.
type Persisted struct{ Seq Seq }

// addCallback asks hooks to subscribe a callback actor the root spawned.
type addCallback struct {
	pid    *actor.PID
	filter Filter
}

type subscription struct {
	pid      *actor.PID
	filter   Filter
	callback bool // an internal callback actor: it gets the *messages.Event wrapper
}

func newHooksActor(cfg *Config, st *dispatchState) actor.Actor {
	return &hooksActor{cfg: cfg, log: cfg.Logger.With("actor", "hooks"), dispatchState: st}
}

func (h *hooksActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		// Subscriptions made before start (or kept across a restart).
		for _, s := range h.subs {
			if !s.callback {
				ctx.Watch(s.pid)
			}
		}
		h.cfg.Stats.Subscribers.Store(int64(len(h.subs)))
	case *actor.Stopping:
		// Subscribers usually outlive the node: stop watching them, so their
		// own later stop does not notify a dead dispatcher.
		for _, s := range h.subs {
			if !s.callback {
				ctx.Unwatch(s.pid)
			}
		}
	case *EventBatch:
		h.receive(ctx, msg.Events)
	case *Persisted:
		h.release(ctx, msg.Seq)
	case *Subscribe:
		h.subscribe(ctx, msg.PID, msg.Filter, false)
		ctx.Respond(&SubscribeAck{})
	case *Unsubscribe:
		h.remove(msg.PID)
		ctx.Unwatch(msg.PID)
		ctx.Respond(&SubscribeAck{})
	case *addCallback:
		h.subscribe(ctx, msg.pid, msg.filter, true)
		ctx.Respond(msg.pid)
	case *actor.Terminated:
		if h.remove(msg.Who) {
			h.log.Debug("subscriber terminated; subscription dropped", "pid", msg.Who.String())
		}
	}
}

func (h *hooksActor) subscribe(ctx actor.Context, pid *actor.PID, f Filter, callback bool) {
	for _, s := range h.subs {
		if s.pid.Equal(pid) {
			s.filter = f
			return
		}
	}
	h.subs = append(h.subs, &subscription{pid: pid, filter: f, callback: callback})
	h.cfg.Stats.Subscribers.Add(1)
	if !callback {
		// Callback actors live and die with the root; user actors are watched
		// so their subscription ends with them.
		ctx.Watch(pid)
	}
}

func (h *hooksActor) remove(pid *actor.PID) bool {
	for i, s := range h.subs {
		if s.pid.Equal(pid) {
			h.subs = append(h.subs[:i], h.subs[i+1:]...)
			h.cfg.Stats.Subscribers.Add(-1)
			return true
		}
	}
	return false
}

// receive drops events delivered before a restart, then delivers the new
// ones, or (with persistence) parks them until their seq is durable: a
// crash never delivers an event twice (at worst, one group commit's worth
// of events persisted but not yet delivered is skipped).
func (h *hooksActor) receive(ctx actor.Context, events []*messages.Event) {
	fresh := events[:0:0]
	for _, e := range events {
		seq := SeqOf(Payload(e))
		if !h.last.Less(seq) {
			// Already delivered before a restart (replayed log): never twice.
			h.cfg.Stats.EventsSuppressed[kindBit(KindOf(e))].Add(1)
			continue
		}
		h.last = seq
		fresh = append(fresh, e)
	}
	if len(fresh) == 0 {
		return
	}
	if h.cfg.PersistDelivered == nil {
		h.deliver(ctx, fresh)
		return
	}
	h.pending = append(h.pending, fresh...)
	h.cfg.PersistDelivered(h.last, ctx.Self())
}

// release delivers the pending events whose seq is durable.
func (h *hooksActor) release(ctx actor.Context, upTo Seq) {
	n := 0
	for n < len(h.pending) && !upTo.Less(SeqOf(Payload(h.pending[n]))) {
		n++
	}
	if n == 0 {
		return
	}
	ready := h.pending[:n]
	h.pending = append([]*messages.Event(nil), h.pending[n:]...)
	h.deliver(ctx, ready)
}

func (h *hooksActor) deliver(ctx actor.Context, events []*messages.Event) {
	for _, e := range events {
		p := Payload(e)
		if h.cfg.Tap != nil {
			h.cfg.Tap(e)
		}
		bit := kindBit(KindOf(e))
		// A user actor replies to a load with PartitionReady, straight to
		// the ready actor (not queued behind the events here).
		var replyTo *actor.PID
		if isLoadFor(e, h.cfg.NodeID) {
			replyTo = sibling(ctx.Parent(), "ready")
		}
		for _, s := range h.subs {
			if !s.filter.Match(e, h.cfg.NodeID) {
				continue
			}
			switch {
			case s.callback:
				ctx.Send(s.pid, e)
			case replyTo != nil:
				ctx.RequestWithCustomSender(s.pid, p, replyTo)
			default:
				ctx.Send(s.pid, p)
			}
			h.cfg.Stats.EventsDelivered[bit].Add(1)
		}
	}
	if len(events) > 0 && h.cfg.OnDelivered != nil {
		h.cfg.OnDelivered(SeqOf(Payload(events[len(events)-1])))
	}
}

// callbackActor runs one Go callback: events arrive in order through its own
// mailbox, and a panic is logged and counted instead of reaching anyone else.
type callbackActor struct {
	fn     func(*messages.Event)
	log    *slog.Logger
	stats  *Stats
	state  *callbackState
	handle *CallbackHandle
}

func (c *callbackActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Event:
		if !c.handle.Removed() && c.state.begin(m) {
			c.call(m)
			c.state.end()
		}
	case *actor.Stopped:
		if c.handle.Removed() {
			c.state.drop() // removed for good: Stop no longer waits for it
		}
	}
}

func (c *callbackActor) call(e *messages.Event) {
	defer func() {
		if r := recover(); r != nil {
			c.stats.CallbackPanics.Add(1)
			c.log.Error("event callback panicked; continuing with the next event", "panic", r, "seq", fmt.Sprint(SeqOf(Payload(e))), "stack", string(debug.Stack()))
		}
	}()
	c.fn(e)
}

// isLoadFor reports whether e tells node id to load a partition.
func isLoadFor(e *messages.Event, id string) bool {
	pc := e.GetPartitionChange()
	return pc != nil && pc.GetAction() == raftfsm.ActionLoad && pc.GetCopyToNode().GetId() == id
}
