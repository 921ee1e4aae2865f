package clusterkit

import (
	"net"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/actors"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Node is a cluster member (read-only: values are shared with the routing table).
type Node = raftfsm.Node

// Partition is a partition of the routing table (read-only: shared).
type Partition = raftfsm.Partition

// Cluster is the cluster document of GetCluster and GET /cluster.
type Cluster = raftfsm.Cluster

// PartitionMap holds the partitions by ID.
type PartitionMap = raftfsm.PartitionMap

// Config is the committed cluster configuration.
type Config = raftfsm.Config

// HashConfig describes the key -> partition function.
type HashConfig = raftfsm.HashConfig

// Seq orders events: the Raft index that caused the event, then its position
// among that entry's events. Every node delivers the same events with the
// same seqs in the same order.
type Seq = actors.Seq

// EventKind selects event kinds in Subscribe.
type EventKind = actors.Kind

// Event kinds. The proto message a subscribed actor receives is named after each.
const (
	EventPartitionChange     = actors.KindPartitionChange     // *messages.PartitionChange
	EventNodeJoin            = actors.KindNodeJoin            // *messages.NodeJoin
	EventNodeRejoin          = actors.KindNodeRejoin          // *messages.NodeRejoin
	EventNodeLeave           = actors.KindNodeLeave           // *messages.NodeLeave
	EventRebalanceStart      = actors.KindRebalanceStart      // *messages.RebalanceStart
	EventRebalanceComplete   = actors.KindRebalanceComplete   // *messages.RebalanceComplete
	EventClusterHealthChange = actors.KindClusterHealthChange // *messages.ClusterHealthChange
	EventCustomDataChange    = actors.KindCustomDataChange    // *messages.CustomDataChange
	EventAll                 = actors.KindAll
)

// PartitionChangeEvent tells CopyToNode that it newly holds PartitionID and
// should copy the data from CopyFromNodes.
type PartitionChangeEvent struct {
	PartitionID   string
	CopyFromNodes []*Node // live nodes that held the partition before
	CopyToNode    *Node   // the node that needs the data
	ChangeReason  string  // "node_join", "node_leave", "node_rejoin", "rebalance"
	OldPrimary    string
	NewPrimary    string
	Timestamp     time.Time
	// Beyond the reference:
	Seq          Seq
	Epoch        uint64
	Role         string // "primary" or "replica"
	NoLiveSource bool   // CopyFromNodes is empty: no live node has the data
	Initial      bool   // first assignment of the partition: there is no data yet
}

// NodeJoinEvent: a brand new node joined.
type NodeJoinEvent struct {
	Node        *Node
	ClusterSize int
	IsBootstrap bool
	Timestamp   time.Time
	Seq         Seq
}

// NodeRejoinEvent: a known node came back (restarted) with a new incarnation.
type NodeRejoinEvent struct {
	Node                  *Node
	OfflineDuration       time.Duration
	LastSeenAt            time.Time
	PartitionsBeforeLeave []string
	Timestamp             time.Time
	Seq                   Seq
}

// NodeLeaveEvent: a member was removed.
type NodeLeaveEvent struct {
	Node              *Node
	Reason            string // "health_check_failure", "graceful_shutdown", "removed_by_admin"
	PartitionsOwned   []string
	PartitionsReplica []string
	Timestamp         time.Time
	Seq               Seq
}

// RebalanceEvent describes a rebalance (start and completion).
type RebalanceEvent struct {
	Trigger          string // "node_join", "node_leave", "node_rejoin", "manual", "leader_change"
	TriggerNodeID    string
	PartitionsToMove int
	NodesAffected    []string
	Timestamp        time.Time
	Seq              Seq
}

// ClusterHealthEvent: the cluster's health status changed.
type ClusterHealthEvent struct {
	HealthyNodes     int
	UnhealthyNodes   int
	TotalNodes       int
	Status           string // "healthy", "degraded", "critical"
	UnhealthyNodeIDs []string
	Timestamp        time.Time
	// Beyond the reference:
	PreviousStatus            string
	UnderReplicatedPartitions int
	UnownedPartitions         int
	Seq                       Seq
}

// CustomDataChangeEvent: a custom-data key was written or deleted.
type CustomDataChangeEvent struct {
	Key       string
	Value     []byte
	Version   uint64
	Deleted   bool
	Timestamp time.Time
	Seq       Seq
}

func ts(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func nodeOf(n *messages.NodeInfo) *Node {
	if n == nil {
		return nil
	}
	node := &Node{ID: n.GetId(), Name: n.GetName(), IP: n.GetAddress(), Status: n.GetStatus(), Services: n.GetServices()}
	if _, port, ok := splitPort(node.IP); ok {
		node.Port = port
	}
	return node
}

func nodesOf(ns []*messages.NodeInfo) []*Node {
	out := make([]*Node, len(ns))
	for i, n := range ns {
		out[i] = nodeOf(n)
	}
	return out
}

func seqOf(e actors.SeqEvent) Seq { return actors.SeqOf(e) }

func partitionChangeEvent(e *messages.PartitionChange) *PartitionChangeEvent {
	return &PartitionChangeEvent{
		PartitionID: e.GetPartitionId(), CopyFromNodes: nodesOf(e.GetCopyFromNodes()), CopyToNode: nodeOf(e.GetCopyToNode()),
		ChangeReason: e.GetChangeReason(), OldPrimary: e.GetOldPrimary(), NewPrimary: e.GetNewPrimary(),
		Timestamp: ts(e.GetTimeUnixNano()), Seq: seqOf(e), Epoch: e.GetEpoch(), Role: e.GetRole(),
		NoLiveSource: e.GetNoLiveSource(), Initial: e.GetInitial(),
	}
}

func rebalanceEvent(trigger, node string, n uint32, affected []string, t int64, s Seq) *RebalanceEvent {
	return &RebalanceEvent{Trigger: trigger, TriggerNodeID: node, PartitionsToMove: int(n), NodesAffected: affected, Timestamp: ts(t), Seq: s}
}

// SubscribeOption narrows a subscription.
type SubscribeOption func(*actors.Filter)

// WithKinds delivers only the given event kinds (default: all).
func WithKinds(kinds ...EventKind) SubscribeOption {
	return func(f *actors.Filter) {
		for _, k := range kinds {
			f.Kinds |= k
		}
	}
}

// OnlyMine delivers only the PartitionChange events whose CopyToNode is this
// node (other kinds are unaffected).
func OnlyMine() SubscribeOption {
	return func(f *actors.Filter) { f.OnlyMine = true }
}

// Subscribe delivers lifecycle events to pid, an actor of ck.ActorSystem(),
// as the proto messages of package messages (*messages.PartitionChange, ...),
// in seq order. Messages are shared between subscribers: do not modify them.
// The subscription ends when the actor stops or with Unsubscribe. Subscribing
// before Start receives every event of the node's life.
func (ck *ClusterKit) Subscribe(pid *actor.PID, opts ...SubscribeOption) error {
	if pid == nil {
		return errorf(ErrInvalidOptions, "Subscribe: nil PID")
	}
	var f actors.Filter
	for _, o := range opts {
		o(&f)
	}
	return ck.register(&actors.Subscribe{PID: pid, Filter: f}, nil)
}

// Unsubscribe stops delivering events to pid.
func (ck *ClusterKit) Unsubscribe(pid *actor.PID) error {
	if pid == nil {
		return errorf(ErrInvalidOptions, "Unsubscribe: nil PID")
	}
	return ck.register(&actors.Unsubscribe{PID: pid}, nil)
}

// onEvent registers fn for events of kind; hook is the On… function, name
// ends the callback actor's name.
func (ck *ClusterKit) onEvent(hook, name string, kind EventKind, fn func(*messages.Event)) {
	_ = ck.register(nil, &actors.RegisterCallback{Name: name, Hook: hook, Filter: actors.Filter{Kinds: kind}, Fn: fn})
}

// OnPartitionChange calls fn for every PartitionChange, in order, in its own
// actor: a slow fn delays only itself and a panic is logged and isolated.
func (ck *ClusterKit) OnPartitionChange(fn func(*PartitionChangeEvent)) {
	ck.onEvent("OnPartitionChange", "partition-change", EventPartitionChange, func(e *messages.Event) { fn(partitionChangeEvent(e.GetPartitionChange())) })
}

// OnNodeJoin calls fn for every NodeJoin (see OnPartitionChange for the guarantees).
func (ck *ClusterKit) OnNodeJoin(fn func(*NodeJoinEvent)) {
	ck.onEvent("OnNodeJoin", "node-join", EventNodeJoin, func(e *messages.Event) {
		j := e.GetNodeJoin()
		fn(&NodeJoinEvent{Node: nodeOf(j.GetNode()), ClusterSize: int(j.GetClusterSize()), IsBootstrap: j.GetIsBootstrap(), Timestamp: ts(j.GetTimeUnixNano()), Seq: seqOf(j)})
	})
}

// OnNodeRejoin calls fn for every NodeRejoin (see OnPartitionChange for the guarantees).
func (ck *ClusterKit) OnNodeRejoin(fn func(*NodeRejoinEvent)) {
	ck.onEvent("OnNodeRejoin", "node-rejoin", EventNodeRejoin, func(e *messages.Event) {
		r := e.GetNodeRejoin()
		fn(&NodeRejoinEvent{Node: nodeOf(r.GetNode()), OfflineDuration: time.Duration(r.GetOfflineDurationNanos()),
			LastSeenAt: ts(r.GetLastSeenUnixNano()), PartitionsBeforeLeave: r.GetPartitionsBeforeLeave(), Timestamp: ts(r.GetTimeUnixNano()), Seq: seqOf(r)})
	})
}

// OnNodeLeave calls fn for every NodeLeave (see OnPartitionChange for the guarantees).
func (ck *ClusterKit) OnNodeLeave(fn func(*NodeLeaveEvent)) {
	ck.onEvent("OnNodeLeave", "node-leave", EventNodeLeave, func(e *messages.Event) {
		l := e.GetNodeLeave()
		fn(&NodeLeaveEvent{Node: nodeOf(l.GetNode()), Reason: l.GetReason(), PartitionsOwned: l.GetPartitionsOwned(),
			PartitionsReplica: l.GetPartitionsReplica(), Timestamp: ts(l.GetTimeUnixNano()), Seq: seqOf(l)})
	})
}

// OnRebalanceStart calls fn when a rebalance starts (see OnPartitionChange for the guarantees).
func (ck *ClusterKit) OnRebalanceStart(fn func(*RebalanceEvent)) {
	ck.onEvent("OnRebalanceStart", "rebalance-start", EventRebalanceStart, func(e *messages.Event) {
		r := e.GetRebalanceStart()
		fn(rebalanceEvent(r.GetTrigger(), r.GetTriggerNodeId(), r.GetPartitionsToMove(), r.GetNodesAffected(), r.GetTimeUnixNano(), seqOf(r)))
	})
}

// OnRebalanceComplete calls fn when a rebalance's table is committed, with the
// time from the start of the rebalance on the leader to its commit here.
func (ck *ClusterKit) OnRebalanceComplete(fn func(*RebalanceEvent, time.Duration)) {
	ck.onEvent("OnRebalanceComplete", "rebalance-complete", EventRebalanceComplete, func(e *messages.Event) {
		r := e.GetRebalanceComplete()
		fn(rebalanceEvent(r.GetTrigger(), r.GetTriggerNodeId(), r.GetPartitionsMoved(), r.GetNodesAffected(), r.GetTimeUnixNano(), seqOf(r)),
			time.Duration(r.GetDurationNanos()))
	})
}

// OnClusterHealthChange calls fn when the cluster's health status changes.
func (ck *ClusterKit) OnClusterHealthChange(fn func(*ClusterHealthEvent)) {
	ck.onEvent("OnClusterHealthChange", "cluster-health", EventClusterHealthChange, func(e *messages.Event) {
		h := e.GetClusterHealthChange()
		fn(&ClusterHealthEvent{HealthyNodes: int(h.GetHealthyNodes()), UnhealthyNodes: int(h.GetUnhealthyNodes()), TotalNodes: int(h.GetTotalNodes()),
			Status: h.GetStatus(), UnhealthyNodeIDs: h.GetUnhealthyNodeIds(), Timestamp: ts(h.GetTimeUnixNano()), PreviousStatus: h.GetPreviousStatus(),
			UnderReplicatedPartitions: int(h.GetUnderReplicatedPartitions()), UnownedPartitions: int(h.GetUnownedPartitions()), Seq: seqOf(h)})
	})
}

// OnCustomDataChange calls fn for every custom-data write and delete.
func (ck *ClusterKit) OnCustomDataChange(fn func(*CustomDataChangeEvent)) {
	ck.onEvent("OnCustomDataChange", "custom-data", EventCustomDataChange, func(e *messages.Event) {
		c := e.GetCustomDataChange()
		fn(&CustomDataChangeEvent{Key: c.GetKey(), Value: c.GetValue(), Version: c.GetVersion(), Deleted: c.GetDeleted(), Timestamp: ts(c.GetTimeUnixNano()), Seq: seqOf(c)})
	})
}

func splitPort(addr string) (string, int, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	p, err := strconv.Atoi(port)
	return host, p, err == nil
}
