// Package testhook connects the test harness to what the public API does
// not expose. The root package fills the functions in when it is
// initialised; only tests call them.
package testhook

import "github.com/clusterkit/clusterkit/raftfsm"

// ObserveApplied makes the node that is created from opts (a
// *clusterkit.Options) call fn with every entry it applies, on Raft's FSM
// goroutine, before the entry's events: the fault suite checks the hand-off
// invariants on every committed step with it. fn must be quick and must not
// block.
var ObserveApplied func(opts any, fn func(*raftfsm.Applied))
