package clusterkit

import (
	"context"
	"fmt"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// The operator's placement controls: drain (take one member's data out,
// keep the member) and maintenance mode (commit membership changes, move no
// data). Both are committed flags, so they survive a leader change: the next
// leader plans from them.

// Drain moves everything member nodeID holds to other members, by hand-offs:
// its primaries first go to ready replicas, then its replicas are copied
// elsewhere and released. The member keeps serving meanwhile and stays a
// member (and a voter, if it is one) with nothing, until Undrain or until it
// leaves. Drain returns once the member holds no partition, or when ctx
// ends: the drain is committed by then and goes on (Undrain reverses it).
// In maintenance mode (PauseRebalancing) nothing moves until
// ResumeRebalancing, so Drain waits until then.
// Draining the last member that can hold data is refused (ErrNoHolder),
// and an unknown ID is ErrUnknownNode. Draining a drained member only
// waits.
func (ck *ClusterKit) Drain(ctx context.Context, nodeID string) error {
	if err := ck.setDrain(ctx, nodeID, true); err != nil {
		return err
	}
	held := 0
	if ck.waitView(ctx, func(v *raftfsm.View) bool {
		if _, ok := v.Member(nodeID); !ok {
			held = 0
			return true // it left: it holds nothing
		}
		held = v.SlotsOf(nodeID)
		return held == 0
	}) {
		return nil
	}
	return fmt.Errorf("drain of %q committed, %d partitions still held: %w", nodeID, held, ctx.Err())
}

// Undrain ends the drain of member nodeID: the next rebalance gives it its
// share again (by hand-offs). It returns once the change is committed and
// applied on this node; undraining a member that is not drained changes
// nothing.
func (ck *ClusterKit) Undrain(ctx context.Context, nodeID string) error {
	return ck.setDrain(ctx, nodeID, false)
}

func (ck *ClusterKit) setDrain(ctx context.Context, nodeID string, drain bool) error {
	if err := ck.usable(); err != nil {
		return err
	}
	if _, ok := ck.fsm.View().Member(nodeID); !ok {
		return errorf(ErrUnknownNode, "%q is not a member", nodeID)
	}
	return ck.commit(ctx, &messages.Command{Op: &messages.Command_SetDrain{SetDrain: &messages.SetDrain{Id: nodeID, Drain: drain}}})
}

// PauseRebalancing enters maintenance mode: membership changes still
// commit, and a partition whose primary leaves (or stops) still fails over
// to a ready replica, but no new copy is planned and hand-offs in progress
// stop where they are (copies already loading finish). Use it for rolling
// upgrades: a node that restarts keeps its partitions, and nothing moves.
// ResumeRebalancing plans once from the state it finds. It returns once
// committed and applied on this node.
func (ck *ClusterKit) PauseRebalancing(ctx context.Context) error {
	return ck.setPaused(ctx, true)
}

// ResumeRebalancing leaves maintenance mode: the leader plans one rebalance
// from the current membership (drains, joins and departures made while
// paused included).
func (ck *ClusterKit) ResumeRebalancing(ctx context.Context) error {
	return ck.setPaused(ctx, false)
}

func (ck *ClusterKit) setPaused(ctx context.Context, paused bool) error {
	if err := ck.usable(); err != nil {
		return err
	}
	return ck.commit(ctx, &messages.Command{Op: &messages.Command_SetRebalancePaused{SetRebalancePaused: &messages.SetRebalancePaused{Paused: paused}}})
}

// RebalancingPaused reports whether the cluster is in maintenance mode.
func (ck *ClusterKit) RebalancingPaused() bool { return ck.fsm.View().RebalancePaused() }

// commit proposes cmd and waits until this node applied it.
func (ck *ClusterKit) commit(ctx context.Context, cmd *messages.Command) error {
	idx, err := ck.propose(ctx, cmd)
	if err != nil {
		return err
	}
	return ck.waitApplied(ctx, idx)
}
