package httpgw

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// health is liveness only: the process serves HTTP and its node runs.
func (g *Gateway) health(w http.ResponseWriter, r *http.Request) {
	st := g.b.Status()
	body := client.Health{Status: "ok", NodeID: g.b.NodeID(), ClusterID: g.b.ClusterID(), FailureTolerance: st.FailureTolerance}
	switch st.State {
	case "stopped":
		body.Status = "stopped"
		g.write(w, r, http.StatusServiceUnavailable, body)
		return
	case "starting":
		// Alive, still joining: a liveness probe must not kill it.
		body.Status = "starting"
	}
	g.write(w, r, http.StatusOK, body)
}

func (g *Gateway) detailed(w http.ResponseWriter, r *http.Request) {
	d := g.b.Detailed()
	if d == nil {
		g.fail(w, r, http.StatusInternalServerError, "internal", "no health report")
		return
	}
	g.write(w, r, http.StatusOK, d)
}

// ready is readiness: running, a member, a leader known and a table
// committed. A degraded cluster is still ready; its status is in the body.
func (g *Gateway) ready(w http.ResponseWriter, r *http.Request) {
	st, v := g.b.Status(), g.b.View()
	status := v.Health().Status
	if st.Leader == "" && st.Running {
		status = raftfsm.HealthCritical // as /health/detailed: nothing can change without a leader
	}
	body := client.Readiness{NodeID: g.b.NodeID(), ClusterStatus: status, Leader: st.Leader, TableVersion: v.TableVersion()}
	if !st.Running {
		body.Reasons = append(body.Reasons, "node is not running")
	}
	if st.Leader == "" {
		body.Reasons = append(body.Reasons, "no known leader")
	}
	if !v.HasTable() {
		body.Reasons = append(body.Reasons, "no partition table committed yet")
	}
	switch st.Membership {
	case "removed", "fenced", "refused":
		// The exact word first, for scripts; the details in "removal".
		body.Reasons = append(body.Reasons, st.Membership)
		body.Removal = st.Removal
	default:
		if _, ok := v.Member(g.b.NodeID()); !ok {
			body.Reasons = append(body.Reasons, "this node is not a member")
		}
	}
	if len(body.Reasons) > 0 {
		g.write(w, r, http.StatusServiceUnavailable, body)
		return
	}
	body.Ready = true
	g.write(w, r, http.StatusOK, body)
}

// nodeJSON is a member in its one JSON shape.
func nodeJSON(n *raftfsm.Node) client.Node {
	services := n.Services
	if services == nil {
		services = map[string]string{} // always an object, never null
	}
	return client.Node{
		ID: n.ID, Name: n.Name, IP: n.IP, Port: n.Port, Status: n.Status, Services: services,
		Incarnation: n.Incarnation, Voter: n.Voter, JoinedAt: n.JoinedAt, LastSeen: n.LastSeen,
		Zone: n.Zone, Weight: n.Weight, Drained: n.Drained,
	}
}

func nodesJSON(ns []raftfsm.Node) []client.Node {
	out := make([]client.Node, len(ns))
	for i := range ns {
		out[i] = nodeJSON(&ns[i])
	}
	return out
}

// eventNodeJSON is a node of an event in the same shape as a member.
func eventNodeJSON(n *messages.NodeInfo) *client.Node {
	if n == nil {
		return nil
	}
	services := n.GetServices()
	if services == nil {
		services = map[string]string{}
	}
	node := &client.Node{
		ID: n.GetId(), Name: n.GetName(), IP: n.GetAddress(), Status: n.GetStatus(), Services: services,
		Incarnation: n.GetIncarnation(), Voter: n.GetVoter(),
		JoinedAt: unixTime(n.GetJoinedAtUnixNano()), LastSeen: unixTime(n.GetLastSeenUnixNano()),
		Zone: n.GetZone(), Weight: int(n.GetWeight()), Drained: n.GetDrained(),
	}
	if _, port, err := net.SplitHostPort(node.IP); err == nil {
		node.Port, _ = strconv.Atoi(port)
	}
	return node
}

// unixTime is ns nanoseconds since the epoch in UTC, the zero time for 0.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func partitionJSON(p *raftfsm.Partition) client.Partition {
	replicas := p.ReplicaNodes
	if replicas == nil {
		replicas = []string{}
	}
	owners := make([]client.PartitionOwner, 0, len(p.Owners))
	for _, o := range p.Owners {
		owners = append(owners, client.PartitionOwner{ID: o.ID, State: o.State})
	}
	return client.Partition{ID: p.ID, PrimaryNode: p.PrimaryNode, ReplicaNodes: replicas, Epoch: p.Epoch, Owners: owners}
}

// hashConfig describes the committed key hash for clients that map keys
// themselves; nil before bootstrap.
func hashConfig(v *raftfsm.View) *client.HashConfig {
	cfg := v.Config()
	if cfg == nil {
		return nil
	}
	algo := keyhash.Algorithm(cfg.GetKeyHash())
	n := int(cfg.GetPartitionCount())
	return &client.HashConfig{
		Algorithm: algo.String(), Encoding: algo.Encoding(), Modulo: n, Format: keyhash.IDFormat,
		Formula: algo.Description(), PartitionCount: n, PartitionIDFormat: keyhash.IDFormat,
	}
}

// clusterJSON is the whole cluster document of v.
func clusterJSON(v *raftfsm.View) *client.Cluster {
	c := &client.Cluster{
		Nodes:        nodesJSON(v.Members()),
		PartitionMap: &client.PartitionMap{Partitions: make(map[string]*client.Partition, v.PartitionCount())},
		Version:      v.Version(),
		TableVersion: v.TableVersion(),
		Health:       v.Health().Status,
		HashConfig:   hashConfig(v),

		RebalancePaused: v.RebalancePaused(),
	}
	for _, p := range v.Partitions() {
		pj := partitionJSON(&p)
		c.PartitionMap.Partitions[p.ID] = &pj
	}
	if cfg := v.Config(); cfg != nil {
		c.ID, c.Name, c.ClusterID = cfg.GetClusterName(), cfg.GetClusterName(), cfg.GetClusterId()
		c.Config = &client.Config{
			ClusterName:       cfg.GetClusterName(),
			PartitionCount:    int(cfg.GetPartitionCount()),
			ReplicationFactor: int(cfg.GetReplicationFactor()),
			MaxVoters:         int(cfg.GetMaxVoters()),
		}
	}
	return c
}

// cluster serves the whole cluster document.
func (g *Gateway) cluster(w http.ResponseWriter, r *http.Request) {
	v := g.b.View()
	if g.notModified(w, r, v) {
		return
	}
	c := clusterJSON(v)
	g.write(w, r, http.StatusOK, client.ClusterResponse{Cluster: c, HashConfig: c.HashConfig, Leader: g.b.Status().Leader, NodeID: g.b.NodeID()})
}

func (g *Gateway) nodes(w http.ResponseWriter, r *http.Request) {
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_pagination", err.Error())
		return
	}
	v := g.b.View()
	if g.notModified(w, r, v) {
		return
	}
	members := v.Members()
	from, to := pg.window(len(members))
	g.write(w, r, http.StatusOK, client.NodesPage{
		Nodes: nodesJSON(members[from:to]), Total: len(members),
		Offset: pg.Offset, Limit: pg.Limit, Version: v.Version(),
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
	g.write(w, r, http.StatusOK, nodeJSON(n))
}

func (g *Gateway) partitions(w http.ResponseWriter, r *http.Request) {
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_pagination", err.Error())
		return
	}
	v := g.b.View()
	if !g.hasTable(w, r, v) || g.notModified(w, r, v) {
		return
	}
	parts := v.Partitions()
	from, to := pg.window(len(parts))
	page := make([]client.Partition, 0, to-from)
	for i := from; i < to; i++ {
		page = append(page, partitionJSON(&parts[i]))
	}
	g.write(w, r, http.StatusOK, client.PartitionsPage{
		Partitions: page, Total: len(parts),
		Offset: pg.Offset, Limit: pg.Limit, ReplicationFactor: int(v.Config().GetReplicationFactor()),
		TableVersion: v.TableVersion(), Version: v.Version(),
	})
}

func (g *Gateway) detail(v *raftfsm.View, p *raftfsm.Partition) client.PartitionDetail {
	d := client.PartitionDetail{
		Partition: p.ID, Number: p.Number(), Epoch: p.Epoch,
		Replicas: nodesJSON(v.Replicas(p.Number())), TableVersion: v.TableVersion(),
	}
	if primary := v.Primary(p.Number()); primary != nil {
		n := nodeJSON(primary)
		d.Primary = &n
	}
	d.Explain = g.explain(v, p)
	return d
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
	n, err := parsePartitionID(r.PathValue("id"), v.PartitionCount())
	if err != nil {
		g.fail(w, r, http.StatusNotFound, "unknown_partition", err.Error())
		return
	}
	if g.notModified(w, r, v) {
		return
	}
	g.write(w, r, http.StatusOK, g.detail(v, v.Partition(n)))
}

// locate answers which partition and owners hold a key.
func (g *Gateway) locate(w http.ResponseWriter, r *http.Request) {
	key, ok := first(r.URL.Query(), "key")
	switch {
	case !ok || key == "":
		g.fail(w, r, http.StatusBadRequest, "missing_key", "the key query parameter is required: /locate?key=user:123")
		return
	case len(key) > maxKeyLength:
		g.fail(w, r, http.StatusBadRequest, "key_too_long", "keys are at most 4096 bytes")
		return
	}
	v := g.b.View()
	if !g.hasTable(w, r, v) || g.notModified(w, r, v) {
		return
	}
	d := g.detail(v, v.PartitionOf(key))
	d.Key = key
	g.write(w, r, http.StatusOK, d)
}

func (g *Gateway) partitionStats(w http.ResponseWriter, r *http.Request) {
	v := g.b.View()
	if !g.hasTable(w, r, v) || g.notModified(w, r, v) {
		return
	}
	st := client.PartitionStats{
		PartitionCount: v.PartitionCount(), ReplicationFactor: int(v.Config().GetReplicationFactor()),
		NodeCount: len(v.Members()), Nodes: map[string]client.NodeLoad{}, TableVersion: v.TableVersion(),
		UnderReplicatedPartitions: v.Health().UnderReplicated, UnownedPartitions: v.Health().Unowned,
	}
	for _, m := range v.Members() {
		st.Nodes[m.ID] = client.NodeLoad{}
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

func (g *Gateway) consensusLeader(w http.ResponseWriter, r *http.Request) {
	c := g.b.Consensus()
	if c.LeaderID == "" {
		g.fail(w, r, http.StatusServiceUnavailable, "no_leader", "this node knows no leader (election in progress or no quorum)")
		return
	}
	g.write(w, r, http.StatusOK, client.Leader{
		LeaderID: c.LeaderID, LeaderAddress: c.LeaderAddress, Term: c.Term,
		IsLeader: c.LeaderID == g.b.NodeID(), NodeID: g.b.NodeID(),
	})
}

func (g *Gateway) consensusStats(w http.ResponseWriter, r *http.Request) {
	g.write(w, r, http.StatusOK, g.b.Consensus())
}

func quote(s string) string { return `"` + truncate(s) + `"` }
