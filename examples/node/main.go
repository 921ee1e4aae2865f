// Command node is ClusterKit's one binary for operators: it runs a node
// (`node serve`, the default) and asks a running node about the cluster
// (`node members`, `node status`, `node partitions`, `node watch`, ...: see
// cli.go). Every flag can also be set from the environment (config.go).
//
//	go run ./examples/node -id node-1 -http 127.0.0.1:8081
//	go run ./examples/node -id node-2 -http 127.0.0.1:8082 -join 127.0.0.1:8081
//	go run ./examples/node members -addr 127.0.0.1:8081
//
// A node prints one "ready" line with its addresses once it holds the
// committed table, and stops on SIGINT/SIGTERM (-leave-on-exit leaves the
// cluster instead of just stopping). `node recover` recovers a stopped node's
// data directory after the loss of a majority of voters (recover.go).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/clusterkit/clusterkit/internal/tlsfiles"
)

// handoffFlags defines the flags that pace the partition hand-off (defaults
// from d) and returns what sets them in Options once fs is parsed.
func handoffFlags(fs *configFlags, d clusterkit.Options) func(*clusterkit.Options) {
	var (
		replicaWait = fs.Duration("replica-delay", d.ReplicaDelay, "how long the replica slots of a member that failure detection removed stay reserved for it before they are re-created elsewhere; negative: re-replicate at once (leader setting)")
		handoffWait = fs.Duration("handoff-timeout", d.HandoffTimeout, "bound of one partition copy: a longer one is cancelled, or forced ready when no other owner is (leader setting)")
		maxMoves    = fs.Int("max-moves-per-node", d.MaxMovesPerNode, "most syncing partition copies into or out of one node; negative: no limit (leader setting)")
	)
	return func(o *clusterkit.Options) {
		o.ReplicaDelay, o.HandoffTimeout, o.MaxMovesPerNode = *replicaWait, *handoffWait, *maxMoves
	}
}

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	var ex exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(os.Stderr, ex.msg)
		}
		os.Exit(ex.code)
	}
	if errors.Is(err, errUsage) {
		fmt.Fprintln(os.Stderr, "node:", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "node:", err)
	os.Exit(1)
}

// errUsage marks a command line that cannot be run (exit status 2).
var errUsage = errors.New("usage")

// exitError ends the program with code after printing msg (probe: not
// ready is exit 1 with the reasons, not an error).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// run dispatches a subcommand; flags first (or nothing) means serve.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, rest := args[0], args[1:]
		switch name {
		case "serve":
			return serve(rest, stdout, stderr)
		case "recover":
			return runRecover(rest, stdout, stderr)
		case "help":
			return serve([]string{"-h"}, stdout, stderr)
		}
		if c, ok := commandByName(name); ok {
			return runCommand(c, rest, stdout, stderr)
		}
		return fmt.Errorf("%w: unknown subcommand %q (node -h lists them)", errUsage, name)
	}
	return serve(args, stdout, stderr)
}

// serveUsage heads `node -h`.
const serveUsage = `usage: node [serve] [flags]          run a node (the default)
       node <subcommand> [flags]      ask a running node (node <subcommand> -h)

subcommands:
%s
Every flag can also be set from the environment: CLUSTERKIT_<FLAG>, upper
case with underscores (-data-dir is CLUSTERKIT_DATA_DIR); the reference
deployment's names (NODE_ID, JOIN_ADDR, ...) are read after it. A flag on the
command line wins. docs/operations.md has the table.

flags of serve:
`

// serveFlags defines the flags of `node serve`; apply sets Options from
// them once parsed.
func serveFlags() (*configFlags, func(*clusterkit.Options) error, *serveExtras) {
	d := clusterkit.DefaultOptions()
	fs := newConfigFlags("node")
	x := &serveExtras{}
	var (
		id               = fs.String("id", "", "node ID; required")
		httpAddr         = fs.String("http", ":8080", "listen address for Raft and HTTP")
		name             = fs.String("name", "", "human-readable name")
		advertise        = fs.String("advertise", "", "address peers dial (default: -http's, with this host's address when -http has no host)")
		join             = fs.String("join", "", "comma-separated members to join through")
		bootstrap        = fs.Bool("bootstrap", false, "accepted for compatibility: a node without state and -join bootstraps")
		cluster          = fs.String("cluster-name", d.ClusterName, "cluster name")
		partitions       = fs.Int("partitions", 0, "partition count, fixed at bootstrap (0 = the cluster's, 64 when bootstrapping)")
		rf               = fs.Int("replication-factor", 0, "replication factor, fixed at bootstrap (0 = the cluster's, 3 when bootstrapping)")
		maxVoters        = fs.Int("max-voters", d.MaxVoters, "maximum Raft voters")
		voterStab        = fs.Duration("voter-stabilization", d.VoterStabilization, "how long a joiner must be healthy before it becomes a Raft voter")
		autoRejoin       = fs.Bool("auto-rejoin", true, "rejoin as a new life after finding out failure detection removed this node")
		dataDir          = fs.String("data-dir", "", "data directory; empty keeps everything in memory")
		hcEnabled        = fs.Bool("health-check", !d.HealthCheck.Disable, "enable failure detection")
		hcInterval       = fs.Duration("health-interval", d.HealthCheck.Interval, "probe interval")
		hcTimeout        = fs.Duration("health-timeout", d.HealthCheck.Timeout, "probe timeout")
		hcThreshold      = fs.Int("health-failure-threshold", d.HealthCheck.FailureThreshold, "missed probes before a peer is suspect")
		services         = fs.String("services", "", "comma-separated name=address services, e.g. kv=:9080,api=:3000")
		tok              = fs.String("auth-token", "", "cluster token (prefer -auth-token-file: a flag shows in ps)")
		tokFile          = fs.String("auth-token-file", "", "file of tokens, one per line: <token> (admin; the first is the one this node sends) or read <token>; re-read on SIGHUP and when it changes")
		authReads        = fs.Bool("auth-reads", false, "require a token (read or admin) on every route but /health, /ready and the dashboard's files")
		maxStreams       = fs.Int("max-event-streams", clusterkit.DefaultMaxEventStreams, "concurrent GET /events streams this node serves")
		maxStreamsClient = fs.Int("max-event-streams-per-client", clusterkit.DefaultMaxEventStreamsPerClient, "concurrent GET /events streams per client address")
		tlsCert          = fs.String("tls-cert", "", "PEM certificate: serve the port over TLS")
		tlsKey           = fs.String("tls-key", "", "PEM private key of -tls-cert")
		tlsCA            = fs.String("tls-ca", "", "PEM CA bundle that signed the other nodes' certificates (default: the system roots)")
		rebalance        = fs.Duration("rebalance-delay", d.RebalanceDelay, "debounce of membership changes")
		startWait        = fs.Duration("start-timeout", d.StartTimeout, "how long to wait to be ready")
		heartbeat        = fs.Duration("raft-heartbeat-timeout", d.Raft.HeartbeatTimeout, "Raft heartbeat timeout")
		election         = fs.Duration("raft-election-timeout", d.Raft.ElectionTimeout, "Raft election timeout")
		logLevel         = fs.String("log-level", "info", "debug, info, warn or error")
		logJSON          = fs.Bool("log-json", false, "log JSON lines instead of text")
		hcGrace          = fs.Duration("health-removal-grace", d.HealthCheck.RemovalGrace, "how long a suspect member stays before it is removed")
		zone             = fs.String("zone", "", "failure domain (rack, availability zone): each partition's owners, and the voters, are spread over zones")
		weight           = fs.String("weight", "1", "relative capacity: the node's share of partitions is proportional to it; 0 holds nothing, the node only routes")
	)
	fs.BoolVar(&x.leave, "leave-on-exit", false, "leave the cluster (instead of only stopping) on SIGINT/SIGTERM")
	fs.BoolVar(&x.events, "events", false, "print every lifecycle event on stdout as one line: event <kind> <JSON>, the JSON of GET /events")
	setHandoff := handoffFlags(fs, d)
	var keyHash clusterkit.KeyHash
	fs.TextVar(&keyHash, "key-hash", clusterkit.KeyHashDefault, "key hash at bootstrap: md5 or xxh64 (empty = the cluster's, md5 when bootstrapping)")
	apply := func(o *clusterkit.Options) error {
		var level slog.Level
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return fmt.Errorf("-log-level: %w", err)
		}
		if *logJSON {
			o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		} else {
			o.Logger = logging.Default(os.Stderr, level)
		}
		o.KeyHash = keyHash
		o.NodeID, o.HTTPAddr, o.NodeName, o.AdvertiseAddr = *id, *httpAddr, *name, *advertise
		o.ClusterName, o.PartitionCount, o.ReplicationFactor = *cluster, *partitions, *rf
		_ = *bootstrap // the flag stays for scripts; bootstrapping needs no option
		o.MaxVoters, o.DataDir = *maxVoters, *dataDir
		if *tok != "" && *tokFile != "" {
			return errors.New("-auth-token and -auth-token-file are both set: give one")
		}
		o.AuthToken, o.AuthTokenFile, o.AuthReads = *tok, *tokFile, *authReads
		o.HTTPLimits.MaxEventStreams, o.HTTPLimits.MaxEventStreamsPerClient = *maxStreams, *maxStreamsClient
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
			return fmt.Errorf("-weight %q: want an integer from 0", *weight)
		}
		o.Weight = w
		if w == 0 {
			o.Weight = clusterkit.WeightNone
		}
		setHandoff(o)
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
		files, err := loadTLS(*tlsCert, *tlsKey, *tlsCA)
		if err != nil {
			return err
		}
		x.tls = files
		if files != nil {
			o.TLSConfig = files.Config()
		}
		return nil
	}
	return fs, apply, x
}

// serveExtras are the flags of serve that are not Options.
type serveExtras struct {
	leave, events bool
	// tls is the node's TLS files (nil: no TLS), re-read on SIGHUP and
	// when they change.
	tls *tlsfiles.Files
}

// serve is `node serve`: one node until SIGINT/SIGTERM.
func serve(args []string, stdout, stderr io.Writer) error {
	fs, apply, x := serveFlags()
	fs.SetOutput(stderr)
	pos, done, err := fs.parseCommand(args, stdout, fmt.Sprintf(serveUsage, commandList()))
	if done || err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q (subcommands come first: node <subcommand> [flags])", errUsage, pos)
	}
	o := clusterkit.DefaultOptions()
	if err := apply(&o); err != nil {
		return err
	}
	ck, err := clusterkit.New(o)
	if err != nil {
		return err
	}
	if x.events {
		if err := printEvents(ck, stdout); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP re-reads the token file and the TLS files (caught from the
	// start: its default action would end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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
	fmt.Fprintf(stdout, "ready node=%s http=%s members=%d partitions=%d leader=%s\n", ck.GetMyNodeID(), self.IP, len(c.Nodes), c.Config.PartitionCount, ck.HealthCheck().Leader)
	// The TLS files are also checked every second, as the token file is by
	// the node itself: a renewal written by a tool that sends no signal
	// (cert-manager, a mounted secret) applies too.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reloads := reloader{ck: ck, tls: x.tls, log: o.Logger}
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-ck.Done():
			// Stopped from outside (POST /leave): nothing left to run.
			fmt.Fprintf(stdout, "stopped node=%s\n", ck.GetMyNodeID())
			return nil
		case <-hup:
			reloads.all("SIGHUP")
		case <-tick.C:
			reloads.tlsFiles("file changed")
		}
	}
	if x.leave {
		return ck.Leave(context.Background())
	}
	return ck.Stop(context.Background())
}

// reloader re-reads what a running node takes from files.
type reloader struct {
	ck      *clusterkit.ClusterKit
	tls     *tlsfiles.Files
	log     *slog.Logger
	lastErr string // the last TLS error logged (logged once, not every second)
}

// all re-reads the token file and the TLS files (SIGHUP).
func (r *reloader) all(why string) {
	r.log.Info("reloading the token file and the TLS files", "why", why)
	_ = r.ck.ReloadAuth() // logged by the node
	r.lastErr = ""
	r.tlsFiles(why)
}

func (r *reloader) tlsFiles(why string) {
	if r.tls == nil {
		return
	}
	changed, err := r.tls.Reload()
	switch {
	case err != nil && err.Error() != r.lastErr:
		r.lastErr = err.Error()
		r.log.Error("TLS files not loaded: the certificate in place stays", "why", why, "error", err)
	case err == nil && changed:
		r.lastErr = ""
		r.log.Info("TLS files reloaded: new connections use them", "why", why)
	}
}

// printEvents subscribes an actor that prints every event as one line,
// "event <kind> <JSON>", so scripts and multi-process tests can follow the
// cluster from outside. The JSON is the event as GET /events sends it
// (client.Event: snake_case, the one node shape).
func printEvents(ck *clusterkit.ClusterKit, stdout io.Writer) error {
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
		fmt.Fprintf(stdout, "event %s %s\n", ev.Kind, data)
		mu.Unlock()
	}))
	return ck.Subscribe(pid)
}

// loadTLS reads the node's TLS files (nil without a certificate).
func loadTLS(certFile, keyFile, caFile string) (*tlsfiles.Files, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("-tls-cert and -tls-key go together")
	}
	f, err := tlsfiles.Load(certFile, keyFile, caFile)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert/-tls-key/-tls-ca: %w", err)
	}
	return f, nil
}
