package clusterkit_test

// Examples of membership and consensus: removing nodes, leaving, handing
// leadership over, recovering from the loss of a quorum.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/clusterkit/clusterkit"
)

// A cluster of three: node-1 bootstraps (no join address, no state), the
// others join through it; any member works as a join address.
func Example_cluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := startNode(exampleOptions("node-1"))
	defer first.Stop(context.Background())
	for _, id := range []string{"node-2", "node-3"} {
		ck, err := clusterkit.New(exampleOptions(id, addressOf(first)))
		if err != nil {
			panic(err)
		}
		if err := ck.Start(ctx); err != nil { // admitted, and holds the table
			panic(err)
		}
		defer ck.Stop(context.Background())
	}
	c, err := first.WaitCluster(ctx, func(c *clusterkit.Cluster) bool { return len(c.Nodes) == 3 && c.Health == "healthy" })
	if err != nil {
		panic(err)
	}
	fmt.Println(len(c.Nodes), "nodes,", c.Health)
	// Output: 3 nodes, healthy
}

// RemoveNode removes another member for good (reason "removed_by_admin");
// its partitions move to the others. The removed process stays out until it
// is restarted.
func ExampleClusterKit_RemoveNode() {
	nodes := startCluster(3, nil)
	defer stopAll(nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := nodes[0].RemoveNode(ctx, "node-3"); err != nil {
		panic(err)
	}
	c := nodes[0].GetCluster()
	fmt.Println(len(c.Nodes), c.Nodes[0].ID, c.Nodes[1].ID)
	err := nodes[0].RemoveNode(ctx, "node-3")
	fmt.Println(errors.Is(err, clusterkit.ErrUnknownNode))
	// Output:
	// 2 node-1 node-2
	// true
}

// TransferLeadership hands Raft leadership to a voter before maintenance on
// the leader's machine: a planned hand-over costs milliseconds, a crash an
// election timeout. Any node may ask.
func ExampleClusterKit_TransferLeadership() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	leader, err := nodes[0].TransferLeadership(ctx, "node-2")
	if err != nil {
		panic(err)
	}
	fmt.Println(leader, nodes[0].HealthCheck().Leader)
	_, err = nodes[0].TransferLeadership(ctx, "node-9")
	fmt.Println(errors.Is(err, clusterkit.ErrInvalidTarget))
	// Output:
	// node-2 node-2
	// true
}

// Leave removes this node for good (reason "graceful_shutdown") and stops
// it; the others rebalance its partitions.
func ExampleClusterKit_Leave() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	leaving := nodes[1]
	if err := leaving.Leave(ctx); err != nil {
		panic(err) // not removed: the node keeps running
	}
	<-leaving.Done() // stopped
	c, err := nodes[0].WaitCluster(ctx, func(c *clusterkit.Cluster) bool { return len(c.Nodes) == 1 })
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Nodes[0].ID, "left alone")
	// Output: node-1 left alone
}

// RecoverCluster brings a cluster back after it lost a majority of its
// voters for good: here node-2 of two voters is gone and node-1, stopped,
// can never elect a leader again. Recovered, node-1 leads alone, keeps the
// state and removes node-2.
func ExampleRecoverCluster() {
	dir, err := os.MkdirTemp("", "clusterkit-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	o := exampleOptions("node-1")
	o.DataDir = dir
	first := startNode(o)
	second := startNode(exampleOptions("node-2", addressOf(first)))
	waitSettled([]*clusterkit.ClusterKit{first, second})
	if _, err := first.SetCustomData(ctx, "kept", []byte("yes")); err != nil {
		panic(err)
	}
	o.HTTPAddr = addressOf(first) // recover and restart on the node's own port
	_ = second.Stop(ctx)          // lost for good
	_ = first.Stop(ctx)

	rec, err := clusterkit.RecoverCluster(o, nil) // no other survivor
	if err != nil {
		panic(err)
	}
	fmt.Println(len(rec.Servers), rec.Servers[0].ID, rec.Lost)

	first = startNode(o)
	defer first.Stop(context.Background())
	c, err := first.WaitCluster(ctx, func(c *clusterkit.Cluster) bool { return len(c.Nodes) == 1 })
	if err != nil {
		panic(err)
	}
	value, _, _ := first.GetCustomData("kept")
	fmt.Println(c.Nodes[0].ID, string(value))
	// Output:
	// 1 node-1 [node-2]
	// node-1 yes
}

// Recovery's String is one line for logs and tools.
func ExampleRecovery_String() {
	r := clusterkit.Recovery{
		ClusterID: "0f3c9a1e5b7d4c2a8e6f1b3d5a7c9e0f",
		Servers:   []clusterkit.RecoveredServer{{ID: "node-1", Address: "10.0.0.1:8080"}},
		LastIndex: 42,
		Lost:      []string{"node-2", "node-3"},
	}
	fmt.Println(r)
	// Output: cluster=0f3c9a1e5b7d4c2a8e6f1b3d5a7c9e0f servers=node-1@10.0.0.1:8080 last_index=42 lost=node-2,node-3
}

// Build says which ClusterKit a binary runs, as clusterkit_build_info does
// on /metrics.
func ExampleBuild() {
	bi := clusterkit.Build()
	fmt.Println(bi.Version != "", bi.GoVersion == runtime.Version())
	// Output: true true
}
