package clusterkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// customDataEvents collects the CustomDataChange events a node delivers.
type customDataEvents struct {
	mu     sync.Mutex
	events []*CustomDataChangeEvent
}

func (c *customDataEvents) add(e *CustomDataChangeEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *customDataEvents) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.events {
		out = append(out, fmt.Sprintf("%s=%q@%d del=%v", e.Key, e.Value, e.Version, e.Deleted))
	}
	return out
}

func TestCustomDataAcrossNodes(t *testing.T) {
	leakCheck(t)
	events := make([]*customDataEvents, 3)
	nodes := startCluster(t, 3, func(i int, o *Options) {
		o.AuthToken = testToken
		// A 1 MiB entry reaches two followers under -race on a shared
		// machine: the default Raft timings, so the leader's lease does
		// not run out while it replicates (100 ms did, in CI).
		o.Raft = DefaultRaftTimings()
	}, func(i int, ck *ClusterKit) {
		events[i-1] = &customDataEvents{}
		ck.OnCustomDataChange(events[i-1].add)
	})
	leader := leaderOf(t, nodes)
	var f1, f2 *ClusterKit
	for _, n := range nodes {
		if n != leader {
			if f1 == nil {
				f1 = n
			} else {
				f2 = n
			}
		}
	}

	// A write on a follower is forwarded (with the token) and readable on
	// that follower as soon as it returns.
	if _, err := f1.SetCustomData(context.Background(), "flags/dark-mode", []byte("on")); err != nil {
		t.Fatal(err)
	}
	v, ver1, err := f1.GetCustomData("flags/dark-mode")
	if err != nil || string(v) != "on" || ver1 == 0 {
		t.Fatalf("read own write: %q %d %v", v, ver1, err)
	}
	// Another follower sees it with a linearizable read at once.
	v, ver, err := f2.GetCustomDataLinearizable(context.Background(), "flags/dark-mode")
	if err != nil || string(v) != "on" || ver != ver1 {
		t.Fatalf("linearizable read elsewhere: %q %d %v", v, ver, err)
	}

	// Compare-and-set: the right version wins, a stale one changes nothing.
	ver2, err := f2.CompareAndSetCustomData(context.Background(), "flags/dark-mode", ver1, []byte("off"))
	if err != nil || ver2 <= ver1 {
		t.Fatalf("CAS at the current version: %d %v", ver2, err)
	}
	if _, err := f1.CompareAndSetCustomData(context.Background(), "flags/dark-mode", ver1, []byte("stale")); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("CAS at a stale version: %v", err)
	}
	if _, err := leader.CompareAndSetCustomData(context.Background(), "counter", 0, []byte("1")); err != nil {
		t.Fatalf("CAS create: %v", err)
	}
	if _, err := leader.CompareAndSetCustomData(context.Background(), "counter", 0, []byte("1")); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("CAS create of an existing key: %v", err)
	}

	// Bad input: a clear error and nothing changes.
	before := leader.ListCustomDataKeys()
	for _, tc := range []struct {
		key   string
		value []byte
		want  error
	}{
		{"", []byte("x"), ErrInvalidKey},
		{strings.Repeat("k", 1025), []byte("x"), ErrInvalidKey},
		{"bad\xff", []byte("x"), ErrInvalidKey},
		{"big", make([]byte, MaxCustomDataValue+1), ErrValueTooLarge},
	} {
		if _, err := f1.SetCustomData(context.Background(), tc.key, tc.value); !errors.Is(err, tc.want) {
			t.Fatalf("Set(%.20q, %d bytes): %v, want %v", tc.key, len(tc.value), err, tc.want)
		}
	}
	if _, err := f1.DeleteCustomData(context.Background(), "nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("delete of a missing key: %v", err)
	}
	if _, _, err := f1.GetCustomData("nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("get of a missing key: %v", err)
	}
	if after := leader.ListCustomDataKeys(); !slices.Equal(before, after) {
		t.Fatalf("keys changed by bad input: %v -> %v", before, after)
	}

	// The largest value goes through a follower's forwarding.
	big := bytes.Repeat([]byte{0xab}, MaxCustomDataValue)
	if _, err := f2.SetCustomData(context.Background(), "big", big); err != nil {
		t.Fatalf("1 MiB value: %v", err)
	}
	if err := f1.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _, err := f1.GetCustomData("big"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("1 MiB value on another node: %d bytes, %v", len(got), err)
	}
	if _, err := leader.DeleteCustomData(context.Background(), "big"); err != nil {
		t.Fatal(err)
	}
	if keys := f2.ListCustomDataKeys(); !slices.Equal(keys, []string{"counter", "flags/dark-mode"}) {
		// f2 may lag: make it current first.
		if err := f2.Barrier(context.Background()); err != nil {
			t.Fatal(err)
		}
		if keys = f2.ListCustomDataKeys(); !slices.Equal(keys, []string{"counter", "flags/dark-mode"}) {
			t.Fatalf("sorted keys: %v", keys)
		}
	}

	// Every node delivered the same CustomDataChange events, one per change.
	want := 5 // set, CAS, CAS create, set big, delete big
	waitFor(t, 5*time.Second, "the custom-data events on every node", func() bool {
		for _, e := range events {
			if len(e.snapshot()) != want {
				return false
			}
		}
		return true
	})
	first := events[0].snapshot()
	for i, e := range events[1:] {
		if got := e.snapshot(); !slices.Equal(got, first) {
			t.Fatalf("node %d events %v, node 1 %v", i+2, got, first)
		}
	}
}

// The Context variants give up when ctx ends, even with no quorum to answer.
func TestCustomDataContextCancellation(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, nil, nil)
	if _, err := nodes[0].SetCustomData(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := nodes[0].SetCustomData(ctx, "k", []byte("w")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	// Stop two of three: no quorum. A bounded write returns at its deadline.
	for _, n := range nodes[1:] {
		if err := n.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := nodes[0].SetCustomData(ctx, "k", []byte("w"))
	if err == nil {
		t.Fatal("a write without quorum succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a write with a 300 ms deadline took %s (%v)", took, err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, _, err := nodes[0].GetCustomDataLinearizable(ctx2, "k"); err == nil {
		t.Fatal("a linearizable read without quorum succeeded")
	}
	// A local read still answers.
	if v, _, err := nodes[0].GetCustomData("k"); err != nil || string(v) != "v" {
		t.Fatalf("local read: %q %v", v, err)
	}
}

func TestCustomDataHTTP(t *testing.T) {
	leakCheck(t)
	nodes := tokenCluster(t, 3)
	a := newAPI(t, nodes[1])
	octet := map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/octet-stream"}

	r := a.do("PUT", "/custom-data/config/limits", octet, []byte(`{"rps":100}`))
	var w struct {
		Key     string `json:"key"`
		Version uint64 `json:"version"`
	}
	r.json(t, &w)
	if r.status != 200 || w.Key != "config/limits" || w.Version == 0 || r.header.Get("ETag") != fmt.Sprintf(`"%d"`, w.Version) {
		t.Fatalf("PUT: %d %s %v", r.status, r.body, r.header)
	}
	r = newAPI(t, nodes[2]).do("GET", "/custom-data/config/limits?consistent=true", nil, nil)
	if r.status != 200 || string(r.body) != `{"rps":100}` || r.header.Get("ETag") != fmt.Sprintf(`"%d"`, w.Version) || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET elsewhere: %d %q %v", r.status, r.body, r.header)
	}
	etag := r.header.Get("ETag")
	if r := a.do("GET", "/custom-data/config/limits", map[string]string{"If-None-Match": etag}, nil); r.status != 304 {
		t.Fatalf("GET with the current ETag: %d", r.status)
	}
	// Compare-and-set over HTTP.
	hdr := map[string]string{"Authorization": "Bearer " + testToken, "If-Match": etag}
	if r := a.do("PUT", "/custom-data/config/limits", hdr, []byte("v2")); r.status != 200 {
		t.Fatalf("PUT If-Match current: %d %s", r.status, r.body)
	}
	if r := a.do("PUT", "/custom-data/config/limits", hdr, []byte("v3")); r.status != 412 || !strings.Contains(string(r.body), "version_mismatch") {
		t.Fatalf("PUT If-Match stale: %d %s", r.status, r.body)
	}
	create := map[string]string{"Authorization": "Bearer " + testToken, "If-None-Match": "*"}
	if r := a.do("PUT", "/custom-data/new", create, []byte("1")); r.status != 200 {
		t.Fatalf("create-only PUT: %d %s", r.status, r.body)
	}
	if r := a.do("PUT", "/custom-data/new", create, []byte("2")); r.status != 412 {
		t.Fatalf("create-only PUT of an existing key: %d %s", r.status, r.body)
	}
	before := clusterState(nodes) + fmt.Sprint(nodes[0].ListCustomDataKeys())
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		body         []byte
		status       int
		code         string
	}{
		{"PUT", "/custom-data/x", nil, []byte("v"), 401, "unauthorized"},
		{"DELETE", "/custom-data/new", nil, nil, 401, "unauthorized"},
		{"PUT", "/custom-data/x", octet, make([]byte, MaxCustomDataValue+1), 413, "body_too_large"},
		{"PUT", "/custom-data/" + strings.Repeat("k", 1025), octet, []byte("v"), 400, "invalid_key"},
		{"PUT", "/custom-data/", octet, []byte("v"), 400, "invalid_key"},
		{"PUT", "/custom-data/x", map[string]string{"Authorization": "Bearer " + testToken, "If-Match": "abc"}, []byte("v"), 400, "bad_precondition"},
		{"PUT", "/custom-data/x", map[string]string{"Authorization": "Bearer " + testToken, "If-None-Match": `"3"`}, []byte("v"), 400, "bad_precondition"},
		{"GET", "/custom-data/nope", nil, nil, 404, "key_not_found"},
		{"GET", "/custom-data/nope?consistent=true", nil, nil, 404, "key_not_found"},
		{"GET", "/custom-data/x?consistent=maybe", nil, nil, 400, "bad_request"},
		{"GET", "/custom-data/", nil, nil, 400, "invalid_key"},
		{"GET", "/custom-data?limit=0", nil, nil, 400, "bad_pagination"},
		{"DELETE", "/custom-data/nope", bearer, nil, 404, "key_not_found"},
		{"POST", "/custom-data/x", bearer, nil, 405, "method_not_allowed"},
	} {
		r := a.do(tc.method, tc.path, tc.hdr, tc.body)
		if r.status != tc.status || !strings.Contains(string(r.body), `"code": "`+tc.code+`"`) {
			t.Errorf("%s %.40s: %d %.200s, want %d %s", tc.method, tc.path, r.status, r.body, tc.status, tc.code)
		}
	}
	if after := clusterState(nodes) + fmt.Sprint(nodes[0].ListCustomDataKeys()); after != before {
		t.Fatalf("bad custom-data requests changed the cluster: %s -> %s", before, after)
	}
	r = a.do("GET", "/custom-data", nil, nil)
	var keys struct {
		Keys  []string `json:"keys"`
		Total int      `json:"total"`
	}
	r.json(t, &keys)
	if r.status != 200 || !slices.Equal(keys.Keys, []string{"config/limits", "new"}) {
		t.Fatalf("GET /custom-data: %d %s", r.status, r.body)
	}
	if r := a.do("DELETE", "/custom-data/new", bearer, nil); r.status != 200 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if r := a.do("GET", "/custom-data/new", nil, nil); r.status != 404 {
		t.Fatalf("GET after DELETE on the same node: %d", r.status)
	}
}
