// Package httpgw is the implementation of ClusterKit's HTTP gateway: the
// handler every node serves on its port. It has no compatibility promise and
// exports only what the clusterkit package needs to mount it. Programs that
// talk to a gateway use package httpgw/client, which declares every request
// and response body (this package encodes its answers with those types) and
// a typed client; docs/http-api.md and docs/openapi.yaml describe the routes.
//
// It depends on a small Backend interface, never on the root package, so it
// can be tested alone. Every route checks its method, bounds its body,
// answers errors as JSON ({"error": ..., "code": ...}) with a 4xx or 5xx
// status and changes nothing when the input is bad. Mutating and
// node-to-node routes require the admin token when the node has tokens, and
// every other route but the probes a read or admin token when AuthReads is
// on (access.go).
package httpgw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/auth"
	"github.com/clusterkit/clusterkit/internal/eventlog"
	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// maxBody bounds the body of every public route (the node-to-node routes
// allow rpc.MaxBody, room for a 1 MiB custom-data value and its envelope).
const maxBody = 1 << 20

// changeWriteTimeout bounds the answer of a change (longer than any backend
// wait, so a slow change ends with its JSON error, not a dropped connection).
const changeWriteTimeout = 45 * time.Second

// Backend is what the gateway needs from a node.
type Backend interface {
	// NodeID is this node's ID.
	NodeID() string
	// View is the current immutable routing view.
	View() *raftfsm.View
	// Status reports liveness and the leader this node knows.
	Status() Status
	// Consensus is this node's Raft state (GET /consensus/stats).
	Consensus() Consensus
	// Detailed is the body of GET /health/detailed.
	Detailed() *client.DetailedHealth
	// CountRequest counts a served request by route pattern and status.
	CountRequest(route string, status int)
	// Metrics gathers the Prometheus metrics (GET /metrics).
	Metrics() prometheus.Gatherer
	// MetricsJSON is the JSON metrics view (GET /metrics?format=json).
	MetricsJSON() *client.Metrics
	// Events is the log of recently delivered events (GET /events).
	Events() *eventlog.Log

	// Rebalance runs a manual rebalance and returns after its commit.
	RebalanceNow(ctx context.Context) error
	// PlanRebalance is what the next rebalance would do, changing nothing
	// (POST /rebalance?dry_run=true).
	PlanRebalance() (*client.RebalancePlan, error)
	// Leave removes this node from the cluster, then stops it in the
	// background (after the answer is written).
	Leave(ctx context.Context) error
	// RemoveNode removes another member for good.
	RemoveNode(ctx context.Context, id string) error
	// SetDrain drains (or undrains) member id and returns once committed
	// and applied here; the hand-offs follow in the background.
	SetDrain(ctx context.Context, id string, drain bool) error
	// SetRebalancePaused enters or leaves maintenance mode.
	SetRebalancePaused(ctx context.Context, paused bool) error
	// TransferLeadership hands leadership to target ("" = any voter),
	// forwarding to the leader when needed.
	TransferLeadership(ctx context.Context, req *messages.TransferLeadershipRequest) *messages.TransferLeadershipResponse

	// Join admits a node (forwarded to the leader when needed).
	Join(ctx context.Context, req *messages.JoinRequest) *messages.JoinResponse
	// Propose commits a command forwarded by another member.
	Propose(ctx context.Context, req *messages.Propose) *messages.ProposeResult
	// ProposeBatch commits several commands forwarded by another member:
	// one result per command, in order.
	ProposeBatch(ctx context.Context, req *messages.ProposeBatch) *messages.ProposeBatchResult
	// Rebalance runs a rebalance requested by another member.
	Rebalance(ctx context.Context, req *messages.RebalanceRequest) *messages.ProposeResult
	// Ping identifies this node and its Raft progress; with a wait index it
	// answers once its log reaches it (or ctx ends).
	Ping(ctx context.Context, req *messages.PingRequest) *messages.PingResponse
	// MemberStatus says what this node has committed about one node.
	MemberStatus(req *messages.MemberStatusRequest) *messages.MemberStatusResponse
	// ClusterID is this node's cluster ID ("" while it does not know it).
	ClusterID() string

	// CustomData reads key locally, including every write acknowledged on
	// this node (a StatusError key_not_found: no such key).
	CustomData(key string) (value []byte, version uint64, err error)
	// CustomDataLinearizable reads key after a barrier through the leader.
	CustomDataLinearizable(ctx context.Context, key string) (value []byte, version uint64, err error)
	// CustomDataKeys lists the keys, sorted.
	CustomDataKeys() []string
	// SetCustomData writes key (only at expected when cas) and returns the
	// new version once committed (the next local read includes it).
	SetCustomData(ctx context.Context, key string, value []byte, cas bool, expected uint64) (uint64, error)
	// DeleteCustomData deletes key and returns the deletion's index.
	DeleteCustomData(ctx context.Context, key string) (uint64, error)
}

// Status is the node's own view of itself.
type Status struct {
	Running bool
	// State is "starting" (joining, not ready yet), "running" or "stopped".
	State  string
	Leader string
	// Membership is this node's own place in the cluster: "joining",
	// "member", "removed", "fenced" or "refused" (with Removal set for the
	// last three).
	Membership string
	Removal    *Removal
	// FailureTolerance is how many more failures the cluster survives
	// (GET /health).
	FailureTolerance client.FailureTolerance
}

// Removal explains why a node is out of the cluster (GET /ready).
type Removal = client.Removal

// Consensus is the Raft state of one node, as GET /consensus/stats shows it.
type Consensus = client.ConsensusStats

// StatusError is an error with the HTTP status and code to answer it with.
// Backends return it (wrapped or not) to pick the status of a failure.
type StatusError struct {
	Status int
	Code   string
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// Gateway is the HTTP handler of one node.
type Gateway struct {
	b         Backend
	log       *slog.Logger
	mux       *http.ServeMux
	closing   chan struct{}
	closeOnce sync.Once
	metrics   http.Handler
	// notes caches placement's constraint notes of one view (explain):
	// they depend only on the members and the configuration.
	notes atomic.Pointer[viewNotes]

	sec      Security
	failures *auth.Failures
	streams  *auth.Streams
}

// New returns the gateway of the node behind b, guarded as sec says.
func New(b Backend, logger *slog.Logger, sec Security) *Gateway {
	sec = sec.withDefaults()
	g := &Gateway{b: b, log: logger, mux: http.NewServeMux(), closing: make(chan struct{}), sec: sec,
		failures: auth.NewFailures(sec.AuthFailuresPerSecond, sec.AuthFailureBurst),
		streams:  auth.NewStreams(sec.MaxEventStreams, sec.MaxEventStreamsPerClient)}
	g.metrics = metricsHandler(b.Metrics(), logger)
	for _, rt := range g.routes() {
		g.handle(rt.pattern, rt.methods)
	}
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.fail(w, r, http.StatusNotFound, "not_found", "no route "+r.URL.Path)
	})
	return g
}

// routeSpec is one pattern of the gateway and the handler of each method it
// serves. The table is the one list of routes: New registers it, and the
// OpenAPI test compares it with docs/openapi.yaml.
type routeSpec struct {
	pattern string
	methods methods
}

func (g *Gateway) routes() []routeSpec {
	return []routeSpec{
		// The probes: open in every mode (orchestrators call them bare).
		{"/health", get(open, g.health)},
		{"/ready", get(open, g.ready)},

		// Reads (a token when AuthReads is on).
		{"/health/detailed", get(reads, g.detailed)},
		{"/cluster", get(reads, g.cluster)},
		{"/nodes", get(reads, g.nodes)},
		{"/nodes/{id}", methods{http.MethodGet: {reads, g.node}, http.MethodDelete: {admin, g.removeNode}}},
		{"/nodes/{id}/drain", post(admin, g.drain(true))},
		{"/nodes/{id}/undrain", post(admin, g.drain(false))},
		{"/partitions", get(reads, g.partitions)},
		{"/partitions/stats", get(reads, g.partitionStats)},
		{"/partitions/{id}", get(reads, g.partition)},
		{"/locate", get(reads, g.locate)},
		{"/consensus/leader", get(reads, g.consensusLeader)},
		{"/consensus/stats", get(reads, g.consensusStats)},
		{"/metrics", get(reads, g.metricsRoute)},
		{"/events", get(reads, g.events)},

		// The dashboard: its files hold no cluster data and stay open, so a
		// browser can load the page and then ask for the token it sends
		// with every read ("/" redirects to it).
		{"/{$}", get(open, g.home)},
		{"/ui/{file...}", get(open, g.dashboard)},

		// Changes (the admin token when the cluster has tokens).
		{"/join", post(admin, g.join)},
		{"/leave", post(admin, g.leave)},
		{"/rebalance", post(admin, g.rebalance)},
		{"/rebalance/pause", post(admin, g.pause(true))},
		{"/rebalance/resume", post(admin, g.pause(false))},
		{"/leadership/transfer", post(admin, g.transferLeadership)},
		{"/custom-data", get(reads, g.customDataKeys)},
		{"/custom-data/{key...}", methods{
			http.MethodGet: {reads, g.getCustomData}, http.MethodPut: {admin, g.putCustomData}, http.MethodDelete: {admin, g.deleteCustomData},
		}},

		// Node to node (the admin token when there are tokens, and only
		// between nodes of one cluster).
		{rpc.PathJoin, post(admin, g.sameCluster(g.join))},
		{rpc.PathPropose, post(admin, g.sameCluster(g.propose))},
		{rpc.PathProposeBatch, post(admin, g.sameCluster(g.proposeBatch))},
		{rpc.PathRebalance, post(admin, g.sameCluster(g.rebalanceFromPeer))},
		{rpc.PathPing, post(admin, g.sameCluster(g.ping))},
		{rpc.PathMemberStatus, post(admin, g.sameCluster(g.memberStatus))},
		{rpc.PathTransferLeadership, post(admin, g.sameCluster(g.transferFromPeer))},
	}
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The standard mux would redirect unclean paths with an HTML body.
	if p := r.URL.Path; p != "/" && path.Clean(p) != p && path.Clean(p)+"/" != p {
		g.fail(w, r, http.StatusBadRequest, "bad_path", "path "+quote(p)+" is not in clean form")
		return
	}
	g.mux.ServeHTTP(w, r)
}

// Close ends the open event streams (register it with
// http.Server.RegisterOnShutdown: Shutdown waits for handlers to return).
func (g *Gateway) Close() { g.closeOnce.Do(func() { close(g.closing) }) }

// methods maps HTTP methods to the handlers of one route.
type methods map[string]endpoint

// endpoint is one method of a route: who may call it, and its handler.
type endpoint struct {
	access Access
	h      http.HandlerFunc
}

func get(a Access, h http.HandlerFunc) methods  { return methods{http.MethodGet: {a, h}} }
func post(a Access, h http.HandlerFunc) methods { return methods{http.MethodPost: {a, h}} }

// handle registers a route: other methods get 405 with an Allow header and a
// JSON body (the standard mux would answer in plain text). HEAD is served as GET.
func (g *Gateway) handle(pattern string, m methods) {
	allow := make([]string, 0, len(m)+1)
	for method := range m {
		allow = append(allow, method)
	}
	if _, ok := m[http.MethodGet]; ok {
		allow = append(allow, http.MethodHead)
	}
	slices.Sort(allow)
	g.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		e, ok := m[method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			g.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		if method != http.MethodGet {
			// A change may wait for a commit, a forward and a retry: give
			// its answer more time than the server's default write timeout.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(changeWriteTimeout))
		}
		if g.authorize(w, r, e.access) {
			e.h(w, r)
		}
	})
}

// route is the pattern that served r (a bounded label for metrics).
func route(r *http.Request) string {
	if r.Pattern == "" || r.Pattern == "/" {
		return "unmatched"
	}
	return r.Pattern
}

func (g *Gateway) write(w http.ResponseWriter, r *http.Request, status int, body any) {
	data, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		g.log.Error("encode response", "error", err)
		status, data = http.StatusInternalServerError, []byte(`{"error":"internal error","code":"internal"}`)
	}
	// Count before answering: a client that got its answer sees it counted.
	g.b.CountRequest(route(r), status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	g.write(w, r, status, client.Error{Message: msg, Code: code})
}

// failErr answers err with the status a backend chose (StatusError), or 500.
func (g *Gateway) failErr(w http.ResponseWriter, r *http.Request, err error) {
	var se *StatusError
	if errors.As(err, &se) {
		g.fail(w, r, se.Status, se.Code, err.Error())
		return
	}
	g.log.Warn("request failed", "route", route(r), "error", err)
	g.fail(w, r, http.StatusInternalServerError, "internal", err.Error())
}

// sameCluster refuses a node-to-node request from a node of another cluster
// (409 cluster_mismatch) once both sides know their cluster ID.
func (g *Gateway) sameCluster(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		theirs, ours := r.Header.Get(rpc.ClusterHeader), g.b.ClusterID()
		if theirs != "" && ours != "" && theirs != ours {
			w.Header().Set(rpc.ClusterHeader, ours)
			g.fail(w, r, http.StatusConflict, "cluster_mismatch", "this node belongs to cluster "+ours+", the request comes from cluster "+theirs)
			return
		}
		h(w, r)
	}
}

// isJSON reports whether the request body is JSON.
func isJSON(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
}

// readBody reads at most limit bytes; a larger body is a 413.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			g.fail(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "request body larger than "+strconv.FormatInt(limit, 10)+" bytes")
			return nil, false
		}
		g.fail(w, r, http.StatusBadRequest, "bad_request", "cannot read request body: "+err.Error())
		return nil, false
	}
	return data, true
}

// decode reads a protobuf body, or a JSON one (protojson field names,
// unknown fields refused) for tools that cannot speak protobuf.
func (g *Gateway) decode(w http.ResponseWriter, r *http.Request, m proto.Message) bool {
	limit := int64(rpc.MaxBody)
	if !strings.HasPrefix(r.URL.Path, "/internal/") {
		limit = maxBody
	}
	data, ok := g.readBody(w, r, limit)
	if !ok {
		return false
	}
	var err error
	switch {
	case isJSON(r):
		err = decodeProtoJSON(data, m)
	case r.Header.Get("Content-Type") == rpc.ContentType:
		err = proto.Unmarshal(data, m)
	default:
		g.fail(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json or "+rpc.ContentType)
		return false
	}
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_request", "cannot decode request: "+err.Error())
		return false
	}
	return true
}

// decodeProtoJSON decodes a JSON request body into m: one object, unknown
// fields refused.
func decodeProtoJSON(data []byte, m proto.Message) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return errors.New("empty body")
	}
	return protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(data, m)
}

// answer writes m as protobuf, or as JSON when the request was JSON.
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, status int, m proto.Message) {
	if isJSON(r) || !strings.HasPrefix(r.URL.Path, "/internal/") {
		data, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			g.fail(w, r, http.StatusInternalServerError, "internal", err.Error())
			return
		}
		g.write(w, r, status, json.RawMessage(data))
		return
	}
	data, err := proto.Marshal(m)
	if err != nil {
		g.fail(w, r, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	g.b.CountRequest(route(r), status)
	w.Header().Set("Content-Type", rpc.ContentType)
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// notModified sets the ETag (the state version: the Raft index of the last
// change to configuration, members or table) and answers 304 when the client
// already has this version.
func (g *Gateway) notModified(w http.ResponseWriter, r *http.Request, v *raftfsm.View) bool {
	etag := `"` + strconv.FormatUint(v.Version(), 10) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		g.b.CountRequest(route(r), http.StatusNotModified)
		w.WriteHeader(http.StatusNotModified)
		return true
	}
	return false
}

// etagMatch implements If-None-Match's list and "*" forms.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
