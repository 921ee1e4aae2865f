package clusterkit

import (
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/auth"
	"github.com/clusterkit/clusterkit/internal/eventlog"
	"github.com/clusterkit/clusterkit/internal/logging"
	"github.com/clusterkit/clusterkit/internal/mux"
	"github.com/clusterkit/clusterkit/internal/nodefile"
	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/raftfsm"
)

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
	// writeMark is the highest index of a custom-data write acknowledged on
	// this node (customdata.go): its reads wait until they include it.
	writeMark atomic.Uint64

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
	// tokens is the node's token set (from Start on; read concurrently by
	// requests and metrics scrapes); tokenStop ends the token file's
	// watcher, which closes tokenDone.
	tokens               atomic.Pointer[auth.Store]
	tokenStop, tokenDone chan struct{}
	// servingGateway is gateway once serving, for readers that may run
	// concurrently with Start (a metrics scrape).
	servingGateway atomic.Pointer[httpgw.Gateway]
	// authReloads and authReloadErrors count token file loads after start.
	authReloads, authReloadErrors atomic.Uint64
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
	if opts.observeApplied != nil {
		ck.fsm.SetObserver(opts.observeApplied)
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

// AdvertiseAddr returns the address the other nodes (and HTTP clients) reach
// this node at, host:port, once Start has bound HTTPAddr ("" before): with
// HTTPAddr "127.0.0.1:0" it holds the port the system chose.
func (ck *ClusterKit) AdvertiseAddr() string {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return ck.advertise
}
