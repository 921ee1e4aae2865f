package main

import "fmt"

// Replication says when a primary acknowledges a write.
type Replication string

const (
	// ReplicationSync acknowledges a write once every live owner of its
	// partition holds it, and never with fewer than a majority of the
	// owners (the primary counts). All live owners, not a quorum of them:
	// ClusterKit promotes any ready replica when a primary fails, without
	// asking which one has the newest data, so each live replica must hold
	// every acknowledged write. The majority floor refuses a write that only
	// the primary would hold (a kill of it would lose the write): with RF 3
	// and both replicas down, writes fail (503 no_quorum) rather than risk it.
	ReplicationSync Replication = "sync"
	// ReplicationAsync acknowledges a write once the primary applied it; a
	// background replicator per replica sends the writes in order, in
	// batches. Its queue is bounded: when a replica's queue is full, the
	// write is refused (503 busy) before it is applied, and the client
	// retries. What a primary crash can lose is what its queues held.
	ReplicationAsync Replication = "async"
)

// Routing says who finds a key's primary.
type Routing string

const (
	// RoutingClient: the smart client routes from GET /cluster; a node
	// answers a request for a key it does not serve with 421 not_owner.
	RoutingClient Routing = "client"
	// RoutingServer: any node accepts any key and forwards it to the
	// primary (a read is served by a local loaded owner under sync
	// replication), so that a plain HTTP client (curl) may use any node.
	RoutingServer Routing = "server"
)

// Set implements flag.Value.
func (r *Replication) Set(s string) error {
	switch v := Replication(s); v {
	case ReplicationSync, ReplicationAsync:
		*r = v
		return nil
	}
	return fmt.Errorf("replication %q: want sync or async", s)
}

func (r *Replication) String() string { return string(*r) }

// Set implements flag.Value.
func (r *Routing) Set(s string) error {
	switch v := Routing(s); v {
	case RoutingClient, RoutingServer:
		*r = v
		return nil
	}
	return fmt.Errorf("routing %q: want client or server", s)
}

func (r *Routing) String() string { return string(*r) }

// defaultAsyncQueue bounds each replica's queue on an async primary, in
// writes: a replica that falls this far behind slows the writers down
// (refusals they retry) instead of growing the loss window without bound.
const defaultAsyncQueue = 1024
