package clusterkit_test

// Examples of lifecycle events, which reach an application three ways, all
// in the same seq order: an actor (Subscribe), a Go iterator (Events) and
// callbacks (On...).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
)

// A user actor receives lifecycle events as protobuf messages, in commit order.
func ExampleClusterKit_Subscribe() {
	o := exampleOptions("node-1")
	o.PartitionCount = 4
	ck, err := clusterkit.New(o)
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

// After Unsubscribe returns, the actor gets no further event.
func ExampleClusterKit_Unsubscribe() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// keys spawns an actor that reports the custom-data keys it is sent.
	keys := func() (*actor.PID, chan string) {
		ch := make(chan string, 10)
		pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
			if e, ok := c.Message().(*messages.CustomDataChange); ok {
				ch <- e.GetKey()
			}
		}))
		if err := ck.Subscribe(pid, clusterkit.WithKinds(clusterkit.EventCustomDataChange)); err != nil {
			panic(err)
		}
		return pid, ch
	}
	leaving, fromLeaving := keys()
	_, fromStaying := keys()

	_, _ = ck.SetCustomData(ctx, "a", nil)
	fmt.Println(<-fromLeaving, <-fromStaying)
	if err := ck.Unsubscribe(leaving); err != nil {
		panic(err)
	}
	_, _ = ck.SetCustomData(ctx, "b", nil)
	fmt.Println(<-fromStaying, len(fromLeaving))
	// Output:
	// a a
	// b 0
}

// The node's actors live in the actor system of Options.ActorSystem (a new
// one per node by default); spawn the actors you subscribe there.
func ExampleClusterKit_ActorSystem() {
	system := actor.NewActorSystem()
	defer system.Shutdown()
	o := exampleOptions("node-1")
	o.ActorSystem = system // shared with the application's own actors
	ck := startNode(o)
	defer ck.Stop(context.Background())
	fmt.Println(ck.ActorSystem() == system)
	// Output: true
}

// Events is a loop over the node's events: the same events, with the same
// seqs, that subscribed actors and callbacks get. The iteration subscribes
// when the loop begins, which the code around it cannot see; here a writer
// writes "ready" until the loop has seen one, then does its work.
func ExampleClusterKit_Events() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Events subscribes when called: the writes below are in the stream.
	events := ck.Events(ctx, clusterkit.WithKinds(clusterkit.EventCustomDataChange))
	go func() {
		_, _ = ck.SetCustomData(ctx, "jobs/1", []byte("resize"))
		_, _ = ck.DeleteCustomData(ctx, "jobs/1")
	}()
	for e, err := range events {
		if err != nil { // ErrStopped or ErrSlowConsumer; ctx's end is no error
			fmt.Println(err)
			break
		}
		c := e.CustomDataChange
		fmt.Printf("%v %s %q deleted=%v\n", e.Kind, c.Key, c.Value, c.Deleted)
		if c.Deleted {
			break // ends the iteration and its subscription
		}
	}
	// Output:
	// custom_data_change jobs/1 "resize" deleted=false
	// custom_data_change jobs/1 "" deleted=true
}

// Events never holds up anyone else: a consumer that falls more than its
// buffer behind loses its own stream, with ErrSlowConsumer naming the last
// seq it got, after the events it had buffered. It then re-reads the state
// and iterates again.
func ExampleWithBuffer() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const jobs = 20
	others := make(chan struct{}) // closed when a callback has seen every job
	n := 0
	ck.OnCustomDataChange(func(e *clusterkit.CustomDataChangeEvent) {
		if n++; n == jobs {
			close(others)
		}
	})
	events := ck.Events(ctx, clusterkit.WithKinds(clusterkit.EventCustomDataChange), clusterkit.WithBuffer(4))
	release := make(chan struct{})
	go func() {
		defer close(release)
		for i := range jobs {
			_, _ = ck.SetCustomData(ctx, fmt.Sprintf("jobs/%02d", i), nil)
		}
		select {
		case <-others:
		case <-ctx.Done():
		}
	}()

	first := true
	for _, err := range events {
		if err != nil {
			fmt.Println(errors.Is(err, clusterkit.ErrSlowConsumer))
			break
		}
		if first {
			first = false
			<-release // a consumer busy elsewhere while 20 events arrive
		}
	}
	fmt.Println(len(ck.ListCustomDataKeys()), "keys, read again from the state")
	// Output:
	// true
	// 20 keys, read again from the state
}

// WithKinds narrows a subscription to some kinds of events.
func ExampleWithKinds() {
	ck, err := clusterkit.New(exampleOptions("node-1"))
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())
	got := make(chan string, 10)
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch e := c.Message().(type) {
		case *messages.NodeJoin:
			got <- "join " + e.GetNode().GetId()
		case *messages.ClusterHealthChange:
			got <- "health " + e.GetPreviousStatus() + " -> " + e.GetStatus()
		default:
			if _, isEvent := c.Message().(interface{ GetIndex() uint64 }); isEvent {
				got <- fmt.Sprintf("unexpected %T", e)
			}
		}
	}))
	if err := ck.Subscribe(pid, clusterkit.WithKinds(clusterkit.EventNodeJoin, clusterkit.EventClusterHealthChange)); err != nil {
		panic(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	fmt.Println(<-got) // one node, replication factor 3
	// Output:
	// join node-1
	// health unknown -> degraded
}

// OnlyMine keeps, of the PartitionChange events, those that ask this node
// to load a partition (other kinds are unaffected).
func ExampleOnlyMine() {
	change := func(o *clusterkit.Options) { o.PartitionCount, o.ReplicationFactor = 4, 1 }
	nodes := startCluster(1, change)
	defer stopAll(nodes)

	o := exampleOptions("node-2", addressOf(nodes[0]))
	change(&o)
	ck, err := clusterkit.New(o)
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())
	var mine []string
	done := make(chan struct{})
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch e := c.Message().(type) {
		case *messages.PartitionChange:
			mine = append(mine, e.GetCopyToNode().GetId())
		case *messages.RebalanceComplete:
			if e.GetTriggerNodeId() == "node-2" {
				close(done)
			}
		}
	}))
	if err := ck.Subscribe(pid, clusterkit.OnlyMine(),
		clusterkit.WithKinds(clusterkit.EventPartitionChange, clusterkit.EventRebalanceComplete)); err != nil {
		panic(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	<-done
	fmt.Println(mine) // 2 of the 4 partitions move to node-2
	// Output: [node-2 node-2]
}

// EventKind names a kind, or a set of kinds.
func ExampleEventKind_String() {
	fmt.Println(clusterkit.EventPartitionChange)
	fmt.Println(clusterkit.EventNodeJoin | clusterkit.EventNodeLeave)
	fmt.Println(clusterkit.EventKind(0))
	// Output:
	// partition_change
	// node_join|node_leave
	// none
}

// A seq orders events: the Raft index that caused the event, then its
// position among that entry's events.
func ExampleSeq_Less() {
	a := clusterkit.Seq{Index: 42, Sub: 3}
	b := clusterkit.Seq{Index: 43, Sub: 0}
	fmt.Println(a.Less(b), b.Less(a), a.Less(a))
	// Output: true false false
}

// Seq's text form is what /events uses as event IDs (Last-Event-ID, ?since=).
func ExampleSeq_String() {
	fmt.Println(clusterkit.Seq{Index: 42, Sub: 3})
	// Output: 42.3
}

// Go callbacks, the reference library's style: each runs in its own actor,
// in order, and a panic in one is logged and isolated.
func ExampleClusterKit_OnPartitionChange() {
	ck, err := clusterkit.New(exampleOptions("node-1"))
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())

	var wg sync.WaitGroup
	wg.Add(64)
	var mu sync.Mutex
	mine := 0
	remove := ck.OnPartitionChange(func(e *clusterkit.PartitionChangeEvent) {
		defer wg.Done()
		if e.CopyToNode.ID != ck.GetMyNodeID() {
			return
		}
		mu.Lock()
		mine++ // a real store would copy e.PartitionID from e.CopyFromNodes here
		mu.Unlock()
	})
	defer remove() // no new call once remove has returned
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	wg.Wait()
	fmt.Println(mine, "partitions to load on", ck.GetMyNodeID())
	// Output: 64 partitions to load on node-1
}

// A rebalance starts for a membership change (here the bootstrap), or on
// request.
func ExampleClusterKit_OnRebalanceStart() {
	ck, err := clusterkit.New(exampleOptions("node-1"))
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())
	starts := make(chan *clusterkit.RebalanceEvent, 10)
	ck.OnRebalanceStart(func(e *clusterkit.RebalanceEvent) { starts <- e })
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	if err := ck.RebalancePartitions(context.Background()); err != nil {
		panic(err)
	}
	for range 2 {
		e := <-starts
		fmt.Println(e.Trigger, e.TriggerNodeID, e.PartitionsToMove)
	}
	// Output:
	// node_join node-1 64
	// manual node-1 0
}

// RebalanceComplete comes once the rebalance's table is committed, with the
// time from its start on the leader to its commit here.
func ExampleClusterKit_OnRebalanceComplete() {
	ck, err := clusterkit.New(exampleOptions("node-1"))
	if err != nil {
		panic(err)
	}
	defer ck.Stop(context.Background())
	done := make(chan string, 1)
	ck.OnRebalanceComplete(func(e *clusterkit.RebalanceEvent, took time.Duration) {
		done <- fmt.Sprintf("%s: %d partitions placed, took > 0: %v", e.Trigger, e.PartitionsToMove, took > 0 && took == e.Duration)
	})
	if err := ck.Start(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(<-done)
	// Output: node_join: 64 partitions placed, took > 0: true
}

// Every custom-data write and delete, on any node, is an event on every node.
func ExampleClusterKit_OnCustomDataChange() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	changes := make(chan *clusterkit.CustomDataChangeEvent, 10)
	remove := ck.OnCustomDataChange(func(e *clusterkit.CustomDataChangeEvent) { changes <- e })
	defer remove()
	written, _ := ck.SetCustomData(ctx, "flags/dark-mode", []byte("on"))
	deleted, _ := ck.DeleteCustomData(ctx, "flags/dark-mode")
	for _, version := range []uint64{written, deleted} {
		e := <-changes
		fmt.Printf("%s %q deleted=%v at its version: %v\n", e.Key, e.Value, e.Deleted, e.Version == version && e.Seq.Index == version)
	}
	// Output:
	// flags/dark-mode "on" deleted=false at its version: true
	// flags/dark-mode "" deleted=true at its version: true
}

// With replication factor 2 a lone node is degraded; a second one makes the
// cluster healthy.
func ExampleClusterKit_OnClusterHealthChange() {
	o := exampleOptions("node-1")
	o.ReplicationFactor = 2
	health := make(chan string, 10)
	first := startNode(o, func(ck *clusterkit.ClusterKit) {
		ck.OnClusterHealthChange(func(e *clusterkit.ClusterHealthEvent) {
			health <- fmt.Sprintf("%s -> %s (%d of %d nodes healthy, %d partitions under-replicated)",
				e.PreviousStatus, e.Status, e.HealthyNodes, e.TotalNodes, e.UnderReplicatedPartitions)
		})
	})
	defer first.Stop(context.Background())
	fmt.Println(<-health)

	second := startNode(exampleOptions("node-2", addressOf(first)))
	defer second.Stop(context.Background())
	fmt.Println(<-health)
	// Output:
	// unknown -> degraded (1 of 1 nodes healthy, 64 partitions under-replicated)
	// degraded -> healthy (2 of 2 nodes healthy, 0 partitions under-replicated)
}

// Every node gets a NodeJoin for every new member, its own bootstrap
// included.
func ExampleClusterKit_OnNodeJoin() {
	joins := make(chan *clusterkit.NodeJoinEvent, 10)
	first := startNode(exampleOptions("node-1"), func(ck *clusterkit.ClusterKit) {
		ck.OnNodeJoin(func(e *clusterkit.NodeJoinEvent) { joins <- e })
	})
	defer first.Stop(context.Background())
	second := startNode(exampleOptions("node-2", addressOf(first)))
	defer second.Stop(context.Background())

	for range 2 {
		e := <-joins
		fmt.Println(e.Node.ID, "joined; bootstrap:", e.IsBootstrap, "cluster size:", e.ClusterSize)
	}
	// Output:
	// node-1 joined; bootstrap: true cluster size: 1
	// node-2 joined; bootstrap: false cluster size: 2
}

// A member removed, for any reason: "graceful_shutdown" (Leave),
// "removed_by_admin" (RemoveNode) or "health_check_failure".
func ExampleClusterKit_OnNodeLeave() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	leaves := make(chan *clusterkit.NodeLeaveEvent, 1)
	remove := nodes[0].OnNodeLeave(func(e *clusterkit.NodeLeaveEvent) { leaves <- e })
	defer remove()
	if err := nodes[1].Leave(ctx); err != nil {
		panic(err)
	}
	e := <-leaves
	fmt.Println(e.Node.ID, e.Reason)
	// Output: node-2 graceful_shutdown
}

// A known node back as a new life: restarted (here in memory, so with an
// empty state: a wiped disk), it rejoins, and every node gets a NodeRejoin
// and the partition changes it needs.
func ExampleClusterKit_OnNodeRejoin() {
	// node-2 is not a voter (MaxVoters 1): the cluster keeps its quorum
	// while node-2 is down.
	nodes := startCluster(2, func(o *clusterkit.Options) { o.MaxVoters = 1 })
	defer stopAll(nodes)
	rejoins := make(chan *clusterkit.NodeRejoinEvent, 1)
	nodes[0].OnNodeRejoin(func(e *clusterkit.NodeRejoinEvent) { rejoins <- e })

	o := exampleOptions("node-2", addressOf(nodes[0]))
	o.HTTPAddr = addressOf(nodes[1]) // back on its address
	o.MaxVoters = 1
	if err := nodes[1].Stop(context.Background()); err != nil {
		panic(err)
	}
	nodes[1] = startNode(o)
	e := <-rejoins
	fmt.Println(e.Node.ID, "rejoined after", map[bool]string{true: "some time", false: "no time"}[e.OfflineDuration > 0], "offline")
	// Output: node-2 rejoined after some time offline
}
