// Package httpgw is ClusterKit's HTTP gateway. It depends on a small Backend
// interface, never on the root package, so it can be tested alone.
package httpgw

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Backend is what the gateway needs from a node.
type Backend interface {
	// NodeID is this node's ID.
	NodeID() string
	// View is the current immutable routing view.
	View() *raftfsm.View
	// Status reports liveness and consensus state.
	Status() Status
	// Detailed is the body of GET /health/detailed.
	Detailed() any
	// CountRequest counts a served request (and whether it failed).
	CountRequest(failed bool)
	// AuthToken is the cluster token ("" = none) required by node-to-node
	// and mutating routes.
	AuthToken() string
	// Join admits a node (forwarded to the leader when needed).
	Join(ctx context.Context, req *messages.JoinRequest) *messages.JoinResponse
	// Propose commits a command forwarded by another member.
	Propose(ctx context.Context, req *messages.Propose) *messages.ProposeResult
	// Rebalance runs a rebalance requested by another member.
	Rebalance(ctx context.Context, req *messages.RebalanceRequest) *messages.ProposeResult
	// Ping identifies this node (liveness only).
	Ping() *messages.PingResponse
}

// Status is the node's own view of itself.
type Status struct {
	Running bool
	Leader  string
}

// Error is the JSON body of every error response.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// New returns the gateway's handler.
func New(b Backend, logger *slog.Logger) http.Handler {
	g := &gateway{b: b, log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", g.only(http.MethodGet, g.health))
	mux.HandleFunc("/health/detailed", g.only(http.MethodGet, g.detailed))
	mux.HandleFunc("/ready", g.only(http.MethodGet, g.ready))
	mux.HandleFunc("/cluster", g.only(http.MethodGet, g.cluster))
	mux.HandleFunc("/join", g.only(http.MethodPost, g.auth(g.join)))
	mux.HandleFunc(rpc.PathJoin, g.only(http.MethodPost, g.auth(g.join)))
	mux.HandleFunc(rpc.PathPropose, g.only(http.MethodPost, g.auth(g.propose)))
	mux.HandleFunc(rpc.PathRebalance, g.only(http.MethodPost, g.auth(g.rebalance)))
	mux.HandleFunc(rpc.PathPing, g.only(http.MethodPost, g.auth(g.ping)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.fail(w, http.StatusNotFound, "not_found", "no route "+r.URL.Path)
	})
	return mux
}

type gateway struct {
	b   Backend
	log *slog.Logger
}

// only rejects other methods with 405 and an Allow header (HEAD is served as GET).
func (g *gateway) only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			g.fail(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		h(w, r)
	}
}

func (g *gateway) write(w http.ResponseWriter, status int, body any) {
	data, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		g.log.Error("encode response", "error", err)
		status, data = http.StatusInternalServerError, []byte(`{"error":"internal error","code":"internal"}`)
	}
	// Count before answering: a client that got its answer sees it counted.
	g.b.CountRequest(status >= 400)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

func (g *gateway) fail(w http.ResponseWriter, status int, code, msg string) {
	g.write(w, status, Error{Error: msg, Code: code})
}

// health is liveness only: the process serves HTTP and its node runs.
func (g *gateway) health(w http.ResponseWriter, _ *http.Request) {
	st := g.b.Status()
	body := map[string]any{"status": "ok", "node_id": g.b.NodeID()}
	if !st.Running {
		body["status"] = "stopped"
		g.write(w, http.StatusServiceUnavailable, body)
		return
	}
	g.write(w, http.StatusOK, body)
}

func (g *gateway) detailed(w http.ResponseWriter, _ *http.Request) {
	g.write(w, http.StatusOK, g.b.Detailed())
}

// ready is readiness: running, a leader known and a table committed. A
// degraded cluster is still ready; its status is in the body.
func (g *gateway) ready(w http.ResponseWriter, _ *http.Request) {
	st, v := g.b.Status(), g.b.View()
	body := map[string]any{
		"ready":          false,
		"node_id":        g.b.NodeID(),
		"cluster_status": v.Health().Status,
		"leader":         st.Leader,
		"table_version":  v.TableVersion(),
	}
	var reasons []string
	if !st.Running {
		reasons = append(reasons, "node is not running")
	}
	if st.Leader == "" {
		reasons = append(reasons, "no known leader")
	}
	if !v.HasTable() {
		reasons = append(reasons, "no partition table committed yet")
	}
	if _, ok := v.Member(g.b.NodeID()); !ok {
		reasons = append(reasons, "this node is not a member")
	}
	if len(reasons) > 0 {
		body["reasons"] = reasons
		g.write(w, http.StatusServiceUnavailable, body)
		return
	}
	body["ready"] = true
	g.write(w, http.StatusOK, body)
}

// clusterResponse keeps the reference's {"cluster": {...}} shape; hash_config
// sits both inside the cluster and at the top level for simple clients.
type clusterResponse struct {
	Cluster    *raftfsm.Cluster    `json:"cluster"`
	HashConfig *raftfsm.HashConfig `json:"hash_config"`
	Leader     string              `json:"leader"`
	NodeID     string              `json:"node_id"`
}

// cluster serves the whole cluster document. Its ETag is the state version
// (the Raft index of the last change), so If-None-Match answers 304 exactly
// when nothing changed.
func (g *gateway) cluster(w http.ResponseWriter, r *http.Request) {
	v := g.b.View()
	etag := `"` + strconv.FormatUint(v.Version(), 10) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		g.b.CountRequest(false)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	c := v.Cluster()
	g.write(w, http.StatusOK, clusterResponse{Cluster: c, HashConfig: c.HashConfig, Leader: g.b.Status().Leader, NodeID: g.b.NodeID()})
}

// auth requires "Authorization: Bearer <token>" when the cluster has a token
// (constant-time compare).
func (g *gateway) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if token := g.b.AuthToken(); token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="clusterkit"`)
				g.fail(w, http.StatusUnauthorized, "unauthorized", "missing or wrong cluster token")
				return
			}
		}
		h(w, r)
	}
}

// decode reads a protobuf body, or a JSON one (protojson field names) for
// tools that cannot speak protobuf.
func (g *gateway) decode(w http.ResponseWriter, r *http.Request, m proto.Message) bool {
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		r.Body = http.MaxBytesReader(w, r.Body, rpc.MaxBody)
		var data []byte
		if data, err = io.ReadAll(r.Body); err == nil {
			err = protojson.Unmarshal(data, m)
		}
	} else {
		err = rpc.Decode(r, m)
	}
	if err != nil {
		g.fail(w, http.StatusBadRequest, "bad_request", "cannot decode request: "+err.Error())
		return false
	}
	return true
}

// answer writes m as protobuf, or as JSON when the request was JSON.
func (g *gateway) answer(w http.ResponseWriter, r *http.Request, status int, m proto.Message) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		data, err := protojson.Marshal(m)
		if err != nil {
			g.fail(w, http.StatusInternalServerError, "internal", err.Error())
			return
		}
		g.write(w, status, json.RawMessage(data))
		return
	}
	data, err := proto.Marshal(m)
	if err != nil {
		g.fail(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	g.b.CountRequest(status >= 400)
	w.Header().Set("Content-Type", rpc.ContentType)
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (g *gateway) join(w http.ResponseWriter, r *http.Request) {
	req := &messages.JoinRequest{}
	if !g.decode(w, r, req) {
		return
	}
	resp := g.b.Join(r.Context(), req)
	status := http.StatusOK
	if !resp.GetAccepted() && r.URL.Path == "/join" {
		status = http.StatusConflict // the public route reports refusals as HTTP errors
	}
	g.answer(w, r, status, resp)
}

func (g *gateway) propose(w http.ResponseWriter, r *http.Request) {
	req := &messages.Propose{}
	if !g.decode(w, r, req) {
		return
	}
	g.answer(w, r, http.StatusOK, g.b.Propose(r.Context(), req))
}

func (g *gateway) rebalance(w http.ResponseWriter, r *http.Request) {
	req := &messages.RebalanceRequest{}
	if !g.decode(w, r, req) {
		return
	}
	g.answer(w, r, http.StatusOK, g.b.Rebalance(r.Context(), req))
}

func (g *gateway) ping(w http.ResponseWriter, r *http.Request) {
	g.answer(w, r, http.StatusOK, g.b.Ping())
}
