package clusterkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

const testToken = "s3cret-token"

// api is a small HTTP client for one node's gateway.
type api struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newAPI(t *testing.T, ck *ClusterKit) *api {
	return &api{t: t, base: "http://" + ck.advertise, c: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (a *api) do(method, path string, hdr map[string]string, body []byte) reply {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

var (
	bearer   = map[string]string{"Authorization": "Bearer " + testToken}
	jsonAuth = map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"}
)

func tokenCluster(t *testing.T, n int) []*ClusterKit {
	return startCluster(t, n, func(i int, o *Options) {
		o.AuthToken = testToken
		o.Services = map[string]string{"kv": fmt.Sprintf(":%d", 9080+i)}
	}, nil)
}

// clusterState is what must not change after bad input.
func clusterState(nodes []*ClusterKit) string {
	var b strings.Builder
	for _, n := range nodes {
		v := n.fsm.View()
		fmt.Fprintf(&b, "%s:v%d/c%x/m%d ", n.opts.NodeID, v.Version(), v.Checksum(), len(v.Members()))
	}
	return b.String()
}

func TestHTTPRoutes(t *testing.T) {
	leakCheck(t)
	nodes := tokenCluster(t, 3)
	leader := leaderOf(t, nodes)
	var follower *ClusterKit
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	a := newAPI(t, follower)

	type check func(t *testing.T, r reply)
	hasJSON := func(field string, want any) check {
		return func(t *testing.T, r reply) {
			t.Helper()
			var m map[string]any
			r.json(t, &m)
			if got := m[field]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s = %v, want %v in %s", field, got, want, r.body)
			}
		}
	}
	ok := []struct {
		method, path string
		hdr          map[string]string
		body         string
		check        check
	}{
		{"GET", "/health", nil, "", hasJSON("status", "ok")},
		{"HEAD", "/health", nil, "", nil},
		{"GET", "/ready", nil, "", hasJSON("ready", true)},
		{"GET", "/health/detailed", nil, "", func(t *testing.T, r reply) {
			var h HealthStatus
			r.json(t, &h)
			if !h.Healthy || h.Term == 0 || h.Voters != 3 || h.Leader != leader.opts.NodeID {
				t.Fatalf("/health/detailed: %s", r.body)
			}
		}},
		{"GET", "/cluster", nil, "", func(t *testing.T, r reply) {
			var c struct {
				Cluster struct {
					Nodes []Node `json:"nodes"`
				} `json:"cluster"`
				HashConfig HashConfig `json:"hash_config"`
			}
			r.json(t, &c)
			if len(c.Cluster.Nodes) != 3 || c.HashConfig.PartitionCount != 64 || c.Cluster.Nodes[1].Services["kv"] != ":9082" || r.header.Get("ETag") == "" {
				t.Fatalf("/cluster: %s", r.body)
			}
		}},
		{"GET", "/nodes", nil, "", func(t *testing.T, r reply) {
			var n struct {
				Nodes []Node `json:"nodes"`
				Total int    `json:"total"`
			}
			r.json(t, &n)
			if n.Total != 3 || len(n.Nodes) != 3 || n.Nodes[0].ID != "node-1" {
				t.Fatalf("/nodes: %s", r.body)
			}
		}},
		{"GET", "/nodes?offset=1&limit=1", nil, "", func(t *testing.T, r reply) {
			var n struct {
				Nodes []Node `json:"nodes"`
				Total int    `json:"total"`
			}
			r.json(t, &n)
			if n.Total != 3 || len(n.Nodes) != 1 || n.Nodes[0].ID != "node-2" {
				t.Fatalf("/nodes page: %s", r.body)
			}
		}},
		{"GET", "/nodes?offset=10", nil, "", hasJSON("nodes", "[]")},
		{"GET", "/nodes/node-3", nil, "", hasJSON("id", "node-3")},
		{"GET", "/partitions?limit=10&offset=60", nil, "", func(t *testing.T, r reply) {
			var p struct {
				Partitions []Partition `json:"partitions"`
				Total      int         `json:"total"`
			}
			r.json(t, &p)
			if p.Total != 64 || len(p.Partitions) != 4 || p.Partitions[0].ID != "partition-60" {
				t.Fatalf("/partitions page: %s", r.body)
			}
		}},
		{"GET", "/partitions/stats", nil, "", func(t *testing.T, r reply) {
			var s struct {
				NodeCount int `json:"node_count"`
				Nodes     map[string]struct {
					Primary, Total int
				} `json:"nodes"`
				MinPrimary int `json:"min_primary"`
				MaxPrimary int `json:"max_primary"`
			}
			r.json(t, &s)
			if s.NodeCount != 3 || len(s.Nodes) != 3 || s.Nodes["node-1"].Total != 64 || s.MaxPrimary-s.MinPrimary > 1 {
				t.Fatalf("/partitions/stats: %s", r.body)
			}
		}},
		{"GET", "/partitions/partition-48", nil, "", hasJSON("number", 48)},
		{"GET", "/partitions/7", nil, "", hasJSON("partition", "partition-7")},
		{"GET", "/locate?key=user:123", nil, "", func(t *testing.T, r reply) {
			var d struct {
				Partition string `json:"partition"`
				Primary   Node   `json:"primary"`
				Replicas  []Node `json:"replicas"`
			}
			r.json(t, &d)
			p, _ := follower.GetPartition("user:123")
			if d.Partition != "partition-48" || d.Primary.ID != p.PrimaryNode || len(d.Replicas) != 2 {
				t.Fatalf("/locate: %s", r.body)
			}
		}},
		{"GET", "/consensus/leader", nil, "", hasJSON("leader_id", leader.opts.NodeID)},
		{"GET", "/consensus/stats", nil, "", func(t *testing.T, r reply) {
			var c struct {
				State       string   `json:"state"`
				Term        uint64   `json:"term"`
				CommitIndex uint64   `json:"commit_index"`
				Voters      []string `json:"voters"`
				NumPeers    int      `json:"num_peers"`
			}
			r.json(t, &c)
			if c.State != "Follower" || c.Term == 0 || c.CommitIndex == 0 || len(c.Voters) != 3 || c.NumPeers != 2 {
				t.Fatalf("/consensus/stats: %s", r.body)
			}
		}},
		{"GET", "/metrics?format=json", nil, "", hasJSON("node_count", 3)},
		{"GET", "/metrics", nil, "", func(t *testing.T, r reply) {
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !bytes.Contains(r.body, []byte("clusterkit_members")) {
				t.Fatalf("/metrics: %s", r.header.Get("Content-Type"))
			}
		}},
	}
	for _, tc := range ok {
		t.Run("ok "+tc.method+" "+tc.path, func(t *testing.T) {
			r := a.do(tc.method, tc.path, tc.hdr, []byte(tc.body))
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	before := clusterState(nodes)
	validJoin := `{"member":{"id":"node-9","address":"127.0.0.1:1","nonce":"7"}}`
	huge := bytes.Repeat([]byte("x"), 2<<20)
	bad := []struct {
		method, path string
		hdr          map[string]string
		body         []byte
		status       int
		code         string
	}{
		{"GET", "/nodes?offset=-1", nil, nil, 400, "bad_pagination"},
		{"GET", "/nodes?offset=abc", nil, nil, 400, "bad_pagination"},
		{"GET", "/nodes?offset=99999999999999999999", nil, nil, 400, "bad_pagination"},
		{"GET", "/nodes?limit=0", nil, nil, 400, "bad_pagination"},
		{"GET", "/nodes?limit=1e3", nil, nil, 400, "bad_pagination"},
		{"GET", "/nodes?limit=100000", nil, nil, 400, "bad_pagination"},
		{"GET", "/nodes?limit=%2B5", nil, nil, 400, "bad_pagination"},
		{"GET", "/partitions?offset=-5", nil, nil, 400, "bad_pagination"},
		{"GET", "/nodes/nope", nil, nil, 404, "unknown_node"},
		{"GET", "/partitions/partition-64", nil, nil, 404, "unknown_partition"},
		{"GET", "/partitions/-1", nil, nil, 404, "unknown_partition"},
		{"GET", "/partitions/abc", nil, nil, 404, "unknown_partition"},
		{"GET", "/locate", nil, nil, 400, "missing_key"},
		{"GET", "/locate?key=", nil, nil, 400, "missing_key"},
		{"GET", "/locate?key=" + strings.Repeat("k", 5000), nil, nil, 400, "key_too_long"},
		{"GET", "/metrics?format=xml", nil, nil, 400, "bad_format"},
		{"GET", "/events?kinds=bogus", nil, nil, 400, "bad_kinds"},
		{"GET", "/events?since=abc", nil, nil, 400, "bad_seq"},
		{"GET", "/events?since=1.0", nil, nil, 410, "events_gone"},
		{"GET", "/nope", nil, nil, 404, "not_found"},
		{"POST", "/cluster", nil, nil, 405, "method_not_allowed"},
		{"DELETE", "/health", nil, nil, 405, "method_not_allowed"},
		{"PUT", "/nodes/node-2", bearer, nil, 405, "method_not_allowed"},
		{"GET", "/rebalance", nil, nil, 405, "method_not_allowed"},
		// Authentication on every mutating and node-to-node route.
		{"POST", "/join", map[string]string{"Content-Type": "application/json"}, []byte(validJoin), 401, "unauthorized"},
		{"POST", "/rebalance", nil, nil, 401, "unauthorized"},
		{"POST", "/rebalance", map[string]string{"Authorization": "Bearer wrong"}, nil, 401, "unauthorized"},
		{"POST", "/rebalance", map[string]string{"Authorization": testToken}, nil, 401, "unauthorized"},
		{"POST", "/leave", nil, nil, 401, "unauthorized"},
		{"DELETE", "/nodes/node-3", nil, nil, 401, "unauthorized"},
		{"POST", "/leadership/transfer", nil, nil, 401, "unauthorized"},
		{"POST", "/internal/v1/ping", nil, nil, 401, "unauthorized"},
		{"POST", "/internal/v1/propose", nil, nil, 401, "unauthorized"},
		{"POST", "/internal/v1/transfer-leadership", nil, nil, 401, "unauthorized"},
		// Bad bodies.
		{"POST", "/join", jsonAuth, []byte(`{"member":`), 400, "bad_request"},
		{"POST", "/join", jsonAuth, []byte(`{"member":{"id":"x"},"bogus":1}`), 400, "bad_request"},
		{"POST", "/join", jsonAuth, nil, 400, "bad_request"},
		{"POST", "/join", jsonAuth, []byte(`{}`), 400, "bad_request"},
		{"POST", "/join", jsonAuth, huge, 413, "body_too_large"},
		{"POST", "/join", bearer, []byte(validJoin), 415, "unsupported_media_type"},
		{"POST", "/join", jsonAuth, []byte(`{"member":{"id":"bad id!","address":"127.0.0.1:1"}}`), 400, "invalid_member"},
		{"POST", "/join", jsonAuth, []byte(validJoin), 409, "unreachable"},
		{"POST", "/rebalance", bearer, []byte("please"), 400, "unexpected_body"},
		{"POST", "/rebalance", bearer, huge, 413, "body_too_large"},
		{"POST", "/leave", bearer, []byte(`{"now":true}`), 400, "unexpected_body"},
		{"DELETE", "/nodes/nope", bearer, nil, 404, "unknown_node"},
		{"DELETE", "/nodes/" + follower.opts.NodeID, bearer, nil, 400, "is_self"},
		{"POST", "/leadership/transfer", jsonAuth, []byte(`{"target_id":`), 400, "bad_request"},
		{"POST", "/leadership/transfer", jsonAuth, []byte(`{"target":"node-2"}`), 400, "bad_request"},
		{"POST", "/leadership/transfer", jsonAuth, []byte(`{"target_id":"node-2"} {}`), 400, "bad_request"},
		{"POST", "/leadership/transfer", jsonAuth, []byte(`{"target_id":"nope"}`), 400, "invalid_target"},
		{"POST", "/internal/v1/propose", map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/x-protobuf"}, []byte{0xff, 0xff, 0xff}, 400, "bad_request"},
	}
	for _, tc := range bad {
		t.Run(fmt.Sprintf("bad %s %.60s", tc.method, tc.path), func(t *testing.T) {
			r := a.do(tc.method, tc.path, tc.hdr, tc.body)
			var e struct {
				Error string `json:"error"`
				Code  string `json:"code"`
			}
			if r.status != tc.status || json.Unmarshal(r.body, &e) != nil || e.Code != tc.code || e.Error == "" {
				t.Fatalf("got %d %s, want %d with code %q", r.status, r.body, tc.status, tc.code)
			}
			if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if r.status == 405 && r.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	if after := clusterState(nodes); after != before {
		t.Fatalf("bad input changed the cluster:\nbefore %s\nafter  %s", before, after)
	}
	// And the cluster still takes a write, from this same follower.
	r := a.do("POST", "/rebalance", bearer, nil)
	if r.status != 200 {
		t.Fatalf("rebalance after the bad input: %d %s", r.status, r.body)
	}
	// The follower answers once it applied the change itself: a client reads
	// its own write from the node it asked.
	var done struct {
		Version uint64 `json:"version"`
	}
	r.json(t, &done)
	if want := leader.fsm.View().Version(); done.Version != want || follower.fsm.View().Version() != want {
		t.Fatalf("rebalance answered version %d; leader has %d, this follower %d", done.Version, want, follower.fsm.View().Version())
	}
	waitFor(t, 5*time.Second, "the rebalance on every node", func() bool {
		return clusterState(nodes) != before && nodes[0].fsm.View().Version() == nodes[2].fsm.View().Version()
	})
}

// An ETag is the state version: a reassignment that keeps every count the
// same (two primaries swapped) still changes it, and an unchanged state
// keeps answering 304.
func TestHTTPETagAcrossEqualCountReassignment(t *testing.T) {
	leakCheck(t)
	nodes := tokenCluster(t, 3)
	a := newAPI(t, nodes[1])
	first := a.do("GET", "/cluster", nil, nil)
	etag := first.header.Get("ETag")
	stats := a.do("GET", "/partitions/stats", nil, nil)
	if r := a.do("GET", "/cluster", map[string]string{"If-None-Match": etag}, nil); r.status != http.StatusNotModified {
		t.Fatalf("unchanged: %d", r.status)
	}

	v := nodes[0].fsm.View()
	owners := v.OwnerTable()
	// Find two partitions whose primaries differ, and swap them by rotating
	// each owner list to start with the other's primary.
	var p0, p1 int = -1, -1
	for n := 1; n < len(owners); n++ {
		if owners[n][0] != owners[0][0] {
			p0, p1 = 0, n
			break
		}
	}
	if p0 < 0 {
		t.Fatal("all partitions have the same primary")
	}
	table := &messages.SetPartitionTable{ExpectedVersion: v.TableVersion(), Rebalance: &messages.RebalanceInfo{Trigger: "manual", TriggerNodeId: "test"}}
	for n, o := range owners {
		o = slices.Clone(o)
		switch n {
		case p0:
			o = primaryFirst(o, owners[p1][0])
		case p1:
			o = primaryFirst(o, owners[p0][0])
		}
		table.Partitions = append(table.Partitions, &messages.PartitionAssignment{Owners: o})
	}
	if _, err := nodes[0].propose(context.Background(), &messages.Command{Op: &messages.Command_SetPartitionTable{SetPartitionTable: table}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the new table on node-2", func() bool { return nodes[1].fsm.View().TableVersion() != v.TableVersion() })

	after := a.do("GET", "/partitions/stats", nil, nil)
	var s0, s1 PartitionStatsDoc
	stats.json(t, &s0)
	after.json(t, &s1)
	s0.TableVersion, s1.TableVersion = 0, 0
	if fmt.Sprint(s0) != fmt.Sprint(s1) {
		t.Fatalf("counts changed: %+v -> %+v", s0, s1)
	}
	r := a.do("GET", "/cluster", map[string]string{"If-None-Match": etag}, nil)
	if r.status != http.StatusOK || r.header.Get("ETag") == etag {
		t.Fatalf("after an equal-count reassignment: %d, ETag %s (was %s)", r.status, r.header.Get("ETag"), etag)
	}
	if r2 := a.do("GET", "/cluster", map[string]string{"If-None-Match": r.header.Get("ETag")}, nil); r2.status != http.StatusNotModified {
		t.Fatalf("unchanged since the new ETag: %d", r2.status)
	}
}

// PartitionStatsDoc is the part of /partitions/stats the ETag test compares.
type PartitionStatsDoc struct {
	Nodes        map[string]struct{ Primary, Replica, Total int } `json:"nodes"`
	MinPrimary   int                                              `json:"min_primary"`
	MaxPrimary   int                                              `json:"max_primary"`
	TableVersion uint64                                           `json:"table_version"`
}

func primaryFirst(owners []string, id string) []string {
	i := slices.Index(owners, id)
	if i < 0 {
		return owners
	}
	return append([]string{id}, append(owners[:i:i], owners[i+1:]...)...)
}

func TestHTTPAdminRoutes(t *testing.T) {
	leakCheck(t)
	nodes := tokenCluster(t, 3)
	leader := leaderOf(t, nodes)
	var followers []*ClusterKit
	for _, n := range nodes {
		if n != leader {
			followers = append(followers, n)
		}
	}
	// Leadership transfer from a follower, to the other follower.
	target := followers[1].opts.NodeID
	a := newAPI(t, followers[0])
	r := a.do("POST", "/leadership/transfer", jsonAuth, []byte(`{"target_id":"`+target+`"}`))
	var tr struct {
		Leader string `json:"leader"`
	}
	r.json(t, &tr)
	if r.status != 200 || tr.Leader != target {
		t.Fatalf("transfer: %d %s", r.status, r.body)
	}
	waitFor(t, 5*time.Second, "every node to follow "+target, func() bool {
		for _, n := range nodes {
			if _, id := n.raft.LeaderWithID(); string(id) != target {
				return false
			}
		}
		return true
	})
	// Without a target, on the leader itself.
	r = newAPI(t, followers[1]).do("POST", "/leadership/transfer", bearer, nil)
	if r.status != 200 || strings.Contains(string(r.body), target) {
		t.Fatalf("untargeted transfer: %d %s", r.status, r.body)
	}

	// Admin removal of node-3 through node-1, then node-2 leaves through
	// its own gateway and stops.
	a = newAPI(t, nodes[0])
	if r := a.do("DELETE", "/nodes/node-3", bearer, nil); r.status != 200 {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	waitFor(t, 5*time.Second, "node-3 gone", func() bool { _, ok := nodes[0].fsm.View().Member("node-3"); return !ok })
	if r := newAPI(t, nodes[1]).do("POST", "/leave", bearer, nil); r.status != 200 {
		t.Fatalf("leave: %d %s", r.status, r.body)
	}
	waitFor(t, 10*time.Second, "node-2 to stop after leaving", func() bool { return !nodes[1].running.Load() })
	waitFor(t, 10*time.Second, "node-1 alone", func() bool {
		v := nodes[0].fsm.View()
		return len(v.Members()) == 1 && fullyPlaced(v, 1)
	})
}

// sseEvent is one record of the event stream.
type sseEvent struct{ id, kind, data string }

// sseStream reads an event stream into a channel until the body ends.
func sseStream(t *testing.T, ctx context.Context, url string, hdr map[string]string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	ch := make(chan sseEvent, 1024)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.kind != "" {
					ch <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.data = line[6:]
			}
		}
	}()
	return ch, resp
}

func nextEvent(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("event stream ended")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

// The event stream, read by a real HTTP client across a rebalance, then
// resumed from a seq: no gap, no duplicate, the same events as a client that
// never disconnected.
func TestHTTPEventStreamResume(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 2, nil, nil)
	waitDelivered(t, nodes[1]) // its own join's events are history, not part of the stream below
	url := "http://" + nodes[1].advertise + "/events"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	full, _ := sseStream(t, ctx, url, nil)
	partCtx, partCancel := context.WithCancel(ctx)
	part, _ := sseStream(t, partCtx, url, nil)

	// A third node joins: NodeJoin, RebalanceStart, PartitionChange..., RebalanceComplete.
	third := startNode(t, clusterOptions(t, 3, nodes[0].advertise))
	nodes = append(nodes, third)
	waitConverged(t, nodes, 3)

	var want []sseEvent
	for {
		e := nextEvent(t, full)
		want = append(want, e)
		if e.kind == "rebalance_complete" {
			break
		}
	}
	if len(want) < 4 || want[0].kind != "node_join" || want[1].kind != "rebalance_start" || want[2].kind != "partition_change" {
		t.Fatalf("stream across a join: %v", kinds(want))
	}
	// The partial reader stops after three events and resumes from the last id.
	var got []sseEvent
	for range 3 {
		got = append(got, nextEvent(t, part))
	}
	partCancel()
	for range part {
	}
	rest, _ := sseStream(t, ctx, url, map[string]string{"Last-Event-ID": got[2].id})
	for len(got) < len(want) {
		got = append(got, nextEvent(t, rest))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d: resumed %+v, uninterrupted %+v", i, got[i], want[i])
		}
	}
	// ?since= and a kind filter: only the partition changes after the start.
	pc, _ := sseStream(t, ctx, url+"?kinds=partition_change&since="+want[1].id, nil)
	for _, w := range want[2 : len(want)-1] {
		if e := nextEvent(t, pc); e != w {
			t.Fatalf("filtered stream: %+v, want %+v", e, w)
		}
	}
	// The bootstrap node saw the whole history: it replays it from seq 0,
	// starting with its own NodeJoin.
	all, _ := sseStream(t, ctx, "http://"+nodes[0].advertise+"/events?since=0", nil)
	if e := nextEvent(t, all); e.kind != "node_join" || !strings.Contains(e.data, `"node-1"`) {
		t.Fatalf("first event of the history: %+v", e)
	}
	var pcMsg messages.PartitionChange
	if err := jsonUnmarshalProto(want[2].data, &pcMsg); err != nil || pcMsg.GetPartitionId() == "" {
		t.Fatalf("event data is not a PartitionChange: %v %s", err, want[2].data)
	}
	cancel()
}

func kinds(es []sseEvent) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.kind)
	}
	return out
}

// The Prometheus output parses with the Prometheus text parser and tells the
// truth about the cluster.
func TestHTTPMetricsPrometheus(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, nil, nil)
	leader := leaderOf(t, nodes)
	r := newAPI(t, leader).do("GET", "/metrics", nil, nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, r.body)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := fams[name]
		if !ok {
			t.Fatalf("no metric %s", name)
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.GetSummary() != nil:
				return float64(m.GetSummary().GetSampleCount())
			}
		}
		t.Fatalf("no %s with %v", name, labels)
		return 0
	}
	if v := value("clusterkit_members", map[string]string{"status": "active"}); v != 3 {
		t.Fatalf("members %v", v)
	}
	if v := value("clusterkit_is_leader", nil); v != 1 {
		t.Fatalf("is_leader %v", v)
	}
	if v := value("clusterkit_partitions_owned", map[string]string{"role": "primary"}); v < 20 || v > 22 {
		t.Fatalf("primaries %v of 64 on 3 nodes", v)
	}
	for _, name := range ownRaftMetrics { // the names reserved from raft's bridge are really ours
		if _, ok := fams[name]; !ok {
			t.Fatalf("ownRaftMetrics lists %s, which the node does not emit", name)
		}
	}
	if v := value("clusterkit_raft_term", nil); v < 1 {
		t.Fatalf("term %v", v)
	}
	if v := value("clusterkit_events_published_total", map[string]string{"kind": "node_join"}); v != 3 {
		t.Fatalf("node_join events %v", v)
	}
	if v := value("clusterkit_rebalances_total", nil); v < 1 || value("clusterkit_rebalance_duration_seconds", nil) < 1 {
		t.Fatalf("rebalances %v", v)
	}
	if value("clusterkit_health_probes_total", nil) < 0 || value("go_goroutines", nil) < 1 {
		t.Fatal("probe or runtime metrics")
	}
	// Raft's own metrics (process-wide): the leader has committed entries.
	if value("clusterkit_raft_commit_time_ms", nil) < 1 {
		t.Fatal("no raft commit time samples")
	}
	// Our own request is counted by route and status on the next scrape.
	r = newAPI(t, leader).do("GET", "/metrics", nil, nil)
	fams, err = parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if v := value("clusterkit_http_requests_total", map[string]string{"route": "/metrics", "code": "200"}); v < 1 {
		t.Fatalf("http requests %v", v)
	}
}

func jsonUnmarshalProto(data string, m proto.Message) error {
	return protojson.Unmarshal([]byte(data), m)
}

// Stop ends open event streams instead of waiting for their clients.
func TestStopEndsEventStreams(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	ck, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stream, _ := sseStream(t, context.Background(), "http://"+ck.advertise+"/events", nil)
	done := make(chan error, 1)
	go func() { done <- ck.Stop(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waited for an open event stream")
	}
	for range stream { // the stream ends: the channel closes
	}
}

// POST /join admits a running node that is not a member yet (here one whose
// own join address is dead): GET /health says "starting" meanwhile, and its
// Start completes once the cluster registered it.
func TestHTTPJoinAdmitsAStartingNode(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 2, nil, nil)
	o := clusterOptions(t, 3, freeAddr(t)) // nobody listens there
	o.HTTPAddr = freeAddr(t)
	ck, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- ck.Start(context.Background()) }()
	t.Cleanup(func() { _ = ck.Stop(context.Background()) })

	self := &api{t: t, base: "http://" + o.HTTPAddr, c: &http.Client{Timeout: 2 * time.Second}}
	var health struct {
		Status string `json:"status"`
	}
	waitFor(t, 10*time.Second, "node-3 to serve /health", func() bool {
		req, _ := http.NewRequest("GET", self.base+"/health", nil)
		resp, err := self.c.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&health) == nil
	})
	if health.Status != "starting" {
		t.Fatalf("/health of a node still joining: %q", health.Status)
	}
	ping := self.do("POST", "/internal/v1/ping", map[string]string{"Content-Type": "application/json"}, []byte("{}"))
	var who struct {
		NodeID string `json:"node_id"`
		Nonce  string `json:"nonce"`
	}
	ping.json(t, &who)
	if who.NodeID != "node-3" || who.Nonce == "" {
		t.Fatalf("ping: %s", ping.body)
	}
	join := fmt.Sprintf(`{"member":{"id":"node-3","address":%q,"nonce":%q}}`, o.HTTPAddr, who.Nonce)
	r := newAPI(t, nodes[1]).do("POST", "/join", map[string]string{"Content-Type": "application/json"}, []byte(join))
	var resp struct {
		Accepted bool   `json:"accepted"`
		Index    string `json:"index"`
	}
	r.json(t, &resp)
	if r.status != 200 || !resp.Accepted {
		t.Fatalf("join: %d %s", r.status, r.body)
	}
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("Start after the HTTP join: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Start did not complete after the HTTP join")
	}
	waitConverged(t, append(nodes, ck), 3)
}
