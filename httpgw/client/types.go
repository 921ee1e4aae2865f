package client

import (
	"time"
)

// Node is a cluster member. It has one shape everywhere the gateway shows a
// node: GET /cluster, /nodes, /nodes/{id}, the primary and replicas of
// /partitions/{id} and /locate, and every node inside an event.
type Node struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// IP is the node's advertise address, host:port (the reference library's
	// field name: it was ":8080" there too). Raft, HTTP and node-to-node
	// requests share it.
	IP string `json:"ip"`
	// Port is IP's port, for clients that want it as a number (0 when IP
	// has none).
	Port int `json:"port"`
	// Status is "active" or "suspect" (failure detection missed its probes).
	Status string `json:"status"`
	// Services are the application's addresses on this node by name
	// ("kv": "10.0.0.5:9080"); an empty object when it registered none.
	Services map[string]string `json:"services"`
	// Incarnation is the Raft index of the entry that admitted this life of
	// the node. It is a JSON string: earlier versions used nanoseconds,
	// which JavaScript numbers cannot hold exactly.
	Incarnation uint64 `json:"incarnation,string"`
	// Voter says whether the node votes in Raft (see max_voters).
	Voter bool `json:"voter"`
	// JoinedAt is when this life was admitted; LastSeen when the cluster
	// last knew it alive (both by the proposer's clock).
	JoinedAt time.Time `json:"joined_at"`
	LastSeen time.Time `json:"last_seen"`
	// Zone is the node's failure domain ("" = none); placement spreads the
	// owners of a partition and the voters over zones.
	Zone string `json:"zone"`
	// Weight is the node's relative capacity (0: it holds nothing).
	Weight int `json:"weight"`
	// Drained says an operator drained the node (POST /nodes/{id}/drain):
	// it holds nothing once the hand-offs are done, until undrained.
	Drained bool `json:"drained"`
}

// Partition is one partition of the table: its owners, primary first.
type Partition struct {
	// ID is "partition-<n>".
	ID           string   `json:"id"`
	PrimaryNode  string   `json:"primary_node"`
	ReplicaNodes []string `json:"replica_nodes"`
	// Epoch increases whenever the owner list changes; use it to fence writes.
	Epoch uint64 `json:"epoch"`
	// Owners lists the primary then the replicas, each with its hand-off
	// state: "syncing" (assigned, still loading) or "ready" (holds the data).
	Owners []PartitionOwner `json:"owners"`
}

// PartitionOwner is one owner of a partition and its hand-off state.
type PartitionOwner struct {
	ID    string `json:"id"`
	State string `json:"state"` // "syncing" or "ready"
}

// PlannedPartition is one partition a rebalance would change.
type PlannedPartition struct {
	PartitionID string   `json:"partition_id"`
	Current     []string `json:"current"` // owners now, primary first
	Target      []string `json:"target"`  // owners after the hand-off, primary first
	Add         []string `json:"add"`     // nodes that would load it
	Release     []string `json:"release"` // nodes that would drop it
}

// RebalancePlan is what the next rebalance would do: the body of
// POST /rebalance?dry_run=true.
type RebalancePlan struct {
	Partitions []PlannedPartition `json:"partitions"`
	// Moves counts the copies (partition, new owner); PrimaryChanges the
	// primary roles that change hands; Pending the copies a hand-off in
	// progress still waits for.
	Moves          int `json:"moves"`
	PrimaryChanges int `json:"primary_changes"`
	Pending        int `json:"pending"`
}

// PartitionMap holds the partitions by ID (the reference's shape).
type PartitionMap struct {
	Partitions map[string]*Partition `json:"partitions"`
}

// Config is the committed cluster configuration.
type Config struct {
	ClusterName       string `json:"cluster_name"`
	PartitionCount    int    `json:"partition_count"`
	ReplicationFactor int    `json:"replication_factor"`
	MaxVoters         int    `json:"max_voters"`
}

// Key hash algorithms and encodings of HashConfig.
const (
	// AlgorithmMD5 is the reference library's key hash (the default).
	AlgorithmMD5 = "md5"
	// AlgorithmXXH64 is xxHash64 with seed 0 (opt-in at bootstrap).
	AlgorithmXXH64 = "xxh64"
	// EncodingBigEndianUint32: the first 4 bytes of the digest read as a
	// big-endian unsigned 32-bit integer (md5).
	EncodingBigEndianUint32 = "big_endian_uint32"
	// EncodingUint64: the digest is the 64-bit integer xxHash64 returns
	// (its canonical big-endian byte form, all 8 bytes), taken modulo the
	// partition count before any truncation (xxh64).
	EncodingUint64 = "uint64"
)

// HashConfig tells a client how to map a key to its partition without asking
// a node: partition = encoding(algorithm(key)) % modulo, and its ID is
// fmt.Sprintf(format, partition). HashConfig.Partition implements it.
type HashConfig struct {
	// Algorithm is "md5" or "xxh64".
	Algorithm string `json:"algorithm"`
	// Encoding is how the digest becomes an integer: "big_endian_uint32"
	// (md5) or "uint64" (xxh64).
	Encoding string `json:"encoding"`
	// Modulo is the partition count.
	Modulo int `json:"modulo"`
	// Format is the partition ID's format, "partition-%d".
	Format string `json:"format"`
	// Formula is the whole mapping in one line, for people.
	Formula string `json:"formula"`
	// PartitionCount and PartitionIDFormat repeat Modulo and Format under
	// the names of earlier ClusterKit versions.
	PartitionCount    int    `json:"partition_count"`
	PartitionIDFormat string `json:"partition_id_format"`
}

// Cluster is the whole cluster as one document (the cluster member of
// GET /cluster).
type Cluster struct {
	// ID and Name are the cluster name (ID is the reference's field).
	ID   string `json:"id"`
	Name string `json:"name"`
	// ClusterID is the cluster's random 128-bit identity (32 hex digits),
	// minted at bootstrap: two clusters with one name still differ here.
	ClusterID    string        `json:"cluster_id"`
	Nodes        []Node        `json:"nodes"`
	PartitionMap *PartitionMap `json:"partition_map"`
	// Config and HashConfig are null before the cluster is bootstrapped.
	Config     *Config     `json:"config"`
	HashConfig *HashConfig `json:"hash_config"`
	// Version is the Raft index of the last change to the configuration,
	// the members or the table: the ETag of the read routes.
	Version      uint64 `json:"version"`
	TableVersion uint64 `json:"table_version"`
	// Health is "healthy", "degraded", "critical" or "unknown" (no table yet).
	Health string `json:"health"`
	// RebalancePaused is maintenance mode (POST /rebalance/pause): no new
	// copy is planned until POST /rebalance/resume.
	RebalancePaused bool `json:"rebalance_paused"`
}

// ClusterResponse is the body of GET /cluster. It keeps the reference's
// {"cluster": {...}} shape; hash_config also sits at the top level for
// simple clients.
type ClusterResponse struct {
	Cluster    *Cluster    `json:"cluster"`
	HashConfig *HashConfig `json:"hash_config"`
	// Leader is the Raft leader the answering node knows ("" = none).
	Leader string `json:"leader"`
	// NodeID is the answering node.
	NodeID string `json:"node_id"`
}

// NodesPage is the body of GET /nodes: members sorted by ID.
type NodesPage struct {
	Nodes   []Node `json:"nodes"`
	Total   int    `json:"total"`
	Offset  int    `json:"offset"`
	Limit   int    `json:"limit"`
	Version uint64 `json:"version"`
}

// PartitionsPage is the body of GET /partitions: partitions in number order.
type PartitionsPage struct {
	Partitions        []Partition `json:"partitions"`
	Total             int         `json:"total"`
	Offset            int         `json:"offset"`
	Limit             int         `json:"limit"`
	ReplicationFactor int         `json:"replication_factor"`
	TableVersion      uint64      `json:"table_version"`
	Version           uint64      `json:"version"`
}

// PartitionDetail is one partition with its owners as nodes: the body of
// GET /partitions/{id} and of GET /locate (which also sets Key), and what
// Router.Locate answers.
type PartitionDetail struct {
	// Key is the key asked for (GET /locate only).
	Key string `json:"key,omitempty"`
	// Partition is the partition ID, Number its n.
	Partition string `json:"partition"`
	Number    int    `json:"number"`
	Epoch     uint64 `json:"epoch"`
	// Primary is null when the partition has no owner.
	Primary      *Node  `json:"primary"`
	Replicas     []Node `json:"replicas"`
	TableVersion uint64 `json:"table_version"`
	// Explain says, when a placement constraint cannot be met, why the
	// owners are where they are ("2 zones for RF 3: ..."); absent otherwise.
	Explain []string `json:"explain,omitempty"`
}

// NodeLoad is one node's share of the table.
type NodeLoad struct {
	Primary int `json:"primary"`
	Replica int `json:"replica"`
	Total   int `json:"total"`
}

// PartitionStats is the body of GET /partitions/stats.
type PartitionStats struct {
	PartitionCount    int `json:"partition_count"`
	ReplicationFactor int `json:"replication_factor"`
	NodeCount         int `json:"node_count"`
	// Nodes maps every member's ID to its load.
	Nodes                     map[string]NodeLoad `json:"nodes"`
	MinPrimary                int                 `json:"min_primary"`
	MaxPrimary                int                 `json:"max_primary"`
	MinTotal                  int                 `json:"min_total"`
	MaxTotal                  int                 `json:"max_total"`
	UnderReplicatedPartitions int                 `json:"under_replicated_partitions"`
	UnownedPartitions         int                 `json:"unowned_partitions"`
	TableVersion              uint64              `json:"table_version"`
}

// Health is the body of GET /health (liveness).
type Health struct {
	// Status is "ok", "starting" (joining: alive, not ready) or "stopped"
	// (with status 503).
	Status    string `json:"status"`
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id"`
	// FailureTolerance is how many more failures the cluster survives, as
	// this node sees it (zeros while it knows no leader).
	FailureTolerance FailureTolerance `json:"failure_tolerance"`
}

// FailureTolerance says how many more failures a cluster survives.
type FailureTolerance struct {
	// Voters is how many more voters may fail with the cluster keeping its
	// quorum: on the leader autopilot's figure (it also counts a voter
	// that lags or has not been heard from as failed), elsewhere the
	// healthy voters beyond a quorum by the committed health states.
	Voters int `json:"voters"`
	// Nodes is how many more members may fail, whichever they are, with
	// every partition keeping a live owner that holds its data: the
	// fewest live ready owners of any partition, minus one.
	Nodes int `json:"nodes"`
}

// Removal says why a node is out of the cluster (GET /ready).
type Removal struct {
	// Reason is the removal's reason, "rejoining as a new life", the newer
	// life that fenced the node, or the refusal's code and message.
	Reason string `json:"reason"`
	// RemovedBy and Index: who committed the removal, at which Raft index
	// (left out when unknown).
	RemovedBy string `json:"removed_by,omitempty"`
	Index     uint64 `json:"index,omitempty"`
	// Rejoining is true while the node rejoins on its own as a new life.
	Rejoining bool `json:"rejoining"`
}

// Readiness is the body of GET /ready (status 200 when Ready, else 503).
type Readiness struct {
	Ready  bool   `json:"ready"`
	NodeID string `json:"node_id"`
	// ClusterStatus is "healthy", "degraded", "critical" or "unknown".
	ClusterStatus string `json:"cluster_status"`
	Leader        string `json:"leader"`
	TableVersion  uint64 `json:"table_version"`
	// Reasons lists why the node is not ready (left out when it is).
	Reasons []string `json:"reasons,omitempty"`
	// Removal is set when the node is removed, fenced or refused.
	Removal *Removal `json:"removal,omitempty"`
}

// DetailedHealth is the body of GET /health/detailed: this node and the
// cluster as this node sees it.
type DetailedHealth struct {
	// Healthy: this node runs, its state machine works and it knows a leader.
	Healthy        bool      `json:"healthy"`
	NodeID         string    `json:"node_id"`
	NodeName       string    `json:"node_name"`
	IsLeader       bool      `json:"is_leader"`
	NodeCount      int       `json:"node_count"`
	PartitionCount int       `json:"partition_count"`
	RaftState      string    `json:"raft_state"`
	LastSync       time.Time `json:"last_sync"`
	// Uptime is a Go duration string ("1m30s").
	Uptime string `json:"uptime"`

	Ready         bool   `json:"ready"`
	ClusterStatus string `json:"cluster_status"`
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
	FailureTolerance          FailureTolerance `json:"failure_tolerance"`
	VoterIDs                  []string         `json:"voter_ids"`
	NonVoterIDs               []string         `json:"non_voter_ids"`
	UnhealthyNodeIDs          []string         `json:"unhealthy_node_ids"`
	UnderReplicatedPartitions int              `json:"under_replicated_partitions"`
	UnownedPartitions         int              `json:"unowned_partitions"`
	ClusterID                 string           `json:"cluster_id"`
	// Incarnation of this node's current life ("0" until admitted).
	Incarnation uint64 `json:"incarnation,string"`
	// Membership is "joining", "member", "rejoining", "removed", "fenced"
	// or "refused".
	Membership string `json:"membership"`
	// Problems says what is wrong (left out when nothing is).
	Problems []string `json:"problems,omitempty"`
}

// Leader is the body of GET /consensus/leader.
type Leader struct {
	LeaderID      string `json:"leader_id"`
	LeaderAddress string `json:"leader_address"`
	Term          uint64 `json:"term"`
	// IsLeader: the answering node is the leader.
	IsLeader bool   `json:"is_leader"`
	NodeID   string `json:"node_id"`
}

// ConsensusStats is the body of GET /consensus/stats: this node's Raft state.
type ConsensusStats struct {
	// State is "Follower", "Candidate", "Leader" or "Shutdown".
	State             string `json:"state"`
	LeaderID          string `json:"leader_id"`
	LeaderAddress     string `json:"leader_address"`
	Term              uint64 `json:"term"`
	CommitIndex       uint64 `json:"commit_index"`
	AppliedIndex      uint64 `json:"applied_index"`
	LastLogIndex      uint64 `json:"last_log_index"`
	LastLogTerm       uint64 `json:"last_log_term"`
	LastSnapshotIndex uint64 `json:"last_snapshot_index"`
	// LastContact is raft's text ("never", "0", "12.5ms").
	LastContact string   `json:"last_contact"`
	Voters      []string `json:"voters"`
	NonVoters   []string `json:"non_voters"`
	NumPeers    int      `json:"num_peers"`
	// Raw is hashicorp/raft's Stats() as raft reports it.
	Raw map[string]string `json:"raw"`
}

// Metrics is the body of GET /metrics?format=json: the reference's fields
// plus consensus, event and queue counters of the answering node.
type Metrics struct {
	NodeCount      int       `json:"node_count"`
	PartitionCount int       `json:"partition_count"`
	RequestCount   int64     `json:"request_count"`
	ErrorCount     int64     `json:"error_count"`
	LastSync       time.Time `json:"last_sync"`
	IsLeader       bool      `json:"is_leader"`
	RaftState      string    `json:"raft_state"`
	UptimeSeconds  int64     `json:"uptime_seconds"`

	PrimaryPartitions int               `json:"primary_partitions"`
	ReplicaPartitions int               `json:"replica_partitions"`
	TableVersion      uint64            `json:"table_version"`
	Term              uint64            `json:"term"`
	CommitIndex       uint64            `json:"commit_index"`
	AppliedIndex      uint64            `json:"applied_index"`
	LastLogIndex      uint64            `json:"last_log_index"`
	ClusterHealth     string            `json:"cluster_health"`
	EventsPublished   map[string]uint64 `json:"events_published"`
	EventsDelivered   map[string]uint64 `json:"events_delivered"`
	EventsSuppressed  uint64            `json:"events_suppressed"`
	CallbackPanics    uint64            `json:"callback_panics"`
	Rebalances        uint64            `json:"rebalances"`
	// RebalanceMillis sums, over every rebalance, the time from its start on
	// the leader to its commit on this node.
	RebalanceMillis uint64           `json:"rebalance_ms_total"`
	Subscribers     int64            `json:"subscribers"`
	Proposals       uint64           `json:"proposals"`
	ProposalErrors  uint64           `json:"proposal_errors"`
	QueueLengths    map[string]int64 `json:"queue_lengths"`
	// Failure detection, counted on the leader that probed.
	SuspectNodes   int               `json:"suspect_nodes"`
	Probes         uint64            `json:"probes"`
	ProbeFailures  uint64            `json:"probe_failures"`
	Removals       uint64            `json:"health_removals"`
	ProbeLatencyMs map[string]uint64 `json:"probe_latency_ms_buckets"`
}

// ChangeResult is the body of a successful POST /leave, POST /rebalance and
// DELETE /nodes/{id}.
type ChangeResult struct {
	OK bool `json:"ok"`
	// NodeID is the node that answered (the removed one for DELETE /nodes/{id}).
	NodeID string `json:"node_id"`
	// Version is the state version after the change, as this node sees it
	// (it has applied the change before answering).
	Version uint64 `json:"version"`
	Message string `json:"message,omitempty"`
}

// TransferRequest is the optional JSON body of POST /leadership/transfer.
type TransferRequest struct {
	// TargetID is the voter to hand leadership to; empty lets Raft pick.
	TargetID string `json:"target_id"`
}

// TransferResult is the body of a successful POST /leadership/transfer.
type TransferResult struct {
	// Leader is the new leader's ID.
	Leader string `json:"leader"`
}

// KeysPage is the body of GET /custom-data: the keys, sorted.
type KeysPage struct {
	Keys   []string `json:"keys"`
	Total  int      `json:"total"`
	Offset int      `json:"offset"`
	Limit  int      `json:"limit"`
}

// WriteResult is the body of PUT and DELETE /custom-data/{key}.
type WriteResult struct {
	Key string `json:"key"`
	// Version is the key's new version (a write), or the Raft index of the
	// deletion.
	Version uint64 `json:"version"`
	Deleted bool   `json:"deleted,omitempty"`
}

// Value is a custom-data value with its version (GET /custom-data/{key}
// answers the raw bytes, with the version as its ETag).
type Value struct {
	Value   []byte
	Version uint64
}

// JoinMember is the node a POST /join admits.
type JoinMember struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
	// Services are the node's application addresses by name.
	Services map[string]string `json:"services,omitempty"`
	// Nonce is the joining process's nonce (its GET-free proof of identity:
	// the node's POST /internal/v1/ping answers it). A JSON string.
	Nonce uint64 `json:"nonce,string,omitempty"`
}

// JoinRequest is the body of POST /join. It is the protojson form of the
// node-to-node JoinRequest: unknown fields are refused.
type JoinRequest struct {
	Member *JoinMember `json:"member"`
}

// JoinResponse is the body of POST /join. Its protojson form leaves out
// fields with zero values, and 64-bit integers are strings.
type JoinResponse struct {
	Accepted      bool   `json:"accepted,omitempty"`
	Error         string `json:"error,omitempty"`
	Code          string `json:"code,omitempty"`
	LeaderID      string `json:"leader_id,omitempty"`
	LeaderAddress string `json:"leader_address,omitempty"`
	// Index is the Raft index of the committed registration.
	Index     uint64 `json:"index,string,omitempty"`
	ClusterID string `json:"cluster_id,omitempty"`
}
