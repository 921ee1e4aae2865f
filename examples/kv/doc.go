// Command kv is a replicated in-memory key/value store built on ClusterKit,
// the actor way: ClusterKit decides who owns which partition, one actor per
// node owns the data and reacts to the cluster's events.
//
//	go run ./examples/kv -id node-1 -http 127.0.0.1:8081 -kv 127.0.0.1:9081 -data-dir /tmp/kv1
//	go run ./examples/kv -id node-2 -http 127.0.0.1:8082 -kv 127.0.0.1:9082 -data-dir /tmp/kv2 -join 127.0.0.1:8081
//
// or, for three nodes in one process and a narrated failover (cluster.go):
//
//	go run ./examples/kv -cluster
//
// Each node serves the kv API on the address it registers as its "kv"
// service: GET/PUT/DELETE /kv/{key}, GET /ready, and for the other nodes
// POST /internal/replicate and GET /internal/partitions/{id}.
//
// The store actor (store.go), subscribed with ck.Subscribe(pid, OnlyMine()),
// is the only code that touches the data. The node declares Options.Handoff:
// a partition it gains is "syncing" (never primary) until the store replies
// PartitionReady. PartitionChange with action load: copy the partition from
// CopyFromNodes (its ready owners) in order, then from its other current
// owners, with backoff, for up to 30 s (NoLiveSource: start it empty and
// log a warning), then acknowledge. Action release: every new owner is
// ready and the flip is committed, so the data is dropped at once. A stop
// (SIGTERM) first hands the node's primaries over (ClusterKit.HandOverPrimaries) while
// the kv API still serves, then closes it. NodeRejoin of itself: what it held before the restart is
// stale (in memory, nothing is left), every partition waits for the reload
// that follows. NodeLeave of itself: drop everything. RebalanceComplete:
// partitions the table moved away stop serving clients and are dropped
// after a hand-off grace, during which the new owners may copy them. A
// partition serves clients only once loaded (503 "loading" before); GET
// /ready is true once the node is a member and all it holds is loaded.
//
// Modes (modes.go): -replication sync (the default, below) or async (the
// primary acknowledges after its own write and replicates in the
// background, in order, through a bounded queue per replica: async.go),
// and -routing client (the smart client routes; other nodes answer
// not_owner) or server (any node forwards to the primary: forward.go). The
// README states each mode's promise; -story runs one mode's story on 10
// nodes, -bench measures the three (stories.go, bench.go). What follows
// is sync replication; under async a replica may lag its primary by the
// writes still queued, and a primary's crash loses them; a new primary
// serves once its live predecessor delivered them (fence.go).
//
// Consistency: primary-backup, last writer wins per key. A write goes to
// the partition's primary; any other node answers 421 "not_owner" naming
// it. The primary's actor versions the write above every version it has
// seen (a hybrid logical clock: a new primary supersedes its predecessor),
// applies it, and the primary sends it to every replica in parallel; it
// answers once every reachable replica applied it, and at least a majority
// of the owners hold it (503 no_quorum otherwise). A replica that refuses
// the connection is skipped: it is down, and reloads the partition when it
// rejoins; one that was reached but does not answer in time fails the write
// (503: it may or may not have applied it, and would not reload). Each
// write carries the primary's partition epoch; a node whose table is newer
// refuses it (the client gets 503 and retries; the write may be visible on
// the primary meanwhile), and a node serves a copy only once its table
// reached the loader's epoch. So an acknowledged write is in the copy or
// was sent to the loader, which takes writes while loading and merges by
// version. Deletes are kept as tombstones. Reads go to the primary, then
// the replicas; all have every acknowledged write, except a replica that
// was unreachable for a moment without restarting (a production store adds
// hinted hand-off or anti-entropy for that).
//
// Client (client.go) routes with ClusterKit's typed gateway client,
// httpgw/client: its Router maps each key to its partition locally from
// hash_config and holds the owners, as nodes that carry their "kv" service
// address; it follows a node's event stream (GET /events) to refresh the
// table as soon as it changes, and polls GET /cluster with its ETag as a
// backstop. The client reads nothing of ClusterKit's gateway by hand; the
// kv API (/kv, /ready, /internal) is the store's own JSON. On any failure
// it refreshes the table (through another node if the one it follows is
// down) and retries, bounded.
package main

//go:generate go run . -stories-readme README.md
