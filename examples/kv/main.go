package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/logging"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h: the usage is printed
		}
		fmt.Fprintln(os.Stderr, "kv:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	d := clusterkit.DefaultOptions()
	fs := flag.NewFlagSet("kv", flag.ContinueOnError)
	var (
		cluster     = fs.Bool("cluster", false, "run a three-node cluster in this process on 127.0.0.1 (ports chosen by the OS, data in a temporary\ndirectory) and narrate a failover: formation, a write routed to its primary, that primary stopped, failover,\nits restart and rejoin, the rebalance; then stop and exit (0, or 1 with the reason). -id, -http, -kv, -join\nand -data-dir do not apply; the other flags do, with faster failure detection and Raft unless given;\nthe nodes' logs are shown only with an explicit -log-level")
		id          = fs.String("id", "", "node ID; required")
		httpAddr    = fs.String("http", "127.0.0.1:8080", "ClusterKit address (Raft and the gateway)")
		kvAddr      = fs.String("kv", "127.0.0.1:9080", "kv API address, registered as the \"kv\" service")
		join        = fs.String("join", "", "comma-separated ClusterKit addresses to join through")
		dataDir     = fs.String("data-dir", "", "ClusterKit's data directory (the kv data itself is in memory); empty: nothing on disk")
		partitions  = fs.Int("partitions", 0, "partition count, fixed at bootstrap (0 = the cluster's, 64 when bootstrapping)")
		rf          = fs.Int("replication-factor", 0, "replication factor, fixed at bootstrap (0 = the cluster's, 3 when bootstrapping)")
		hcInterval  = fs.Duration("health-interval", d.HealthCheck.Interval, "failure detection: probe interval")
		hcTimeout   = fs.Duration("health-timeout", d.HealthCheck.Timeout, "failure detection: probe timeout")
		hcThreshold = fs.Int("health-failure-threshold", d.HealthCheck.FailureThreshold, "failure detection: missed probes before a peer is suspect")
		hcGrace     = fs.Duration("health-removal-grace", d.HealthCheck.RemovalGrace, "failure detection: how long a suspect member stays before it is removed")
		rebalance   = fs.Duration("rebalance-delay", d.RebalanceDelay, "debounce of membership changes")
		heartbeat   = fs.Duration("raft-heartbeat-timeout", d.Raft.HeartbeatTimeout, "Raft heartbeat timeout")
		election    = fs.Duration("raft-election-timeout", d.Raft.ElectionTimeout, "Raft election timeout")
		handoff     = fs.Duration("handoff-grace", copyDeadline, "how long a partition moved to other nodes is kept for them to copy")
		ackLoads    = fs.Bool("handoff", true, "acknowledge each partition load once its copy is in (ClusterKit's hand-off); false: a new owner\ncounts as ready at once, as in an application without hand-off handling (for comparison)")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		asyncQueue  = fs.Int("async-queue", defaultAsyncQueue, "async replication: writes queued per replica before writes are refused (503 busy)")
		story       = fs.Bool("story", false, "run the story of the -replication and -routing mode in this process on 127.0.0.1: -nodes nodes, -keys keys\nwritten and read back, -joiners nodes join, one node is killed and restarted, under a write and read load;\nthen a report (requests, failures, lost acknowledged writes, time per phase); exit 1 if the mode broke its promise")
		nodes       = fs.Int("nodes", 10, "-story: nodes before the joins")
		joiners     = fs.Int("joiners", 2, "-story: nodes that join under load")
		keys        = fs.Int("keys", 1000, "-story: keys")
		readme      = fs.String("stories-readme", "", "run the three stories (sync, async, server routing) and write their reports into this file,\nbetween the markers <!-- stories:begin --> and <!-- stories:end --> (go generate does it for README.md)")
		bench       = fs.Bool("bench", false, "measure each mode on 3 nodes in this process: writes/s and latency under -writers unpaced writers, then\nthe acknowledged writes lost when a primary crashes under that load; prints a markdown table (docs/benchmarks.md)")
		benchRounds = fs.Int("bench-rounds", 3, "-bench: rounds of the three modes")
		benchFor    = fs.Duration("bench-duration", 3*time.Second, "-bench: measured load per run")
		writers     = fs.Int("writers", 0, "-story: paced writers (default 4); -bench: unpaced writers (default 32)")
		replication = ReplicationSync
		routing     = RoutingClient
	)
	fs.Var(&replication, "replication", "when a write is acknowledged: sync (every live owner, at least a majority, holds it) or async\n(the primary applied it; replicas get it in the background, in order)")
	fs.Var(&routing, "routing", "who finds a key's primary: client (the smart client; other nodes answer 421 not_owner) or server\n(any node forwards to the primary, so that curl works against any node)")
	var keyHash clusterkit.KeyHash
	fs.TextVar(&keyHash, "key-hash", clusterkit.KeyHashDefault, "key hash at bootstrap: md5 or xxh64 (empty = the cluster's, md5 when bootstrapping)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := logging.Default(os.Stderr, level)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	o := d
	if *story || *readme != "" || *bench {
		for _, name := range []string{"id", "http", "kv", "join", "data-dir", "cluster"} {
			if set[name] {
				return fmt.Errorf("-%s does not apply with -story or -stories-readme", name)
			}
		}
		*cluster = true // the story's timings and logs, as below
	}
	if *cluster {
		// The story's own timings, unless a flag asks otherwise.
		o = storyOptions()
		o.Logger = slog.New(slog.DiscardHandler)
		if set["log-level"] {
			o.Logger = logger
		}
		for _, name := range []string{"id", "http", "kv", "join", "data-dir"} {
			if set[name] {
				return fmt.Errorf("-%s does not apply with -cluster (the story picks the nodes' IDs, ports and data directories)", name)
			}
		}
		*hcInterval, *hcTimeout = pick(set["health-interval"], *hcInterval, o.HealthCheck.Interval), pick(set["health-timeout"], *hcTimeout, o.HealthCheck.Timeout)
		*hcThreshold = pick(set["health-failure-threshold"], *hcThreshold, o.HealthCheck.FailureThreshold)
		*hcGrace = pick(set["health-removal-grace"], *hcGrace, o.HealthCheck.RemovalGrace)
		*rebalance = pick(set["rebalance-delay"], *rebalance, o.RebalanceDelay)
		*heartbeat = pick(set["raft-heartbeat-timeout"], *heartbeat, o.Raft.HeartbeatTimeout)
		*election = pick(set["raft-election-timeout"], *election, o.Raft.ElectionTimeout)
	} else {
		o.Logger = logger
	}
	o.KeyHash = keyHash
	o.NodeID, o.HTTPAddr, o.DataDir = *id, *httpAddr, *dataDir
	o.PartitionCount, o.ReplicationFactor = *partitions, *rf
	o.HealthCheck.Interval, o.HealthCheck.Timeout = *hcInterval, *hcTimeout
	o.HealthCheck.FailureThreshold, o.HealthCheck.RemovalGrace = *hcThreshold, *hcGrace
	o.RebalanceDelay = *rebalance
	o.Raft.HeartbeatTimeout, o.Raft.ElectionTimeout = *heartbeat, *election // the lease follows a shorter heartbeat
	for _, a := range strings.Split(*join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.JoinAddrs = append(o.JoinAddrs, a)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *story || *readme != "" || *bench {
		cfg := modeStoryConfig{Options: o, Replication: replication, Routing: routing, AsyncQueue: *asyncQueue,
			Nodes: *nodes, Joiners: *joiners, Keys: *keys, Writers: *writers}
		if *bench {
			return runBench(ctx, benchConfig{Story: cfg, Rounds: *benchRounds, Writers: *writers, Duration: *benchFor}, os.Stdout)
		}
		if *joiners == 0 {
			cfg.Joiners = -1
		}
		if *readme != "" {
			return writeStories(ctx, cfg, *readme)
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		_, err := runModeStory(ctx, cfg, os.Stdout)
		return err
	}
	if *cluster {
		// Each wait of the story is bounded; this bounds the whole of it.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_, err := runStory(ctx, storyConfig{Options: o, HandoffGrace: *handoff}, os.Stdout)
		if err != nil && !set["log-level"] {
			err = fmt.Errorf("%w\n(run again with -log-level info to see the nodes' logs)", err)
		}
		return err
	}
	n, err := NewNode(Config{ClusterKit: o, KVAddr: *kvAddr, HandoffGrace: *handoff, NoHandoff: !*ackLoads,
		Replication: replication, Routing: routing, AsyncQueue: *asyncQueue})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting: %w", err)
		}
		return err
	}
	c := n.CK.GetCluster()
	fmt.Printf("ready node=%s http=%s kv=%s members=%d partitions=%d replication=%s routing=%s\n",
		n.CK.GetMyNodeID(), *httpAddr, n.KVAddr, len(c.Nodes), c.Config.PartitionCount, replication, routing)
	select {
	case <-ctx.Done():
	case <-n.CK.Done():
		fmt.Printf("stopped node=%s\n", n.CK.GetMyNodeID())
		return nil
	}
	return n.Stop(context.Background())
}

// pick is the flag's value when it was given, else the story's own.
func pick[T any](given bool, flagValue, story T) T {
	if given {
		return flagValue
	}
	return story
}
