package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/httpgw/client"
)

// loadStats counts the client operations of the load.
type loadStats struct {
	reads, readFails, stale, writes, writeFails atomic.Int64
}

// TestHandoffUnderLoad: clients that route by the table read and write
// without a pause while 2 nodes join, 1 leaves and every node is restarted
// in turn with SIGTERM (a rolling restart). Planned changes fail no read
// and lose no acknowledged write: each writer owns its keys, reads each key
// back after its write, and at the end every key holds its last
// acknowledged value (or a later write whose answer was lost).
//
// For the comparison in docs/benchmarks.md, two environment variables vary
// the run: CLUSTERKIT_KV_ATTEMPTS bounds the client's tries per operation
// (default the client's 20, which hides most failures behind retries), and
// CLUSTERKIT_KV_HANDOFF=off starts the nodes with -handoff=false; the test
// then only reports what failed, since without hand-off reads may fail.
func TestHandoffUnderLoad(t *testing.T) {
	dir := t.TempDir()
	handoffOn := os.Getenv("CLUSTERKIT_KV_HANDOFF") != "off"
	nodeArgs := fastArgs
	if !handoffOn {
		nodeArgs = append([]string{"-handoff=false"}, fastArgs...)
	}
	var procs []*kvProc
	newProc := func() *kvProc {
		id := fmt.Sprintf("node-%d", len(procs)+1)
		p := &kvProc{id: id, http: freeAddr(t), kv: freeAddr(t), dataDir: filepath.Join(dir, id)}
		procs = append(procs, p)
		return p
	}
	joinArgs := func(except *kvProc, live []*kvProc) []string {
		addrs := ""
		for _, p := range live {
			if p != except {
				addrs += p.http + ","
			}
		}
		return append([]string{"-join", addrs[:len(addrs)-1]}, nodeArgs...)
	}
	first := newProc()
	first.launch(t, append([]string{"-partitions", "64", "-replication-factor", "3"}, nodeArgs...)...)
	for range 3 {
		newProc().launch(t, joinArgs(nil, procs[:1])...)
	}
	live := append([]*kvProc(nil), procs...)
	waitHandedOff(t, live)

	kv := NewClient(first.http, procs[1].http)
	defer kv.Close()
	if a := os.Getenv("CLUSTERKIT_KV_ATTEMPTS"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 1 {
			t.Fatalf("CLUSTERKIT_KV_ATTEMPTS=%q: want a positive integer", a)
		}
		kv.Attempts = n
	}
	var st loadStats
	var mu sync.Mutex
	acked := map[string]string{}          // key -> last acknowledged value
	maybe := map[string]map[string]bool{} // key -> values written after it whose answer was lost
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("w%d-key-%02d", w, i%25)
				value := fmt.Sprintf("w%d-%d", w, i)
				octx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				err := kv.Put(octx, key, []byte(value))
				st.writes.Add(1)
				mu.Lock()
				if err != nil {
					st.writeFails.Add(1)
					if maybe[key] == nil {
						maybe[key] = map[string]bool{}
					}
					maybe[key][value] = true
					t.Logf("write %s=%s failed: %v", key, value, err)
				} else {
					acked[key], maybe[key] = value, nil
				}
				mu.Unlock()
				if err == nil {
					got, err := kv.Get(octx, key)
					st.reads.Add(1)
					switch {
					case err != nil:
						st.readFails.Add(1)
						t.Logf("read %s failed: %v", key, err)
					case string(got) != value:
						st.stale.Add(1)
						t.Logf("read %s: %q after the acknowledged write of %q", key, got, value)
					}
				}
				cancel()
			}
		})
	}
	defer func() {
		stop()
		wg.Wait()
	}()
	waitLoad := func(ops int64) {
		t.Helper()
		target := st.writes.Load() + ops
		actortest.Eventually(t, 30*time.Second, "the load to go on", func() bool { return st.writes.Load() >= target })
	}
	waitLoad(100)

	// Two joins at once: both processes start before either is ready.
	a, b := newProc(), newProc()
	waitA, waitB := a.start(t, joinArgs(nil, live)...), b.start(t, joinArgs(nil, live)...)
	waitA()
	waitB()
	live = append(live, a, b)
	waitHandedOff(t, live)
	waitLoad(100)

	// One leaves (POST /leave: it hands its primaries over, then leaves).
	leaver := live[1]
	gw, err := client.New(leaver.http, client.WithHTTPClient(probe))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-leaver.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit after leaving", leaver.id)
	}
	live = append(live[:1:1], live[2:]...)
	waitHandedOff(t, live)
	waitLoad(100)

	// A rolling restart: SIGTERM, restart on the same data directory,
	// wait until the cluster is settled again.
	for _, p := range live {
		p.sigterm(t)
		p.launch(t, joinArgs(p, live)...)
		waitHandedOff(t, live)
		p.mustLog(t, "this node rejoined") // a new life, its memory empty: it reloaded everything
		waitLoad(50)
	}
	stop()
	wg.Wait()

	// Every key holds its last acknowledged value, or a later write whose
	// answer was lost.
	lost := 0
	for key, want := range acked {
		octx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		got, err := kv.Get(octx, key)
		cancel()
		if err != nil || (string(got) != want && !maybe[key][string(got)]) {
			lost++
			report := t.Errorf
			if !handoffOn {
				report = t.Logf
			}
			report("%s: got %q (%v), the last acknowledged write was %q", key, got, err, want)
		}
	}
	t.Logf("hand-off %v, client attempts %d", handoffOn, max(kv.Attempts, 1))
	t.Logf("requests: %d writes, %d failed (%.4f); %d reads, %d failed (%.4f), %d stale; %d retried (%.4f); %d keys checked, %d lost",
		st.writes.Load(), st.writeFails.Load(), float64(st.writeFails.Load())/float64(max(st.writes.Load(), 1)),
		st.reads.Load(), st.readFails.Load(), float64(st.readFails.Load())/float64(max(st.reads.Load(), 1)),
		st.stale.Load(), kv.Retried(), float64(kv.Retried())/float64(max(st.writes.Load()+st.reads.Load(), 1)), len(acked), lost)
	if handoffOn && (st.readFails.Load() != 0 || st.stale.Load() != 0) {
		t.Errorf("%d reads failed and %d were stale; want none", st.readFails.Load(), st.stale.Load())
	}
}

// waitHandedOff waits until every listed node is a ready kv node, the
// cluster has exactly these members, and no partition has a hand-off in
// progress (every owner ready).
func waitHandedOff(t *testing.T, procs []*kvProc) {
	t.Helper()
	var why error
	ok := poll(60*time.Second, func() bool {
		for _, p := range procs {
			s, err := kvStatus(p.kv)
			if err != nil || !s.Ready {
				why = fmt.Errorf("%s not ready: %+v %v", p.id, s, err)
				return false
			}
		}
		c, err := clusterOf(procs[0])
		if err != nil || len(c.Nodes) != len(procs) {
			why = fmt.Errorf("members: %v", err)
			return false
		}
		for id, part := range c.PartitionMap.Partitions {
			for _, o := range part.Owners {
				if o.State != "ready" {
					why = fmt.Errorf("%s: owner %s is %s", id, o.ID, o.State)
					return false
				}
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("cluster not settled: %v", why)
	}
}
