package clusterkit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// The read path: one atomic load of the immutable routing view, then slice
// indexing. No actor round trip, no lock, no allocation.

// GetPartition returns the partition that owns key. It fails with ErrNotReady
// before the first partition table is committed. It neither locks nor
// allocates.
func (ck *ClusterKit) GetPartition(key string) (*Partition, error) {
	t := ck.table()
	if len(t.parts) == 0 {
		return nil, ErrNotReady
	}
	v := t.src
	return &t.parts[keyhash.Partition(v.KeyHash(), key, uint32(len(t.parts)))], nil
}

// GetPrimary returns the current primary of p, or nil.
func (ck *ClusterKit) GetPrimary(p *Partition) *Node {
	if t := ck.table(); p != nil && p.num < len(t.primary) {
		return t.primary[p.num]
	}
	return nil
}

// GetReplicas returns the current replicas of p (read-only).
func (ck *ClusterKit) GetReplicas(p *Partition) []Node {
	if t := ck.table(); p != nil && p.num < len(t.replicas) {
		return t.replicas[p.num]
	}
	return nil
}

// GetNodes returns the current primary and replicas of p (read-only).
func (ck *ClusterKit) GetNodes(p *Partition) []Node {
	if t := ck.table(); p != nil && p.num < len(t.nodes) {
		return t.nodes[p.num]
	}
	return nil
}

// IsPrimary reports whether this node is p's primary now.
func (ck *ClusterKit) IsPrimary(p *Partition) bool {
	return p != nil && ck.fsm.View().Role(p.num) == raftfsm.RolePrimary
}

// IsReplica reports whether this node is one of p's replicas now.
func (ck *ClusterKit) IsReplica(p *Partition) bool {
	return p != nil && ck.fsm.View().Role(p.num) == raftfsm.RoleReplica
}

// GetCluster returns the cluster: members with their services, the partition
// map, the configuration and the hash configuration. The value is the
// caller's; the nodes and partitions in it are shared read-only.
func (ck *ClusterKit) GetCluster() *Cluster { return ck.table().cluster() }

// ServiceAddresses returns, for every member that registered the named
// service, its address (member ID -> address).
func (ck *ClusterKit) ServiceAddresses(service string) map[string]string {
	out := map[string]string{}
	for _, m := range ck.table().members {
		if addr, ok := m.Services[service]; ok {
			out[m.ID] = addr
		}
	}
	return out
}

// RebalancePartitions asks the leader (through this node, whatever its role)
// for a rebalance now and returns after the resulting table is committed and
// applied on this node. If ctx ends first it returns ctx.Err(); the
// rebalance may still commit.
func (ck *ClusterKit) RebalancePartitions(ctx context.Context) error {
	ck.mu.Lock()
	stopped := ck.stopped
	ck.mu.Unlock()
	if stopped {
		return ErrStopped
	}
	state := ck.stateActor()
	if state == nil {
		return ErrNotStarted
	}
	res, err := ck.ask(ctx, state, &messages.RebalanceRequest{Trigger: raftfsm.TriggerManual, TriggerNodeId: ck.opts.NodeID}, DefaultApplyTimeout+rpcTimeout)
	if err != nil {
		return fmt.Errorf("rebalance: %w", err)
	}
	pr, ok := res.(*messages.ProposeResult)
	if !ok {
		return fmt.Errorf("%w: the node stopped during the rebalance", ErrStopped)
	}
	if err := actors.ResultError(pr); err != nil {
		return err
	}
	// Committed on the leader; a follower answers once it applied it too.
	return ck.waitApplied(ctx, pr.GetIndex())
}

// raftStatus is what the node knows about consensus right now (also the
// body of GET /consensus/stats).
func (ck *ClusterKit) raftStatus() httpgw.Consensus {
	c := httpgw.Consensus{State: "Shutdown", Voters: []string{}, NonVoters: []string{}, Raw: map[string]string{}}
	r := ck.raft
	if l := ck.lifecycle(); r == nil || l == "new" || l == "stopped" {
		return c
	}
	st := r.Stats()
	num := func(k string) uint64 { n, _ := strconv.ParseUint(st[k], 10, 64); return n }
	addr, id := r.LeaderWithID()
	c.State, c.LeaderID, c.LeaderAddress = r.State().String(), string(id), string(addr)
	c.Term, c.CommitIndex, c.AppliedIndex = num("term"), num("commit_index"), r.AppliedIndex()
	c.LastLogIndex, c.LastLogTerm, c.LastSnapshotIndex = r.LastIndex(), num("last_log_term"), num("last_snapshot_index")
	c.LastContact, c.Raw = st["last_contact"], st
	if f := r.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			if srv.Suffrage == raft.Voter {
				c.Voters = append(c.Voters, string(srv.ID))
			} else {
				c.NonVoters = append(c.NonVoters, string(srv.ID))
			}
		}
	}
	c.NumPeers = max(0, len(c.Voters)+len(c.NonVoters)-1) // 0 while joining (empty configuration)
	return c
}

// HealthStatus is the detailed health of this node and of the cluster as this
// node sees it (GET /health/detailed).
type HealthStatus struct {
	// Healthy: this node runs, its state machine works and it knows a leader.
	Healthy        bool      `json:"healthy"`
	NodeID         string    `json:"node_id"`
	NodeName       string    `json:"node_name"`
	IsLeader       bool      `json:"is_leader"`
	NodeCount      int       `json:"node_count"`
	PartitionCount int       `json:"partition_count"`
	RaftState      string    `json:"raft_state"`
	LastSync       time.Time `json:"last_sync"`
	Uptime         string    `json:"uptime"`

	Ready         bool   `json:"ready"`
	ClusterStatus string `json:"cluster_status"` // healthy, degraded, critical, unknown
	Leader        string `json:"leader"`
	LeaderAddress string `json:"leader_address"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastLogIndex  uint64 `json:"last_log_index"`
	TableVersion  uint64 `json:"table_version"`
	Voters        int    `json:"voters"`
	NonVoters     int    `json:"non_voters"`
	// FailureTolerance is how many more failures the cluster survives.
	FailureTolerance FailureTolerance `json:"failure_tolerance"`
	// VoterIDs and NonVoterIDs are Raft's configuration as this node knows it.
	VoterIDs                  []string `json:"voter_ids"`
	NonVoterIDs               []string `json:"non_voter_ids"`
	UnhealthyNodeIDs          []string `json:"unhealthy_node_ids"`
	UnderReplicatedPartitions int      `json:"under_replicated_partitions"`
	UnownedPartitions         int      `json:"unowned_partitions"`
	// ClusterID is the cluster's identity ("" until this node knows it).
	ClusterID string `json:"cluster_id"`
	// Incarnation of this node's current life (0 until admitted).
	Incarnation uint64 `json:"incarnation,string"`
	// Membership is this node's own place: "joining", "member", "rejoining"
	// (found out it was removed, back as a new life soon), "removed",
	// "fenced" or "refused".
	Membership string   `json:"membership"`
	Problems   []string `json:"problems,omitempty"`
}

// FailureTolerance says how many more failures the cluster survives (the
// JSON object "failure_tolerance" of GET /health and /health/detailed).
type FailureTolerance = client.FailureTolerance

// failureTolerance: the voters' figure is autopilot's on the leader (it
// also knows each voter's last contact and log lag), and elsewhere it is
// derived from the committed health states, so every node can answer.
func (ck *ClusterKit) failureTolerance(v *raftfsm.View, rs httpgw.Consensus) FailureTolerance {
	if rs.LeaderID == "" {
		return FailureTolerance{} // without a leader, the next failure is not survived either
	}
	h := v.Health()
	ft := FailureTolerance{Nodes: h.NodeFailureTolerance()}
	if t := ck.stats.FailureTolerance(); t >= 0 && rs.State == raft.Leader.String() {
		ft.Voters = t
		return ft
	}
	healthy := len(rs.Voters)
	for _, id := range h.UnhealthyNodeIDs {
		if slices.Contains(rs.Voters, id) {
			healthy--
		}
	}
	ft.Voters = max(healthy-(len(rs.Voters)/2+1), 0)
	return ft
}

// HealthCheck reports the node's and the cluster's health truthfully.
func (ck *ClusterKit) HealthCheck() *HealthStatus {
	v := ck.fsm.View()
	rs := ck.raftStatus()
	h := v.Health()
	st := &HealthStatus{
		NodeID: ck.opts.NodeID, NodeName: ck.opts.NodeName, IsLeader: rs.State == raft.Leader.String(),
		NodeCount: len(v.Members()), PartitionCount: v.PartitionCount(), RaftState: rs.State,
		Uptime: time.Since(ck.createdAt).Round(time.Second).String(), ClusterStatus: h.Status,
		Leader: rs.LeaderID, LeaderAddress: rs.LeaderAddress, Term: rs.Term, CommitIndex: rs.CommitIndex,
		AppliedIndex: rs.AppliedIndex, LastLogIndex: rs.LastLogIndex, TableVersion: v.TableVersion(),
		Voters: len(rs.Voters), NonVoters: len(rs.NonVoters), VoterIDs: rs.Voters, NonVoterIDs: rs.NonVoters, UnhealthyNodeIDs: append([]string{}, h.UnhealthyNodeIDs...),
		UnderReplicatedPartitions: h.UnderReplicated, UnownedPartitions: h.Unowned,
		ClusterID: ck.ClusterID(), Incarnation: ck.membership().Incarnation, FailureTolerance: ck.failureTolerance(v, rs),
	}
	if m, ok := v.Member(ck.opts.NodeID); ok {
		st.LastSync = m.LastSeen
	}
	if !ck.running.Load() {
		st.Problems = append(st.Problems, "node is not running")
	}
	if err := ck.fsm.Err(); err != nil {
		st.Problems = append(st.Problems, err.Error())
	}
	if rs.LeaderID == "" {
		st.Problems = append(st.Problems, "no known leader")
		if ck.running.Load() {
			// Without a leader nothing can change: the cluster is critical
			// whatever its last committed state says.
			st.ClusterStatus = raftfsm.HealthCritical
		}
	}
	st.Healthy = len(st.Problems) == 0
	registered := ck.registered(v)
	st.Ready = st.Healthy && v.HasTable() && registered
	st.Membership = ck.membership().State
	if !v.HasTable() {
		st.Problems = append(st.Problems, "no partition table committed yet")
	}
	if !registered {
		st.Problems = append(st.Problems, ck.notMemberProblem())
	}
	return st
}

// notMemberProblem says why this node is not a member.
func (ck *ClusterKit) notMemberProblem() string {
	m := ck.membership()
	switch m.State {
	case actors.MemberRemoved:
		return fmt.Sprintf("removed from the cluster (%s, by %s at index %d)", m.Reason, m.RemovedBy, m.Index)
	case actors.MemberFenced:
		return "fenced: " + m.Reason
	case actors.MemberRefused:
		return "refused by the cluster: " + m.Reason
	case membershipRejoining:
		return "removed from the cluster; rejoining as a new life"
	}
	return "this node is not a member of the cluster"
}

// TableChecksum identifies the committed partition table (owners and epochs):
// nodes that applied the same table report the same value.
func (ck *ClusterKit) TableChecksum() uint64 { return ck.fsm.View().Checksum() }

// WaitTable waits until this node has applied a partition table of at least
// version (a Cluster.TableVersion, or the version a change returned) and
// returns the cluster then. It returns ctx.Err() when ctx ends first, and
// ErrStopped when the node stops.
func (ck *ClusterKit) WaitTable(ctx context.Context, version uint64) (*Cluster, error) {
	return ck.WaitCluster(ctx, func(c *Cluster) bool { return c.TableVersion >= version && c.TableVersion != 0 })
}

// WaitCluster waits until cond holds for the cluster as this node has
// applied it, checking now and after every committed change of members,
// configuration or table, and returns the cluster that satisfied it. cond
// must not block. It returns ctx.Err() when ctx ends first, and ErrStopped
// when the node stops.
func (ck *ClusterKit) WaitCluster(ctx context.Context, cond func(*Cluster) bool) (*Cluster, error) {
	if cond == nil {
		return nil, errorf(ErrInvalidOptions, "WaitCluster: nil condition")
	}
	for {
		t := ck.table()
		if c := t.cluster(); cond(c) {
			return c, nil
		}
		select {
		case <-t.src.Done(): // the next committed change
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ck.done:
			return nil, ErrStopped
		}
	}
}
