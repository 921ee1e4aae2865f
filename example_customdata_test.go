package clusterkit_test

// Examples of custom data: small key/value data replicated through Raft,
// written from any node, with compare-and-set and linearizable reads.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clusterkit/clusterkit"
)

// SetCustomData returns once the write is committed and applied on this
// node, with the key's new version (the Raft index of the write).
func ExampleClusterKit_SetCustomData() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	version, err := ck.SetCustomData(ctx, "flags/dark-mode", []byte("on"))
	if err != nil {
		panic(err)
	}
	value, got, _ := ck.GetCustomData("flags/dark-mode")
	fmt.Println(string(value), got == version)

	_, err = ck.SetCustomData(ctx, "", []byte("x"))
	fmt.Println(errors.Is(err, clusterkit.ErrInvalidKey))
	_, err = ck.SetCustomData(ctx, "big", make([]byte, clusterkit.MaxCustomDataValue+1))
	fmt.Println(errors.Is(err, clusterkit.ErrValueTooLarge))
	// Output:
	// on true
	// true
	// true
}

// A cancelled write returns ctx.Err() at once, and nothing is sent when ctx
// has already ended. Once sent, a write may still commit after its caller
// gave up: read the key back (or use compare-and-set) before retrying.
func ExampleClusterKit_SetCustomData_cancelled() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ck.SetCustomData(ctx, "k", []byte("v"))
	fmt.Println(errors.Is(err, context.Canceled))
	_, _, err = ck.GetCustomData("k")
	fmt.Println(errors.Is(err, clusterkit.ErrKeyNotFound))
	// Output:
	// true
	// true
}

// GetCustomData is a local read: the value and version this node has applied.
func ExampleClusterKit_GetCustomData() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, _, err := ck.GetCustomData("config/region")
	fmt.Println(errors.Is(err, clusterkit.ErrKeyNotFound))
	v1, _ := ck.SetCustomData(ctx, "config/region", []byte("eu-west"))
	v2, _ := ck.SetCustomData(ctx, "config/region", []byte("eu-central"))
	value, version, err := ck.GetCustomData("config/region")
	fmt.Println(string(value), version == v2, v2 > v1, err)
	// Output:
	// true
	// eu-central true true <nil>
}

// A linearizable read sees every write acknowledged before it started, on
// whichever node wrote it: it commits a barrier through the leader first.
func ExampleClusterKit_GetCustomDataLinearizable() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	version, err := nodes[0].SetCustomData(ctx, "leader-epoch", []byte("7"))
	if err != nil {
		panic(err)
	}
	value, got, err := nodes[1].GetCustomDataLinearizable(ctx, "leader-epoch")
	fmt.Println(string(value), got == version, err)
	// Output: 7 true <nil>
}

// Custom data is replicated through Raft; compare-and-set makes safe counters.
func ExampleClusterKit_CompareAndSetCustomData() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Create the counter only if it does not exist (expected version 0).
	if _, err := ck.CompareAndSetCustomData(ctx, "jobs", 0, []byte("1")); err != nil {
		panic(err)
	}
	value, version, _ := ck.GetCustomData("jobs")
	// A writer that read an older version loses, and nothing changes.
	_, err := ck.CompareAndSetCustomData(ctx, "jobs", version-1, []byte("99"))
	fmt.Println(string(value), errors.Is(err, clusterkit.ErrVersionMismatch))
	next, err := ck.CompareAndSetCustomData(ctx, "jobs", version, []byte("2"))
	if err != nil {
		panic(err)
	}
	value, now, _ := ck.GetCustomData("jobs")
	fmt.Println(string(value), now == next, ck.ListCustomDataKeys())
	// Output:
	// 1 true
	// 2 true [jobs]
}

// DeleteCustomData returns the Raft index of the deletion.
func ExampleClusterKit_DeleteCustomData() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	written, _ := ck.SetCustomData(ctx, "session/42", []byte("alice"))
	deleted, err := ck.DeleteCustomData(ctx, "session/42")
	fmt.Println(deleted > written, err)
	_, err = ck.DeleteCustomData(ctx, "session/42")
	fmt.Println(errors.Is(err, clusterkit.ErrKeyNotFound))
	// Output:
	// true <nil>
	// true
}

// ListCustomDataKeys returns every key, sorted (a local read).
func ExampleClusterKit_ListCustomDataKeys() {
	ck := startNode(exampleOptions("node-1"))
	defer ck.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, k := range []string{"flags/b", "config/a", "flags/a"} {
		if _, err := ck.SetCustomData(ctx, k, []byte("1")); err != nil {
			panic(err)
		}
	}
	fmt.Println(ck.ListCustomDataKeys())
	// Output: [config/a flags/a flags/b]
}

// Barrier returns once this node has applied everything committed before
// the call: a follower's local reads then see every write acknowledged
// anywhere before it.
func ExampleClusterKit_Barrier() {
	nodes := startCluster(2, nil)
	defer stopAll(nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := nodes[0].SetCustomData(ctx, "a", []byte("1")); err != nil {
		panic(err)
	}
	if _, err := nodes[0].SetCustomData(ctx, "b", []byte("2")); err != nil {
		panic(err)
	}
	if err := nodes[1].Barrier(ctx); err != nil {
		panic(err)
	}
	fmt.Println(nodes[1].ListCustomDataKeys())
	// Output: [a b]
}
