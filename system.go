// Package clusterkit is cluster coordination for Go applications that keep
// their own data: which partition a key belongs to, which nodes own each
// partition, who is alive, who leads, when data must move, and an event for
// every change. It is an actor system (protoactor-go) around a Raft-replicated
// cluster state (hashicorp/raft).
//
// Quick start:
//
//	ck, err := clusterkit.New(clusterkit.Options{NodeID: "node-1", HTTPAddr: ":8080"})
//	if err != nil { ... }
//	ck.OnPartitionChange(func(e *clusterkit.PartitionChangeEvent) { ... })
//	if err := ck.Start(); err != nil { ... }
//	defer ck.Stop()
//	p, _ := ck.GetPartition("user:123")
//	if ck.IsPrimary(p) { ... }
package clusterkit

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterkit/clusterkit/actors"
	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/internal/eventlog"
	"github.com/clusterkit/clusterkit/internal/logging"
	"github.com/clusterkit/clusterkit/internal/mux"
	"github.com/clusterkit/clusterkit/internal/nodefile"
	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// stopSnapshotBehind: a clean Stop takes a snapshot when more entries than
// this were applied since the last one.
const stopSnapshotBehind = 256

// eventLogCapacity is how many recent events GET /events can resume from.
const eventLogCapacity = 4096

// ClusterKit is one node. Create it with New, then Start it; Stop it once.
// All methods are safe for concurrent use.
type ClusterKit struct {
	given     Options               // as New got them: what the user set explicitly
	tbl       atomic.Pointer[table] // the routing view in facade types (see table)
	opts      Options
	log       *slog.Logger
	fsm       *raftfsm.FSM
	system    *actor.ActorSystem
	ownSystem bool
	stats     *actors.Stats
	createdAt time.Time

	mu               sync.Mutex
	started, stopped bool
	children         actors.Children
	root             *actor.PID
	pendingSubs      []*actors.Subscribe
	pendingCallbacks []*actors.RegisterCallback
	callbacks        *actors.CallbackRegistry

	// Set by Start before the node is visible to other goroutines.
	raft       *raft.Raft
	stores     *raftfsm.Stores
	network    Network
	mux        *mux.Mux
	stream     *raftfsm.StreamLayer
	transport  *raft.NetworkTransport
	peers      *rpc.Client
	refused    chan error
	ln         net.Listener
	server     *http.Server
	serverDone chan struct{}
	advertise  string
	life       *actors.Life
	tracker    *actors.PeerTracker
	resumed    bool          // started from its own persisted Raft state
	identity   nodefile.File // the node file (zero without a DataDir)
	identityMu sync.Mutex
	lastAlive  int64
	delivered  actors.Seq // last delivered event seq before this start
	lastSeq    struct {
		sync.Mutex
		actors.Seq
	}
	running atomic.Bool

	// recovery is what a quorum-loss recovery left to do (recover.go).
	recovery *actors.Recovery

	persister  *persister             // nil without a DataDir
	snapshots  *snapshotter           // nil without a DataDir
	progress   *nodefile.ProgressFile // nil without a DataDir
	progressMu sync.Mutex

	stopOnce sync.Once
	stopErr  error
	done     chan struct{} // closed when Stop has finished

	httpRequests, httpErrors atomic.Int64
	// Prometheus: one registry per node (several nodes may share a process).
	registry        *prometheus.Registry
	httpRequestsVec *prometheus.CounterVec
	// eventLog keeps recent events for GET /events (set by start, before
	// any event is delivered).
	eventLog atomic.Pointer[eventlog.Log]
	gateway  *httpgw.Gateway
}

// New validates opts (reporting every problem at once) and creates a node.
// Nothing listens until Start.
func New(opts Options) (*ClusterKit, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	given := opts
	opts = opts.withDefaults()
	logger := opts.nodeLogger()
	ck := &ClusterKit{
		given:     given,
		opts:      opts,
		log:       logger,
		fsm:       raftfsm.New(opts.NodeID, logger.With("component", "fsm")),
		stats:     &actors.Stats{},
		createdAt: time.Now(),
		system:    opts.ActorSystem,
		network:   opts.Network,
		refused:   make(chan error, 1),
		done:      make(chan struct{}),
		tracker:   actors.NewPeerTracker(),
		callbacks: actors.NewCallbackRegistry(),
	}
	ck.life = actors.NewLife(ck.membershipChanged)
	if ck.network == nil {
		ck.network = &TCPNetwork{}
	}
	ck.registry = ck.newRegistry()
	ck.eventLog.Store(eventlog.New(eventLogCapacity, actors.Seq{}))
	if ck.system == nil {
		// protoactor logs routine lifecycle at Info: keep it at Debug here.
		pa := logging.Demote(logger.With("lib", "protoactor"), 4)
		ck.system = actor.NewActorSystem(
			actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return pa }),
			// The dead-letter log throttle runs a goroutine for one interval
			// after a dead letter (messages racing with Stop produce a few):
			// keep it short so Stop leaves nothing running for long.
			actor.WithDeadLetterThrottleInterval(100*time.Millisecond),
		)
		ck.ownSystem = true
	}
	return ck, nil
}

// nodeLogger is the node's logger: Options.Logger, or the default tint
// handler on stderr at Info, with the node's ID on every line.
func (o Options) nodeLogger() *slog.Logger {
	l := o.Logger
	if l == nil {
		l = logging.Default(os.Stderr, slog.LevelInfo)
	}
	return l.With("node", o.NodeID)
}

// ActorSystem returns the actor system the node's actors live in. Spawn the
// actors you pass to Subscribe here: PIDs are only valid in their system.
func (ck *ClusterKit) ActorSystem() *actor.ActorSystem { return ck.system }

// GetMyNodeID returns this node's ID.
func (ck *ClusterKit) GetMyNodeID() string { return ck.opts.NodeID }

// Start listens on HTTPAddr, starts Raft and the actor tree and returns when
// the node holds a committed partition table. A node with no state
// bootstraps a new cluster; one with join addresses joins through them. Start
// gives up after Options.StartTimeout, or when ctx ends: it then returns an
// error wrapping ctx.Err() within milliseconds. If Start fails for any
// reason, the node is stopped (every goroutine it started has ended) and
// cannot be started again: create a new one with New.
func (ck *ClusterKit) Start(ctx context.Context) error {
	ck.mu.Lock()
	switch {
	case ck.stopped:
		ck.mu.Unlock()
		return ErrStopped
	case ck.started:
		ck.mu.Unlock()
		return ErrAlreadyStarted
	}
	ck.started = true
	ck.mu.Unlock()

	if err := ck.start(ctx); err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		ck.log.Error("start failed", "error", err)
		// The caller's context has ended or Start failed: the clean-up
		// still runs to the end, so nothing is left behind.
		if stopErr := ck.Stop(context.WithoutCancel(ctx)); stopErr != nil {
			ck.log.Warn("cleanup after failed start", "error", stopErr)
		}
		return err
	}
	return nil
}

func (ck *ClusterKit) start(ctx context.Context) error {
	o := ck.opts
	ln, err := ck.network.Listen(o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("%w on %s: %w", ErrListen, o.HTTPAddr, err)
	}
	if o.TLSConfig != nil {
		// TLS wraps the whole port: the first-byte demultiplexer sees the
		// decrypted stream, so Raft and HTTP share it as before.
		ln = tls.NewListener(ln, o.TLSConfig)
	}
	ck.ln = ln
	ck.advertise = advertiseAddr(o.AdvertiseAddr, o.HTTPAddr, ln.Addr())
	if err := ck.loadIdentity(); err != nil {
		return err
	}
	// Events up to the last delivered one are not in this run's log: a
	// client resuming from before it gets 410, not a silent gap.
	ck.eventLog.Store(eventlog.New(eventLogCapacity, ck.delivered))
	if o.DataDir != "" {
		ck.persister = newPersister(ck, ck.delivered)
	}

	hc := logging.HCLog(ck.log, "raft")
	stores, err := raftfsm.OpenStores(o.DataDir, hc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	ck.stores = stores
	hasState, err := raft.HasExistingState(stores.Log, stores.Stable, stores.Snapshots)
	if err != nil {
		return fmt.Errorf("%w: read raft state: %w", ErrDataDir, err)
	}
	if hasState && o.DataDir != "" {
		if err := ck.checkDataDir(stores); err != nil {
			return err
		}
	}
	ck.resumed = hasState
	if ck.recovery, err = ck.loadRecovery(hasState); err != nil {
		return err
	}

	// One port: Raft connections and HTTP (gateway and node-to-node requests).
	ck.mux = mux.New(ln, ck.log.With("component", "mux"))
	dial := ck.dial
	ck.stream = raftfsm.NewStreamLayer(ck.mux.Raft(), dial, raftfsm.Handshake{
		Token: o.AuthToken,
		Local: func() (string, string, uint64) { return ck.ClusterID(), o.NodeID, ck.lastIncarnation() },
		Check: func(h *messages.StreamHello) (string, string) { return raftfsm.CheckHello(ck.fsm.View(), h) },
		Refused: func(addr string, ack *messages.StreamHelloAck) {
			if ack.GetCode() == raftfsm.HelloStale {
				ck.tellState(&actors.Fenced{Reason: ack.GetReason(), Source: addr})
			}
		},
	}, ck.log.With("component", "raft-transport"))
	ck.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: ck.stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hc.Named("transport"),
		// No pipelining: raft's pipeline can deadlock its Shutdown (a sender
		// and the response decoder block on each other's unbuffered channel),
		// and with batching it brings nothing (hashicorp/raft#541).
		MaxRPCsInFlight: 1,
	})
	ck.peers = rpc.NewClient(func(ctx context.Context, _, addr string) (net.Conn, error) { return ck.dial(ctx, addr) }, o.AuthToken, ck.ClusterID)
	if hasState {
		// A data directory of another cluster must not join the cluster its
		// join addresses lead to, nor send it a single Raft message.
		if err := ck.checkSeedsCluster(ctx); err != nil {
			return err
		}
	}

	r, err := raft.NewRaft(ck.raftConfig(hc), ck.fsm, stores.Log, stores.Stable, stores.Snapshots, ck.transport)
	if err != nil {
		if hasState {
			return fmt.Errorf("%w: raft cannot load %s: %w", ErrDataDir, o.DataDir, err)
		}
		return fmt.Errorf("start raft: %w", err)
	}
	ck.raft = r
	if o.DataDir != "" {
		ck.snapshots = ck.startSnapshotter()
	}
	seeds := ck.seeds()
	if hasState {
		// A member removed while it was down is no longer in anyone's Raft
		// configuration, so nobody contacts it: the peers it knew are where
		// it asks to join again, even without a join address.
		seeds = append(seeds, knownPeers(r, o.NodeID, ck.advertise, seeds)...)
	}
	switch {
	case hasState:
		ck.log.Info("resuming from existing state", "data_dir", o.DataDir, "advertise", ck.advertise, "cluster_id", ck.ClusterID())
	case len(seeds) == 0:
		ck.log.Info("no existing state and no join address: bootstrapping a new cluster", "advertise", ck.advertise)
		// This node will see the cluster's whole history: GET /events may
		// replay it from seq 0.
		ck.eventLog.Store(eventlog.NewComplete(eventLogCapacity))
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(o.NodeID), Address: raft.ServerAddress(ck.advertise)}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
	default:
		ck.log.Info("joining a cluster", "via", seeds, "advertise", ck.advertise)
	}

	if err := ck.spawnTree(seeds); err != nil {
		return err
	}
	ck.serve()
	ck.warnIfExposed()
	if err := ck.waitReady(ctx); err != nil {
		return err
	}
	ck.running.Store(true)
	v := ck.fsm.View()
	var incarnation uint64
	if m, ok := v.Member(ck.opts.NodeID); ok {
		incarnation = m.Incarnation
	}
	ck.log.Info("node ready", "cluster_id", v.ClusterID(), "cluster", v.Config().GetClusterName(), "incarnation", incarnation,
		"http", ln.Addr().String(), "advertise", ck.advertise, "members", len(v.Members()),
		"partitions", v.PartitionCount(), "table_version", v.TableVersion(), "health", v.Health().Status)
	return nil
}

// seeds are the join addresses, without this node's own address.
func (ck *ClusterKit) seeds() []string {
	var out []string
	for _, a := range ck.opts.JoinAddrs {
		if a != "" && a != ck.advertise && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// knownPeers are the addresses of the other servers in r's persisted
// configuration, without those already in seeds.
func knownPeers(r *raft.Raft, self, advertise string, seeds []string) []string {
	f := r.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		addr := string(s.Address)
		if string(s.ID) != self && addr != advertise && addr != "" && !slices.Contains(seeds, addr) && !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return out
}

// loadIdentity reads the node file and the delivery progress of the data
// directory (nothing without one). The incarnation is not chosen here: the
// cluster assigns one to every life when it admits it.
func (ck *ClusterKit) loadIdentity() error {
	if ck.opts.DataDir == "" {
		return nil
	}
	if err := os.MkdirAll(ck.opts.DataDir, 0o750); err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	f, err := nodefile.Open(ck.opts.DataDir, ck.opts.NodeID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	pf, rec, err := nodefile.OpenProgress(ck.opts.DataDir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	ck.progress = pf
	ck.identity = f
	ck.lastAlive = max(f.LastAliveUnixNano, rec.AliveUnixNano)
	// node.json held the delivery record before the progress file did.
	ck.delivered = actors.Seq{Index: rec.Index, Sub: rec.Sub}
	if old := (actors.Seq{Index: f.LastDeliveredIndex, Sub: f.LastDeliveredSub}); ck.delivered.Less(old) {
		ck.delivered = old
	}
	ck.lastSeq.Seq = ck.delivered
	return nil
}

// ClusterID returns the ID of the cluster this node belongs to: the
// committed one, or the one its data directory recorded ("" for a node that
// has not joined yet).
func (ck *ClusterKit) ClusterID() string {
	if id := ck.fsm.View().ClusterID(); id != "" {
		return id
	}
	ck.identityMu.Lock()
	defer ck.identityMu.Unlock()
	return ck.identity.ClusterID
}

// lastIncarnation is the incarnation this node was last admitted with, in
// this process or (from the node file) in the previous one.
func (ck *ClusterKit) lastIncarnation() uint64 {
	if inc := ck.life.Admitted(); inc != 0 {
		return inc
	}
	ck.identityMu.Lock()
	defer ck.identityMu.Unlock()
	return ck.identity.Incarnation
}

// membershipChanged is told (by the state actor) every change of this
// node's own membership. Admission is recorded in the node file: the
// cluster ID, so the directory never serves another cluster, and the
// incarnation, so a stale copy of this process can be fenced.
func (ck *ClusterKit) membershipChanged(m actors.Membership) {
	if m.State != actors.MemberActive || ck.opts.DataDir == "" {
		return
	}
	id := ck.fsm.View().ClusterID()
	ck.identityMu.Lock()
	f := ck.identity
	if f.Incarnation == m.Incarnation && (id == "" || f.ClusterID == id) {
		ck.identityMu.Unlock()
		return
	}
	f.Incarnation = m.Incarnation
	if id != "" {
		f.ClusterID = id
	}
	ck.identity = f
	ck.identityMu.Unlock()
	// A small atomic rename, a few times per process life at most.
	if err := nodefile.Write(ck.opts.DataDir, f); err != nil {
		ck.log.Error("cannot record the node's identity in its data directory", "error", err)
	}
}

// checkSeedsCluster refuses to start a node whose data directory belongs to
// another cluster than the one its join addresses lead to. It asks the join
// addresses (in parallel, briefly): one that answers for this node's cluster
// settles it; if only other clusters answer, Start fails naming both IDs. A
// node whose seeds are all down starts as before.
func (ck *ClusterKit) checkSeedsCluster(ctx context.Context) error {
	ours := ck.ClusterID()
	seeds := ck.seeds()
	if ours == "" || len(seeds) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, seedCheckTimeout)
	defer cancel()
	type answer struct {
		addr, cluster string
	}
	answers := make(chan answer, len(seeds))
	for _, addr := range seeds {
		go func() {
			pong, err := ck.peers.Ping(ctx, addr, &messages.PingRequest{})
			var remote *rpc.RemoteError
			switch {
			case err == nil:
				answers <- answer{addr, pong.GetClusterId()}
			case errors.As(err, &remote) && remote.Code == "cluster_mismatch":
				answers <- answer{addr, remote.ClusterID}
			default:
				answers <- answer{addr, ""}
			}
		}()
	}
	var foreign []answer
	for range seeds {
		a := <-answers
		switch a.cluster {
		case ours:
			return nil
		case "":
		default:
			foreign = append(foreign, a)
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the data directory %s belongs to cluster %s, but the join address %s leads to cluster %s: a node never moves between clusters (start it with an empty data directory to join that cluster)",
		ErrClusterMismatch, ck.opts.DataDir, ours, foreign[0].addr, foreign[0].cluster)
}

// seedCheckTimeout bounds checkSeedsCluster.
const seedCheckTimeout = time.Second

func (ck *ClusterKit) raftConfig(hc hclog.Logger) *raft.Config { return raftConfigOf(ck.opts, hc) }

// raftConfigOf is the Raft configuration of o (defaults filled in).
func raftConfigOf(o Options, hc hclog.Logger) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(o.NodeID)
	c.Logger = hc
	c.HeartbeatTimeout = o.Raft.HeartbeatTimeout
	c.ElectionTimeout = o.Raft.ElectionTimeout
	c.LeaderLeaseTimeout = o.Raft.LeaderLeaseTimeout
	c.CommitTimeout = o.Raft.CommitTimeout
	c.SnapshotInterval = o.Raft.SnapshotInterval
	c.SnapshotThreshold = o.Raft.SnapshotThreshold
	// Proposals are handed over by one goroutine; a buffered channel lets
	// raft batch them into fewer fsyncs.
	c.BatchApplyCh = true
	// Up to 1024 entries per log write and per AppendEntries (raft's
	// default is 64): under many concurrent writers one fsync commits them
	// all instead of a 64-entry slice of them.
	c.MaxAppendEntries = 1024
	c.NoLegacyTelemetry = true
	// A removed node keeps running (not a member, not ready) instead of
	// shutting raft down under the application's feet.
	c.ShutdownOnRemove = false
	return c
}

// clusterConfig is the configuration this node commits if it bootstraps a
// cluster, with a freshly minted cluster ID.
func (ck *ClusterKit) clusterConfig() *messages.ClusterConfig {
	o := ck.opts
	c := &messages.ClusterConfig{
		ClusterId:         newClusterID(),
		ClusterName:       o.ClusterName,
		PartitionCount:    uint32(o.PartitionCount),
		ReplicationFactor: uint32(o.ReplicationFactor),
		KeyHash:           o.KeyHash.proto(),
		MaxVoters:         uint32(o.MaxVoters),
	}
	if c.PartitionCount == 0 {
		c.PartitionCount = DefaultPartitionCount
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	return c
}

func (ck *ClusterKit) spawnTree(seeds []string) error {
	o := ck.opts
	ck.mu.Lock()
	subs, cbs := ck.pendingSubs, ck.pendingCallbacks
	ck.pendingSubs, ck.pendingCallbacks = nil, nil
	ck.mu.Unlock()
	cfg := &actors.Config{
		NodeID: o.NodeID,
		Raft:   ck.raft,
		FSM:    ck.fsm,
		Logger: ck.log,
		Stats:  ck.stats,
		Self: &messages.Member{
			Id: o.NodeID, Name: o.NodeName, Address: ck.advertise, Services: o.Services,
		},
		Life:               ck.life,
		Resumed:            ck.resumed,
		AutoRejoin:         o.AutoRejoin == AutoRejoinOn,
		VoterStabilization: o.VoterStabilization,
		ElectionTimeout:    o.Raft.ElectionTimeout,
		Tracker:            ck.tracker,
		Recovery:           ck.recovery,
		LastAlive:          ck.lastAlive,
		Cluster:            ck.clusterConfig(),
		Expect: &messages.ClusterConfig{ClusterName: o.ClusterName, PartitionCount: uint32(o.PartitionCount),
			ReplicationFactor: uint32(o.ReplicationFactor), KeyHash: o.KeyHash.proto(), ClusterId: ck.ClusterID(),
			MaxVoters: uint32(ck.given.MaxVoters)}, // 0 unless set: only an explicit value must match
		ExpectKeyHash: o.KeyHash != KeyHashDefault,
		Seeds:         seeds,
		Peers:         ck.peers,
		RPCTimeout:    rpcTimeout,
		OnJoinRefused: func(err error) {
			select {
			case ck.refused <- err:
			default:
			}
		},
		RebalanceDelay: o.RebalanceDelay,
		Health: actors.HealthConfig{
			Enabled: !o.HealthCheck.Disable, Interval: o.HealthCheck.Interval,
			Timeout: o.HealthCheck.Timeout, FailureThreshold: o.HealthCheck.FailureThreshold, RemovalGrace: o.HealthCheck.RemovalGrace,
		},
		ApplyTimeout:     DefaultApplyTimeout,
		Subscriptions:    subs,
		Callbacks:        cbs,
		CallbackRegistry: ck.callbacks,
		LastDelivered:    ck.delivered,
		Tap:              func(e *messages.Event) { ck.eventLog.Load().Append(e) },
		PersistDelivered: persistFunc(ck.persister),
		OnDelivered: func(s actors.Seq) {
			ck.lastSeq.Lock()
			ck.lastSeq.Seq = s
			ck.lastSeq.Unlock()
		},
	}
	root, err := ck.system.Root.SpawnNamed(actors.NewRootProps(cfg), actors.RootName(o.NodeID))
	if err != nil {
		return fmt.Errorf("spawn root actor %s: %w (is another node with this ID running in this actor system?)", actors.RootName(o.NodeID), err)
	}
	res, err := ck.system.Root.RequestFuture(root, &actors.GetChildren{}, 5*time.Second).Result()
	if err != nil {
		return fmt.Errorf("actor tree did not start: %w", err)
	}
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.root = root
	ck.children = *res.(*actors.Children)
	// Registrations that raced with start-up.
	for _, s := range ck.pendingSubs {
		ck.system.Root.Send(ck.children.Hooks, s)
	}
	for _, c := range ck.pendingCallbacks {
		ck.system.Root.Send(ck.root, c)
	}
	ck.pendingSubs, ck.pendingCallbacks = nil, nil
	return nil
}

// dial connects to another node's port, over TLS when the node has a
// TLSConfig (the same config verifies the peer; ServerName defaults to the
// dialed host).
func (ck *ClusterKit) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := ck.network.DialContext(ctx, addr)
	if err != nil || ck.opts.TLSConfig == nil {
		return conn, err
	}
	cfg := ck.opts.TLSConfig.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// warnIfExposed warns when the node serves a non-loopback address without
// a token: anyone who reaches the port could then change the cluster.
func (ck *ClusterKit) warnIfExposed() {
	if exposedWithoutToken(ck.ln.Addr(), ck.opts.AuthToken) {
		ck.log.Warn("serving without AuthToken on a non-loopback address: anyone who can reach it can join nodes, remove nodes and change the cluster; set AuthToken (and TLSConfig) in production",
			"addr", ck.ln.Addr().String())
	}
}

// exposedWithoutToken reports whether addr (a listener's) is reachable from
// other machines while no token protects it. TCP listeners report an IP;
// other networks (the in-memory one) report names and are never exposed.
func exposedWithoutToken(addr net.Addr, token string) bool {
	if token != "" {
		return false
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && !ip.IsLoopback()
}

// checkDataDir refuses persisted state that is damaged or belongs to another
// cluster, before raft opens it: a clear error instead of a hang, a panic or
// a silently different cluster.
func (ck *ClusterKit) checkDataDir(stores *raftfsm.Stores) error {
	o := ck.opts
	start := time.Now()
	sum, err := raftfsm.CheckStores(stores)
	if err != nil {
		return fmt.Errorf("%w: %s: %w (restore it from a backup, or move it away to start this node afresh and let it rejoin)", ErrDataDir, o.DataDir, err)
	}
	ck.log.Debug("data directory checked", "snapshot_index", sum.SnapshotIndex, "first_index", sum.FirstIndex,
		"last_index", sum.LastIndex, "took", time.Since(start).Round(time.Microsecond))
	if c := sum.Config; c != nil {
		ck.identityMu.Lock()
		recorded := ck.identity.ClusterID
		if recorded == "" {
			ck.identity.ClusterID = c.GetClusterId() // written by an older version: adopt it
		}
		ck.identityMu.Unlock()
		if id := c.GetClusterId(); recorded != "" && id != "" && id != recorded {
			return fmt.Errorf("%w: %s holds the Raft state of cluster %s but its node file says cluster %s: the directory mixes two clusters' files",
				ErrClusterMismatch, o.DataDir, id, recorded)
		}
		if c.GetClusterName() != o.ClusterName {
			return fmt.Errorf("%w: %s holds cluster %q, this node is configured for %q", ErrDataDir, o.DataDir, c.GetClusterName(), o.ClusterName)
		}
		if o.PartitionCount != 0 && uint32(o.PartitionCount) != c.GetPartitionCount() {
			return fmt.Errorf("%w: PartitionCount is %d but the cluster has %d (in %s)", ErrConfigMismatch, o.PartitionCount, c.GetPartitionCount(), o.DataDir)
		}
		if o.ReplicationFactor != 0 && uint32(o.ReplicationFactor) != c.GetReplicationFactor() {
			return fmt.Errorf("%w: ReplicationFactor is %d but the cluster has %d (in %s)", ErrConfigMismatch, o.ReplicationFactor, c.GetReplicationFactor(), o.DataDir)
		}
	}
	return nil
}

// persistFunc adapts a persister (nil: no persistence) to the actor config.
func persistFunc(p *persister) func(actors.Seq, *actor.PID) {
	if p == nil {
		return nil
	}
	return p.request
}

func (ck *ClusterKit) serve() {
	ck.gateway = httpgw.New(gatewayBackend{ck}, ck.log.With("component", "http"))
	ck.server = &http.Server{
		Handler:           ck.gateway,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(ck.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	// Shutdown waits for handlers: end the event streams when it starts.
	ck.server.RegisterOnShutdown(ck.gateway.Close)
	ck.serverDone = make(chan struct{})
	go func() {
		defer close(ck.serverDone)
		if err := ck.server.Serve(ck.mux.HTTP()); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ck.log.Error("http server stopped", "error", err)
		}
	}()
}

// waitReady waits for the committed configuration, this node's registration
// and a partition table.
func (ck *ClusterKit) waitReady(ctx context.Context) error {
	deadline := time.NewTimer(ck.opts.StartTimeout)
	defer deadline.Stop()
	for {
		v := ck.fsm.View()
		if err := ck.fsm.Err(); err != nil {
			return err
		}
		if err := ck.checkConfig(v.Config()); err != nil {
			return err
		}
		if ck.registered(v) && v.HasTable() {
			return nil
		}
		select {
		case <-v.Done():
		case err := <-ck.refused:
			var refused *actors.JoinRefusedError
			if errors.As(err, &refused) && refused.Code == actors.JoinClusterMismatch {
				return fmt.Errorf("%w: %w: %w", ErrJoinRefused, ErrClusterMismatch, err)
			}
			return fmt.Errorf("%w: %w", ErrJoinRefused, err)
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for the node to be ready: config committed=%v, registered=%v, table=%v",
				ctx.Err(), v.Config() != nil, ck.registered(v), v.HasTable())
		case <-deadline.C:
			return fmt.Errorf("%w after %v: config committed=%v, registered=%v, table=%v, raft state %v",
				ErrStartTimeout, ck.opts.StartTimeout, v.Config() != nil, func() bool { _, ok := v.Member(ck.opts.NodeID); return ok }(),
				v.HasTable(), ck.raft.State())
		}
	}
}

// registered reports whether v has this process's current life as a member
// (and the node has not learned otherwise from another member: a removed
// node's own state may still list it).
func (ck *ClusterKit) registered(v *raftfsm.View) bool {
	switch ck.life.Status().State {
	case actors.MemberRemoved, actors.MemberFenced, actors.MemberRefused:
		return false
	}
	n, ok := v.Nonce(ck.opts.NodeID)
	return ok && n == ck.life.Nonce()
}

// tellState sends msg to the state actor (dropped before start and after stop).
func (ck *ClusterKit) tellState(msg any) {
	if pid := ck.stateActor(); pid != nil {
		ck.system.Root.Send(pid, msg)
	}
}

// checkConfig fails when an explicit option disagrees with the committed configuration.
func (ck *ClusterKit) checkConfig(c *messages.ClusterConfig) error {
	if c == nil {
		return nil
	}
	o := ck.given
	var errs []error
	if ck.opts.ClusterName != c.GetClusterName() {
		errs = append(errs, fmt.Errorf("ClusterName is %q but the cluster is %q", ck.opts.ClusterName, c.GetClusterName()))
	}
	if o.MaxVoters != 0 && uint32(o.MaxVoters) != c.GetMaxVoters() {
		errs = append(errs, fmt.Errorf("MaxVoters is %d but the cluster has %d", o.MaxVoters, c.GetMaxVoters()))
	}
	if o.PartitionCount != 0 && uint32(o.PartitionCount) != c.GetPartitionCount() {
		errs = append(errs, fmt.Errorf("PartitionCount is %d but the cluster has %d", o.PartitionCount, c.GetPartitionCount()))
	}
	if o.ReplicationFactor != 0 && uint32(o.ReplicationFactor) != c.GetReplicationFactor() {
		errs = append(errs, fmt.Errorf("ReplicationFactor is %d but the cluster has %d", o.ReplicationFactor, c.GetReplicationFactor()))
	}
	if o.KeyHash != KeyHashDefault && o.KeyHash.proto() != c.GetKeyHash() {
		errs = append(errs, fmt.Errorf("KeyHash is %v but the cluster uses %v", o.KeyHash.proto(), c.GetKeyHash()))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w (leave the option at 0 to adopt the cluster's value)", ErrConfigMismatch, errors.Join(errs...))
}

// Stop stops this node without leaving the cluster (a restart in place keeps
// its membership). It is idempotent and waits until every goroutine the node
// started has ended, with one exception: event callbacks get no new event
// once Stop is called, and those in a call get CallbackStopTimeout (or until
// ctx ends, if sooner) to return. A callback still running then is abandoned
// (it keeps running until it returns), and Stop, having stopped everything
// else, returns an error wrapping ErrCallbackStuck that names it.
//
// ctx bounds the graceful part only (handing leadership over, draining HTTP
// requests, waiting for callbacks): when it ends, Stop still releases
// everything, promptly, and returns an error wrapping ctx.Err(). Every later
// Stop returns what the first one did.
func (ck *ClusterKit) Stop(ctx context.Context) error {
	ck.stopOnce.Do(func() {
		ck.stopErr = ck.stop(ctx)
		close(ck.done)
	})
	return ck.stopErr
}

// Done is closed once the node has stopped, whoever stopped it (Stop, Leave,
// or POST /leave through the gateway).
func (ck *ClusterKit) Done() <-chan struct{} { return ck.done }

// lifecycle is "new" (before Start), "starting" (Start called, not ready
// yet), "running" or "stopped".
func (ck *ClusterKit) lifecycle() string {
	if ck.running.Load() {
		return "running"
	}
	ck.mu.Lock()
	defer ck.mu.Unlock()
	switch {
	case ck.stopped:
		return "stopped"
	case ck.started:
		return "starting"
	}
	return "new"
}

func (ck *ClusterKit) stop(ctx context.Context) error {
	ck.mu.Lock()
	ck.stopped = true
	ck.mu.Unlock()
	// Callbacks start no new call from now on; calls in progress may run
	// until the deadline while the rest stops.
	ck.callbacks.StopCalls()
	callbacksCtx, cancelCallbacks := context.WithTimeoutCause(ctx, CallbackStopTimeout, errCallbackWait)
	defer cancelCallbacks()
	wasRunning := ck.running.Swap(false)
	var errs []error
	if wasRunning {
		ck.handOverLeadership(ctx)
	}
	if ck.server != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := ck.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			_ = ck.server.Close()
		}
		cancel()
		<-ck.serverDone
	}
	if ck.root != nil {
		// Actors first, raft second: raft must still run while the actors
		// drain the proposals they handed it (a future queued in raft at
		// shutdown is never resolved, hashicorp/raft#498).
		if err := ck.stopActors(callbacksCtx); err != nil {
			errs = append(errs, err)
		}
	}
	if ck.snapshots != nil {
		ck.snapshots.close()
		// A clean stop leaves a short log: the next start reads and
		// replays at most stopSnapshotBehind entries.
		ck.snapshotIfBehind(stopSnapshotBehind)
	}
	if ck.raft != nil {
		if err := ck.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if ck.transport != nil {
		ck.transport.CloseStreams()
		_ = ck.transport.Close()
	}
	if ck.mux != nil {
		_ = ck.mux.Close()
	} else if ck.ln != nil {
		_ = ck.ln.Close()
	}
	if ck.stream != nil {
		ck.stream.Wait()
	}
	if ck.peers != nil {
		ck.peers.Close()
	}
	if ck.stores != nil {
		if err := ck.stores.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close stores: %w", err))
		}
	}
	if ck.persister != nil {
		ck.persister.close()
	}
	if ck.progress != nil {
		// What was really delivered: events persisted but still pending
		// are delivered after the restart instead of being skipped.
		ck.lastSeq.Lock()
		last := ck.lastSeq.Seq
		ck.lastSeq.Unlock()
		if err := ck.writeProgress(last); err != nil {
			errs = append(errs, fmt.Errorf("write delivery progress: %w", err))
		}
		if err := ck.progress.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close delivery progress: %w", err))
		}
	}
	if ck.ownSystem {
		ck.system.Shutdown()
	}
	if ck.raft != nil {
		ck.log.Info("node stopped")
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("stop: the graceful part was cut short: %w", err))
	}
	return errors.Join(errs...)
}

// handOverLeadership transfers leadership before this node stops or leaves,
// so the cluster has a leader again within a round trip instead of an
// election timeout.
func (ck *ClusterKit) handOverLeadership(ctx context.Context) {
	if ck.raft == nil || ck.raft.State() != raft.Leader {
		return
	}
	// Forwarded: a node that lost leadership meanwhile must not forward.
	resp := ck.transferLeadership(ctx, &messages.TransferLeadershipRequest{Forwarded: true})
	switch resp.GetCode() {
	case "", transferNoOtherVoter, transferNotLeader:
	default:
		ck.log.Warn("leadership hand-over failed; the others will elect a leader after their timeout", "code", resp.GetCode(), "error", resp.GetError())
	}
}

func (ck *ClusterKit) stateActor() *actor.PID {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return ck.children.State
}

// register subscribes an actor or a callback, now or, before Start, at start.
func (ck *ClusterKit) register(sub any, cb *actors.RegisterCallback) error {
	ck.mu.Lock()
	if ck.stopped {
		ck.mu.Unlock()
		return ErrStopped
	}
	if ck.root == nil {
		switch s := sub.(type) {
		case *actors.Subscribe:
			ck.pendingSubs = append(ck.pendingSubs, s)
		case *actors.Unsubscribe:
			ck.pendingSubs = removePending(ck.pendingSubs, s.PID)
		}
		if cb != nil {
			ck.pendingCallbacks = append(ck.pendingCallbacks, cb)
		}
		ck.mu.Unlock()
		return nil
	}
	root, hooks := ck.root, ck.children.Hooks
	ck.mu.Unlock()
	target, msg := hooks, sub
	if cb != nil {
		target, msg = root, cb
	}
	res, err := ck.system.Root.RequestFuture(target, msg, 5*time.Second).Result()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}

func removePending(subs []*actors.Subscribe, pid *actor.PID) []*actors.Subscribe {
	out := subs[:0]
	for _, s := range subs {
		if !s.PID.Equal(pid) {
			out = append(out, s)
		}
	}
	return out
}

// advertiseAddr derives what peers dial: the explicit address, else
// HTTPAddr's host when it names one, else this machine's private IP, with
// the port actually bound.
func advertiseAddr(explicit, httpAddr string, bound net.Addr) string {
	if explicit != "" {
		return explicit
	}
	host, _, _ := net.SplitHostPort(httpAddr)
	_, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return net.JoinHostPort(host, port)
	}
	return net.JoinHostPort(privateIP(), port)
}

func privateIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	var fallback string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		if ipn.IP.IsPrivate() {
			return ipn.IP.String()
		}
		if fallback == "" {
			fallback = ipn.IP.String()
		}
	}
	if fallback != "" {
		return fallback
	}
	return "127.0.0.1"
}

// newClusterID mints a cluster ID: 128 random bits, as 32 hex digits.
func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
