// Command demo starts a ClusterKit node, shows where keys live, and prints
// the lifecycle events a user actor and a Go callback received. It exits 0.
//
//	go run ./examples/demo
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
)

// eventPrinter is a user actor: it receives lifecycle events as protobuf messages.
type eventPrinter struct {
	mu    *sync.Mutex
	lines *[]string
	done  chan struct{} // closed at the first ClusterHealthChange: the bootstrap is over
}

func (p *eventPrinter) Receive(ctx actor.Context) {
	var line string
	switch e := ctx.Message().(type) {
	case *messages.NodeJoin:
		line = fmt.Sprintf("NodeJoin          node=%s cluster_size=%d bootstrap=%v", e.GetNode().GetId(), e.GetClusterSize(), e.GetIsBootstrap())
	case *messages.RebalanceStart:
		line = fmt.Sprintf("RebalanceStart    trigger=%s partitions_to_move=%d nodes=%v", e.GetTrigger(), e.GetPartitionsToMove(), e.GetNodesAffected())
	case *messages.PartitionChange:
		if e.GetPartition() >= 3 {
			return // one line per partition would be long: show the first three
		}
		line = fmt.Sprintf("PartitionChange   %s -> %s (%s, initial=%v)", e.GetPartitionId(), e.GetCopyToNode().GetId(), e.GetRole(), e.GetInitial())
	case *messages.RebalanceComplete:
		line = fmt.Sprintf("RebalanceComplete moved=%d in %v", e.GetPartitionsMoved(), time.Duration(e.GetDurationNanos()).Round(time.Millisecond))
	case *messages.ClusterHealthChange:
		line = fmt.Sprintf("ClusterHealth     %s -> %s (%d/%d nodes healthy, %d partitions under-replicated)", e.GetPreviousStatus(), e.GetStatus(), e.GetHealthyNodes(), e.GetTotalNodes(), e.GetUnderReplicatedPartitions())
		defer close(p.done)
	default:
		return
	}
	p.mu.Lock()
	*p.lines = append(*p.lines, line)
	p.mu.Unlock()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (host:port)")
	serve := flag.Bool("serve", false, "keep running after the demo (Ctrl-C to stop)")
	verbose := flag.Bool("v", false, "show ClusterKit's own logs")
	flag.Parse()
	if err := run(*addr, *serve, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(addr string, serve, verbose bool) error {
	opts := clusterkit.DefaultOptions()
	opts.NodeID = "node-1"
	opts.HTTPAddr = addr
	opts.Services = map[string]string{"kv": ":9080"}
	if !verbose {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ck, err := clusterkit.New(opts)
	if err != nil {
		return err
	}
	defer ck.Stop()

	// A user actor, subscribed before Start so it sees the bootstrap.
	var mu sync.Mutex
	var lines []string
	bootstrapped := make(chan struct{})
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &eventPrinter{mu: &mu, lines: &lines, done: bootstrapped}
	}))
	if err := ck.Subscribe(pid); err != nil {
		return err
	}
	// A Go callback, the reference library's style.
	done := make(chan time.Duration, 1)
	ck.OnRebalanceComplete(func(_ *clusterkit.RebalanceEvent, d time.Duration) { done <- d })

	start := time.Now()
	if err := ck.Start(); err != nil {
		return err
	}
	fmt.Printf("node-1 ready in %v\n", time.Since(start).Round(time.Millisecond))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("no RebalanceComplete within 10s")
	}

	c := ck.GetCluster()
	fmt.Printf("cluster %q: %d node(s), %d partitions, replication factor %d, key hash %s\n",
		c.Name, len(c.Nodes), c.Config.PartitionCount, c.Config.ReplicationFactor, c.HashConfig.Algorithm)
	fmt.Printf("health: %s (one node cannot hold %d copies: degraded, never refused)\n", ck.HealthCheck().ClusterStatus, c.Config.ReplicationFactor)
	fmt.Println("\nwhere keys live:")
	for _, key := range []string{"user:123", "test-key", "order:42"} {
		p, err := ck.GetPartition(key)
		if err != nil {
			return err
		}
		fmt.Printf("  %-9s -> %-13s primary=%s primary-here=%v epoch=%d\n", key, p.ID, ck.GetPrimary(p).ID, ck.IsPrimary(p), p.Epoch)
	}
	fmt.Printf("\nservice discovery: kv on %v\n", ck.ServiceAddresses("kv"))

	select { // the actor has seen the whole bootstrap sequence
	case <-bootstrapped:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the user actor did not see the bootstrap within 10s")
	}
	mu.Lock()
	fmt.Println("\nevents received by the user actor (in commit order):")
	for _, l := range slices.Clone(lines) {
		fmt.Println("  " + l)
	}
	mu.Unlock()

	if serve {
		fmt.Println("\nserving; try: curl http://" + httpAddr(ck) + "/cluster   (Ctrl-C to stop)")
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
	}
	return nil
}

func httpAddr(ck *clusterkit.ClusterKit) string {
	return ck.GetCluster().Nodes[0].IP
}
