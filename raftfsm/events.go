package raftfsm

import (
	"slices"
	"time"

	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/messages"
)

// Rebalance triggers and partition change reasons.
const (
	TriggerNodeJoin     = "node_join"
	TriggerNodeLeave    = "node_leave"
	TriggerNodeRejoin   = "node_rejoin"
	TriggerManual       = "manual"
	TriggerLeaderChange = "leader_change"

	reasonRebalance = "rebalance"
)

// Leave reasons.
const (
	LeaveGraceful      = "graceful_shutdown"
	LeaveHealthFailure = "health_check_failure"
	LeaveAdmin         = "removed_by_admin"
)

// nodeInfo converts a view node to its event form.
func nodeInfo(n *Node) *messages.NodeInfo {
	if n == nil {
		return nil
	}
	return &messages.NodeInfo{Id: n.ID, Name: n.Name, Address: n.IP, Services: n.Services, Status: n.Status,
		Incarnation: n.Incarnation, Voter: n.Voter, JoinedAtUnixNano: unixNano(n.JoinedAt), LastSeenUnixNano: unixNano(n.LastSeen)}
}

// unixNano is t in nanoseconds since the epoch, 0 for the zero time (whose
// UnixNano is undefined).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// LeaveEvent is the NodeLeave that the removal d derives from the log (the
// first event of its entry), for a node that learns of its own removal from
// another member, or before the entry reached its dispatcher.
func (d Departure) LeaveEvent() *messages.Event {
	return &messages.Event{Kind: &messages.Event_NodeLeave{NodeLeave: &messages.NodeLeave{
		Index: d.Index, TimeUnixNano: d.At.UnixNano(), Node: nodeInfo(&d.Node), Reason: d.Reason,
		PartitionsOwned: partitionIDs(d.PartitionsPrimary), PartitionsReplica: partitionIDs(d.PartitionsReplica),
	}}}
}

func partitionIDs(nums []uint32) []string {
	out := make([]string, len(nums))
	for i, n := range nums {
		out[i] = keyhash.ID(n)
	}
	return out
}

// eventList assigns seq (index, sub) and the timestamp while events are added.
type eventList struct {
	index uint64
	ts    int64
	out   []*messages.Event
}

func (l *eventList) next() (uint64, uint32, int64) { return l.index, uint32(len(l.out)), l.ts }

// Events derives, deterministically, the lifecycle events of one applied
// entry, in order, numbered (Index, 0), (Index, 1), ... now is only used for
// RebalanceComplete's duration (start on the leader to apply on this node).
func Events(a *Applied, now time.Time) []*messages.Event {
	if a.Err != nil || a.Restored {
		return nil
	}
	l := &eventList{index: a.Index}
	if !a.Time.IsZero() {
		l.ts = a.Time.UnixNano()
	}
	c := &a.Change
	if c.Joined != nil {
		i, s, ts := l.next()
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_NodeJoin{NodeJoin: &messages.NodeJoin{
			Index: i, Sub: s, TimeUnixNano: ts, Node: nodeInfo(c.Joined),
			ClusterSize: uint32(len(a.Next.Members())), IsBootstrap: c.IsBootstrap,
		}}})
	}
	if c.Rejoined != nil {
		i, s, ts := l.next()
		ev := &messages.NodeRejoin{
			Index: i, Sub: s, TimeUnixNano: ts, Node: nodeInfo(c.Rejoined),
			OfflineDurationNanos: int64(c.OfflineDuration), PartitionsBeforeLeave: partitionIDs(c.PartitionsBefore),
		}
		if !c.LastSeen.IsZero() {
			ev.LastSeenUnixNano = c.LastSeen.UnixNano()
		}
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_NodeRejoin{NodeRejoin: ev}})
	}
	if c.Left != nil {
		i, s, ts := l.next()
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_NodeLeave{NodeLeave: &messages.NodeLeave{
			Index: i, Sub: s, TimeUnixNano: ts, Node: nodeInfo(c.Left), Reason: c.LeaveReason,
			PartitionsOwned: partitionIDs(c.LeftPrimary), PartitionsReplica: partitionIDs(c.LeftReplica),
		}}})
	}
	if c.Rebalance != nil {
		l.rebalance(a, now)
	}
	if d := c.CustomData; d != nil {
		i, s, ts := l.next()
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_CustomDataChange{CustomDataChange: &messages.CustomDataChange{
			Index: i, Sub: s, TimeUnixNano: ts, Key: d.Key, Value: d.Value, Version: d.Version, Deleted: d.Deleted,
		}}})
	}
	if ph, nh := a.Prev.Health(), a.Next.Health(); ph.Status != nh.Status {
		i, s, ts := l.next()
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_ClusterHealthChange{ClusterHealthChange: &messages.ClusterHealthChange{
			Index: i, Sub: s, TimeUnixNano: ts, Status: nh.Status, PreviousStatus: ph.Status,
			HealthyNodes: uint32(nh.HealthyNodes), UnhealthyNodes: uint32(nh.UnhealthyNodes), TotalNodes: uint32(nh.TotalNodes),
			UnhealthyNodeIds: slices.Clone(nh.UnhealthyNodeIDs), UnderReplicatedPartitions: uint32(nh.UnderReplicated),
			UnownedPartitions: uint32(nh.Unowned),
		}}})
	}
	return l.out
}

func changeReason(trigger string) string {
	switch trigger {
	case TriggerNodeJoin, TriggerNodeLeave, TriggerNodeRejoin:
		return trigger
	default:
		return reasonRebalance
	}
}

// rebalance emits RebalanceStart, one PartitionChange per (partition, node
// that newly holds it or must reload it), and RebalanceComplete.
func (l *eventList) rebalance(a *Applied, now time.Time) {
	info := a.Change.Rebalance
	prev, next := a.Prev, a.Next
	reload := info.GetReload()
	initial := !prev.HasTable()
	reason := changeReason(info.GetTrigger())

	type gain struct {
		n     int
		owner int
	}
	var gains []gain
	affected := map[string]bool{}
	moved := 0
	for n := range next.PartitionCount() {
		before, after := prev.Owners(n), next.Owners(n)
		changed := false
		for i, id := range after {
			if !slices.Contains(before, id) || slices.Contains(reload, id) {
				gains = append(gains, gain{n, i})
				affected[id] = true
				changed = true
			}
		}
		for _, id := range before {
			if !slices.Contains(after, id) {
				affected[id] = true
				changed = true
			}
		}
		if changed {
			moved++
		}
	}
	nodes := make([]string, 0, len(affected))
	for id := range affected {
		nodes = append(nodes, id)
	}
	slices.Sort(nodes)

	i, s, ts := l.next()
	l.out = append(l.out, &messages.Event{Kind: &messages.Event_RebalanceStart{RebalanceStart: &messages.RebalanceStart{
		Index: i, Sub: s, TimeUnixNano: ts, Trigger: info.GetTrigger(), TriggerNodeId: info.GetTriggerNodeId(),
		PartitionsToMove: uint32(moved), NodesAffected: nodes,
	}}})
	for _, g := range gains {
		after := next.Owners(g.n)
		to := after[g.owner]
		var from []*messages.NodeInfo
		for _, id := range prev.Owners(g.n) {
			if id == to {
				continue // a reloading node is not a source of its own data
			}
			if m, ok := next.Member(id); ok && m.Status == StatusActive {
				from = append(from, nodeInfo(m))
			}
		}
		role := "replica"
		if g.owner == 0 {
			role = "primary"
		}
		toNode, _ := next.Member(to)
		var oldPrimary string
		if before := prev.Owners(g.n); len(before) > 0 {
			oldPrimary = before[0]
		}
		i, s, ts := l.next()
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_PartitionChange{PartitionChange: &messages.PartitionChange{
			Index: i, Sub: s, TimeUnixNano: ts,
			PartitionId: next.Partition(g.n).ID, Partition: uint32(g.n),
			CopyFromNodes: from, CopyToNode: nodeInfo(toNode), ChangeReason: reason,
			OldPrimary: oldPrimary, NewPrimary: after[0], Epoch: next.Partition(g.n).Epoch,
			Role: role, NoLiveSource: len(from) == 0, Initial: initial,
		}}})
	}
	var dur int64
	if st := info.GetStartedAtUnixNano(); st != 0 && now.UnixNano() > st {
		dur = now.UnixNano() - st
	}
	i, s, ts = l.next()
	l.out = append(l.out, &messages.Event{Kind: &messages.Event_RebalanceComplete{RebalanceComplete: &messages.RebalanceComplete{
		Index: i, Sub: s, TimeUnixNano: ts, Trigger: info.GetTrigger(), TriggerNodeId: info.GetTriggerNodeId(),
		PartitionsMoved: uint32(moved), NodesAffected: slices.Clone(nodes), DurationNanos: dur,
	}}})
}
