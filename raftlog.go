package clusterkit

import (
	"log/slog"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/logging"
)

// raftLogHooks tell the Raft log adapter which of Raft's lines are the
// expected consequences of a plan (see internal/logging's levelFor and the
// "Logs" section of docs/operations.md).
func (ck *ClusterKit) raftLogHooks() logging.Hooks {
	return logging.Hooks{Peer: ck.raftLogPeer, Stopping: ck.raftLogStopping, QuorumLostByPlan: ck.quorumLostByPlan}
}

// raftLogPeer resolves a Raft server ID or address to a node ID, from the
// committed view, and reports whether the cluster expects the node to be
// unreachable: it was removed (it is in the departed list), or it is a
// member stopping by plan (its DrainNode is committed).
func (ck *ClusterKit) raftLogPeer(p string) (string, bool) {
	v := ck.fsm.View()
	if v == nil {
		return p, false
	}
	if m, ok := v.Member(p); ok {
		return m.ID, m.Draining
	}
	for _, m := range v.Members() {
		if m.IP == p {
			return m.ID, m.Draining
		}
	}
	if _, ok := v.Departed(p); ok {
		return p, true
	}
	for _, d := range v.Departures() {
		if d.Node.IP == p {
			return d.Node.ID, true
		}
	}
	return p, false
}

// raftLogStopping reports whether this node is going away: Stop has begun,
// or this process learned that the cluster removed (or fenced, or refused)
// it.
func (ck *ClusterKit) raftLogStopping() bool {
	ck.mu.Lock()
	stopped := ck.stopped
	ck.mu.Unlock()
	if stopped {
		return true
	}
	switch ck.life.Status().State {
	case actors.MemberRemoved, actors.MemberFenced, actors.MemberRefused:
		return true
	}
	return false
}

// quorumLostByPlan reports whether the voters other than this node that are
// not stopping by plan (their hand-over, DrainNode, committed) are fewer
// than a majority of the voters: the planned stops of the others took the
// cluster's quorum, and what this node cannot commit now fails by plan.
func (ck *ClusterKit) quorumLostByPlan() bool {
	v := ck.fsm.View()
	if v == nil {
		return false
	}
	voters, others := 0, 0
	for _, m := range v.Members() {
		if !m.Voter {
			continue
		}
		voters++
		if m.ID != ck.opts.NodeID && !m.Draining {
			others++
		}
	}
	return voters > 1 && others < voters/2+1
}

// handOverLevel is the level of a failed hand-over of this node's
// primaries: INFO when the planned stops of the other voters took the
// quorum (a whole cluster stopped node by node), WARN otherwise.
func (ck *ClusterKit) handOverLevel() slog.Level {
	if ck.quorumLostByPlan() {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
