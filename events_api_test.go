package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEventsIterator: Events yields the committed events in seq order, the
// same seqs a callback gets, and ends without an error when ctx ends.
func TestEventsIterator(t *testing.T) {
	leakCheck(t)
	ck := startNode(t, fastOptions(t, "node-1"))
	waitDelivered(t, ck)

	var mu sync.Mutex
	var fromCallback []Seq
	remove := ck.OnCustomDataChange(func(e *CustomDataChangeEvent) {
		mu.Lock()
		fromCallback = append(fromCallback, e.Seq)
		mu.Unlock()
	})
	defer remove()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		events []Event
		err    error
	}
	full := make(chan struct{})
	done := make(chan result, 1)
	// Events subscribes when called: every write below is in the stream.
	events := ck.Events(ctx, WithKinds(EventCustomDataChange))
	go func() {
		var r result
		for e, err := range events {
			if err != nil {
				r.err = err
				break
			}
			r.events = append(r.events, e)
			if len(r.events) == 3 {
				close(full) // all read; the loop now waits for ctx to end
			}
		}
		done <- r
	}()
	var versions []uint64
	for i := range 3 {
		v, err := ck.SetCustomData(context.Background(), fmt.Sprintf("k%d", i), []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	select {
	case <-full:
	case <-time.After(10 * time.Second):
		t.Fatal("Events did not yield the three custom-data events")
	}
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the iteration did not end after ctx was cancelled")
	}
	if r.err != nil {
		t.Fatalf("iteration ended with %v, want no error after a cancel", r.err)
	}
	for i, e := range r.events {
		if e.Kind != EventCustomDataChange || e.CustomDataChange == nil || e.CustomDataChange.Seq != e.Seq {
			t.Fatalf("event %d = %+v, want a custom-data change with its seq", i, e)
		}
		if i > 0 && !r.events[i-1].Seq.Less(e.Seq) {
			t.Fatalf("events out of order: %v then %v", r.events[i-1].Seq, e.Seq)
		}
	}
	for i, e := range r.events {
		if e.Seq.Index != versions[i] || e.CustomDataChange.Version != versions[i] {
			t.Fatalf("event %d at %v (version %d), want the write committed at index %d", i, e.Seq, e.CustomDataChange.Version, versions[i])
		}
	}
	// The callback saw the same seqs (the iterator's are a suffix of them).
	waitFor(t, 5*time.Second, "the callback's events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fromCallback) >= len(r.events)
	})
	mu.Lock()
	tail := fromCallback[len(fromCallback)-len(r.events):]
	mu.Unlock()
	for i := range tail {
		if tail[i] != r.events[i].Seq {
			t.Fatalf("callback seqs %v, iterator seqs differ at %d (%v)", tail, i, r.events[i].Seq)
		}
	}
}

// TestEventsSlowConsumer: a consumer that stops reading loses only its own
// stream (ErrSlowConsumer, after what was buffered), never anyone else's
// events; the node stopping ends an iteration with ErrStopped.
func TestEventsSlowConsumer(t *testing.T) {
	leakCheck(t)
	ck := startNode(t, fastOptions(t, "node-1"))
	waitDelivered(t, ck)
	var others atomic.Int64
	ck.OnCustomDataChange(func(*CustomDataChangeEvent) { others.Add(1) })

	release := make(chan struct{})
	got := make(chan []error, 1)
	slow := ck.Events(context.Background(), WithKinds(EventCustomDataChange), WithBuffer(2))
	go func() {
		var errs []error
		n := 0
		for _, err := range slow {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n++
			if n == 1 {
				<-release // hold the first event: the stream falls behind
			}
		}
		got <- errs
	}()
	const writes = 10
	for i := range writes {
		if _, err := ck.SetCustomData(context.Background(), fmt.Sprintf("k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the other callback's events", func() bool { return others.Load() == writes })
	close(release)
	select {
	case errs := <-got:
		if len(errs) != 1 || !errors.Is(errs[0], ErrSlowConsumer) || !strings.Contains(errs[0].Error(), "after seq") {
			t.Fatalf("slow consumer errors = %v, want one ErrSlowConsumer naming the last seq", errs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow consumer's iteration did not end")
	}

	// A node that stops ends the iteration with ErrStopped.
	ended := make(chan error, 1)
	all := ck.Events(context.Background())
	go func() {
		var last error
		for _, err := range all {
			last = err
		}
		ended <- last
	}()
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("iteration over a stopped node ended with %v, want ErrStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the iteration")
	}
}

// TestCallbackRemove: after the function an On... returned is called, the
// callback gets no more events (and Stop no longer waits for it).
func TestCallbackRemove(t *testing.T) {
	leakCheck(t)
	ck := startNode(t, fastOptions(t, "node-1"))
	waitDelivered(t, ck)
	var calls atomic.Int64
	remove := ck.OnCustomDataChange(func(*CustomDataChangeEvent) { calls.Add(1) })
	var kept atomic.Int64
	ck.OnCustomDataChange(func(*CustomDataChangeEvent) { kept.Add(1) })
	if _, err := ck.SetCustomData(context.Background(), "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both callbacks called", func() bool { return calls.Load() == 1 && kept.Load() == 1 })
	before := ck.callbacks.Len()
	remove()
	remove() // idempotent
	waitFor(t, 5*time.Second, "the callback's actor gone", func() bool { return ck.callbacks.Len() == before-1 })
	for i := range 3 {
		if _, err := ck.SetCustomData(context.Background(), fmt.Sprintf("b%d", i), []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the kept callback called", func() bool { return kept.Load() == 4 })
	if n := calls.Load(); n != 1 {
		t.Fatalf("a removed callback was called %d times, want 1", n)
	}

	// Removed before Start: never called.
	o := fastOptions(t, "node-2")
	early, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var never atomic.Int64
	early.OnNodeJoin(func(*NodeJoinEvent) { never.Add(1) })()
	var joins atomic.Int64
	early.OnNodeJoin(func(*NodeJoinEvent) { joins.Add(1) })
	if err := early.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer early.Stop(context.Background())
	waitFor(t, 5*time.Second, "the bootstrap NodeJoin", func() bool { return joins.Load() == 1 })
	if never.Load() != 0 {
		t.Fatal("a callback removed before Start was called")
	}
}

// TestWaitTable: WaitTable returns once this node has applied the table
// version asked for, and WaitCluster once its condition holds; both give
// up with ctx.
func TestWaitTable(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 1, nil, nil)
	ck := nodes[0]
	now := ck.GetCluster().TableVersion
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type res struct {
		c   *Cluster
		err error
	}
	got := make(chan res, 2)
	go func() {
		c, err := ck.WaitTable(ctx, now+1)
		got <- res{c, err}
	}()
	go func() {
		c, err := ck.WaitCluster(ctx, func(c *Cluster) bool { return len(c.Nodes) == 2 })
		got <- res{c, err}
	}()
	// A second node: a new table and a second member.
	o := clusterOptions(t, 2, ck.advertise)
	startNode(t, o)
	for range 2 {
		select {
		case r := <-got:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.c.TableVersion <= now && len(r.c.Nodes) != 2 {
				t.Fatalf("returned %d members at table %d, before the change", len(r.c.Nodes), r.c.TableVersion)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("WaitTable/WaitCluster did not return after the change")
		}
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if _, err := ck.WaitTable(short, 1<<62); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitTable of a version that never comes = %v, want context.DeadlineExceeded", err)
	}
	if _, err := ck.WaitCluster(context.Background(), nil); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("WaitCluster(nil) = %v, want ErrInvalidOptions", err)
	}
}
