package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestEdgeCases(t *testing.T) {
	abc := []string{"a", "b", "c"}
	tests := []struct {
		name       string
		prev       [][]string
		members    []string
		partitions int
		rf         int
		want       [][]string // nil: only the invariants are checked
	}{
		{name: "no members", members: nil, partitions: 3, rf: 3,
			want: [][]string{{}, {}, {}}},
		{name: "only empty and duplicate names", members: []string{"", "", ""}, partitions: 2, rf: 1,
			want: [][]string{{}, {}}},
		{name: "no members with prev", prev: [][]string{{"a", "b"}, {"b"}}, partitions: 2, rf: 2,
			want: [][]string{{}, {}}},
		{name: "zero partitions", members: abc, partitions: 0, rf: 2, want: [][]string{}},
		{name: "negative partitions", members: abc, partitions: -5, rf: 2, want: [][]string{}},
		{name: "rf zero", members: abc, partitions: 2, rf: 0, want: [][]string{{}, {}}},
		{name: "rf negative", prev: [][]string{{"a"}}, members: abc, partitions: 2, rf: -1,
			want: [][]string{{}, {}}},
		{name: "one member", members: []string{"solo"}, partitions: 3, rf: 3,
			want: [][]string{{"solo"}, {"solo"}, {"solo"}}},
		{name: "N < RF: everyone owns everything", members: []string{"b", "a"}, partitions: 4, rf: 5},
		{name: "RF=1", members: abc, partitions: 7, rf: 1},
		{name: "P=1", members: abc, partitions: 1, rf: 2},
		{name: "P=1 RF=1", members: abc, partitions: 1, rf: 1},
		{name: "P < N", members: nodes(10), partitions: 3, rf: 3},
		{name: "dead primary promotes first alive replica",
			prev: [][]string{{"dead", "b", "c"}}, members: []string{"d", "c", "b"}, partitions: 1, rf: 3,
			want: [][]string{{"b", "c", "d"}}},
		{name: "dead, duplicate and empty owners ignored",
			prev:    [][]string{{"", "x", "a", "a", "", "b"}, {"b", "b", "c"}, {"c", "", "a"}},
			members: abc, partitions: 3, rf: 2,
			want: [][]string{{"a", "b"}, {"b", "c"}, {"c", "a"}}},
		{name: "prev longer than partitions", prev: [][]string{{"a"}, {"b"}, {"c"}, {"a"}, {"b"}},
			members: abc, partitions: 3, rf: 1, want: [][]string{{"a"}, {"b"}, {"c"}}},
		{name: "prev shorter than partitions", prev: [][]string{{"c", "a"}},
			members: abc, partitions: 6, rf: 2},
		{name: "prev with too many owners is truncated", prev: [][]string{{"a", "b", "c"}, {"b", "c", "a"}, {"c", "a", "b"}},
			members: abc, partitions: 3, rf: 2, want: [][]string{{"a", "b"}, {"b", "c"}, {"c", "a"}}},
		{name: "prev entirely on one node", prev: [][]string{{"a"}, {"a"}, {"a"}, {"a"}, {"a"}, {"a"}},
			members: abc, partitions: 6, rf: 2},
		{name: "rf raised", prev: [][]string{{"a", "b"}, {"b", "c"}, {"c", "d"}, {"d", "a"}},
			members: []string{"d", "c", "b", "a"}, partitions: 4, rf: 3},
		{name: "prev with nil entries", prev: [][]string{nil, {"b"}, nil}, members: abc, partitions: 3, rf: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prevCopy := cloneTable(tc.prev)
			memCopy := slices.Clone(tc.members)
			got := Assign(tc.prev, tc.members, tc.partitions, tc.rf)
			if !equalTables(tc.prev, prevCopy) || !slices.Equal(tc.members, memCopy) {
				t.Fatalf("inputs modified")
			}
			if err := checkTable(got, tc.members, tc.partitions, tc.rf); err != nil {
				t.Fatalf("%v\ntable: %v", err, got)
			}
			if tc.partitions > 0 {
				if err := Validate(got, tc.members, tc.rf); err != nil {
					t.Fatalf("Validate: %v\ntable: %v", err, got)
				}
			}
			if tc.want != nil && !equalTables(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			// A balanced table is a fixed point: recomputing moves nothing.
			if again := Assign(got, tc.members, tc.partitions, tc.rf); !equalTables(again, got) {
				t.Fatalf("not stable: %v -> %v", got, again)
			}
		})
	}
}

func TestNoSharedSlices(t *testing.T) {
	prev := [][]string{{"a", "b"}, {"b", "c"}, {"c", "a"}}
	prevCopy := cloneTable(prev)
	got := Assign(prev, []string{"a", "b", "c"}, 3, 2)
	for i := range got {
		got[i][0] = "mutated"
		got[i] = append(got[i], "extra") // must not clobber the next entry
	}
	if !equalTables(prev, prevCopy) {
		t.Fatalf("prev changed through result: %v", prev)
	}
	for i := range got {
		if got[i][1] == "extra" || got[i][1] == "mutated" {
			t.Fatalf("entries overlap: %v", got)
		}
	}
}

func TestDeterminism(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	members := nodes(17)
	prev := Assign(nil, members[:13], 256, 3)
	for range 20 {
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, "", shuffled[0], shuffled[3]) // ignored noise
		prevCopy, shufCopy := cloneTable(prev), slices.Clone(shuffled)
		a := Assign(prev, shuffled, 256, 3)
		b := Assign(prev, members, 256, 3)
		if !equalTables(a, b) {
			t.Fatalf("result depends on member order")
		}
		if !equalTables(prev, prevCopy) || !slices.Equal(shuffled, shufCopy) {
			t.Fatalf("inputs modified")
		}
	}
}

func TestMovedAndLoads(t *testing.T) {
	a := [][]string{{"a", "b"}, {"b", "c"}, {"c", "a"}}
	b := [][]string{{"b", "a"}, {"b", "d"}, {"c", "a", "a", ""}, {"x"}}
	// 0: primary swap only; 1: c→d; 2: same set with noise; 3: missing in a.
	if got := Moved(a, b); got != 2 {
		t.Fatalf("Moved = %d, want 2", got)
	}
	if got := Moved(b, a); got != 2 {
		t.Fatalf("Moved reversed = %d, want 2", got)
	}
	if got := Moved(nil, [][]string{{}, {""}}); got != 0 {
		t.Fatalf("Moved of empty sets = %d, want 0", got)
	}
	big1, big2 := nodes(40), slices.Clone(nodes(40))
	slices.Reverse(big2)
	if got := Moved([][]string{big1}, [][]string{big2}); got != 0 {
		t.Fatalf("Moved of large equal sets = %d", got)
	}
	big2[5] = "other"
	if got := Moved([][]string{big1}, [][]string{big2}); got != 1 {
		t.Fatalf("Moved of large different sets = %d", got)
	}

	l := Loads(b)
	if l.Primaries["b"] != 2 || l.Primaries["c"] != 1 || l.Primaries["a"] != 0 || l.Primaries["x"] != 1 {
		t.Fatalf("Primaries = %v", l.Primaries)
	}
	if l.Slots["a"] != 3 || l.Slots["b"] != 2 || l.Slots["d"] != 1 || len(l.Slots) != 5 {
		t.Fatalf("Slots = %v", l.Slots)
	}
}

func TestValidateRejects(t *testing.T) {
	m := []string{"a", "b"}
	tests := []struct {
		name string
		tab  [][]string
		rf   int
	}{
		{"too few owners", [][]string{{"a"}, {"b", "a"}}, 2},
		{"too many owners", [][]string{{"a", "b"}, {"b"}}, 1},
		{"duplicate owner", [][]string{{"a", "a"}, {"b", "a"}}, 2},
		{"non-member", [][]string{{"a", "z"}, {"b", "a"}}, 2},
		{"empty owner", [][]string{{"a", ""}, {"b", "a"}}, 2},
		{"primaries unbalanced", [][]string{{"a", "b"}, {"a", "b"}}, 2},
		{"slots unbalanced", [][]string{{"a"}, {"a"}}, 1},
		{"owners with rf 0", [][]string{{"a"}}, 0},
	}
	for _, tc := range tests {
		if err := Validate(tc.tab, m, tc.rf); err == nil {
			t.Errorf("%s: Validate accepted %v", tc.name, tc.tab)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	if err := Validate([][]string{{"b", "a"}, {"a", "b"}}, []string{"b", "a", "a", ""}, 2); err != nil {
		t.Errorf("valid table rejected: %v", err)
	}
	if err := Validate([][]string{{}, {}}, nil, 3); err != nil {
		t.Errorf("empty table for no members rejected: %v", err)
	}
}

// seqStats aggregates the movement seen over one join/leave sequence.
type seqStats struct {
	joinRatioSum float64 // Σ Moved / (r·P/N_after) over joins
	joins        int
	leaveMoved   int // Σ Moved over leaves
	leaveOwned   int // Σ partitions the departed node owned
	leaves       int
	leaveExtra   int // leaves that moved more than the departed node's partitions
	worstLeave   float64
}

// leaveLowerBound is a lower bound on Moved for any balanced table after
// node left: all its partitions must change, and a member that co-owns so
// many of them that it cannot reach floor(r·P/N) slots inside them needs
// one extra changed partition per missing slot.
func leaveLowerBound(prev [][]string, next []string, left string, partitions, rf int) int {
	n := len(next)
	if n == 0 {
		return owned(prev, left)
	}
	r := min(rf, n)
	floor, ceil := r*partitions/n, (r*partitions+n-1)/n
	loads := Loads(prev).Slots
	co := map[string]int{}
	c := 0
	for _, owners := range prev {
		if slices.Contains(owners, left) {
			c++
			for _, x := range owners {
				co[x]++
			}
		}
	}
	extra := 0
	for _, x := range next {
		outside := loads[x] - co[x] // slots in partitions that need not change
		extra = max(extra, floor-(outside+c), outside-ceil)
	}
	return c + extra
}

const maxNodes = 64

// leaveSlack is how far above leaveLowerBound a leave's Moved may go. The
// bound is not proven tight, but Assign has met it exactly on every leave
// tried (about 290,000 in an extended run of runSequence), so any excess is
// treated as a regression.
const leaveSlack = 0

// runSequence starts from scratch and applies random single-node joins and
// leaves, checking every invariant after each step.
func runSequence(seed uint64, partitions, rf, steps int) (seqStats, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var st seqStats
	used := map[string]bool{}
	newName := func() string {
		for {
			// Random names so sorted order is unrelated to join order.
			s := fmt.Sprintf("n%08x", rng.Uint32())
			if !used[s] {
				used[s] = true
				return s
			}
		}
	}
	var members []string
	n0 := rng.IntN(maxNodes + 1)
	if rng.IntN(4) == 0 {
		n0 = rng.IntN(8) // small clusters: N < RF and r changing on join/leave
	}
	for range n0 {
		members = append(members, newName())
	}
	check := func(step int, prev, tab [][]string, members []string) error {
		if err := checkTable(tab, members, partitions, rf); err != nil {
			return fmt.Errorf("step %d (N=%d): %v", step, len(members), err)
		}
		if err := Validate(tab, members, rf); err != nil {
			return fmt.Errorf("step %d: Validate: %v", step, err)
		}
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if !equalTables(Assign(prev, shuffled, partitions, rf), tab) {
			return fmt.Errorf("step %d: result differs for shuffled members", step)
		}
		return nil
	}

	tab := Assign(nil, members, partitions, rf)
	if err := check(0, nil, tab, members); err != nil {
		return st, err
	}
	for step := 1; step <= steps; step++ {
		next := slices.Clone(members)
		join := len(members) == 0 || (len(members) < maxNodes && rng.IntN(2) == 0)
		var left, joined string
		if join {
			joined = newName()
			next = slices.Insert(next, rng.IntN(len(next)+1), joined)
		} else {
			k := rng.IntN(len(next))
			left = next[k]
			next = slices.Delete(next, k, k+1)
		}
		prevFlat := slices.Concat(tab...)
		nt := Assign(tab, next, partitions, rf)
		if !slices.Equal(slices.Concat(tab...), prevFlat) {
			return st, fmt.Errorf("step %d: prev modified", step)
		}
		if err := check(step, tab, nt, next); err != nil {
			return st, err
		}
		moved := Moved(tab, nt)
		if join {
			n := len(next)
			opt := float64(min(rf, n)*partitions) / float64(n)
			st.joinRatioSum += float64(moved) / opt
			st.joins++
			// Slots only flow to the joiner, so nothing else changes.
			if o := owned(nt, joined); moved != o {
				return st, fmt.Errorf("step %d: join of %s moved %d partitions, joiner owns %d", step, joined, moved, o)
			}
		} else {
			o := owned(tab, left)
			st.leaveMoved += moved
			st.leaveOwned += o
			st.leaves++
			if moved != o {
				st.leaveExtra++
				st.worstLeave = max(st.worstLeave, float64(moved)/float64(o))
				lb := leaveLowerBound(tab, next, left, partitions, rf)
				if moved < lb || moved > lb+leaveSlack {
					return st, fmt.Errorf("step %d: leave of %s (N %d->%d) moved %d, departed owned %d, lower bound %d",
						step, left, len(members), len(next), moved, o, lb)
				}
			}
		}
		tab, members = nt, next
	}
	return st, nil
}

func TestPropertyJoinLeave(t *testing.T) {
	type plan struct{ partitions, seqs, steps int }
	// About 2,700 sequences by default (about 15 s with -race on two
	// cores); -short keeps a tenth of them.
	plans := []plan{{64, 700, 8}, {256, 180, 8}, {1024, 30, 8}}
	if testing.Short() {
		plans = []plan{{64, 100, 8}, {256, 30, 8}, {1024, 6, 8}}
	}
	for _, pl := range plans {
		for _, rf := range []int{1, 3, 5} {
			t.Run(fmt.Sprintf("P=%d/RF=%d", pl.partitions, rf), func(t *testing.T) {
				t.Parallel()
				var total seqStats
				worstJoin := 0.0 // only tracked for P >= 256, where it is asserted
				for s := range pl.seqs {
					seed := uint64(pl.partitions)<<32 | uint64(rf)<<16 | uint64(s)
					st, err := runSequence(seed, pl.partitions, rf, pl.steps)
					if err != nil {
						t.Fatalf("seed %#x: %v", seed, err)
					}
					if st.joins > 0 && pl.partitions >= 256 {
						avg := st.joinRatioSum / float64(st.joins)
						worstJoin = max(worstJoin, avg)
						if avg > 1.05 {
							t.Errorf("seed %#x: average join movement ratio %.4f > 1.05", seed, avg)
						}
					}
					total.joinRatioSum += st.joinRatioSum
					total.joins += st.joins
					total.leaveMoved += st.leaveMoved
					total.leaveOwned += st.leaveOwned
					total.leaves += st.leaves
					total.leaveExtra += st.leaveExtra
					total.worstLeave = max(total.worstLeave, st.worstLeave)
				}
				leaveRatio := float64(total.leaveMoved) / float64(max(total.leaveOwned, 1))
				if leaveRatio > 1.05 {
					t.Errorf("leaves moved %d partitions, departed nodes owned %d (ratio %.4f > 1.05)",
						total.leaveMoved, total.leaveOwned, leaveRatio)
				}
				t.Logf("P=%d RF=%d %d seqs: joins=%d avg join ratio=%.4f (worst seq avg %.4f); leaves=%d moved/owned=%.5f, %d leaves needed extra moves (worst %.3f)",
					pl.partitions, rf, pl.seqs, total.joins, total.joinRatioSum/float64(max(total.joins, 1)), worstJoin,
					total.leaves, leaveRatio, total.leaveExtra, total.worstLeave)
			})
		}
	}
}
