package main

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/internal/placement"
)

// rendezvous assigns partitions by highest-random-weight hashing, the
// reference's method: each partition is owned by the rf members with the
// highest md5(member, partition) scores, the highest one leading. It
// keeps no state, so a change moves only what the scores dictate, but
// nothing balances the loads.
func rendezvous(members []string, partitions, rf int) [][]string {
	r := min(rf, len(members))
	out := make([][]string, partitions)
	type scored struct {
		name  string
		score uint64
	}
	sc := make([]scored, len(members))
	for i := range out {
		id := keyhash.ID(uint32(i))
		for j, m := range members {
			sum := md5.Sum([]byte(m + "\x00" + id))
			sc[j] = scored{m, binary.BigEndian.Uint64(sum[:8])}
		}
		slices.SortFunc(sc, func(a, b scored) int {
			return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.name, b.name))
		})
		owners := make([]string, r)
		for k := range r {
			owners[k] = sc[k].name
		}
		out[i] = owners
	}
	return out
}

// balance returns the most-loaded member's primaries and slots divided by
// the integer optimum (ceil of the ideal): 1 is perfect.
func balance(t [][]string, n, rf int) (primary, slots float64) {
	if n == 0 || len(t) == 0 {
		return 1, 1
	}
	r := min(rf, n)
	l := placement.Loads(t)
	maxP, maxS := 0, 0
	for _, v := range l.Primaries {
		maxP = max(maxP, v)
	}
	for _, v := range l.Slots {
		maxS = max(maxS, v)
	}
	p := len(t)
	return float64(maxP) / math.Ceil(float64(p)/float64(n)), float64(maxS) / math.Ceil(float64(r*p)/float64(n))
}

// step is one membership change of the sequence.
type step struct {
	members []string
	join    bool
}

// placementSequence grows a cluster from 1 to maxN members one join at a
// time, then shrinks it back to 1, removing members in a fixed pseudo-random
// order (a real departure is rarely the newest member).
func placementSequence(maxN int) []step {
	var steps []step
	var cur []string
	for i := 1; i <= maxN; i++ {
		cur = append(slices.Clone(cur), fmt.Sprintf("node-%d", i))
		steps = append(steps, step{members: cur, join: true})
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for len(cur) > 1 {
		k := rng.IntN(len(cur))
		cur = slices.Delete(slices.Clone(cur), k, k+1)
		steps = append(steps, step{members: cur})
	}
	return steps
}

// quality is the outcome of one algorithm over a sequence.
type quality struct {
	primary, slots []float64 // per step, after the change
	join, leave    []float64 // moved partitions ÷ optimum, per change
}

// measureQuality runs assign over steps. The optimum movement of a join to
// N+1 members is the new member's ideal share min(RF, N+1)·P/(N+1) (each of
// its slots is in a different partition); of a leave from N members, the
// departed member's ideal share min(RF, N)·P/N.
func measureQuality(steps []step, p, rf int, assign func(prev [][]string, members []string) [][]string) quality {
	var q quality
	var prev [][]string
	for i, s := range steps {
		next := assign(prev, s.members)
		n := len(s.members)
		pb, sb := balance(next, n, rf)
		q.primary = append(q.primary, pb)
		q.slots = append(q.slots, sb)
		if i > 0 {
			moved := float64(placement.Moved(prev, next))
			if s.join {
				q.join = append(q.join, moved/(float64(min(rf, n)*p)/float64(n)))
			} else {
				old := n + 1
				q.leave = append(q.leave, moved/(float64(min(rf, old)*p)/float64(old)))
			}
		}
		prev = next
	}
	return q
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func runPlacement(cfg *config) (*section, error) {
	const rf, maxN = 3, 20
	steps := placementSequence(maxN)
	s := &section{
		title: "Placement ([core])",
		intro: fmt.Sprintf(`RF 3; N grows from 1 to %d one join at a time and shrinks back to 1 (leaves in a fixed pseudo-random
order): %d changes, the same sequence for ours (`+"`internal/placement`"+`) and for rendezvous hashing (highest
md5(member, partition) wins, the reference's method). Balance is the most-loaded member's primaries (slots) divided by
the integer optimum ceil(P/N) (ceil(RF·P/N)), 1.00 being perfect, over every step. Movement is partitions whose owner
set changed divided by the optimum: the joiner's ideal share min(RF,N)·P/N on a join, the departed member's on a leave.`,
			maxN, len(steps)-1),
	}
	for _, p := range []int{64, 256, 1024} {
		ours := measureQuality(steps, p, rf, func(prev [][]string, m []string) [][]string { return placement.Assign(prev, m, p, rf) })
		ref := measureQuality(steps, p, rf, func(_ [][]string, m []string) [][]string { return rendezvous(m, p, rf) })
		add := func(name string, o, b []float64, target, met string) {
			s.rows = append(s.rows, row{name: fmt.Sprintf("P=%d: %s", p, name), median: fmt.Sprintf("%.3f", median(o)),
				p99: fmt.Sprintf("%.3f", p99(o)), trials: fmt.Sprint(len(o)), baseline: fmt.Sprintf("%.3f (p99 %.3f)", median(b), p99(b)),
				ratio: "rendezvous " + fmtRatio(p99(b)/p99(o)) + " worse", target: target, met: met})
		}
		worstP, worstS := slices.Max(ours.primary), slices.Max(ours.slots)
		add("worst primaries ÷ optimum", ours.primary, ref.primary, "1.00 at every step (floor/ceil) [core]", yesNo(worstP == 1))
		add("worst slots ÷ optimum", ours.slots, ref.slots, "1.00 at every step (floor/ceil) [core]", yesNo(worstS == 1))
		jt, jm := noTarget("(the target is for P ≥ 256)")
		if p >= 256 {
			jt, jm = targetLE(mean(ours.join), 1.05, fmt.Sprintf("mean ≤ 1.05 over the sequence (here %.3f)", mean(ours.join)), "[core]")
		}
		add("moved per join ÷ optimum", ours.join, ref.join, jt, jm)
		lt, lm := noTarget("")
		add("moved per leave ÷ optimum", ours.leave, ref.leave, lt, lm)
	}
	s.notes = append(s.notes, "The ratio compares the p99 (the worst step) of rendezvous hashing with ours.")
	s.rows = append(s.rows, joinRows(s)...)

	// Computation time of a table, P=1024, N=20.
	all := steps[maxN-1].members
	prev := placement.Assign(nil, all[:maxN-1], 1024, rf)
	calls := 200
	if cfg.quick {
		calls = 20
	}
	for _, c := range []struct {
		name string
		prev [][]string
	}{{"time to compute a table from scratch, P=1024, N=20", nil}, {"time to compute a join 19 → 20, P=1024", prev}} {
		var took []time.Duration
		for range calls {
			t0 := time.Now()
			placement.Assign(c.prev, all, 1024, rf)
			took = append(took, time.Since(t0))
		}
		r := row{name: c.name, median: fmtMs(median(ms(took))), p99: fmtMs(p99(ms(took))), trials: fmt.Sprint(calls)}
		r.target, r.met = targetLE(median(ms(took)), 5, "≤ 5 ms", "[core]")
		s.rows = append(s.rows, r)
	}
	s.rows = append(s.rows, zoneRows(s, cfg)...)
	return s, nil
}

// joinCase is one "several joins at once vs one at a time" configuration:
// a balanced table of from members grows to to members.
type joinCase struct{ p, rf, from, to int }

var joinCases = []joinCase{
	{64, 2, 2, 4}, {64, 2, 5, 8}, {64, 3, 2, 4}, {64, 3, 5, 8},
	{256, 2, 2, 4}, {256, 2, 5, 8}, {256, 3, 2, 4}, {256, 3, 5, 8},
}

// joinOutcome is where one way of growing leads, measured against the
// starting table.
type joinOutcome struct {
	moved     int     // partitions whose owner set changed
	copied    int     // owner slots that are new (data copied to a member)
	balance   float64 // the worse of primaries and slots ÷ optimum, at the end
	joinerSet int     // partitions owned by joiners only (a copyset's symptom)
	// The worst later leave: each member of the grown cluster leaves in turn
	// (alone, from the grown table); partitions changed ÷ the partitions it
	// owned, which is the optimum.
	leave                  float64
	leaveMoved, leaveOwned int // the worst leave's figures
}

// joinNames names members so that the arrival order differs from the sorted
// order: Assign places several joins in sorted order, and one at a time
// here follows arrival order, so the two are not the same computation.
func joinNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%c", 'a'+(i*3)%n) // a permutation while 3 does not divide n
	}
	return out
}

// measureJoin grows the table of c.from members to c.to members, either in
// one Assign call or one member per call (in arrival order).
func measureJoin(c joinCase, atOnce bool) joinOutcome {
	all := joinNames(c.to)
	if c.to%3 == 0 || c.to > 26 {
		panic("joinNames needs at most 26 members, not a multiple of 3")
	}
	start := placement.Assign(nil, all[:c.from], c.p, c.rf)
	end := start
	if atOnce {
		end = placement.Assign(start, all, c.p, c.rf)
	} else {
		for k := c.from + 1; k <= c.to; k++ {
			end = placement.Assign(end, all[:k], c.p, c.rf)
		}
	}
	var o joinOutcome
	o.moved = placement.Moved(start, end)
	joiners := all[c.from:]
	for i := range end {
		only := true
		for _, x := range end[i] {
			if !slices.Contains(start[i], x) {
				o.copied++
			}
			only = only && slices.Contains(joiners, x)
		}
		if only {
			o.joinerSet++
		}
	}
	pb, sb := balance(end, c.to, c.rf)
	o.balance = max(pb, sb)
	for k, x := range all {
		rest := slices.Delete(slices.Clone(all), k, k+1)
		moved := placement.Moved(end, placement.Assign(end, rest, c.p, c.rf))
		owned := placement.Loads(end).Slots[x]
		if r := float64(moved) / float64(owned); r > o.leave {
			o.leave, o.leaveMoved, o.leaveOwned = r, moved, owned
		}
	}
	return o
}

// joinRows compares several joins in one Assign call with the same joins one
// at a time, and describes every case in s's notes.
func joinRows(s *section) []row {
	s.notes = append(s.notes, "Joins at once vs one at a time: a balanced table of the first members grows by several members "+
		"in one Assign call (the figure) or one call per member in arrival order, which differs from the sorted order "+
		"Assign uses internally (the baseline). Slots copied are owner slots a member did not hold before; partitions "+
		"owned by joiners only show a copyset; each member of the grown cluster then leaves alone, and the worst ratio "+
		"of partitions changed to the partitions it owned is reported (1 is the optimum). Per case:")
	var once, seq []joinOutcome
	for _, c := range joinCases {
		a, b := measureJoin(c, true), measureJoin(c, false)
		once, seq = append(once, a), append(seq, b)
		s.notes = append(s.notes, fmt.Sprintf("P=%d RF %d, %d → %d members: at once %d partitions changed, %d slots copied, "+
			"%d owned by joiners only, worst later leave %d changed for %d owned; one at a time %d, %d, %d, %d for %d.",
			c.p, c.rf, c.from, c.to, a.moved, a.copied, a.joinerSet, a.leaveMoved, a.leaveOwned,
			b.moved, b.copied, b.joinerSet, b.leaveMoved, b.leaveOwned))
	}
	var rows []row
	add := func(name string, f func(c joinCase, o joinOutcome) float64) {
		var o, b []float64
		for i, c := range joinCases {
			o, b = append(o, f(c, once[i])), append(b, f(c, seq[i]))
		}
		t, m := noTarget("")
		rows = append(rows, row{name: "joins at once: " + name, median: fmt.Sprintf("%.3f", median(o)),
			p99: fmt.Sprintf("%.3f", p99(o)), trials: fmt.Sprint(len(o)),
			baseline: fmt.Sprintf("%.3f (p99 %.3f)", median(b), p99(b)),
			ratio:    "at once " + fmtRatio(mean(o)/mean(b)) + " of one at a time (means)", target: t, met: m})
	}
	add("worst primaries or slots ÷ optimum", func(_ joinCase, o joinOutcome) float64 { return o.balance })
	add("slots copied ÷ the joiners' share", func(c joinCase, o joinOutcome) float64 {
		return float64(o.copied) / (float64(c.to-c.from) * float64(min(c.rf, c.to)*c.p) / float64(c.to))
	})
	add("partitions changed ÷ P", func(c joinCase, o joinOutcome) float64 { return float64(o.moved) / float64(c.p) })
	add("partitions owned by joiners only ÷ P", func(c joinCase, o joinOutcome) float64 { return float64(o.joinerSet) / float64(c.p) })
	add("worst later leave, partitions changed ÷ the departed's", func(_ joinCase, o joinOutcome) float64 { return o.leave })
	return rows
}
