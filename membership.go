package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// propose commits cmd through the state actor (which forwards it to the
// leader when this node follows) and waits for the result. While no leader is
// known (an election, a leadership transfer) it retries with backoff, up to
// DefaultApplyTimeout: "not the leader" answers mean the command never entered
// a log. Any answer that leaves the outcome open (ErrOutcomeUnknown) is
// returned as it is: retrying then could apply the command twice. A cancelled
// or expired ctx returns at once; a command already on its way may still
// commit.
func (ck *ClusterKit) propose(ctx context.Context, cmd *messages.Command) (uint64, error) {
	state := ck.stateActor()
	if state == nil {
		return 0, ErrNotStarted
	}
	if err := ctx.Err(); err != nil {
		return 0, err // nothing sent: nothing will commit
	}
	cmd.TimeUnixNano = time.Now().UnixNano()
	cmd.Origin = ck.opts.NodeID
	deadline := time.Now().Add(DefaultApplyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	backoff := 10 * time.Millisecond
	for {
		res, err := ck.ask(ctx, state, &messages.Propose{Command: cmd}, DefaultApplyTimeout+rpcTimeout)
		if err != nil {
			return 0, err
		}
		pr, ok := res.(*messages.ProposeResult)
		if !ok {
			// A dead letter: the node's actors stopped under the call.
			return 0, fmt.Errorf("%w: the node stopped while proposing", ErrStopped)
		}
		if pr.GetCode() != actors.CodeNotLeader || time.Now().Add(backoff).After(deadline) {
			return pr.GetIndex(), actors.ResultError(pr)
		}
		wait := time.NewTimer(backoff)
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return 0, ctx.Err()
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// ask sends msg to target and waits for its answer, ctx's end or timeout.
// The answer goes to a short-lived actor rather than a future, so giving up
// early leaves nothing behind waiting for the answer.
func (ck *ClusterKit) ask(ctx context.Context, target *actor.PID, msg any, timeout time.Duration) (any, error) {
	reply := make(chan any, 1)
	pid := ck.system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
		default:
			select {
			case reply <- m:
			default:
			}
			c.Stop(c.Self())
		}
	}))
	defer ck.system.Root.Stop(pid)
	ck.system.Root.RequestWithCustomSender(target, msg, pid)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, fmt.Errorf("%w: no answer within %s", ErrTimeout, timeout)
	}
}

// Leave removes this node from the cluster for good (reason
// "graceful_shutdown") and stops it. A leader hands leadership over first.
// Every node, this one included, receives the NodeLeave event and the
// rebalance that follows. If the removal cannot be committed the node keeps
// running and the error is returned.
//
// If ctx ends first, Leave returns ctx.Err() at once and the node keeps
// running. A removal already on its way may still commit: the node then
// stays out (HealthCheck reports membership "removed"; it never rejoins on
// its own after a graceful leave) and Stop ends it.
func (ck *ClusterKit) Leave(ctx context.Context) error {
	if err := ck.leave(ctx); err != nil {
		return err
	}
	return ck.Stop(ctx)
}

// leave commits this node's removal and waits (briefly) until local
// subscribers got its events; the caller stops the node.
func (ck *ClusterKit) leave(ctx context.Context) error {
	if !ck.running.Load() {
		return ErrNotStarted
	}
	_ = ck.handOverPrimaries(ctx) // logged; failure detection does the rest
	ck.handOverLeadership(ctx)
	_, err := ck.propose(ctx, &messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{
		Id: ck.opts.NodeID, Reason: raftfsm.LeaveGraceful, Incarnation: ck.life.Status().Incarnation,
	}}})
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	// Unknown node: a retried removal that had already been committed.
	if err != nil && !errors.Is(err, raftfsm.ErrUnknownNode) {
		return fmt.Errorf("leave: %w", err)
	}
	// Wait (briefly) for our own copy of the removal and for its events to
	// reach local subscribers, so they get their NodeLeave before the node stops.
	wait, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var removedAt uint64
	ck.waitView(wait, func(v *raftfsm.View) bool {
		_, member := v.Member(ck.opts.NodeID)
		removedAt = v.Version()
		return !member
	})
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for ck.deliveredIndex() < removedAt {
		select {
		case <-tick.C:
		case <-wait.Done():
			// Committed: the node is out whatever its subscribers saw, so
			// the caller's cancellation stops only the waiting.
			return nil
		}
	}
	return nil
}

// RemoveNode removes another member for good (reason "removed_by_admin"); its
// partitions are rebalanced onto the others. Use Leave to remove this node.
// It returns once the removal is committed and applied on this node; if ctx
// ends first it returns ctx.Err() and the removal may still commit.
func (ck *ClusterKit) RemoveNode(ctx context.Context, nodeID string) error {
	if nodeID == ck.opts.NodeID {
		return fmt.Errorf("%w: RemoveNode(%q) is this node: use Leave", ErrInvalidOptions, nodeID)
	}
	if _, ok := ck.fsm.View().Member(nodeID); !ok {
		return fmt.Errorf("%w: %q", raftfsm.ErrUnknownNode, nodeID)
	}
	index, err := ck.propose(ctx, &messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{
		Id: nodeID, Reason: raftfsm.LeaveAdmin,
	}}})
	if err != nil {
		return err
	}
	return ck.waitApplied(ctx, index)
}

// waitApplied waits until this node has applied index (committed already,
// on the leader), so that a caller reads its own write here. It gives up when
// ctx ends, when the node stops, or after DefaultApplyTimeout: a node that
// was removed, or cut off, may never apply it, and the caller must not wait
// for ever on a change that did commit.
func (ck *ClusterKit) waitApplied(ctx context.Context, index uint64) error {
	if index == 0 || ck.raft == nil {
		return nil
	}
	limit := time.NewTimer(DefaultApplyTimeout)
	defer limit.Stop()
	var tick *time.Ticker
	for {
		v := ck.fsm.View()
		if v.Version() >= index || ck.fsm.AppliedIndex() >= index {
			return nil
		}
		if tick == nil {
			tick = time.NewTicker(200 * time.Microsecond)
			defer tick.Stop()
		}
		select {
		case <-v.Done(): // a change entry: usually the one we wait for
		case <-tick.C: // an entry that changes no view (custom data, a barrier)
		case <-ctx.Done():
			return fmt.Errorf("%w: index %d committed but not applied here yet: %w", ErrTimeout, index, ctx.Err())
		case <-limit.C:
			return fmt.Errorf("%w: index %d committed but not applied here within %v", ErrTimeout, index, DefaultApplyTimeout)
		case <-ck.done:
			return fmt.Errorf("%w: index %d committed, the node stopped before applying it", ErrStopped, index)
		}
	}
}

// waitView waits until cond holds for the current view, or ctx ends.
func (ck *ClusterKit) waitView(ctx context.Context, cond func(*raftfsm.View) bool) bool {
	for {
		v := ck.fsm.View()
		if cond(v) {
			return true
		}
		select {
		case <-v.Done():
		case <-ctx.Done():
			return false
		}
	}
}

// deliveredIndex is the Raft index of the last event delivered to subscribers.
func (ck *ClusterKit) deliveredIndex() uint64 {
	ck.lastSeq.Lock()
	defer ck.lastSeq.Unlock()
	return ck.lastSeq.Index
}
