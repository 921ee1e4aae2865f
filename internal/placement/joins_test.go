package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// joinOneByOne adds joiners to prev one Assign call at a time, in the given
// order.
func joinOneByOne(prev [][]string, old, joiners []string, partitions, rf int) [][]string {
	members := slices.Clone(old)
	for _, j := range joiners {
		members = append(members, j)
		prev = Assign(prev, members, partitions, rf)
	}
	return prev
}

// ownedOnlyBy counts the partitions of t whose owners are all in set.
func ownedOnlyBy(t [][]string, set []string) int {
	c := 0
	for _, owners := range t {
		if len(owners) > 0 && !slices.ContainsFunc(owners, func(x string) bool { return !slices.Contains(set, x) }) {
			c++
		}
	}
	return c
}

// TestJoinsAtOnceNoCopyset: RF 2, P 128, 2 → 4 nodes in one call. Before
// joins were placed one at a time, 64 of the 128 partitions became
// {node-02, node-03} (a copyset; 64 partitions changed at the join) and a
// later leave of any node changed 85 partitions for the 64 it owned. Now the
// table equals one at a time in sorted order: 2 partitions are owned by the
// joiners only (2 in the reverse order too), every later leave changes
// exactly the departed node's 64 partitions (also one at a time, either
// order), and 126 partitions change at the join (126 in the reverse order;
// 128 slots are copied either way, as before).
func TestJoinsAtOnceNoCopyset(t *testing.T) {
	const p, rf = 128, 2
	all := nodes(4)
	old, joiners := all[:2], all[2:]
	start := Assign(nil, old, p, rf)
	once := Assign(start, all, p, rf)
	if err := checkTable(once, all, p, rf); err != nil {
		t.Fatal(err)
	}
	sorted := joinOneByOne(start, old, joiners, p, rf)
	if !equalTables(once, sorted) {
		t.Fatalf("joins at once differ from one at a time in sorted order")
	}
	reversed := joinOneByOne(start, old, []string{joiners[1], joiners[0]}, p, rf)

	cs, csSeq, csRev := ownedOnlyBy(once, joiners), ownedOnlyBy(sorted, joiners), ownedOnlyBy(reversed, joiners)
	t.Logf("partitions owned by the joiners only: at once %d, one at a time %d (reverse order %d)", cs, csSeq, csRev)
	if cs > max(csSeq, csRev)+2 {
		t.Errorf("at once %d partitions owned by the joiners only, one at a time %d/%d: a copyset", cs, csSeq, csRev)
	}
	for _, left := range all {
		rest := slices.DeleteFunc(slices.Clone(all), func(x string) bool { return x == left })
		leave := func(tab [][]string) int { return Moved(tab, Assign(tab, rest, p, rf)) }
		m, mSeq, mRev := leave(once), leave(sorted), leave(reversed)
		t.Logf("later leave of %s: at once %d partitions changed (it owned %d), one at a time %d (reverse order %d, it owned %d)",
			left, m, owned(once, left), mSeq, mRev, owned(reversed, left))
		if m > max(mSeq, mRev) || m != owned(once, left) {
			t.Errorf("leave of %s after joins at once changed %d partitions, owned %d; one at a time %d/%d",
				left, m, owned(once, left), mSeq, mRev)
		}
	}
	t.Logf("at the join: %d partitions changed at once, %d one at a time in reverse order", Moved(start, once), Moved(start, reversed))
}

// loadSpread returns the most and fewest slots and primaries of any member
// (members owning nothing count as 0).
func loadSpread(t [][]string, members []string) (slotMin, slotMax, primMin, primMax int) {
	l := Loads(t)
	slotMin, primMin = 1<<30, 1<<30
	for _, m := range normalize(members) {
		slotMin, slotMax = min(slotMin, l.Slots[m]), max(slotMax, l.Slots[m])
		primMin, primMax = min(primMin, l.Primaries[m]), max(primMax, l.Primaries[m])
	}
	return
}

// checkJoinsAtOnce grows a table of old members by joiners (in arrival
// order) once in one call and once one call at a time, and compares: the
// one-call table equals one at a time in sorted order, is as balanced as
// one at a time in arrival order, moves only to joiners, and every later
// leave of it changes no more than leaveLowerBound.
func checkJoinsAtOnce(prev [][]string, old, joiners []string, partitions, rf int) error {
	all := slices.Concat(old, joiners)
	once := Assign(prev, all, partitions, rf)
	if err := checkTable(once, all, partitions, rf); err != nil {
		return fmt.Errorf("at once: %v", err)
	}
	arrival := joinOneByOne(prev, old, joiners, partitions, rf)
	a1, a2, a3, a4 := loadSpread(once, all)
	b1, b2, b3, b4 := loadSpread(arrival, all)
	if a1 != b1 || a2 != b2 || a3 != b3 || a4 != b4 {
		return fmt.Errorf("at once slots %d..%d primaries %d..%d, one at a time slots %d..%d primaries %d..%d",
			a1, a2, a3, a4, b1, b2, b3, b4)
	}
	if sorted := joinOneByOne(prev, old, slices.Sorted(slices.Values(joiners)), partitions, rf); !equalTables(once, sorted) {
		return fmt.Errorf("at once differs from one at a time in sorted order")
	}
	// Nothing but the joiners gains a slot when prev was balanced for old.
	for i := range once {
		for _, x := range once[i] {
			if !slices.Contains(prev[i], x) && !slices.Contains(joiners, x) {
				return fmt.Errorf("partition %d: old member %s gained a slot: %v -> %v", i, x, prev[i], once[i])
			}
		}
	}
	for k, left := range all {
		rest := slices.Delete(slices.Clone(all), k, k+1)
		moved := Moved(once, Assign(once, rest, partitions, rf))
		if lb := leaveLowerBound(once, rest, left, partitions, rf); moved > lb+leaveSlack {
			return fmt.Errorf("later leave of %s changed %d partitions, lower bound %d", left, moved, lb)
		}
	}
	return nil
}

// TestPropertyJoinsAtOnce runs checkJoinsAtOnce over random balanced
// tables and random groups of joiners.
func TestPropertyJoinsAtOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	runs := 400
	if testing.Short() {
		runs = 60
	}
	for run := range runs {
		partitions := []int{16, 64, 128, 256}[rng.IntN(4)]
		rf := 1 + rng.IntN(4)
		names := rng.Perm(40)
		n0, add := 1+rng.IntN(10), 2+rng.IntN(6)
		old, joiners := splitNames(names, n0, add)
		prev := Assign(nil, old, partitions, rf)
		if err := checkJoinsAtOnce(prev, old, joiners, partitions, rf); err != nil {
			t.Fatalf("run %d P=%d RF=%d %v + %v: %v", run, partitions, rf, old, joiners, err)
		}
	}
}

// splitNames names the first n0 numbers of perm as members ("n07") and the
// next add as joiners.
func splitNames(perm []int, n0, add int) (old, joiners []string) {
	for k, x := range perm[:n0+add] {
		if name := fmt.Sprintf("n%02d", x); k < n0 {
			old = append(old, name)
		} else {
			joiners = append(joiners, name)
		}
	}
	return old, joiners
}
