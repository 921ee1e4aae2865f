package raftfsm

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/handoff"
	"github.com/clusterkit/clusterkit/messages"
)

// The hand-off rules the FSM enforces on every table it commits, whoever
// proposed it (rebalancer.go in internal/actors drives the moves; this file
// only refuses what would break them):
//
//   - an owner is ready (holds the data) or syncing (loading since an epoch);
//   - the primary is a ready owner, unless no owner of the partition is;
//   - a ready owner becomes syncing only when its node must reload (a rejoin),
//     and a syncing owner becomes ready only by its node's MarkReady, or by a
//     forced hand-off the proposer names;
//   - the committed primary is never released in the entry that replaces it:
//     it is demoted first, and released by a later entry;
//   - a partition that has a ready owner keeps one.

// Owner states, as the view and the HTTP API spell them.
const (
	OwnerSyncing = "syncing"
	OwnerReady   = "ready"
)

// PartitionChange actions: what the node an event names must do.
const (
	ActionLoad          = "load"
	ActionBecomePrimary = "become_primary"
	ActionBecomeReplica = "become_replica"
	ActionRelease       = "release"
)

// Details of hand-offs that HandoffTimeout ended.
const (
	DetailTimeoutCancelled = "handoff_timeout_cancelled"
	DetailTimeoutForced    = "handoff_timeout_forced"
)

// maxOwnersFactor bounds an owner list during a hand-off: the target's RF
// owners plus as many being replaced. The planner keeps to the same bound.
const maxOwnersFactor = handoff.MaxOwnersFactor

// readyOwner reports whether id owns p and is ready.
func readyOwner(p *messages.PartitionAssignment, id string) bool {
	i := slices.Index(p.GetOwners(), id)
	return i >= 0 && p.LoadEpoch(i) == 0
}

func anyReady(p *messages.PartitionAssignment) bool {
	for i := range p.GetOwners() {
		if p.LoadEpoch(i) == 0 {
			return true
		}
	}
	return false
}

// settled reports whether p reached its target: the target's owners, all
// ready, led by the target's primary.
func settled(owners []string, syncing []uint64, target []string) bool {
	if len(target) == 0 {
		return true
	}
	if len(owners) != len(target) || owners[0] != target[0] {
		return false
	}
	for i, id := range owners {
		if !slices.Contains(target, id) || (i < len(syncing) && syncing[i] != 0) {
			return false
		}
	}
	return true
}

// normalizeLoads drops q's load lists when every owner is ready (the
// compact form older entries and snapshots have).
func normalizeLoads(q *messages.PartitionAssignment) {
	if !slices.ContainsFunc(q.Syncing, func(v uint64) bool { return v != 0 }) {
		q.Syncing, q.SyncingSince = nil, nil
	}
}

func refSet(refs []*messages.OwnerRef) map[uint32][]string {
	m := map[uint32][]string{}
	for _, r := range refs {
		m[r.GetPartition()] = append(m[r.GetPartition()], r.GetNode())
	}
	return m
}

// buildAssignment validates one proposed partition against its previous
// assignment and returns the committed form (epochs and load epochs
// computed here). now is the entry's time.
func buildAssignment(n int, prev, prop *messages.PartitionAssignment, reload []string, forced []string, rf int,
	isMember func(string) bool, now int64) (*messages.PartitionAssignment, error) {
	owners := prop.GetOwners()
	if len(owners) > maxOwnersFactor*rf {
		return nil, errorf(errInvalidTable, "partition %d has %d owners, at most %d", n, len(owners), maxOwnersFactor*rf)
	}
	if s := prop.GetSyncing(); len(s) != 0 && len(s) != len(owners) {
		return nil, errorf(errInvalidTable, "partition %d: %d syncing flags for %d owners", n, len(s), len(owners))
	}
	for i, id := range owners {
		if !isMember(id) {
			return nil, errorf(errInvalidTable, "partition %d owner %q is not a member", n, id)
		}
		if slices.Contains(owners[:i], id) {
			return nil, errorf(errInvalidTable, "partition %d lists %q twice", n, id)
		}
	}
	target := prop.GetTarget()
	if len(target) > rf {
		return nil, errorf(errInvalidTable, "partition %d target has %d owners, more than RF %d", n, len(target), rf)
	}
	for i, id := range target {
		if !isMember(id) || slices.Contains(target[:i], id) {
			return nil, errorf(errInvalidTable, "partition %d target %q is not a member or is listed twice", n, id)
		}
	}
	ownersChanged := !slices.Equal(prev.GetOwners(), owners)
	reloading := slices.ContainsFunc(owners, func(id string) bool { return slices.Contains(reload, id) })
	epoch := prev.GetEpoch()
	if ownersChanged || reloading {
		epoch++
	}
	syncing := make([]uint64, len(owners))
	since := make([]int64, len(owners))
	hadReady := anyReady(prev)
	for i, id := range owners {
		want := prop.LoadEpoch(i) != 0
		pi := slices.Index(prev.GetOwners(), id)
		was := pi >= 0 && prev.LoadEpoch(pi) != 0
		switch {
		case pi < 0 && want, slices.Contains(reload, id) && want:
			syncing[i], since[i] = epoch, now // a new load
		case pi < 0 || slices.Contains(reload, id):
			// ready at once: the node does not acknowledge loads
		case was && want:
			syncing[i], since[i] = prev.LoadEpoch(pi), prev.LoadSince(pi)
		case was && !want:
			if !slices.Contains(forced, id) {
				return nil, errorf(errInvalidTable, "partition %d: %q is loading; only its MarkReady or a forced hand-off makes it ready", n, id)
			}
		case !was && want:
			return nil, errorf(errInvalidTable, "partition %d: ready owner %q cannot become syncing unless it reloads", n, id)
		}
	}
	next := &messages.PartitionAssignment{Owners: slices.Clone(owners), Epoch: epoch,
		Syncing: syncing, SyncingSince: since}
	normalizeLoads(next)
	if len(owners) > 0 && next.LoadEpoch(0) != 0 && anyReady(next) {
		return nil, errorf(errInvalidTable, "partition %d: primary %q is syncing while a ready owner exists", n, owners[0])
	}
	if pp := prev.GetOwners(); len(pp) > 0 && isMember(pp[0]) && prev.LoadEpoch(0) == 0 &&
		!slices.Contains(owners, pp[0]) && hadReadyOther(prev) {
		return nil, errorf(errInvalidTable, "partition %d: primary %q is released in the entry that replaces it (demote it first)", n, pp[0])
	}
	if hadReady && !anyReady(next) {
		return nil, errorf(errInvalidTable, "partition %d would lose its last ready owner", n)
	}
	if !settled(next.GetOwners(), next.GetSyncing(), target) {
		next.Target = slices.Clone(target)
	}
	if prev != nil && proto.Equal(prev, next) {
		return prev, nil // unchanged: views and snapshots keep sharing it
	}
	return next, nil
}

// hadReadyOther reports whether p has a ready owner besides its primary (a
// primary with no ready replica cannot be demoted first: nothing may lead).
func hadReadyOther(p *messages.PartitionAssignment) bool {
	for i := 1; i < len(p.GetOwners()); i++ {
		if p.LoadEpoch(i) == 0 {
			return true
		}
	}
	return false
}

// applyMarkReady records that a node holds partitions it was loading. An
// acknowledgement names the load's epoch: one for an earlier load, which a
// later one replaced, is ignored (not an error: a late reply is normal).
func (f *FSM) applyMarkReady(index uint64, m *messages.MarkReady, a *Applied) (bool, error) {
	cur, ok := f.members[m.GetId()]
	if !ok {
		return false, errorf(ErrUnknownNode, "%q", m.GetId())
	}
	if m.GetIncarnation() != 0 && m.GetIncarnation() != cur.GetIncarnation() {
		return false, errorf(ErrIncarnationMismatch, "%q is at incarnation %d, not %d", m.GetId(), cur.GetIncarnation(), m.GetIncarnation())
	}
	parts := f.table.GetPartitions()
	var next []*messages.PartitionAssignment
	for _, r := range m.GetPartitions() {
		n := int(r.GetPartition())
		if n >= len(parts) {
			return false, errorf(errInvalidTable, "partition %d does not exist", n)
		}
		p := parts[n]
		if next != nil {
			p = next[n]
		}
		i := slices.Index(p.GetOwners(), m.GetId())
		if i < 0 || p.LoadEpoch(i) == 0 || p.LoadEpoch(i) != r.GetEpoch() {
			continue
		}
		if next == nil {
			next = slices.Clone(parts)
		}
		q := proto.Clone(p).(*messages.PartitionAssignment)
		q.Syncing[i], q.SyncingSince[i] = 0, 0
		normalizeLoads(q)
		if settled(q.GetOwners(), q.GetSyncing(), q.GetTarget()) {
			q.Target = nil
		}
		next[n] = q
		a.Change.Readied = append(a.Change.Readied, uint32(n))
		a.Change.ReadiedBy = m.GetId()
	}
	if next == nil {
		return false, nil
	}
	f.setTable(index, next, f.table.GetSpan(), a)
	return true, nil
}

// applyDrain starts a planned stop of a node: each partition it leads gets
// its first ready owner whose node is active and not draining as primary,
// in one entry. A partition with no such owner keeps its primary (there is
// nobody to hand over to).
func (f *FSM) applyDrain(index uint64, d *messages.DrainNode, a *Applied) (bool, error) {
	cur, ok := f.members[d.GetId()]
	if !ok {
		return false, errorf(ErrUnknownNode, "%q", d.GetId())
	}
	if d.GetIncarnation() != 0 && d.GetIncarnation() != cur.GetIncarnation() {
		return false, errorf(ErrIncarnationMismatch, "%q is at incarnation %d, not %d", d.GetId(), cur.GetIncarnation(), d.GetIncarnation())
	}
	changed := false
	if !cur.GetDraining() {
		next := proto.Clone(cur).(*messages.Member)
		next.Draining = true
		f.members[d.GetId()] = next
		changed = true
	}
	parts := f.table.GetPartitions()
	var out []*messages.PartitionAssignment
	for n, p := range parts {
		owners := p.GetOwners()
		if len(owners) == 0 || owners[0] != d.GetId() {
			continue
		}
		to := -1
		for i := 1; i < len(owners); i++ {
			if p.LoadEpoch(i) == 0 && f.canLead(owners[i]) {
				to = i
				break
			}
		}
		if to < 0 {
			continue
		}
		if out == nil {
			out = slices.Clone(parts)
		}
		q := proto.Clone(p).(*messages.PartitionAssignment)
		q.Owners[0], q.Owners[to] = q.Owners[to], q.Owners[0]
		if len(q.Syncing) > 0 {
			q.Syncing[0], q.Syncing[to] = q.Syncing[to], q.Syncing[0]
			q.SyncingSince[0], q.SyncingSince[to] = q.SyncingSince[to], q.SyncingSince[0]
		}
		q.Epoch++
		if settled(q.GetOwners(), q.GetSyncing(), q.GetTarget()) {
			q.Target = nil
		}
		out[n] = q
	}
	if out != nil {
		f.setTable(index, out, f.table.GetSpan(), a)
		a.Change.Drained = d.GetId()
		changed = true
	}
	return changed, nil
}

// canLead reports whether node id may take a primary role: an active
// member that is not stopping.
func (f *FSM) canLead(id string) bool {
	m, ok := f.members[id]
	return ok && m.GetStatus() == messages.NodeStatus_NODE_STATUS_ACTIVE && !m.GetDraining()
}

// setTable commits parts as the table of entry index with the given
// hand-off span, and ends the span once every partition is settled. Every
// entry that changes the table goes through it, so that none can settle
// the last partition and leave the span (and RebalanceComplete) hanging.
func (f *FSM) setTable(index uint64, parts []*messages.PartitionAssignment, span *messages.RebalanceSpan, a *Applied) {
	if span != nil && !slices.ContainsFunc(parts, func(p *messages.PartitionAssignment) bool { return len(p.GetTarget()) > 0 }) {
		a.Change.SpanClosed = span
		span = nil
	}
	f.table = &messages.PartitionTable{Version: index, Partitions: parts, Span: span}
}
