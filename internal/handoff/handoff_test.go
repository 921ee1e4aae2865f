package handoff

import (
	"math"
	"slices"
	"testing"
	"time"
)

func ids(p Partition) []string {
	out := make([]string, len(p.Owners))
	for i, o := range p.Owners {
		out[i] = o.ID
	}
	return out
}

func syncingIDs(p Partition) []string {
	var out []string
	for _, o := range p.Owners {
		if o.Syncing {
			out = append(out, o.ID)
		}
	}
	return out
}

// ack makes id a ready owner of p, as its node's MarkReady does.
func ack(p Partition, id string) Partition {
	q := Partition{Owners: slices.Clone(p.Owners), Target: slices.Clone(p.Target)}
	for i := range q.Owners {
		if q.Owners[i].ID == id {
			q.Owners[i].Syncing, q.Owners[i].Since = false, 0
		}
	}
	return q
}

func one(p Partition, members map[string]Member, lim Limits, now int64) Output {
	return Step(Input{Parts: []Partition{p}, Members: members, Limits: lim, Now: now})
}

// TestStepPrimaryMoveWithHandoff: A → B where B acknowledges loads takes
// separate committed steps: add B syncing, (B acks) flip, release A.
func TestStepPrimaryMoveWithHandoff(t *testing.T) {
	members := map[string]Member{"A": {Handoff: true, Lead: true}, "B": {Handoff: true, Lead: true}}
	lim := Limits{MaxMovesPerNode: 2}
	p := Partition{Owners: []Owner{{ID: "A"}}, Target: []string{"B"}}

	out := one(p, members, lim, 100)
	q := out.Parts[0]
	if !out.Changed || !slices.Equal(ids(q), []string{"A", "B"}) || !slices.Equal(syncingIDs(q), []string{"B"}) {
		t.Fatalf("step 1: want [A B(syncing)], got %+v", q)
	}
	if q.Owners[1].Since != 100 || out.Added != 1 || out.InFlight != 1 || out.Pending != 1 {
		t.Fatalf("step 1 output: %+v", out)
	}
	// Without the acknowledgement nothing moves.
	if again := one(q, members, lim, 200); again.Changed {
		t.Fatalf("step without ack changed: %+v", again.Parts[0])
	}

	q = ack(q, "B")
	out = one(q, members, lim, 300)
	q = out.Parts[0]
	if !out.Changed || !slices.Equal(ids(q), []string{"B", "A"}) || len(syncingIDs(q)) != 0 {
		t.Fatalf("step 2: want flip to [B A] (A kept), got %+v", q)
	}
	if len(q.Target) == 0 {
		t.Fatal("step 2: target dropped before A is released")
	}

	out = one(q, members, lim, 400)
	q = out.Parts[0]
	if !out.Changed || !slices.Equal(ids(q), []string{"B"}) || q.Target != nil {
		t.Fatalf("step 3: want [B] settled, got %+v", q)
	}
	if !Settled(q) {
		t.Fatal("not settled")
	}
	if again := one(q, members, lim, 500); again.Changed {
		t.Fatalf("settled partition changed: %+v", again.Parts[0])
	}
}

// TestStepNonHandoffReadyAtOnce: a node that does not acknowledge loads is
// added ready at once; the old primary goes in a later step than the flip.
func TestStepNonHandoffReadyAtOnce(t *testing.T) {
	members := map[string]Member{"A": {Handoff: true, Lead: true}, "B": {Lead: true}}
	lim := Limits{MaxMovesPerNode: 1, MaxMovesInFlight: 1}
	p := Partition{Owners: []Owner{{ID: "A"}}, Target: []string{"B"}}
	out := one(p, members, lim, 100)
	q := out.Parts[0]
	if len(syncingIDs(q)) != 0 || !slices.Contains(ids(q), "B") {
		t.Fatalf("B not added ready: %+v", q)
	}
	if out.InFlight != 0 {
		t.Fatalf("a ready add is not in flight: %d", out.InFlight)
	}
	if !slices.Equal(ids(q), []string{"B", "A"}) {
		t.Fatalf("want flip to [B A] with A kept, got %v", ids(q))
	}
	q = one(q, members, lim, 200).Parts[0]
	if !slices.Equal(ids(q), []string{"B"}) || q.Target != nil {
		t.Fatalf("want [B] settled, got %+v", q)
	}

	// A replica move into a non-handoff node: added ready, old one released
	// once the whole target is ready.
	p = Partition{Owners: []Owner{{ID: "A"}, {ID: "C"}}, Target: []string{"A", "B"}}
	members["C"] = Member{Handoff: true, Lead: true}
	q = one(p, members, lim, 300).Parts[0]
	if !slices.Equal(ids(q), []string{"A", "B"}) || len(syncingIDs(q)) != 0 || q.Target != nil {
		t.Fatalf("replica move: want [A B] settled, got %+v", q)
	}
}

// TestStepNoReadySource: with no ready owner there is nobody to copy from:
// a new owner is ready at once even on a hand-off node.
func TestStepNoReadySource(t *testing.T) {
	members := map[string]Member{"A": {Handoff: true, Lead: true}, "B": {Handoff: true, Lead: true}}
	p := Partition{Owners: []Owner{{ID: "A", Syncing: true, Since: 5}}, Target: []string{"A", "B"}}
	q := one(p, members, Limits{}, 10).Parts[0]
	if i := slices.IndexFunc(q.Owners, func(o Owner) bool { return o.ID == "B" }); i < 0 || q.Owners[i].Syncing {
		t.Fatalf("B: want ready owner, got %+v", q)
	}
	if q.Owners[0].Syncing {
		t.Fatalf("primary syncing while a ready owner exists: %+v", q)
	}
}

// TestStepThrottles: MaxMovesPerNode and MaxMovesInFlight are never exceeded,
// step after step, and the held-back moves are counted as waiting.
func TestStepThrottles(t *testing.T) {
	nodes := []string{"A", "B", "C", "D", "E", "F"}
	members := map[string]Member{}
	for _, id := range nodes {
		members[id] = Member{Handoff: true, Lead: true}
	}
	for _, lim := range []Limits{
		{MaxMovesPerNode: 1},
		{MaxMovesPerNode: 2},
		{MaxMovesInFlight: 3},
		{MaxMovesPerNode: 2, MaxMovesInFlight: 4},
		{MaxMovesPerNode: 3, MaxMovesInFlight: 1},
	} {
		// 24 partitions on A,B; target spreads them over all six nodes.
		var parts []Partition
		for n := range 24 {
			a, b := "A", "B"
			if n%2 == 1 {
				a, b = b, a
			}
			parts = append(parts, Partition{Owners: []Owner{{ID: a}, {ID: b}},
				Target: []string{nodes[(n+2)%6], nodes[(n+3)%6]}})
		}
		now := int64(1)
		for round := 0; round < 500; round++ {
			out := Step(Input{Parts: parts, Members: members, Limits: lim, Now: now})
			syncing, total := map[string]int{}, 0
			for _, p := range out.Parts {
				for _, o := range p.Owners {
					if o.Syncing {
						syncing[o.ID]++
						total++
					}
				}
			}
			for id, c := range syncing {
				if lim.MaxMovesPerNode > 0 && c > lim.MaxMovesPerNode {
					t.Fatalf("%+v round %d: %s has %d syncing copies", lim, round, id, c)
				}
			}
			if lim.MaxMovesInFlight > 0 && total > lim.MaxMovesInFlight {
				t.Fatalf("%+v round %d: %d copies in flight", lim, round, total)
			}
			if total != out.InFlight {
				t.Fatalf("%+v round %d: InFlight %d, counted %d", lim, round, out.InFlight, total)
			}
			if round == 0 && out.Waiting == 0 {
				t.Fatalf("%+v: nothing held back on the first step", lim)
			}
			parts = out.Parts
			// Every syncing copy acknowledges before the next step.
			for n := range parts {
				for _, id := range syncingIDs(parts[n]) {
					parts[n] = ack(parts[n], id)
				}
			}
			now++
			if !out.Changed {
				break
			}
		}
		for n, p := range parts {
			if !Settled(p) || p.Target != nil {
				t.Fatalf("%+v: partition %d not settled: %+v", lim, n, p)
			}
		}
	}
}

// TestStepHandoffTimeout: a stuck copy is cancelled when another owner is
// ready and forced when none is.
func TestStepHandoffTimeout(t *testing.T) {
	members := map[string]Member{"A": {Handoff: true, Lead: true}, "B": {Handoff: true, Lead: true}}
	lim := Limits{HandoffTimeout: 10 * time.Second}
	start := int64(1_000)
	p := Partition{Owners: []Owner{{ID: "A"}, {ID: "B", Syncing: true, Since: start}}, Target: []string{"B"}}

	if out := one(p, members, lim, start+int64(10*time.Second)-1); len(out.Cancelled)+len(out.Forced) != 0 || out.Changed {
		t.Fatalf("before the timeout: %+v", out)
	}
	out := one(p, members, lim, start+int64(10*time.Second))
	if !slices.Equal(out.Cancelled, []Ref{{0, "B"}}) || len(out.Forced) != 0 {
		t.Fatalf("cancel: %+v", out)
	}
	if q := out.Parts[0]; !slices.Equal(ids(q), []string{"A"}) && !(len(q.Owners) == 2 && q.Owners[1].Syncing && q.Owners[1].Since != start) {
		t.Fatalf("cancelled copy still there: %+v", q)
	}
	// With Skip (the cool-down) the cancelled move is not retried at once.
	out = Step(Input{Parts: []Partition{p}, Members: members, Limits: lim, Now: start + int64(10*time.Second),
		Skip: func(n int, id string) bool { return n == 0 && id == "B" }})
	if q := out.Parts[0]; !slices.Equal(ids(q), []string{"A"}) {
		t.Fatalf("cancelled copy retried despite Skip: %+v", q)
	}

	// No ready owner: forced.
	p = Partition{Owners: []Owner{{ID: "B", Syncing: true, Since: start}}, Target: []string{"B"}}
	out = one(p, members, lim, start+int64(11*time.Second))
	if !slices.Equal(out.Forced, []Ref{{0, "B"}}) || len(out.Cancelled) != 0 {
		t.Fatalf("force: %+v", out)
	}
	if q := out.Parts[0]; len(q.Owners) != 1 || q.Owners[0].Syncing || q.Owners[0].Since != 0 || q.Target != nil {
		t.Fatalf("forced owner: %+v", q)
	}

	// No timeout configured: nothing happens however long it takes.
	p = Partition{Owners: []Owner{{ID: "A"}, {ID: "B", Syncing: true, Since: start}}, Target: []string{"B"}}
	if out := one(p, members, Limits{}, math.MaxInt64); out.Changed || len(out.Cancelled) != 0 {
		t.Fatalf("no timeout: %+v", out)
	}
}

// TestStepLeadOnlyWhenAllowed: a draining/suspect target primary is not
// flipped to; a primary that may not lead hands over to a ready one that may.
func TestStepLeadOnlyWhenAllowed(t *testing.T) {
	members := map[string]Member{"A": {Handoff: true, Lead: true}, "B": {Handoff: true}}
	p := Partition{Owners: []Owner{{ID: "A"}, {ID: "B"}}, Target: []string{"B", "A"}}
	if q := one(p, members, Limits{}, 1).Parts[0]; q.Owners[0].ID != "A" {
		t.Fatalf("flipped to a node that may not lead: %+v", q)
	}
	p = Partition{Owners: []Owner{{ID: "B"}, {ID: "A"}}}
	if q := one(p, members, Limits{}, 1).Parts[0]; q.Owners[0].ID != "A" {
		t.Fatalf("primary that may not lead kept: %+v", q)
	}
}

func TestPlan(t *testing.T) {
	cur := []Partition{
		{Owners: []Owner{{ID: "A"}, {ID: "B"}}},
		{Owners: []Owner{{ID: "A"}, {ID: "B"}}},
		{Owners: []Owner{{ID: "A"}, {ID: "B", Syncing: true, Since: 1}}},
	}
	parts, moves := Plan(cur, [][]string{{"A", "B"}, {"C", "A"}, {"A", "B"}})
	if parts[0].Target != nil || !slices.Equal(parts[1].Target, []string{"C", "A"}) || !slices.Equal(parts[2].Target, []string{"A", "B"}) {
		t.Fatalf("targets: %+v", parts)
	}
	if moves != 1 {
		t.Fatalf("moves = %d, want 1", moves)
	}
}

func TestInFlightLimit(t *testing.T) {
	for _, c := range []struct {
		abs   int
		frac  float64
		parts int
		want  int
	}{
		{0, 0, 100, math.MaxInt},
		{5, 0, 100, 5},
		{0, 0.1, 100, 10},
		{0, 0.1, 101, 11},  // ceil
		{0, 0.001, 100, 1}, // at least 1
		{5, 0.1, 100, 5},
		{20, 0.1, 100, 10},
		{-1, -0.5, 100, math.MaxInt},
	} {
		if got := InFlightLimit(c.abs, c.frac, c.parts); got != c.want {
			t.Errorf("InFlightLimit(%d, %v, %d) = %d, want %d", c.abs, c.frac, c.parts, got, c.want)
		}
	}
}

// TestStepReplanAtBound: a re-plan that changes the target of a partition
// whose owner list is at its bound (RF 1: A moving to B, then C joins and the
// target becomes C) must still reach the target. Found stuck for ever in
// examples/kv when B was already ready: nothing was syncing, so no timeout
// fired either.
func TestStepReplanAtBound(t *testing.T) {
	members := map[string]Member{"A": {Handoff: true, Lead: true}, "B": {Handoff: true, Lead: true}, "C": {Handoff: true, Lead: true}}
	lim := Limits{MaxMovesPerNode: 4}
	for _, bSyncing := range []bool{false, true} {
		p := Partition{Owners: []Owner{{ID: "A"}, {ID: "B", Syncing: bSyncing, Since: 1}}, Target: []string{"C"}}
		now := int64(10)
		for step := 0; p.Target != nil; step++ {
			if step == 10 {
				t.Fatalf("B syncing %v: not settled after 10 steps: %+v", bSyncing, p)
			}
			out := one(p, members, lim, now)
			if !out.Changed {
				// Only the application's acknowledgement can move it on.
				if i := index(out.Parts[0].Owners, "C"); i < 0 || !out.Parts[0].Owners[i].Syncing {
					t.Fatalf("B syncing %v: stuck at %+v", bSyncing, out.Parts[0])
				}
				out.Parts[0] = ack(out.Parts[0], "C")
			}
			q := out.Parts[0]
			if !hasReady(q.Owners) || q.Owners[0].Syncing {
				t.Fatalf("B syncing %v: step %d left %+v", bSyncing, step, q)
			}
			if p.Owners[0].ID != q.Owners[0].ID && index(q.Owners, p.Owners[0].ID) < 0 {
				t.Fatalf("B syncing %v: the committed primary left in the flip: %+v -> %+v", bSyncing, p, q)
			}
			p, now = q, now+10
		}
		if !slices.Equal(ids(p), []string{"C"}) {
			t.Fatalf("B syncing %v: settled at %v, want [C]", bSyncing, ids(p))
		}
	}
}
