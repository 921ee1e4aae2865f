package clusterkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/eventlog"
	"github.com/clusterkit/clusterkit/messages"
)

const testToken = "s3cret-token"

// api is a small HTTP client for one node's gateway.
type api struct {
	t    *testing.T
	base string
	c    *http.Client
}

// newClient is the typed client of ck's gateway, with the test token.
func newClient(t *testing.T, ck *ClusterKit) *client.Client {
	t.Helper()
	c, err := client.New("http://"+ck.advertise, client.WithToken(testToken), client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
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
		// The route tests send many unauthenticated requests on purpose:
		// the failed-login limit (tested on its own) must not turn them
		// into 429s.
		o.HTTPLimits.AuthFailureBurst = 10000
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
	follower := othersThan(nodes, leader)[0]
	a := newAPI(t, follower)

	c := newClient(t, follower)
	ctx := t.Context()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ok := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"GET /health", func(t *testing.T) {
			h, err := c.Health(ctx)
			must(t, err)
			if h.Status != "ok" || h.NodeID != follower.opts.NodeID || h.ClusterID != follower.ClusterID() {
				t.Fatalf("%+v", h)
			}
		}},
		{"HEAD /health", func(t *testing.T) {
			if r := a.do("HEAD", "/health", nil, nil); r.status != 200 || len(r.body) != 0 {
				t.Fatalf("%d %q", r.status, r.body)
			}
		}},
		{"GET /ready", func(t *testing.T) {
			r, err := c.Ready(ctx)
			must(t, err)
			if !r.Ready || r.Leader != leader.opts.NodeID {
				t.Fatalf("%+v", r)
			}
		}},
		{"GET /health/detailed", func(t *testing.T) {
			h, err := c.DetailedHealth(ctx)
			must(t, err)
			if !h.Healthy || h.Term == 0 || h.Voters != 3 || h.Leader != leader.opts.NodeID || h.Incarnation == 0 {
				t.Fatalf("%+v", h)
			}
		}},
		{"GET /cluster", func(t *testing.T) {
			doc, err := c.Cluster(ctx)
			must(t, err)
			n, h := doc.Cluster.Nodes, doc.HashConfig
			if len(n) != 3 || n[1].Services["kv"] != ":9082" || n[1].IP != nodes[1].advertise || n[1].Incarnation == 0 || n[1].JoinedAt.IsZero() {
				t.Fatalf("/cluster nodes: %+v", n)
			}
			if h.Algorithm != "md5" || h.Encoding != "big_endian_uint32" || h.Modulo != 64 || h.Format != "partition-%d" || h.PartitionCount != 64 || *doc.Cluster.HashConfig != *h {
				t.Fatalf("/cluster hash_config: %+v", h)
			}
		}},
		{"GET /nodes", func(t *testing.T) {
			p, err := c.Nodes(ctx, client.Page{})
			must(t, err)
			if p.Total != 3 || len(p.Nodes) != 3 || p.Nodes[0].ID != "node-1" {
				t.Fatalf("%+v", p)
			}
		}},
		{"GET /nodes?offset=1&limit=1", func(t *testing.T) {
			p, err := c.Nodes(ctx, client.Page{Offset: 1, Limit: 1})
			must(t, err)
			if p.Total != 3 || len(p.Nodes) != 1 || p.Nodes[0].ID != "node-2" {
				t.Fatalf("%+v", p)
			}
		}},
		{"GET /nodes?offset=10", func(t *testing.T) {
			p, err := c.Nodes(ctx, client.Page{Offset: 10})
			must(t, err)
			if p.Nodes == nil || len(p.Nodes) != 0 {
				t.Fatalf("%+v", p)
			}
		}},
		{"GET /nodes/node-3", func(t *testing.T) {
			n, err := c.Node(ctx, "node-3")
			must(t, err)
			if n.ID != "node-3" || n.Port == 0 || n.Services == nil {
				t.Fatalf("%+v", n)
			}
		}},
		{"GET /partitions?limit=10&offset=60", func(t *testing.T) {
			p, err := c.Partitions(ctx, client.Page{Offset: 60, Limit: 10})
			must(t, err)
			if p.Total != 64 || len(p.Partitions) != 4 || p.Partitions[0].ID != "partition-60" {
				t.Fatalf("%+v", p)
			}
		}},
		{"GET /partitions/stats", func(t *testing.T) {
			s, err := c.PartitionStats(ctx)
			must(t, err)
			if s.NodeCount != 3 || len(s.Nodes) != 3 || s.Nodes["node-1"].Total != 64 || s.MaxPrimary-s.MinPrimary > 1 {
				t.Fatalf("%+v", s)
			}
		}},
		{"GET /partitions/partition-48", func(t *testing.T) {
			d, err := c.Partition(ctx, 48)
			must(t, err)
			if d.Number != 48 || d.Partition != "partition-48" || d.Primary == nil {
				t.Fatalf("%+v", d)
			}
		}},
		{"GET /partitions/7", func(t *testing.T) {
			var d client.PartitionDetail
			if r := a.do("GET", "/partitions/7", nil, nil); r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			} else {
				r.json(t, &d)
			}
			if d.Partition != "partition-7" {
				t.Fatalf("%+v", d)
			}
		}},
		{"GET /locate?key=user:123", func(t *testing.T) {
			d, err := c.Locate(ctx, "user:123")
			must(t, err)
			p, _ := follower.GetPartition("user:123")
			if d.Partition != "partition-48" || d.Key != "user:123" || d.Primary.ID != p.PrimaryNode || len(d.Replicas) != 2 {
				t.Fatalf("%+v", d)
			}
		}},
		{"GET /consensus/leader", func(t *testing.T) {
			l, err := c.ConsensusLeader(ctx)
			must(t, err)
			if l.LeaderID != leader.opts.NodeID || l.IsLeader || l.NodeID != follower.opts.NodeID {
				t.Fatalf("%+v", l)
			}
		}},
		{"GET /consensus/stats", func(t *testing.T) {
			s, err := c.ConsensusStats(ctx)
			must(t, err)
			if s.State != "Follower" || s.Term == 0 || s.CommitIndex == 0 || len(s.Voters) != 3 || s.NumPeers != 2 {
				t.Fatalf("%+v", s)
			}
		}},
		{"GET /metrics?format=json", func(t *testing.T) {
			m, err := c.Metrics(ctx)
			must(t, err)
			if m.NodeCount != 3 || m.PartitionCount != 64 {
				t.Fatalf("%+v", m)
			}
		}},
		{"GET /metrics", func(t *testing.T) {
			body, ct, err := c.PrometheusMetrics(ctx, false)
			must(t, err)
			if !strings.HasPrefix(ct, "text/plain") || !bytes.Contains(body, []byte("clusterkit_members")) {
				t.Fatalf("%s", ct)
			}
			if _, ct, err := c.PrometheusMetrics(ctx, true); err != nil || !strings.HasPrefix(ct, "application/openmetrics-text") {
				t.Fatalf("OpenMetrics: %s %v", ct, err)
			}
		}},
	}
	for _, tc := range ok {
		t.Run("ok "+tc.name, tc.run)
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
			var e client.Error
			if r.status != tc.status || json.Unmarshal(r.body, &e) != nil || e.Code != tc.code || e.Message == "" {
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
	done, err := c.Rebalance(ctx)
	if err != nil || !done.OK {
		t.Fatalf("rebalance after the bad input: %+v %v", done, err)
	}
	// The follower answers once it applied the change itself: a client reads
	// its own write from the node it asked.
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
	var s0, s1 client.PartitionStats
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
	ctx := t.Context()
	tr, err := newClient(t, followers[0]).TransferLeadership(ctx, target)
	if err != nil || tr.Leader != target {
		t.Fatalf("transfer: %+v %v", tr, err)
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
	if tr, err := newClient(t, followers[1]).TransferLeadership(ctx, ""); err != nil || tr.Leader == target || tr.Leader == "" {
		t.Fatalf("untargeted transfer: %+v %v", tr, err)
	}

	// Admin removal of node-3 through node-1, then node-2 leaves through
	// its own gateway and stops.
	if r, err := newClient(t, nodes[0]).RemoveNode(ctx, "node-3"); err != nil || !r.OK || r.NodeID != "node-3" {
		t.Fatalf("remove: %+v %v", r, err)
	}
	waitFor(t, 5*time.Second, "node-3 gone", func() bool { _, ok := nodes[0].fsm.View().Member("node-3"); return !ok })
	if r, err := newClient(t, nodes[1]).Leave(ctx); err != nil || !r.OK {
		t.Fatalf("leave: %+v %v", r, err)
	}
	waitFor(t, 10*time.Second, "node-2 to stop after leaving", func() bool { return !nodes[1].running.Load() })
	waitFor(t, 10*time.Second, "node-1 alone", func() bool {
		v := nodes[0].fsm.View()
		return len(v.Members()) == 1 && fullyPlaced(v, 1)
	})
}

// watchEvents runs c.Watch in the background and hands its events over a
// channel, which closes when the watch ends (its error, if any, is sent on
// errs).
func watchEvents(ctx context.Context, c *client.Client, opts client.WatchOptions) (<-chan client.Event, <-chan error) {
	ch, errs := make(chan client.Event, 1024), make(chan error, 1)
	go func() {
		defer close(ch)
		for ev, err := range c.Watch(ctx, opts) {
			if err != nil {
				errs <- err
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, errs
}

func nextEvent(t *testing.T, ch <-chan client.Event) client.Event {
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
	return client.Event{}
}

func eventJSON(t *testing.T, e client.Event) string {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The event stream, read with the typed client across a rebalance, then
// resumed from a seq: no gap, no duplicate, the same events as a client that
// never disconnected. The client's reconnection after a dropped connection
// is tested in httpgw/client.
func TestHTTPEventStreamResume(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 2, nil, nil)
	waitDelivered(t, nodes[1]) // its own join's events are history, not part of the stream below
	since := eventlog.FormatSeq(nodes[1].eventLog.Load().Last())
	c := newClient(t, nodes[1])
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	full, _ := watchEvents(ctx, c, client.WatchOptions{Since: since})
	partCtx, partCancel := context.WithCancel(ctx)
	part, _ := watchEvents(partCtx, c, client.WatchOptions{Since: since})

	// A third node joins: NodeJoin, RebalanceStart, PartitionChange..., RebalanceComplete.
	third := startNode(t, clusterOptions(t, 3, nodes[0].advertise))
	nodes = append(nodes, third)
	waitConverged(t, nodes, 3)

	var want []client.Event
	for range 1000 {
		e := nextEvent(t, full)
		want = append(want, e)
		if e.Kind == client.KindRebalanceComplete {
			break
		}
	}
	if len(want) < 4 || want[0].Kind != "node_join" || want[1].Kind != "rebalance_start" || want[2].Kind != "partition_change" {
		t.Fatalf("stream across a join: %v", kinds(want))
	}
	// The event's node has the one node shape, as GET /nodes shows it.
	joined := want[0].NodeJoin.Node
	if n, err := c.Node(ctx, "node-3"); err != nil || joined.ID != "node-3" || joined.IP != n.IP || joined.Port != n.Port ||
		joined.Incarnation != n.Incarnation || !joined.JoinedAt.Equal(n.JoinedAt) || joined.Services == nil {
		t.Fatalf("the node of a node_join %+v, GET /nodes/node-3 %+v (%v)", joined, n, err)
	}
	if pc := want[2].PartitionChange; pc == nil || pc.PartitionID == "" || pc.CopyToNode == nil || pc.CopyToNode.Port == 0 {
		t.Fatalf("partition_change: %s", eventJSON(t, want[2]))
	}
	// The partial reader stops after three events and resumes from the last seq.
	var got []client.Event
	for range 3 {
		got = append(got, nextEvent(t, part))
	}
	partCancel()
	for range part {
	}
	rest, _ := watchEvents(ctx, c, client.WatchOptions{Since: got[2].Seq})
	for len(got) < len(want) {
		got = append(got, nextEvent(t, rest))
	}
	for i := range want {
		if eventJSON(t, got[i]) != eventJSON(t, want[i]) {
			t.Fatalf("event %d: resumed %s, uninterrupted %s", i, eventJSON(t, got[i]), eventJSON(t, want[i]))
		}
	}
	// A kind filter: only the partition changes after the start.
	pc, _ := watchEvents(ctx, c, client.WatchOptions{Since: want[1].Seq, Kinds: []string{client.KindPartitionChange}})
	for _, w := range want[2 : len(want)-1] {
		if e := nextEvent(t, pc); eventJSON(t, e) != eventJSON(t, w) {
			t.Fatalf("filtered stream: %s, want %s", eventJSON(t, e), eventJSON(t, w))
		}
	}
	// The bootstrap node saw the whole history: it replays it from seq 0,
	// starting with its own NodeJoin.
	all, _ := watchEvents(ctx, newClient(t, nodes[0]), client.WatchOptions{Since: "0"})
	if e := nextEvent(t, all); e.Kind != "node_join" || e.NodeJoin.Node.ID != "node-1" || !e.NodeJoin.IsBootstrap {
		t.Fatalf("first event of the history: %s", eventJSON(t, e))
	}
	// A seq the node no longer holds is a typed 410.
	_, errs := watchEvents(ctx, c, client.WatchOptions{Since: "1.0"})
	var gone *client.Error
	if err := <-errs; !errors.As(err, &gone) || gone.Status != 410 || gone.Code != "events_gone" {
		t.Fatalf("resume from a seq the node no longer holds: %v", err)
	}
	// SinceOldest: where "1.0" is gone, the stream starts with the oldest
	// event node-2 holds, the first of its own history.
	floor := nodes[1].eventLog.Load().Floor()
	oldest, _ := watchEvents(ctx, c, client.WatchOptions{Since: client.SinceOldest})
	first := nextEvent(t, oldest)
	if first.Index <= floor.Index || first.Index > want[0].Index {
		t.Fatalf("since=oldest started with %s, want the first event after the floor %s", eventJSON(t, first), eventlog.FormatSeq(floor))
	}
	cancel()
}

func kinds(es []client.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Kind)
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
	if value("clusterkit_raft_commit_time_seconds", nil) < 1 {
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
	// A raw request: the stream must be open before Stop (the typed
	// client's Watch would also reconnect).
	resp, err := http.Get("http://" + ck.advertise + "/events")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /events: %v %v", resp, err)
	}
	defer resp.Body.Close()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, _ = io.Copy(io.Discard, resp.Body)
	}()
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
	select {
	case <-ended: // the stream ends: the body reaches EOF
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream outlived Stop")
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

	self := &api{t: t, base: "http://" + o.HTTPAddr, c: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	selfClient, err := client.New(self.base, client.WithHTTPClient(self.c))
	if err != nil {
		t.Fatal(err)
	}
	var health *client.Health
	waitFor(t, 10*time.Second, "node-3 to serve /health", func() bool {
		health, err = selfClient.Health(t.Context())
		return err == nil
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
	nonce, err := strconv.ParseUint(who.Nonce, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New("http://" + nodes[1].advertise) // the cluster has no token
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Join(t.Context(), &client.JoinRequest{Member: &client.JoinMember{ID: "node-3", Address: o.HTTPAddr, Nonce: nonce}})
	if err != nil || !resp.Accepted || resp.Index == 0 {
		t.Fatalf("join: %+v %v", resp, err)
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

// The client's Router maps keys locally exactly as the nodes' GET /locate
// does, for both key hashes, and follows a rebalance.
func TestHTTPRouterAgreesWithLocate(t *testing.T) {
	leakCheck(t)
	for _, kh := range []KeyHash{KeyHashMD5, KeyHashXXH64} {
		t.Run(kh.String(), func(t *testing.T) {
			nodes := startCluster(t, 3, func(i int, o *Options) {
				o.KeyHash = kh
				o.PartitionCount = 61 // not a power of two: a wrong modulo shows
				o.AuthToken = testToken
				o.Services = map[string]string{"kv": fmt.Sprintf("127.0.0.1:%d", 9080+i)}
			}, nil)
			c := newClient(t, nodes[2])
			ctx := t.Context()
			r, err := client.NewRouter(ctx, c, client.WithRefreshInterval(20*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if h := r.Cluster().HashConfig; h.Algorithm != kh.String() || h.Modulo != 61 {
				t.Fatalf("hash_config %+v", h)
			}
			check := func() {
				t.Helper()
				for i := range 300 {
					key := fmt.Sprintf("key-%d-%x", i, i*i)
					var got, want *client.PartitionDetail
					for try := range 2 {
						if try > 0 {
							// The cluster changed between the two answers
							// (a voter promotion, say): catch up, ask again.
							if err := r.Refresh(ctx); err != nil {
								t.Fatal(err)
							}
						}
						if want, err = c.Locate(ctx, key); err != nil {
							t.Fatal(err)
						}
						if got, err = r.Locate(key); err != nil {
							t.Fatal(err)
						}
						if eventJSONOf(t, got) == eventJSONOf(t, want) {
							break
						}
					}
					if eventJSONOf(t, got) != eventJSONOf(t, want) {
						t.Fatalf("%q: router %s, GET /locate %s", key, eventJSONOf(t, got), eventJSONOf(t, want))
					}
				}
			}
			check()
			// After a new table the router catches up (by polling with the ETag).
			res, err := c.Rebalance(ctx)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the router at the rebalanced version", func() bool {
				return r.Cluster().Cluster.Version >= res.Version
			})
			check()
		})
	}
}

func eventJSONOf(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
