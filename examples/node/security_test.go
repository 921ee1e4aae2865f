package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/httpgw/client"
)

// writeFileAtomic replaces path as an operator's tooling should: a reader
// (the node's watcher) sees the old file or the new one, never half of it.
func writeFileAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// clientAt is a typed client of addr with token, dialing from the loopback
// address local (each kind of client gets its own address: the failed-login
// limit is per address).
func clientAt(t *testing.T, addr, token, local string) *client.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	c, err := client.New("http://"+addr, client.WithHTTPClient(hc), client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// metricValue reads one sample of the node's Prometheus metrics (-1: absent).
func metricValue(t *testing.T, c *client.Client, sample string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, _, err := c.PrometheusMetrics(ctx, false)
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestTokenRotation rolls a new admin token and a new read token through a
// running cluster of three node processes, node by node, in the three steps
// docs/operations.md gives (accept both; send the new one; drop the old),
// with reads and forwarded writes running throughout: not one request may
// fail, and no node restarts. Steps 1 and 2 signal SIGHUP; step 3 relies on
// the node noticing its file changed. Then a fourth node joins with only the
// new token (Raft and node-to-node requests under the new token), and the
// old one is refused.
func TestTokenRotation(t *testing.T) {
	dir := t.TempDir()
	const (
		oldAdmin, newAdmin = "admin-old-6b1f0c", "admin-new-d93a47"
		oldRead, newRead   = "read-old-2c88e1", "read-new-f41b09"
	)
	args := append(fastArgs[:len(fastArgs):len(fastArgs)], "-auth-reads", "-auto-rejoin=false", "-health-removal-grace", "30s")
	files := make([]string, 4)
	var procs []*proc
	for i := range 3 {
		files[i] = filepath.Join(dir, fmt.Sprintf("tokens-%d", i+1))
		writeFileAtomic(t, files[i], oldAdmin+"\nread "+oldRead+"\n")
		a := append([]string{"-services", fmt.Sprintf("kv=:%d", 9000+i), "-auth-token-file", files[i]}, args...)
		if i > 0 {
			a = append(a, "-join", procs[0].addr)
		}
		procs = append(procs, launch(t, fmt.Sprintf("node-%d", i+1), freeAddr(t), a...))
	}
	t.Setenv("AUTH_TOKEN", oldAdmin) // for waitMembers' reads
	waitMembers(t, procs, "node-1", "node-2", "node-3")

	// The load: reads on every node with the current read token, writes
	// through every node (followers forward them to the leader with their
	// own token) with the current admin token.
	var (
		readTok, adminTok atomic.Value
		reads, writes     atomic.Int64
		failMu            sync.Mutex
		failures          []string
		stopLoad          = make(chan struct{})
		loadDone          sync.WaitGroup
	)
	readTok.Store(oldRead)
	adminTok.Store(oldAdmin)
	fail := func(format string, a ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, a...))
		}
	}
	loadDone.Add(2)
	go func() { // reader, from 127.0.0.1
		defer loadDone.Done()
		for n := 0; n < 100000; n++ {
			select {
			case <-stopLoad:
				return
			case <-time.After(20 * time.Millisecond):
			}
			p := procs[n%3]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := clientAt(t, p.addr, readTok.Load().(string), "127.0.0.1").Cluster(ctx)
			cancel()
			if err != nil {
				fail("read on %s: %v", p.id, err)
			} else {
				reads.Add(1)
			}
		}
	}()
	go func() { // writer, from 127.0.0.4
		defer loadDone.Done()
		for n := 0; n < 100000; n++ {
			select {
			case <-stopLoad:
				return
			case <-time.After(20 * time.Millisecond):
			}
			p := procs[n%3]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := clientAt(t, p.addr, adminTok.Load().(string), "127.0.0.4").PutCustomData(ctx, "rotation/"+strconv.Itoa(n%8), []byte(strconv.Itoa(n)))
			cancel()
			if err != nil {
				fail("write through %s: %v", p.id, err)
			} else {
				writes.Add(1)
			}
		}
	}()
	stop := func() {
		select {
		case <-stopLoad:
		default:
			close(stopLoad)
		}
		loadDone.Wait()
	}
	defer stop()

	// watcher reads the reload counter with a token the node accepts now.
	reloadsOK := `clusterkit_auth_token_reloads_total{result="ok"}`
	step := func(n int, content string, signal bool, tokenNow string) {
		t.Helper()
		for i, p := range procs {
			writeFileAtomic(t, files[i], content)
			if signal {
				if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
			c := clientAt(t, p.addr, tokenNow, "127.0.0.5")
			actortest.Eventually(t, 20*time.Second, fmt.Sprintf("step %d applied on %s", n, p.id), func() bool {
				return metricValue(t, c, reloadsOK) == float64(n)
			})
		}
	}
	// Let the load run a little under the old tokens first.
	actortest.Eventually(t, 20*time.Second, "load running", func() bool { return reads.Load() >= 5 && writes.Load() >= 5 })

	// 1. Accept the new tokens everywhere, still sending the old one.
	step(1, oldAdmin+"\n"+newAdmin+"\nread "+oldRead+"\nread "+newRead+"\n", true, oldAdmin)
	// Every node accepts the new tokens now: clients may switch.
	readTok.Store(newRead)
	adminTok.Store(newAdmin)
	// 2. Send the new admin token; the old one is still accepted.
	step(2, newAdmin+"\n"+oldAdmin+"\nread "+newRead+"\n", true, newAdmin)
	// 3. Drop the old admin token: no signal, the nodes notice the file.
	step(3, newAdmin+"\nread "+newRead+"\n", false, newAdmin)
	r0, w0 := reads.Load(), writes.Load()
	actortest.Eventually(t, 20*time.Second, "load running after the rotation", func() bool {
		return reads.Load() >= r0+5 && writes.Load() >= w0+5
	})
	stop()
	failMu.Lock()
	if len(failures) > 0 {
		t.Fatalf("requests failed during the rotation (%d reads and %d writes succeeded):\n  %s", reads.Load(), writes.Load(), strings.Join(failures, "\n  "))
	}
	failMu.Unlock()
	t.Logf("rotation: %d reads and %d writes, none failed", reads.Load(), writes.Load())

	// The old tokens are refused now, the new ones work.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tok := range []string{oldAdmin, oldRead} {
		_, err := clientAt(t, procs[1].addr, tok, "127.0.0.6").Cluster(ctx)
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("an old token after the rotation: %v, want 401", err)
		}
	}
	if _, err := clientAt(t, procs[1].addr, newAdmin, "127.0.0.5").PutCustomData(ctx, "rotation/done", []byte("1")); err != nil {
		t.Fatalf("write with the new admin token: %v", err)
	}
	if _, err := clientAt(t, procs[2].addr, newRead, "127.0.0.5").PutCustomData(ctx, "rotation/done", []byte("2")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("write with the new read token: %v, want 403", err)
	}
	// A node that only knows the new token joins: its join, the Raft
	// connections both ways and its probes all authenticate with it.
	files[3] = filepath.Join(dir, "tokens-4")
	writeFileAtomic(t, files[3], newAdmin+"\n")
	t.Setenv("AUTH_TOKEN", "") // the node program reads AUTH_TOKEN too
	procs = append(procs, launch(t, "node-4", freeAddr(t),
		append([]string{"-services", "kv=:9003", "-auth-token-file", files[3], "-join", procs[1].addr}, args...)...))
	t.Setenv("AUTH_TOKEN", newAdmin)
	waitMembers(t, procs, "node-1", "node-2", "node-3", "node-4")
}
