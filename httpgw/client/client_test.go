package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/keyhash"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T, f *fakeGateway) *client.Client {
	t.Helper()
	c, err := client.New(f.srv.URL, client.WithToken("t"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRejectsBadInput(t *testing.T) {
	for _, u := range []string{"ftp://x", "http://", "http://h/?q=1", "http://h/#f", "http://[::1"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := client.New("h:1", client.WithToken("a\nb")); err == nil {
		t.Error("a token with a line break was accepted")
	}
	if _, err := client.New("h:1", client.WithHTTPClient(nil)); err == nil {
		t.Error("WithHTTPClient(nil) was accepted")
	}
	c, err := client.New("127.0.0.1:1")
	if err != nil || c.BaseURL() != "http://127.0.0.1:1" {
		t.Fatalf("bare host:port: %v %v", c, err)
	}
}

func TestErrorIsTyped(t *testing.T) {
	f := newFakeGateway()
	defer f.Close()
	_, err := newClient(t, f).Node(context.Background(), "nope")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "unknown_node" || e.Message == "" {
		t.Fatalf("err = %#v", err)
	}
	// A body that is not the gateway's error body still gives a typed error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "proxy says no", http.StatusBadGateway)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL)
	_, err = c.ConsensusStats(context.Background())
	if !errors.As(err, &e) || e.Status != 502 || e.Code != "" || e.Message != "proxy says no" {
		t.Fatalf("err = %#v", err)
	}
}

func TestClusterReusesETag(t *testing.T) {
	f := newFakeGateway()
	defer f.Close()
	c := newClient(t, f)
	ctx := context.Background()
	a, err := c.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Cluster(ctx)
	if err != nil || b != a || f.notModified.Load() != 1 {
		t.Fatalf("second call: %p %p %v, 304s %d", a, b, err, f.notModified.Load())
	}
	f.setVersion(15)
	d, err := c.Cluster(ctx)
	if err != nil || d == a || d.Cluster.Version != 15 {
		t.Fatalf("after a change: %+v %v", d, err)
	}
}

// The client's key hash agrees with the nodes' (internal/keyhash) for both
// algorithms, over many keys and partition counts.
func TestHashConfigAgreesWithNodes(t *testing.T) {
	for _, algo := range []keyhash.Algorithm{keyhash.MD5, keyhash.XXH64} {
		enc := client.EncodingBigEndianUint32
		if algo == keyhash.XXH64 {
			enc = client.EncodingUint64
		}
		for _, n := range []uint32{1, 7, 64, 271, 1 << 16} {
			h := &client.HashConfig{Algorithm: algo.String(), Encoding: enc, Modulo: int(n), Format: "partition-%d"}
			for i := range 2000 {
				key := fmt.Sprintf("user:%d", i*7919)
				got, err := h.Partition(key)
				if err != nil || uint32(got) != keyhash.Partition(algo, key, n) {
					t.Fatalf("%s/%d %q: client %d %v, node %d", algo, n, key, got, err, keyhash.Partition(algo, key, n))
				}
				if h.PartitionID(got) != keyhash.ID(uint32(got)) {
					t.Fatalf("id %s", h.PartitionID(got))
				}
			}
		}
	}
	for _, h := range []*client.HashConfig{nil, {Algorithm: "sha1", Modulo: 4}, {Algorithm: "md5", Encoding: "uint64", Modulo: 4}, {Algorithm: "md5"}} {
		if _, err := h.Partition("k"); err == nil {
			t.Errorf("%+v accepted", h)
		}
	}
}

// A stream that drops after every two events is resumed from the last
// delivered seq; a reconnection that replays old events delivers none twice.
func TestWatchResumesWithoutDuplicates(t *testing.T) {
	f := newFakeGateway()
	f.dropAfter, f.replayOnce = 2, true
	defer f.Close()
	c := newClient(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for ev, err := range c.Watch(ctx, client.WatchOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Seq)
		if len(got) == len(f.events) {
			break
		}
	}
	for i, s := range got {
		if s != f.events[i].Seq {
			t.Fatalf("delivered %v", got)
		}
	}
	if f.conns.Load() < 4 {
		t.Fatalf("only %d connections: the drops were not exercised", f.conns.Load())
	}
}

func TestWatchStopsOnGoneAndBadSince(t *testing.T) {
	f := newFakeGateway()
	defer f.Close()
	c := newClient(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, err := range c.Watch(ctx, client.WatchOptions{Since: "1.0"}) {
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 410 || e.Code != "events_gone" {
			t.Fatalf("err = %v", err)
		}
	}
	n := 0
	for _, err := range c.Watch(ctx, client.WatchOptions{Since: "x.1"}) {
		if err == nil {
			t.Fatal("a malformed Since was accepted")
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d errors", n)
	}
}

// A node that keeps failing is retried a bounded number of times.
func TestWatchBoundedRetries(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	for _, err := range c.Watch(ctx, client.WatchOptions{MaxRetries: 3, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}) {
		last = err
	}
	if last == nil || ctx.Err() != nil || hits != 4 {
		t.Fatalf("last error %v after %d requests", last, hits)
	}
}

// Cancelling the context ends the sequence with the context's error.
func TestWatchEndsWithContext(t *testing.T) {
	f := newFakeGateway()
	defer f.Close()
	c := newClient(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var last error
	for _, err := range c.Watch(ctx, client.WatchOptions{}) {
		if err != nil {
			last = err
			break
		}
		if n++; n == 3 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("last = %v", last)
	}
}

func TestRouterFollowsTheCluster(t *testing.T) {
	f := newFakeGateway()
	defer f.Close()
	c := newClient(t, f)
	r, err := client.NewRouter(context.Background(), c, client.WithRefreshInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := r.Locate("user:123")
	if err != nil || d.Primary == nil || len(d.Replicas) != 1 || d.Partition != "partition-"+fmt.Sprint(d.Number) {
		t.Fatalf("%+v %v", d, err)
	}
	f.setVersion(99)
	waitUntil(t, 5*time.Second, "the router to pick up the new version", func() bool { return r.Cluster().Cluster.Version == 99 })
	r.Close()
	r.Close() // idempotent
	if _, err := r.Locate(""); err == nil {
		t.Fatal("empty key accepted")
	}
}

// waitUntil polls cond every few milliseconds until it holds or the
// deadline passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An event on the stream makes the Router refresh at once: with an hour
// between polls, only the stream can bring the new version.
func TestRouterRefreshesOnEvents(t *testing.T) {
	f := newFakeGateway()
	defer f.Close()
	r, err := client.NewRouter(context.Background(), newClient(t, f), client.WithRefreshInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, kind := range []string{client.KindPartitionChange, client.KindRebalanceComplete, client.KindNodeLeave} {
		v := uint64(20 + i)
		f.emit(v, kind)
		waitUntil(t, 5*time.Second, fmt.Sprintf("the router at version %d after %s", v, kind), func() bool {
			return r.Cluster().Cluster.Version == v
		})
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// When the gateway refuses the event stream, the poll keeps the Router
// current, and Close does not wait for the stream's backoff.
func TestRouterPollsWithoutStream(t *testing.T) {
	for _, status := range []int32{http.StatusServiceUnavailable, http.StatusNotFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFakeGateway()
			defer f.Close()
			f.eventsRefused.Store(status)
			r, err := client.NewRouter(context.Background(), newClient(t, f), client.WithRefreshInterval(10*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			waitUntil(t, 5*time.Second, "a refused event stream", func() bool { return f.conns.Load() > 0 })
			f.setVersion(42)
			waitUntil(t, 5*time.Second, "the router at version 42 by polling", func() bool {
				return r.Cluster().Cluster.Version == 42
			})
			start := time.Now()
			r.Close()
			if took := time.Since(start); took > time.Second {
				t.Fatalf("Close took %v", took)
			}
		})
	}
}

// After the gateway refused the stream (404: Watch gives up at once), the
// Router opens a new one, with backoff, once the gateway serves it.
func TestRouterReopensStream(t *testing.T) {
	f := newFakeGateway()
	defer f.Close()
	f.eventsRefused.Store(http.StatusNotFound)
	r, err := client.NewRouter(context.Background(), newClient(t, f), client.WithRefreshInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitUntil(t, 5*time.Second, "two refused event streams", func() bool { return f.conns.Load() > 1 })
	f.eventsRefused.Store(0)
	waitUntil(t, 15*time.Second, "an event stream", func() bool { return f.streams.Load() > 0 })
	f.emit(77, client.KindRebalanceComplete)
	waitUntil(t, 5*time.Second, "the router at version 77", func() bool { return r.Cluster().Cluster.Version == 77 })
}

// A node that no longer holds the events after the Router's version (410)
// is followed live from then on.
func TestRouterFollowsLiveAfterGone(t *testing.T) {
	f := newFakeGateway()
	defer f.Close()
	f.goneBefore.Store(100)
	r, err := client.NewRouter(context.Background(), newClient(t, f), client.WithRefreshInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitUntil(t, 5*time.Second, "a live event stream", func() bool { return f.streams.Load() > 0 })
	f.emit(120, client.KindPartitionChange)
	waitUntil(t, 5*time.Second, "the router at version 120", func() bool { return r.Cluster().Cluster.Version == 120 })
}
