// Package handoffcheck checks the partition hand-off invariants on one
// committed step (the view before an entry and the view after it). The
// deterministic simulation (internal/actors) and the fault suite on real
// nodes (actors/actortest) share it, so both prove the same rules:
//
//	(a) the primary of every partition is a ready owner, unless none is;
//	(b) a partition that had a ready owner on a node that is still a member
//	    keeps at least one ready owner;
//	(c) in an entry the planner proposed, a node that gains a new syncing
//	    copy has at most MaxMovesPerNode syncing copies, and the cluster at
//	    most the in-flight limit. Only planner entries that add copies are
//	    checked: a rejoined node's reload turns its ready copies syncing
//	    outside the throttle, by design (its data may be stale whatever the
//	    throttle), and the state machine's own repairs (an owner dropped on
//	    a removal, MarkReady, DrainNode) only remove or ready copies; so a
//	    node may be over the limit after a reload, and then the planner
//	    must add nothing to it until it is back under;
//	(d) the committed primary, ready and still a member, is never released
//	    in the entry that replaces it as primary.
package handoffcheck

import (
	"fmt"
	"slices"

	"github.com/clusterkit/clusterkit/internal/handoff"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Entry is what the checks need to know about the entry between two views.
type Entry struct {
	// Planner: the entry is a partition table the rebalancer proposed.
	Planner bool
	// Reload lists the nodes whose copies the entry reloads.
	Reload []string
	// Limits are the throttles in force (only the move limits are used).
	Limits handoff.Limits
}

// Step returns the invariants that the step from prev to next breaks, one
// line each (none: it keeps them all).
func Step(prev, next *raftfsm.View, e Entry) []string {
	if next == nil || !next.HasTable() {
		return nil
	}
	var out []string
	isMember := func(id string) bool { _, ok := next.Member(id); return ok }
	syncingPer := map[string]int{}
	gained := map[string]bool{}
	totalSyncing := 0
	for n := range next.PartitionCount() {
		a := next.Assignment(n)
		owners := a.GetOwners()
		ready := ReadyOwners(a)
		if len(owners) > 0 && len(ready) > 0 && SyncingAt(a, 0) {
			out = append(out, fmt.Sprintf("(a) partition %d: primary %s is syncing while %v are ready", n, owners[0], ready))
		}
		var p *messages.PartitionAssignment
		if prev != nil && prev.HasTable() && n < prev.PartitionCount() {
			p = prev.Assignment(n)
		}
		if p != nil && len(ready) == 0 && slices.ContainsFunc(ReadyOwners(p), isMember) {
			out = append(out, fmt.Sprintf("(b) partition %d lost its last ready owner: %v%v -> %v%v", n, p.GetOwners(), p.GetSyncing(), owners, a.GetSyncing()))
		}
		if p != nil && len(p.GetOwners()) > 0 && !SyncingAt(p, 0) && isMember(p.GetOwners()[0]) {
			old := p.GetOwners()[0]
			if (len(owners) == 0 || owners[0] != old) && !slices.Contains(owners, old) {
				out = append(out, fmt.Sprintf("(d) partition %d: primary %s released in the entry that replaced it: %v -> %v", n, old, p.GetOwners(), owners))
			}
		}
		for i, id := range owners {
			if !SyncingAt(a, i) {
				continue
			}
			syncingPer[id]++
			totalSyncing++
			if p == nil {
				gained[id] = true
				continue
			}
			if j := slices.Index(p.GetOwners(), id); j < 0 || !SyncingAt(p, j) {
				gained[id] = true
			}
		}
	}
	if !e.Planner {
		return out
	}
	lim := e.Limits
	addedByThrottle := false
	for id := range gained {
		if slices.Contains(e.Reload, id) {
			continue // a reload is outside the throttle
		}
		addedByThrottle = true
		if lim.MaxMovesPerNode > 0 && syncingPer[id] > lim.MaxMovesPerNode {
			out = append(out, fmt.Sprintf("(c) node %s has %d syncing copies after a planner entry (MaxMovesPerNode %d)", id, syncingPer[id], lim.MaxMovesPerNode))
		}
	}
	if addedByThrottle && lim.MaxMovesInFlight > 0 && totalSyncing > lim.MaxMovesInFlight {
		out = append(out, fmt.Sprintf("(c) %d syncing copies after a planner entry (in-flight limit %d)", totalSyncing, lim.MaxMovesInFlight))
	}
	return out
}

// SyncingAt reports whether owner i of a is syncing.
func SyncingAt(a *messages.PartitionAssignment, i int) bool { return a.LoadEpoch(i) != 0 }

// ReadyOwners returns a's ready owners, in order.
func ReadyOwners(a *messages.PartitionAssignment) []string {
	var out []string
	for i, id := range a.GetOwners() {
		if !SyncingAt(a, i) {
			out = append(out, id)
		}
	}
	return out
}

// Unsettled describes the partitions of v that still have a target (a
// hand-off in progress), one line each.
func Unsettled(v *raftfsm.View) []string {
	var out []string
	if v == nil || !v.HasTable() {
		return nil
	}
	for n := range v.PartitionCount() {
		if a := v.Assignment(n); len(a.GetTarget()) > 0 {
			out = append(out, fmt.Sprintf("%d: %v%v -> %v", n, a.GetOwners(), a.GetSyncing(), a.GetTarget()))
		}
	}
	return out
}
