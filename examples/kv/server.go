package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
)

// maxValue bounds a value (and so a request body).
const maxValue = 1 << 20

// askTimeout bounds a request to the store actor.
const askTimeout = 5 * time.Second

// apiError is the JSON error body of the kv API.
type apiError struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"error"`
	Partition string `json:"partition,omitempty"`
	Epoch     uint64 `json:"epoch,omitempty"`
	Primary   string `json:"primary,omitempty"`    // not_owner: the partition's primary
	PrimaryKV string `json:"primary_kv,omitempty"` // and its kv address
	// Version: not_found of a deleted key, the delete's version (a client
	// that saw an older value knows this answer is newer).
	Version uint64 `json:"version,string,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errNotReady(err error) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: err.Error()}
}

func errLoading(part string) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "loading", Partition: part,
		Message: part + " is still being loaded on this node"}
}

// writeResult is the JSON answer of a PUT or DELETE.
type writeResult struct {
	Key       string   `json:"key"`
	Partition string   `json:"partition"`
	Version   uint64   `json:"version,string"` // a string: it exceeds 2^53 (JavaScript numbers)
	Epoch     uint64   `json:"epoch"`
	Acked     []string `json:"replicas_acked"`
	Skipped   []string `json:"replicas_skipped"` // unreachable: they reload when they rejoin
	// Queued: async replication, the replicas the write is queued for (it
	// was acknowledged before they have it).
	Queued []string `json:"replicas_queued,omitempty"`
}

// server is the kv HTTP API of one node.
type server struct {
	ck     *clusterkit.ClusterKit
	system *actor.ActorSystem
	store  *actor.PID
	st     *store // for its logger, node ID and HTTP client; the data is the actor's

	replication Replication
	routing     Routing
	fwd         *http.Client // server routing: requests forwarded to other nodes

	warnDown throttle // one "replica unreachable" warning per replica per interval
}

// throttle lets one event per key through per interval.
type throttle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (t *throttle) allow(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[string]time.Time{}
	}
	if now := time.Now(); now.Sub(t.last[key]) >= 5*time.Second {
		t.last[key] = now
		return true
	}
	return false
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kv/{key...}", s.handleGet)
	mux.HandleFunc("PUT /kv/{key...}", s.handleWrite)
	mux.HandleFunc("DELETE /kv/{key...}", s.handleWrite)
	mux.HandleFunc("GET /ready", s.handleReady)
	mux.HandleFunc("POST /internal/replicate", s.handleReplicate)
	mux.HandleFunc("POST /internal/replicate-batch", s.handleReplicateBatch)
	mux.HandleFunc("GET /internal/partitions/{id}", s.handleSnapshot)
	mux.HandleFunc("POST /internal/partitions/{id}/deliver", s.handleDeliver)
	return mux
}

// ask sends msg to the store actor and waits for its answer.
func (s *server) ask(msg any) (any, *apiError) {
	res, err := s.system.Root.RequestFuture(s.store, msg, askTimeout).Result()
	if err != nil {
		return nil, &apiError{Status: http.StatusServiceUnavailable, Code: "busy", Message: "store actor: " + err.Error()}
	}
	return res, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) { writeJSON(w, e.Status, e) }

func (s *server) handleGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_key", Message: "empty key"})
		return
	}
	// Under server routing with async replication only the primary has
	// every acknowledged write: reads go there too.
	primaryOnly := s.routing == RoutingServer && s.replication == ReplicationAsync
	res, aerr := s.ask(&getRequest{key: key, primaryOnly: primaryOnly})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	g := res.(*getReply)
	switch {
	case g.err != nil && s.forwards(r, g.err):
		s.forward(w, r, key, nil)
	case g.err != nil:
		writeError(w, g.err)
	case !g.found:
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Partition: g.part, Version: g.entry.Version,
			Message: fmt.Sprintf("no key %q", key)})
	default:
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("X-Kv-Version", strconv.FormatUint(g.entry.Version, 10))
		h.Set("X-Kv-Partition", g.part)
		h.Set("X-Kv-Node", s.st.self)
		h.Set("X-Kv-Role", g.role)
		_, _ = w.Write(g.entry.Value)
	}
}

// handleWrite: applied by the primary's actor, then, under sync
// replication, sent from here to every replica in parallel; the answer
// waits for all of them. Under async replication the actor queued it for
// the replicas, and the answer goes at once.
func (s *server) handleWrite(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_key", Message: "empty key"})
		return
	}
	var value []byte
	deleted := r.Method == http.MethodDelete
	if !deleted {
		var err error
		value, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxValue))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			writeError(w, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: err.Error()})
			return
		case err != nil: // the client went away or timed out mid-body: nothing was written
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: "reading the value: " + err.Error()})
			return
		}
		if value == nil {
			value = []byte{}
		}
	}
	res, aerr := s.ask(&writeRequest{key: key, value: value, deleted: deleted})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	wr := res.(*writeReply)
	if wr.err != nil && s.forwards(r, wr.err) {
		s.forward(w, r, key, value)
		return
	}
	if wr.err != nil {
		writeError(w, wr.err)
		return
	}
	out := writeResult{Key: key, Partition: wr.part, Version: wr.version, Epoch: wr.epoch, Acked: []string{}, Skipped: []string{}}
	if s.replication == ReplicationAsync {
		out.Queued = wr.replicas
		writeJSON(w, http.StatusOK, out)
		return
	}
	msg := &replicateRequest{Partition: wr.part, Epoch: wr.epoch, Key: key, Entry: entry{Value: value, Version: wr.version, Deleted: deleted}}
	// Replication finishes even if the client goes away: the write is applied.
	if err := s.replicateAll(context.WithoutCancel(r.Context()), msg, wr.replicas, &out); err != nil {
		// Applied here but not on every reachable replica: the client must
		// retry (the write is idempotent) once the owners agree again;
		// under server routing this node retries for it.
		if s.forwards(r, err) {
			s.forward(w, r, key, value)
			return
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// replicateAll sends msg to every replica and waits for each: an ack, a
// refusal or no answer (either fails the write), or a refused connection
// (skipped: the replica is down, and reloads the partition when it comes
// back). The primary and the replicas that acknowledged must be a majority
// of the partition's owners (see ReplicationSync).
func (s *server) replicateAll(ctx context.Context, msg *replicateRequest, replicas []string, out *writeResult) *apiError {
	body, err := json.Marshal(msg)
	if err != nil {
		return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
	}
	kv := s.ck.ServiceAddresses("kv")
	ips := map[string]string{}
	for _, n := range s.ck.GetCluster().Nodes {
		ips[n.ID] = n.IP
	}
	type answer struct {
		node string
		err  *apiError
		down error
	}
	answers := make([]answer, len(replicas))
	var wg sync.WaitGroup
	for i, node := range replicas {
		answers[i].node = node
		addr := kv[node]
		if addr == "" {
			answers[i].down = errors.New("no kv service registered")
			continue
		}
		wg.Go(func() {
			answers[i].err, answers[i].down = s.sendReplica(ctx, serviceAddr(addr, ips[node]), body)
		})
	}
	wg.Wait()
	var failed []string
	for _, a := range answers {
		switch {
		case a.err != nil:
			failed = append(failed, fmt.Sprintf("%s: %s", a.node, a.err.Error()))
		case a.down != nil:
			out.Skipped = append(out.Skipped, a.node)
			if s.warnDown.allow(a.node) {
				s.st.log.Warn("replica unreachable: writes are not replicated to it (it reloads when it rejoins)",
					"replica", a.node, "partition", msg.Partition, "error", a.down)
			}
		default:
			out.Acked = append(out.Acked, a.node)
		}
	}
	if len(failed) > 0 {
		return &apiError{Status: http.StatusServiceUnavailable, Code: "replication_refused", Partition: msg.Partition, Epoch: msg.Epoch,
			Message: fmt.Sprintf("applied on the primary but not confirmed by %v; retry", failed)}
	}
	if owners, have := 1+len(replicas), 1+len(out.Acked); have < quorum(owners) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: "no_quorum", Partition: msg.Partition, Epoch: msg.Epoch,
			Message: fmt.Sprintf("held by %d of the %d owners (unreachable: %v), a majority (%d) is needed; it is applied on the primary, retry",
				have, owners, out.Skipped, quorum(owners))}
	}
	return nil
}

// quorum is a majority of n owners.
func quorum(n int) int { return n/2 + 1 }

// sendReplica returns the replica's refusal, or down when no connection to
// it could be made. A replica that was reached but did not answer (in time)
// is not down: it may have applied the write or not, it will not reload the
// partition, and skipping it would let it miss an acknowledged write for
// good (and lose it if it becomes the primary). That is a refusal: the
// client retries.
func (s *server) sendReplica(ctx context.Context, addr string, body []byte) (refused *apiError, down error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/internal/replicate", bytes.NewReader(body))
	if err != nil {
		return &apiError{Code: "bad_address", Message: err.Error()}, nil
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.st.client.Do(req)
	switch {
	case isDial(err):
		return nil, err
	case err != nil:
		return &apiError{Code: "no_answer", Message: err.Error()}, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	var e apiError
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &e) != nil || e.Code == "" {
		e = apiError{Code: "unknown", Message: fmt.Sprintf("%s: %s", resp.Status, data)}
	}
	return &e, nil
}

func (s *server) handleReplicate(w http.ResponseWriter, r *http.Request) {
	var msg replicateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*maxValue)).Decode(&msg); err != nil {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf("replicate body: %v", err)})
		return
	}
	if msg.Key == "" || msg.Entry.Version == 0 {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: "replicate body: key and entry.version are required"})
		return
	}
	res, aerr := s.ask(&msg)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if e := res.(*replicateReply).err; e != nil {
		writeError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// snapshotJSON is the body of GET /internal/partitions/{id}.
type snapshotJSON struct {
	Partition string           `json:"partition"`
	Node      string           `json:"node"`
	Entries   map[string]entry `json:"entries"`
}

// handleSnapshot serves a partition to a node that loads it, once this
// node's table has reached the epoch of the loader's PartitionChange: from
// then on a primary that does not know the loader is refused here
// (stale_epoch), so no acknowledged write can miss both the copy and the
// loader.
func (s *server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	// The epoch is the fence: without it (0) any table would do, and a copy
	// could miss a write acknowledged by a primary that does not know the loader.
	epoch, err := strconv.ParseUint(r.URL.Query().Get("epoch"), 10, 64)
	if err != nil || epoch == 0 {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_request", Partition: id,
			Message: fmt.Sprintf("epoch %q: want the loader's partition epoch (> 0)", r.URL.Query().Get("epoch"))})
		return
	}
	if !s.waitEpoch(r.Context(), id, epoch) {
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "behind", Partition: id, Epoch: epoch,
			Message: fmt.Sprintf("%s has not applied epoch %d of %s yet", s.st.self, epoch, id)})
		return
	}
	res, aerr := s.ask(&snapshotRequest{part: id})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	sr := res.(*snapshotReply)
	if sr.err != nil {
		writeError(w, sr.err)
		return
	}
	writeJSON(w, http.StatusOK, snapshotJSON{Partition: id, Node: s.st.self, Entries: sr.entries})
}

// waitEpoch reports whether this node's table reaches epoch for partition
// id within a second (the loader's request times out after 2 s: it then
// still has time to try another source) or before ctx ends.
func (s *server) waitEpoch(ctx context.Context, id string, epoch uint64) bool {
	reached := func() bool {
		p := s.ck.GetCluster().PartitionMap.Partitions[id]
		return p != nil && p.Epoch >= epoch
	}
	if reached() {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return reached()
		case <-tick.C:
			if reached() {
				return true
			}
		}
	}
}

func (s *server) handleReady(w http.ResponseWriter, _ *http.Request) {
	res, aerr := s.ask(&statusRequest{})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	st := res.(*Status)
	code := http.StatusOK
	if !st.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

// fetchPartition copies a partition from src (GET /internal/partitions/{id}).
func (s *store) fetchPartition(ctx context.Context, src source, part string, epoch uint64) (map[string]entry, error) {
	if src.kv == "" {
		return nil, fmt.Errorf("%s has no kv service", src.id)
	}
	u := fmt.Sprintf("http://%s/internal/partitions/%s?epoch=%d", src.kv, part, epoch)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("%s: %s: %s", src.id, resp.Status, bytes.TrimSpace(data))
	}
	var snap snapshotJSON
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return nil, fmt.Errorf("%s: snapshot: %w", src.id, err)
	}
	if snap.Entries == nil {
		snap.Entries = map[string]entry{}
	}
	return snap.Entries, nil
}

// listen opens the kv address; it returns the address to register as the
// "kv" service (the bound port when addr asked for port 0).
func listen(addr string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("kv listen on %s: %w", addr, err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		_ = ln.Close()
		return nil, "", err
	}
	if port == "0" {
		_, port, _ = net.SplitHostPort(ln.Addr().String())
	}
	return ln, net.JoinHostPort(host, port), nil
}
