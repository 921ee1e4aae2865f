// Package clusterkit is cluster coordination for Go applications that keep
// their own data: which partition a key belongs to, which nodes own each
// partition, who is alive, who leads, when data must move, and an event for
// every change. It is an actor system (protoactor-go) around a Raft-replicated
// cluster state (hashicorp/raft).
//
// Quick start:
//
//	ck, err := clusterkit.New(clusterkit.Options{NodeID: "node-1", HTTPAddr: ":8080"})
//	if err != nil { ... }
//	ck.OnPartitionChange(func(e *clusterkit.PartitionChangeEvent) { ... })
//	if err := ck.Start(ctx); err != nil { ... }
//	defer ck.Stop(context.Background())
//	p, _ := ck.GetPartition("user:123")
//	if ck.IsPrimary(p) { ... }
//
// Every call that waits on the network, on Raft or on a peer takes a context
// and returns ctx.Err() promptly when it ends; lookups (GetPartition,
// IsPrimary, GetReplicas, ...) take none and neither lock nor allocate.
// Events reach an application three ways, all in the same seq order: an
// actor (Subscribe), a Go iterator (Events) or callbacks (On...).
//
// The files of this package, one concern each: lifecycle.go (Start, Stop),
// identity.go (node identity, cluster ID, data directory), raftconfig.go
// (Raft and cluster configuration), wiring.go (the actor tree and the HTTP
// server), network.go (addresses), reads.go (lookups and waiting for state),
// membership.go (Leave, RemoveNode), customdata.go, events.go, types.go
// (the facade's types), options.go, errors.go, metrics.go.
//
// Packages raftfsm and httpgw are this module's implementation, with no
// compatibility promise; a Go client of the HTTP gateway is httpgw/client,
// and the test harness is actors/actortest.
package clusterkit
