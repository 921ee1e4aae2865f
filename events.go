package clusterkit

import (
	"context"
	"fmt"
	"iter"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/messages"
)

// Seq orders events: the Raft index that caused the event, then its position
// among that entry's events. Every node delivers the same events with the
// same seqs in the same order.
type Seq struct {
	Index uint64 `json:"index,string"`
	Sub   uint32 `json:"sub"`
}

// Less orders seqs.
func (s Seq) Less(o Seq) bool { return s.Index < o.Index || (s.Index == o.Index && s.Sub < o.Sub) }

// String is "index.sub".
func (s Seq) String() string {
	return strconv.FormatUint(s.Index, 10) + "." + strconv.FormatUint(uint64(s.Sub), 10)
}

// EventKind is a set of event kinds (a bit mask), for WithKinds.
type EventKind uint16

// Event kinds. A subscribed actor receives the proto message of package
// messages named after each; Events and the On... callbacks get the Go
// structs below.
const (
	EventPartitionChange     EventKind = 1 << iota // *messages.PartitionChange
	EventNodeJoin                                  // *messages.NodeJoin
	EventNodeRejoin                                // *messages.NodeRejoin
	EventNodeLeave                                 // *messages.NodeLeave
	EventRebalanceStart                            // *messages.RebalanceStart
	EventRebalanceComplete                         // *messages.RebalanceComplete
	EventClusterHealthChange                       // *messages.ClusterHealthChange
	EventCustomDataChange                          // *messages.CustomDataChange

	EventAll = EventPartitionChange | EventNodeJoin | EventNodeRejoin | EventNodeLeave |
		EventRebalanceStart | EventRebalanceComplete | EventClusterHealthChange | EventCustomDataChange
)

// The kinds are the dispatcher's bits (a conversion, not a mapping): each
// line fails to compile if one differs.
var (
	_ = [1]struct{}{}[EventPartitionChange^EventKind(actors.KindPartitionChange)]
	_ = [1]struct{}{}[EventNodeJoin^EventKind(actors.KindNodeJoin)]
	_ = [1]struct{}{}[EventNodeRejoin^EventKind(actors.KindNodeRejoin)]
	_ = [1]struct{}{}[EventNodeLeave^EventKind(actors.KindNodeLeave)]
	_ = [1]struct{}{}[EventRebalanceStart^EventKind(actors.KindRebalanceStart)]
	_ = [1]struct{}{}[EventRebalanceComplete^EventKind(actors.KindRebalanceComplete)]
	_ = [1]struct{}{}[EventClusterHealthChange^EventKind(actors.KindClusterHealthChange)]
	_ = [1]struct{}{}[EventCustomDataChange^EventKind(actors.KindCustomDataChange)]
	_ = [1]struct{}{}[EventAll^EventKind(actors.KindAll)]
)

// String names the kind ("partition_change", ...); a set is names joined by
// "|".
func (k EventKind) String() string {
	var names []string
	for bit := EventKind(1); bit != 0 && bit <= EventAll; bit <<= 1 {
		if k&bit != 0 {
			if n, ok := actors.KindNames[actors.Kind(bit)]; ok {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// Event is one lifecycle event as Events yields it: Kind says which one of
// the pointer fields is set.
type Event struct {
	Kind EventKind
	Seq  Seq

	PartitionChange     *PartitionChangeEvent
	NodeJoin            *NodeJoinEvent
	NodeRejoin          *NodeRejoinEvent
	NodeLeave           *NodeLeaveEvent
	RebalanceStart      *RebalanceEvent
	RebalanceComplete   *RebalanceEvent
	ClusterHealthChange *ClusterHealthEvent
	CustomDataChange    *CustomDataChangeEvent
}

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
	// Action is what CopyToNode must do: PartitionLoad (copy the data from
	// CopyFromNodes, all ready owners, then acknowledge), PartitionBecomePrimary,
	// PartitionBecomeReplica or PartitionRelease (drop the data).
	Action string
	// State is CopyToNode's state after the change: "syncing" or "ready"
	// ("" after a release).
	State string
	// FromSnapshot: this node installed a snapshot instead of applying the
	// entries that made this change; the event states its own resulting
	// change (its seq shares the snapshot's index).
	FromSnapshot bool
	// Detail says why a copy ended without an acknowledgement:
	// "handoff_timeout_cancelled" or "handoff_timeout_forced".
	Detail string
}

// PartitionChange actions.
const (
	PartitionLoad          = "load"
	PartitionBecomePrimary = "become_primary"
	PartitionBecomeReplica = "become_replica"
	PartitionRelease       = "release"
)

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
	// Duration (RebalanceComplete only) is the time from the start of the
	// rebalance on the leader to the commit, here, of the step that finished
	// its hand-off (every copy acknowledged, every old owner released).
	Duration time.Duration
	// MovesPending (RebalanceStart) is the copies (partition, new owner)
	// the hand-off waits for; MovesDone (RebalanceComplete) the copies it
	// made, re-plans included.
	MovesPending int
	MovesDone    int
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
	node := &Node{ID: n.GetId(), Name: n.GetName(), IP: n.GetAddress(), Status: n.GetStatus(), Services: n.GetServices(),
		Incarnation: n.GetIncarnation(), Voter: n.GetVoter(), JoinedAt: ts(n.GetJoinedAtUnixNano()), LastSeen: ts(n.GetLastSeenUnixNano()),
		Zone: n.GetZone(), Weight: int(n.GetWeight()), Drained: n.GetDrained()}
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

func seqOf(e actors.SeqEvent) Seq { return Seq(actors.SeqOf(e)) }

// eventOf converts a delivered event into its Go value.
func eventOf(e *messages.Event) Event {
	out := Event{Kind: EventKind(actors.KindOf(e))}
	switch {
	case e.GetPartitionChange() != nil:
		c := e.GetPartitionChange()
		out.Seq = seqOf(c)
		out.PartitionChange = &PartitionChangeEvent{
			PartitionID: c.GetPartitionId(), CopyFromNodes: nodesOf(c.GetCopyFromNodes()), CopyToNode: nodeOf(c.GetCopyToNode()),
			ChangeReason: c.GetChangeReason(), OldPrimary: c.GetOldPrimary(), NewPrimary: c.GetNewPrimary(),
			Timestamp: ts(c.GetTimeUnixNano()), Seq: out.Seq, Epoch: c.GetEpoch(), Role: c.GetRole(),
			NoLiveSource: c.GetNoLiveSource(), Initial: c.GetInitial(),
			Action: c.GetAction(), State: c.GetState(), FromSnapshot: c.GetFromSnapshot(), Detail: c.GetDetail(),
		}
	case e.GetNodeJoin() != nil:
		j := e.GetNodeJoin()
		out.Seq = seqOf(j)
		out.NodeJoin = &NodeJoinEvent{Node: nodeOf(j.GetNode()), ClusterSize: int(j.GetClusterSize()), IsBootstrap: j.GetIsBootstrap(), Timestamp: ts(j.GetTimeUnixNano()), Seq: out.Seq}
	case e.GetNodeRejoin() != nil:
		r := e.GetNodeRejoin()
		out.Seq = seqOf(r)
		out.NodeRejoin = &NodeRejoinEvent{Node: nodeOf(r.GetNode()), OfflineDuration: time.Duration(r.GetOfflineDurationNanos()),
			LastSeenAt: ts(r.GetLastSeenUnixNano()), PartitionsBeforeLeave: r.GetPartitionsBeforeLeave(), Timestamp: ts(r.GetTimeUnixNano()), Seq: out.Seq}
	case e.GetNodeLeave() != nil:
		l := e.GetNodeLeave()
		out.Seq = seqOf(l)
		out.NodeLeave = &NodeLeaveEvent{Node: nodeOf(l.GetNode()), Reason: l.GetReason(), PartitionsOwned: l.GetPartitionsOwned(),
			PartitionsReplica: l.GetPartitionsReplica(), Timestamp: ts(l.GetTimeUnixNano()), Seq: out.Seq}
	case e.GetRebalanceStart() != nil:
		r := e.GetRebalanceStart()
		out.Seq = seqOf(r)
		out.RebalanceStart = &RebalanceEvent{Trigger: r.GetTrigger(), TriggerNodeID: r.GetTriggerNodeId(), PartitionsToMove: int(r.GetPartitionsToMove()),
			NodesAffected: r.GetNodesAffected(), Timestamp: ts(r.GetTimeUnixNano()), Seq: out.Seq, MovesPending: int(r.GetMovesPending())}
	case e.GetRebalanceComplete() != nil:
		r := e.GetRebalanceComplete()
		out.Seq = seqOf(r)
		out.RebalanceComplete = &RebalanceEvent{Trigger: r.GetTrigger(), TriggerNodeID: r.GetTriggerNodeId(), PartitionsToMove: int(r.GetPartitionsMoved()),
			NodesAffected: r.GetNodesAffected(), Timestamp: ts(r.GetTimeUnixNano()), Seq: out.Seq, Duration: time.Duration(r.GetDurationNanos()),
			MovesDone: int(r.GetMovesDone()), MovesPending: int(r.GetMovesPending())}
	case e.GetClusterHealthChange() != nil:
		h := e.GetClusterHealthChange()
		out.Seq = seqOf(h)
		out.ClusterHealthChange = &ClusterHealthEvent{HealthyNodes: int(h.GetHealthyNodes()), UnhealthyNodes: int(h.GetUnhealthyNodes()), TotalNodes: int(h.GetTotalNodes()),
			Status: h.GetStatus(), UnhealthyNodeIDs: h.GetUnhealthyNodeIds(), Timestamp: ts(h.GetTimeUnixNano()), PreviousStatus: h.GetPreviousStatus(),
			UnderReplicatedPartitions: int(h.GetUnderReplicatedPartitions()), UnownedPartitions: int(h.GetUnownedPartitions()), Seq: out.Seq}
	case e.GetCustomDataChange() != nil:
		c := e.GetCustomDataChange()
		out.Seq = seqOf(c)
		out.CustomDataChange = &CustomDataChangeEvent{Key: c.GetKey(), Value: c.GetValue(), Version: c.GetVersion(), Deleted: c.GetDeleted(), Timestamp: ts(c.GetTimeUnixNano()), Seq: out.Seq}
	}
	return out
}

// subscribeOptions is what SubscribeOptions set.
type subscribeOptions struct {
	filter actors.Filter
	buffer int
}

// SubscribeOption narrows a subscription (Subscribe, Events).
type SubscribeOption func(*subscribeOptions)

// WithKinds delivers only the given event kinds (default: all).
func WithKinds(kinds ...EventKind) SubscribeOption {
	return func(o *subscribeOptions) {
		for _, k := range kinds {
			o.filter.Kinds |= actors.Kind(k)
		}
	}
}

// OnlyMine delivers only the PartitionChange events whose CopyToNode is this
// node (other kinds are unaffected).
func OnlyMine() SubscribeOption {
	return func(o *subscribeOptions) { o.filter.OnlyMine = true }
}

// WithBuffer sets how many events Events holds for a consumer that has not
// read them yet (default DefaultEventBuffer; Subscribe ignores it).
func WithBuffer(n int) SubscribeOption {
	return func(o *subscribeOptions) { o.buffer = n }
}

// DefaultEventBuffer is Events' default buffer.
const DefaultEventBuffer = 1024

func subscribeOpts(opts []SubscribeOption) subscribeOptions {
	o := subscribeOptions{buffer: DefaultEventBuffer}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
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
	return ck.register(&actors.Subscribe{PID: pid, Filter: subscribeOpts(opts).filter}, nil)
}

// Unsubscribe stops delivering events to pid.
func (ck *ClusterKit) Unsubscribe(pid *actor.PID) error {
	if pid == nil {
		return errorf(ErrInvalidOptions, "Unsubscribe: nil PID")
	}
	return ck.register(&actors.Unsubscribe{PID: pid}, nil)
}

// Events returns this node's lifecycle events, in seq order, as an
// iterator: the same events, with the same seqs, that a subscribed actor
// receives and the On... callbacks get. It subscribes when called, so that
// Events called before Start gets every event of the node's life; range over
// the result once (a second range yields ErrInvalidOptions).
//
// The iteration ends when ctx ends or the loop breaks (with no error), or
// with an error: ErrStopped once the node has stopped (after the events it
// delivered), ErrSlowConsumer when the consumer fell more than WithBuffer
// events (default DefaultEventBuffer) behind. Events never holds up
// delivery to anyone else: a consumer that stops reading loses only its own
// stream, with an error that names the last seq it got, so it can re-read
// the state (GetCluster) and call Events again. The subscription ends with
// ctx, with the loop, or with the node, whichever comes first; an iterator
// never ranged over holds its subscription until ctx ends.
func (ck *ClusterKit) Events(ctx context.Context, opts ...SubscribeOption) iter.Seq2[Event, error] {
	o := subscribeOpts(opts)
	if o.buffer < 1 {
		err := errorf(ErrInvalidOptions, "Events: WithBuffer(%d) must be at least 1", o.buffer)
		return func(yield func(Event, error) bool) { yield(Event{}, err) }
	}
	ch := make(chan *messages.Event, o.buffer)
	overflow := make(chan struct{})
	handle := &actors.CallbackHandle{}
	err := ck.register(nil, &actors.RegisterCallback{Name: "events", Hook: "Events", Filter: o.filter, Handle: handle,
		Fn: func(e *messages.Event) {
			select {
			case ch <- e:
			default:
				// Full: this stream ends; nobody else waits for it.
				handle.Remove()
				close(overflow)
			}
		}})
	if err != nil {
		return func(yield func(Event, error) bool) { yield(Event{}, err) }
	}
	// No goroutine waits for ctx: the subscription ends in ctx's AfterFunc.
	stopWatch := context.AfterFunc(ctx, handle.Remove)
	var ranged atomic.Bool
	return func(yield func(Event, error) bool) {
		if ranged.Swap(true) {
			yield(Event{}, errorf(ErrInvalidOptions, "Events: an iterator is ranged over once; call Events again"))
			return
		}
		defer stopWatch()
		defer handle.Remove()
		var last Seq
		next := func(e *messages.Event) bool {
			ev := eventOf(e)
			last = ev.Seq
			return yield(ev, nil)
		}
		for {
			select {
			case e := <-ch: // what is buffered goes first
				if !next(e) {
					return
				}
				continue
			default:
			}
			select {
			case e := <-ch:
				if !next(e) {
					return
				}
			case <-overflow:
				if len(ch) == 0 {
					yield(Event{}, fmt.Errorf("%w: more than %d events unread after seq %v", ErrSlowConsumer, o.buffer, last))
					return
				}
			case <-ck.done:
				if len(ch) == 0 {
					yield(Event{}, ErrStopped)
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

// onEvent registers fn for events of kind and returns what removes it; hook
// is the On… function, name ends the callback actor's name.
func (ck *ClusterKit) onEvent(hook, name string, kind EventKind, fn func(Event)) (remove func()) {
	handle := &actors.CallbackHandle{}
	if err := ck.register(nil, &actors.RegisterCallback{Name: name, Hook: hook, Filter: actors.Filter{Kinds: actors.Kind(kind)}, Handle: handle,
		Fn: func(e *messages.Event) { fn(eventOf(e)) }}); err != nil {
		ck.log.Warn(hook+": callback not registered", "error", err)
	}
	return handle.Remove
}

// OnPartitionChange calls fn for every PartitionChange, in order, in its own
// actor: a slow fn delays only itself and a panic is logged and isolated. It
// returns a function that removes the callback: fn starts no new call once
// it has returned. Registering before Start gets every event of the node's
// life.
func (ck *ClusterKit) OnPartitionChange(fn func(*PartitionChangeEvent)) (remove func()) {
	return ck.onEvent("OnPartitionChange", "partition-change", EventPartitionChange, func(e Event) { fn(e.PartitionChange) })
}

// OnNodeJoin calls fn for every NodeJoin (see OnPartitionChange for the
// guarantees and the function it returns).
func (ck *ClusterKit) OnNodeJoin(fn func(*NodeJoinEvent)) (remove func()) {
	return ck.onEvent("OnNodeJoin", "node-join", EventNodeJoin, func(e Event) { fn(e.NodeJoin) })
}

// OnNodeRejoin calls fn for every NodeRejoin (see OnPartitionChange).
func (ck *ClusterKit) OnNodeRejoin(fn func(*NodeRejoinEvent)) (remove func()) {
	return ck.onEvent("OnNodeRejoin", "node-rejoin", EventNodeRejoin, func(e Event) { fn(e.NodeRejoin) })
}

// OnNodeLeave calls fn for every NodeLeave (see OnPartitionChange).
func (ck *ClusterKit) OnNodeLeave(fn func(*NodeLeaveEvent)) (remove func()) {
	return ck.onEvent("OnNodeLeave", "node-leave", EventNodeLeave, func(e Event) { fn(e.NodeLeave) })
}

// OnRebalanceStart calls fn when a rebalance starts (see OnPartitionChange).
func (ck *ClusterKit) OnRebalanceStart(fn func(*RebalanceEvent)) (remove func()) {
	return ck.onEvent("OnRebalanceStart", "rebalance-start", EventRebalanceStart, func(e Event) { fn(e.RebalanceStart) })
}

// OnRebalanceComplete calls fn when a rebalance's table is committed, with the
// time from the start of the rebalance on the leader to its commit here (see
// OnPartitionChange).
func (ck *ClusterKit) OnRebalanceComplete(fn func(*RebalanceEvent, time.Duration)) (remove func()) {
	return ck.onEvent("OnRebalanceComplete", "rebalance-complete", EventRebalanceComplete, func(e Event) {
		fn(e.RebalanceComplete, e.RebalanceComplete.Duration)
	})
}

// OnClusterHealthChange calls fn when the cluster's health status changes
// (see OnPartitionChange).
func (ck *ClusterKit) OnClusterHealthChange(fn func(*ClusterHealthEvent)) (remove func()) {
	return ck.onEvent("OnClusterHealthChange", "cluster-health", EventClusterHealthChange, func(e Event) { fn(e.ClusterHealthChange) })
}

// OnCustomDataChange calls fn for every custom-data write and delete (see
// OnPartitionChange).
func (ck *ClusterKit) OnCustomDataChange(fn func(*CustomDataChangeEvent)) (remove func()) {
	return ck.onEvent("OnCustomDataChange", "custom-data", EventCustomDataChange, func(e Event) { fn(e.CustomDataChange) })
}

func splitPort(addr string) (string, int, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	p, err := strconv.Atoi(port)
	return host, p, err == nil
}

// register subscribes an actor or a callback, now or, before Start, at start.
func (ck *ClusterKit) register(sub any, cb *actors.RegisterCallback) error {
	ck.mu.Lock()
	if ck.stopped {
		ck.mu.Unlock()
		return ErrStopped
	}
	if ck.root == nil {
		switch s := sub.(type) {
		case *actors.Subscribe:
			ck.pendingSubs = append(ck.pendingSubs, s)
		case *actors.Unsubscribe:
			ck.pendingSubs = removePending(ck.pendingSubs, s.PID)
		}
		if cb != nil {
			ck.pendingCallbacks = append(ck.pendingCallbacks, cb)
		}
		ck.mu.Unlock()
		return nil
	}
	root, hooks := ck.root, ck.children.Hooks
	ck.mu.Unlock()
	target, msg := hooks, sub
	if cb != nil {
		target, msg = root, cb
	}
	res, err := ck.system.Root.RequestFuture(target, msg, 5*time.Second).Result()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}

func removePending(subs []*actors.Subscribe, pid *actor.PID) []*actors.Subscribe {
	out := subs[:0]
	for _, s := range subs {
		if !s.PID.Equal(pid) {
			out = append(out, s)
		}
	}
	return out
}
