package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/actors/actortest"
)

// syncBuffer is a log destination tests can read while nodes write to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitSettled waits until every node applied the same table, is ready
// (holds partitions, all loaded) and keeps no partition it does not hold.
func waitSettled(t *testing.T, nodes map[string]*Node) {
	t.Helper()
	var last []Status
	var lastPlan string
	defer func() {
		if t.Failed() {
			t.Logf("last statuses: %+v; last plan: %s", last, lastPlan)
		}
	}()
	actortest.Eventually(t, 10*time.Second, "every node ready with the same table, holding only its partitions, no hand-off left", func() bool {
		var sums []uint64
		last = last[:0]
		for _, n := range nodes {
			st, err := kvStatus(n.KVAddr)
			last = append(last, st)
			if err != nil || !st.Ready || st.Stored != st.Held || len(n.CK.GetCluster().Nodes) != len(nodes) {
				return false
			}
			// The table is settled only when no hand-off is left to run:
			// a join first commits nothing new, so a stable checksum alone
			// can precede the first step.
			if plan, err := n.CK.PlanRebalance(); err != nil || len(plan.Partitions) != 0 || plan.Pending != 0 {
				lastPlan = fmt.Sprintf("%s: %+v %v", n.CK.GetMyNodeID(), plan, err)
				return false
			}
			sums = append(sums, n.CK.TableChecksum())
		}
		return len(slices.Compact(sums)) == 1
	})
}

// readOwners checks that every owner of every key in the current table
// serves its value directly.
func readOwners(t *testing.T, nodes map[string]*Node, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	c := newTestClient(t)
	for k, v := range want {
		p, err := nodes["node-1"].CK.GetPartition(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range append([]string{p.PrimaryNode}, p.ReplicaNodes...) {
			res, err := c.call(ctx, id, nodes[id].KVAddr, http.MethodGet, k, nil)
			if err != nil || res.status != http.StatusOK || string(res.body) != v {
				t.Fatalf("%s on %s (owner of %s): %+v %v", k, id, p.ID, res, err)
			}
		}
	}
}

func putAll(t *testing.T, c *Client, want map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for k, v := range want {
		if err := c.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJoinCopiesAndDrops: a node that joins a cluster with data copies the
// partitions it gains from their previous owners (PartitionChange), and the
// nodes that lost them drop them (RebalanceComplete) after the hand-off
// grace. With RF 1 the only source of a moved partition is a node that no
// longer holds it.
func TestJoinCopiesAndDrops(t *testing.T) {
	for _, rf := range []int{1, 2} {
		t.Run(fmt.Sprintf("rf=%d", rf), func(t *testing.T) { joinCopiesAndDrops(t, rf) })
	}
}

func joinCopiesAndDrops(t *testing.T, rf int) {
	nodes := map[string]*Node{}
	o := testOptions("node-1")
	o.PartitionCount, o.ReplicationFactor = 16, rf
	nodes["node-1"] = startNode(t, o)
	o = testOptions("node-2")
	o.JoinAddrs = []string{gateway(nodes["node-1"])}
	nodes["node-2"] = startNode(t, o)
	waitSettled(t, nodes)

	want := map[string]string{}
	for i := range 300 {
		want[fmt.Sprintf("k%d", i)] = fmt.Sprintf("v%d", i)
	}
	c := newTestClient(t, gateway(nodes["node-1"]))
	putAll(t, c, want)

	o = testOptions("node-3")
	o.JoinAddrs = []string{gateway(nodes["node-2"])}
	nodes["node-3"] = startNode(t, o)
	waitSettled(t, nodes)
	for _, n := range nodes {
		if st, _ := kvStatus(n.KVAddr); st.Held >= 16*rf/2 {
			t.Fatalf("%s still holds every partition after the join: %+v", n.CK.GetMyNodeID(), st)
		}
	}
	readOwners(t, nodes, want)
}

// TestNoLiveSource: with RF 1, removing a stopped node leaves its partitions
// without a live source: the nodes that gain them start them empty, say so
// in their log, and serve them (the other keys are untouched).
func TestNoLiveSource(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nodes := map[string]*Node{}
	for _, id := range []string{"node-1", "node-2", "node-3"} {
		o := testOptions(id)
		o.PartitionCount, o.ReplicationFactor, o.Logger = 16, 1, logger
		if id != "node-1" {
			o.JoinAddrs = []string{gateway(nodes["node-1"])}
		}
		// startNode's cleanup stops node-2 again after the test stopped it
		// (Stop is idempotent), and stops it if the test fails first.
		nodes[id] = startNode(t, o)
	}
	stopped := nodes["node-2"]
	waitSettled(t, nodes)

	want := map[string]string{}
	for i := range 200 {
		want[fmt.Sprintf("k%d", i)] = fmt.Sprintf("v%d", i)
	}
	putAll(t, newTestClient(t, gateway(nodes["node-1"])), want)
	lost := map[string]bool{}
	for k := range want {
		if p, _ := nodes["node-1"].CK.GetPartition(k); p.PrimaryNode == "node-2" {
			lost[k] = true
		}
	}
	if len(lost) == 0 || len(lost) == len(want) {
		t.Fatalf("%d of %d keys on node-2: want some", len(lost), len(want))
	}

	if err := stopped.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	delete(nodes, "node-2")
	if err := nodes["node-1"].CK.RemoveNode(context.Background(), "node-2"); err != nil {
		t.Fatal(err)
	}
	// The table may settle before the new owners' actors have handled the
	// PartitionChange that tells them no copy is left: wait for that too.
	actortest.Eventually(t, 10*time.Second, "a node to log the partitions it started empty", func() bool {
		return strings.Contains(logs.String(), "no live source for partition")
	})
	waitSettled(t, nodes)
	c := newTestClient(t, gateway(nodes["node-1"]))
	ctx := context.Background()
	for k, v := range want {
		got, err := c.Get(ctx, k)
		switch {
		case lost[k] && !errors.Is(err, ErrNotFound):
			t.Fatalf("%s was only on the removed node: got %q, %v", k, got, err)
		case !lost[k] && (err != nil || string(got) != v):
			t.Fatalf("%s: got %q, %v; want %q", k, got, err, v)
		}
	}
	// The emptied partitions take writes again.
	for k := range lost {
		if err := c.Put(ctx, k, []byte("again")); err != nil {
			t.Fatal(err)
		}
	}
}
