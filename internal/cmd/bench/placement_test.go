package main

import (
	"slices"
	"strings"
	"testing"
)

// TestJoinComparison: several joins in one Assign call end as balanced and
// as good for a later leave as the same joins one at a time, and copy as
// many slots (the package's tests check the tables themselves).
func TestJoinComparison(t *testing.T) {
	for _, c := range joinCases {
		a, b := measureJoin(c, true), measureJoin(c, false)
		if a.balance != 1 || b.balance != 1 {
			t.Errorf("%+v: balance at once %v, one at a time %v, want 1", c, a.balance, b.balance)
		}
		if a.copied != b.copied || a.leave > b.leave || a.leave != 1 {
			t.Errorf("%+v: at once %+v, one at a time %+v", c, a, b)
		}
	}
	s := &section{}
	rows := joinRows(s)
	if len(rows) != 5 || len(s.notes) != len(joinCases)+1 {
		t.Fatalf("%d rows, %d notes", len(rows), len(s.notes))
	}
	for _, r := range rows {
		if !strings.HasPrefix(r.name, "joins at once: ") || r.met != "—" || r.median == "" {
			t.Errorf("row %+v", r)
		}
	}
	if names := joinNames(8); slices.IsSorted(names[5:]) || len(slices.Compact(slices.Sorted(slices.Values(names)))) != 8 {
		t.Errorf("joinNames(8) = %v: want distinct names, joiners not in sorted order", names)
	}
}
