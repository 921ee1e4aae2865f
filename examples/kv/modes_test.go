package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
)

// TestModeStories runs the story of each mode, small, in this process:
// formation, keys written and read back, a join, a crash and a restart
// under load, the final check. The joins fail no request in any mode (the
// hand-off), sync loses no acknowledged write, and nothing is left running.
func TestModeStories(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clusters of five nodes")
	}
	// The stories mostly wait (failure detection, paced load): the three
	// run side by side, and the leak check comes once they all ended.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	for _, m := range storyModes {
		t.Run(string(m.Replication)+"-"+string(m.Routing), func(t *testing.T) {
			t.Parallel()
			var logs lockedBuffer
			o := storyOptions()
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			rep, err := runModeStory(ctx, modeStoryConfig{Options: o, Replication: m.Replication, Routing: m.Routing,
				Nodes: 4, Joiners: 1, Keys: 150, StepTimeout: 60 * time.Second}, &out)
			t.Logf("the story:\n%s", out.String())
			if err != nil {
				t.Logf("the nodes' logs (last 60 lines):\n%s", tail(logs.String(), 60))
				t.Fatal(err)
			}
			if len(rep.Phases) != 6 || rep.Killed == "" {
				t.Fatalf("phases %d, killed %q", len(rep.Phases), rep.Killed)
			}
			if rep.Acked <= int64(rep.Keys) || rep.JoinFailed != 0 {
				t.Errorf("acknowledged %d writes for %d keys, %d failed during the join", rep.Acked, rep.Keys, rep.JoinFailed)
			}
			if m.Replication == ReplicationSync && (rep.Lost != 0 || rep.StaleReads != 0) {
				t.Errorf("sync lost %d acknowledged writes, %d stale reads", rep.Lost, rep.StaleReads)
			}
			if !strings.Contains(out.String(), "result: 150 keys") {
				t.Errorf("no result line")
			}
		})
	}
}

// startModeNode starts an in-process node with the given modes.
func startModeNode(t *testing.T, o clusterkit.Options, repl Replication, routing Routing) *Node {
	t.Helper()
	n, _ := startConfigNode(t, Config{ClusterKit: o, Replication: repl, Routing: routing})
	return n
}

// rawCall is one plain HTTP request to a kv API.
func rawCall(t *testing.T, method, addr, key, value string) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPut {
		body = strings.NewReader(value)
	}
	req, err := http.NewRequest(method, "http://"+addr+"/kv/"+key, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := probe.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

// TestServerRouting: with server routing, any node takes any key: writes
// sent to every node in turn, and every key read from every node, before
// and during a rebalance (two nodes join), with no failed request. A
// forwarded answer names the node that forwarded it.
func TestServerRouting(t *testing.T) {
	nodes := map[string]*Node{}
	var order []*Node
	add := func(id string, join *Node) {
		o := testOptions(id)
		o.PartitionCount = 32
		if join != nil {
			o.JoinAddrs = []string{gateway(join)}
		}
		n := startModeNode(t, o, ReplicationSync, RoutingServer)
		nodes[id] = n
		order = append(order, n)
	}
	add("node-1", nil)
	add("node-2", order[0])
	add("node-3", order[0])
	waitSettled(t, nodes)

	want := map[string]string{}
	forwarded := 0
	for i := range 120 {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		want[k] = v
		status, h, body := rawCall(t, http.MethodPut, order[i%len(order)].KVAddr, k, v)
		if status != http.StatusOK {
			t.Fatalf("PUT %s on %s: %d %s", k, order[i%len(order)].CK.GetMyNodeID(), status, body)
		}
		if h.Get(viaHeader) != "" {
			forwarded++
		}
	}
	if forwarded == 0 || forwarded == len(want) {
		t.Errorf("%d of %d writes forwarded: want some (the other nodes' keys), not all", forwarded, len(want))
	}
	readEverywhere := func(ns []*Node) (failed []string) {
		for _, n := range ns {
			for k, v := range want {
				status, _, body := rawCall(t, http.MethodGet, n.KVAddr, k, "")
				if status != http.StatusOK || body != v {
					failed = append(failed, fmt.Sprintf("%s on %s: %d %q", k, n.CK.GetMyNodeID(), status, body))
				}
			}
		}
		return failed
	}
	if bad := readEverywhere(order); len(bad) > 0 {
		t.Fatalf("%d reads failed before the joins, e.g. %v", len(bad), bad[:min(3, len(bad))])
	}

	// Read every key from every node, and write through every node, while
	// two nodes join and the partitions move.
	var (
		mu     sync.Mutex
		during []*Node
		bad    []string
		rounds atomic.Int64
		stop   = make(chan struct{})
		done   = make(chan struct{})
	)
	during = append(during, order...)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			ns := append([]*Node(nil), during...)
			mu.Unlock()
			failed := readEverywhere(ns)
			n := ns[i%len(ns)]
			if status, _, body := rawCall(t, http.MethodPut, n.KVAddr, "k0", "v0"); status != http.StatusOK {
				failed = append(failed, fmt.Sprintf("PUT k0 on %s: %d %s", n.CK.GetMyNodeID(), status, body))
			}
			mu.Lock()
			bad = append(bad, failed...)
			mu.Unlock()
			rounds.Add(1)
		}
	}()
	add("node-4", order[1])
	mu.Lock()
	during = append(during, nodes["node-4"])
	mu.Unlock()
	add("node-5", order[2])
	mu.Lock()
	during = append(during, nodes["node-5"])
	mu.Unlock()
	waitSettled(t, nodes)
	start := rounds.Load()
	actortest.Eventually(t, 30*time.Second, "one more round of reads after the rebalance", func() bool { return rounds.Load() > start })
	close(stop)
	<-done
	if len(bad) > 0 {
		t.Fatalf("%d requests failed during the rebalance, e.g. %v", len(bad), bad[:min(3, len(bad))])
	}
	t.Logf("%d rounds of %d keys from every node during the joins, no failure", rounds.Load(), len(want))
	if bad := readEverywhere(order); len(bad) > 0 {
		t.Fatalf("%d reads failed after the joins, e.g. %v", len(bad), bad[:min(3, len(bad))])
	}
}

// TestSyncNeedsMajority: under sync replication a write is acknowledged
// once every live owner holds it, with a replica down it is acknowledged
// by the majority left (the down one is skipped), and with two of three
// owners down it is refused (503 no_quorum): the primary alone holding an
// acknowledged write would lose it with its next crash.
func TestSyncNeedsMajority(t *testing.T) {
	var ns []*Node
	for i := range 3 {
		o := testOptions(fmt.Sprintf("node-%d", i+1))
		o.PartitionCount, o.ReplicationFactor = 8, 3
		if i > 0 {
			o.JoinAddrs = []string{gateway(ns[0])}
		}
		ns = append(ns, startModeNode(t, o, ReplicationSync, RoutingClient))
	}
	waitSettled(t, map[string]*Node{"node-1": ns[0], "node-2": ns[1], "node-3": ns[2]})
	// A key node-1 is the primary of.
	key := ""
	for i := range 1000 {
		if p, err := ns[0].CK.GetPartition(fmt.Sprintf("q%d", i)); err == nil && p.PrimaryNode == "node-1" {
			key = fmt.Sprintf("q%d", i)
			break
		}
	}
	if key == "" {
		t.Fatal("node-1 is the primary of no key")
	}
	write := func() (int, writeResult, apiError) {
		status, _, body := rawCall(t, http.MethodPut, ns[0].KVAddr, key, "v")
		var ok writeResult
		var e apiError
		if status == http.StatusOK {
			_ = json.Unmarshal([]byte(body), &ok)
		} else {
			_ = json.Unmarshal([]byte(body), &e)
		}
		return status, ok, e
	}
	if status, ok, e := write(); status != http.StatusOK || len(ok.Acked) != 2 {
		t.Fatalf("all up: %d %+v %+v", status, ok, e)
	}
	if err := ns[2].Crash(); err != nil {
		t.Fatal(err)
	}
	if status, ok, e := write(); status != http.StatusOK || len(ok.Acked) != 1 || len(ok.Skipped) != 1 {
		t.Fatalf("one replica down: %d %+v %+v", status, ok, e)
	}
	if err := ns[1].Crash(); err != nil {
		t.Fatal(err)
	}
	if status, _, e := write(); status != http.StatusServiceUnavailable || e.Code != "no_quorum" {
		t.Fatalf("two of three owners down: %d %+v, want 503 no_quorum", status, e)
	}
}

// TestAsyncReplication: an async primary answers at once, naming the
// replicas the write is queued for, and the replicas get it in order (the
// last of many writes to one key wins everywhere).
func TestAsyncReplication(t *testing.T) {
	var ns []*Node
	for i := range 3 {
		o := testOptions(fmt.Sprintf("node-%d", i+1))
		o.PartitionCount, o.ReplicationFactor = 8, 3
		if i > 0 {
			o.JoinAddrs = []string{gateway(ns[0])}
		}
		ns = append(ns, startModeNode(t, o, ReplicationAsync, RoutingClient))
	}
	waitSettled(t, map[string]*Node{"node-1": ns[0], "node-2": ns[1], "node-3": ns[2]})
	c := newTestClient(t, gateway(ns[0]))
	ctx := context.Background()
	ack, err := c.write(ctx, http.MethodPut, "a", []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ack.Queued) != 2 || len(ack.Acked) != 0 {
		t.Fatalf("async write answered %+v: want 2 replicas queued, none acknowledged", ack.writeResult)
	}
	for i := 1; i <= 200; i++ {
		if err := c.Put(ctx, "a", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range ns {
		actortest.Eventually(t, 10*time.Second, n.CK.GetMyNodeID()+" has the last write", func() bool {
			status, _, body := rawCall(t, http.MethodGet, n.KVAddr, "a", "")
			return status == http.StatusOK && body == "200"
		})
	}
	actortest.Eventually(t, 10*time.Second, "the queues drained", func() bool {
		st, err := kvStatus(ns[0].KVAddr)
		return err == nil && st.Replication == ReplicationAsync && st.Pending == 0
	})
	// The fence's request, malformed, is refused with a reason.
	for _, q := range []string{"", "?to=node-2", "?epoch=0&to=node-2", "?epoch=7"} {
		resp, err := http.Post("http://"+ns[0].KVAddr+"/internal/partitions/partition-0/deliver"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "want the new primary's node id (to) and its partition epoch") {
			t.Errorf("deliver%s: %d %s, want 400 naming to and epoch", q, resp.StatusCode, body)
		}
	}
}

// TestReplicatorFull: a replica's queue holds at most its limit; a write
// that does not fit in every queue is queued in none.
func TestReplicatorFull(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no sender delivers anything
	r := newReplicator(ctx, nil, nil, slog.New(slog.DiscardHandler), 2)
	msg := func() *replicateRequest { return &replicateRequest{Key: "k", queued: time.Now()} }
	if full := r.offer(msg(), []string{"a", "b"}); full != "" {
		t.Fatalf("first write: queue of %s full", full)
	}
	if full := r.offer(msg(), []string{"a"}); full != "" {
		t.Fatalf("second write: queue of %s full", full)
	}
	if full := r.offer(msg(), []string{"b", "a"}); full != "a" {
		t.Fatalf("third write to a: full %q, want a", full)
	}
	if n, _ := r.pending(); n != 3 {
		t.Fatalf("pending %d, want 3 (the refused write queued nowhere)", n)
	}
	r.wait()
}

// TestModeFlags: bad modes are refused, all at once.
func TestModeFlags(t *testing.T) {
	_, err := NewNode(Config{ClusterKit: testOptions("x"), KVAddr: "127.0.0.1:0", Replication: "quorum", Routing: "proxy", AsyncQueue: -1})
	if err == nil {
		t.Fatal("bad modes accepted")
	}
	for _, want := range []string{`replication "quorum"`, `routing "proxy"`, "async queue -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := run([]string{"-story", "-id", "x"}); err == nil || !strings.Contains(err.Error(), "-id does not apply") {
		t.Errorf("-story -id: %v", err)
	}
	if err := run([]string{"-replication", "fast"}); err == nil || !strings.Contains(err.Error(), "want sync or async") {
		t.Errorf("-replication fast: %v", err)
	}
}

// TestClientNeverGoesBack: a client that saw a newer version of a key than
// the cluster serves (a write lost with a crashed async primary) gets
// ErrStale, not the older value; a new write ends it. A delete's version
// travels with its not_found, so a delete is not mistaken for a loss.
func TestClientNeverGoesBack(t *testing.T) {
	o := testOptions("node-1")
	o.PartitionCount, o.ReplicationFactor = 4, 1
	n := startModeNode(t, o, ReplicationAsync, RoutingClient)
	c := newTestClient(t, gateway(n))
	ctx := context.Background()
	ack, err := c.write(ctx, http.MethodPut, "k", []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	c.saw("k", ack.Version+1) // as if a newer write had been acknowledged, then lost
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrStale) || c.Stale() != 1 {
		t.Fatalf("Get after a lost write: %v (stale %d), want ErrStale", err, c.Stale())
	}
	if err := c.Put(ctx, "k", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v2" {
		t.Fatalf("Get after a new write: %q, %v", v, err)
	}
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the delete: %v, want ErrNotFound", err)
	}
	other := newTestClient(t, gateway(n))
	other.saw("never", 1)
	if _, err := other.Get(ctx, "never"); !errors.Is(err, ErrStale) {
		t.Fatalf("a key seen once and now never written: %v, want ErrStale", err)
	}
}

// TestAsyncStopUnderSkew: an async primary whose clock is 2 s ahead of the
// others stops, gracefully, with writes still queued (its deliveries are
// slowed down) while writers keep writing through the stop. Each new
// primary serves only once the stopping node delivered what it queued for
// it (fence.go), so every key reads back its last acknowledged value: a
// queued write delivered after the new primary's first writes would carry
// a version from the future and win over them.
func TestAsyncStopUnderSkew(t *testing.T) {
	ns, stops := skewCluster(t, 2, 300*time.Millisecond)
	keys := make([][]string, 8)
	for w := range keys {
		keys[w] = []string{fmt.Sprintf("w%d-k0", w), fmt.Sprintf("w%d-k1", w)}
	}
	load := startSkewLoad(t, keys, gateway(ns[0]), gateway(ns[1]))
	waitQueued(t, ns[2])
	stopDone := make(chan struct{})
	load.mark()
	go func() {
		defer close(stopDone)
		stops[2]()
	}()
	load.end(t, 100)
	<-stopDone
	checkLastAcked(t, ns[:2], load.last)
}

// TestAsyncHandOverUnderSkew: an async node whose clock is 2 s ahead and
// whose deliveries are slow hands its primaries over (HandOverPrimaries,
// as before maintenance; it keeps running) under writers that end soon
// after. A new primary serves only once its predecessor delivered what it
// had queued for it (fence.go), so every key reads back its last
// acknowledged write; without that, a queued write delivered after the new
// primary's first ones wins by its version.
func TestAsyncHandOverUnderSkew(t *testing.T) {
	ns, _ := skewCluster(t, 1, 500*time.Millisecond)
	// Every key is in a partition node-2 leads: the moves from node-2 are
	// the ones that can lose a write.
	skewed := map[string]bool{}
	for id, p := range ns[0].CK.GetCluster().PartitionMap.Partitions {
		skewed[id] = p.PrimaryNode == "node-2"
	}
	const writers, keysPerWriter = 8, 4
	keys := make([][]string, writers)
	for i := 0; i < 10_000 && len(keys[writers-1]) < keysPerWriter; i++ {
		k := fmt.Sprintf("key-%d", i)
		if p, err := ns[0].CK.GetPartition(k); err == nil && skewed[p.ID] {
			w := slices.IndexFunc(keys, func(ks []string) bool { return len(ks) < keysPerWriter })
			keys[w] = append(keys[w], k)
		}
	}
	load := startSkewLoad(t, keys, gateway(ns[0]))
	waitQueued(t, ns[1])
	if err := ns[1].CK.HandOverPrimaries(context.Background()); err != nil {
		t.Fatal(err)
	}
	load.mark()
	load.end(t, 100)
	checkLastAcked(t, ns, load.last)
}

// skewCluster starts 3 async nodes (16 partitions, RF 2), the one at
// index skewed with its clock 2 s ahead and each of its batches held for
// delay, and waits until they settle. It returns them with their stops.
func skewCluster(t *testing.T, skewed int, delay time.Duration) ([]*Node, []func()) {
	t.Helper()
	var (
		ns    []*Node
		stops []func()
	)
	for i := range 3 {
		cfg := Config{ClusterKit: testOptions(fmt.Sprintf("node-%d", i+1)), Replication: ReplicationAsync}
		cfg.ClusterKit.PartitionCount, cfg.ClusterKit.ReplicationFactor = 16, 2
		if i > 0 {
			cfg.ClusterKit.JoinAddrs = []string{gateway(ns[0])}
		}
		if i == skewed {
			cfg.clockSkew, cfg.asyncDelay = 2*time.Second, delay
		}
		n, stop := startConfigNode(t, cfg)
		ns, stops = append(ns, n), append(stops, stop)
	}
	waitSettled(t, map[string]*Node{"node-1": ns[0], "node-2": ns[1], "node-3": ns[2]})
	return ns, stops
}

// waitQueued waits until n holds acknowledged writes not yet delivered.
func waitQueued(t *testing.T, n *Node) {
	t.Helper()
	actortest.Eventually(t, 10*time.Second, n.CK.GetMyNodeID()+" has writes queued", func() bool {
		st, err := kvStatus(n.KVAddr)
		return err == nil && st.Pending > 0
	})
}

// skewLoad is one writer per key list, each writing its keys in turn
// (values count up) and keeping the last value acknowledged per key.
type skewLoad struct {
	done   chan struct{}
	wg     sync.WaitGroup
	last   []map[string]string // per writer
	marked atomic.Bool
	after  atomic.Int64 // writes acknowledged since mark
}

func startSkewLoad(t *testing.T, keys [][]string, gateways ...string) *skewLoad {
	l := &skewLoad{done: make(chan struct{}), last: make([]map[string]string, len(keys))}
	for w, ks := range keys {
		l.last[w] = map[string]string{}
		c := newTestClient(t, gateways...)
		l.wg.Go(func() {
			for seq := 0; seq < 100_000; seq++ {
				select {
				case <-l.done:
					return
				default:
				}
				k, v := ks[seq%len(ks)], fmt.Sprintf("%d", seq)
				if err := c.Put(context.Background(), k, []byte(v)); err != nil {
					t.Errorf("PUT %s=%s: %v", k, v, err)
					return
				}
				l.last[w][k] = v
				if l.marked.Load() {
					l.after.Add(1)
				}
			}
		})
	}
	return l
}

// mark starts counting acknowledgements.
func (l *skewLoad) mark() { l.marked.Store(true) }

// end stops the writers once n writes were acknowledged since mark: soon
// after the event, so that no later overwrite hides a lost write. A
// failed write fails the test.
func (l *skewLoad) end(t *testing.T, n int64) {
	t.Helper()
	actortest.Eventually(t, 10*time.Second, fmt.Sprintf("%d writes acknowledged since the mark", n), func() bool { return l.after.Load() >= n })
	close(l.done)
	l.wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// checkLastAcked waits until the nodes delivered their queues, then reads
// every key back and wants its last acknowledged value.
func checkLastAcked(t *testing.T, ns []*Node, last []map[string]string) {
	t.Helper()
	for _, n := range ns {
		actortest.Eventually(t, 10*time.Second, n.CK.GetMyNodeID()+" delivered its queue", func() bool {
			st, err := kvStatus(n.KVAddr)
			return err == nil && st.Pending == 0
		})
	}
	r := newTestClient(t, gateway(ns[0]))
	var lost []string
	keys := 0
	for _, kv := range last {
		for k, v := range kv {
			keys++
			got, err := r.Get(context.Background(), k)
			if err != nil || string(got) != v {
				lost = append(lost, fmt.Sprintf("%s: %q %v, acknowledged %q", k, got, err, v))
			}
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d keys do not read back their last acknowledged write, e.g. %v", len(lost), keys, lost[:min(3, len(lost))])
	}
}
