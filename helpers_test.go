package clusterkit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
)

// fastOptions returns options for a quick single node on a free loopback port.
func fastOptions(t *testing.T, id string) Options {
	t.Helper()
	o := DefaultOptions()
	o.NodeID = id
	o.HTTPAddr = "127.0.0.1:0"
	o.RebalanceDelay = 10 * time.Millisecond
	o.StartTimeout = 20 * time.Second
	// Short, but not so short that a busy machine (CI shares two cores,
	// tests run under -race) elects a new leader in the middle of a test:
	// with 100 ms a leader lost its lease under load (TestHTTPRoutes).
	o.Raft = RaftTimings{HeartbeatTimeout: 250 * time.Millisecond, ElectionTimeout: 250 * time.Millisecond, LeaderLeaseTimeout: 250 * time.Millisecond, CommitTimeout: 5 * time.Millisecond}
	o.VoterStabilization = 200 * time.Millisecond
	o.Logger = testLogger(t)
	return o
}

// waitVoters waits until the running nodes agree that want members are
// voters, in the committed membership and in Raft's configuration.
func waitVoters(t *testing.T, nodes []*ClusterKit, want int) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d voters", want), func() bool {
		for _, n := range nodes {
			if !n.running.Load() {
				continue
			}
			voters := 0
			for _, m := range n.fsm.View().Members() {
				if m.Voter {
					voters++
				}
			}
			if voters != want || len(n.raftStatus().Voters) != want {
				return false
			}
		}
		return true
	})
}

// testLogger writes through t.Log, so logs show only for failing tests.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("CK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended must not panic
	w.t.Log(string(p))
	return len(p), nil
}

// startNode starts a node and stops it when the test ends. setup runs
// between New and Start (subscriptions made there see the bootstrap).
func startNode(t *testing.T, o Options, setup ...func(*ClusterKit)) *ClusterKit {
	t.Helper()
	ck, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(ck)
	}
	if err := ck.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ck.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return ck
}

// leakCheck verifies, at the end of the test, that every goroutine started
// during it has ended (registered first, so it runs after the nodes' Stop).
func leakCheck(t *testing.T) {
	t.Helper()
	opts := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opts) })
}

// probe is a minimal recording actor for these tests.
type probe struct {
	pid *actor.PID
	ch  chan any
}

func newProbe(t *testing.T, sys *actor.ActorSystem) *probe {
	p := &probe{ch: make(chan any, 100000)}
	p.pid = sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
			return
		}
		p.ch <- ctx.Message()
	}))
	return p
}

// subscribeProbe subscribes a new probe to ck's events.
func subscribeProbe(t *testing.T, ck *ClusterKit, opts ...SubscribeOption) *probe {
	t.Helper()
	p := newProbe(t, ck.ActorSystem())
	if err := ck.Subscribe(p.pid, opts...); err != nil {
		t.Fatal(err)
	}
	return p
}

// next returns the next message, failing the test after timeout.
func (p *probe) next(t *testing.T, timeout time.Duration) any {
	t.Helper()
	select {
	case m := <-p.ch:
		return m
	case <-time.After(timeout):
		t.Fatalf("probe: no message within %v", timeout)
		return nil
	}
}

// expectNone fails if a message arrives within d.
func (p *probe) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-p.ch:
		t.Fatalf("probe: unexpected %T %v", m, m)
	case <-time.After(d):
	}
}

// busyPort returns an address something is listening on.
func busyPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// othersThan returns nodes without skip, in their order.
func othersThan(nodes []*ClusterKit, skip ...*ClusterKit) []*ClusterKit {
	var out []*ClusterKit
	for _, n := range nodes {
		if !slices.Contains(skip, n) {
			out = append(out, n)
		}
	}
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// waitDelivered waits until the node has delivered the events of every entry
// it has applied, so a subscription made now sees only later events.
func waitDelivered(t *testing.T, ck *ClusterKit) {
	t.Helper()
	waitFor(t, 5*time.Second, "events delivered up to the current state", func() bool {
		ck.lastSeq.Lock()
		defer ck.lastSeq.Unlock()
		return ck.stats.Derived.Load() >= ck.fsm.View().Version() && ck.lastSeq.Index >= ck.stats.Emitted.Load()
	})
}
