package placement

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkZoned re-derives rules 1 and 2 of the zone-aware path with maps
// (independently of validateZoned) and checks slot and primary counts
// against Targets' bands where Q needs no cap; ValidateInput checks the
// rest.
func checkZoned(tab [][]string, in Input) error {
	weight := func(m string) int {
		w, ok := in.Weights[m]
		if !ok {
			return 1
		}
		return max(w, 0)
	}
	var hold []string
	any := false
	for _, m := range in.Members {
		any = any || (m != "" && weight(m) > 0)
	}
	for _, m := range in.Members {
		if m != "" && (weight(m) > 0 || !any) && !slices.Contains(hold, m) {
			hold = append(hold, m)
		}
	}
	r := max(min(in.RF, len(hold)), 0)
	perZone := map[string]int{}
	for _, m := range hold {
		perZone[in.Zones[m]]++
	}
	// Zone bounds by brute force: the largest L with Σ min(m_z, L) ≤ r.
	sum := func(l int) int {
		s := 0
		for _, c := range perZone {
			s += min(c, l)
		}
		return s
	}
	l := 0
	for sum(l+1) <= r && l < r {
		l++
	}
	extra := r - sum(l)
	np := map[string]bool{}
	for _, m := range in.NoPrimary {
		if slices.Contains(hold, m) {
			np[m] = true
		}
	}
	if len(np) == len(hold) {
		clear(np)
	}
	if len(tab) != max(in.Partitions, 0) {
		return fmt.Errorf("%d partitions, want %d", len(tab), in.Partitions)
	}
	for i, owners := range tab {
		if len(owners) != r {
			return fmt.Errorf("partition %d: %d owners %v, want %d", i, len(owners), owners, r)
		}
		zc := map[string]int{}
		for j, m := range owners {
			if !slices.Contains(hold, m) {
				return fmt.Errorf("partition %d: owner %q holds nothing", i, m)
			}
			if slices.Contains(owners[:j], m) {
				return fmt.Errorf("partition %d: %q twice", i, m)
			}
			zc[in.Zones[m]]++
		}
		if r > 0 && np[owners[0]] {
			return fmt.Errorf("partition %d: led by NoPrimary %q", i, owners[0])
		}
		for z, c := range perZone {
			lo, hi := min(c, l), min(c, l)
			if extra > 0 {
				hi = min(c, l+1)
			}
			if zc[z] < lo || zc[z] > hi {
				return fmt.Errorf("partition %d: %d owners in zone %q, want [%d, %d]: %v", i, zc[z], z, lo, hi, owners)
			}
		}
	}
	if r == 0 {
		return nil
	}
	ts, _ := Targets(in)
	ld := Loads(tab)
	for _, m := range hold {
		if s := float64(ld.Slots[m]); s < math.Floor(ts[m]+1e-6) || s > math.Ceil(ts[m]-1e-6) {
			return fmt.Errorf("member %q: %v slots, optimum %.4f", m, s, ts[m])
		}
	}
	return nil
}

// randomInput draws a zone-aware input: 1–30 members over 1–5 uneven zones
// (some unmapped), weights 0–4 (some absent), a NoPrimary subset, P 1–300,
// RF 1–4, no previous table.
func randomInput(rng *rand.Rand) Input {
	n := 1 + rng.IntN(30)
	in := Input{Partitions: 1 + rng.IntN(300), RF: 1 + rng.IntN(4), Zones: map[string]string{}, Weights: map[string]int{}}
	if rng.IntN(3) == 0 {
		in.Partitions = 1 + rng.IntN(12)
	}
	nz := 1 + rng.IntN(5)
	weighted := rng.IntN(3) > 0
	for range n {
		m := fmt.Sprintf("n%04x", rng.IntN(1<<16))
		in.Members = append(in.Members, m)
		// Uneven zones: zone k with probability ∝ k+1.
		if z := rng.IntN(nz * (nz + 1) / 2); rng.IntN(8) > 0 {
			k := 0
			for z >= k+1 {
				z -= k + 1
				k++
			}
			in.Zones[m] = fmt.Sprintf("z%d", k)
		}
		if weighted && rng.IntN(5) > 0 {
			in.Weights[m] = rng.IntN(5)
		}
		if rng.IntN(6) == 0 {
			in.NoPrimary = append(in.NoPrimary, m)
		}
	}
	return in
}

// mutate changes in as a cluster would: a join, a leave, a zone or weight
// change, NoPrimary changes, several joins at once.
func mutate(rng *rand.Rand, in Input) Input {
	out := in
	out.Members = slices.Clone(in.Members)
	out.Zones = maps.Clone(in.Zones)
	out.Weights = maps.Clone(in.Weights)
	out.NoPrimary = slices.Clone(in.NoPrimary)
	switch rng.IntN(6) {
	case 0, 1: // joins
		for range 1 + rng.IntN(3) {
			m := fmt.Sprintf("j%04x", rng.IntN(1<<16))
			out.Members = append(out.Members, m)
			out.Zones[m] = fmt.Sprintf("z%d", rng.IntN(4))
			out.Weights[m] = 1 + rng.IntN(4)
		}
	case 2: // leave
		if len(out.Members) > 1 {
			k := rng.IntN(len(out.Members))
			out.Members = slices.Delete(out.Members, k, k+1)
		}
	case 3: // zone change
		if len(out.Members) > 0 {
			out.Zones[out.Members[rng.IntN(len(out.Members))]] = fmt.Sprintf("z%d", rng.IntN(5))
		}
	case 4: // weight change
		if len(out.Members) > 0 {
			out.Weights[out.Members[rng.IntN(len(out.Members))]] = rng.IntN(5)
		}
	case 5: // NoPrimary change
		out.NoPrimary = nil
		for _, m := range out.Members {
			if rng.IntN(4) == 0 {
				out.NoPrimary = append(out.NoPrimary, m)
			}
		}
	}
	return out
}

// checkZonedRun assigns in and checks everything: rules (both checkers),
// inputs unmodified, a valid table is a fixed point, and with shuffle the
// independence of member and NoPrimary order.
func checkZonedRun(rng *rand.Rand, in Input, shuffle bool) ([][]string, error) {
	prevCopy, memCopy, npCopy := cloneTable(in.Prev), slices.Clone(in.Members), slices.Clone(in.NoPrimary)
	zCopy, wCopy := maps.Clone(in.Zones), maps.Clone(in.Weights)
	got := AssignInput(in)
	if !equalTables(in.Prev, prevCopy) || !slices.Equal(in.Members, memCopy) || !slices.Equal(in.NoPrimary, npCopy) ||
		!maps.Equal(in.Zones, zCopy) || !maps.Equal(in.Weights, wCopy) {
		return nil, fmt.Errorf("inputs modified")
	}
	if err := ValidateInput(got, in); err != nil {
		return got, fmt.Errorf("ValidateInput: %v", err)
	}
	if err := checkZoned(got, in); err != nil {
		return got, err
	}
	again := in
	again.Prev = got
	if a := AssignInput(again); !equalTables(a, got) {
		return got, fmt.Errorf("a valid table is not a fixed point:\nprev %q\ngot  %q\nthen %q", in.Prev, got, a)
	}
	if !shuffle {
		return got, nil
	}
	sh := in
	sh.Members = append(slices.Clone(in.Members), "")
	rng.Shuffle(len(sh.Members), func(i, j int) { sh.Members[i], sh.Members[j] = sh.Members[j], sh.Members[i] })
	sh.NoPrimary = slices.Clone(in.NoPrimary)
	slices.Reverse(sh.NoPrimary)
	if !equalTables(AssignInput(sh), got) {
		return got, fmt.Errorf("result depends on member or NoPrimary order")
	}
	return got, nil
}

func describe(in Input) string {
	var b strings.Builder
	fmt.Fprintf(&b, "P=%d RF=%d NoPrimary=%v\n", in.Partitions, in.RF, in.NoPrimary)
	for _, m := range slices.Sorted(slices.Values(in.Members)) {
		w, ok := in.Weights[m]
		if !ok {
			w = 1
		}
		fmt.Fprintf(&b, "  %s zone=%q w=%d\n", m, in.Zones[m], w)
	}
	return b.String()
}

// TestPropertyZoned runs random zone-aware inputs through sequences of
// changes, each step's table the next step's prev: 2,000 inputs in two
// parallel halves (about 5 s with -race on two cores); -short keeps a
// fifth.
func TestPropertyZoned(t *testing.T) {
	seqs, steps := 200, 5
	if testing.Short() {
		seqs = 40
	}
	for half := range 2 {
		t.Run(fmt.Sprintf("half=%d", half), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(2024, uint64(half)))
			for s := range seqs {
				in := randomInput(rng)
				if s%7 == 0 {
					// A garbage previous table: dead names, duplicates, too many owners.
					for range in.Partitions {
						var owners []string
						for range rng.IntN(6) {
							if rng.IntN(4) == 0 {
								owners = append(owners, "dead")
							} else {
								owners = append(owners, in.Members[rng.IntN(len(in.Members))])
							}
						}
						in.Prev = append(in.Prev, owners)
					}
				}
				for step := range steps {
					got, err := checkZonedRun(rng, in, step%2 == 0)
					if err != nil {
						t.Fatalf("seq %d step %d: %v\n%s", s, step, err, describe(in))
					}
					in = mutate(rng, in)
					in.Prev = got
				}
			}
		})
	}
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

// copiesLowerBound is a lower bound on copies for any valid table of in:
// every holder x must own at least floor(T_x) slots, and only the slots it
// owned in in.Prev are there already.
func copiesLowerBound(in Input) int {
	ts, _ := Targets(in)
	had := Loads(in.Prev).Slots
	lb := 0
	for _, m := range slices.Sorted(maps.Keys(ts)) {
		lb += max(0, int(math.Floor(ts[m]+1e-6))-had[m])
	}
	return lb
}

// scenario is a zone and weight layout: members named by zone.
type scenario struct {
	name    string
	zones   []int // members per zone
	weights []int // weight of the k-th member of each zone (cycled); nil: all 1
}

func (sc scenario) input(p, rf int) Input {
	in := Input{Partitions: p, RF: rf, Zones: map[string]string{}, Weights: map[string]int{}}
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

var zoneScenarios = []scenario{
	{"3 zones × 3 nodes", []int{3, 3, 3}, nil},
	{"uneven zones 2/3/5", []int{2, 3, 5}, nil},
	{"3 zones × 3 nodes, weights 1/2/4", []int{3, 3, 3}, []int{1, 2, 4}},
	{"uneven zones 2/3/5, weights 1/2/4", []int{2, 3, 5}, []int{1, 2, 4}},
}

// TestZonedMovement: a join and a leave copy at most 1.05× the exact
// minimum (MinCopies), and with RF 3 at most 1.05× the simple lower bound
// copiesLowerBound.
func TestZonedMovement(t *testing.T) {
	for _, sc := range zoneScenarios {
		for _, rf := range []int{2, 3} {
			base := sc.input(1024, rf)
			start := AssignInput(base)
			if err := ValidateInput(start, base); err != nil {
				t.Fatalf("%s: %v", sc.name, err)
			}
			// Every member in turn leaves; a member joins every zone in turn
			// (with the weights of the zone's members in turn).
			var changes []Input
			for _, m := range base.Members {
				in := base
				in.Members = slices.DeleteFunc(slices.Clone(base.Members), func(x string) bool { return x == m })
				changes = append(changes, in)
			}
			for z := range sc.zones {
				in := base
				j := fmt.Sprintf("%c9", 'a'+z)
				in.Members = append(slices.Clone(base.Members), j)
				in.Zones, in.Weights = maps.Clone(base.Zones), maps.Clone(base.Weights)
				in.Zones[j] = fmt.Sprintf("zone-%c", 'a'+z)
				if sc.weights != nil {
					in.Weights[j] = sc.weights[z%len(sc.weights)]
				}
				changes = append(changes, in)
			}
			worst, worstNaive := 0.0, 0.0
			for _, in := range changes {
				in.Prev = start
				got := AssignInput(in)
				if err := ValidateInput(got, in); err != nil {
					t.Fatalf("%s RF %d: %v", sc.name, rf, err)
				}
				c, lb, opt := copies(start, got), copiesLowerBound(in), MinCopies(in)
				if opt < lb || c < opt {
					t.Fatalf("%s RF %d: copied %d, MinCopies %d, naive lower bound %d", sc.name, rf, c, opt, lb)
				}
				ratio := float64(c) / float64(max(opt, 1))
				worst = max(worst, ratio)
				worstNaive = max(worstNaive, float64(c)/float64(max(lb, 1)))
				// The simple bound is reachable with RF 3 here; with RF 2 and
				// weights, zone shares shift and the exact minimum is far
				// above it (a weight-4 leave: minimum 1.22× the bound).
				if ratio > 1.05 || rf == 3 && float64(c) > 1.05*float64(lb) {
					t.Errorf("%s RF %d, members %v: copied %d slots, minimum %d (%.3f), naive bound %d", sc.name, rf, in.Members, c, opt, ratio, lb)
				}
			}
			t.Logf("%s RF %d: worst copies ÷ minimum %.4f (÷ naive bound %.4f) over %d changes", sc.name, rf, worst, worstNaive, len(changes))
		}
	}
}

// TestZoneLoss: with at least RF zones, no partition has two owners in one
// zone, so losing every member of a zone leaves every partition an owner;
// with fewer zones than RF, a zone never holds all owners while another
// zone has a member to spare.
func TestZoneLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for run := range 300 {
		in := randomInput(rng)
		got := AssignInput(in)
		hs := holdersOf(in)
		zones := map[string]int{}
		for _, z := range hs.zone {
			zones[z]++
		}
		r := min(in.RF, len(hs.names))
		for lost := range zones {
			for i, owners := range got {
				alive := 0
				for _, x := range owners {
					if in.Zones[x] != lost {
						alive++
					}
				}
				if r > 1 && len(zones) > 1 && alive == 0 {
					t.Fatalf("run %d: losing zone %q loses every owner of partition %d %v\n%s", run, lost, i, owners, describe(in))
				}
				if len(zones) >= r && len(owners)-alive > 1 {
					t.Fatalf("run %d: partition %d has %d owners in zone %q with %d zones for RF %d", run, i, len(owners)-alive, lost, len(zones), r)
				}
			}
		}
	}
}

// decodeZoned takes zones and weights off the front of data (a count byte,
// then one byte per member name m0.. in order: low 3 bits the zone, z0–z4
// or "" for 5–7; the next 3 bits the weight 0–4, absent for 5–7) and
// leaves the rest to decodeNoPrimary.
func decodeZoned(data []byte) Input {
	zones, weights := map[string]string{}, map[string]int{}
	if len(data) > 0 {
		k := int(data[0]) % 25
		data = data[1:]
		for m := 0; m < k && len(data) > 0; m++ {
			name := "m" + strconv.Itoa(m)
			if z := data[0] & 7; z < 5 {
				zones[name] = "z" + strconv.Itoa(int(z))
			}
			if w := int(data[0]>>3) & 7; w < 5 {
				weights[name] = w
			}
			data = data[1:]
		}
	}
	in := decodeNoPrimary(data)
	in.Zones, in.Weights = zones, weights
	return in
}

// FuzzAssignZoned is FuzzAssignInput for the zone-aware path: every rule
// (two independent checkers), inputs unmodified, independence of member
// and NoPrimary order, a valid table is a fixed point, no aliasing.
func FuzzAssignZoned(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{6, 0, 1, 2, 0, 1, 2, 0, 64, 0, 3, 6, 0, 1, 2, 3, 4, 5})
	f.Add([]byte{4, 8, 16, 24, 33, 1, 2, 100, 0, 2, 5, 0, 1, 2, 3, 4})
	f.Add([]byte{5, 0, 0, 1, 1, 2, 2, 0, 3, 200, 0, 3, 5, 0, 1, 2, 3, 4, 0, 1, 2, 0xff, 3, 4, 0})
	f.Add([]byte{3, 9, 17, 2, 3, 0, 1, 2, 50, 0, 4, 3, 0, 1, 2, 0, 1, 0xff, 2, 0})
	f.Add([]byte{8, 7, 7, 15, 23, 31, 0, 1, 2, 0, 12, 0, 1, 8, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := decodeZoned(data)
		rng := rand.New(rand.NewPCG(uint64(len(data)), 1))
		got, err := checkZonedRun(rng, in, true)
		if err != nil {
			t.Fatalf("%v\n%s\nprev=%q\ngot=%q", err, describe(in), in.Prev, got)
		}
		prevCopy := cloneTable(in.Prev)
		for i := range got {
			for j := range got[i] {
				got[i][j] = "clobbered"
			}
		}
		if !equalTables(in.Prev, prevCopy) {
			t.Fatalf("result aliases prev")
		}
	})
}

// TestPlainDispatch: one zone and equal weights take the plain planner
// exactly, weight-0 members own nothing there, and Targets matches it.
func TestPlainDispatch(t *testing.T) {
	all := nodes(7)
	prev := Assign(nil, all[:5], 200, 3)
	want := Assign(prev, all, 200, 3)
	same := []Input{
		{Zones: map[string]string{}, Weights: map[string]int{}},
		{Zones: map[string]string{all[0]: "eu", all[1]: "eu", all[2]: "eu", all[3]: "eu", all[4]: "eu", all[5]: "eu", all[6]: "eu"}},
		{Weights: map[string]int{all[0]: 3, all[1]: 3, all[2]: 3, all[3]: 3, all[4]: 3, all[5]: 3, all[6]: 3}},
		{Weights: map[string]int{all[0]: 0, all[1]: 0, all[2]: 0, all[3]: 0, all[4]: 0, all[5]: 0, all[6]: 0}},
		{Weights: map[string]int{"not-a-member": 5}, Zones: map[string]string{"not-a-member": "x"}},
	}
	for k, in := range same {
		in.Prev, in.Members, in.Partitions, in.RF = prev, all, 200, 3
		if got := AssignInput(in); !equalTables(got, want) {
			t.Errorf("case %d: differs from Assign", k)
		}
		if err := ValidateInput(want, in); err != nil {
			t.Errorf("case %d: %v", k, err)
		}
		if c := Constraints(in); k != 1 && c != nil || k == 1 && !slices.Equal(c, []string{"1 zone for RF 3: a partition may have 3 owners in one zone"}) {
			t.Errorf("case %d: constraints %q", k, c)
		}
	}
	// A drained member (weight 0): the others are placed as without it.
	in := Input{Prev: prev, Members: all, Partitions: 200, RF: 3, Weights: map[string]int{all[6]: 0}}
	got := AssignInput(in)
	if !equalTables(got, Assign(prev, all[:6], 200, 3)) {
		t.Errorf("weight 0 differs from leaving")
	}
	if err := ValidateInput(got, in); err != nil {
		t.Error(err)
	}
	if err := ValidateInput(want, in); err == nil || !strings.Contains(err.Error(), "weight 0") {
		t.Errorf("a table giving slots to a weight-0 member: %v", err)
	}
	ts, qs := Targets(in)
	if ts[all[6]] != 0 || qs[all[6]] != 0 || ts[all[0]] != 100 || math.Abs(qs[all[0]]-200.0/6) > 1e-9 {
		t.Errorf("Targets = %v, %v", ts, qs)
	}
}

func TestConstraints(t *testing.T) {
	zones := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k := 0; k < len(kv); k += 2 {
			m[kv[k]] = kv[k+1]
		}
		return m
	}
	tests := []struct {
		name string
		in   Input
		want []string
	}{
		{"3 zones for RF 3", Input{Members: []string{"a", "b", "c"}, RF: 3, Partitions: 64, Zones: zones("a", "1", "b", "2", "c", "3")}, nil},
		{"2 zones, one small", Input{Members: []string{"a", "b", "c"}, RF: 3, Partitions: 64, Zones: zones("a", "x", "b", "y", "c", "y")},
			[]string{"2 zones for RF 3: a partition may have 2 owners in one zone", `zone "x" has 1 member for RF 3 over 2 zones`}},
		{"weight 0", Input{Members: []string{"a", "b", "c"}, RF: 3, Partitions: 64, Weights: map[string]int{"c": 0}},
			[]string{"RF 3 but only 2 members hold data (weight > 0)"}},
		{"weights capped", Input{Members: []string{"a", "b", "c", "d"}, RF: 2, Partitions: 64, Weights: map[string]int{"a": 9}},
			[]string{`member "a": weight 9 asks for 96.0 slots of 64 partitions; capped at one per partition`}},
	}
	for _, tc := range tests {
		if got := Constraints(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// Uneven zone weights: zone spread wins, and the note says so.
	in := Input{Members: []string{"a", "b", "c"}, RF: 2, Partitions: 90, Zones: zones("a", "x", "b", "y", "c", "y"),
		Weights: map[string]int{"a": 1, "b": 3, "c": 3}}
	got := Constraints(in)
	if len(got) != 2 || !strings.Contains(got[0], `zone "x" has 14.3% of the weight but holds 50.0% of the slots`) {
		t.Errorf("got %q", got)
	}
	ts, _ := Targets(in)
	if ts["a"] != 90 || ts["b"] != 45 || ts["c"] != 45 {
		t.Errorf("Targets = %v", ts)
	}
}
