package client_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// fakeGateway serves a few gateway routes from memory, in the gateway's
// wire format, so the client's tests and examples run without a cluster
// (the root package's tests run the client against real nodes).
type fakeGateway struct {
	mu      sync.Mutex
	cluster client.ClusterResponse
	events  []client.Event
	// dropAfter closes each event stream after this many events (0 = never).
	dropAfter int
	// replayOnce, when set, makes the first reconnection ignore
	// Last-Event-ID and replay from the start (a misbehaving proxy), so the
	// client's duplicate filter is exercised.
	replayOnce bool
	// eventsRefused, when set, is the status GET /events answers with (503:
	// a proxy that does not pass server-sent events; 404: a gateway without
	// the route), so only polling reaches the cluster.
	eventsRefused atomic.Int32
	// goneBefore answers 410 events_gone to a resume point below this index.
	goneBefore atomic.Uint64
	// added is closed and replaced by emit: open streams send what was added.
	added chan struct{}

	conns       atomic.Int64
	streams     atomic.Int64 // connections answered with a stream
	notModified atomic.Int64
	srv         *httptest.Server
}

func newFakeGateway() *fakeGateway {
	f := &fakeGateway{added: make(chan struct{})}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	nodes := []client.Node{
		{ID: "node-1", Name: "alpha", IP: "10.0.0.1:8080", Port: 8080, Status: "active", Services: map[string]string{"kv": "10.0.0.1:9080"}, Incarnation: 3, Voter: true, JoinedAt: t0, LastSeen: t0},
		{ID: "node-2", Name: "beta", IP: "10.0.0.2:8080", Port: 8080, Status: "active", Services: map[string]string{"kv": "10.0.0.2:9080"}, Incarnation: 8, Voter: true, JoinedAt: t0, LastSeen: t0},
	}
	hc := &client.HashConfig{Algorithm: "md5", Encoding: "big_endian_uint32", Modulo: 8, Format: "partition-%d",
		Formula: "BigEndian.Uint32(md5(key)[0:4]) % partition_count", PartitionCount: 8, PartitionIDFormat: "partition-%d"}
	pm := &client.PartitionMap{Partitions: map[string]*client.Partition{}}
	for i := range 8 {
		owners := []string{nodes[i%2].ID, nodes[(i+1)%2].ID}
		pm.Partitions["partition-"+strconv.Itoa(i)] = &client.Partition{ID: "partition-" + strconv.Itoa(i), PrimaryNode: owners[0], ReplicaNodes: owners[1:], Epoch: 1}
	}
	f.cluster = client.ClusterResponse{
		Cluster: &client.Cluster{ID: "demo", Name: "demo", ClusterID: "0123456789abcdef0123456789abcdef", Nodes: nodes, PartitionMap: pm,
			Config: &client.Config{ClusterName: "demo", PartitionCount: 8, ReplicationFactor: 2, MaxVoters: 5}, HashConfig: hc,
			Version: 14, TableVersion: 14, Health: "healthy"},
		HashConfig: hc, Leader: "node-1", NodeID: "node-1",
	}
	for i := range 7 {
		n := nodes[i%2]
		f.events = append(f.events, client.Event{
			Seq: fmt.Sprintf("14.%d", i), Kind: client.KindNodeJoin, Index: 14, Sub: uint32(i), Time: t0,
			NodeJoin: &client.NodeJoin{Node: &n, ClusterSize: 2},
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cluster", f.serveCluster)
	mux.HandleFunc("GET /events", f.serveEvents)
	mux.HandleFunc("GET /nodes/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(client.Error{Code: "unknown_node", Message: "no member " + strconv.Quote(r.PathValue("id"))})
	})
	f.srv = httptest.NewServer(mux)
	return f
}

func (f *fakeGateway) Close() { f.srv.Close() }

// setVersion changes the cluster (a new ETag).
func (f *fakeGateway) setVersion(v uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *f.cluster.Cluster
	c.Version = v
	f.cluster.Cluster = &c
}

// emit changes the cluster to version v and streams a partition_change
// event at that index, as a node does when it applies a new table.
func (f *fakeGateway) emit(v uint64, kind string) {
	f.setVersion(v)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, client.Event{Seq: fmt.Sprintf("%d.0", v), Kind: kind, Index: v, Time: time.Now()})
	close(f.added)
	f.added = make(chan struct{})
}

func (f *fakeGateway) serveCluster(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	doc := f.cluster
	f.mu.Unlock()
	etag := `"` + strconv.FormatUint(doc.Cluster.Version, 10) + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		f.notModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

func (f *fakeGateway) serveEvents(w http.ResponseWriter, r *http.Request) {
	n := f.conns.Add(1)
	if code := f.eventsRefused.Load(); code != 0 {
		http.Error(w, "no event streams here", int(code))
		return
	}
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("since")
	}
	if f.replayOnce && n == 2 {
		after = "0" // ignore the resume point once
	}
	index, _, _ := strings.Cut(after, ".")
	if i, err := strconv.ParseUint(index, 10, 64); after == "1.0" || (err == nil && i < f.goneBefore.Load()) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusGone)
		_, _ = w.Write([]byte(`{"error":"events before 14.0 are no longer held","code":"events_gone"}`))
		return
	}
	f.streams.Add(1)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n: clusterkit events after %s\n\n", after)
	sent := 0
	for next := 0; ; {
		f.mu.Lock()
		events, added := f.events[next:], f.added
		f.mu.Unlock()
		for _, e := range events {
			next++
			if after != "" && after != "0" && !seqAfter(e.Seq, after) {
				continue
			}
			data, _ := json.Marshal(e)
			fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", e.Seq, e.Kind, data)
			sent++
			if f.dropAfter > 0 && sent == f.dropAfter {
				return // the connection drops mid-stream
			}
		}
		// Then the stream stays open until the client goes away, sending
		// what emit adds.
		w.(http.Flusher).Flush()
		select {
		case <-added:
		case <-r.Context().Done():
			return
		}
	}
}

// seqAfter compares "14.3"-style seqs; a bare "14" is after all of entry 14.
func seqAfter(s, after string) bool {
	i, a, _ := strings.Cut(s, ".")
	j, b, dotted := strings.Cut(after, ".")
	x, _ := strconv.Atoi(i)
	y, _ := strconv.Atoi(j)
	if x != y || !dotted {
		return x > y
	}
	p, _ := strconv.Atoi(a)
	q, _ := strconv.Atoi(b)
	return p > q
}
