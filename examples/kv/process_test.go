package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/proctest"
	"github.com/clusterkit/clusterkit/internal/tmpcheck"
)

// These tests run the kv binary as real processes on loopback, so that
// failures are real: kill -9, restarts on the same data directory.

var kvBin = proctest.Binary{Pkg: "."}

// TestMain removes the binary built for the tests, then fails the run if a
// test left anything else in the temporary directory.
func TestMain(m *testing.M) { tmpcheck.Main(m, kvBin.Remove) }

// fastArgs: quick Raft and failure detection (a crashed node is removed
// within about a second).
var fastArgs = []string{"-raft-heartbeat-timeout", "150ms", "-raft-election-timeout", "150ms", "-rebalance-delay", "20ms",
	"-health-interval", "100ms", "-health-timeout", "150ms", "-health-failure-threshold", "3", "-health-removal-grace", "300ms"}

// kvProc is one node process. Its log goes to a file, shown if the test fails.
type kvProc struct {
	id, http, kv, dataDir string
	cmd                   *exec.Cmd
	done                  chan struct{}
	logPath               string // of the current run
	running               *proctest.Proc
}

// mustLog fails unless the current run of p logged text.
func (p *kvProc) mustLog(t *testing.T, text string) {
	t.Helper()
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), text) {
		t.Fatalf("%s did not log %q", p.id, text)
	}
}

func freeAddr(t *testing.T) string { return proctest.FreeAddr(t) }

// launch starts p and waits until it prints "ready". The test's cleanup
// kills it (kill -9) if it still runs, and shows its log if the test failed.
func (p *kvProc) launch(t *testing.T, args ...string) {
	t.Helper()
	p.start(t, args...)()
}

// start launches the process and returns the wait for its ready line, so
// that several can start at the same moment.
func (p *kvProc) start(t *testing.T, args ...string) (wait func()) {
	t.Helper()
	args = append([]string{"-id", p.id, "-http", p.http, "-kv", p.kv, "-data-dir", p.dataDir, "-log-level", "debug"}, args...)
	p.cmd = exec.Command(kvBin.Path(t), args...)
	logPath := filepath.Join(t.TempDir(), p.id+".log")
	p.logPath = logPath
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = logFile
	id, cmd := p.id, p.cmd
	t.Cleanup(func() { // runs after proctest's cleanup has killed the process
		_ = logFile.Close()
		if t.Failed() {
			if data, err := os.ReadFile(logPath); err == nil {
				t.Logf("log of %s (pid %d):\n%s", id, cmd.Process.Pid, tail(string(data), 60))
			}
		}
	})
	pending := proctest.Launch(t, p.id, p.cmd, func(line string) bool {
		return strings.Contains(line, "node="+p.id) && strings.Contains(line, "kv="+p.kv)
	}, nil)
	return func() {
		t.Helper()
		p.running = pending.Wait(t)
		p.done = p.running.Done
	}
}

// sigterm stops p the planned way and waits until it exited with status 0.
func (p *kvProc) sigterm(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("%s exited with %d after SIGTERM", p.id, code)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop after SIGTERM", p.id)
	}
}

// kill9 kills p with SIGKILL and waits for it to be gone.
func (p *kvProc) kill9(t *testing.T) {
	t.Helper()
	p.running.Kill9(t, p.id)
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

var probe = &http.Client{Timeout: 2 * time.Second}

// kvStatus reads GET /ready of a node's kv API.
func kvStatus(addr string) (Status, error) {
	var st Status
	resp, err := probe.Get("http://" + addr + "/ready")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitLoaded waits until p is ready and holds exactly held partitions, all loaded.
func waitLoaded(t *testing.T, p *kvProc, held int) {
	t.Helper()
	var last Status
	var lastErr error
	start := time.Now()
	ok := poll(20*time.Second, func() bool {
		last, lastErr = kvStatus(p.kv)
		return lastErr == nil && last.Ready && last.Held == held && last.Loaded == held
	})
	if !ok {
		t.Fatalf("%s did not load its %d partitions: last status %+v, error %v", p.id, held, last, lastErr)
	}
	t.Logf("%s ready with %d partitions loaded, %d keys (waited %v)", p.id, last.Loaded, last.Keys, time.Since(start).Round(time.Millisecond))
}

// clusterOf reads GET /cluster of p's gateway through the typed client.
func clusterOf(p *kvProc) (*client.Cluster, error) {
	c, err := client.New(p.http, client.WithHTTPClient(probe))
	if err != nil {
		return nil, err
	}
	doc, err := c.Cluster(context.Background())
	if err != nil {
		return nil, err
	}
	return doc.Cluster, nil
}

// waitMembers waits until the gateway of every listed process reports
// exactly the given number of members.
func waitMembers(t *testing.T, procs []*kvProc, n int) {
	t.Helper()
	actortest.Eventually(t, 20*time.Second, fmt.Sprintf("%d members on every node", n), func() bool {
		for _, p := range procs {
			if c, err := clusterOf(p); err != nil || len(c.Nodes) != n {
				return false
			}
		}
		return true
	})
}

// waitVoters waits until every listed process reports n voters. Joiners
// start as non-voters and are promoted once healthy for the stabilisation
// window: a node killed before that may take the quorum with it.
func waitVoters(t *testing.T, procs []*kvProc, n int) {
	t.Helper()
	actortest.Eventually(t, 20*time.Second, fmt.Sprintf("%d voters on every node", n), func() bool {
		for _, p := range procs {
			c, err := clusterOf(p)
			if err != nil {
				return false
			}
			voters := 0
			for _, m := range c.Nodes {
				if m.Voter {
					voters++
				}
			}
			if voters != n {
				return false
			}
		}
		return true
	})
}

func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// eachKey runs fn on every key of kvs, 8 at a time, and returns the
// failures it reported.
func eachKey(kvs map[string]string, fn func(key, value string) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		keys = make(chan string)
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for k := range keys {
				if err := fn(k, kvs[k]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for k := range kvs {
		keys <- k
	}
	close(keys)
	wg.Wait()
	return errs
}

// checkAll reads every key through read and compares it with want.
func checkAll(t *testing.T, what string, want map[string]string, read func(ctx context.Context, key string) ([]byte, error)) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := eachKey(want, func(k, v string) error {
		if got, err := read(ctx, k); err != nil || string(got) != v {
			return fmt.Errorf("%s: got %q, %v; want %q", k, got, err, v)
		}
		return nil
	})
	if len(bad) > 0 {
		t.Fatalf("%s: %d of %d keys wrong, e.g. %v", what, len(bad), len(want), bad[:min(5, len(bad))])
	}
	t.Logf("%s: all %d keys read back in %v", what, len(want), time.Since(start).Round(time.Millisecond))
}

// writeAll writes every key of kvs through the client, 8 at a time.
func writeAll(t *testing.T, c *Client, kvs map[string]string) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := eachKey(kvs, func(k, v string) error { return c.Put(ctx, k, []byte(v)) })
	if len(errs) > 0 {
		t.Fatalf("%d of %d writes failed, e.g. %v", len(errs), len(kvs), errs[0])
	}
	t.Logf("wrote %d keys in %v", len(kvs), time.Since(start).Round(time.Millisecond))
}

// direct reads a key from one node's kv API, without routing: the node
// must hold the key's partition, loaded.
func direct(p *kvProc) func(context.Context, string) ([]byte, error) {
	return func(ctx context.Context, key string) ([]byte, error) {
		res, err := NewClient().call(ctx, p.id, p.kv, http.MethodGet, key, nil)
		if err != nil {
			return nil, err
		}
		if res.status != http.StatusOK {
			return nil, res.err()
		}
		return res.body, nil
	}
}

// TestKillRestartKill: a 3-node cluster (RF 3, 64 partitions) with data
// directories takes 1,000 keys through the smart client; kill -9 of one
// node loses none; the node restarts on its data directory (with the join
// address), rejoins and reloads every partition from the live owners; kill
// -9 of another node loses none either.
//
// "removed": the restart comes after failure detection removed the node,
// and writes go on against the survivors while the second dead node may
// still be a primary. "in place": a long removal grace keeps the node a
// member, so it restarts as one (NodeRejoin without a NodeLeave).
func TestKillRestartKill(t *testing.T) {
	t.Run("removed", func(t *testing.T) { killRestartKill(t, true) })
	t.Run("in place", func(t *testing.T) { killRestartKill(t, false) })
}

func killRestartKill(t *testing.T, removed bool) {
	args := fastArgs
	if !removed {
		args = append(slices.Clone(fastArgs), "-health-removal-grace", "30s")
	}
	dir := t.TempDir()
	procs := make([]*kvProc, 3)
	for i := range procs {
		procs[i] = &kvProc{id: fmt.Sprintf("node-%d", i+1), http: freeAddr(t), kv: freeAddr(t), dataDir: filepath.Join(dir, fmt.Sprintf("node-%d", i+1))}
	}
	procs[0].launch(t, append([]string{"-partitions", "64", "-replication-factor", "3"}, args...)...)
	for _, p := range procs[1:] {
		p.launch(t, append([]string{"-join", procs[0].http}, args...)...)
	}
	waitMembers(t, procs, 3)
	waitVoters(t, procs, 3)
	for _, p := range procs {
		waitLoaded(t, p, 64) // RF 3 on 3 nodes: every node holds every partition
	}

	kv := NewClient(procs[0].http, procs[1].http, procs[2].http)
	defer kv.Close()
	want := map[string]string{}
	for i := range 1000 {
		want[fmt.Sprintf("key-%04d", i)] = fmt.Sprintf("value-%04d-%d", i, time.Now().UnixNano())
	}
	writeAll(t, kv, want)
	for _, p := range procs {
		checkAll(t, p.id+" directly", want, direct(p))
	}

	// kill -9 the first node (the bootstrap node, most likely the Raft
	// leader too): reads fall back to the replicas.
	first := procs[0]
	first.kill9(t)
	checkAll(t, "after kill -9 of "+first.id, want, kv.Get)
	if removed {
		waitMembers(t, procs[1:], 2)
	} else if got := members(t, procs[1]); got != 3 {
		t.Fatalf("%s has %d members: the dead node was removed despite the long grace", procs[1].id, got)
	}

	// Restart it on its data directory, with the join address (needed
	// when failure detection removed it).
	first.launch(t, append([]string{"-join", procs[1].http + "," + procs[2].http}, args...)...)
	waitMembers(t, procs, 3)
	waitVoters(t, procs, 3)
	waitLoaded(t, first, 64)
	first.mustLog(t, "this node rejoined")
	checkAll(t, first.id+" directly after its restart", want, direct(first))

	// kill -9 a second node: the restarted one and the third have everything.
	second := procs[1]
	second.kill9(t)
	survivors := []*kvProc{procs[0], procs[2]}
	checkAll(t, "after kill -9 of "+second.id, want, kv.Get)
	for _, p := range survivors {
		checkAll(t, p.id+" directly after the second kill", want, direct(p))
	}
	if !removed {
		return // the second dead node stays a primary for 30 s: writes to its partitions wait
	}

	// Writes go on while the dead node may still be a primary in the table
	// (until failure detection removes it): the client refreshes and retries.
	updates := map[string]string{}
	for i := range 200 {
		k := fmt.Sprintf("key-%04d", i*5)
		updates[k] = fmt.Sprintf("updated-%04d", i*5)
		want[k] = updates[k]
	}
	writeAll(t, kv, updates)
	waitMembers(t, survivors, 2)
	for _, p := range survivors {
		checkAll(t, p.id+" directly after the updates", want, direct(p))
	}
	checkAll(t, "through the client at the end", want, kv.Get)

	// SIGTERM stops a node cleanly (exit status 0).
	for _, p := range survivors {
		p.sigterm(t)
	}
}

// members is the number of members p's gateway reports.
func members(t *testing.T, p *kvProc) int {
	t.Helper()
	c, err := clusterOf(p)
	if err != nil {
		t.Fatal(err)
	}
	return len(c.Nodes)
}
