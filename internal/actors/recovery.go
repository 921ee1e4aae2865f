package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Recovery is what a quorum-loss recovery of this node's data directory
// left to do (clusterkit.RecoverCluster writes it down in a marker file).
// The recovered Raft configuration holds only the survivors, but the
// committed membership still lists the members that were lost. Left there,
// the reconciler would keep re-adding them to Raft as non-voters, and
// failure detection would never remove them (most peers look down), so the
// node removes them itself once it leads.
type Recovery struct {
	// ClusterID is the cluster that was recovered: a marker never acts on
	// another one.
	ClusterID string
	// Survivors are the node IDs of the recovered configuration. They are
	// never removed.
	Survivors []string
	// Lost maps each member left behind to the incarnation it had at the
	// recovery. Only that life is removed: a node that rejoined since is a
	// new life, and stays.
	Lost map[string]uint64
	// Done is called, off the actor, once nothing is left to remove (it
	// deletes the marker). Until then every leadership of this node tries
	// again, so a process that dies half-way finishes the job next time.
	Done func() error
}

// pending returns the lost members that are still members in the same life,
// sorted, never a survivor.
func (r *Recovery) pending(v *raftfsm.View) []raftfsm.Node {
	var out []raftfsm.Node
	for _, m := range v.Members() {
		inc, lost := r.Lost[m.ID]
		if lost && m.Incarnation == inc && !slices.Contains(r.Survivors, m.ID) {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// retryRecoveryAfter paces the passes of finishRecovery after a failure.
const retryRecoveryAfter = time.Second

// recoveryRun is the state actor's progress on its Recovery.
type recoveryRun struct {
	running bool // removals in flight (one pass at a time)
	done    bool // nothing left: the marker is gone
}

// recoveryFinished ends a pass of finishRecovery.
type recoveryFinished struct {
	err error
}

// finishRecovery commits, on the leader once its barrier has passed and
// this life is a member, the removal ("removed_by_admin") of every member a
// quorum-loss recovery left behind, then deletes the marker. It is
// idempotent: a member already gone, or back as a new life, is left alone.
func (s *stateActor) finishRecovery() {
	rec := s.cfg.Recovery
	if rec == nil || s.recovery.done || s.recovery.running || !s.leader || !s.ready {
		return
	}
	v := s.cfg.FSM.View()
	if !s.isRegistered(v) {
		// This life is admitted first (its registration is what calls this
		// again): a node delivers no event from before its own admission,
		// and the lost members' NodeLeave must reach its subscribers too.
		return
	}
	var lost []raftfsm.Node
	if id := v.ClusterID(); rec.ClusterID == "" || id == rec.ClusterID {
		lost = rec.pending(v)
	} else {
		s.log.Warn("quorum recovery: the marker names another cluster; ignoring it", "marker_cluster_id", rec.ClusterID, "cluster_id", id)
	}
	s.recovery.running = true
	prop, system, self, logger := s.prop, s.system, s.self, s.log
	cfg, timeout := s.cfg, s.cfg.ApplyTimeout+s.cfg.rpcTimeout()
	s.goWork(func(ctx context.Context) {
		var errs []error
		for _, m := range lost {
			if ctx.Err() != nil {
				errs = append(errs, ctx.Err())
				break
			}
			logger.Warn("quorum recovery: removing lost member", "peer", m.ID, "address", m.IP, "incarnation", m.Incarnation)
			pr, err := prop.commit(ctx, system, &messages.Command{
				TimeUnixNano: cfg.now(), Origin: cfg.NodeID,
				Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{Id: m.ID, Reason: raftfsm.LeaveAdmin, Incarnation: m.Incarnation}},
			}, timeout)
			if err == nil {
				err = ResultError(pr)
			}
			if err != nil && !errors.Is(err, raftfsm.ErrUnknownNode) && !errors.Is(err, raftfsm.ErrIncarnationMismatch) { // already gone, or back as a new life: fine
				errs = append(errs, fmt.Errorf("remove %s: %w", m.ID, err))
				continue
			}
			logger.Info("quorum recovery: lost member removed", "peer", m.ID)
		}
		err := errors.Join(errs...)
		if err == nil && rec.Done != nil {
			err = rec.Done()
		}
		if err != nil {
			// Pace the retry (a leader that is about to step down fails
			// every proposal at once).
			select {
			case <-ctx.Done():
			case <-time.After(retryRecoveryAfter):
			}
		}
		system.Root.Send(self, &recoveryFinished{err: err})
	})
}

// recoveryFinished records the end of a pass; a failed pass is tried again
// while this node still leads (and at its next leadership otherwise).
func (s *stateActor) recoveryFinished(msg *recoveryFinished) {
	s.recovery.running = false
	if msg.err == nil {
		if !s.recovery.done {
			s.log.Info("quorum recovery complete: every lost member is removed")
		}
		s.recovery.done = true
		return
	}
	s.log.Warn("quorum recovery: removals not finished; retrying while leader", "error", msg.err)
	s.finishRecovery()
}
