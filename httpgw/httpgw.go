// Package httpgw is ClusterKit's HTTP gateway. It depends on a small Backend
// interface, never on the root package, so it can be tested alone.
package httpgw

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

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
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
	g.b.CountRequest(status >= 400)
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
		w.WriteHeader(http.StatusNotModified)
		g.b.CountRequest(false)
		return
	}
	c := v.Cluster()
	g.write(w, http.StatusOK, clusterResponse{Cluster: c, HashConfig: c.HashConfig, Leader: g.b.Status().Leader, NodeID: g.b.NodeID()})
}
