package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
)

// recorder is the demo's user actor: it receives every lifecycle event of
// its node as a protobuf message, in commit order, and keeps them so the
// narration can wait for a particular one.
type recorder struct {
	mu      sync.Mutex
	events  []proto.Message
	changed chan struct{} // closed and replaced on every event
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) subscribe(ck *clusterkit.ClusterKit) error {
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(r.receive))
	return ck.Subscribe(pid) // before Start: it sees this node's own join
}

func (r *recorder) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.PartitionChange, *messages.NodeJoin, *messages.NodeRejoin, *messages.NodeLeave,
		*messages.RebalanceStart, *messages.RebalanceComplete, *messages.ClusterHealthChange, *messages.CustomDataChange:
		r.mu.Lock()
		r.events = append(r.events, m.(proto.Message))
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
	}
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// match is a named condition on an event.
type match struct {
	what string
	ok   func(proto.Message) bool
}

func rebalanceBy(node string) match {
	return match{"the rebalance triggered by " + node, func(m proto.Message) bool {
		rc, ok := m.(*messages.RebalanceComplete)
		return ok && rc.GetTriggerNodeId() == node
	}}
}

func leaveOf(node string) match {
	return match{"NodeLeave of " + node, func(m proto.Message) bool {
		l, ok := m.(*messages.NodeLeave)
		return ok && l.GetNode().GetId() == node
	}}
}

func rejoinOf(node string) match {
	return match{"NodeRejoin of " + node, func(m proto.Message) bool {
		j, ok := m.(*messages.NodeRejoin)
		return ok && j.GetNode().GetId() == node
	}}
}

// await returns the first event at or after position from that matches, or
// an error when ctx ends first.
func (r *recorder) await(ctx context.Context, from int, m match) (proto.Message, error) {
	for {
		r.mu.Lock()
		for _, e := range r.events[min(from, len(r.events)):] {
			if m.ok(e) {
				r.mu.Unlock()
				return e, nil
			}
		}
		from = len(r.events)
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("timed out waiting for %s", m.what)
		}
	}
}

func (r *recorder) since(from int) []proto.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[min(from, len(r.events)):])
}

// countPartitionChanges counts the partitions node must load, from position from on.
func (r *recorder) countPartitionChanges(from int, node string) int {
	n := 0
	for _, e := range r.since(from) {
		if pc, ok := e.(*messages.PartitionChange); ok && pc.GetCopyToNode().GetId() == node {
			n++
		}
	}
	return n
}

// partitionChangesFor describes the partitions node must load, from
// position from on: how many, and a few of them with their sources.
func (r *recorder) partitionChangesFor(from int, node string) string {
	var examples []string
	n := 0
	for _, e := range r.since(from) {
		pc, ok := e.(*messages.PartitionChange)
		if !ok || pc.GetCopyToNode().GetId() != node {
			continue
		}
		n++
		if len(examples) < 2 {
			var src []string
			for _, s := range pc.GetCopyFromNodes() {
				src = append(src, s.GetId())
			}
			examples = append(examples, fmt.Sprintf("%s (%s, from %s)", pc.GetPartitionId(), pc.GetRole(), strings.Join(src, "/")))
		}
	}
	if n > len(examples) {
		examples = append(examples, "...")
	}
	return fmt.Sprintf("%d partitions: %s", n, strings.Join(examples, ", "))
}

// journal renders the events, one line each; runs of PartitionChange are
// folded into one line per run.
func (r *recorder) journal() []string {
	var lines []string
	var run map[string]int
	flush := func() {
		if run == nil {
			return
		}
		var parts []string
		total := 0
		for _, id := range slices.Sorted(maps.Keys(run)) {
			parts = append(parts, fmt.Sprintf("%s %d", id, run[id]))
			total += run[id]
		}
		lines = append(lines, fmt.Sprintf("PartitionChange   x%d (partitions to load per node: %s)", total, strings.Join(parts, ", ")))
		run = nil
	}
	for _, e := range r.since(0) {
		if pc, ok := e.(*messages.PartitionChange); ok {
			if run == nil {
				run = map[string]int{}
			}
			run[pc.GetCopyToNode().GetId()]++
			continue
		}
		flush()
		lines = append(lines, describe(e))
	}
	flush()
	return lines
}

func describe(m proto.Message) string {
	switch e := m.(type) {
	case *messages.NodeJoin:
		return fmt.Sprintf("NodeJoin          %s (cluster size %d, bootstrap %v)", e.GetNode().GetId(), e.GetClusterSize(), e.GetIsBootstrap())
	case *messages.NodeRejoin:
		return fmt.Sprintf("NodeRejoin        %s (offline %v, held %d partitions before)", e.GetNode().GetId(),
			time.Duration(e.GetOfflineDurationNanos()).Round(time.Millisecond), len(e.GetPartitionsBeforeLeave()))
	case *messages.NodeLeave:
		return fmt.Sprintf("NodeLeave         %s (%s; primary of %d, replica of %d)", e.GetNode().GetId(), e.GetReason(),
			len(e.GetPartitionsOwned()), len(e.GetPartitionsReplica()))
	case *messages.RebalanceStart:
		return fmt.Sprintf("RebalanceStart    trigger=%s node=%s partitions_to_move=%d", e.GetTrigger(), e.GetTriggerNodeId(), e.GetPartitionsToMove())
	case *messages.RebalanceComplete:
		return fmt.Sprintf("RebalanceComplete moved=%d nodes=%v in %v", e.GetPartitionsMoved(), e.GetNodesAffected(),
			time.Duration(e.GetDurationNanos()).Round(time.Millisecond))
	case *messages.ClusterHealthChange:
		return fmt.Sprintf("ClusterHealth     %s -> %s (%d/%d nodes healthy, %d partitions under-replicated)", e.GetPreviousStatus(),
			e.GetStatus(), e.GetHealthyNodes(), e.GetTotalNodes(), e.GetUnderReplicatedPartitions())
	case *messages.CustomDataChange:
		return fmt.Sprintf("CustomDataChange  %s=%q version %d", e.GetKey(), e.GetValue(), e.GetVersion())
	}
	return fmt.Sprintf("%T", m)
}
