package clusterkit_test

// Examples of a node's life cycle, its options and its own state.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/clusterkit/clusterkit"
)

// A single node bootstraps its own cluster and answers where keys live.
func Example() {
	ck, err := clusterkit.New(clusterkit.Options{
		NodeID:   "node-1",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.DiscardHandler), // keep the example's output clean
	})
	if err != nil {
		panic(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())

	p, err := ck.GetPartition("user:123")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.ID, "primary:", ck.GetPrimary(p).ID, "is mine:", ck.IsPrimary(p))
	// Output: partition-48 primary: node-1 is mine: true
}

// New validates the options, reporting every problem at once, and creates a
// node; nothing listens until Start.
func ExampleNew() {
	_, err := clusterkit.New(clusterkit.Options{NodeID: "node 1", HTTPAddr: ":8080", JoinAddrs: []string{"10.0.0.1"}})
	fmt.Println(errors.Is(err, clusterkit.ErrInvalidOptions))

	ck, err := clusterkit.New(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background()) // a node never started stops too
	fmt.Println(ck.GetMyNodeID(), ck.ClusterID() == "")
	// Output:
	// true
	// node-1 true
}

// DefaultOptions has every default filled in, to read or to adjust; the
// zero value of a field means the same default.
func ExampleDefaultOptions() {
	o := clusterkit.DefaultOptions()
	o.NodeID, o.HTTPAddr = "node-1", ":8080"
	fmt.Println(o.ClusterName, o.MaxVoters, o.VoterStabilization, o.RebalanceDelay, o.StartTimeout)
	fmt.Println(o.PartitionCount, o.ReplicationFactor, "(0: the cluster's, 64 and 3 at bootstrap)")
	fmt.Println(o.Validate())
	// Output:
	// clusterkit 5 2s 100ms 30s
	// 0 0 (0: the cluster's, 64 and 3 at bootstrap)
	// <nil>
}

// Validation reports every problem at once.
func ExampleOptions_Validate() {
	err := clusterkit.Options{NodeID: "", HTTPAddr: "8080", ReplicationFactor: -1}.Validate()
	fmt.Println(errors.Is(err, clusterkit.ErrInvalidOptions))
	fmt.Println(err)
	// Output:
	// true
	// clusterkit: invalid options: NodeID is required
	// HTTPAddr "8080" is not host:port: address 8080: missing port in address
	// ReplicationFactor -1 is outside [1, 16] (0 = default)
}

// The default failure detection removes a crashed member within about
// 2.5 s; a member that stops answering for less than 1.5 s is not even
// suspect.
func ExampleDefaultHealthCheck() {
	h := clusterkit.DefaultHealthCheck()
	fmt.Println(h.Interval, h.Timeout, h.FailureThreshold, h.RemovalGrace, h.Budget())
	// Output: 500ms 400ms 3 1s 2.9s
}

// FastHealthCheck is for quiet, low-latency networks.
func ExampleFastHealthCheck() {
	o := clusterkit.DefaultOptions()
	o.HealthCheck = clusterkit.FastHealthCheck()
	fmt.Println(o.HealthCheck.Interval, o.HealthCheck.Timeout, o.HealthCheck.Budget())
	// Output: 100ms 150ms 750ms
}

// Budget is the longest a crashed member stays in the cluster; a partly
// filled config keeps checking on, its zero fields taking the defaults.
func ExampleHealthCheckConfig_Budget() {
	slow := clusterkit.DefaultHealthCheck()
	slow.RemovalGrace = 10 * time.Second // ride out longer pauses
	fmt.Println(slow.Budget())
	off := clusterkit.HealthCheckConfig{Disable: true}
	fmt.Println(off.Disable)
	// Output:
	// 11.9s
	// true
}

// Raft's timings for a LAN; every zero field of Options.Raft takes these.
func ExampleDefaultRaftTimings() {
	r := clusterkit.DefaultRaftTimings()
	fmt.Println(r.HeartbeatTimeout, r.ElectionTimeout, r.LeaderLeaseTimeout, r.CommitTimeout, r.SnapshotInterval, r.SnapshotThreshold)
	// Output: 500ms 500ms 250ms 20ms 30s 4096
}

// KeyHash names the key hash as /cluster's hash_config does.
func ExampleKeyHash_String() {
	fmt.Printf("%q %q %q\n", clusterkit.KeyHashMD5, clusterkit.KeyHashXXH64, clusterkit.KeyHashDefault)
	// Output: "md5" "xxh64" ""
}

// A KeyHash is a text value: a flag (flag.TextVar) or a configuration field.
func ExampleKeyHash_MarshalText() {
	b, _ := clusterkit.KeyHashXXH64.MarshalText()
	fmt.Println(string(b))
	// Output: xxh64
}

// UnmarshalText parses a hash name ("" is the cluster's hash).
func ExampleKeyHash_UnmarshalText() {
	var k clusterkit.KeyHash
	fmt.Println(k.UnmarshalText([]byte("xxh64")), k == clusterkit.KeyHashXXH64)
	fmt.Println(k.UnmarshalText([]byte("sha1")))
	// Output:
	// <nil> true
	// key hash "sha1": want md5 or xxh64
}

// TCPNetwork is the default Network; another one (the test harness's
// in-memory network, say) carries all of a node's traffic instead.
func ExampleTCPNetwork_Listen() {
	var network clusterkit.Network = &clusterkit.TCPNetwork{}
	ln, err := network.Listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = c.Write([]byte("hello"))
			_ = c.Close()
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	b, _ := io.ReadAll(conn)
	fmt.Println(string(b))
	// Output: hello
}

// DialContext gives up when ctx ends.
func ExampleTCPNetwork_DialContext() {
	network := &clusterkit.TCPNetwork{}
	ln, err := network.Listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	conn, err := network.DialContext(context.Background(), ln.Addr().String())
	if err != nil {
		panic(err)
	}
	conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = network.DialContext(ctx, ln.Addr().String())
	fmt.Println(errors.Is(err, context.Canceled))
	// Output: true
}

// Start returns once the node holds a committed partition table. It gives
// up when ctx ends (here: a join address where nothing answers), and a node
// whose Start failed is stopped, every goroutine ended: create a new one.
func ExampleClusterKit_Start() {
	o := exampleOptions("node-2", "127.0.0.1:1") // nothing listens on port 1
	ck, err := clusterkit.New(o)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = ck.Start(ctx)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	fmt.Println(ck.Start(context.Background()))
	// Output:
	// true
	// clusterkit: stopped
}

// Stop stops the node without leaving the cluster (a restart keeps its
// membership); it is idempotent. Its ctx bounds only the graceful part.
func ExampleClusterKit_Stop() {
	ck := startNode(exampleOptions("node-1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(ck.Stop(ctx))
	fmt.Println(ck.Stop(ctx)) // what the first Stop returned
	_, err := ck.SetCustomData(ctx, "k", []byte("v"))
	fmt.Println(err)
	// Output:
	// <nil>
	// <nil>
	// clusterkit: stopped
}

// Done is closed once the node has stopped, whoever stopped it (Stop, Leave,
// or POST /leave through the gateway).
func ExampleClusterKit_Done() {
	ck := startNode(exampleOptions("node-1"))
	go ck.Stop(context.Background())
	select {
	case <-ck.Done():
		fmt.Println("stopped")
	case <-time.After(10 * time.Second):
		fmt.Println("still running")
	}
	// Output: stopped
}

// GetMyNodeID is Options.NodeID.
func ExampleClusterKit_GetMyNodeID() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	fmt.Println(ck.GetMyNodeID())
	// Output: node-1
}

// AdvertiseAddr is where the other nodes and HTTP clients reach this node:
// with port 0, the port the system chose.
func ExampleClusterKit_AdvertiseAddr() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	addr := ck.AdvertiseAddr()
	fmt.Println(strings.HasPrefix(addr, "127.0.0.1:"), !strings.HasSuffix(addr, ":0"), addr == ck.GetCluster().Nodes[0].IP)
	// Output: true true true
}

// The cluster ID is random, minted at bootstrap: two clusters with one name
// still differ. A node refuses a data directory of another cluster.
func ExampleClusterKit_ClusterID() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	id := ck.ClusterID()
	fmt.Println(len(id), id == ck.GetCluster().ClusterID, id == ck.HealthCheck().ClusterID)
	// Output: 32 true true
}

// HealthCheck is /health/detailed: this node's place and the cluster as it
// sees it. One node with the default replication factor of 3 is degraded.
func ExampleClusterKit_HealthCheck() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	h := ck.HealthCheck()
	fmt.Println("healthy:", h.Healthy, "ready:", h.Ready, "membership:", h.Membership)
	fmt.Println("leader:", h.Leader, h.IsLeader, "voters:", h.VoterIDs)
	fmt.Println("cluster:", h.ClusterStatus, h.UnderReplicatedPartitions, "partitions under-replicated")
	// Output:
	// healthy: true ready: true membership: member
	// leader: node-1 true voters: [node-1]
	// cluster: degraded 64 partitions under-replicated
}

// GetMetrics is /metrics?format=json.
func ExampleClusterKit_GetMetrics() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	m := ck.GetMetrics()
	fmt.Println(m.NodeCount, m.PartitionCount, m.PrimaryPartitions, m.IsLeader, m.RaftState, m.ClusterHealth)
	// Output: 1 64 64 true Leader degraded
}

// Services are published to every node: how an application finds its own
// service on the owner of a partition.
func ExampleClusterKit_ServiceAddresses() {
	o := exampleOptions("node-1")
	o.Services = map[string]string{"kv": "127.0.0.1:9080"}
	ck := startNode(o)
	defer ck.Stop(context.Background())

	fmt.Println(ck.ServiceAddresses("kv"))
	p, _ := ck.GetPartition("user:123")
	fmt.Println(ck.GetPrimary(p).Services["kv"])
	fmt.Println(len(ck.ServiceAddresses("search")))
	// Output:
	// map[node-1:127.0.0.1:9080]
	// 127.0.0.1:9080
	// 0
}
