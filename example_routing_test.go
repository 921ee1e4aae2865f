package clusterkit_test

// Examples of the read path (where a key lives, who owns a partition) and
// of waiting for the cluster's state. Lookups take no context and neither
// lock nor allocate; the values they return are shared: read them only.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/clusterkit/clusterkit"
)

// GetPartition maps a key to its partition: the reference library's MD5
// hash by default (user:123 is partition-48 of 64), or xxhash64. It fails
// with ErrNotReady until the node holds a partition table.
func ExampleClusterKit_GetPartition() {
	ck, err := clusterkit.New(exampleOptions("node-1"))
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())
	_, err = ck.GetPartition("user:123")
	fmt.Println(errors.Is(err, clusterkit.ErrNotReady))
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	p, err := ck.GetPartition("user:123")
	fmt.Println(p.ID, p.Number(), err)

	o := exampleOptions("node-1")
	o.KeyHash = clusterkit.KeyHashXXH64 // fixed cluster-wide at bootstrap
	fast := startNode(o)
	defer fast.Stop(context.Background())
	p, _ = fast.GetPartition("user:123")
	fmt.Println(p.ID)
	// Output:
	// true
	// partition-48 48 <nil>
	// partition-51
}

// Number is the n of "partition-n": an index for the application's own
// per-partition arrays.
func ExamplePartition_Number() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	loaded := make([]bool, ck.GetCluster().Config.PartitionCount)
	p, _ := ck.GetPartition("user:123")
	loaded[p.Number()] = true
	fmt.Println(p.ID, loaded[48])
	// Output: partition-48 true
}

// GetPrimary is the node that serves a partition's writes now.
func ExampleClusterKit_GetPrimary() {
	o := exampleOptions("node-1")
	o.Services = map[string]string{"kv": "127.0.0.1:9080"}
	ck := startNode(o)
	defer ck.Stop(context.Background())
	p, _ := ck.GetPartition("user:123")
	primary := ck.GetPrimary(p)
	fmt.Println(primary.ID, primary.Services["kv"], primary.ID == p.PrimaryNode)
	// Output: node-1 127.0.0.1:9080 true
}

// GetReplicas lists a partition's other owners: with three nodes and the
// default replication factor of 3, the two that are not its primary.
func ExampleClusterKit_GetReplicas() {
	nodes := startCluster(3, nil)
	defer stopAll(nodes)

	ck := nodes[2] // any node answers the same
	p, _ := ck.GetPartition("user:123")
	owners := []string{ck.GetPrimary(p).ID}
	for _, r := range ck.GetReplicas(p) {
		owners = append(owners, r.ID)
	}
	slices.Sort(owners)
	fmt.Println(len(ck.GetReplicas(p)), "replicas; owners:", owners)
	// Output: 2 replicas; owners: [node-1 node-2 node-3]
}

// GetNodes is the primary, then the replicas.
func ExampleClusterKit_GetNodes() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)

	ck := nodes[0]
	p, _ := ck.GetPartition("user:123")
	all := ck.GetNodes(p)
	fmt.Println(len(all), all[0].ID == ck.GetPrimary(p).ID, all[1].ID == ck.GetReplicas(p)[0].ID)
	// Output: 2 true true
}

// IsPrimary and IsReplica answer for this node: exactly one node is a
// partition's primary, and with RF 3 two others are its replicas.
func ExampleClusterKit_IsPrimary() {
	nodes := startCluster(3, nil)
	defer stopAll(nodes)

	primaries, replicas := 0, 0
	for _, ck := range nodes {
		p, _ := ck.GetPartition("user:123")
		if ck.IsPrimary(p) {
			primaries++ // serve the write
		}
		if ck.IsReplica(p) {
			replicas++ // accept the primary's replication
		}
	}
	fmt.Println(primaries, "primary,", replicas, "replicas")
	// Output: 1 primary, 2 replicas
}

// IsReplica on a single node: it is every partition's primary, never a
// replica.
func ExampleClusterKit_IsReplica() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	p, _ := ck.GetPartition("user:123")
	fmt.Println(ck.IsPrimary(p), ck.IsReplica(p))
	// Output: true false
}

// GetCluster is what GET /cluster serves: members, partition map,
// configuration and how to hash keys without a Go client.
func ExampleClusterKit_GetCluster() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	c := ck.GetCluster()
	fmt.Println(c.Name, len(c.Nodes), c.Nodes[0].ID, c.Nodes[0].Voter, len(c.PartitionMap.Partitions), c.Health)
	fmt.Printf("%+v\n", *c.Config)
	h := c.HashConfig
	fmt.Println(h.Algorithm, h.Encoding, h.Modulo, h.Format)
	fmt.Println(h.Formula)
	// Output:
	// clusterkit 1 node-1 true 64 degraded
	// {ClusterName:clusterkit PartitionCount:64 ReplicationFactor:3 MaxVoters:5}
	// md5 big_endian_uint32 64 partition-%d
	// BigEndian.Uint32(md5(key)[0:4]) % partition_count
}

// Nodes that applied the same table report the same checksum.
func ExampleClusterKit_TableChecksum() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)
	fmt.Println(nodes[0].TableChecksum() == nodes[1].TableChecksum())
	// Output: true
}

// WaitTable waits until this node has applied a table at least as new as
// one seen elsewhere (another node, a client's last response).
func ExampleClusterKit_WaitTable() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	seen := nodes[0].GetCluster().TableVersion
	c, err := nodes[1].WaitTable(ctx, seen)
	fmt.Println(c.TableVersion >= seen, err)

	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	_, err = nodes[1].WaitTable(short, seen+1_000_000) // no such table (yet)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output:
	// true <nil>
	// true
}

// WaitCluster waits until a condition holds for the cluster as this node
// has applied it, checked after every committed change.
func ExampleClusterKit_WaitCluster() {
	first := startNode(exampleOptions("node-1"))
	defer first.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	second := make(chan *clusterkit.ClusterKit, 1)
	go func() { second <- startNode(exampleOptions("node-2", addressOf(first))) }()
	defer func() { (<-second).Stop(context.Background()) }()

	c, err := first.WaitCluster(ctx, func(c *clusterkit.Cluster) bool {
		return len(c.Nodes) == 2 && c.Health == "degraded" // two nodes, RF 3
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Nodes[0].ID, c.Nodes[1].ID)
	// Output: node-1 node-2
}

// RebalancePartitions asks the leader for a rebalance now and returns once
// its table is committed and applied here; RebalanceStart and
// RebalanceComplete report it with trigger "manual".
func ExampleClusterKit_RebalancePartitions() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := make(chan string, 1)
	ck.OnRebalanceComplete(func(e *clusterkit.RebalanceEvent, _ time.Duration) {
		if e.Trigger == "manual" { // not the bootstrap's, if it is still on its way
			done <- e.Trigger
		}
	})
	fmt.Println(ck.RebalancePartitions(ctx))
	fmt.Println(<-done)
	// Output:
	// <nil>
	// manual
}
