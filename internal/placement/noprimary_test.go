package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNoPrimaryStopping: one of five nodes (RF 3, P 256) is stopping. Its
// primaries go to co-owners by role swaps: no data moves, the four others
// lead 64 each, and clearing NoPrimary again moves no data either.
func TestNoPrimaryStopping(t *testing.T) {
	all := nodes(5)
	prev := Assign(nil, all, 256, 3)
	in := Input{Prev: prev, Members: all, Partitions: 256, RF: 3, NoPrimary: []string{all[2]}}
	got := AssignInput(in)
	if err := checkTableInput(got, in); err != nil {
		t.Fatal(err)
	}
	if m := Moved(prev, got); m != 0 {
		t.Errorf("%d partitions changed owners, want 0 (role swaps only)", m)
	}
	l := Loads(got)
	for _, x := range all {
		want := 64
		if x == all[2] {
			want = 0
		}
		if l.Primaries[x] != want || l.Slots[x] != Loads(prev).Slots[x] {
			t.Errorf("%s leads %d (want %d), owns %d slots (had %d)", x, l.Primaries[x], want, l.Slots[x], Loads(prev).Slots[x])
		}
	}
	changed := 0
	for i := range got {
		if got[i][0] != prev[i][0] {
			changed++
		}
	}
	t.Logf("%d primaries changed; node-02 led %d", changed, Loads(prev).Primaries[all[2]])
	if back := Assign(got, all, 256, 3); Moved(got, back) != 0 {
		t.Errorf("clearing NoPrimary moved %d partitions", Moved(got, back))
	}
}

func TestNoPrimaryEdgeCases(t *testing.T) {
	abcd := []string{"a", "b", "c", "d"}
	tests := []struct {
		name string
		in   Input
		want [][]string // nil: only the invariants are checked
	}{
		{name: "RF 1: the slot moves to a member that may lead",
			in:   Input{Prev: [][]string{{"a"}, {"b"}}, Members: []string{"a", "b"}, Partitions: 2, RF: 1, NoPrimary: []string{"a"}},
			want: [][]string{{"b"}, {"b"}}},
		{name: "RF 2: a replica is promoted",
			in:   Input{Prev: [][]string{{"a", "b"}, {"b", "a"}}, Members: []string{"a", "b"}, Partitions: 2, RF: 2, NoPrimary: []string{"a"}},
			want: [][]string{{"b", "a"}, {"b", "a"}}},
		{name: "every member in NoPrimary: ignored",
			in:   Input{Prev: [][]string{{"a", "b"}, {"b", "a"}}, Members: []string{"a", "b"}, Partitions: 2, RF: 2, NoPrimary: []string{"b", "a"}},
			want: [][]string{{"a", "b"}, {"b", "a"}}},
		{name: "non-members, duplicates and empty names ignored",
			in:   Input{Prev: [][]string{{"a", "b"}, {"b", "a"}}, Members: []string{"a", "b"}, Partitions: 2, RF: 2, NoPrimary: []string{"x", "", "x"}},
			want: [][]string{{"a", "b"}, {"b", "a"}}},
		{name: "N < RF", in: Input{Members: []string{"a", "b"}, Partitions: 5, RF: 3, NoPrimary: []string{"a"}},
			want: [][]string{{"b", "a"}, {"b", "a"}, {"b", "a"}, {"b", "a"}, {"b", "a"}}},
		{name: "owners all in NoPrimary", in: Input{Prev: [][]string{{"a", "b"}, {"a", "b"}, {"c", "d"}, {"c", "d"}},
			Members: abcd, Partitions: 4, RF: 2, NoPrimary: []string{"a", "b"}}},
		{name: "too many in NoPrimary for even slots (split)", in: Input{Members: nodes(6), Partitions: 64, RF: 2, NoPrimary: nodes(6)[:4]}},
		{name: "split with RF 3", in: Input{Prev: Assign(nil, nodes(10), 100, 3), Members: nodes(10), Partitions: 100, RF: 3, NoPrimary: nodes(10)[3:]}},
		{name: "P=1", in: Input{Members: abcd, Partitions: 1, RF: 2, NoPrimary: []string{"a", "b", "c"}}},
		{name: "from scratch", in: Input{Members: nodes(7), Partitions: 50, RF: 3, NoPrimary: nodes(7)[:2]}},
		{name: "joins and NoPrimary at once", in: Input{Prev: Assign(nil, abcd[:2], 32, 2), Members: abcd, Partitions: 32, RF: 2, NoPrimary: []string{"a"}}},
		{name: "rf 0", in: Input{Members: abcd, Partitions: 2, RF: 0, NoPrimary: []string{"a"}}, want: [][]string{{}, {}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AssignInput(tc.in)
			if err := checkTableInput(got, tc.in); err != nil {
				t.Fatalf("%v\ntable: %v", err, got)
			}
			if err := ValidateInput(got, tc.in); err != nil {
				t.Fatalf("ValidateInput: %v\ntable: %v", err, got)
			}
			if tc.want != nil && !equalTables(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			again := tc.in
			again.Prev = got
			if a := AssignInput(again); !equalTables(a, got) {
				t.Fatalf("not stable: %v -> %v", got, a)
			}
		})
	}
}

func TestAssignIsAssignInput(t *testing.T) {
	prev := Assign(nil, nodes(6), 100, 3)
	a := Assign(prev, nodes(8), 100, 3)
	b := AssignInput(Input{Prev: prev, Members: nodes(8), Partitions: 100, RF: 3})
	if !equalTables(a, b) {
		t.Fatal("Assign differs from AssignInput without NoPrimary")
	}
}

func TestValidateInputRejects(t *testing.T) {
	m := []string{"a", "b", "c"}
	in := func(np ...string) Input { return Input{Members: m, Partitions: 3, RF: 2, NoPrimary: np} }
	tests := []struct {
		name string
		tab  [][]string
		in   Input
	}{
		{"led by a NoPrimary member", [][]string{{"a", "b"}, {"b", "c"}, {"c", "a"}}, in("a")},
		{"primaries unbalanced among leaders", [][]string{{"b", "a"}, {"b", "c"}, {"b", "a"}}, in("a")},
		{"wrong partition count", [][]string{{"b", "a"}, {"c", "b"}}, in("a")},
		// Six members, RF 2, P 6, four in NoPrimary: even slots (2 each)
		// cannot give the two leaders 3 partitions each, so the split rule
		// holds: one leader per partition.
		{"split: two leaders in a partition", [][]string{{"a", "b"}, {"a", "c"}, {"a", "d"}, {"b", "e"}, {"b", "f"}, {"b", "c"}},
			Input{Members: []string{"a", "b", "c", "d", "e", "f"}, Partitions: 6, RF: 2, NoPrimary: []string{"c", "d", "e", "f"}}},
		{"split: slots of NoPrimary members unbalanced", [][]string{{"a", "c"}, {"a", "c"}, {"a", "c"}, {"a", "d"}},
			Input{Members: []string{"a", "b", "c", "d"}, Partitions: 4, RF: 2, NoPrimary: []string{"b", "c", "d"}}},
		{"even slots: slots unbalanced", [][]string{{"b", "c"}, {"c", "b"}, {"b", "c"}},
			Input{Members: m, Partitions: 3, RF: 2, NoPrimary: []string{"a"}}},
	}
	for _, tc := range tests {
		if err := ValidateInput(tc.tab, tc.in); err == nil {
			t.Errorf("%s: ValidateInput accepted %v", tc.name, tc.tab)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
		if err := checkTableInput(tc.tab, tc.in); err == nil {
			t.Errorf("%s: checkTableInput accepted %v", tc.name, tc.tab)
		}
	}
	ok := [][]string{{"b", "a"}, {"c", "a"}, {"b", "c"}}
	for _, np := range [][]string{{"a"}, {"a", "x"}} {
		if err := ValidateInput(ok, in(np...)); err != nil {
			t.Errorf("valid table rejected: %v", err)
		}
	}
	if err := ValidateInput(ok, in("a", "b", "c")); err == nil {
		t.Errorf("NoPrimary of every member is ignored, so primaries must balance over all: accepted %v", ok)
	}
}

// TestUniformOK compares uniformOK with checkTableInput's independent
// derivation over all small sizes.
func TestUniformOK(t *testing.T) {
	for n := 2; n <= 30; n++ {
		for r := 1; r <= n; r++ {
			for e := 1; e < n; e++ {
				for p := 1; p <= 200; p++ {
					if a, b := uniformOK(p, r, n, e), evenSlotsPossible(p, r, n, e); a != b {
						t.Fatalf("P=%d r=%d N=%d e=%d: uniformOK %v, evenSlotsPossible %v", p, r, n, e, a, b)
					}
				}
			}
		}
	}
}

// TestPropertyNoPrimary runs random sequences of joins, leaves and NoPrimary
// changes (a member becomes suspect or stops, or recovers) through
// AssignInput, checking every invariant. Where only NoPrimary changed, held
// fewer than RF members before and after, and slots stayed even, every
// partition has an owner that may lead, and role swaps usually suffice: it
// counts the steps that moved data. (The two such steps in 384 at the time
// of writing, both with P=8, were forced: a leader was the only one in more
// partitions than its share of primaries.)
func TestPropertyNoPrimary(t *testing.T) {
	seqs := 300
	if testing.Short() {
		seqs = 40
	}
	roleOnly, roleOnlyMoved := 0, 0
	for s := range seqs {
		rng := rand.New(rand.NewPCG(uint64(s), 77))
		partitions := []int{8, 64, 256}[rng.IntN(3)]
		rf := 1 + rng.IntN(4)
		var members, noPrim []string
		for range 1 + rng.IntN(12) {
			members = append(members, fmt.Sprintf("n%03d", rng.IntN(1000)))
		}
		members = normalize(members)
		var tab [][]string
		prevEven := false // the previous step kept even slots with fewer than RF in NoPrimary
		for step := range 12 {
			onlyNP := false
			switch rng.IntN(5) {
			case 0:
				members = normalize(append(members, fmt.Sprintf("n%03d", rng.IntN(1000))))
			case 1:
				if len(members) > 1 {
					members = slices.Delete(members, rng.IntN(len(members)), len(members)) // maybe several
					members = members[:max(len(members), 1)]
				}
			default:
				onlyNP = true
				if x := members[rng.IntN(len(members))]; slices.Contains(noPrim, x) && rng.IntN(2) == 0 {
					noPrim = slices.DeleteFunc(noPrim, func(y string) bool { return y == x })
				} else {
					noPrim = append(noPrim, x)
				}
			}
			in := Input{Prev: tab, Members: members, Partitions: partitions, RF: rf, NoPrimary: noPrim}
			next := AssignInput(in)
			if err := checkTableInput(next, in); err != nil {
				t.Fatalf("seq %d step %d %+v: %v", s, step, in, err)
			}
			if err := ValidateInput(next, in); err != nil {
				t.Fatalf("seq %d step %d: ValidateInput: %v", s, step, err)
			}
			shuffled := in
			shuffled.Members = slices.Clone(members)
			rng.Shuffle(len(shuffled.Members), func(i, j int) {
				shuffled.Members[i], shuffled.Members[j] = shuffled.Members[j], shuffled.Members[i]
			})
			if !equalTables(AssignInput(shuffled), next) {
				t.Fatalf("seq %d step %d: result depends on member order", s, step)
			}
			k := 0
			for _, x := range noPrim {
				if slices.Contains(members, x) {
					k++
				}
			}
			even := k < min(rf, len(members)) && (k == 0 || uniformOK(partitions, min(rf, len(members)), len(members), len(members)-k))
			if onlyNP && prevEven && even {
				roleOnly++
				if Moved(tab, next) > 0 {
					roleOnlyMoved++
				}
			}
			tab, prevEven = next, even
		}
	}
	t.Logf("%d steps changed only NoPrimary (fewer than RF members in it); %d of them moved data", roleOnly, roleOnlyMoved)
}
