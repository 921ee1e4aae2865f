package actors

import (
	"context"
	"testing"
	"time"
)

// TestCallbackRegistry: a call in progress is reported with its hook and
// seq until it ends; after StopCalls no call starts, and WaitIdle returns as
// soon as the running one ends, or at the deadline with those still running.
func TestCallbackRegistry(t *testing.T) {
	r := NewCallbackRegistry()
	named := r.add("callback-1-partition-change", "OnPartitionChange")
	unnamed := r.add("callback-2-custom", "")
	if !named.begin(change(7, 2, "node-1")) || !unnamed.begin(join(8, 0, "node-2")) {
		t.Fatal("a call was refused before StopCalls")
	}
	unnamed.end()
	running := r.Running()
	if len(running) != 1 || running[0].Hook != "OnPartitionChange" || running[0].Name != "callback-1-partition-change" ||
		running[0].Seq != (Seq{Index: 7, Sub: 2}) || running[0].For <= 0 {
		t.Fatalf("Running = %+v, want the partition-change call on seq (7, 2)", running)
	}

	r.StopCalls()
	if unnamed.begin(join(9, 0, "node-3")) {
		t.Fatal("a call started after StopCalls")
	}
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(50*time.Millisecond))
	defer cancel()
	stuck := r.WaitIdle(ctx)
	if len(stuck) != 1 || stuck[0].Hook != "OnPartitionChange" || stuck[0].For < 50*time.Millisecond {
		t.Fatalf("WaitIdle at the deadline = %+v, want the partition-change call, running 50 ms or more", stuck)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("WaitIdle returned after %v, before its deadline", took)
	}

	go func() {
		time.Sleep(20 * time.Millisecond)
		named.end()
	}()
	start = time.Now()
	if stuck := r.WaitIdle(context.Background()); len(stuck) != 0 {
		t.Fatalf("WaitIdle = %+v after the last call ended", stuck)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("WaitIdle waited %v for a call that ended after 20 ms", took)
	}

	// Without a registry (actor tests), callbacks are not tracked but run.
	var none *CallbackRegistry
	if s := none.add("callback-3", ""); !s.begin(join(1, 0, "node-1")) {
		t.Fatal("an untracked callback was refused")
	}
}
