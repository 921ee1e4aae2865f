// Command demo runs a three-node ClusterKit cluster in one process over
// loopback TCP and narrates what happens: bootstrap, two joins with the
// partitions that move, where keys live, service discovery, custom data
// written on one node and read on another, a graceful leave, and the events a
// user actor received. It exits 0.
//
//	go run ./examples/demo          # the narrated run
//	go run ./examples/demo -serve   # then keep the nodes running (Ctrl-C stops)
//	go run ./examples/demo -v       # with ClusterKit's own logs
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
)

func main() {
	serve := flag.Bool("serve", false, "keep the nodes running after the demo (Ctrl-C to stop)")
	verbose := flag.Bool("v", false, "show ClusterKit's own logs")
	flag.Parse()
	if err := run(*serve, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// journal is a user actor: it receives lifecycle events as protobuf
// messages and writes one line per interesting event.
type journal struct {
	mu    sync.Mutex
	lines []string
	done  map[string]chan struct{} // closed when a rebalance for that trigger node completes
}

func (j *journal) Receive(ctx actor.Context) {
	var line string
	switch e := ctx.Message().(type) {
	case *messages.NodeJoin:
		line = fmt.Sprintf("NodeJoin          %s (cluster size %d, bootstrap %v)", e.GetNode().GetId(), e.GetClusterSize(), e.GetIsBootstrap())
	case *messages.NodeLeave:
		line = fmt.Sprintf("NodeLeave         %s (%s; it was primary of %d partitions)", e.GetNode().GetId(), e.GetReason(), len(e.GetPartitionsOwned()))
	case *messages.RebalanceStart:
		line = fmt.Sprintf("RebalanceStart    trigger=%s node=%s partitions_to_move=%d", e.GetTrigger(), e.GetTriggerNodeId(), e.GetPartitionsToMove())
	case *messages.RebalanceComplete:
		line = fmt.Sprintf("RebalanceComplete moved=%d nodes=%v in %v", e.GetPartitionsMoved(), e.GetNodesAffected(), time.Duration(e.GetDurationNanos()).Round(time.Millisecond))
		j.mu.Lock()
		if ch, ok := j.done[e.GetTriggerNodeId()]; ok {
			close(ch)
			delete(j.done, e.GetTriggerNodeId())
		}
		j.mu.Unlock()
	case *messages.CustomDataChange:
		line = fmt.Sprintf("CustomDataChange  %s=%q version %d", e.GetKey(), e.GetValue(), e.GetVersion())
	case *messages.ClusterHealthChange:
		line = fmt.Sprintf("ClusterHealth     %s -> %s (%d/%d nodes healthy, %d partitions under-replicated)", e.GetPreviousStatus(), e.GetStatus(), e.GetHealthyNodes(), e.GetTotalNodes(), e.GetUnderReplicatedPartitions())
	default:
		return
	}
	j.mu.Lock()
	j.lines = append(j.lines, line)
	j.mu.Unlock()
}

// expect returns a channel closed when a rebalance triggered by node completes.
func (j *journal) expect(node string) chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	ch := make(chan struct{})
	j.done[node] = ch
	return ch
}

func wait(ch chan struct{}, what string) error {
	select {
	case <-ch:
		return nil
	case <-time.After(15 * time.Second):
		return fmt.Errorf("timed out waiting for %s", what)
	}
}

func options(id, join string, verbose bool) clusterkit.Options {
	o := clusterkit.DefaultOptions()
	o.NodeID, o.HTTPAddr, o.JoinAddr = id, "127.0.0.1:0", join
	o.Services = map[string]string{"kv": ":9" + strings.TrimPrefix(id, "node-") + "00"}
	if !verbose {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func address(ck *clusterkit.ClusterKit) string {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == ck.GetMyNodeID() {
			return n.IP
		}
	}
	return ""
}

func balance(ck *clusterkit.ClusterKit) string {
	primaries, slots := map[string]int{}, map[string]int{}
	for _, p := range ck.GetCluster().PartitionMap.Partitions {
		primaries[p.PrimaryNode]++
		slots[p.PrimaryNode]++
		for _, r := range p.ReplicaNodes {
			slots[r]++
		}
	}
	var ids []string
	for id := range slots {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s %d primary/%d total", id, primaries[id], slots[id]))
	}
	return strings.Join(parts, ", ")
}

func run(serve, verbose bool) error {
	begin := time.Now()
	j := &journal{done: map[string]chan struct{}{}}

	first, err := clusterkit.New(options("node-1", "", verbose))
	if err != nil {
		return err
	}
	defer first.Stop()
	pid := first.ActorSystem().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return j }))
	if err := first.Subscribe(pid); err != nil { // before Start: it sees the bootstrap too
		return err
	}
	booted := j.expect("node-1")
	t0 := time.Now()
	if err := first.Start(); err != nil {
		return err
	}
	if err := wait(booted, "the bootstrap"); err != nil {
		return err
	}
	fmt.Printf("node-1 bootstrapped a cluster in %v and leads it: %s\n", time.Since(t0).Round(time.Millisecond), address(first))
	fmt.Printf("  64 partitions, replication factor 3; alone it holds every copy: %s\n", balance(first))

	nodes := []*clusterkit.ClusterKit{first}
	for _, id := range []string{"node-2", "node-3"} {
		ck, err := clusterkit.New(options(id, address(first), verbose))
		if err != nil {
			return err
		}
		defer ck.Stop()
		done := j.expect(id)
		t := time.Now()
		if err := ck.Start(); err != nil {
			return err
		}
		joined := time.Since(t)
		if err := wait(done, id+"'s rebalance"); err != nil {
			return err
		}
		nodes = append(nodes, ck)
		fmt.Printf("%s joined through node-1 in %v; after the rebalance: %s\n", id, joined.Round(time.Millisecond), balance(first))
	}

	fmt.Println("\nwhere keys live (answered locally from the committed table, no network hop):")
	for _, key := range []string{"user:123", "test-key", "order:42"} {
		p, err := first.GetPartition(key)
		if err != nil {
			return err
		}
		var replicas []string
		for _, r := range first.GetReplicas(p) {
			replicas = append(replicas, r.ID)
		}
		fmt.Printf("  %-9s -> %-13s primary=%s replicas=%v epoch=%d\n", key, p.ID, first.GetPrimary(p).ID, replicas, p.Epoch)
	}
	fmt.Printf("\nservice discovery, as seen from node-3: kv on %v\n", nodes[2].ServiceAddresses("kv"))

	// Custom data: written on a follower (forwarded to the leader), read
	// linearizably on another node.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t := time.Now()
	if _, err := nodes[1].SetCustomDataContext(ctx, "flags/dark-mode", []byte("on")); err != nil {
		return err
	}
	wrote := time.Since(t)
	value, version, err := nodes[2].GetCustomDataLinearizable(ctx, "flags/dark-mode")
	if err != nil {
		return err
	}
	fmt.Printf("custom data written on node-2 in %v (forwarded to the leader), read on node-3: flags/dark-mode=%s (version %d)\n",
		wrote.Round(time.Millisecond), value, version)

	left := j.expect("node-3")
	if err := nodes[2].Leave(); err != nil {
		return err
	}
	if err := wait(left, "the rebalance after node-3 left"); err != nil {
		return err
	}
	fmt.Printf("\nnode-3 left gracefully; after the rebalance: %s (health %s)\n", balance(first), first.HealthCheck().ClusterStatus)

	j.mu.Lock()
	fmt.Println("\nevents received by a user actor on node-1, in commit order:")
	for _, l := range j.lines {
		fmt.Println("  " + l)
	}
	j.mu.Unlock()
	fmt.Printf("\ndemo finished in %v\n", time.Since(begin).Round(time.Millisecond))

	if serve {
		fmt.Println("\nserving; try: curl http://" + address(first) + "/cluster   (Ctrl-C to stop)")
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
	}
	return nil
}
