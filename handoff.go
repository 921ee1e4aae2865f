package clusterkit

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// drainTimeout bounds the hand-over of a stopping node's primaries: a
// cluster without a quorum must not hold a Stop for long.
const drainTimeout = 5 * time.Second

// OnPartitionLoad calls fn for every PartitionChange that tells this node to
// load a partition (Action PartitionLoad), in order, in its own actor. When
// fn returns nil the node acknowledges the load: the owner becomes ready and
// may become primary. When it returns an error the owner stays syncing (the
// error is logged); call MarkReady once the data is there, or
// HandoffTimeout ends the copy. Acknowledgements matter only with
// Options.Handoff (without it, owners are ready at once). It returns a
// function that removes the callback.
func (ck *ClusterKit) OnPartitionLoad(fn func(*PartitionChangeEvent) error) (remove func()) {
	self := ck.opts.NodeID
	return ck.onEvent("OnPartitionLoad", "partition-load", EventPartitionChange, func(e Event) {
		pc := e.PartitionChange
		if pc.Action != PartitionLoad || pc.CopyToNode == nil || pc.CopyToNode.ID != self {
			return
		}
		if err := fn(pc); err != nil {
			ck.log.Warn("partition load failed; the owner stays syncing", "partition", pc.PartitionID, "epoch", pc.Epoch, "error", err)
			return
		}
		if pc.State == OwnerSyncing {
			ck.sendReady(&messages.PartitionReady{PartitionId: pc.PartitionID, Epoch: pc.Epoch})
		}
	})
}

// sendReady hands an acknowledgement to the node's ready actor.
func (ck *ClusterKit) sendReady(msg *messages.PartitionReady) {
	if ready := ck.readyActor(); ready != nil {
		ck.system.Root.Send(ready, msg)
	}
}

// MarkReady acknowledges that this node holds the data of partition (its
// ID, "partition-<n>"), for a copy that outlived its PartitionChange handler.
// It returns once the acknowledgement is committed and applied here. A
// partition this node already holds as ready returns nil at once; one it
// does not own returns ErrNotOwner.
func (ck *ClusterKit) MarkReady(ctx context.Context, partition string) error {
	n, ok := keyhash.ParseID(partition)
	v := ck.fsm.View()
	if !ok || int(n) >= v.PartitionCount() {
		return fmt.Errorf("%w: %q is not a partition of this cluster", ErrInvalidPartition, partition)
	}
	a := v.Assignment(int(n))
	i := slices.Index(a.GetOwners(), ck.opts.NodeID)
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNotOwner, partition)
	}
	epoch := a.LoadEpoch(i)
	if epoch == 0 {
		return nil
	}
	ready := ck.readyActor()
	if ready == nil {
		return ErrNotStarted
	}
	res, err := ck.ask(ctx, ready, &actors.MarkReadyRequest{Partitions: []*messages.ReadyPartition{{Partition: n, Epoch: epoch}}}, DefaultApplyTimeout+rpcTimeout)
	if err != nil {
		return fmt.Errorf("mark ready: %w", err)
	}
	pr, ok := res.(*messages.ProposeResult)
	if !ok {
		return fmt.Errorf("%w: the node stopped", ErrStopped)
	}
	if err := actors.ResultError(pr); err != nil {
		return err
	}
	return ck.waitApplied(ctx, pr.GetIndex())
}

// PlannedPartition is one partition a rebalance would change (the same
// fields as the gateway's client.PlannedPartition, converted to it).
type PlannedPartition struct {
	PartitionID string   `json:"partition_id"`
	Current     []string `json:"current"` // owners now, primary first
	Target      []string `json:"target"`  // owners after the hand-off, primary first
	Add         []string `json:"add"`     // nodes that would load it
	Release     []string `json:"release"` // nodes that would drop it
}

// RebalancePlan is what the next rebalance would do (PlanRebalance).
type RebalancePlan struct {
	Partitions []PlannedPartition `json:"partitions"`
	// Moves counts the copies (partition, new owner); PrimaryChanges the
	// primary roles that change hands; Pending the copies a hand-off in
	// progress still waits for.
	Moves          int `json:"moves"`
	PrimaryChanges int `json:"primary_changes"`
	Pending        int `json:"pending"`
}

// PlanRebalance returns the moves the next rebalance would make, computed
// on this node's committed state with this node's hand-off settings,
// changing nothing (a dry run; POST /rebalance?dry_run=true serves it).
func (ck *ClusterKit) PlanRebalance() (*RebalancePlan, error) {
	v := ck.fsm.View()
	if !v.HasTable() {
		return nil, ErrNotReady
	}
	return planOf(actors.DryRunOf(v, handoffConfig(ck.opts), time.Now().UnixNano())), nil
}

func planOf(r *messages.PlanResult) *RebalancePlan {
	out := &RebalancePlan{Partitions: make([]PlannedPartition, 0, len(r.GetPartitions())),
		Moves: int(r.GetMoves()), PrimaryChanges: int(r.GetPrimaryChanges()), Pending: int(r.GetPending())}
	for _, p := range r.GetPartitions() {
		out.Partitions = append(out.Partitions, PlannedPartition{PartitionID: p.GetPartitionId(), Current: nonNil(p.GetCurrent()),
			Target: nonNil(p.GetTarget()), Add: nonNil(p.GetAdd()), Release: nonNil(p.GetRelease())})
	}
	return out
}

// HandOverPrimaries hands this node's primary roles over to ready replicas, committed
// (epoch + 1 each), and returns once this node has applied them: the first
// step of a planned stop, for an application that wants to stop serving its
// own clients only after the table stopped routing writes to it (Stop and
// Leave hand over by themselves). It is not a drain of the node's replicas. The node stays a member and keeps its
// replicas, but leads no partition until it restarts; a partition with no
// ready replica keeps it as primary. When no leader is known it waits for an
// election first (four election timeouts, at least 2 s). Without a leader
// then, or when the hand-over does not commit within ctx (and at most 5 s in
// all), it returns an error wrapping ErrNoLeader or the cause and changes
// nothing here: failure detection takes over after the stop.
func (ck *ClusterKit) HandOverPrimaries(ctx context.Context) error {
	if !ck.running.Load() {
		return ErrNotStarted
	}
	return ck.handOverPrimaries(ctx)
}

// handOverPrimaries is HandOverPrimaries for Stop and Leave, which log its failure and go on.
func (ck *ClusterKit) handOverPrimaries(ctx context.Context) error {
	v := ck.fsm.View()
	if primaries(v) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	start := time.Now()
	if !ck.awaitLeader(ctx) {
		ck.log.Log(ctx, ck.handOverLevel(), "no leader to hand primaries over to; failure detection will take over after the stop",
			"quorum_lost_by_plan", ck.quorumLostByPlan(), "waited", time.Since(start).Round(time.Millisecond))
		return fmt.Errorf("drain: %w to commit the hand-over", ErrNoLeader)
	}
	idx, err := ck.propose(ctx, &messages.Command{TimeUnixNano: time.Now().UnixNano(), Origin: ck.opts.NodeID,
		Op: &messages.Command_DrainNode{DrainNode: &messages.DrainNode{Id: ck.opts.NodeID, Incarnation: ck.life.Status().Incarnation}}})
	if err == nil {
		err = ck.waitApplied(ctx, idx)
	}
	if err != nil {
		ck.log.Log(ctx, ck.handOverLevel(), "could not hand primaries over; failure detection will take over after the stop", "error", err,
			"quorum_lost_by_plan", ck.quorumLostByPlan())
		return fmt.Errorf("drain: %w", err)
	}
	ck.log.Info("primaries handed over", "index", idx, "still_primary", primaries(ck.fsm.View()), "took", time.Since(start))
	return nil
}

// awaitLeader reports whether a leader is known, waiting for an election
// (leaderWait, within ctx) when none is: a node that just voted, in the
// election a stopping leader's hand-over starts or after the leader died,
// knows no leader until the winner's first append reaches it. It does not
// wait when the planned stops of the other voters took the quorum, since no
// leader can come.
func (ck *ClusterKit) awaitLeader(ctx context.Context) bool {
	if _, id := ck.raft.LeaderWithID(); id != "" {
		return true
	}
	if ck.quorumLostByPlan() {
		return false
	}
	wait := time.NewTimer(leaderWait(ck.opts.Raft.ElectionTimeout))
	defer wait.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if _, id := ck.raft.LeaderWithID(); id != "" {
				return true
			}
		case <-wait.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// leaderWait bounds awaitLeader: four election timeouts (a follower's
// heartbeat timeout, randomized up to twice the setting, then a vote that
// may split once), at least 2 s for a busy machine, at most drainTimeout.
func leaderWait(election time.Duration) time.Duration {
	return min(max(4*election, 2*time.Second), drainTimeout)
}

// primaries counts the partitions this node leads in v.
func primaries(v *raftfsm.View) int {
	n := 0
	for p := range v.PartitionCount() {
		if v.Role(p) == raftfsm.RolePrimary {
			n++
		}
	}
	return n
}
