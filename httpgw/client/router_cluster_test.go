package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/httpgw/client"
)

// startNode starts a real, in-memory ClusterKit node on loopback and stops
// it with the test (unless the test stopped it first).
func startNode(t *testing.T, id string, join ...string) *clusterkit.ClusterKit {
	t.Helper()
	o := clusterkit.DefaultOptions()
	o.NodeID, o.HTTPAddr, o.JoinAddrs = id, "127.0.0.1:0", join
	o.PartitionCount, o.ReplicationFactor = 16, 2
	o.Raft = clusterkit.RaftTimings{HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond, CommitTimeout: 5 * time.Millisecond}
	o.RebalanceDelay = 10 * time.Millisecond
	o.HealthCheck = clusterkit.HealthCheckConfig{Disable: true}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ck, err := clusterkit.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ck.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-ck.Done():
		default:
			if err := ck.Stop(context.Background()); err != nil {
				t.Errorf("stop %s: %v", id, err)
			}
		}
	})
	return ck
}

// addrOf is a node's advertised address, from its own view of the cluster.
func addrOf(ck *clusterkit.ClusterKit) string {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == ck.GetMyNodeID() {
			return n.IP
		}
	}
	return ""
}

// routesLikeLocate reports whether the router maps keys exactly as the
// node's GET /locate does, and whether the table it routes with has these
// owners, no more, no less.
func routesLikeLocate(t *testing.T, r *client.Router, c *client.Client, owners ...string) bool {
	t.Helper()
	seen := map[string]bool{}
	for i := range 64 {
		key := fmt.Sprintf("key-%d", i)
		got, err := r.Locate(key)
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.Locate(t.Context(), key)
		if err != nil || got.Primary == nil || want.Primary == nil {
			return false
		}
		if got.Partition != want.Partition || got.Epoch != want.Epoch || got.TableVersion != want.TableVersion ||
			got.Primary.ID != want.Primary.ID || len(got.Replicas) != len(want.Replicas) {
			return false
		}
		seen[got.Primary.ID] = true
		for j := range got.Replicas {
			if got.Replicas[j].ID != want.Replicas[j].ID {
				return false
			}
			seen[got.Replicas[j].ID] = true
		}
	}
	have := make([]string, 0, len(seen))
	for id := range seen {
		have = append(have, id)
	}
	slices.Sort(have)
	return slices.Equal(have, owners)
}

// On a real cluster the Router follows a join (and the rebalance after it)
// and a leave from the event stream: with an hour between polls, it routes
// like GET /locate within seconds of each change.
func TestRouterFollowsRebalanceOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a two-node cluster")
	}
	n1 := startNode(t, "node-1")
	c, err := client.New(addrOf(n1))
	if err != nil {
		t.Fatal(err)
	}
	r, err := client.NewRouter(t.Context(), c, client.WithRefreshInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !routesLikeLocate(t, r, c, "node-1") {
		t.Fatal("a one-node cluster: the router does not route every key to node-1 as GET /locate does")
	}
	const bound = 10 * time.Second // far below the poll interval

	start := time.Now()
	n2 := startNode(t, "node-2", addrOf(n1))
	waitUntil(t, bound, "the router to route like GET /locate with node-2 an owner", func() bool {
		return routesLikeLocate(t, r, c, "node-1", "node-2")
	})
	t.Logf("the router followed the join and its rebalance %v after node-2 started", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := n2.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, bound, "the router to route every key to node-1 again", func() bool {
		return routesLikeLocate(t, r, c, "node-1") && len(r.Cluster().Cluster.Nodes) == 1
	})
	t.Logf("the router followed the leave %v after Leave began", time.Since(start).Round(time.Millisecond))
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}
