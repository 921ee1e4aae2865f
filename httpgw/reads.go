package httpgw

import (
	"net/http"

	"github.com/clusterkit/clusterkit/raftfsm"
)

// health is liveness only: the process serves HTTP and its node runs.
func (g *Gateway) health(w http.ResponseWriter, r *http.Request) {
	st := g.b.Status()
	body := map[string]any{"status": "ok", "node_id": g.b.NodeID(), "cluster_id": g.b.ClusterID()}
	switch st.State {
	case "stopped":
		body["status"] = "stopped"
		g.write(w, r, http.StatusServiceUnavailable, body)
		return
	case "starting":
		// Alive, still joining: a liveness probe must not kill it.
		body["status"] = "starting"
	}
	g.write(w, r, http.StatusOK, body)
}

func (g *Gateway) detailed(w http.ResponseWriter, r *http.Request) {
	g.write(w, r, http.StatusOK, g.b.Detailed())
}

// ready is readiness: running, a member, a leader known and a table
// committed. A degraded cluster is still ready; its status is in the body.
func (g *Gateway) ready(w http.ResponseWriter, r *http.Request) {
	st, v := g.b.Status(), g.b.View()
	status := v.Health().Status
	if st.Leader == "" && st.Running {
		status = raftfsm.HealthCritical // as /health/detailed: nothing can change without a leader
	}
	body := map[string]any{
		"ready":          false,
		"node_id":        g.b.NodeID(),
		"cluster_status": status,
		"leader":         st.Leader,
		"table_version":  v.TableVersion(),
	}
	var reasons []string
	if !st.Running {
		reasons = append(reasons, "node is not running")
	}
	if st.Leader == "" {
		reasons = append(reasons, "no known leader")
	}
	if !v.HasTable() {
		reasons = append(reasons, "no partition table committed yet")
	}
	switch st.Membership {
	case "removed", "fenced", "refused":
		// The exact word first, for scripts; the details in "removal".
		reasons = append(reasons, st.Membership)
		body["removal"] = st.Removal
	default:
		if _, ok := v.Member(g.b.NodeID()); !ok {
			reasons = append(reasons, "this node is not a member")
		}
	}
	if len(reasons) > 0 {
		body["reasons"] = reasons
		g.write(w, r, http.StatusServiceUnavailable, body)
		return
	}
	body["ready"] = true
	g.write(w, r, http.StatusOK, body)
}

// ClusterResponse is the body of GET /cluster. It keeps the reference's
// {"cluster": {...}} shape; hash_config sits both inside the cluster and at
// the top level for simple clients.
type ClusterResponse struct {
	Cluster    *raftfsm.Cluster    `json:"cluster"`
	HashConfig *raftfsm.HashConfig `json:"hash_config"`
	Leader     string              `json:"leader"`
	NodeID     string              `json:"node_id"`
}

// cluster serves the whole cluster document.
func (g *Gateway) cluster(w http.ResponseWriter, r *http.Request) {
	v := g.b.View()
	if g.notModified(w, r, v) {
		return
	}
	c := v.Cluster()
	g.write(w, r, http.StatusOK, ClusterResponse{Cluster: c, HashConfig: c.HashConfig, Leader: g.b.Status().Leader, NodeID: g.b.NodeID()})
}

// NodesResponse is the body of GET /nodes.
type NodesResponse struct {
	Nodes   []raftfsm.Node `json:"nodes"`
	Total   int            `json:"total"`
	Offset  int            `json:"offset"`
	Limit   int            `json:"limit"`
	Version uint64         `json:"version"`
}

func (g *Gateway) nodes(w http.ResponseWriter, r *http.Request) {
	page, err := ParsePage(r.URL.Query())
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_pagination", err.Error())
		return
	}
	v := g.b.View()
	if g.notModified(w, r, v) {
		return
	}
	members := v.Members()
	from, to := page.Window(len(members))
	g.write(w, r, http.StatusOK, NodesResponse{
		Nodes: append([]raftfsm.Node{}, members[from:to]...), Total: len(members),
		Offset: page.Offset, Limit: page.Limit, Version: v.Version(),
	})
}

func (g *Gateway) node(w http.ResponseWriter, r *http.Request) {
	v := g.b.View()
	n, ok := v.Member(r.PathValue("id"))
	if !ok {
		g.fail(w, r, http.StatusNotFound, "unknown_node", "no member "+quote(r.PathValue("id")))
		return
	}
	if g.notModified(w, r, v) {
		return
	}
	g.write(w, r, http.StatusOK, n)
}

// PartitionsResponse is the body of GET /partitions.
type PartitionsResponse struct {
	Partitions        []raftfsm.Partition `json:"partitions"`
	Total             int                 `json:"total"`
	Offset            int                 `json:"offset"`
	Limit             int                 `json:"limit"`
	ReplicationFactor int                 `json:"replication_factor"`
	TableVersion      uint64              `json:"table_version"`
	Version           uint64              `json:"version"`
}

func (g *Gateway) partitions(w http.ResponseWriter, r *http.Request) {
	page, err := ParsePage(r.URL.Query())
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_pagination", err.Error())
		return
	}
	v := g.b.View()
	if !g.hasTable(w, r, v) || g.notModified(w, r, v) {
		return
	}
	parts := v.Partitions()
	from, to := page.Window(len(parts))
	g.write(w, r, http.StatusOK, PartitionsResponse{
		Partitions: append([]raftfsm.Partition{}, parts[from:to]...), Total: len(parts),
		Offset: page.Offset, Limit: page.Limit, ReplicationFactor: int(v.Config().GetReplicationFactor()),
		TableVersion: v.TableVersion(), Version: v.Version(),
	})
}

// PartitionDetail is the body of GET /partitions/{id} and GET /locate.
type PartitionDetail struct {
	Key          string         `json:"key,omitempty"`
	Partition    string         `json:"partition"`
	Number       int            `json:"number"`
	Epoch        uint64         `json:"epoch"`
	Primary      *raftfsm.Node  `json:"primary"`
	Replicas     []raftfsm.Node `json:"replicas"`
	TableVersion uint64         `json:"table_version"`
}

func detail(v *raftfsm.View, p *raftfsm.Partition) PartitionDetail {
	replicas := v.Replicas(p.Number())
	if replicas == nil {
		replicas = []raftfsm.Node{}
	}
	return PartitionDetail{
		Partition: p.ID, Number: p.Number(), Epoch: p.Epoch, Primary: v.Primary(p.Number()),
		Replicas: replicas, TableVersion: v.TableVersion(),
	}
}

// hasTable answers 503 not_ready until the first table is committed.
func (g *Gateway) hasTable(w http.ResponseWriter, r *http.Request, v *raftfsm.View) bool {
	if !v.HasTable() {
		g.fail(w, r, http.StatusServiceUnavailable, "not_ready", "no partition table committed yet")
		return false
	}
	return true
}

func (g *Gateway) partition(w http.ResponseWriter, r *http.Request) {
	v := g.b.View()
	if !g.hasTable(w, r, v) {
		return
	}
	n, err := ParsePartitionID(r.PathValue("id"), v.PartitionCount())
	if err != nil {
		g.fail(w, r, http.StatusNotFound, "unknown_partition", err.Error())
		return
	}
	if g.notModified(w, r, v) {
		return
	}
	g.write(w, r, http.StatusOK, detail(v, v.Partition(n)))
}

// locate answers which partition and owners hold a key.
func (g *Gateway) locate(w http.ResponseWriter, r *http.Request) {
	key, ok := first(r.URL.Query(), "key")
	switch {
	case !ok || key == "":
		g.fail(w, r, http.StatusBadRequest, "missing_key", "the key query parameter is required: /locate?key=user:123")
		return
	case len(key) > MaxKeyLength:
		g.fail(w, r, http.StatusBadRequest, "key_too_long", "keys are at most 4096 bytes")
		return
	}
	v := g.b.View()
	if !g.hasTable(w, r, v) || g.notModified(w, r, v) {
		return
	}
	d := detail(v, v.PartitionOf(key))
	d.Key = key
	g.write(w, r, http.StatusOK, d)
}

// NodeLoad is one node's share of the table in GET /partitions/stats.
type NodeLoad struct {
	Primary int `json:"primary"`
	Replica int `json:"replica"`
	Total   int `json:"total"`
}

// PartitionStats is the body of GET /partitions/stats.
type PartitionStats struct {
	PartitionCount            int                 `json:"partition_count"`
	ReplicationFactor         int                 `json:"replication_factor"`
	NodeCount                 int                 `json:"node_count"`
	Nodes                     map[string]NodeLoad `json:"nodes"`
	MinPrimary                int                 `json:"min_primary"`
	MaxPrimary                int                 `json:"max_primary"`
	MinTotal                  int                 `json:"min_total"`
	MaxTotal                  int                 `json:"max_total"`
	UnderReplicatedPartitions int                 `json:"under_replicated_partitions"`
	UnownedPartitions         int                 `json:"unowned_partitions"`
	TableVersion              uint64              `json:"table_version"`
}

func (g *Gateway) partitionStats(w http.ResponseWriter, r *http.Request) {
	v := g.b.View()
	if !g.hasTable(w, r, v) || g.notModified(w, r, v) {
		return
	}
	st := PartitionStats{
		PartitionCount: v.PartitionCount(), ReplicationFactor: int(v.Config().GetReplicationFactor()),
		NodeCount: len(v.Members()), Nodes: map[string]NodeLoad{}, TableVersion: v.TableVersion(),
		UnderReplicatedPartitions: v.Health().UnderReplicated, UnownedPartitions: v.Health().Unowned,
	}
	for _, m := range v.Members() {
		st.Nodes[m.ID] = NodeLoad{}
	}
	for _, owners := range v.OwnerTable() {
		for i, id := range owners {
			l := st.Nodes[id]
			if i == 0 {
				l.Primary++
			} else {
				l.Replica++
			}
			l.Total++
			st.Nodes[id] = l
		}
	}
	firstNode := true
	for _, l := range st.Nodes {
		if firstNode {
			st.MinPrimary, st.MaxPrimary, st.MinTotal, st.MaxTotal = l.Primary, l.Primary, l.Total, l.Total
			firstNode = false
			continue
		}
		st.MinPrimary, st.MaxPrimary = min(st.MinPrimary, l.Primary), max(st.MaxPrimary, l.Primary)
		st.MinTotal, st.MaxTotal = min(st.MinTotal, l.Total), max(st.MaxTotal, l.Total)
	}
	g.write(w, r, http.StatusOK, st)
}

// LeaderResponse is the body of GET /consensus/leader.
type LeaderResponse struct {
	LeaderID      string `json:"leader_id"`
	LeaderAddress string `json:"leader_address"`
	Term          uint64 `json:"term"`
	IsLeader      bool   `json:"is_leader"`
	NodeID        string `json:"node_id"`
}

func (g *Gateway) consensusLeader(w http.ResponseWriter, r *http.Request) {
	c := g.b.Consensus()
	if c.LeaderID == "" {
		g.fail(w, r, http.StatusServiceUnavailable, "no_leader", "this node knows no leader (election in progress or no quorum)")
		return
	}
	g.write(w, r, http.StatusOK, LeaderResponse{
		LeaderID: c.LeaderID, LeaderAddress: c.LeaderAddress, Term: c.Term,
		IsLeader: c.LeaderID == g.b.NodeID(), NodeID: g.b.NodeID(),
	})
}

func (g *Gateway) consensusStats(w http.ResponseWriter, r *http.Request) {
	g.write(w, r, http.StatusOK, g.b.Consensus())
}

func quote(s string) string { return `"` + truncate(s) + `"` }
