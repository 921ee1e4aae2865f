package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/testcert"
)

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
		testcert.WriteFile(t, files[i], []byte(oldAdmin+"\nread "+oldRead+"\n"))
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
	// load calls do on the next node every 20 ms until stopLoad closes,
	// counting successes in ok.
	load := func(what string, ok *atomic.Int64, do func(n int, p *proc, ctx context.Context) error) {
		loadDone.Go(func() {
			for n := 0; n < 100000; n++ {
				select {
				case <-stopLoad:
					return
				case <-time.After(20 * time.Millisecond):
				}
				p := procs[n%3]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := do(n, p, ctx)
				cancel()
				if err != nil {
					fail("%s %s: %v", what, p.id, err)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	load("read on", &reads, func(_ int, p *proc, ctx context.Context) error { // from 127.0.0.1
		_, err := clientAt(t, p.addr, readTok.Load().(string), "127.0.0.1").Cluster(ctx)
		return err
	})
	load("write through", &writes, func(n int, p *proc, ctx context.Context) error { // from 127.0.0.4
		_, err := clientAt(t, p.addr, adminTok.Load().(string), "127.0.0.4").PutCustomData(ctx, "rotation/"+strconv.Itoa(n%8), []byte(strconv.Itoa(n)))
		return err
	})
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
			testcert.WriteFile(t, files[i], []byte(content))
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
	testcert.WriteFile(t, files[3], []byte(newAdmin+"\n"))
	t.Setenv("AUTH_TOKEN", "") // the node program reads AUTH_TOKEN too
	procs = append(procs, launch(t, "node-4", freeAddr(t),
		append([]string{"-services", "kv=:9003", "-auth-token-file", files[3], "-join", procs[1].addr}, args...)...))
	t.Setenv("AUTH_TOKEN", newAdmin)
	waitMembers(t, procs, "node-1", "node-2", "node-3", "node-4")
}

// TestTLSFilesReload: a node process serving TLS picks up a renewed
// certificate on SIGHUP, and another one written without a signal within
// seconds, without a restart; then a second node joins it over TLS (its
// join, the Raft connections and the probes verify the new certificate).
func TestTLSFilesReload(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "clusterkit test CA")
	caFile := filepath.Join(dir, "ca.pem")
	testcert.WriteFile(t, caFile, ca.PEM)
	certFile, keyFile := filepath.Join(dir, "node-1.pem"), filepath.Join(dir, "node-1.key")
	swap := func(serial int64) {
		c, k := ca.Leaf(t, serial, "127.0.0.1")
		testcert.WriteFile(t, keyFile, k)
		testcert.WriteFile(t, certFile, c)
	}
	swap(11)
	tlsArgs := func(cert, key string) []string {
		return append(slices.Clone(fastArgs), "-tls-cert", cert, "-tls-key", key, "-tls-ca", caFile)
	}
	p1 := launch(t, "node-1", freeAddr(t), tlsArgs(certFile, keyFile)...)
	if got := testcert.ServedSerial(p1.addr, ca.PEM); got != 11 {
		t.Fatalf("node-1 serves serial %d, want 11", got)
	}
	swap(12)
	if err := p1.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	actortest.Eventually(t, 20*time.Second, "the renewed certificate after SIGHUP", func() bool { return testcert.ServedSerial(p1.addr, ca.PEM) == 12 })
	swap(13) // no signal: the node notices the files changed
	actortest.Eventually(t, 20*time.Second, "the certificate written without a signal", func() bool { return testcert.ServedSerial(p1.addr, ca.PEM) == 13 })

	c2, k2 := ca.Leaf(t, 21, "127.0.0.1")
	cert2, key2 := filepath.Join(dir, "node-2.pem"), filepath.Join(dir, "node-2.key")
	testcert.WriteFile(t, cert2, c2)
	testcert.WriteFile(t, key2, k2)
	launch(t, "node-2", freeAddr(t), append(tlsArgs(cert2, key2), "-join", p1.addr)...) // returns once ready
}
