package clusterkit

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/messages"
)

// TestSlowCallbackStallsNothing: a callback that blocks for 10 s on every
// event (and calls GetPartition) must not stall Raft apply, reads, other
// subscribers or later rebalances.
func TestSlowCallbackStallsNothing(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.PartitionCount = 256
	release := make(chan struct{})
	var slowCalls atomic.Int32
	var p *probe
	ck := startNode(t, o, func(n *ClusterKit) {
		n.OnPartitionChange(func(e *PartitionChangeEvent) {
			slowCalls.Add(1)
			if _, err := n.GetPartition(e.PartitionID); err != nil {
				t.Errorf("GetPartition inside a callback: %v", err)
			}
			select { // "sleep 10 s", but let the test end early
			case <-time.After(10 * time.Second):
			case <-release:
			}
		})
		p = subscribeProbe(t, n, WithKinds(EventRebalanceComplete))
	})
	// Registered after startNode's cleanup, so it runs first: unblock the
	// callback before Stop waits for the actors.
	t.Cleanup(func() { close(release) })
	// The other subscriber gets the bootstrap's completion although the slow
	// callback is still on its first of 256 events.
	if _, ok := p.next(t, 5*time.Second).(*messages.RebalanceComplete); !ok {
		t.Fatal("other subscriber did not get RebalanceComplete")
	}
	// Raft keeps applying: a manual rebalance commits and is delivered.
	if err := ck.RebalancePartitions(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.next(t, 5*time.Second).(*messages.RebalanceComplete); !ok {
		t.Fatal("second RebalanceComplete not delivered")
	}
	// Reads are served from the table without waiting for anyone.
	for range 1000 {
		if _, err := ck.GetPartition("user:123"); err != nil {
			t.Fatal(err)
		}
	}
	if n := slowCalls.Load(); n != 1 {
		t.Fatalf("the slow callback ran %d times; it should still be in its first call", n)
	}
	// The dispatcher itself is idle: only the slow callback's own mailbox holds the backlog.
	waitFor(t, 5*time.Second, "an empty dispatcher queue", func() bool { return ck.GetMetrics().QueueLengths["hooks"] == 0 })
}

// TestSlowCallbackDuringClusterRebalance: the same across nodes: while
// node-1's callback is stuck in its first event, two nodes join, 256
// partitions are rebalanced twice, and node-1 keeps applying, serving reads
// and delivering to its other subscribers.
func TestSlowCallbackDuringClusterRebalance(t *testing.T) {
	leakCheck(t)
	release := make(chan struct{})
	var slowCalls atomic.Int32
	var p *probe
	nodes := startCluster(t, 1, func(_ int, o *Options) { o.PartitionCount = 256 }, func(_ int, n *ClusterKit) {
		n.OnPartitionChange(func(e *PartitionChangeEvent) {
			slowCalls.Add(1)
			if _, err := n.GetPartition(e.PartitionID); err != nil {
				t.Errorf("GetPartition inside a callback: %v", err)
			}
			select {
			case <-time.After(10 * time.Second):
			case <-release:
			}
		})
		p = subscribeProbe(t, n, WithKinds(EventRebalanceComplete))
	})
	t.Cleanup(func() { close(release) })
	first := nodes[0]
	for i := 2; i <= 3; i++ {
		o := clusterOptions(t, i, first.advertise)
		o.PartitionCount = 256
		nodes = append(nodes, startNode(t, o))
	}
	waitConverged(t, nodes, 3)
	for {
		rc := p.next(t, 10*time.Second).(*messages.RebalanceComplete)
		if slices.Contains(rc.GetNodesAffected(), "node-3") {
			break
		}
	}
	if _, err := first.GetPartition("user:123"); err != nil {
		t.Fatal(err)
	}
	if n := slowCalls.Load(); n != 1 {
		t.Fatalf("the slow callback ran %d times; it should still be in its first call", n)
	}
}
