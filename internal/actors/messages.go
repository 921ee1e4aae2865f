package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/clusterkit/clusterkit/messages"
)

// These local control messages carry Go values (PIDs, callbacks, tables) and
// never leave the process, so they are Go types rather than protobuf.

// GetChildren asks the root actor for its children; the reply is *Children.
type GetChildren struct{}

// Children are the PIDs of the root's children.
type Children struct {
	State, Partitions, Rebalancer, Health, Hooks, Ready *actor.PID
}

// Subscribe registers pid for events; the reply is *SubscribeAck. A second
// Subscribe of the same PID replaces its filter.
type Subscribe struct {
	PID    *actor.PID
	Filter Filter
}

// SubscribeAck confirms a Subscribe.
type SubscribeAck struct{}

// Unsubscribe removes pid's subscription; the reply is *SubscribeAck.
type Unsubscribe struct {
	PID *actor.PID
}

// RegisterCallback spawns an internal actor that calls Fn for every matching
// event, in order and panic-isolated; the reply is the actor's *actor.PID.
type RegisterCallback struct {
	Name string
	// Hook is the function that registered the callback (OnPartitionChange,
	// ...), to name it when it blocks Stop.
	Hook   string
	Filter Filter
	Fn     func(*messages.Event)
	// Handle, if set, removes the callback later (see CallbackHandle).
	Handle *CallbackHandle
}

// CallbackHandle removes a registered callback: after Remove returns, Fn
// starts no new call (one in progress finishes), and the callback's actor
// stops, which ends its subscription.
type CallbackHandle struct {
	mu      sync.Mutex
	removed bool
	pid     *actor.PID
	system  *actor.ActorSystem
}

// Remove removes the callback; it is idempotent and never waits.
func (h *CallbackHandle) Remove() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.removed {
		return
	}
	h.removed = true
	if h.pid != nil {
		h.system.Root.Stop(h.pid)
	}
}

// Removed reports whether Remove was called.
func (h *CallbackHandle) Removed() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.removed
}

// spawned records the callback's actor; a handle removed before the actor
// existed stops it now.
func (h *CallbackHandle) spawned(system *actor.ActorSystem, pid *actor.PID) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.system, h.pid = system, pid
	if h.removed {
		system.Root.Stop(pid)
	}
}

// EventBatch carries the events of one applied entry from partitions to hooks.
type EventBatch struct {
	Events []*messages.Event
}

// Fenced tells the state actor that a peer refused this process as stale: a
// newer life of its node ID is a member.
type Fenced struct {
	Reason, Source string
}

// LeaderActive tells the rebalancer that this node leads and its FSM is caught up.
type LeaderActive struct{}

// LeaderInactive tells the rebalancer that this node no longer leads.
type LeaderInactive struct{}

type leadershipChanged struct{}

type barrierDone struct {
	err   error
	index uint64 // of the barrier entry: the new leader's first committed entry it waited for
}

type rebalanceTick struct {
	gen uint64
}

// Filter selects events for a subscriber.
type Filter struct {
	// Kinds selects event kinds; 0 means all.
	Kinds Kind
	// OnlyMine drops PartitionChange events whose CopyToNode is another node.
	OnlyMine bool
}

// Kind is a bit set of event kinds.
type Kind uint16

// Event kinds.
const (
	KindPartitionChange Kind = 1 << iota
	KindNodeJoin
	KindNodeRejoin
	KindNodeLeave
	KindRebalanceStart
	KindRebalanceComplete
	KindClusterHealthChange
	KindCustomDataChange

	KindAll = KindPartitionChange | KindNodeJoin | KindNodeRejoin | KindNodeLeave |
		KindRebalanceStart | KindRebalanceComplete | KindClusterHealthChange | KindCustomDataChange
)

// KindNames lists each kind's name, as used in metrics and logs.
var KindNames = map[Kind]string{
	KindPartitionChange:     "partition_change",
	KindNodeJoin:            "node_join",
	KindNodeRejoin:          "node_rejoin",
	KindNodeLeave:           "node_leave",
	KindRebalanceStart:      "rebalance_start",
	KindRebalanceComplete:   "rebalance_complete",
	KindClusterHealthChange: "cluster_health_change",
	KindCustomDataChange:    "custom_data_change",
}

// eventKind is the descriptor of Event's oneof.
var eventKind = (&messages.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")

// kindField returns e's reflection and the oneof field that is set (or nil).
func kindField(e *messages.Event) (protoreflect.Message, protoreflect.FieldDescriptor) {
	m := e.ProtoReflect()
	return m, m.WhichOneof(eventKind)
}

// KindOf returns the kind of e. Kind bits follow the field numbers of
// Event's oneof (field n is bit n-1), so this needs no table to keep in sync.
func KindOf(e *messages.Event) Kind {
	_, fd := kindField(e)
	if fd == nil || fd.Number() > 16 {
		return 0
	}
	return Kind(1) << (fd.Number() - 1)
}

// Payload returns the concrete event message inside e (what user actors
// receive), or nil for an empty Event.
func Payload(e *messages.Event) SeqEvent {
	m, fd := kindField(e)
	if fd == nil {
		return nil
	}
	p, _ := m.Get(fd).Message().Interface().(SeqEvent)
	return p
}

// SeqEvent is implemented by every event message.
type SeqEvent interface {
	GetIndex() uint64
	GetSub() uint32
	GetTimeUnixNano() int64
}

// Seq orders events: the Raft index that caused it, then the position among
// that entry's events.
type Seq struct {
	Index uint64
	Sub   uint32
}

// SeqOf returns the seq of an event.
func SeqOf(e SeqEvent) Seq { return Seq{Index: e.GetIndex(), Sub: e.GetSub()} }

// Less orders seqs.
func (s Seq) Less(o Seq) bool {
	return s.Index < o.Index || (s.Index == o.Index && s.Sub < o.Sub)
}

// Match reports whether the filter selects e for node localID.
func (f Filter) Match(e *messages.Event, localID string) bool {
	k := KindOf(e)
	if f.Kinds != 0 && f.Kinds&k == 0 {
		return false
	}
	if f.OnlyMine && k == KindPartitionChange && e.GetPartitionChange().GetCopyToNode().GetId() != localID {
		return false
	}
	return true
}

// backoffStrategy restarts a failed child alone, after a delay that grows
// with its recent failures, so a crash loop cannot spin a core.
func backoffStrategy() actor.SupervisorStrategy {
	return actor.NewExponentialBackoffStrategy(10*time.Second, 20*time.Millisecond)
}
