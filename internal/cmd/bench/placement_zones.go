package main

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/internal/placement"
)

// zoneRendezvous is the zone-aware baseline: weighted rendezvous hashing
// with zone filtering. Each member scores −w/ln(u) for partition i, u the
// md5(member, partition) hash as a number in (0, 1) (weighted highest
// random weight: a member's chance to rank first is proportional to w).
// Walking the ranking, the best member of each zone is taken until the
// owners span min(RF, zones) zones, then the ranking fills the rest; the
// highest-ranked owner leads. Members of weight 0 own nothing.
func zoneRendezvous(in placement.Input) [][]string {
	type scored struct {
		name  string
		zone  string
		score float64
	}
	var hold []scored
	for _, m := range in.Members {
		if w, ok := in.Weights[m]; !ok || w > 0 {
			hold = append(hold, scored{name: m, zone: in.Zones[m]})
		}
	}
	zones := map[string]bool{}
	for _, h := range hold {
		zones[h.zone] = true
	}
	r := min(in.RF, len(hold))
	spread := min(r, len(zones))
	out := make([][]string, in.Partitions)
	for i := range out {
		id := keyhash.ID(uint32(i))
		for k := range hold {
			sum := md5.Sum([]byte(hold[k].name + "\x00" + id))
			u := (float64(binary.BigEndian.Uint64(sum[:8])>>11) + 0.5) / (1 << 53)
			w, ok := in.Weights[hold[k].name]
			if !ok {
				w = 1
			}
			hold[k].score = -float64(w) / math.Log(u)
		}
		slices.SortFunc(hold, func(a, b scored) int {
			return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.name, b.name))
		})
		var owners []string
		used := map[string]bool{}
		for _, h := range hold {
			if len(used) < spread && !used[h.zone] {
				used[h.zone] = true
				owners = append(owners, h.name)
			}
		}
		for _, h := range hold {
			if len(owners) < r && !slices.Contains(owners, h.name) {
				owners = append(owners, h.name)
			}
		}
		// Owners in rank order: the highest-ranked leads.
		rank := func(name string) int { return slices.IndexFunc(hold, func(h scored) bool { return h.name == name }) }
		slices.SortFunc(owners, func(a, b string) int { return cmp.Compare(rank(a), rank(b)) })
		out[i] = owners
	}
	return out
}

// copies counts the (partition, owner) pairs of next that prev lacks: the
// slots whose data must be copied.
func copies(prev, next [][]string) int {
	c := 0
	for i, owners := range next {
		for _, x := range owners {
			if i >= len(prev) || !slices.Contains(prev[i], x) {
				c++
			}
		}
	}
	return c
}

// copiesLowerBound is the simple lower bound on the copies of any table
// for in that meets the slot optimum: every holder x needs floor(T_x) slots
// and only those it owned in in.Prev are there already:
// Σ_x max(0, floor(T_x) − prev slots of x). placement.MinCopies is the
// exact minimum under the zone rule, which can be far above it when zone
// shares shift (a zone that must gain can only enter partitions without
// one of its members).
func copiesLowerBound(in placement.Input) int {
	ts, _ := placement.Targets(in)
	had := placement.Loads(in.Prev).Slots
	lb := 0
	for _, m := range slices.Sorted(maps.Keys(ts)) {
		lb += max(0, int(math.Floor(ts[m]+1e-6))-had[m])
	}
	return lb
}

// zoneBalance returns the worst member's slots ÷ ceil(T_x) and primaries ÷
// ceil(Q_x) (1 is optimal), and the partitions whose owners all share one
// zone (RF > 1).
func zoneBalance(t [][]string, in placement.Input) (slots, prims float64, oneZone int) {
	ts, qs := placement.Targets(in)
	l := placement.Loads(t)
	for m, v := range ts {
		if c := math.Ceil(v - 1e-6); c > 0 {
			slots = max(slots, float64(l.Slots[m])/c)
		}
		if c := math.Ceil(qs[m] - 1e-6); c > 0 {
			prims = max(prims, float64(l.Primaries[m])/c)
		}
	}
	for _, owners := range t {
		same := len(owners) > 1
		for _, x := range owners[1:] {
			same = same && in.Zones[x] == in.Zones[owners[0]]
		}
		if same {
			oneZone++
		}
	}
	return slots, prims, oneZone
}

// zoneScenario is one zone and weight layout of the benchmark.
type zoneScenario struct {
	name    string
	zones   []int // members per zone
	weights []int // weight of the k-th member of each zone, cycled; nil: 1
	rf      int
	lose    bool // start from the layout, then lose the last zone
}

var zoneScenarios = []zoneScenario{
	{name: "3 zones × 3 nodes", zones: []int{3, 3, 3}, rf: 3},
	{name: "3 zones × 5 nodes", zones: []int{5, 5, 5}, rf: 3},
	{name: "3 zones × 7 nodes", zones: []int{7, 7, 7}, rf: 3},
	{name: "uneven zones 2/3/5", zones: []int{2, 3, 5}, rf: 3},
	{name: "3 × 3 nodes, a zone lost", zones: []int{3, 3, 3}, rf: 3, lose: true},
	{name: "3 zones × 3 nodes, weights 1/2/4", zones: []int{3, 3, 3}, weights: []int{1, 2, 4}, rf: 3},
	{name: "uneven 2/3/5, weights 1/2/4, RF 2", zones: []int{2, 3, 5}, weights: []int{1, 2, 4}, rf: 2},
}

func (sc zoneScenario) input(p int) placement.Input {
	in := placement.Input{Partitions: p, RF: sc.rf, Zones: map[string]string{}, Weights: map[string]int{}}
	for z, n := range sc.zones {
		for k := range n {
			m := fmt.Sprintf("%c%d", 'a'+z, k)
			in.Members = append(in.Members, m)
			in.Zones[m] = fmt.Sprintf("zone-%c", 'a'+z)
			if sc.weights != nil {
				in.Weights[m] = sc.weights[k%len(sc.weights)]
			}
		}
	}
	return in
}

// withMembers returns in with members ms (zones and weights kept; a new
// member of zone z gets zone z and the weight of z's first member).
func withMembers(in placement.Input, ms []string, zoneOf map[string]string) placement.Input {
	out := in
	out.Members = ms
	out.Zones, out.Weights = maps.Clone(in.Zones), maps.Clone(in.Weights)
	for m, z := range zoneOf {
		out.Zones[m] = z
	}
	return out
}

// zoneRowsPer is the number of rows zoneRows writes per scenario.
const zoneRowsPer = 6

// zoneTimings is the number of timing configurations zoneRows measures
// (each a from-scratch and a join row): the large one is skipped with
// -quick.
func zoneTimings(cfg *config) int {
	if cfg.quick {
		return 1
	}
	return 2
}

// zoneOutcome is one algorithm's figures over one scenario.
type zoneOutcome struct {
	slots, prims []float64 // per table
	oneZone      int       // worst table's partitions with every owner in one zone
	join, leave  []float64 // copies ÷ copiesLowerBound per change
	exact        []float64 // copies ÷ placement.MinCopies, joins and leaves
}

// measureZones runs assign over sc: the start table, a join into every
// zone and every member's leave (with quick, the first of each zone's), or
// for a lost zone: the loss is the leave, and the joins are its members
// coming back one at a time to the table after it.
func measureZones(sc zoneScenario, p int, quick bool, assign func(placement.Input) [][]string) zoneOutcome {
	var o zoneOutcome
	base := sc.input(p)
	base.Prev = assign(base)
	record := func(t [][]string, in placement.Input) {
		s, q, one := zoneBalance(t, in)
		o.slots, o.prims, o.oneZone = append(o.slots, s), append(o.prims, q), max(o.oneZone, one)
	}
	record(base.Prev, base)
	change := func(in placement.Input, join bool) {
		t := assign(in)
		record(t, in)
		c := float64(copies(in.Prev, t))
		o.exact = append(o.exact, c/float64(max(placement.MinCopies(in), 1)))
		if lb := float64(max(copiesLowerBound(in), 1)); join {
			o.join = append(o.join, c/lb)
		} else {
			o.leave = append(o.leave, c/lb)
		}
	}
	if sc.lose {
		lost := fmt.Sprintf("zone-%c", 'a'+len(sc.zones)-1)
		keep := slices.DeleteFunc(slices.Clone(base.Members), func(m string) bool { return base.Zones[m] == lost })
		after := withMembers(base, keep, nil)
		change(after, false)
		after.Prev = assign(after)
		for k := range sc.zones[len(sc.zones)-1] {
			m := fmt.Sprintf("%c%d", 'a'+len(sc.zones)-1, k)
			change(withMembers(after, append(slices.Clone(keep), m), nil), true)
		}
		return o
	}
	for z := range sc.zones {
		m := fmt.Sprintf("%c%d", 'a'+z, 99)
		in := withMembers(base, append(slices.Clone(base.Members), m), map[string]string{m: fmt.Sprintf("zone-%c", 'a'+z)})
		if sc.weights != nil {
			in.Weights[m] = sc.weights[z%len(sc.weights)]
		}
		change(in, true)
	}
	for k, m := range base.Members {
		if quick && m[1:] != "0" {
			continue // -quick: the first member of each zone only
		}
		change(withMembers(base, slices.Delete(slices.Clone(base.Members), k, k+1), nil), false)
	}
	return o
}

// zoneRows measures every zone scenario, ours against zoneRendezvous:
// zoneRowsPer rows per scenario, then the timings (4, or 2 with -quick).
func zoneRows(s *section, cfg *config) []row {
	p := 1024
	if cfg.quick {
		p = 256
	}
	s.notes = append(s.notes, "Zones and weights (P="+fmt.Sprint(p)+"; RF 3 unless named): a scenario's tables are the start (from scratch), "+
		"a join into every zone (a member of the zone's first member's weight) and every member's leave, each from the start "+
		"(a lost zone: losing it is the leave, and each of its members coming back is a join). Balance is the worst member's "+
		"slots ÷ ceil(T) and primaries ÷ ceil(Q), T and Q the fractional optima of placement.Targets (1 is optimal; they "+
		"are the same for both algorithms). Copies are (partition, owner) pairs new in the table; the lower bound is "+
		"Σ max(0, floor(T) − slots the member already had); the exact minimum is placement.MinCopies (a min-cost flow under "+
		"the zone rule and slot bands, primaries aside), which is far above that bound when zone shares shift (RF 2, "+
		"weights: a heavy member's leave). One-zone partitions have all owners in one zone. The baseline "+
		"is weighted rendezvous hashing (score −w/ln u, u = md5(member, partition)) that takes the best member of each zone "+
		"until min(RF, zones) zones, then fills from the ranking; it can copy less than the minimum because it does not "+
		"balance (the minimum is over tables that meet the slot bands).")
	var rows []row
	for _, sc := range zoneScenarios {
		ours := measureZones(sc, p, cfg.quick, placement.AssignInput)
		ref := measureZones(sc, p, cfg.quick, zoneRendezvous)
		add := func(name string, o, b []float64, ratio, target, met string) {
			rows = append(rows, row{name: sc.name + ": " + name, median: fmt.Sprintf("%.3f", median(o)),
				p99: fmt.Sprintf("%.3f", p99(o)), trials: fmt.Sprint(len(o)),
				baseline: fmt.Sprintf("%.3f (p99 %.3f)", median(b), p99(b)), ratio: ratio, target: target, met: met})
		}
		worse := func(o, b []float64) string { return "rendezvous " + fmtRatio(p99(b)/p99(o)) + " worse" }
		of := func(o, b []float64) string { return "rendezvous copies " + fmtRatio(p99(b)/p99(o)) + " of ours (p99)" }
		add("worst slots ÷ ceil(T)", ours.slots, ref.slots, worse(ours.slots, ref.slots),
			"1.00 (floor/ceil of T) [topology]", yesNo(slices.Max(ours.slots) <= 1))
		add("worst primaries ÷ ceil(Q)", ours.prims, ref.prims, worse(ours.prims, ref.prims),
			"1.00 (floor/ceil of Q) [topology]", yesNo(slices.Max(ours.prims) <= 1))
		nt, nm := noTarget("(see the exact minimum)")
		add("join, copies ÷ lower bound", ours.join, ref.join, of(ours.join, ref.join), nt, nm)
		add("leave, copies ÷ lower bound", ours.leave, ref.leave, of(ours.leave, ref.leave), nt, nm)
		mt, mm := targetLE(slices.Max(ours.exact), 1.05, "≤ 1.05 at every change", "[topology]")
		add("joins and leaves, copies ÷ exact minimum", ours.exact, ref.exact, of(ours.exact, ref.exact), mt, mm)
		ot, om := targetLE(float64(ours.oneZone), 0, "0", "[topology]")
		rows = append(rows, row{name: sc.name + ": partitions with every owner in one zone (worst table)",
			median: fmt.Sprint(ours.oneZone), p99: fmt.Sprint(ours.oneZone), trials: fmt.Sprint(len(ours.slots)),
			baseline: fmt.Sprint(ref.oneZone), target: ot, met: om})
	}

	// Computation time, mixed weights over 3 zones.
	calls := 50
	if cfg.quick {
		calls = 5
	}
	for _, c := range []struct {
		p, n  int
		limit float64
		text  string
	}{{1024, 50, 50, "≤ 50 ms"}, {4096, 200, 1000, "≤ 1 s"}}[:zoneTimings(cfg)] {
		in := placement.Input{Partitions: c.p, RF: 3, Zones: map[string]string{}, Weights: map[string]int{}}
		for k := range c.n {
			m := fmt.Sprintf("node-%03d", k)
			in.Members = append(in.Members, m)
			in.Zones[m] = fmt.Sprintf("zone-%d", k%3)
			in.Weights[m] = []int{1, 2, 4}[(k/3)%3]
		}
		joined := in
		joined.Prev = placement.AssignInput(withMembers(in, in.Members[:c.n-1], nil))
		for _, v := range []struct {
			name string
			in   placement.Input
		}{{"from scratch", in}, {fmt.Sprintf("join %d → %d", c.n-1, c.n), joined}} {
			var took []time.Duration
			for range calls {
				t0 := time.Now()
				placement.AssignInput(v.in)
				took = append(took, time.Since(t0))
			}
			r := row{name: fmt.Sprintf("zones: time to compute a table %s, P=%d, %d members in 3 zones, weights 1/2/4, RF 3", v.name, c.p, c.n),
				median: fmtMs(median(ms(took))), p99: fmtMs(p99(ms(took))), trials: fmt.Sprint(calls)}
			r.target, r.met = targetLE(p99(ms(took)), c.limit, c.text, "[topology]")
			rows = append(rows, r)
		}
	}
	return rows
}
