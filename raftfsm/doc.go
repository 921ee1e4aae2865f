// Package raftfsm is ClusterKit's replicated state machine, part of its
// implementation: it exports only what the module's other packages need, and
// makes no compatibility promise (applications use the root package's
// types). It holds the command codec,
// a deterministic Apply, Snapshot/Restore of the whole state, and the immutable
// routing View published through an atomic.Pointer after every change.
//
// Apply never reads the clock, never blocks on an actor, never calls user code
// and holds no lock that user code can hold: it mutates the state, publishes a
// new View and hands an Applied record to a non-blocking notifier. Everything
// slow (events, rebalancing, hooks) happens in actors after that.
//
// The pure helpers Events and computeHealth turn Applied records and views into
// lifecycle events; they are deterministic, so every node derives the same
// event sequence from the same log.
package raftfsm
