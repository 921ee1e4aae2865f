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
	return s, nil
}
