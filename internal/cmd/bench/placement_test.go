package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/clusterkit/clusterkit/internal/placement"
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

// TestZoneRendezvous: the baseline spreads owners over zones, skips members
// of weight 0, and does not depend on the member order.
func TestZoneRendezvous(t *testing.T) {
	in := zoneScenarios[3].input(256) // uneven zones 2/3/5
	in.Weights["c0"] = 0
	a := zoneRendezvous(in)
	for i, owners := range a {
		zones := map[string]bool{}
		for _, x := range owners {
			zones[in.Zones[x]] = true
			if x == "c0" {
				t.Fatalf("partition %d: weight-0 member owns a slot", i)
			}
		}
		if len(owners) != 3 || len(zones) != 3 {
			t.Fatalf("partition %d: owners %v, want 3 in 3 zones", i, owners)
		}
	}
	rev := in
	rev.Members = slices.Clone(in.Members)
	slices.Reverse(rev.Members)
	if !slices.EqualFunc(a, zoneRendezvous(rev), slices.Equal) {
		t.Error("zoneRendezvous depends on the member order")
	}
	o := measureZones(zoneScenarios[0], 256, true, placement.AssignInput)
	if slices.Max(o.slots) != 1 || slices.Max(o.prims) != 1 || o.oneZone != 0 || slices.Max(o.exact) > 1.05 {
		t.Errorf("ours on 3 zones × 3 nodes: %+v", o)
	}
}
