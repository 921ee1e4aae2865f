// Package handoff is the pure core of partition hand-off: given the
// committed current table (owners, each syncing or ready) and the target
// placement computed, it returns the next step towards the target, within
// the throttles. The rebalancer actor proposes each step as one committed
// entry; the FSM re-checks the rules. No I/O, no clock: time comes in.
//
// A primary move A → B, in committed steps:
//
//	add B (syncing) → B acknowledges (ready) → B becomes primary → A released
//
// A replica move adds the new owner the same way and releases the old one
// once the whole target is ready. An owner whose node does not acknowledge
// loads (no hand-off handling) is added ready at once, so a move into it
// takes one step, or two for a primary (the old primary is released only
// after the flip is committed).
package handoff

import (
	"math"
	"slices"
	"time"
)

// Owner is one owner of a partition.
type Owner struct {
	ID      string
	Syncing bool
	// Since is when its load began (unix ns), for HandoffTimeout.
	Since int64
}

// Partition is one partition's committed assignment.
type Partition struct {
	Owners []Owner  // Owners[0] is the primary
	Target []string // nil: settled
}

// Member is what the planner needs to know about a member.
type Member struct {
	// Handoff: the node acknowledges loads; a new owner on it starts syncing.
	Handoff bool
	// Lead: it may be primary (active and not draining).
	Lead bool
}

// Limits are the throttles and timeouts.
type Limits struct {
	// MaxMovesPerNode bounds the syncing copies into or out of one node.
	MaxMovesPerNode int
	// MaxMovesInFlight bounds the syncing copies in the cluster.
	MaxMovesInFlight int
	// HandoffTimeout bounds one copy (0: no bound).
	HandoffTimeout time.Duration
}

// InFlightLimit is Akka's rule for a cluster-wide limit: the smaller of an
// absolute limit and a fraction of the partitions (at least 1); a zero
// absolute or fraction is no limit of that kind; both zero is no limit.
func InFlightLimit(absolute int, fraction float64, partitions int) int {
	limit := math.MaxInt
	if absolute > 0 {
		limit = absolute
	}
	if fraction > 0 {
		limit = min(limit, max(1, int(math.Ceil(fraction*float64(partitions)))))
	}
	return limit
}

// Ref names one owner of one partition.
type Ref struct {
	Partition int
	Node      string
}

// Input is one planning step's input.
type Input struct {
	Parts   []Partition
	Members map[string]Member
	Limits  Limits
	Now     int64 // unix ns
	// Skip, when set, reports (partition, node) pairs not to add now (a
	// move cancelled by HandoffTimeout waits before it is tried again).
	Skip func(partition int, node string) bool
}

// Output is the next step.
type Output struct {
	Parts []Partition
	// Changed reports whether Parts differs from the input.
	Changed bool
	// Forced are syncing owners made ready by HandoffTimeout (no ready owner
	// was left), Cancelled the ones dropped by it.
	Forced, Cancelled []Ref
	// Added counts the owners this step adds; Pending the target owners
	// that are not ready owners after it; InFlight the syncing copies.
	Added, Pending, InFlight int
	// Waiting counts moves held back by the throttles.
	Waiting int
}

func index(owners []Owner, id string) int {
	return slices.IndexFunc(owners, func(o Owner) bool { return o.ID == id })
}

func hasReady(owners []Owner) bool {
	return slices.ContainsFunc(owners, func(o Owner) bool { return !o.Syncing })
}

// Settled reports whether p is at its target: the target's owners, all ready,
// led by the target's primary.
func Settled(p Partition) bool {
	if len(p.Target) == 0 {
		return true
	}
	if len(p.Owners) != len(p.Target) || p.Owners[0].ID != p.Target[0] {
		return false
	}
	for _, o := range p.Owners {
		if o.Syncing || !slices.Contains(p.Target, o.ID) {
			return false
		}
	}
	return true
}

// Step computes the next step. Partitions are visited most urgent first
// (fewest ready owners, then by number), so throttled copies go where a
// partition is short of data before where it is only unbalanced.
func Step(in Input) Output {
	out := Output{Parts: make([]Partition, len(in.Parts))}
	load := map[string]int{} // syncing copies into or out of each node
	inFlight := 0
	for _, p := range in.Parts {
		if !slices.ContainsFunc(p.Owners, func(o Owner) bool { return o.Syncing }) {
			continue
		}
		for _, o := range p.Owners {
			switch {
			case o.Syncing:
				load[o.ID]++
				inFlight++
			case !slices.Contains(p.Target, o.ID) && len(p.Target) > 0:
				load[o.ID]++ // being replaced: its copy is going out
			}
		}
	}
	order := make([]int, len(in.Parts))
	for i := range order {
		order[i] = i
	}
	readyCount := func(p Partition) int {
		n := 0
		for _, o := range p.Owners {
			if !o.Syncing {
				n++
			}
		}
		return n
	}
	slices.SortStableFunc(order, func(a, b int) int { return readyCount(in.Parts[a]) - readyCount(in.Parts[b]) })

	for _, n := range order {
		p := in.Parts[n]
		q := Partition{Owners: slices.Clone(p.Owners), Target: slices.Clone(p.Target)}
		changed := false

		// 1. HandoffTimeout: cancel a stuck copy when another owner is ready,
		// force it when none is (it is the best there is).
		if t := in.Limits.HandoffTimeout; t > 0 {
			for i := 0; i < len(q.Owners); i++ {
				o := q.Owners[i]
				if !o.Syncing || o.Since == 0 || in.Now-o.Since < int64(t) {
					continue
				}
				others := slices.ContainsFunc(q.Owners, func(x Owner) bool { return !x.Syncing && x.ID != o.ID })
				if others {
					q.Owners = slices.Delete(q.Owners, i, i+1)
					out.Cancelled = append(out.Cancelled, Ref{n, o.ID})
					load[o.ID]--
					inFlight--
					i--
				} else {
					q.Owners[i].Syncing, q.Owners[i].Since = false, 0
					out.Forced = append(out.Forced, Ref{n, o.ID})
					load[o.ID]--
					inFlight--
				}
				changed = true
			}
		}
		if len(q.Target) > 0 {
			// 2. Add the target's missing owners, within the throttles.
			source := hasReady(q.Owners)
			var leaving string
			for _, o := range q.Owners {
				if !slices.Contains(q.Target, o.ID) {
					leaving = o.ID
					break
				}
			}
			for _, id := range q.Target {
				m, member := in.Members[id]
				if !member || index(q.Owners, id) >= 0 {
					continue
				}
				// A partition with no owner left takes its target's owners
				// whatever the cool-downs and throttles say: it has no data
				// to wait for, and a table must name an owner for each.
				empty := len(q.Owners) == 0
				if !empty && in.Skip != nil && in.Skip(n, id) {
					continue
				}
				if !empty && len(q.Owners) >= MaxOwnersFactor*len(q.Target) {
					out.Waiting++ // the owners being replaced go first
					continue
				}
				syncing := m.Handoff && source
				if syncing {
					if load[id] >= in.Limits.MaxMovesPerNode && in.Limits.MaxMovesPerNode > 0 ||
						leaving != "" && load[leaving] >= in.Limits.MaxMovesPerNode && in.Limits.MaxMovesPerNode > 0 ||
						inFlight >= in.Limits.MaxMovesInFlight && in.Limits.MaxMovesInFlight > 0 {
						out.Waiting++
						continue
					}
					load[id]++
					if leaving != "" {
						load[leaving]++
					}
					inFlight++
				}
				q.Owners = append(q.Owners, Owner{ID: id, Syncing: syncing, Since: sinceIf(syncing, in.Now)})
				out.Added++
				changed = true
			}
			// 3. Flip the primary to the target's, once it is ready.
			if i := index(q.Owners, q.Target[0]); i > 0 && !q.Owners[i].Syncing && in.Members[q.Target[0]].Lead {
				q.Owners = moveToFront(q.Owners, i)
				changed = true
			}
		}
		// The primary is a ready owner that may lead whenever there is one.
		if i := bestLeader(q.Owners, in.Members); i > 0 {
			q.Owners = moveToFront(q.Owners, i)
			changed = true
		}
		// 4. Release owners outside the target. The committed primary is
		// released only by a later step than the flip that replaced it.
		if len(q.Target) > 0 {
			committedPrimary := ""
			if len(p.Owners) > 0 {
				committedPrimary = p.Owners[0].ID
			}
			releasable := func(i int) bool {
				o := q.Owners[i]
				return i > 0 && o.ID != committedPrimary && !slices.Contains(q.Target, o.ID)
			}
			switch {
			case targetReady(q):
				// The whole target holds the data: the others go.
				kept := q.Owners[:0:0]
				for i, o := range q.Owners {
					if releasable(i) {
						changed = true
						continue
					}
					kept = append(kept, o)
				}
				q.Owners = kept
			case len(q.Owners) >= MaxOwnersFactor*len(q.Target):
				// The owner list is at its bound (a re-plan changed the
				// target before the replaced owners left), so no missing
				// target owner can be added: shed one owner outside the
				// target, a syncing one first, a ready one only while
				// another ready owner stays. Without this a partition
				// whose extra owners are all ready waits forever.
				if i := shedIndex(q.Owners, releasable); i > 0 {
					q.Owners = slices.Delete(q.Owners, i, i+1)
					changed = true
				}
			}
		}
		if Settled(q) {
			if q.Target != nil {
				changed = true
			}
			q.Target = nil
		}
		for _, id := range q.Target {
			if i := index(q.Owners, id); i < 0 || q.Owners[i].Syncing {
				out.Pending++
			}
		}
		if changed {
			out.Changed = true
		}
		out.Parts[n] = q
	}
	out.InFlight = inFlight
	return out
}

// MaxOwnersFactor bounds an owner list during a hand-off to this many times
// its target's size (the FSM enforces twice the replication factor).
const MaxOwnersFactor = 2

func sinceIf(syncing bool, now int64) int64 {
	if syncing {
		return now
	}
	return 0
}

// shedIndex picks the owner to shed from a full owner list: the first
// releasable syncing owner, else the first releasable ready owner when
// another ready owner stays; -1 when none may go.
func shedIndex(owners []Owner, releasable func(int) bool) int {
	for i, o := range owners {
		if o.Syncing && releasable(i) {
			return i
		}
	}
	ready := 0
	for _, o := range owners {
		if !o.Syncing {
			ready++
		}
	}
	for i, o := range owners {
		if !o.Syncing && ready > 1 && releasable(i) {
			return i
		}
	}
	return -1
}

func targetReady(q Partition) bool {
	for _, id := range q.Target {
		if i := index(q.Owners, id); i < 0 || q.Owners[i].Syncing {
			return false
		}
	}
	return true
}

// bestLeader returns the index of the owner that should lead when the
// current primary may not: it is syncing, or its node may not lead. -1 or 0
// when the primary stays.
func bestLeader(owners []Owner, members map[string]Member) int {
	if len(owners) == 0 {
		return -1
	}
	ok := func(o Owner) bool { return !o.Syncing && members[o.ID].Lead }
	if ok(owners[0]) {
		return 0
	}
	if i := slices.IndexFunc(owners, ok); i > 0 {
		return i
	}
	if owners[0].Syncing {
		if i := slices.IndexFunc(owners, func(o Owner) bool { return !o.Syncing }); i > 0 {
			return i
		}
	}
	return 0
}

func moveToFront(owners []Owner, i int) []Owner {
	o := owners[i]
	rest := slices.Delete(slices.Clone(owners), i, i+1)
	return append([]Owner{o}, rest...)
}

// Plan sets each partition's target from the placement's owner lists: a
// partition whose owners already are the target (all ready, same primary)
// gets none. moves counts the target owners that are not owners yet.
func Plan(cur []Partition, target [][]string) (parts []Partition, moves int) {
	parts = make([]Partition, len(cur))
	for n, p := range cur {
		q := Partition{Owners: slices.Clone(p.Owners)}
		if n < len(target) && len(target[n]) > 0 {
			q.Target = slices.Clone(target[n])
		}
		if Settled(q) {
			q.Target = nil
		}
		for _, id := range q.Target {
			if index(q.Owners, id) < 0 {
				moves++
			}
		}
		parts[n] = q
	}
	return parts, moves
}
