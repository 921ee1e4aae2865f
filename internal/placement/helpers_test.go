package placement

import (
	"fmt"
	"slices"
)

// checkTable re-derives every invariant of Assign's result independently of
// Validate (maps instead of sorted indexes), so a bug shared by Assign and
// Validate does not hide itself.
func checkTable(tab [][]string, members []string, partitions, rf int) error {
	return checkTableInput(tab, Input{Members: members, Partitions: partitions, RF: rf})
}

// checkTableInput is checkTable for AssignInput, NoPrimary included; it
// derives the NoPrimary rules independently of ValidateInput too.
func checkTableInput(tab [][]string, in Input) error {
	idx := map[string]int{}
	for _, m := range in.Members {
		if _, ok := idx[m]; !ok && m != "" {
			idx[m] = len(idx)
		}
	}
	n := len(idx)
	r := max(min(in.RF, n), 0)
	noLead := map[int]bool{}
	for _, m := range in.NoPrimary {
		if x, ok := idx[m]; ok {
			noLead[x] = true
		}
	}
	if len(noLead) == n {
		clear(noLead) // nobody could lead: ignored
	}
	e := n - len(noLead)
	split := len(noLead) > 0 && r > 0 && (r == 1 || !evenSlotsPossible(max(in.Partitions, 0), r, n, e))
	if tab == nil {
		return fmt.Errorf("nil table")
	}
	partitions := max(in.Partitions, 0)
	if len(tab) != partitions {
		return fmt.Errorf("table has %d partitions, want %d", len(tab), partitions)
	}
	slots := make([]int, n)
	prims := make([]int, n)
	for i, owners := range tab {
		if owners == nil {
			return fmt.Errorf("partition %d: nil owner list", i)
		}
		if len(owners) != r {
			return fmt.Errorf("partition %d: %d owners %v, want %d", i, len(owners), owners, r)
		}
		leaders := 0
		for j, name := range owners {
			x, ok := idx[name]
			if !ok {
				return fmt.Errorf("partition %d: owner %q is not a member", i, name)
			}
			if slices.Contains(owners[:j], name) {
				return fmt.Errorf("partition %d: owner %q listed twice in %v", i, name, owners)
			}
			slots[x]++
			if j == 0 {
				prims[x]++
				if noLead[x] {
					return fmt.Errorf("partition %d: primary %q is in NoPrimary (%v)", i, name, owners)
				}
			}
			if !noLead[x] {
				leaders++
			}
		}
		if split && leaders != 1 {
			return fmt.Errorf("partition %d: %d owners may lead, want exactly 1 (split placement): %v", i, leaders, owners)
		}
	}
	if r == 0 {
		return nil
	}
	if len(noLead) == 0 {
		if err := spread("slots", slots, r*partitions); err != nil {
			return err
		}
		return spread("primaries", prims, partitions)
	}
	var lp, ls, ks []int
	for x := range n {
		if noLead[x] {
			ks = append(ks, slots[x])
		} else {
			lp, ls = append(lp, prims[x]), append(ls, slots[x])
		}
	}
	if err := spread("primaries of members that may lead", lp, partitions); err != nil {
		return err
	}
	if !split {
		return spread("slots", slots, r*partitions)
	}
	if err := spread("slots of members that may lead", ls, partitions); err != nil {
		return err
	}
	return spread("slots of NoPrimary members", ks, (r-1)*partitions)
}

// evenSlotsPossible reports whether loads of floor or ceil of r·p/n slots
// can give each of the e leaders at least its floor or ceil of p/e
// primaries, by trying every number of leaders that lead one more (a
// different derivation from uniformOK's).
func evenSlotsPossible(p, r, n, e int) bool {
	f, ceils := r*p/n, r*p%n
	g, m := p/e, p%e
	need := 0 // leaders that need f+1 slots
	for k := range e {
		lead := g
		if k < m {
			lead++
		}
		switch {
		case lead > f+1:
			return false
		case lead == f+1:
			if ceils == 0 {
				return false
			}
			need++
		}
	}
	return need <= ceils
}

func spread(what string, counts []int, total int) error {
	n := len(counts)
	lo, hi := total/n, (total+n-1)/n
	cmin, cmax := slices.Min(counts), slices.Max(counts)
	if cmin < lo || cmax > hi || cmax-cmin > 1 {
		return fmt.Errorf("%s unbalanced: min %d max %d, want within [%d, %d]", what, cmin, cmax, lo, hi)
	}
	return nil
}

func cloneTable(t [][]string) [][]string {
	if t == nil {
		return nil
	}
	c := make([][]string, len(t))
	for i, e := range t {
		c[i] = slices.Clone(e)
	}
	return c
}

func equalTables(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

// owned counts the partitions of t that list node.
func owned(t [][]string, node string) int {
	c := 0
	for _, owners := range t {
		if slices.Contains(owners, node) {
			c++
		}
	}
	return c
}

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%02d", i)
	}
	return out
}
