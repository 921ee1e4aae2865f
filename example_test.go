package clusterkit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
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

// A user actor receives lifecycle events as protobuf messages, in commit order.
func ExampleClusterKit_Subscribe() {
	ck, err := clusterkit.New(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:0", PartitionCount: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())

	done := make(chan struct{})
	var lines []string
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch e := ctx.Message().(type) {
		case *messages.NodeJoin:
			lines = append(lines, fmt.Sprintf("NodeJoin %s bootstrap=%v", e.GetNode().GetId(), e.GetIsBootstrap()))
		case *messages.RebalanceStart:
			lines = append(lines, fmt.Sprintf("RebalanceStart %s: %d partitions", e.GetTrigger(), e.GetPartitionsToMove()))
		case *messages.PartitionChange:
			lines = append(lines, fmt.Sprintf("PartitionChange %s -> %s", e.GetPartitionId(), e.GetCopyToNode().GetId()))
		case *messages.RebalanceComplete:
			lines = append(lines, "RebalanceComplete")
			close(done)
		}
	}))
	// Subscribing before Start delivers the bootstrap itself.
	if err := ck.Subscribe(pid, clusterkit.WithKinds(clusterkit.EventNodeJoin, clusterkit.EventRebalanceStart,
		clusterkit.EventPartitionChange, clusterkit.EventRebalanceComplete)); err != nil {
		panic(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	<-done
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// NodeJoin node-1 bootstrap=true
	// RebalanceStart node_join: 4 partitions
	// PartitionChange partition-0 -> node-1
	// PartitionChange partition-1 -> node-1
	// PartitionChange partition-2 -> node-1
	// PartitionChange partition-3 -> node-1
	// RebalanceComplete
}

// Go callbacks, the reference library's style: each runs in its own actor,
// in order, and a panic in one is logged and isolated.
func ExampleClusterKit_OnPartitionChange() {
	ck, err := clusterkit.New(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())

	var wg sync.WaitGroup
	wg.Add(64)
	var mu sync.Mutex
	mine := 0
	ck.OnPartitionChange(func(e *clusterkit.PartitionChangeEvent) {
		defer wg.Done()
		if e.CopyToNode.ID != ck.GetMyNodeID() {
			return
		}
		mu.Lock()
		mine++ // a real store would copy e.PartitionID from e.CopyFromNodes here
		mu.Unlock()
	})
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	wg.Wait()
	fmt.Println(mine, "partitions to load on", ck.GetMyNodeID())
	// Output: 64 partitions to load on node-1
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

// Custom data is replicated through Raft; compare-and-set makes safe counters.
func ExampleClusterKit_CompareAndSetCustomData() {
	ck, err := clusterkit.New(clusterkit.Options{NodeID: "node-1", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())

	// Create the counter only if it does not exist (expected version 0).
	if _, err := ck.CompareAndSetCustomData(context.Background(), "jobs", 0, []byte("1")); err != nil {
		panic(err)
	}
	value, version, _ := ck.GetCustomData("jobs")
	// A writer that read an older version loses, and nothing changes.
	_, err = ck.CompareAndSetCustomData(context.Background(), "jobs", version-1, []byte("99"))
	fmt.Println(string(value), errors.Is(err, clusterkit.ErrVersionMismatch))
	if _, err := ck.CompareAndSetCustomData(context.Background(), "jobs", version, []byte("2")); err != nil {
		panic(err)
	}
	value, _, _ = ck.GetCustomData("jobs")
	fmt.Println(string(value), ck.ListCustomDataKeys())
	// Output:
	// 1 true
	// 2 [jobs]
}
