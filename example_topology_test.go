package clusterkit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterkit/clusterkit"
)

// Drain empties a member without removing it (before moving it to other
// hardware, say): its primaries go to ready replicas, then its replicas are
// copied elsewhere. It returns once the member holds nothing.
func ExampleClusterKit_Drain() {
	nodes := startCluster(3, func(o *clusterkit.Options) { o.ReplicationFactor = 2 })
	defer stopAll(nodes)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].Drain(ctx, "node-3"); err != nil {
		panic(err)
	}
	c := nodes[0].GetCluster()
	_, held := ownersIn(c, "node-3")
	fmt.Println("node-3 holds", held, "partitions; members:", len(c.Nodes), "drained:", c.Nodes[2].Drained)
	// Output:
	// node-3 holds 0 partitions; members: 3 drained: true
}

// Undrain gives a drained member its share back through the next rebalance.
func ExampleClusterKit_Undrain() {
	nodes := startCluster(3, func(o *clusterkit.Options) { o.ReplicationFactor = 2 })
	defer stopAll(nodes)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].Drain(ctx, "node-3"); err != nil {
		panic(err)
	}
	if err := nodes[1].Undrain(ctx, "node-3"); err != nil {
		panic(err)
	}
	c, err := nodes[0].WaitCluster(ctx, func(c *clusterkit.Cluster) bool {
		_, held := ownersIn(c, "node-3")
		return held > 0
	})
	if err != nil {
		panic(err)
	}
	_, held := ownersIn(c, "node-3")
	fmt.Println("node-3 drained:", c.Nodes[2].Drained, "holds partitions again:", held > 0)
	// Output:
	// node-3 drained: false holds partitions again: true
}

// In maintenance mode a node joins (and nodes restart) without any data
// moving; ResumeRebalancing then plans once from what it finds.
func ExampleClusterKit_PauseRebalancing() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].PauseRebalancing(ctx); err != nil {
		panic(err)
	}
	third := startNode(exampleOptions("node-3", addressOf(nodes[0])))
	defer third.Stop(context.Background())
	_, held := ownersIn(third.GetCluster(), "node-3")
	fmt.Println("paused: node-3 is a member and holds", held, "partitions")
	// Output:
	// paused: node-3 is a member and holds 0 partitions
}

// ResumeRebalancing leaves maintenance mode: the join made while paused
// takes effect.
func ExampleClusterKit_ResumeRebalancing() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].PauseRebalancing(ctx); err != nil {
		panic(err)
	}
	third := startNode(exampleOptions("node-3", addressOf(nodes[0])))
	defer third.Stop(context.Background())
	if err := third.ResumeRebalancing(ctx); err != nil {
		panic(err)
	}
	c, err := third.WaitCluster(ctx, func(c *clusterkit.Cluster) bool {
		_, held := ownersIn(c, "node-3")
		return held == 64 // RF 3 over 3 nodes: every partition
	})
	if err != nil {
		panic(err)
	}
	_, held := ownersIn(c, "node-3")
	fmt.Println("resumed: node-3 holds", held, "partitions")
	// Output:
	// resumed: node-3 holds 64 partitions
}

// RebalancingPaused reports maintenance mode, as every node has committed it.
func ExampleClusterKit_RebalancingPaused() {
	node := startNode(exampleOptions("node-1"))
	defer node.Stop(context.Background())

	fmt.Println("paused:", node.RebalancingPaused())
	if err := node.PauseRebalancing(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("paused:", node.RebalancingPaused())
	// Output:
	// paused: false
	// paused: true
}

// Zones spread the owners of every partition over failure domains: with
// three zones and RF 3, losing a whole zone leaves two owners of every
// partition.
func ExampleOptions_zone() {
	zones := []string{"eu-1a", "eu-1b", "eu-1c"}
	i := 0
	nodes := startCluster(3, func(o *clusterkit.Options) { o.Zone = zones[i]; i++ })
	defer stopAll(nodes)

	c := nodes[0].GetCluster()
	zoneOf := map[string]string{}
	for _, n := range c.Nodes {
		zoneOf[n.ID] = n.Zone
	}
	spread := 0
	for _, p := range c.PartitionMap.Partitions {
		seen := map[string]bool{}
		for _, o := range p.Owners {
			seen[zoneOf[o.ID]] = true
		}
		if len(seen) == 3 {
			spread++
		}
	}
	fmt.Println(spread, "of", len(c.PartitionMap.Partitions), "partitions have an owner in every zone")
	// Output:
	// 64 of 64 partitions have an owner in every zone
}
