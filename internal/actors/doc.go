// Package actors is ClusterKit's actor tree: the implementation of a node,
// with no compatibility promise (an application's own actors use the public
// package github.com/clusterkit/clusterkit/actors). One root actor per node,
// "clusterkit/<node-id>", supervises:
//
//	state       owns *raft.Raft: proposes commands, receives every applied entry
//	            from the FSM, tracks leadership
//	partitions  turns applied entries into lifecycle events, in log order
//	rebalancer  on the leader only: debounces membership changes, runs
//	            placement and proposes new tables through state
//	hooks       the event dispatcher: subscriptions (watched user PIDs),
//	            filters, ordered delivery, one child actor per Go callback
//
// No actor blocks inside Receive on a future or on raft: slow work runs in a
// goroutine that sends its result back as a message. Mailboxes are unbounded
// and their lengths are counted in Stats.
package actors
