package actors

import (
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/messages"
)

// MarkReadyRequest asks the ready actor to record that this node holds the
// data of partitions it was loading; it answers with the ProposeResult.
type MarkReadyRequest struct {
	Partitions []*messages.ReadyPartition
}

// readyActor turns the application's acknowledgements (a user actor's
// PartitionReady reply, a load callback that returned nil, MarkReady) into
// MarkReady commands: one proposal at a time, with everything acknowledged
// meanwhile batched into the next, so a node loading hundreds of partitions
// does not queue hundreds of Raft entries.
//
// A proposal that fails (no leader, a dropped message, a leadership change)
// is retried with backoff for the partitions this node still loads at the
// same epoch: an acknowledgement that is lost would leave the copy syncing
// until HandoffTimeout cancels it, and the whole copy would be made again.
type readyActor struct {
	cfg      *Config
	log      *slog.Logger
	state    *actor.PID
	pending  []*messages.ReadyPartition
	waiters  []*actor.PID
	inFlight []*actor.PID               // waiters of the proposal in flight
	sent     []*messages.ReadyPartition // the proposal in flight (nil: none)

	retry   []*messages.ReadyPartition // failed, to be tried again
	backoff time.Duration
	timer   *time.Timer
}

// readyRetry fires when the failed acknowledgements are due again.
type readyRetry struct{}

const (
	readyRetryMin = 50 * time.Millisecond
	readyRetryMax = 2 * time.Second
)

func newReadyActor(cfg *Config) actor.Actor {
	return &readyActor{cfg: cfg, log: cfg.Logger.With("actor", "ready")}
}

func (r *readyActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.state = sibling(ctx.Parent(), "state")
	case *messages.PartitionReady:
		n, ok := keyhash.ParseID(msg.GetPartitionId())
		if !ok {
			r.log.Warn("PartitionReady names no partition; ignored", "partition", msg.GetPartitionId())
			return
		}
		r.add(&messages.ReadyPartition{Partition: n, Epoch: msg.GetEpoch()})
		r.flush(ctx)
	case *MarkReadyRequest:
		for _, p := range msg.Partitions {
			r.add(p)
		}
		if ctx.Sender() != nil {
			r.waiters = append(r.waiters, ctx.Sender())
		}
		r.flush(ctx)
	case *messages.ProposeResult:
		if err := ResultError(msg); err != nil {
			r.retry = append(r.retry, r.sent...)
			r.backoff = min(max(2*r.backoff, readyRetryMin), readyRetryMax)
			r.log.Info("acknowledging loaded partitions failed; trying again", "error", err, "partitions", len(r.sent), "in", r.backoff)
			if r.timer == nil {
				system, self := ctx.ActorSystem(), ctx.Self()
				r.timer = time.AfterFunc(r.backoff, func() { system.Root.Send(self, &readyRetry{}) })
			}
		} else {
			r.backoff = 0
		}
		for _, w := range r.inFlight {
			ctx.Send(w, msg)
		}
		r.inFlight, r.sent = nil, nil
		r.flush(ctx)
	case *readyRetry:
		r.timer = nil
		for _, p := range r.retry {
			if r.stillLoading(p) {
				r.add(p)
			}
		}
		r.retry = nil
		r.flush(ctx)
	case *actor.Stopping:
		if r.timer != nil {
			r.timer.Stop()
		}
	}
}

// stillLoading reports whether this node is still a syncing owner of the
// partition at the acknowledged epoch (else the acknowledgement is moot).
func (r *readyActor) stillLoading(p *messages.ReadyPartition) bool {
	v := r.cfg.FSM.View()
	n := int(p.GetPartition())
	if !v.HasTable() || n >= v.PartitionCount() {
		return false
	}
	a := v.Assignment(n)
	i := slices.Index(a.GetOwners(), r.cfg.NodeID)
	return i >= 0 && a.LoadEpoch(i) != 0 && a.LoadEpoch(i) == p.GetEpoch()
}

func (r *readyActor) add(p *messages.ReadyPartition) {
	if !slices.ContainsFunc(r.pending, func(q *messages.ReadyPartition) bool {
		return q.GetPartition() == p.GetPartition() && q.GetEpoch() == p.GetEpoch()
	}) {
		r.pending = append(r.pending, p)
	}
}

func (r *readyActor) flush(ctx actor.Context) {
	if r.sent != nil || (len(r.pending) == 0 && len(r.waiters) == 0) {
		return
	}
	if len(r.pending) == 0 {
		for _, w := range r.waiters {
			ctx.Send(w, &messages.ProposeResult{})
		}
		r.waiters = nil
		return
	}
	cmd := &messages.Command{TimeUnixNano: r.cfg.now(), Origin: r.cfg.NodeID,
		Op: &messages.Command_MarkReady{MarkReady: &messages.MarkReady{Id: r.cfg.NodeID, Partitions: r.pending}}}
	r.sent, r.pending = r.pending, nil
	r.inFlight, r.waiters = r.waiters, nil
	ctx.Request(r.state, &messages.Propose{Command: cmd})
}
