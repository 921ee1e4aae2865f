package client

import (
	"time"
)

// Event kinds: the SSE event name of each record of GET /events, the kind
// field of Event, and the names that GET /events?kinds= accepts.
const (
	KindPartitionChange     = "partition_change"
	KindNodeJoin            = "node_join"
	KindNodeRejoin          = "node_rejoin"
	KindNodeLeave           = "node_leave"
	KindRebalanceStart      = "rebalance_start"
	KindRebalanceComplete   = "rebalance_complete"
	KindClusterHealthChange = "cluster_health_change"
	KindCustomDataChange    = "custom_data_change"
)

// Event is one lifecycle event: the data of each GET /events record, and one
// line of examples/node -events. Exactly one of the kind-specific members is
// set, the one that Kind names.
type Event struct {
	// Seq orders events: "<index>.<sub>", the Raft index that caused the
	// event and its position among that entry's events. It is the SSE id;
	// resume after it with WatchOptions.Since (or Last-Event-ID).
	Seq string `json:"seq"`
	// Kind is one of the Kind constants.
	Kind  string `json:"kind"`
	Index uint64 `json:"index"`
	Sub   uint32 `json:"sub"`
	// Time is when the proposer committed the change (its clock).
	Time time.Time `json:"time"`

	PartitionChange     *PartitionChange     `json:"partition_change,omitempty"`
	NodeJoin            *NodeJoin            `json:"node_join,omitempty"`
	NodeRejoin          *NodeRejoin          `json:"node_rejoin,omitempty"`
	NodeLeave           *NodeLeave           `json:"node_leave,omitempty"`
	RebalanceStart      *RebalanceStart      `json:"rebalance_start,omitempty"`
	RebalanceComplete   *RebalanceComplete   `json:"rebalance_complete,omitempty"`
	ClusterHealthChange *ClusterHealthChange `json:"cluster_health_change,omitempty"`
	CustomDataChange    *CustomDataChange    `json:"custom_data_change,omitempty"`
}

// PartitionChange tells CopyToNode that it newly holds a partition.
type PartitionChange struct {
	PartitionID string `json:"partition_id"`
	Partition   int    `json:"partition"`
	// CopyFromNodes are the live nodes that held the partition before.
	CopyFromNodes []Node `json:"copy_from_nodes"`
	CopyToNode    *Node  `json:"copy_to_node"`
	// ChangeReason is "node_join", "node_leave", "node_rejoin" or "rebalance".
	ChangeReason string `json:"change_reason"`
	OldPrimary   string `json:"old_primary"`
	NewPrimary   string `json:"new_primary"`
	Epoch        uint64 `json:"epoch"`
	// Role is "primary" or "replica": CopyToNode's role now.
	Role string `json:"role"`
	// NoLiveSource: CopyFromNodes is empty, no live node has the data.
	NoLiveSource bool `json:"no_live_source"`
	// Initial: the partition's first assignment, there is no data anywhere.
	Initial bool `json:"initial"`
}

// NodeJoin: a brand new node joined.
type NodeJoin struct {
	Node        *Node `json:"node"`
	ClusterSize int   `json:"cluster_size"`
	IsBootstrap bool  `json:"is_bootstrap"`
}

// NodeRejoin: a known node came back with a new incarnation.
type NodeRejoin struct {
	Node *Node `json:"node"`
	// OfflineDurationMs is how long the node was away, in milliseconds.
	OfflineDurationMs float64 `json:"offline_duration_ms"`
	// LastSeen is when the cluster last knew its previous life alive.
	LastSeen              time.Time `json:"last_seen"`
	PartitionsBeforeLeave []string  `json:"partitions_before_leave"`
}

// NodeLeave: a member was removed.
type NodeLeave struct {
	Node *Node `json:"node"`
	// Reason is "health_check_failure", "graceful_shutdown" or "removed_by_admin".
	Reason            string   `json:"reason"`
	PartitionsOwned   []string `json:"partitions_owned"`
	PartitionsReplica []string `json:"partitions_replica"`
}

// RebalanceStart opens a rebalance; its PartitionChange events follow.
type RebalanceStart struct {
	// Trigger is "node_join", "node_leave", "node_rejoin", "manual" or
	// "leader_change".
	Trigger          string   `json:"trigger"`
	TriggerNodeID    string   `json:"trigger_node_id"`
	PartitionsToMove int      `json:"partitions_to_move"`
	NodesAffected    []string `json:"nodes_affected"`
}

// RebalanceComplete closes a rebalance.
type RebalanceComplete struct {
	Trigger         string   `json:"trigger"`
	TriggerNodeID   string   `json:"trigger_node_id"`
	PartitionsMoved int      `json:"partitions_moved"`
	NodesAffected   []string `json:"nodes_affected"`
	// DurationMs runs from the start of the rebalance on the leader to its
	// commit on the answering node, in milliseconds.
	DurationMs float64 `json:"duration_ms"`
}

// ClusterHealthChange: the cluster's health status changed.
type ClusterHealthChange struct {
	// Status and PreviousStatus are "healthy", "degraded" or "critical".
	Status           string   `json:"status"`
	PreviousStatus   string   `json:"previous_status"`
	HealthyNodes     int      `json:"healthy_nodes"`
	UnhealthyNodes   int      `json:"unhealthy_nodes"`
	TotalNodes       int      `json:"total_nodes"`
	UnhealthyNodeIDs []string `json:"unhealthy_node_ids"`
	// Partitions with fewer live owners than the replication factor, and
	// with none.
	UnderReplicatedPartitions int `json:"under_replicated_partitions"`
	UnownedPartitions         int `json:"unowned_partitions"`
}

// CustomDataChange: a custom-data key was written or deleted.
type CustomDataChange struct {
	Key string `json:"key"`
	// Value is the new value (base64 in JSON); empty for a deletion.
	Value   []byte `json:"value"`
	Version uint64 `json:"version"`
	Deleted bool   `json:"deleted"`
}
