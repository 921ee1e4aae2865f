package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

// TestStopDoesNotRecreateDataDir: a node whose data directory was removed
// under it stops cleanly without creating the directory again, although it
// is far enough behind its last snapshot for Stop to take one.
func TestStopDoesNotRecreateDataDir(t *testing.T) {
	leakCheck(t)
	dir := filepath.Join(t.TempDir(), "node-1")
	o := fastOptions(t, "node-1")
	o.DataDir = dir
	ck := startNode(t, o)
	for i := range stopSnapshotBehind + 10 {
		if _, err := ck.SetCustomData(context.Background(), fmt.Sprintf("k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		left, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		t.Fatalf("Stop recreated the removed data directory (stat: %v; holds %v)", err, left)
	}
}

// TestStopAbandonsStuckCallback: a callback that never returns holds Stop
// for CallbackStopTimeout only. Stop then stops Raft, the listener and the
// stores, and returns ErrCallbackStuck naming the hook, its running time
// and its event's seq, again on every later Stop. Once the callback
// returns, it gets no further event and nothing of the node keeps running.
func TestStopAbandonsStuckCallback(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	release := make(chan struct{})
	released := false
	t.Cleanup(func() { // the test failed before releasing it
		if !released {
			close(release)
		}
	})
	entered := make(chan *PartitionChangeEvent, 1)
	var calls atomic.Int32
	o := fastOptions(t, "node-1")
	ck, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ck.OnNodeJoin(func(*NodeJoinEvent) {}) // a callback that is idle when Stop comes
	ck.OnPartitionChange(func(e *PartitionChangeEvent) {
		calls.Add(1)
		select {
		case entered <- e:
		default:
		}
		<-release
	})
	if err := ck.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var stuckOn *PartitionChangeEvent
	select {
	case stuckOn = <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the callback was not called")
	}
	addr := ck.ln.Addr().String()

	start := time.Now()
	err = ck.Stop(context.Background())
	took := time.Since(start)
	t.Logf("Stop after %v: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, ErrCallbackStuck) {
		t.Fatalf("Stop = %v, want ErrCallbackStuck", err)
	}
	if took < CallbackStopTimeout || took > CallbackStopTimeout+4*time.Second {
		t.Errorf("Stop took %v, want %v plus a little", took, CallbackStopTimeout)
	}
	msg := err.Error()
	for _, want := range []string{"OnPartitionChange", "callback-2-partition-change",
		fmt.Sprintf("seq (%d, %d)", stuckOn.Seq.Index, stuckOn.Seq.Sub), "abandoned"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Stop's error does not say %q: %v", want, msg)
		}
	}
	if m := regexp.MustCompile(`running for (\S+) `).FindStringSubmatch(msg); m == nil {
		t.Errorf("Stop's error does not say how long the callback has been running: %v", msg)
	} else if d, err := time.ParseDuration(m[1]); err != nil || d < CallbackStopTimeout {
		t.Errorf("running for %q, want at least %v (it was called before Stop)", m[1], CallbackStopTimeout)
	}
	if strings.Contains(msg, "OnNodeJoin") || strings.Contains(msg, "future") {
		t.Errorf("Stop's error names more than the stuck callback: %v", msg)
	}
	if again := ck.Stop(context.Background()); again != err {
		t.Errorf("second Stop = %v, want the first one's error", again)
	}

	// The node is stopped although the callback still runs.
	select {
	case <-ck.Done():
	default:
		t.Error("Done is not closed")
	}
	if h := ck.HealthCheck(); h.RaftState != raft.Shutdown.String() || h.Healthy {
		t.Errorf("after Stop: raft state %s, healthy %v", h.RaftState, h.Healthy)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("the node's port %s is still taken after Stop: %v", addr, err)
	} else {
		ln.Close()
	}
	if _, _, err := ck.GetCustomData("k"); err == nil {
		t.Error("custom data still served after Stop")
	}

	// Released, the callback returns and its actor stops without another call.
	close(release)
	released = true
	goleak.VerifyNone(t, ignore)
	if n := calls.Load(); n != 1 {
		t.Errorf("the callback was called %d times, want 1 (no event after Stop began)", n)
	}
}

// TestStopWaitsForRunningCallback: a callback in a 100 ms call when Stop
// comes finishes it, gets no further event, and Stop returns nil.
func TestStopWaitsForRunningCallback(t *testing.T) {
	leakCheck(t)
	entered := make(chan struct{}, 1)
	var calls atomic.Int32
	var returned atomic.Bool
	o := fastOptions(t, "node-1")
	ck, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ck.OnPartitionChange(func(*PartitionChangeEvent) {
		calls.Add(1)
		select {
		case entered <- struct{}{}:
		default:
		}
		time.Sleep(100 * time.Millisecond) // the work Stop must wait for
		returned.Store(true)
	})
	if err := ck.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the callback was not called")
	}
	start := time.Now()
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatalf("Stop = %v, want nil", err)
	}
	if !returned.Load() {
		t.Error("Stop returned while the callback was still in its call")
	}
	if took := time.Since(start); took > CallbackStopTimeout/2 {
		t.Errorf("Stop took %v", took)
	}
	// 64 PartitionChange events were queued; at most the one in progress
	// when Stop began ran.
	if n := calls.Load(); n > 2 {
		t.Errorf("the callback ran %d times; no call should start after Stop", n)
	}
}
