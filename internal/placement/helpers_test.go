package placement

import (
	"fmt"
	"slices"
)

// checkTable re-derives every invariant of Assign's result independently of
// Validate (maps instead of sorted indexes), so a bug shared by Assign and
// Validate does not hide itself.
func checkTable(tab [][]string, members []string, partitions, rf int) error {
	idx := map[string]int{}
	for _, m := range members {
		if _, ok := idx[m]; !ok && m != "" {
			idx[m] = len(idx)
		}
	}
	n := len(idx)
	r := max(min(rf, n), 0)
	if tab == nil {
		return fmt.Errorf("nil table")
	}
	partitions = max(partitions, 0)
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
			}
		}
	}
	if r == 0 {
		return nil
	}
	if err := spread("slots", slots, r*partitions); err != nil {
		return err
	}
	return spread("primaries", prims, partitions)
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
