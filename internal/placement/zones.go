package placement

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// This file holds the zone-aware and weighted path of AssignInput, taken
// when the members that hold data (holders: positive weight; every member
// when none has one) span several zones or have different weights. Without
// zones and weights the plain planner runs exactly as before.
//
// With r = min(RF, holders) and P partitions, the rules are:
//
//  1. Every partition has exactly r distinct owners, all holders; entry[0]
//     is the primary; a NoPrimary member never leads (unless every holder
//     is in NoPrimary: then NoPrimary is ignored).
//  2. Zone spread. Let m_z be the holders in zone z. Water-fill r over the
//     zones with caps m_z: L is the largest level with Σ min(m_z, L) ≤ r,
//     k = r − Σ min(m_z, L). Every partition has in every zone between
//     lo_z = min(m_z, L) and hi_z = min(m_z, L+1) owners (hi_z = lo_z when
//     k = 0). So with at least r zones every owner is in its own zone, and
//     with fewer, a zone gets a second owner only when every zone has one.
//  3. Weighted slots. T_x, the fractional optimum, minimises Σ T_x²/w_x
//     (proportional to weight wherever the constraints allow) subject to
//     0 ≤ T_x ≤ P, zone totals within [lo_z·P, hi_z·P] and Σ T_x = r·P:
//     T_x = min(P, λ_z·w_x), where zones whose bounds bind have their own
//     rate λ_z and the others share one. When the members that may lead
//     would hold fewer than P slots together, their rate is raised by a
//     common η until they hold P (every partition needs one of them). Every
//     holder owns floor or ceil of T_x slots.
//  4. Weighted primaries. Q_x = P·w_x/W over the members that may lead
//     (NoPrimary ones get 0), capped at the member's own slot count, the
//     excess water-filled over the others. Every leader leads floor or ceil
//     of Q_x partitions.
//
// The planner (zoneplan.go) keeps previous owners where the zone rule
// allows (the later-listed excess owner of a zone goes), fills by the
// largest deficit T_x − load_x (among candidates within one slot of it, the
// one sharing the fewest partitions with the owners so far, then a
// per-partition rotation), balances slots by moves and chains of moves that
// never break the zone rule (free ones first: partitions already changed),
// gives every partition an owner that may lead, and balances primaries by
// role swaps, moving a slot only when no path of swaps exists. Several
// joiners with a positive slot floor join one at a time in sorted order.
// MinCopies (mincopies.go) computes the fewest copies any table meeting
// rules 1–3 needs, to judge it. Float arithmetic is deterministic: fixed
// iteration order, and every product is wrapped in float64() so no
// platform fuses it into an FMA.

// roundEps absorbs float error when rounding T_x and Q_x to their bands.
const roundEps = 1e-6

// holderSet is the analysed member set: who holds data, with which weight
// and zone.
type holderSet struct {
	all     []string // every member, sorted and deduplicated
	names   []string // members that hold data, sorted
	weight  []int    // their weights (> 0); nil: all 1
	zone    []string // their zones; nil: all ""
	dropped bool     // some members hold nothing (weight 0)
}

// holdersOf analyses in's members, weights and zones.
func holdersOf(in Input) holderSet {
	all := normalize(in.Members)
	hs := holderSet{all: all, names: all}
	if len(in.Weights) == 0 && len(in.Zones) == 0 {
		return hs
	}
	weightOf := func(name string) int {
		w, ok := in.Weights[name]
		if !ok {
			return 1
		}
		return max(w, 0)
	}
	positive := false
	for _, name := range all {
		positive = positive || weightOf(name) > 0
	}
	hs.names = nil
	for _, name := range all {
		w := weightOf(name)
		if !positive {
			w = 1
		}
		if w == 0 {
			hs.dropped = true
			continue
		}
		hs.names = append(hs.names, name)
		hs.weight = append(hs.weight, w)
		hs.zone = append(hs.zone, in.Zones[name])
	}
	return hs
}

// plain reports whether the holders span at most one zone and have equal
// weights: then the plain planner places them.
func (hs holderSet) plain() bool {
	for x := 1; x < len(hs.names); x++ {
		if hs.weight != nil && hs.weight[x] != hs.weight[0] {
			return false
		}
		if hs.zone != nil && hs.zone[x] != hs.zone[0] {
			return false
		}
	}
	return true
}

// subset returns the holders named in sorted names (a subset of hs.names).
func (hs holderSet) subset(names []string) holderSet {
	out := holderSet{all: names, names: names}
	out.weight = make([]int, len(names))
	out.zone = make([]string, len(names))
	for i, name := range names {
		x, _ := slices.BinarySearch(hs.names, name)
		out.weight[i], out.zone[i] = hs.weightAt(x), hs.zoneAt(x)
	}
	return out
}

func (hs holderSet) weightAt(x int) int {
	if hs.weight == nil {
		return 1
	}
	return hs.weight[x]
}

func (hs holderSet) zoneAt(x int) string {
	if hs.zone == nil {
		return ""
	}
	return hs.zone[x]
}

// checkNonHolders reports an owner of weight 0.
func checkNonHolders(t [][]string, in Input, hs holderSet) error {
	for i, owners := range t {
		for _, name := range owners {
			_, isMember := slices.BinarySearch(hs.all, name)
			if _, holds := slices.BinarySearch(hs.names, name); isMember && !holds {
				return fmt.Errorf("placement: partition %d is owned by %q, which has weight 0", i, name)
			}
		}
	}
	return nil
}

// layout is everything the zone-aware path derives from its input before
// placing: holders with weights and zones, the per-partition zone bounds,
// who may lead, and the slot optimum T with its integer band.
type layout struct {
	names  []string
	w      []float64 // weight per holder (> 0)
	wInt   []int
	zone   []int32   // zone index per holder
	zones  []string  // distinct zones, sorted
	byZone [][]int32 // holders per zone, ascending
	lo, hi []int32   // per-partition owner count bounds, per zone
	k      int       // zones that get one owner above lo (those with hi > lo)
	p, r   int
	lead   []bool // nil: every holder may lead
	nLead  int
	eta    float64   // > 0: the leaders' rate was raised so they hold P slots
	t      []float64 // slot optimum T_x
	sLo    []int32   // floor(T_x)
	sHi    []int32   // ceil(T_x)
}

// newLayout analyses holders hs (at least one) for p partitions and rf.
func newLayout(hs holderSet, noLead []string, p, rf int) *layout {
	n := len(hs.names)
	ly := &layout{names: hs.names, p: p, r: max(min(rf, n), 0)}
	ly.w = make([]float64, n)
	ly.wInt = make([]int, n)
	for x := range n {
		ly.wInt[x] = hs.weightAt(x)
		ly.w[x] = float64(ly.wInt[x])
	}
	for x := range n {
		ly.zones = append(ly.zones, hs.zoneAt(x))
	}
	slices.Sort(ly.zones)
	ly.zones = slices.Compact(ly.zones)
	ly.zone = make([]int32, n)
	ly.byZone = make([][]int32, len(ly.zones))
	for x := range n {
		z, _ := slices.BinarySearch(ly.zones, hs.zoneAt(x))
		ly.zone[x] = int32(z)
		ly.byZone[z] = append(ly.byZone[z], int32(x))
	}
	ly.lead, ly.nLead = leaders(ly.names, noLead)
	ly.zoneBounds()
	ly.slotTargets()
	return ly
}

// zoneBounds water-fills r owners over the zones (rule 2).
func (ly *layout) zoneBounds() {
	nz := len(ly.zones)
	sumAt := func(l int) int {
		s := 0
		for _, m := range ly.byZone {
			s += min(len(m), l)
		}
		return s
	}
	l := 0
	for l < ly.r && sumAt(l+1) <= ly.r {
		l++
	}
	ly.k = ly.r - sumAt(l)
	ly.lo, ly.hi = make([]int32, nz), make([]int32, nz)
	up := 0
	if ly.k > 0 {
		up = 1
	}
	for z, m := range ly.byZone {
		ly.lo[z] = int32(min(len(m), l))
		ly.hi[z] = int32(min(len(m), l+up))
	}
}

// rootTol is the tolerance, in slots, of the sums root solves for: far
// below roundEps.
const rootTol = 1e-9

// root returns v in [lo, hi] where the nondecreasing g crosses 0 (g(v)
// within rootTol of 0, or the smallest v found with g(v) ≥ 0), given
// g(lo) < 0 ≤ g(hi) or not. It is the Illinois variant of false position:
// the sums solved here are piecewise linear, where it is exact on the
// final piece, so it takes a few steps where bisection takes fifty.
func root(lo, hi float64, g func(float64) float64) float64 {
	glo, ghi := g(lo), g(hi)
	if glo >= 0 {
		return lo
	}
	if ghi <= 0 {
		return hi
	}
	side := 0
	for range 200 {
		v := hi - float64(ghi*(hi-lo))/(ghi-glo)
		if !(v > lo && v < hi) {
			v = lo + (hi-lo)/2
			if !(v > lo && v < hi) {
				break
			}
		}
		gv := g(v)
		if math.Abs(gv) <= rootTol {
			return v
		}
		if gv < 0 {
			lo, glo = v, gv
			if side < 0 {
				ghi /= 2
			}
			side = -1
		} else {
			hi, ghi = v, gv
			if side > 0 {
				glo /= 2
			}
			side = 1
		}
	}
	return hi
}

// memberSlots is T_x at zone rate rate and leaders' extra rate eta.
func (ly *layout) memberSlots(x int32, rate, eta, pf float64) float64 {
	if eta != 0 && ly.lead[x] {
		rate += eta
	}
	return min(max(float64(ly.w[x]*rate), 0), pf)
}

func (ly *layout) zoneSlots(z int, rate, eta, pf float64) float64 {
	s := 0.0
	for _, x := range ly.byZone[z] {
		s += ly.memberSlots(x, rate, eta, pf)
	}
	return s
}

// solve computes T for the leaders' extra rate eta (rule 3).
func (ly *layout) solve(eta float64) []float64 {
	n, nz := len(ly.names), len(ly.zones)
	pf := float64(ly.p)
	t := make([]float64, n)
	if ly.r == 0 || ly.p == 0 {
		return t
	}
	minW := slices.Min(ly.w)
	bottom, top := -eta, pf/minW+1 // every T_x is 0 at bottom, P at top
	rlo, rhi := make([]float64, nz), make([]float64, nz)
	for z := range nz {
		zlo, zhi := float64(ly.lo[z])*pf, float64(ly.hi[z])*pf
		rlo[z] = root(bottom, top, func(v float64) float64 { return ly.zoneSlots(z, v, eta, pf) - zlo })
		rhi[z] = root(bottom, top, func(v float64) float64 { return ly.zoneSlots(z, v, eta, pf) - zhi })
	}
	total := float64(ly.r) * pf
	mu := root(bottom, top, func(v float64) float64 {
		s := 0.0
		for z := range nz {
			s += ly.zoneSlots(z, min(max(v, rlo[z]), rhi[z]), eta, pf)
		}
		return s - total
	})
	if eta != 0 {
		for z := range nz {
			rate := min(max(mu, rlo[z]), rhi[z])
			for _, x := range ly.byZone[z] {
				t[x] = ly.memberSlots(x, rate, eta, pf)
			}
		}
		return t
	}
	// Polish: bisection found which zones' bounds bind; recompute exactly
	// by water-filling (integers stay integers, e.g. P/2 for two members
	// sharing one owner per partition).
	caps := make([]float64, n)
	for x := range caps {
		caps[x] = pf
	}
	var free []int32
	rest := total
	for z := range nz {
		switch {
		case mu <= rlo[z] || mu >= rhi[z]:
			zt := float64(ly.lo[z]) * pf
			if mu >= rhi[z] && rlo[z] != rhi[z] {
				zt = float64(ly.hi[z]) * pf
			}
			waterFill(zt, ly.byZone[z], ly.w, caps, t)
			rest -= zt
		default:
			free = append(free, ly.byZone[z]...)
		}
	}
	slices.Sort(free)
	waterFill(max(rest, 0), free, ly.w, caps, t)
	return t
}

// waterFill sets out[x] = min(caps[x], ρ·w[x]) for x in idx with
// Σ out[x] = total (every out[x] = caps[x] when the caps sum to less).
func waterFill(total float64, idx []int32, w, caps, out []float64) {
	order := slices.Clone(idx)
	// Ascending caps[x]/w[x]: those capped first.
	slices.SortFunc(order, func(a, b int32) int {
		return cmp.Or(cmp.Compare(float64(caps[a]*w[b]), float64(caps[b]*w[a])), cmp.Compare(a, b))
	})
	wrem := 0.0
	for _, x := range order {
		wrem += w[x]
	}
	rem := total
	for k, x := range order {
		share := float64(rem*w[x]) / wrem
		if caps[x] <= share {
			out[x] = caps[x]
			rem -= caps[x]
			wrem -= w[x]
			continue
		}
		for _, y := range order[k:] {
			out[y] = float64(rem*w[y]) / wrem
		}
		return
	}
}

// slotTargets computes T (rule 3) and its bands.
func (ly *layout) slotTargets() {
	pf := float64(ly.p)
	if ly.lead != nil && ly.r == 1 {
		// Every slot is a primary: the leaders share all, by weight
		// (what the search below converges to; the zone rule is void).
		ly.t = ly.primaryTargets(slices.Repeat([]float64{pf}, len(ly.names)))
		ly.sLo, ly.sHi = bands(ly.t, pf)
		return
	}
	t := ly.solve(0)
	if ly.lead != nil && ly.r > 0 && ly.p > 0 && ly.leaderSlots(t) < pf-roundEps {
		// The leaders need P slots between them; raise their rate.
		short := func(eta float64) float64 { return ly.leaderSlots(ly.solve(eta)) - (pf - roundEps/2) }
		hi := pf / slices.Min(ly.w)
		for range 64 {
			if short(hi) >= 0 {
				break
			}
			hi *= 2
		}
		ly.eta = root(0, hi, short)
		t = ly.solve(ly.eta)
	}
	ly.t = t
	ly.sLo, ly.sHi = bands(t, pf)
}

func (ly *layout) leaderSlots(t []float64) float64 {
	s := 0.0
	for x, v := range t {
		if ly.lead[x] {
			s += v
		}
	}
	return s
}

// bands rounds fractional optima to their floor and ceil, within [0, top].
func bands(v []float64, top float64) (lo, hi []int32) {
	lo, hi = make([]int32, len(v)), make([]int32, len(v))
	for x, f := range v {
		l := math.Floor(min(f+roundEps, top))
		h := math.Ceil(max(f-roundEps, 0))
		lo[x], hi[x] = int32(l), int32(max(h, l))
	}
	return lo, hi
}

// canLead reports whether holder x may be a primary.
func (ly *layout) canLead(x int32) bool { return ly.lead == nil || ly.lead[x] }

// primaryTargets computes Q (rule 4) for slot counts caps.
func (ly *layout) primaryTargets(caps []float64) []float64 {
	q := make([]float64, len(ly.names))
	var idx []int32
	for x := range ly.names {
		if ly.canLead(int32(x)) {
			idx = append(idx, int32(x))
		}
	}
	if len(idx) > 0 && ly.r > 0 {
		waterFill(float64(ly.p), idx, ly.w, caps, q)
	}
	return q
}

// assignZoned is AssignInput's zone-aware path. As on the plain path,
// several joiners join one at a time in sorted order (no copysets); only
// those whose slot floor is positive count: a member that may stay empty
// joins with the old members, so that a valid table (where it may own
// nothing) stays a fixed point.
func assignZoned(in Input, hs holderSet) [][]string {
	noLead := normalize(in.NoPrimary)
	full := newLayout(hs, noLead, in.Partitions, in.RF)
	if full.r > 0 {
		if old, joiners := splitJoiners(in.Prev, hs.names, in.Partitions); len(old) > 0 && len(joiners) > 1 {
			var steps []string
			for _, j := range joiners {
				if x, _ := slices.BinarySearch(full.names, j); full.sLo[x] > 0 {
					steps = append(steps, j)
				} else {
					k, _ := slices.BinarySearch(old, j)
					old = slices.Insert(old, k, j)
				}
			}
			if len(steps) > 1 {
				t := in.Prev
				for s, j := range steps {
					k, _ := slices.BinarySearch(old, j)
					old = slices.Insert(old, k, j)
					ly := full
					if s < len(steps)-1 {
						ly = newLayout(hs.subset(old), noLead, in.Partitions, in.RF)
					}
					t = placeZoned(t, ly)
				}
				return t
			}
		}
	}
	return placeZoned(in.Prev, full)
}

// Targets returns every member's fractional optimum of slots (T_x) and of
// primaries (Q_x) for in, by name; members that hold nothing get 0. On the
// zone-aware path they are rules 3 and 4 of zones.go (Q capped at T rather
// than at the integer slot count the table ends with); on the plain path
// r·P/N slots and P/e primaries (e: members that may lead), or, when too
// many members are in NoPrimary for even slots, P/e slots for those that
// may lead and (r−1)·P/(N−e) for the others. Slot and primary counts of
// AssignInput's result are floor or ceil of these.
func Targets(in Input) (slots, primaries map[string]float64) {
	hs := holdersOf(in)
	slots, primaries = map[string]float64{}, map[string]float64{}
	for _, name := range hs.all {
		slots[name], primaries[name] = 0, 0
	}
	n, p := len(hs.names), max(in.Partitions, 0)
	r := max(min(in.RF, n), 0)
	if n == 0 || r == 0 || p == 0 {
		return slots, primaries
	}
	if !hs.plain() {
		ly := newLayout(hs, normalize(in.NoPrimary), p, in.RF)
		q := ly.primaryTargets(ly.t)
		for x, name := range ly.names {
			slots[name], primaries[name] = ly.t[x], q[x]
		}
		return slots, primaries
	}
	pf := float64(p)
	lead, e := leaders(hs.names, normalize(in.NoPrimary))
	split := lead != nil && (r == 1 || !uniformOK(p, r, n, e))
	for x, name := range hs.names {
		switch {
		case lead == nil:
			slots[name], primaries[name] = float64(r)*pf/float64(n), pf/float64(n)
		case lead[x]:
			slots[name], primaries[name] = float64(r)*pf/float64(n), pf/float64(e)
			if split {
				slots[name] = pf / float64(e)
			}
		default:
			slots[name] = float64(r) * pf / float64(n)
			if split {
				slots[name] = float64(r-1) * pf / float64(n-e)
			}
		}
	}
	return slots, primaries
}

// Constraints returns notes for operators on constraints of in that cannot
// be met (too few holders for RF, too few zones, a zone too small for its
// share, weights that the zone spread or the one-slot-per-partition cap
// overrides, NoPrimary limits), in a fixed order; nil when everything is
// met.
func Constraints(in Input) []string {
	hs := holdersOf(in)
	n, p := len(hs.names), max(in.Partitions, 0)
	if in.RF <= 0 || p == 0 {
		return nil
	}
	var notes []string
	if n < in.RF {
		if hs.dropped {
			notes = append(notes, fmt.Sprintf("RF %d but only %d %s hold data (weight > 0)", in.RF, n, plural(n, "member", "members")))
		} else {
			notes = append(notes, fmt.Sprintf("RF %d but only %d %s", in.RF, n, plural(n, "member", "members")))
		}
	}
	if n == 0 {
		return notes
	}
	noLead := normalize(in.NoPrimary)
	inNoLead := 0
	for _, name := range hs.names {
		if _, ok := slices.BinarySearch(noLead, name); ok {
			inNoLead++
		}
	}
	if inNoLead == n {
		notes = append(notes, "every member that holds data is in NoPrimary: NoPrimary is ignored")
	}
	if hs.plain() {
		r := min(in.RF, n)
		if zoned := hs.zone != nil && hs.zone[0] != ""; zoned && r > 1 {
			notes = append(notes, fmt.Sprintf("1 zone for RF %d: a partition may have %d owners in one zone", in.RF, r))
		}
		if lead, e := leaders(hs.names, noLead); lead != nil && (r == 1 || !uniformOK(p, r, n, e)) {
			notes = append(notes, fmt.Sprintf("%d of %d members in NoPrimary: too few may lead for even slots; "+
				"each partition has one owner that may lead, which owns only what it leads", n-e, n))
		}
		return notes
	}
	ly := newLayout(hs, noLead, p, in.RF)
	r, nz := ly.r, len(ly.zones)
	pf := float64(p)
	if nz < r && (nz > 1 || ly.zones[0] != "") {
		maxHi := slices.Max(ly.hi)
		notes = append(notes, fmt.Sprintf("%d %s for RF %d: a partition may have %d owners in one zone",
			nz, plural(nz, "zone", "zones"), in.RF, maxHi))
	}
	if nz > 1 {
		share := (r + nz - 1) / nz
		for z, zn := range ly.zones {
			if m := len(ly.byZone[z]); m < share {
				notes = append(notes, fmt.Sprintf("zone %q has %d %s for RF %d over %d zones",
					zn, m, plural(m, "member", "members"), in.RF, nz))
			}
		}
	}
	wsum := 0.0
	for _, w := range ly.w {
		wsum += w
	}
	for x, name := range ly.names {
		if want := float64(float64(r)*pf) * ly.w[x] / wsum; want > pf+roundEps {
			notes = append(notes, fmt.Sprintf("member %q: weight %d asks for %.1f slots of %d partitions; capped at one per partition",
				name, ly.wInt[x], want, p))
		}
	}
	if nz > 1 {
		for z, zn := range ly.zones {
			zw, zt := 0.0, 0.0
			for _, x := range ly.byZone[z] {
				zw += ly.w[x]
				zt += ly.t[x]
			}
			if want := float64(float64(r)*pf) * zw / wsum; math.Abs(want-zt) > 0.5 {
				notes = append(notes, fmt.Sprintf("zone %q has %.1f%% of the weight but holds %.1f%% of the slots "+
					"(owners are spread over zones first)", zn, 100*zw/wsum, 100*zt/(float64(r)*pf)))
			}
		}
	}
	if ly.eta > 0 {
		notes = append(notes, "the members that may lead (not in NoPrimary) hold too little weight for one owner per partition: "+
			"they get more slots than their weight")
	}
	if r > 0 {
		q := ly.primaryTargets(ly.t)
		le := 0.0
		for x := range ly.names {
			if ly.canLead(int32(x)) {
				le += ly.w[x]
			}
		}
		for x, name := range ly.names {
			if want := pf * ly.w[x] / le; ly.canLead(int32(x)) && want > q[x]+roundEps {
				notes = append(notes, fmt.Sprintf("member %q: its weight asks for %.1f primaries but it holds %.1f slots",
					name, want, ly.t[x]))
			}
		}
	}
	return notes
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// validateZoned is ValidateInput for the zone-aware path: rules 1–4.
func validateZoned(t [][]string, in Input, hs holderSet) error {
	p := max(in.Partitions, 0)
	if len(t) != p {
		return fmt.Errorf("placement: table has %d partitions, want %d", len(t), p)
	}
	if err := checkNonHolders(t, in, hs); err != nil {
		return err
	}
	ly := newLayout(hs, normalize(in.NoPrimary), p, in.RF)
	n, r, nz := len(ly.names), ly.r, len(ly.zones)
	slots, prims := make([]int, n), make([]int, n)
	seen := make([]int, n)
	zc := make([]int32, nz)
	for i, owners := range t {
		if len(owners) != r {
			return fmt.Errorf("placement: partition %d has %d owners, want %d", i, len(owners), r)
		}
		clear(zc)
		for j, name := range owners {
			x, ok := slices.BinarySearch(ly.names, name)
			if !ok {
				return fmt.Errorf("placement: partition %d owner %d %q is not a member", i, j, name)
			}
			if seen[x] == i+1 {
				return fmt.Errorf("placement: partition %d lists owner %q twice", i, name)
			}
			seen[x] = i + 1
			slots[x]++
			zc[ly.zone[x]]++
			if j == 0 {
				prims[x]++
				if !ly.canLead(int32(x)) {
					return fmt.Errorf("placement: partition %d is led by %q, which is in NoPrimary", i, name)
				}
			}
		}
		for z, c := range zc {
			if c < ly.lo[z] || c > ly.hi[z] {
				return fmt.Errorf("placement: partition %d has %d owners in zone %q, want within [%d, %d] (%s)",
					i, c, ly.zones[z], ly.lo[z], ly.hi[z], strings.Join(owners, ", "))
			}
		}
	}
	if r == 0 {
		return nil
	}
	caps := make([]float64, n)
	for x, name := range ly.names {
		if s := int32(slots[x]); s < ly.sLo[x] || s > ly.sHi[x] {
			return fmt.Errorf("placement: member %q has %d slots, want within [%d, %d] (optimum %.3f)",
				name, s, ly.sLo[x], ly.sHi[x], ly.t[x])
		}
		caps[x] = float64(slots[x])
	}
	q := ly.primaryTargets(caps)
	pLo, pHi := bands(q, float64(p))
	for x, name := range ly.names {
		if c := int32(prims[x]); c < pLo[x] || c > pHi[x] {
			return fmt.Errorf("placement: member %q leads %d partitions, want within [%d, %d] (optimum %.3f)",
				name, c, pLo[x], pHi[x], q[x])
		}
	}
	return nil
}
