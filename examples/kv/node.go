package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
)

// Node is one kv node: a ClusterKit node, its store actor and the kv API.
type Node struct {
	// CK is the node's ClusterKit.
	CK *clusterkit.ClusterKit
	// KVAddr is the address registered as the "kv" service.
	KVAddr string

	ln      net.Listener
	srv     *http.Server
	srvDone chan struct{}
	pid     *actor.PID
	repl    *replicator // async replication only
	log     *slog.Logger
	cancel  context.CancelFunc
	closed  sync.Once
	crashed atomic.Bool // Crash: close the kv API abruptly

	fwd *http.Client

	mu       sync.Mutex
	newConns map[net.Conn]struct{} // accepted, no request read yet
}

// Config configures a Node.
type Config struct {
	// ClusterKit are the node's ClusterKit options; NewNode adds the "kv" service.
	ClusterKit clusterkit.Options
	// KVAddr is the kv API's listen address (port 0: any free port).
	KVAddr string
	// HandoffGrace is how long a partition the table moved away stays in
	// memory, served only to the nodes that copy it (default 30 s).
	HandoffGrace time.Duration
	// NoHandoff leaves ClusterKit's hand-off off: a new owner counts as
	// ready (and may lead) before its copy is in. For comparison only.
	NoHandoff bool
	// Replication is when a write is acknowledged: sync (the default) or
	// async. All the nodes of a cluster must use the same.
	Replication Replication
	// AsyncQueue bounds each replica's queue under async replication, in
	// writes (default 1,024); a full queue refuses writes (503 busy).
	AsyncQueue int
	// Routing is who finds a key's primary: client (the default: other
	// nodes answer not_owner) or server (any node forwards).
	Routing Routing

	// For the tests: shift this node's wall clock, slow its async
	// deliveries down (each batch waits this long before it is sent).
	clockSkew, asyncDelay time.Duration
}

// NewNode listens on the kv address, creates the ClusterKit node with the
// "kv" service registered and subscribes the store actor before Start, so
// that it sees every event of the node's life. Call Start, then Stop.
func NewNode(cfg Config) (*Node, error) {
	o := cfg.ClusterKit
	if cfg.HandoffGrace <= 0 {
		cfg.HandoffGrace = copyDeadline
	}
	cfg.Replication = cmp.Or(cfg.Replication, ReplicationSync)
	cfg.Routing = cmp.Or(cfg.Routing, RoutingClient)
	var errs []error
	if err := new(Replication).Set(string(cfg.Replication)); err != nil {
		errs = append(errs, err)
	}
	if err := new(Routing).Set(string(cfg.Routing)); err != nil {
		errs = append(errs, err)
	}
	if cfg.AsyncQueue < 0 {
		errs = append(errs, fmt.Errorf("async queue %d: want > 0 (0: the default, %d)", cfg.AsyncQueue, defaultAsyncQueue))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ln, advertised, err := listen(cfg.KVAddr)
	if err != nil {
		return nil, err
	}
	o.Services = maps.Clone(o.Services)
	if o.Services == nil {
		o.Services = map[string]string{}
	}
	o.Services["kv"] = advertised
	// The store acknowledges each partition it loads (PartitionReady once
	// its copy is in): a new owner leads nothing before it has the data.
	o.Handoff = !cfg.NoHandoff
	ck, err := clusterkit.New(o)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Node-to-node calls (replication, copies) are short: a dead peer must
	// not hold a client write for long.
	client := &http.Client{Timeout: 2 * time.Second}
	klog := logger.With("node", o.NodeID, "component", "kv")
	var repl *replicator
	if cfg.Replication == ReplicationAsync {
		repl = newReplicator(ctx, ck, client, klog, cfg.AsyncQueue)
		repl.delay = cfg.asyncDelay
	}
	st := newStore(ctx, ck, klog, client, cfg.HandoffGrace, repl)
	st.skew = cfg.clockSkew
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return st }))
	err = ck.Subscribe(pid, clusterkit.OnlyMine(), clusterkit.WithKinds(clusterkit.EventPartitionChange,
		clusterkit.EventNodeRejoin, clusterkit.EventNodeLeave, clusterkit.EventRebalanceComplete))
	if err != nil {
		cancel()
		_ = ln.Close()
		_ = ck.Stop(context.Background())
		return nil, fmt.Errorf("subscribe the store: %w", err)
	}
	n := &Node{CK: ck, KVAddr: advertised, ln: ln, pid: pid, repl: repl, log: logger.With("node", o.NodeID), cancel: cancel, srvDone: make(chan struct{}), newConns: map[net.Conn]struct{}{}}
	// Forwarded requests keep their connections: the default transport
	// keeps 2 per node and would redial under load.
	fwd := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}}
	n.fwd = fwd
	n.srv = &http.Server{
		Handler: (&server{ck: ck, system: ck.ActorSystem(), store: pid, st: st,
			replication: cfg.Replication, routing: cfg.Routing, fwd: fwd}).routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       time.Minute,
		ConnState:         n.connState,
	}
	// Serve before Start: primaries replicate to this node as soon as the
	// table names it, and a restarted node must receive those writes from
	// before it asks for its copies (see the package documentation).
	go func() {
		defer close(n.srvDone)
		if err := n.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("kv server stopped", "error", err)
		}
	}()
	return n, nil
}

// Start starts ClusterKit (it returns once the node holds a committed table).
func (n *Node) Start(ctx context.Context) error {
	if err := n.CK.Start(ctx); err != nil {
		n.closeKV()
		return err
	}
	return nil
}

// Stop hands this node's primaries over to ready replicas while the kv API
// still serves (writes in flight finish, clients learn the new primaries),
// delivers what async replication still has queued (each new primary
// waits for what is queued for it before it serves: fence.go), then stops
// the kv API, the store and ClusterKit (without leaving).
func (n *Node) Stop(ctx context.Context) error {
	if err := n.CK.HandOverPrimaries(ctx); err != nil && !errors.Is(err, clusterkit.ErrNotStarted) {
		n.log.Warn("stopping without handing primaries over", "error", err)
	}
	if n.repl != nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := n.repl.flush(fctx); err != nil {
			n.log.Warn("stopping with async writes not delivered", "error", err)
		}
		cancel()
	}
	n.closeKV()
	return n.CK.Stop(ctx)
}

// Crash stops the node as a kill would, as far as a process can in itself:
// no hand-over, async writes still queued are lost, the kv API's
// connections are cut at once, and ClusterKit stops without telling
// anyone (the others' failure detectors must notice). The in-process
// stories use it; the tests that need a real kill -9 run processes.
func (n *Node) Crash() error {
	n.crashed.Store(true)
	n.closeKV()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.CK.Stop(ctx)
}

// connState tracks the connections that have not sent a request yet.
func (n *Node) connState(c net.Conn, st http.ConnState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st == http.StateNew {
		n.newConns[c] = struct{}{}
	} else {
		delete(n.newConns, c)
	}
}

func (n *Node) closeKV() {
	n.closed.Do(func() {
		n.cancel()
		defer n.fwd.CloseIdleConnections()
		if n.repl != nil {
			defer n.repl.wait()
		}
		if n.crashed.Load() {
			_ = n.srv.Close() // every connection, a request in flight too
			<-n.srvDone
			n.stopStore()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown := make(chan error, 1)
		go func() { shutdown <- n.srv.Shutdown(ctx) }()
		<-n.srvDone // the listener is closed: no connection is added now
		// Shutdown waits up to 5 s for a connection that has not sent a
		// request yet: an HTTP client may dial one, then send its request on
		// another that became idle meanwhile, and keep the new one unused.
		// Nothing was read on such a connection; close it at once.
		n.mu.Lock()
		for c := range n.newConns {
			_ = c.Close()
		}
		n.mu.Unlock()
		if err := <-shutdown; err != nil {
			_ = n.srv.Close()
		}
		n.stopStore()
	})
}

// stopStore stops the store actor, unless a failed Start already stopped
// ClusterKit, and its actor system with it.
func (n *Node) stopStore() {
	select {
	case <-n.CK.Done():
	default:
		_ = n.CK.ActorSystem().Root.StopFuture(n.pid).Wait()
	}
}
