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
		Incarnation: n.Incarnation, Voter: n.Voter, JoinedAtUnixNano: unixNano(n.JoinedAt), LastSeenUnixNano: unixNano(n.LastSeen),
		Zone: n.Zone, Weight: uint32(n.Weight), Drained: n.Drained}
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
	if tableChanged(a) {
		l.table(a, now)
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
	case TriggerNodeJoin, TriggerNodeLeave, TriggerNodeRejoin, TriggerNodeDrain, TriggerNodeUndrain:
		return trigger
	default:
		return reasonRebalance
	}
}

// reasonPlannedStop is the change reason of the primaries a DrainNode hands
// over.
const reasonPlannedStop = "planned_stop"

// tableChanged reports whether the entry changed the partition table.
func tableChanged(a *Applied) bool {
	return a.Next.TableVersion() != a.Prev.TableVersion()
}

// reasonOf explains an entry's table change.
func reasonOf(a *Applied) string {
	c := &a.Change
	switch {
	case c.Left != nil:
		return TriggerNodeLeave
	case c.Drained != "":
		return reasonPlannedStop
	case c.Rebalance != nil:
		if sp := a.Prev.Span(); sp != nil && !c.Rebalance.GetPlan() {
			return changeReason(sp.GetTrigger())
		}
		return changeReason(c.Rebalance.GetTrigger())
	case a.Prev.Span() != nil:
		return changeReason(a.Prev.Span().GetTrigger())
	}
	return reasonRebalance
}

// ownerChange is one PartitionChange: what node id must do for partition n.
type ownerChange struct {
	n      int
	id     string
	action string
	detail string
}

// ownerChanges lists, partition by partition, what each owner of the
// partitions that changed between prev and next must do: load (a new owner,
// or one that must reload), become primary, become replica, or release (an
// owner that is still a member). only, when set, keeps one node's changes.
func ownerChanges(prev, next *View, reload []string, forced, cancelled map[uint32][]string, only string) []ownerChange {
	var out []ownerChange
	for n := range next.PartitionCount() {
		pa, na := prev.Assignment(n), next.Assignment(n)
		if pa == na && len(reload) == 0 {
			continue
		}
		before, after := pa.GetOwners(), na.GetOwners()
		var oldPrimary string
		if len(before) > 0 {
			oldPrimary = before[0]
		}
		for i, id := range after {
			if only != "" && id != only {
				continue
			}
			c := ownerChange{n: n, id: id}
			switch {
			case !slices.Contains(before, id) || slices.Contains(reload, id):
				c.action = ActionLoad
			case i == 0 && oldPrimary != id:
				c.action = ActionBecomePrimary
			case i > 0 && oldPrimary == id:
				c.action = ActionBecomeReplica
			case slices.Contains(forced[uint32(n)], id):
				c.action, c.detail = ActionBecomeReplica, DetailTimeoutForced
				if i == 0 {
					c.action = ActionBecomePrimary
				}
			default:
				continue
			}
			out = append(out, c)
		}
		for _, id := range before {
			if (only != "" && id != only) || slices.Contains(after, id) {
				continue
			}
			if _, member := next.Member(id); !member {
				continue // its NodeLeave says it all
			}
			c := ownerChange{n: n, id: id, action: ActionRelease}
			if slices.Contains(cancelled[uint32(n)], id) {
				c.detail = DetailTimeoutCancelled
			}
			out = append(out, c)
		}
	}
	return out
}

// partitionChange builds the event of one owner change.
func partitionChange(prev, next *View, c ownerChange, reason string) *messages.PartitionChange {
	na := next.Assignment(c.n)
	after := na.GetOwners()
	var from []*messages.NodeInfo
	if c.action == ActionLoad {
		for i, id := range after {
			if id == c.id || na.LoadEpoch(i) != 0 {
				continue // a loading owner is no source, nor is the node itself
			}
			if m, ok := next.Member(id); ok && m.Status == StatusActive {
				from = append(from, nodeInfo(m))
			}
		}
	}
	role, state := "", ""
	if i := slices.Index(after, c.id); i >= 0 {
		role, state = "replica", OwnerReady
		if i == 0 {
			role = "primary"
		}
		if na.LoadEpoch(i) != 0 {
			state = OwnerSyncing
		}
	}
	var oldPrimary, newPrimary string
	if b := prev.Owners(c.n); len(b) > 0 {
		oldPrimary = b[0]
	}
	if len(after) > 0 {
		newPrimary = after[0]
	}
	to, ok := next.Member(c.id)
	if !ok {
		to = &Node{ID: c.id}
	}
	return &messages.PartitionChange{
		PartitionId: keyhash.ID(uint32(c.n)), Partition: uint32(c.n),
		CopyFromNodes: from, CopyToNode: nodeInfo(to), ChangeReason: reason,
		OldPrimary: oldPrimary, NewPrimary: newPrimary, Epoch: na.GetEpoch(),
		Role: role, NoLiveSource: c.action == ActionLoad && len(from) == 0, Initial: !prev.HasTable(),
		Action: c.action, State: state, Detail: c.detail,
	}
}

// table emits, for an entry that changed the table: RebalanceStart when it
// opened a hand-off span, one PartitionChange per owner change, and
// RebalanceComplete when it closed the span.
func (l *eventList) table(a *Applied, now time.Time) {
	c := &a.Change
	prev, next := a.Prev, a.Next
	info := c.Rebalance
	if c.SpanOpened {
		span := next.Span()
		if span == nil {
			span = c.SpanClosed
		}
		i, s, ts := l.next()
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_RebalanceStart{RebalanceStart: &messages.RebalanceStart{
			Index: i, Sub: s, TimeUnixNano: ts, Trigger: span.GetTrigger(), TriggerNodeId: span.GetTriggerNodeId(),
			PartitionsToMove: span.GetPartitionsToMove(), NodesAffected: slices.Clone(span.GetNodesAffected()),
			MovesPending: uint32(pendingMoves(next, span)),
		}}})
	}
	reason := reasonOf(a)
	forced, cancelled := refSet(info.GetForced()), refSet(info.GetCancelled())
	for _, oc := range ownerChanges(prev, next, info.GetReload(), forced, cancelled, "") {
		pc := partitionChange(prev, next, oc, reason)
		pc.Index, pc.Sub, pc.TimeUnixNano = l.next()
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_PartitionChange{PartitionChange: pc}})
	}
	if span := c.SpanClosed; span != nil {
		var dur int64
		if st := span.GetStartedAtUnixNano(); st != 0 && now.UnixNano() > st {
			dur = now.UnixNano() - st
		}
		i, s, ts := l.next()
		l.out = append(l.out, &messages.Event{Kind: &messages.Event_RebalanceComplete{RebalanceComplete: &messages.RebalanceComplete{
			Index: i, Sub: s, TimeUnixNano: ts, Trigger: span.GetTrigger(), TriggerNodeId: span.GetTriggerNodeId(),
			PartitionsMoved: span.GetPartitionsToMove(), NodesAffected: slices.Clone(span.GetNodesAffected()), DurationNanos: dur,
			MovesDone: span.GetMovesPlanned(),
		}}})
	}
}

// pendingMoves counts the copies the span still waits for: owners of the
// targets that are not ready owners yet. A span that opened and closed in
// one entry had its moves in that entry.
func pendingMoves(next *View, span *messages.RebalanceSpan) int {
	n := 0
	for p := range next.PartitionCount() {
		a := next.Assignment(p)
		for _, id := range a.GetTarget() {
			if !readyOwner(a, id) {
				n++
			}
		}
	}
	if n == 0 && next.Span() == nil {
		return int(span.GetMovesPlanned())
	}
	return n
}

// snapshotSub numbers the events derived from a snapshot: they share the
// snapshot's index, after any sub an entry of that index could have used.
const snapshotSub = 1 << 30

// SnapshotEvents derives the PartitionChange events a node's own change
// implies when it installed a snapshot instead of applying the entries: the
// partitions it gained (load), lost (release) or whose role changed, marked
// FromSnapshot. prev is nil (or has no table) when the node held nothing.
func SnapshotEvents(prev, next *View, id string, index uint64, at time.Time) []*messages.Event {
	if next == nil || !next.HasTable() {
		return nil
	}
	if prev == nil || !prev.HasTable() {
		prev = &View{}
	}
	var out []*messages.Event
	for k, oc := range ownerChanges(prev, next, nil, nil, nil, id) {
		pc := partitionChange(prev, next, oc, reasonRebalance)
		pc.Index, pc.Sub, pc.TimeUnixNano = index, snapshotSub+uint32(k), at.UnixNano()
		pc.FromSnapshot, pc.Initial = true, false
		out = append(out, &messages.Event{Kind: &messages.Event_PartitionChange{PartitionChange: pc}})
	}
	return out
}
