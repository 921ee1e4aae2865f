// Command node runs one ClusterKit node as a process: every option is a flag,
// and the reference deployment's environment variables (NODE_ID, HTTP_ADDR or
// HTTP_PORT, JOIN_ADDR, DATA_DIR, ...) set the flags' defaults.
//
//	go run ./examples/node -id node-1 -http 127.0.0.1:8081
//	go run ./examples/node -id node-2 -http 127.0.0.1:8082 -join 127.0.0.1:8081
//
// It prints one "ready" line with its addresses once it holds the committed
// table, and stops on SIGINT/SIGTERM (-leave-on-exit leaves the cluster
// instead of just stopping). `node recover` recovers a stopped node's data
// directory after the loss of a majority of voters (recover.go).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/internal/logging"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envBool reads a boolean environment variable ("true", "false", "1", "0",
// ...), def when unset or unreadable.
func envBool(name string, def bool) bool {
	if b, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return b
	}
	return def
}

// envDuration reads a duration environment variable ("30s", "-1s", ...),
// def when unset or unreadable.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// envInt reads an integer environment variable, def when unset or
// unreadable.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// handoffFlags defines the flags that pace the partition hand-off (their
// defaults from d, or from their environment variables) and returns what
// sets them in Options once fs is parsed.
func handoffFlags(fs *flag.FlagSet, d clusterkit.Options) func(*clusterkit.Options) {
	var (
		replicaWait = fs.Duration("replica-delay", envDuration("REPLICA_DELAY", d.ReplicaDelay), "how long the replica slots of a member that failure detection removed stay reserved for it before they are re-created elsewhere; negative: re-replicate at once (env REPLICA_DELAY; leader setting)")
		handoffWait = fs.Duration("handoff-timeout", envDuration("HANDOFF_TIMEOUT", d.HandoffTimeout), "bound of one partition copy: a longer one is cancelled, or forced ready when no other owner is (env HANDOFF_TIMEOUT; leader setting)")
		maxMoves    = fs.Int("max-moves-per-node", envInt("MAX_MOVES_PER_NODE", d.MaxMovesPerNode), "most syncing partition copies into or out of one node; negative: no limit (env MAX_MOVES_PER_NODE; leader setting)")
	)
	return func(o *clusterkit.Options) {
		o.ReplicaDelay, o.HandoffTimeout, o.MaxMovesPerNode = *replicaWait, *handoffWait, *maxMoves
	}
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "recover" {
		return runRecover(args[1:], os.Stdout)
	}
	d := clusterkit.DefaultOptions()
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: node [flags]\n       node recover [flags]   quorum-loss recovery (node recover -h)\n\nflags:\n")
		fs.PrintDefaults()
	}
	httpDefault := env("HTTP_ADDR", "")
	if httpDefault == "" {
		httpDefault = ":" + env("HTTP_PORT", "8080")
	}
	var (
		id          = fs.String("id", env("NODE_ID", ""), "node ID (env NODE_ID); required")
		httpAddr    = fs.String("http", httpDefault, "listen address for Raft and HTTP (env HTTP_ADDR or HTTP_PORT)")
		name        = fs.String("name", env("NODE_NAME", ""), "human-readable name (env NODE_NAME)")
		advertise   = fs.String("advertise", env("ADVERTISE_ADDR", ""), "address peers dial (env ADVERTISE_ADDR)")
		join        = fs.String("join", env("JOIN_ADDR", ""), "comma-separated members to join through (env JOIN_ADDR)")
		bootstrap   = fs.Bool("bootstrap", false, "accepted for compatibility: a node without state and -join bootstraps")
		cluster     = fs.String("cluster-name", env("CLUSTER_NAME", d.ClusterName), "cluster name (env CLUSTER_NAME)")
		partitions  = fs.Int("partitions", 0, "partition count, fixed at bootstrap (0 = the cluster's, 64 when bootstrapping)")
		rf          = fs.Int("replication-factor", 0, "replication factor, fixed at bootstrap (0 = the cluster's, 3 when bootstrapping)")
		maxVoters   = fs.Int("max-voters", d.MaxVoters, "maximum Raft voters")
		voterStab   = fs.Duration("voter-stabilization", d.VoterStabilization, "how long a joiner must be healthy before it becomes a Raft voter")
		autoRejoin  = fs.Bool("auto-rejoin", envBool("AUTO_REJOIN", true), "rejoin as a new life after finding out failure detection removed this node (env AUTO_REJOIN)")
		dataDir     = fs.String("data-dir", env("DATA_DIR", ""), "data directory (env DATA_DIR); empty keeps everything in memory")
		hcEnabled   = fs.Bool("health-check", !d.HealthCheck.Disable, "enable failure detection")
		hcInterval  = fs.Duration("health-interval", d.HealthCheck.Interval, "probe interval")
		hcTimeout   = fs.Duration("health-timeout", d.HealthCheck.Timeout, "probe timeout")
		hcThreshold = fs.Int("health-failure-threshold", d.HealthCheck.FailureThreshold, "missed probes before a peer is suspect")
		services    = fs.String("services", env("SERVICES", ""), "comma-separated name=address services (env SERVICES), e.g. kv=:9080,api=:3000")
		token       = fs.String("auth-token", env("AUTH_TOKEN", ""), "cluster token (env AUTH_TOKEN)")
		tlsCert     = fs.String("tls-cert", env("TLS_CERT_FILE", ""), "PEM certificate: serve the port over TLS (env TLS_CERT_FILE)")
		tlsKey      = fs.String("tls-key", env("TLS_KEY_FILE", ""), "PEM private key of -tls-cert (env TLS_KEY_FILE)")
		tlsCA       = fs.String("tls-ca", env("TLS_CA_FILE", ""), "PEM CA bundle that signed the other nodes' certificates (env TLS_CA_FILE); default: the system roots")
		rebalance   = fs.Duration("rebalance-delay", d.RebalanceDelay, "debounce of membership changes")
		startWait   = fs.Duration("start-timeout", d.StartTimeout, "how long to wait to be ready")
		heartbeat   = fs.Duration("raft-heartbeat-timeout", d.Raft.HeartbeatTimeout, "Raft heartbeat timeout")
		election    = fs.Duration("raft-election-timeout", d.Raft.ElectionTimeout, "Raft election timeout")
		logLevel    = fs.String("log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
		logJSON     = fs.Bool("log-json", false, "log JSON lines instead of text")
		leave       = fs.Bool("leave-on-exit", false, "leave the cluster (instead of only stopping) on SIGINT/SIGTERM")
		events      = fs.Bool("events", false, "print every lifecycle event on stdout as one line: event <kind> <JSON>, the JSON of GET /events")
		hcGrace     = fs.Duration("health-removal-grace", d.HealthCheck.RemovalGrace, "how long a suspect member stays before it is removed")
		zone        = fs.String("zone", env("ZONE", ""), "failure domain (rack, availability zone): each partition's owners, and the voters, are spread over zones (env ZONE)")
		weight      = fs.String("weight", env("WEIGHT", "1"), "relative capacity: the node's share of partitions is proportional to it; 0 holds nothing, the node only routes (env WEIGHT)")
	)
	setHandoff := handoffFlags(fs, d)
	var keyHash clusterkit.KeyHash
	fs.TextVar(&keyHash, "key-hash", clusterkit.KeyHashDefault, "key hash at bootstrap: md5 or xxh64 (empty = the cluster's, md5 when bootstrapping)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	var logger *slog.Logger
	if *logJSON {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	} else {
		logger = logging.Default(os.Stderr, level)
	}
	o := d
	o.KeyHash = keyHash
	o.NodeID, o.HTTPAddr, o.NodeName, o.AdvertiseAddr = *id, *httpAddr, *name, *advertise
	o.ClusterName, o.PartitionCount, o.ReplicationFactor = *cluster, *partitions, *rf
	_ = *bootstrap // the flag stays for scripts; bootstrapping needs no option
	o.MaxVoters, o.DataDir, o.AuthToken, o.Logger = *maxVoters, *dataDir, *token, logger
	o.VoterStabilization = *voterStab
	if !*autoRejoin {
		o.AutoRejoin = clusterkit.AutoRejoinOff
	}
	o.HealthCheck = clusterkit.HealthCheckConfig{Disable: !*hcEnabled, Interval: *hcInterval, Timeout: *hcTimeout,
		FailureThreshold: *hcThreshold, RemovalGrace: *hcGrace}
	o.RebalanceDelay, o.StartTimeout = *rebalance, *startWait
	o.Zone = *zone
	w, err := strconv.Atoi(strings.TrimSpace(*weight))
	if err != nil || w < 0 {
		return fmt.Errorf("-weight (or WEIGHT) %q: want an integer from 0", *weight)
	}
	o.Weight = w
	if w == 0 {
		o.Weight = clusterkit.WeightNone
	}
	setHandoff(&o)
	o.Raft.HeartbeatTimeout, o.Raft.ElectionTimeout = *heartbeat, *election
	for _, a := range strings.Split(*join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.JoinAddrs = append(o.JoinAddrs, a)
		}
	}
	if *services != "" {
		o.Services = map[string]string{}
		for _, kv := range strings.Split(*services, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return fmt.Errorf("-services: %q is not name=address", kv)
			}
			o.Services[k] = v
		}
	}

	tlsConfig, err := loadTLS(*tlsCert, *tlsKey, *tlsCA)
	if err != nil {
		return err
	}
	o.TLSConfig = tlsConfig

	ck, err := clusterkit.New(o)
	if err != nil {
		return err
	}
	if *events {
		if err := printEvents(ck); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ck.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting: %w", err)
		}
		return err
	}
	c := ck.GetCluster()
	var self clusterkit.Node
	for _, n := range c.Nodes {
		if n.ID == ck.GetMyNodeID() {
			self = n
		}
	}
	fmt.Printf("ready node=%s http=%s members=%d partitions=%d leader=%s\n", ck.GetMyNodeID(), self.IP, len(c.Nodes), c.Config.PartitionCount, ck.HealthCheck().Leader)
	select {
	case <-ctx.Done():
	case <-ck.Done():
		// Stopped from outside (POST /leave): nothing left to run.
		fmt.Printf("stopped node=%s\n", ck.GetMyNodeID())
		return nil
	}
	if *leave {
		return ck.Leave(context.Background())
	}
	return ck.Stop(context.Background())
}

// printEvents subscribes an actor that prints every event as one line,
// "event <kind> <JSON>", so scripts and multi-process tests can follow the
// cluster from outside. The JSON is the event as GET /events sends it
// (client.Event: snake_case, the one node shape).
func printEvents(ck *clusterkit.ClusterKit) error {
	var mu sync.Mutex
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		ev, ok := httpgw.EventOf(ctx.Message())
		if !ok {
			return // actor lifecycle messages
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return
		}
		mu.Lock()
		fmt.Printf("event %s %s\n", ev.Kind, data)
		mu.Unlock()
	}))
	return ck.Subscribe(pid)
}

// loadTLS builds the node's TLS config from PEM files (nil without a cert).
func loadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("-tls-cert and -tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca %s: no PEM certificate found", caFile)
		}
	}
	return cfg, nil
}
