package actors

import (
	"maps"
	"slices"

	"github.com/clusterkit/clusterkit/internal/handoff"
	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/internal/placement"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// current reads the committed table and members in the planner's terms.
func current(v *raftfsm.View) ([]handoff.Partition, map[string]handoff.Member) {
	parts := make([]handoff.Partition, v.PartitionCount())
	for n := range parts {
		a := v.Assignment(n)
		p := handoff.Partition{Owners: make([]handoff.Owner, len(a.GetOwners())), Target: slices.Clone(a.GetTarget())}
		for i, id := range a.GetOwners() {
			p.Owners[i].ID = id
			if a.LoadEpoch(i) != 0 {
				p.Owners[i].Syncing = true
				p.Owners[i].Since = a.LoadSince(i)
			}
		}
		parts[n] = p
	}
	members := make(map[string]handoff.Member, len(v.Members()))
	for _, m := range v.Members() {
		// A suspect member keeps leading: suspicion is often a pause, and
		// failure detection's removal promotes a ready replica if it is not.
		members[m.ID] = handoff.Member{Handoff: m.Handoff, Lead: !m.Draining}
	}
	return parts, members
}

// plan is a rebalance: the targets and the first step towards them.
type plan struct {
	step    handoff.Output
	moves   int
	changed bool
}

// planFrom plans a rebalance on view v: placement computes the target from
// the plan in progress (or the owners), keeping the slots reserved for
// members removed less than ReplicaDelay ago, and the first step is taken
// within the throttles. Members in reload must load their partitions again.
func planFrom(v *raftfsm.View, h HandoffConfig, reserved map[string]*reservation, now int64, reload []string, skip func(int, string) bool) plan {
	cfg := v.Config()
	rf := int(cfg.GetReplicationFactor())
	cur, members := current(v)
	if !v.HasTable() {
		cur = make([]handoff.Partition, cfg.GetPartitionCount())
	}
	for n := range cur {
		ready := readyOwners(cur[n])
		for i, o := range cur[n].Owners {
			// A reloading owner on a node that acknowledges loads is syncing
			// again, if someone else has the data.
			if slices.Contains(reload, o.ID) && members[o.ID].Handoff && !o.Syncing && ready > 1 {
				cur[n].Owners[i].Syncing, cur[n].Owners[i].Since = true, now
				ready--
			}
		}
	}
	target := make([][]string, len(cur))
	if v.RebalancePaused() && v.HasTable() {
		// Maintenance mode: the owners are the target. Nothing is copied
		// or released; a reloading owner still loads.
		for n, p := range cur {
			target[n] = ownerIDs(p)
		}
	} else {
		target = placeTarget(v, cur, members, reserved, h.MinReadyReplicas, rf)
	}
	parts, moves := handoff.Plan(cur, target)
	out := handoff.Step(handoff.Input{Parts: parts, Members: members, Limits: limitsOf(h, len(cur)), Now: now, Skip: skip})
	return plan{step: out, moves: moves, changed: !v.HasTable() || differs(v, out.Parts)}
}

// placeTarget computes placement's target from the plan in progress (or the
// owners), keeping the slots reserved for members removed less than
// ReplicaDelay ago empty.
func placeTarget(v *raftfsm.View, cur []handoff.Partition, members map[string]handoff.Member, reserved map[string]*reservation, minReady, rf int) [][]string {
	base := make([][]string, len(cur))
	for n, p := range cur {
		if len(p.Target) > 0 {
			base[n] = slices.Clone(p.Target)
		} else {
			base[n] = ownerIDs(p)
		}
	}
	var ids, noPrimary, holders []string
	zones, weights := map[string]string{}, map[string]int{}
	for _, m := range v.Members() {
		ids = append(ids, m.ID)
		if m.Draining {
			noPrimary = append(noPrimary, m.ID)
		}
		zones[m.ID], weights[m.ID] = m.Zone, m.PlacementWeight()
	}
	// In ID and partition order: the plan must not depend on map order.
	for _, id := range slices.Sorted(maps.Keys(reserved)) {
		_, member := members[id]
		for _, n := range slices.Sorted(maps.Keys(reserved[id].parts)) {
			if n >= len(base) || len(base[n]) >= rf || slices.Contains(base[n], id) {
				continue
			}
			if !member && readyOwners(cur[n]) < max(minReady, 1) {
				continue // too few copies left to wait for it
			}
			base[n] = append(base[n], id)
			if !member && !slices.Contains(holders, id) {
				holders = append(holders, id)
				if d, ok := v.Departure(id); ok {
					zones[id], weights[id] = d.Node.Zone, d.Node.PlacementWeight()
				}
			}
		}
	}
	slices.Sort(holders)
	target := placement.AssignInput(placement.Input{Prev: base, Members: append(slices.Clone(ids), holders...),
		Partitions: len(cur), RF: rf, NoPrimary: append(noPrimary, holders...), Zones: zones, Weights: weights})
	for n := range target {
		// A placeholder keeps its slot empty: nobody copies its data yet.
		target[n] = slices.DeleteFunc(target[n], func(id string) bool { return slices.Contains(holders, id) })
	}
	return target
}

// ownerIDs lists p's owners, primary first.
func ownerIDs(p handoff.Partition) []string {
	ids := make([]string, len(p.Owners))
	for i, o := range p.Owners {
		ids[i] = o.ID
	}
	return ids
}

// readyOwners counts p's owners that hold the data.
func readyOwners(p handoff.Partition) int {
	n := 0
	for _, o := range p.Owners {
		if !o.Syncing {
			n++
		}
	}
	return n
}

// differs reports whether parts differs from the committed table.
func differs(v *raftfsm.View, parts []handoff.Partition) bool {
	for n, p := range parts {
		a := v.Assignment(n)
		if !slices.Equal(a.GetTarget(), p.Target) || len(a.GetOwners()) != len(p.Owners) {
			return true
		}
		for i, o := range p.Owners {
			if a.GetOwners()[i] != o.ID || (a.LoadEpoch(i) != 0) != o.Syncing {
				return true
			}
		}
	}
	return false
}

// DryRun returns what the next rebalance would do on view v: the partitions
// whose owners would change, with the copies and releases, and the copies a
// hand-off in progress still waits for. It changes nothing.
func DryRun(v *raftfsm.View, h HandoffConfig, reserved map[string]*reservation, now int64) *messages.PlanResult {
	res := &messages.PlanResult{}
	if v.Config() == nil || len(v.Members()) == 0 {
		return res
	}
	cur, _ := current(v)
	for _, p := range cur {
		for _, id := range p.Target {
			if i := slices.IndexFunc(p.Owners, func(o handoff.Owner) bool { return o.ID == id }); i < 0 || p.Owners[i].Syncing {
				res.Pending++
			}
		}
	}
	pl := planFrom(v, h, reserved, now, nil, nil)
	ids := keyhash.IDs(uint32(len(cur)))
	for n, p := range pl.step.Parts {
		goal := p.Target
		if len(goal) == 0 {
			goal = ownerIDs(p)
		}
		var now []string
		if n < len(cur) {
			now = ownerIDs(cur[n])
		}
		if slices.Equal(now, goal) {
			continue
		}
		pp := &messages.PlannedPartition{Partition: uint32(n), PartitionId: ids[n], Current: now, Target: slices.Clone(goal)}
		for _, id := range goal {
			if !slices.Contains(now, id) {
				pp.Add = append(pp.Add, id)
			}
		}
		for _, id := range now {
			if !slices.Contains(goal, id) {
				pp.Release = append(pp.Release, id)
			}
		}
		res.Moves += uint32(len(pp.Add))
		if len(now) == 0 || len(goal) == 0 || now[0] != goal[0] {
			res.PrimaryChanges++
		}
		res.Partitions = append(res.Partitions, pp)
	}
	return res
}

// DryRunOf is DryRun with the reservations recovered from the view (what a
// leader that just took over would keep: those not expired at now).
func DryRunOf(v *raftfsm.View, h HandoffConfig, now int64) *messages.PlanResult {
	return DryRun(v, h, reservationsOf(v, h.ReplicaDelay, now), now)
}

// stepCommand is the entry that proposes one step of the hand-off: the
// step's owners (syncing marked, the state machine computes the epochs)
// and targets, its timed-out copies recorded in info.
func stepCommand(v *raftfsm.View, out handoff.Output, info *messages.RebalanceInfo, origin string, now int64) *messages.Command {
	for _, c := range out.Cancelled {
		info.Cancelled = append(info.Cancelled, &messages.OwnerRef{Partition: uint32(c.Partition), Node: c.Node})
	}
	for _, f := range out.Forced {
		info.Forced = append(info.Forced, &messages.OwnerRef{Partition: uint32(f.Partition), Node: f.Node})
	}
	parts := make([]*messages.PartitionAssignment, len(out.Parts))
	for n, p := range out.Parts {
		a := &messages.PartitionAssignment{Owners: make([]string, len(p.Owners)), Target: p.Target}
		for i, o := range p.Owners {
			a.Owners[i] = o.ID
			if o.Syncing {
				if a.Syncing == nil {
					a.Syncing = make([]uint64, len(p.Owners))
				}
				a.Syncing[i] = 1
			}
		}
		parts[n] = a
	}
	return &messages.Command{TimeUnixNano: now, Origin: origin,
		Op: &messages.Command_SetPartitionTable{SetPartitionTable: &messages.SetPartitionTable{
			ExpectedVersion: v.TableVersion(), Partitions: parts, Rebalance: info,
		}}}
}
