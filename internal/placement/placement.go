// Package placement computes which cluster members own which partitions.
//
// It is the pure, deterministic core of partition placement: given the
// previously committed partition table and the live member set it returns the
// next table. Every node computes the same table from the same inputs, so the
// result depends only on the member set (never on its order): members are
// sorted and deduplicated first, and all ties are broken by the position in
// that sorted list (never by map iteration order). The one refinement: when
// filling an empty slot, equally loaded candidates are scanned starting at a
// fixed per-partition offset (a hash of the partition number) instead of
// always at index 0. Pure index order builds "copysets" (e.g. with N=6, RF=3
// every partition is {0,1,2} or {3,4,5}); then a departing node's partners
// already own all its partitions, cannot take them over, and a leave must
// move ~20% more than the departed node's partitions. The rotation spreads
// co-ownership so leaves move just the departed node's partitions.
//
// The design goal is "move as little data as possible while staying balanced":
//
//  1. Keep every previous owner that is still alive (if the primary died, the
//     first alive replica is promoted; no data moves).
//  2. Fill missing owners with the least-loaded eligible members (ties: see
//     above).
//  3. Move slots from over-loaded to under-loaded members until every member
//     owns floor or ceil of r·P/N slots, preferring partitions whose owner set
//     has already changed (so extra balancing moves cost no extra data
//     transfer) and replica positions (so primaries change less).
//  4. Balance primaries to floor or ceil of P/N by swapping roles inside an
//     owner list (a replica becomes primary), which moves no data. Direct swaps
//     are tried first, then augmenting paths of swaps.
//
// Without NoPrimary (below), step 4 never needs to change owner sets: when
// slot counts are balanced, an augmenting path always exists. Proof sketch:
// if the set R of members reachable from an over-loaded member (via "primary
// of p → replica of p") contained no member below ceil(P/N), every partition
// led by R would be owned entirely by R, giving R more than
// |R|·ceil(P/N)·r ≥ |R|·ceil(r·P/N) slots, contradicting slot balance; the
// under-loaded case is symmetric with floor.
//
// Several joins at once. When prev has live owners and several members own
// nothing in it, they join one at a time in sorted order: the result is
// that of Assign with the old members plus the first joiner, then that table
// as prev with the next joiner, and so on. In one call, step 3's preference
// for changed partitions would give the joiners whole partitions together
// (with RF 2, 2 → 4 nodes made half the partitions {joiner1, joiner2}), a
// copyset whose later leaves move more than the departed node's partitions.
// One at a time, the joiners copy as many slots as in one call, and the
// table is as balanced and as good for later leaves as after separate
// joins; more partitions change at the join (each joiner takes its own),
// and the computation runs once per joiner.
//
// Members that must not lead (AssignInput's NoPrimary: a node that is
// stopping, or suspect) keep their slots where possible; only the roles
// change. After step 3, a partition led by such a member is given to an owner
// that may lead by a role swap (no data moves), and step 4 balances
// primaries over the members that may lead only, by swaps; only where owner
// sets leave no way (a partition without an owner that may lead, or a leader
// that alone owns more partitions than its share) do slots move, keeping slot
// counts balanced: a member at the ceil of the slot band hands one to a
// member at its floor, or two members trade slots in two partitions. When even
// slot counts cannot give the leaders enough slots to lead everything (r = 1,
// or most members in NoPrimary), leaders and the others are placed
// separately: primaries as an RF 1 table over the leaders, replicas as an
// RF r-1 table over the others.
//
// Zones and weights (Input.Zones, Input.Weights) take another path when the
// members that hold data span several zones or differ in weight: owners
// spread over zones, slots and primaries proportional to weight, the same
// keep-fill-balance steps and the same one-joiner-at-a-time rule. zones.go
// states its rules; without zones and weights nothing above changes.
package placement

import (
	"fmt"
	"math"
	"slices"
)

// Input is the full input of AssignInput.
type Input struct {
	// Prev, Members, Partitions and RF are Assign's prev, members,
	// partitions and rf.
	Prev       [][]string
	Members    []string
	Partitions int
	RF         int
	// NoPrimary lists members that keep (and may receive) replica slots but
	// must not be primaries: a node that is stopping, or suspect. Ignored
	// when it would leave no member able to lead. Names that are not
	// members, duplicates and "" are ignored.
	NoPrimary []string
	// Zones maps a member to its failure domain (rack, availability zone).
	// Members absent or mapped to "" share the zone "". Owners of a
	// partition are spread over zones so that losing one loses as few
	// copies as possible (see zones.go).
	Zones map[string]string
	// Weights maps a member to its relative capacity: its share of slots and
	// of primaries is proportional to it. Absent means 1; 0 (or negative)
	// means the member holds nothing (it only routes). When no member has a
	// positive weight, every member counts as weight 1.
	Weights map[string]int
}

// Assign returns the new owner lists. prev[i] is the previous owner list of
// partition i (prev[i][0] is the primary, the rest are replicas); prev may be
// nil or shorter/longer than partitions (missing entries = no owners; extra
// entries ignored), and may name nodes that are not members any more, or
// contain duplicates/empty strings (ignored).
// members is the live member set in any order (duplicates and "" ignored).
//
// The result has exactly partitions entries (none if partitions <= 0); each
// has exactly min(rf, N) distinct members (N = number of distinct members,
// rf <= 0 means no owners), entry[0] is the primary. With N == 0 or rf <= 0
// every entry is empty (non-nil, length 0). Every member owns floor or ceil of
// min(rf,N)·partitions/N slots and floor or ceil of partitions/N primaries.
// Inputs are never modified; the result shares no slices with prev (the owner
// lists of one result share one backing array but are capacity-limited, so
// appending to one never clobbers another).
//
// Several members that own nothing in prev join one at a time (see the
// package comment). Assign is AssignInput without NoPrimary.
//
// partitions is trusted to be a size the caller can allocate.
func Assign(prev [][]string, members []string, partitions, rf int) [][]string {
	return AssignInput(Input{Prev: prev, Members: members, Partitions: partitions, RF: rf})
}

// AssignInput is Assign with NoPrimary. With a non-empty NoPrimary set K
// (the members of in.NoPrimary; ignored when it holds every member) and E the
// other members (e of them), every partition is led by a member of E, and
// each member of E leads floor or ceil of partitions/e. Slots stay balanced
// as in Assign (floor or ceil of r·partitions/N, r = min(rf, N)) whenever that
// leaves E enough slots to lead everything; otherwise (many members in K, or
// r = 1 where every slot is a primary) each partition has exactly one owner
// from E, its primary, so a member of E owns exactly the partitions it leads,
// and each member of K owns floor or ceil of (r-1)·partitions/|K| slots (none
// with r = 1: its partitions move to E). ValidateInput checks exactly these
// rules. The other guarantees are Assign's.
//
// With Zones or Weights (holders spanning several zones, or holders of
// different weights), the zone-aware path places instead; see zones.go for
// its rules. Members of weight 0 own nothing on either path.
func AssignInput(in Input) [][]string {
	if in.Partitions <= 0 {
		return [][]string{}
	}
	hs := holdersOf(in)
	if !hs.plain() {
		return assignZoned(in, hs)
	}
	// One zone and equal weights: the plain planner over the members that
	// hold data (all of them without Weights), exactly as without zones.
	names := hs.names
	noLead := normalize(in.NoPrimary)
	if min(in.RF, len(names)) > 0 {
		if old, joiners := splitJoiners(in.Prev, names, in.Partitions); len(old) > 0 && len(joiners) > 1 {
			// Joins at once would go to the same partitions (step 3
			// prefers changed ones) and form a copyset; one at a time, in
			// sorted order, they do not.
			t := in.Prev
			for _, j := range joiners {
				k, _ := slices.BinarySearch(old, j)
				old = slices.Insert(old, k, j)
				t = place(t, old, noLead, in.Partitions, in.RF)
			}
			return t
		}
	}
	return place(in.Prev, names, noLead, in.Partitions, in.RF)
}

// splitJoiners splits the sorted names into those named in prev's first
// partitions entries (old) and the others (joiners), both sorted, in new
// slices.
func splitJoiners(prev [][]string, names []string, partitions int) (old, joiners []string) {
	index := make(map[string]int, len(names))
	for x, name := range names {
		index[name] = x
	}
	seen := make([]bool, len(names))
	left := len(names) // unseen: in a steady table all are seen early
	for _, owners := range prev[:min(len(prev), partitions)] {
		for _, name := range owners {
			if x, ok := index[name]; ok && !seen[x] {
				seen[x] = true
				left--
			}
		}
		if left == 0 {
			break
		}
	}
	for x, name := range names {
		if seen[x] {
			old = append(old, name)
		} else {
			joiners = append(joiners, name)
		}
	}
	return old, joiners
}

// place computes one table for the sorted, deduplicated names; noLead is the
// sorted NoPrimary list (it may name non-members).
func place(prev [][]string, names, noLead []string, partitions, rf int) [][]string {
	n := len(names)
	r := min(rf, n)
	if r <= 0 {
		out := make([][]string, partitions)
		empty := make([]string, 0) // non-nil, zero capacity: safe to share
		for i := range out {
			out[i] = empty
		}
		return out
	}
	lead, e := leaders(names, noLead)
	if lead != nil && (r == 1 || !uniformOK(partitions, r, n, e)) {
		return placeSplit(prev, names, lead, partitions, r)
	}
	pl := newPlanner(n, partitions, r)
	pl.lead, pl.nLead = lead, e
	pl.keep(prev, names)
	pl.fill()
	pl.balanceSlots()
	if lead != nil {
		pl.leadFix()
	}
	pl.balancePrimaries()
	return pl.table(names)
}

// table converts the working table to owner lists sharing one backing array.
func (pl *planner) table(names []string) [][]string {
	r := pl.r
	buf := make([]string, pl.p*r)
	for i, x := range pl.own {
		buf[i] = names[x]
	}
	out := make([][]string, pl.p)
	for i := range out {
		out[i] = buf[i*r : (i+1)*r : (i+1)*r]
	}
	return out
}

// normalize returns the sorted, deduplicated non-empty member names in a new
// slice, so the result never depends on the caller's order.
func normalize(members []string) []string {
	names := make([]string, 0, len(members))
	for _, m := range members {
		if m != "" {
			names = append(names, m)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// planner holds the working table on integer member indexes so the fill and
// balancing loops touch only flat int32 slices, never maps or strings.
type planner struct {
	n, p, r int
	own     []int32 // p*r owner indexes; own[i*r] is partition i's primary
	fillCnt []int32 // owners present per partition during keep/fill
	load    []int32 // slots per member
	prim    []int32 // primaries per member
	changed []bool  // partition's owner set already differs from prev
	chList  []int32 // partitions with changed set, in marking order
	inCh    []int32 // per member: changed partitions it owns (balancing only)
	chPos   int     // where shiftOnceInChanged resumes scanning chList
	scanPos int     // where moveDirect resumes scanning partitions
	targets []int32 // scratch for shiftWithinChanged
	shifts  int     // ceilShift calls so far (bounded)

	// lead[x] says whether member x may be a primary; nil: all may
	// (AssignInput's NoPrimary). nLead counts those that may.
	lead  []bool
	nLead int

	// Scratch for membership marks, reset cheaply by bumping stamp.
	mark  []int32
	stamp int32

	// Scratch for breadth-first searches, allocated on first use.
	queue, parentNode, parentPart []int32
	head, cursor, adj, unvisited  []int32
}

func newPlanner(n, p, r int) *planner {
	return &planner{
		n: n, p: p, r: r,
		own:     make([]int32, p*r),
		fillCnt: make([]int32, p),
		load:    make([]int32, n),
		prim:    make([]int32, n),
		changed: make([]bool, p),
		mark:    make([]int32, n),
	}
}

// newStamp returns a fresh mark value; marks equal to it mean "set".
func (pl *planner) newStamp() int32 {
	if pl.stamp == math.MaxInt32 {
		clear(pl.mark)
		pl.stamp = 0
	}
	pl.stamp++
	return pl.stamp
}

func (pl *planner) markChanged(i int) {
	if !pl.changed[i] {
		pl.changed[i] = true
		pl.chList = append(pl.chList, int32(i))
		if pl.inCh != nil {
			for _, x := range pl.own[i*pl.r : (i+1)*pl.r] {
				pl.inCh[x]++
			}
		}
	}
}

// keep copies alive previous owners in previous order (deduplicated, at most
// r of them); a dead primary is thereby replaced by the first alive replica.
func (pl *planner) keep(prev [][]string, names []string) {
	r := pl.r
	// One hash per previous owner is cheaper than a binary search over
	// strings; the map is built once, outside the per-partition loops.
	index := make(map[string]int32, len(names))
	for x, name := range names {
		index[name] = int32(x)
	}
	for i := 0; i < min(len(prev), pl.p); i++ {
		base, k := i*r, 0
		st := pl.newStamp()
		for _, name := range prev[i] {
			if name == "" {
				continue
			}
			x, ok := index[name]
			switch {
			case !ok:
				pl.markChanged(i) // a dead owner leaves the set
			case pl.mark[x] == st:
				// A duplicate leaves the set unchanged.
			case k == r:
				pl.markChanged(i) // truncated to r owners
			default:
				pl.mark[x] = st
				pl.own[base+k] = int32(x)
				pl.load[x]++
				k++
			}
		}
		pl.fillCnt[i] = int32(k)
		if k > 0 {
			pl.prim[pl.own[base]]++
		}
	}
}

// fill gives every partition r owners, taking the least-loaded eligible
// members so that a from-scratch table is already balanced (loads stay within
// one of each other whatever the tie-break).
func (pl *planner) fill() {
	r, n := pl.r, pl.n
	for i := 0; i < pl.p; i++ {
		k := int(pl.fillCnt[i])
		if k == r {
			continue
		}
		pl.markChanged(i)
		base := i * r
		st := pl.newStamp()
		for j := 0; j < k; j++ {
			pl.mark[pl.own[base+j]] = st
		}
		off := int(mix(uint64(i)) % uint64(n)) // tie-break start, see package comment
		// A list without an owner that may lead takes one first, so that
		// leadFix has nothing to repair here.
		needLead := pl.lead != nil
		for j := 0; j < k && needLead; j++ {
			needLead = !pl.lead[pl.own[base+j]]
		}
		for j := k; j < r; j++ {
			best := -1
			for y := 0; y < n; y++ {
				x := y + off
				if x >= n {
					x -= n
				}
				if pl.mark[x] != st && (!needLead || pl.lead[x]) && (best < 0 || pl.load[x] < pl.load[best]) {
					best = x
				}
			}
			needLead = false
			pl.own[base+j] = int32(best)
			pl.mark[best] = st
			pl.load[best]++
		}
		if k == 0 {
			// A brand-new owner list: lead with the owner that has the fewest
			// primaries so primary balancing has little left to do.
			bj := 0
			for j := 1; j < r; j++ {
				a, b := pl.own[base+j], pl.own[base+bj]
				if !pl.canLead(a) {
					continue
				}
				if pl.prim[a] < pl.prim[b] || (pl.prim[a] == pl.prim[b] && a < b) {
					bj = j
				}
			}
			pl.own[base], pl.own[base+bj] = pl.own[base+bj], pl.own[base]
			pl.prim[pl.own[base]]++
		}
	}
}

// minMax returns the smallest and largest value of v (len(v) > 0).
func minMax(v []int32) (lo, hi int32) {
	lo, hi = v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// balanceSlots moves slots from over-loaded to under-loaded members until
// every member owns floor or ceil of r·P/N slots. Each step moves a slot
// from a member to one with at least two fewer, so the sum of squared loads
// drops and it terminates.
func (pl *planner) balanceSlots() {
	total := pl.p * pl.r
	floor := int32(total / pl.n)
	ceil := int32((total + pl.n - 1) / pl.n)
	pl.inCh = make([]int32, pl.n)
	for _, i := range pl.chList {
		for _, x := range pl.own[int(i)*pl.r : int(i+1)*pl.r] {
			pl.inCh[x]++
		}
	}
	for {
		lo, hi := minMax(pl.load)
		if hi-lo <= 1 {
			return
		}
		// First clear loads above ceil, then loads below floor, like the
		// two phases of a flow with lower and upper bounds.
		var src, dst func(int32) bool
		if hi > ceil {
			src, dst = func(x int32) bool { return x > ceil }, func(x int32) bool { return x < ceil }
		} else {
			src, dst = func(x int32) bool { return x > floor }, func(x int32) bool { return x == lo }
		}
		if pl.shiftWithinChanged(src, dst) {
			continue
		}
		if !pl.moveDirect(hi, lo, floor) {
			return // unreachable: a fuller member always owns a partition the emptier one lacks
		}
	}
}

// replace puts member b in a's position of partition i.
func (pl *planner) replace(i int, a, b int32) {
	base := i * pl.r
	for j := 0; j < pl.r; j++ {
		if pl.own[base+j] == a {
			pl.own[base+j] = b
			pl.load[a]--
			pl.load[b]++
			if pl.changed[i] {
				pl.inCh[a]--
				pl.inCh[b]++
			}
			if j == 0 {
				pl.prim[a]--
				pl.prim[b]++
			}
			return
		}
	}
}

// shiftWithinChanged moves one slot from a source member to a target member
// (selected by load) using only partitions whose owner set already changed,
// so the move adds no data transfer. It first looks for a single replacement,
// then searches a chain d→x→…→e where each hop replaces the current member by
// the next one in a changed partition that has the former but not the
// latter; intermediate loads stay the same.
func (pl *planner) shiftWithinChanged(isSource, isTarget func(int32) bool) bool {
	// Cheap necessary condition: a source owns a changed partition and a
	// target is missing from one. It skips the search during plain joins,
	// where the joiner is in every changed partition.
	src := false
	targets := pl.targets[:0]
	for x, l := range pl.load {
		src = src || (isSource(l) && pl.inCh[x] > 0)
		if isTarget(l) && int(pl.inCh[x]) < len(pl.chList) {
			targets = append(targets, int32(x))
		}
	}
	pl.targets = targets
	if !src || len(targets) == 0 {
		return false
	}
	if pl.shiftOnceInChanged(isSource, targets) {
		return true
	}
	n, r := pl.n, pl.r
	pl.ensureBFS()

	// Compressed adjacency: for every member, the changed partitions it owns.
	head := pl.head
	clear(head)
	for _, i := range pl.chList {
		for _, x := range pl.own[int(i)*r : int(i)*r+r] {
			head[x+1]++
		}
	}
	for x := 0; x < n; x++ {
		head[x+1] += head[x]
	}
	copy(pl.cursor, head[:n])
	adj := slices.Grow(pl.adj[:0], len(pl.chList)*r)[:len(pl.chList)*r]
	pl.adj = adj
	for _, i := range pl.chList {
		for _, x := range pl.own[int(i)*r : int(i)*r+r] {
			adj[pl.cursor[x]] = i
			pl.cursor[x]++
		}
	}

	q, unv := pl.queue[:0], pl.unvisited[:0]
	for x := 0; x < n; x++ {
		if isSource(pl.load[x]) {
			pl.parentNode[x] = -1
			q = append(q, int32(x))
		} else {
			unv = append(unv, int32(x))
		}
	}
	for qi := 0; qi < len(q) && len(unv) > 0; qi++ {
		a := q[qi]
		for _, i := range adj[head[a]:head[a+1]] {
			st := pl.newStamp()
			for _, x := range pl.own[int(i)*r : int(i)*r+r] {
				pl.mark[x] = st
			}
			// Every unvisited member outside partition i is reachable from a.
			// Members kept are owners of i, so this costs O(r + visited).
			rest := unv[:0]
			for _, b := range unv {
				if pl.mark[b] == st {
					rest = append(rest, b)
					continue
				}
				pl.parentNode[b], pl.parentPart[b] = a, i
				if isTarget(pl.load[b]) {
					pl.applySlotPath(b)
					return true
				}
				q = append(q, b)
			}
			unv = rest
			if len(unv) == 0 {
				break
			}
		}
	}
	return false
}

// shiftOnceInChanged replaces a source member by a target member in one
// changed partition, scanning from where the previous such move succeeded so
// bulk rebalancing (e.g. many joins at once) does not rescan saturated
// partitions.
func (pl *planner) shiftOnceInChanged(isSource func(int32) bool, targets []int32) bool {
	r, m := pl.r, len(pl.chList)
	for k := 0; k < m; k++ {
		at := pl.chPos + k
		if at >= m {
			at -= m
		}
		i := int(pl.chList[at])
		st := pl.newStamp()
		d, dpos := int32(-1), -1
		for j, x := range pl.own[i*r : i*r+r] {
			pl.mark[x] = st
			if (dpos <= 0) && isSource(pl.load[x]) {
				d, dpos = x, j // prefer a replica position
			}
		}
		if d < 0 {
			continue
		}
		for _, e := range targets {
			if pl.mark[e] != st {
				pl.replace(i, d, e)
				pl.chPos = at
				return true
			}
		}
	}
	return false
}

// applySlotPath replays the replacements along the BFS parent chain ending
// at target. Path members are distinct, so each hop's preconditions still hold.
func (pl *planner) applySlotPath(target int32) {
	for b := target; pl.parentNode[b] >= 0; {
		a := pl.parentNode[b]
		pl.replace(int(pl.parentPart[b]), a, b)
		b = a
	}
}

// moveDirect moves one slot from the first member with load hi to the first
// member with load lo. It prefers, in order: a partition with the fewest
// other members below floor (they can later join the same, already changed
// partition for free instead of changing another one), then one where the
// donor is a replica (so primaries move less), then the first in scan order.
func (pl *planner) moveDirect(hi, lo, floor int32) bool {
	d, e := int32(-1), int32(-1)
	for x := range pl.load {
		if d < 0 && pl.load[x] == hi {
			d = int32(x)
		}
		if e < 0 && pl.load[x] == lo {
			e = int32(x)
		}
	}
	r := pl.r
	best, bestScore := -1, math.MaxInt
	for k := 0; k < pl.p && bestScore > 0; k++ {
		// Resume where the previous move succeeded: partitions before it
		// tend to be saturated already, and rescanning them made large
		// rebalances quadratic.
		i := pl.scanPos + k
		if i >= pl.p {
			i -= pl.p
		}
		pos, hasE, needy := -1, false, 0
		for j, x := range pl.own[i*r : i*r+r] {
			switch {
			case x == d:
				pos = j
			case x == e:
				hasE = true
			case pl.load[x] < floor:
				needy++
			}
		}
		if pos < 0 || hasE {
			continue
		}
		score := 2 * needy
		if pos == 0 {
			score++
		}
		if score < bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return false
	}
	pl.replace(best, d, e)
	pl.markChanged(best)
	pl.scanPos = best
	return true
}

func (pl *planner) ensureBFS() {
	if pl.queue != nil {
		return
	}
	n := pl.n
	pl.queue = make([]int32, 0, n)
	pl.unvisited = make([]int32, 0, n)
	pl.parentNode = make([]int32, n)
	pl.parentPart = make([]int32, n)
	pl.head = make([]int32, n+1)
	pl.cursor = make([]int32, n)
}

// balancePrimaries swaps roles inside owner lists until every member that may
// lead leads floor or ceil of P/N partitions (N: the members that may lead).
// Each step moves one primary from a member to one with at least two fewer,
// so the sum of squares drops and it terminates; see the package comment for
// why a path always exists without NoPrimary.
func (pl *planner) balancePrimaries() {
	if pl.r < 2 {
		return // primaries are the slots, already balanced
	}
	nl := pl.n
	if pl.lead != nil {
		nl = pl.nLead
	}
	floor := int32(pl.p / nl)
	ceil := int32((pl.p + nl - 1) / nl)
	for {
		lo, hi := pl.primRange()
		if hi-lo <= 1 {
			return
		}
		if pl.swapDirect(hi, lo) {
			continue
		}
		var src, dst func(int32) bool
		if hi > ceil {
			src, dst = func(x int32) bool { return x == hi }, func(x int32) bool { return x < ceil }
		} else {
			src, dst = func(x int32) bool { return x > floor }, func(x int32) bool { return x == lo }
		}
		ok := pl.swapPath(src, dst)
		if !ok && pl.lead != nil {
			// With NoPrimary the package comment's proof fails (the
			// reachable members' partitions may hold NoPrimary replicas):
			// move a slot so that a path exists.
			ok = pl.exchangeLead(dst)
		}
		if !ok {
			return // unreachable without NoPrimary (package comment); with it, never seen in fuzzing
		}
	}
}

// canLead reports whether member x may be a primary.
func (pl *planner) canLead(x int32) bool { return pl.lead == nil || pl.lead[x] }

// primRange returns the fewest and most primaries of members that may lead.
func (pl *planner) primRange() (lo, hi int32) {
	if pl.lead == nil {
		return minMax(pl.prim)
	}
	lo, hi = math.MaxInt32, math.MinInt32
	for x, c := range pl.prim {
		if pl.lead[x] {
			lo, hi = min(lo, c), max(hi, c)
		}
	}
	return lo, hi
}

// swap makes the owner at position j of partition i its primary.
func (pl *planner) swap(i, j int) {
	base := i * pl.r
	a, b := pl.own[base], pl.own[base+j]
	pl.own[base], pl.own[base+j] = b, a
	pl.prim[a]--
	pl.prim[b]++
}

// swapDirect promotes, in the first partition led by a member with hi
// primaries, a replica whose member has only lo primaries.
func (pl *planner) swapDirect(hi, lo int32) bool {
	r := pl.r
	for i := 0; i < pl.p; i++ {
		base := i * r
		if pl.prim[pl.own[base]] != hi {
			continue
		}
		for j := 1; j < r; j++ {
			if b := pl.own[base+j]; pl.prim[b] == lo && pl.canLead(b) {
				pl.swap(i, j)
				return true
			}
		}
	}
	return false
}

// swapPath finds, by BFS over "a leads p, b replicates p" edges, a shortest
// chain from a source member to a target member and promotes along it: the
// source loses one primary, the target gains one, the rest are unchanged.
func (pl *planner) swapPath(isSource, isTarget func(int32) bool) bool {
	n, r := pl.n, pl.r
	pl.ensureBFS()
	// Compressed adjacency: partitions led by each member.
	head := pl.head
	clear(head)
	for i := 0; i < pl.p; i++ {
		head[pl.own[i*r]+1]++
	}
	for x := 0; x < n; x++ {
		head[x+1] += head[x]
	}
	copy(pl.cursor, head[:n])
	adj := slices.Grow(pl.adj[:0], pl.p)[:pl.p]
	pl.adj = adj
	for i := 0; i < pl.p; i++ {
		x := pl.own[i*r]
		adj[pl.cursor[x]] = int32(i)
		pl.cursor[x]++
	}

	st := pl.newStamp() // mark = visited
	q := pl.queue[:0]
	for x := 0; x < n; x++ {
		if isSource(pl.prim[x]) && pl.canLead(int32(x)) {
			pl.mark[x] = st
			pl.parentNode[x] = -1
			q = append(q, int32(x))
		}
	}
	for qi := 0; qi < len(q); qi++ {
		a := q[qi]
		for _, i := range adj[head[a]:head[a+1]] {
			for _, b := range pl.own[int(i)*r+1 : int(i)*r+r] {
				if pl.mark[b] == st || !pl.canLead(b) {
					continue
				}
				pl.mark[b] = st
				pl.parentNode[b], pl.parentPart[b] = a, i
				if isTarget(pl.prim[b]) {
					pl.promotePath(b)
					return true
				}
				q = append(q, b)
			}
		}
	}
	pl.queue = q // the reached members, for exchangeLead
	return false
}

// promotePath makes every member on the BFS parent chain ending at b the
// primary of the partition its parent led. Each member leads its own
// partitions on the path, so the partitions are distinct and swaps do not
// interfere.
func (pl *planner) promotePath(b int32) {
	r := pl.r
	for y := b; pl.parentNode[y] >= 0; y = pl.parentNode[y] {
		i := int(pl.parentPart[y])
		base := i * r
		for j := 1; j < r; j++ {
			if pl.own[base+j] == y {
				pl.swap(i, j)
				break
			}
		}
	}
}

// Moved counts partitions whose owner set differs between a and b
// (order-insensitive, so a primary swap inside the same set does not count;
// duplicates and "" are ignored; a missing entry is an empty set). It measures
// how much data a table change transfers.
func Moved(a, b [][]string) int {
	moved := 0
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y []string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if !subset(x, y) || !subset(y, x) {
			moved++
		}
	}
	return moved
}

// subset reports whether every non-empty name of x occurs in y. Owner lists
// are short, so the quadratic scan beats building a set.
func subset(x, y []string) bool {
	if len(x)*len(y) > 256 {
		set := make(map[string]struct{}, len(y))
		for _, s := range y {
			set[s] = struct{}{}
		}
		for _, s := range x {
			if _, ok := set[s]; !ok && s != "" {
				return false
			}
		}
		return true
	}
	for _, s := range x {
		if s != "" && !slices.Contains(y, s) {
			return false
		}
	}
	return true
}

// Load reports per-node primary and total-slot counts of a table, which is
// what balancing, metrics and operators care about.
type Load struct {
	// Primaries maps a node to the number of partitions it leads.
	Primaries map[string]int
	// Slots maps a node to the number of owner-list entries naming it.
	Slots map[string]int
}

// Loads counts primaries and slots of table t as written ("" entries are
// skipped). Nodes that own nothing are absent from the maps.
func Loads(t [][]string) Load {
	l := Load{Primaries: map[string]int{}, Slots: map[string]int{}}
	for _, owners := range t {
		for j, x := range owners {
			if x == "" {
				continue
			}
			l.Slots[x]++
			if j == 0 {
				l.Primaries[x]++
			}
		}
	}
	return l
}

// Validate checks that t is a table Assign could have produced for members
// and rf: every entry has exactly min(rf, N) distinct members as owners (none
// if rf <= 0 or N == 0), and every member's slot and primary counts are
// within floor/ceil of the ideal. It returns a descriptive error for the
// first violation, so callers can reject a corrupt committed table. It is
// ValidateInput without NoPrimary, for len(t) partitions.
func Validate(t [][]string, members []string, rf int) error {
	return ValidateInput(t, Input{Members: members, Partitions: len(t), RF: rf})
}

// checkSpread verifies each count is floor or ceil of total/len(counts).
func checkSpread(what string, counts []int, names []string, total int) error {
	n := len(counts)
	lo, hi := total/n, (total+n-1)/n
	for x, c := range counts {
		if c < lo || c > hi {
			return fmt.Errorf("placement: member %q has %d %s, want within [%d, %d]", names[x], c, what, lo, hi)
		}
	}
	return nil
}

// mix is the splitmix64 finalizer: a fixed, platform-independent hash that
// spreads consecutive partition numbers over all start offsets.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
