package placement

import (
	"fmt"
	"slices"
)

// This file holds what AssignInput's NoPrimary adds to the planner: which
// members may lead, the split placement used when even slots cannot leave
// enough of them to lead every partition, and the repairs that give every
// partition a primary that may lead.

// leaders returns lead[x] = "names[x] may be a primary" and how many may, or
// nil when NoPrimary names no member or every member (then it is ignored).
func leaders(names, noLead []string) ([]bool, int) {
	lead := make([]bool, len(names))
	e := 0
	for x, name := range names {
		if _, found := slices.BinarySearch(noLead, name); !found {
			lead[x] = true
			e++
		}
	}
	if e == 0 || e == len(names) {
		return nil, len(names)
	}
	return lead, e
}

// uniformOK reports whether every one of n members can own floor or ceil of
// r·p/n slots while e of them lead all p partitions, floor or ceil of p/e
// each. A member owns at least the partitions it leads, so it decides by
// counting the leaders that need the ceil of slots: they must fit in the
// r·p mod n members that get it. That makes it necessary; that it suffices
// (a table with such loads exists) is not proven, but the planner has built
// one in every fuzzed and property-tested case.
func uniformOK(p, r, n, e int) bool {
	f, ceils := r*p/n, r*p%n
	g, m := p/e, p%e // m leaders lead g+1
	var need int
	switch {
	case g+1 <= f:
		need = 0
	case g == f:
		need = m
	case g == f+1 && m == 0:
		need = e
	default:
		return false
	}
	return need <= ceils
}

// placeSplit places when uniformOK fails (or r = 1): then every partition has
// exactly one owner that may lead, its primary. Leaders and the others are
// two independent placements: the primaries are an RF 1 table over the
// leaders (a partition's previous owner that may lead, the first in its list,
// keeps it, so a replica promoted this way moves no data), the replicas an
// RF r-1 table over the others (uniformOK failing implies there are at least
// r-1 of them).
func placeSplit(prev [][]string, names []string, lead []bool, p, r int) [][]string {
	var ln, kn []string
	isLead := make(map[string]bool, len(names))
	for x, name := range names {
		isLead[name] = lead[x]
		if lead[x] {
			ln = append(ln, name)
		} else {
			kn = append(kn, name)
		}
	}
	m := min(len(prev), p)
	prevL, prevK := make([][]string, m), make([][]string, m)
	for i, owners := range prev[:m] {
		for _, name := range owners {
			switch l, ok := isLead[name]; {
			case !ok:
			case l && prevL[i] == nil:
				prevL[i] = []string{name}
			case !l:
				prevK[i] = append(prevK[i], name)
			}
		}
	}
	primaries := place(prevL, ln, nil, p, 1)
	var replicas [][]string
	if r > 1 {
		replicas = place(prevK, kn, nil, p, r-1)
	}
	buf := make([]string, p*r)
	out := make([][]string, p)
	for i := range out {
		o := buf[i*r : (i+1)*r : (i+1)*r]
		o[0] = primaries[i][0]
		if r > 1 {
			copy(o[1:], replicas[i])
		}
		out[i] = o
	}
	return out
}

// slotBand returns floor and ceil of r·P/N, the slot band of every member on
// the planner's (non-split) path.
func (pl *planner) slotBand() (floor, ceil int32) {
	t := pl.p * pl.r
	return int32(t / pl.n), int32((t + pl.n - 1) / pl.n)
}

// leadFix runs after slot balancing when some members may not lead: every
// partition led by such a member gets a primary that may lead, by a role
// swap inside its owner list when it has such an owner (no data moves; the
// one with the fewest primaries so far), else by giveLeader.
func (pl *planner) leadFix() {
	r := pl.r
	for i := 0; i < pl.p; i++ {
		base := i * r
		if pl.lead[pl.own[base]] {
			continue
		}
		bj := -1
		for j := 1; j < r; j++ {
			if b := pl.own[base+j]; pl.lead[b] && (bj < 0 || pl.prim[b] < pl.prim[pl.own[base+bj]]) {
				bj = j
			}
		}
		if bj > 0 {
			pl.swap(i, bj)
		}
	}
	for i := 0; i < pl.p; i++ {
		for !pl.lead[pl.own[i*r]] && !pl.giveLeader(i) {
			if !pl.ceilShift() {
				break // never seen in fuzzing while uniformOK holds (see uniformOK)
			}
		}
	}
}

// giveLeader puts a member that may lead into partition i, which has none,
// and makes it the primary, keeping every slot count: either a member at the
// band's ceil hands its slot to one at the floor (one partition changes), or
// the newcomer u swaps slots with an owner w of i: w takes u's place in a
// partition j where u is a replica (two partitions change; j keeps its
// primary). Candidates with the fewest primaries come first.
func (pl *planner) giveLeader(i int) bool {
	r, base := pl.r, i*pl.r
	floor, ceil := pl.slotBand()
	var cands []int32
	for x := range pl.lead {
		if pl.lead[x] {
			cands = append(cands, int32(x))
		}
	}
	slices.SortStableFunc(cands, func(a, b int32) int { return int(pl.prim[a] - pl.prim[b]) })
	for _, u := range cands {
		if pl.load[u] < ceil {
			for j := 0; j < r; j++ {
				if w := pl.own[base+j]; pl.load[w] > floor {
					pl.installLeader(i, w, u)
					return true
				}
			}
		}
	}
	for _, u := range cands {
		if j, w := pl.partner(u, pl.own[base:base+r]); j >= 0 {
			pl.replace(j, u, w)
			pl.markChanged(j)
			pl.installLeader(i, w, u)
			return true
		}
	}
	return false
}

// installLeader replaces w by u in partition i and makes u its primary.
func (pl *planner) installLeader(i int, w, u int32) {
	pl.replace(i, w, u)
	pl.markChanged(i)
	base := i * pl.r
	for j := 1; j < pl.r; j++ {
		if pl.own[base+j] == u {
			pl.swap(i, j)
			break
		}
	}
}

// partner finds a partition j where u is a replica and some member w of ws is
// not an owner, preferring one whose owner set changed already (no extra
// transfer); j < 0 if none. j's primary is not u, so it keeps leading j.
func (pl *planner) partner(u int32, ws []int32) (j int, w int32) {
	r := pl.r
	j, w = -1, -1
	for k := 0; k < pl.p; k++ {
		base := k * r
		if !slices.Contains(pl.own[base+1:base+r], u) {
			continue
		}
		for _, c := range ws {
			if !slices.Contains(pl.own[base:base+r], c) {
				if pl.changed[k] {
					return k, c
				}
				if j < 0 {
					j, w = k, c
				}
				break
			}
		}
	}
	return j, w
}

// ceilShift moves one slot from a member at the ceil of the slot band
// (preferring one that may not lead) to a member that may lead at its floor,
// the one with the fewest primaries: slot counts stay in the band, and the
// receiver gains a replica slot to trade, or leads. It is the last resort
// of leadFix and exchangeLead; shifts is bounded so they terminate.
func (pl *planner) ceilShift() bool {
	if pl.shifts >= pl.p*pl.r {
		return false
	}
	floor, ceil := pl.slotBand()
	if floor == ceil {
		return false
	}
	r := pl.r
	u := int32(-1)
	for x := range pl.lead {
		if pl.lead[x] && pl.load[x] == floor && (u < 0 || pl.prim[x] < pl.prim[u]) {
			u = int32(x)
		}
	}
	if u < 0 {
		return false
	}
	for _, wantLead := range []bool{false, true} {
		for i := 0; i < pl.p; i++ {
			own := pl.own[i*r : i*r+r]
			if slices.Contains(own, u) {
				continue
			}
			for j, c := range own {
				// A leader's primary slot stays: taking it would change
				// primaries, which the callers balance.
				if pl.lead[c] == wantLead && pl.load[c] == ceil && (j > 0 || !wantLead) {
					pl.replace(i, c, u)
					pl.markChanged(i)
					pl.shifts++
					return true
				}
			}
		}
	}
	return false
}

// exchangeLead is balancePrimaries' fallback when no path of role swaps
// reaches a target. swapPath left the members it reached (R) in pl.queue
// with their parents. A target u then enters a partition i led by a member x
// of R in place of a replica w (by a ceil-to-floor slot hand-over, or a slot
// swap with w through a partition where u is a replica, see giveLeader), u
// takes i's primary from x, and the path of swaps to x makes up for x's
// loss: a source loses one primary, u gains one, slot counts stay in band.
func (pl *planner) exchangeLead(isTarget func(int32) bool) bool {
	r := pl.r
	floor, ceil := pl.slotBand()
	reached := pl.queue
	var targets []int32
	for x := range pl.lead {
		if pl.lead[x] && isTarget(pl.prim[x]) {
			targets = append(targets, int32(x))
		}
	}
	type move struct {
		i    int
		w, u int32
		j    int // -1: hand-over
		cost int // partitions newly changed
	}
	best := move{cost: 3}
search:
	for _, x := range reached {
		for _, i32 := range pl.adj[pl.head[x]:pl.head[x+1]] {
			i := int(i32)
			own := pl.own[i*r : i*r+r]
			for _, w := range own[1:] {
				for _, u := range targets {
					if slices.Contains(own, u) {
						continue
					}
					c := 0
					if !pl.changed[i] {
						c = 1
					}
					if c < best.cost && pl.load[w] > floor && pl.load[u] < ceil {
						best = move{i, w, u, -1, c}
					} else if c+1 < best.cost {
						if j, _ := pl.partner(u, []int32{w}); j >= 0 {
							if pl.changed[j] {
								best = move{i, w, u, j, c}
							} else {
								best = move{i, w, u, j, c + 1}
							}
						}
					}
					if best.cost == 0 {
						break search
					}
				}
			}
		}
		if best.cost < 3 {
			break // the nearest member of R that works: the shortest path
		}
	}
	if best.cost == 3 {
		return pl.ceilShift()
	}
	if best.j >= 0 {
		pl.replace(best.j, best.u, best.w)
		pl.markChanged(best.j)
	}
	x := pl.own[best.i*r]
	pl.installLeader(best.i, best.w, best.u)
	pl.promotePath(x)
	return true
}

// ValidateInput checks that t is a table AssignInput could have produced
// for in.Members, in.RF and in.NoPrimary (in.Prev is not consulted): t has
// max(in.Partitions, 0) entries, every entry exactly min(RF, N) distinct
// members, and the balance and NoPrimary rules of AssignInput hold: no
// NoPrimary member leads (unless NoPrimary is ignored), primaries and slots
// within floor/ceil of their ideal. It returns a descriptive error for the
// first violation.
//
// With zones or weights (see AssignInput) it checks the zone-aware rules of
// zones.go instead; members of weight 0 must own nothing on either path.
func ValidateInput(t [][]string, in Input) error {
	hs := holdersOf(in)
	if !hs.plain() {
		return validateZoned(t, in, hs)
	}
	if hs.dropped {
		if err := checkNonHolders(t, in, hs); err != nil {
			return err
		}
		in.Members = hs.names
	}
	return validatePlain(t, in)
}

// validatePlain is ValidateInput for the plain planner.
func validatePlain(t [][]string, in Input) error {
	if p := max(in.Partitions, 0); len(t) != p {
		return fmt.Errorf("placement: table has %d partitions, want %d", len(t), p)
	}
	names := normalize(in.Members)
	n := len(names)
	r := max(min(in.RF, n), 0)
	lead, e := leaders(names, normalize(in.NoPrimary))
	// split: AssignInput placed leaders and the others separately, so each
	// partition has exactly one owner that may lead.
	split := lead != nil && r > 0 && (r == 1 || !uniformOK(len(t), r, n, e))
	slots := make([]int, n)
	prims := make([]int, n)
	seen := make([]int, n) // partition index+1 that last saw the member
	for i, owners := range t {
		if len(owners) != r {
			return fmt.Errorf("placement: partition %d has %d owners, want %d", i, len(owners), r)
		}
		leading := 0
		for j, name := range owners {
			x, ok := slices.BinarySearch(names, name)
			if !ok {
				return fmt.Errorf("placement: partition %d owner %d %q is not a member", i, j, name)
			}
			if seen[x] == i+1 {
				return fmt.Errorf("placement: partition %d lists owner %q twice", i, name)
			}
			seen[x] = i + 1
			slots[x]++
			if j == 0 {
				prims[x]++
				if lead != nil && !lead[x] {
					return fmt.Errorf("placement: partition %d is led by %q, which is in NoPrimary", i, name)
				}
			}
			if lead != nil && lead[x] {
				leading++
			}
		}
		if split && leading != 1 {
			return fmt.Errorf("placement: partition %d has %d owners that may lead, want 1 (too many members in NoPrimary for even slots)", i, leading)
		}
	}
	if r == 0 {
		return nil
	}
	p := len(t)
	if lead == nil {
		if err := checkSpread("slots", slots, names, r*p); err != nil {
			return err
		}
		return checkSpread("primaries", prims, names, p)
	}
	var ln, kn []string
	var lp, ls, ks []int
	for x, name := range names {
		if lead[x] {
			ln, lp, ls = append(ln, name), append(lp, prims[x]), append(ls, slots[x])
		} else {
			kn, ks = append(kn, name), append(ks, slots[x])
		}
	}
	if err := checkSpread("primaries", lp, ln, p); err != nil {
		return err
	}
	if !split {
		return checkSpread("slots", slots, names, r*p)
	}
	if err := checkSpread("slots", ls, ln, p); err != nil {
		return err
	}
	return checkSpread("slots", ks, kn, (r-1)*p)
}
