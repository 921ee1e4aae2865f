package clusterkit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/clusterkit/clusterkit"
)

// ownersIn counts the owners of every partition that node id holds, by state.
func ownersIn(c *clusterkit.Cluster, id string) (syncing, ready int) {
	for _, p := range c.PartitionMap.Partitions {
		for _, o := range p.Owners {
			if o.ID != id {
				continue
			}
			if o.State == clusterkit.OwnerSyncing {
				syncing++
			} else {
				ready++
			}
		}
	}
	return syncing, ready
}

// A node that declares Handoff loads each partition it gains before it may
// lead it: OnPartitionLoad copies the data (here: nothing to copy) and
// returns nil, which acknowledges the load.
func ExampleClusterKit_OnPartitionLoad() {
	n1 := startNode(exampleOptions("node-1"))
	defer n1.Stop(context.Background())

	o := exampleOptions("node-2", n1.AdvertiseAddr())
	o.Handoff = true
	loads := make(chan string, 256)
	n2 := startNode(o, func(ck *clusterkit.ClusterKit) {
		ck.OnPartitionLoad(func(e *clusterkit.PartitionChangeEvent) error {
			// Copy e.PartitionID from e.CopyFromNodes (all ready owners) here.
			loads <- e.PartitionID
			return nil
		})
	})
	defer n2.Stop(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n2.WaitCluster(ctx, func(c *clusterkit.Cluster) bool {
		syncing, ready := ownersIn(c, "node-2")
		return syncing == 0 && ready == 64
	})
	if err != nil {
		panic(err)
	}
	syncing, ready := ownersIn(c, "node-2")
	fmt.Println("node-2 loaded", len(loads), "partitions; syncing:", syncing, "ready:", ready)
	// Output:
	// node-2 loaded 64 partitions; syncing: 0 ready: 64
}

// A copy that outlives its event handler is acknowledged later with
// MarkReady. Until then the owner is syncing: it gets writes forwarded but
// never becomes primary.
func ExampleClusterKit_MarkReady() {
	n1 := startNode(exampleOptions("node-1"))
	defer n1.Stop(context.Background())

	o := exampleOptions("node-2", n1.AdvertiseAddr())
	o.Handoff = true
	loads := make(chan string, 256)
	n2 := startNode(o, func(ck *clusterkit.ClusterKit) {
		ck.OnPartitionChange(func(e *clusterkit.PartitionChangeEvent) {
			if e.Action == clusterkit.PartitionLoad && e.CopyToNode.ID == "node-2" {
				loads <- e.PartitionID // a background copy starts here
			}
		})
	})
	defer n2.Stop(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for done := 0; done < 64; done++ {
		select {
		case id := <-loads: // the copy of id finished
			if err := n2.MarkReady(ctx, id); err != nil {
				panic(err)
			}
		case <-ctx.Done():
			panic(ctx.Err())
		}
	}
	syncing, ready := ownersIn(n2.GetCluster(), "node-2")
	fmt.Println("syncing:", syncing, "ready:", ready)
	fmt.Println(n2.MarkReady(ctx, "partition-99"))
	// Output:
	// syncing: 0 ready: 64
	// clusterkit: invalid partition: "partition-99" is not a partition of this cluster
}

// PlanRebalance is a dry run: the moves the next rebalance would make.
func ExampleClusterKit_PlanRebalance() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())

	plan, err := ck.PlanRebalance()
	if err != nil {
		panic(err)
	}
	fmt.Println("moves:", plan.Moves, "primary changes:", plan.PrimaryChanges, "partitions:", len(plan.Partitions))
	// Output:
	// moves: 0 primary changes: 0 partitions: 0
}

// HandOverPrimaries is the first step of a planned stop: the node's primary roles move
// to ready replicas (committed), while the node still serves; then the
// application stops serving and calls Stop.
func ExampleClusterKit_HandOverPrimaries() {
	n1 := startNode(exampleOptions("node-1"))
	defer n1.Stop(context.Background())
	n2 := startNode(exampleOptions("node-2", n1.AdvertiseAddr()))
	defer n2.Stop(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leads := func(c *clusterkit.Cluster, id string) int {
		n := 0
		for _, p := range c.PartitionMap.Partitions {
			if p.PrimaryNode == id {
				n++
			}
		}
		return n
	}
	// Wait for the rebalance that gives node-2 its share of primaries.
	if _, err := n2.WaitCluster(ctx, func(c *clusterkit.Cluster) bool { return leads(c, "node-2") > 0 }); err != nil {
		panic(err)
	}
	if err := n2.HandOverPrimaries(ctx); err != nil {
		panic(err)
	}
	c := n2.GetCluster()
	fmt.Printf("node-2 leads %d partitions; node-1 leads %d partitions\n", leads(c, "node-2"), leads(c, "node-1"))
	// Output:
	// node-2 leads 0 partitions; node-1 leads 64 partitions
}
