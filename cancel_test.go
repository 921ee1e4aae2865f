package clusterkit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// promptly bounds how long a cancelled call may take to return after its
// context ends: the 50 ms, which these paths meet by a wide margin
// (they select on ctx.Done; nothing else runs between the cancel and the
// return).
const promptly = 50 * time.Millisecond

// cancelAfter runs call with a context cancelled after d, and returns its
// error and how long it took to return after the cancel.
func cancelAfter(d time.Duration, call func(context.Context) error) (error, time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelledAt time.Time
	timer := time.AfterFunc(d, func() {
		cancelledAt = time.Now()
		cancel()
	})
	defer timer.Stop()
	err := call(ctx)
	returned := time.Now()
	if cancelledAt.IsZero() {
		return err, -1 // returned before the cancel
	}
	return err, returned.Sub(cancelledAt)
}

// TestStartCancelled: a Start that waits for a cluster that never answers
// returns ctx.Err() promptly once ctx is cancelled, with the node stopped
// and nothing left running.
func TestStartCancelled(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.JoinAddrs = []string{freeAddr(t)} // nobody listens there
	ck, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	err, took := cancelAfter(300*time.Millisecond, ck.Start)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	if took < 0 || took > promptly {
		t.Fatalf("Start returned %v after the cancel, want within %v", took, promptly)
	}
	t.Logf("Start returned %v after the cancel", took)
	select {
	case <-ck.Done():
	default:
		t.Fatal("the node is not stopped after a cancelled Start")
	}
	if err := ck.Start(context.Background()); !errors.Is(err, ErrAlreadyStarted) && !errors.Is(err, ErrStopped) {
		t.Fatalf("second Start = %v", err)
	}
}

// noQuorum starts three nodes and stops the other two, so that anything
// node 1 proposes waits: there is no majority to commit it, nor a leader to
// take it (node 1 steps down once its lease runs out).
func noQuorum(t *testing.T) *ClusterKit {
	t.Helper()
	nodes := startCluster(t, 3, nil, nil)
	for _, n := range nodes[1:] {
		if err := n.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ck := nodes[0]
	waitFor(t, 10*time.Second, "node 1 to step down", func() bool { return ck.raft.State() != raft.Leader })
	return ck
}

// TestWritesCancelled: a custom-data write or a Leave that cannot commit
// (no quorum) returns ctx.Err() promptly when ctx is cancelled, and leaves
// the node as it was: running, a member, the key unwritten.
func TestWritesCancelled(t *testing.T) {
	leakCheck(t)
	ck := noQuorum(t)
	calls := map[string]func(context.Context) error{
		"SetCustomData": func(ctx context.Context) error {
			_, err := ck.SetCustomData(ctx, "cancelled", []byte("v"))
			return err
		},
		"CompareAndSetCustomData": func(ctx context.Context) error {
			_, err := ck.CompareAndSetCustomData(ctx, "cancelled", 0, []byte("v"))
			return err
		},
		"DeleteCustomData": func(ctx context.Context) error {
			_, err := ck.DeleteCustomData(ctx, "cancelled")
			return err
		},
		"RemoveNode": func(ctx context.Context) error { return ck.RemoveNode(ctx, "node-2") },
		"Barrier":    ck.Barrier,
		"Leave":      ck.Leave,
	}
	for _, name := range []string{"SetCustomData", "CompareAndSetCustomData", "DeleteCustomData", "RemoveNode", "Barrier", "Leave"} {
		err, took := cancelAfter(200*time.Millisecond, calls[name])
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s = %v, want context.Canceled", name, err)
		}
		if took < 0 || took > promptly {
			t.Fatalf("%s returned %v after the cancel, want within %v", name, took, promptly)
		}
		t.Logf("%s returned %v after the cancel", name, took)
		if l := ck.lifecycle(); l != "running" {
			t.Fatalf("after a cancelled %s the node is %s, want running", name, l)
		}
		if _, member := ck.fsm.View().Member(ck.GetMyNodeID()); !member {
			t.Fatalf("after a cancelled %s the node is no longer a member", name)
		}
		if _, _, err := ck.GetCustomData("cancelled"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("after a cancelled %s: GetCustomData = %v, want ErrKeyNotFound", name, err)
		}
	}
}
