package clusterkit

import (
	"time"

	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Node is a cluster member. The values that the read methods return are
// shared between callers: treat them as read-only.
type Node struct {
	// ID is the member's NodeID, unique in the cluster and stable across restarts.
	ID string `json:"id"`
	// Name is its human-readable NodeName.
	Name string `json:"name"`
	// IP is the address its peers dial (host:port), named as in the
	// earlier library's /cluster document.
	IP string `json:"ip"`
	// Port is IP's port.
	Port int `json:"port"`
	// Status is "active", or "suspect" while failure detection doubts it.
	Status string `json:"status"`
	// Services are the addresses of the member's application services
	// (Options.Services).
	Services map[string]string `json:"services,omitempty"`
	// Incarnation is the Raft index that admitted the member's current
	// life; it grows on every rejoin (a string in JSON: it exceeds 2^53).
	Incarnation uint64 `json:"incarnation,string"`
	// Voter: the member votes in Raft (at most Options.MaxVoters do).
	Voter bool `json:"voter"`
	// JoinedAt is when the current life was admitted.
	JoinedAt time.Time `json:"joined_at"`
	// LastSeen is when failure detection last heard from it (zero when it
	// never doubted it).
	LastSeen time.Time `json:"last_seen"`
	// Zone is its failure domain (Options.Zone; "" = none).
	Zone string `json:"zone"`
	// Weight is its relative capacity (Options.Weight; 0 holds nothing).
	Weight int `json:"weight"`
	// Drained: an operator drained it (Drain); it holds nothing once the
	// hand-offs are done, until Undrain.
	Drained bool `json:"drained"`
}

// Partition is one partition of the routing table. The values that
// GetPartition returns are shared: treat them as read-only.
type Partition struct {
	// ID is "partition-<n>".
	ID string `json:"id"`
	// PrimaryNode is the ID of the primary owner ("" when none is alive).
	PrimaryNode string `json:"primary_node"`
	// ReplicaNodes are the IDs of the other owners.
	ReplicaNodes []string `json:"replica_nodes"`
	// Epoch increases whenever the owner list changes; use it to fence writes.
	Epoch uint64 `json:"epoch"`
	// Owners lists the primary then the replicas, each with its hand-off
	// state: "syncing" (assigned, still loading) or "ready" (holds the data).
	// The primary is always ready unless no owner is.
	Owners []PartitionOwner `json:"owners"`
	num    int
}

// PartitionOwner is one owner of a partition and its hand-off state.
type PartitionOwner struct {
	ID    string `json:"id"`
	State string `json:"state"` // OwnerSyncing or OwnerReady
}

// Owner states of PartitionOwner.State.
const (
	OwnerSyncing = raftfsm.OwnerSyncing
	OwnerReady   = raftfsm.OwnerReady
)

// Number returns the partition's index (the n of "partition-n").
func (p *Partition) Number() int { return p.num }

// Cluster is the whole cluster as GetCluster returns it (and GET /cluster
// serves it): the earlier library's shape plus identity, versions and health.
type Cluster struct {
	// ID is the cluster name (the earlier library's field); Name repeats it.
	ID   string `json:"id"`
	Name string `json:"name"`
	// ClusterID is the cluster's random 128-bit identity (32 hex digits),
	// minted at bootstrap: two clusters with one name still differ here.
	ClusterID    string        `json:"cluster_id"`
	Nodes        []Node        `json:"nodes"`
	PartitionMap *PartitionMap `json:"partition_map"`
	Config       *Config       `json:"config"`
	HashConfig   *HashConfig   `json:"hash_config"`
	// Version is the Raft index of the last change to config, members or table.
	Version uint64 `json:"version"`
	// TableVersion is the Raft index of the last partition-table change.
	TableVersion uint64 `json:"table_version"`
	// Health is "healthy", "degraded" or "critical".
	Health string `json:"health"`
	// RebalancePaused is maintenance mode (PauseRebalancing).
	RebalancePaused bool `json:"rebalance_paused"`
}

// PartitionMap holds the partitions by ID.
type PartitionMap struct {
	Partitions map[string]*Partition `json:"partitions"`
}

// Config is the committed cluster configuration, fixed at bootstrap.
type Config struct {
	ClusterName       string `json:"cluster_name"`
	PartitionCount    int    `json:"partition_count"`
	ReplicationFactor int    `json:"replication_factor"`
	MaxVoters         int    `json:"max_voters"`
}

// HashConfig tells any client how to map a key to a partition itself:
// format(encoding(algorithm(key)) % modulo).
type HashConfig struct {
	// Algorithm is "md5" (the default, the earlier library's) or "xxh64".
	Algorithm string `json:"algorithm"`
	// Encoding is how the digest becomes a number: "big_endian_uint32"
	// (md5: its first 4 bytes) or "uint64" (xxh64's 64-bit value).
	Encoding string `json:"encoding"`
	// Modulo is the partition count.
	Modulo int `json:"modulo"`
	// Format turns the number into the partition ID: "partition-%d".
	Format string `json:"format"`
	// Formula spells the whole function out for people.
	Formula string `json:"formula"`
	// PartitionCount and IDFormat repeat Modulo and Format (older names).
	PartitionCount int    `json:"partition_count"`
	IDFormat       string `json:"partition_id_format"`
}

// hashConfig describes algo for count partitions.
func hashConfig(algo keyhash.Algorithm, count int) *HashConfig {
	return &HashConfig{
		Algorithm: algo.String(), Encoding: algo.Encoding(), Modulo: count, Format: keyhash.IDFormat,
		Formula: algo.Description(), PartitionCount: count, IDFormat: keyhash.IDFormat,
	}
}

// table is the routing view in the facade's own types. It is built once per
// committed change (config, members or table) and then shared, so lookups
// stay lock-free and allocation-free.
type table struct {
	src      *raftfsm.View
	members  []Node
	parts    []Partition
	primary  []*Node
	replicas [][]Node
	nodes    [][]Node
}

// table returns the current view in facade types. The partitions actor
// builds it after each change (prebuildTable); a read that comes first
// builds it itself, so a caller always reads the view it has just waited for.
func (ck *ClusterKit) table() *table {
	v := ck.fsm.View()
	if t := ck.tbl.Load(); t != nil && t.src == v {
		return t
	}
	return ck.publishTable(buildTable(v))
}

// prebuildTable builds the table of a new view off the read path.
// A view already replaced by a newer one is skipped: the newer one's turn
// comes, and a burst of entries builds one table, not one each.
func (ck *ClusterKit) prebuildTable(v *raftfsm.View) {
	if ck.fsm.View() != v {
		return
	}
	ck.publishTable(buildTable(v))
}

// publishTable stores t unless a table of a newer view is there already,
// and returns the table to read.
func (ck *ClusterKit) publishTable(t *table) *table {
	for {
		old := ck.tbl.Load()
		if old != nil && old.src.Version() > t.src.Version() {
			return t // a newer one is published; t is still right for its caller
		}
		if ck.tbl.CompareAndSwap(old, t) {
			return t
		}
	}
}

func buildTable(v *raftfsm.View) *table {
	t := &table{src: v}
	t.members = make([]Node, len(v.Members()))
	byID := make(map[string]*Node, len(t.members))
	for i, m := range v.Members() {
		t.members[i] = nodeFrom(m)
		byID[m.ID] = &t.members[i]
	}
	fsmParts := v.Partitions()
	t.parts = make([]Partition, len(fsmParts))
	t.primary = make([]*Node, len(fsmParts))
	t.replicas = make([][]Node, len(fsmParts))
	t.nodes = make([][]Node, len(fsmParts))
	// One backing array for every partition's owners: a table of 1024
	// partitions is a handful of allocations, not thousands.
	total := 0
	for i := range fsmParts {
		total += len(v.Nodes(i))
	}
	owners := make([]Node, 0, total)
	states := make([]PartitionOwner, 0, total)
	for i := range fsmParts {
		p := &fsmParts[i]
		fromState := len(states)
		for _, o := range p.Owners {
			states = append(states, PartitionOwner(o))
		}
		t.parts[i] = Partition{ID: p.ID, PrimaryNode: p.PrimaryNode, ReplicaNodes: p.ReplicaNodes, Epoch: p.Epoch, num: p.Number(),
			Owners: states[fromState:len(states):len(states)]}
		t.primary[i] = byID[p.PrimaryNode]
		from := len(owners)
		for _, n := range v.Nodes(i) {
			owners = append(owners, *byID[n.ID])
		}
		t.nodes[i] = owners[from:len(owners):len(owners)]
		if len(t.nodes[i]) > 0 && t.primary[i] != nil {
			t.replicas[i] = t.nodes[i][1:] // Nodes is the primary, then the replicas
		} else {
			t.replicas[i] = t.nodes[i]
		}
	}
	return t
}

func nodeFrom(n raftfsm.Node) Node {
	return Node{ID: n.ID, Name: n.Name, IP: n.IP, Port: n.Port, Status: n.Status, Services: n.Services,
		Incarnation: n.Incarnation, Voter: n.Voter, JoinedAt: n.JoinedAt, LastSeen: n.LastSeen,
		Zone: n.Zone, Weight: n.Weight, Drained: n.Drained}
}

// cluster builds the Cluster document of t (a fresh value the caller owns;
// nodes and partitions inside are shared read-only).
func (t *table) cluster() *Cluster {
	v := t.src
	c := &Cluster{
		Nodes:        t.members,
		PartitionMap: &PartitionMap{Partitions: make(map[string]*Partition, len(t.parts))},
		Version:      v.Version(),
		TableVersion: v.TableVersion(),
		Health:       v.Health().Status,

		RebalancePaused: v.RebalancePaused(),
	}
	if c.Nodes == nil {
		c.Nodes = []Node{}
	}
	for i := range t.parts {
		c.PartitionMap.Partitions[t.parts[i].ID] = &t.parts[i]
	}
	if cfg := v.Config(); cfg != nil {
		c.ID, c.Name, c.ClusterID = cfg.GetClusterName(), cfg.GetClusterName(), cfg.GetClusterId()
		c.Config = &Config{
			ClusterName:       cfg.GetClusterName(),
			PartitionCount:    int(cfg.GetPartitionCount()),
			ReplicationFactor: int(cfg.GetReplicationFactor()),
			MaxVoters:         int(cfg.GetMaxVoters()),
		}
		c.HashConfig = hashConfig(keyhash.Algorithm(cfg.GetKeyHash()), int(cfg.GetPartitionCount()))
	}
	return c
}
