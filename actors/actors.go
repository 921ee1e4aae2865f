// Package actors is what an application's own actor needs to follow a
// ClusterKit node: spawn it in the node's actor system (ck.ActorSystem()),
// subscribe it (ck.Subscribe(pid, clusterkit.WithKinds(...))), and it
// receives the event messages of package messages, in seq order, exactly
// once each: *messages.PartitionChange, *messages.NodeJoin,
// *messages.NodeRejoin, *messages.NodeLeave, *messages.RebalanceStart,
// *messages.RebalanceComplete, *messages.ClusterHealthChange and
// *messages.CustomDataChange. They are shared between subscribers: read
// them, never modify them. The subscription ends when the actor stops or
// with ck.Unsubscribe.
//
// The node's own actors live in an internal package; the test harness for
// applications is actors/actortest.
package actors

import (
	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
)

// Event is what every event message has: its seq (the Raft index of the
// entry that caused it, and its position among that entry's events) and
// when the entry was proposed. A subscribed actor can handle every kind
// with one case:
//
//	case actors.Event:
//		last = actors.SeqOf(msg)
type Event interface {
	GetIndex() uint64
	GetSub() uint32
	GetTimeUnixNano() int64
}

// SeqOf returns the seq of an event message: the same value the On...
// callbacks and ck.Events report for the same event.
func SeqOf(e Event) clusterkit.Seq { return clusterkit.Seq{Index: e.GetIndex(), Sub: e.GetSub()} }

// KindOf returns the kind of an event message (0 for anything else).
func KindOf(msg any) clusterkit.EventKind {
	switch msg.(type) {
	case *messages.PartitionChange:
		return clusterkit.EventPartitionChange
	case *messages.NodeJoin:
		return clusterkit.EventNodeJoin
	case *messages.NodeRejoin:
		return clusterkit.EventNodeRejoin
	case *messages.NodeLeave:
		return clusterkit.EventNodeLeave
	case *messages.RebalanceStart:
		return clusterkit.EventRebalanceStart
	case *messages.RebalanceComplete:
		return clusterkit.EventRebalanceComplete
	case *messages.ClusterHealthChange:
		return clusterkit.EventClusterHealthChange
	case *messages.CustomDataChange:
		return clusterkit.EventCustomDataChange
	}
	return 0
}

// Every event message is an Event.
var _ = []Event{
	(*messages.PartitionChange)(nil), (*messages.NodeJoin)(nil), (*messages.NodeRejoin)(nil), (*messages.NodeLeave)(nil),
	(*messages.RebalanceStart)(nil), (*messages.RebalanceComplete)(nil), (*messages.ClusterHealthChange)(nil), (*messages.CustomDataChange)(nil),
}
