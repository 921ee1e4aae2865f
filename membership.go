package clusterkit

import (
	"errors"
	"fmt"
	"time"

	"github.com/clusterkit/clusterkit/actors"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// propose commits cmd through the state actor (which forwards it to the
// leader when this node follows) and waits for the result. While no leader is
// known (an election, a leadership transfer) it retries with backoff, up to
// DefaultApplyTimeout: "not the leader" answers mean nothing was committed.
func (ck *ClusterKit) propose(cmd *messages.Command) (uint64, error) {
	state := ck.stateActor()
	if state == nil {
		return 0, ErrNotStarted
	}
	cmd.TimeUnixNano = time.Now().UnixNano()
	cmd.Origin = ck.opts.NodeID
	deadline := time.Now().Add(DefaultApplyTimeout)
	backoff := 10 * time.Millisecond
	for {
		res, err := ck.system.Root.RequestFuture(state, &messages.Propose{Command: cmd}, DefaultApplyTimeout+rpcTimeout).Result()
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		pr := res.(*messages.ProposeResult)
		if pr.GetCode() != actors.CodeNotLeader || time.Now().Add(backoff).After(deadline) {
			return pr.GetIndex(), actors.ResultError(pr)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// Leave removes this node from the cluster for good (reason
// "graceful_shutdown") and stops it. A leader hands leadership over first.
// Every node, this one included, receives the NodeLeave event and the
// rebalance that follows. If the removal cannot be committed the node keeps
// running and the error is returned.
func (ck *ClusterKit) Leave() error {
	if err := ck.leave(); err != nil {
		return err
	}
	return ck.Stop()
}

// leave commits this node's removal and waits (briefly) until local
// subscribers got its events; the caller stops the node.
func (ck *ClusterKit) leave() error {
	if !ck.running.Load() {
		return ErrNotStarted
	}
	ck.handOverLeadership()
	_, err := ck.propose(&messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{
		Id: ck.opts.NodeID, Reason: raftfsm.LeaveGraceful,
	}}})
	// Unknown node: a retried removal that had already been committed.
	if err != nil && !errors.Is(err, raftfsm.ErrUnknownNode) {
		return fmt.Errorf("leave: %w", err)
	}
	// Wait (briefly) for our own copy of the removal and for its events to
	// reach local subscribers, so they get their NodeLeave before the node stops.
	var removedAt uint64
	ck.waitView(2*time.Second, func(v *raftfsm.View) bool {
		_, member := v.Member(ck.opts.NodeID)
		removedAt = v.Version()
		return !member
	})
	deadline := time.Now().Add(2 * time.Second)
	for ck.deliveredIndex() < removedAt && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return nil
}

// RemoveNode removes another member for good (reason "removed_by_admin"); its
// partitions are rebalanced onto the others. Use Leave to remove this node.
func (ck *ClusterKit) RemoveNode(nodeID string) error {
	if nodeID == ck.opts.NodeID {
		return fmt.Errorf("%w: RemoveNode(%q) is this node: use Leave", ErrInvalidOptions, nodeID)
	}
	if _, ok := ck.fsm.View().Member(nodeID); !ok {
		return fmt.Errorf("%w: %q", raftfsm.ErrUnknownNode, nodeID)
	}
	index, err := ck.propose(&messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{
		Id: nodeID, Reason: raftfsm.LeaveAdmin,
	}}})
	if err == nil {
		ck.waitApplied(index, DefaultApplyTimeout)
	}
	return err
}

// waitApplied waits (up to timeout) until this node has applied index, so
// that a caller reads its own write from this node.
func (ck *ClusterKit) waitApplied(index uint64, timeout time.Duration) {
	if index == 0 || ck.raft == nil {
		return
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		v := ck.fsm.View()
		if v.Version() >= index || ck.raft.AppliedIndex() >= index {
			return
		}
		select {
		case <-v.Done(): // a change entry: usually the one we wait for
		case <-tick.C: // an entry that changes no view
		case <-deadline.C:
			return
		}
	}
}

// waitView waits until cond holds for the current view, or timeout.
func (ck *ClusterKit) waitView(timeout time.Duration, cond func(*raftfsm.View) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		v := ck.fsm.View()
		if cond(v) {
			return true
		}
		select {
		case <-v.Done():
		case <-deadline.C:
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
