package actors

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/handoff"
	"github.com/clusterkit/clusterkit/internal/handoffcheck"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// TestHandoffSimulation is a deterministic, model-based fault simulation of
// partition hand-off: each seeded episode drives a real raftfsm.FSM with the
// real planner (planFrom, handoff.Step, proposed as rebalancer.propose does)
// through random joins, steps, acknowledgements, failures, drains, restarts,
// status flaps and clock jumps past HandoffTimeout, and checks the hand-off
// invariants of internal/handoffcheck (the fault suite on real nodes checks
// the same ones) after every applied entry; and at the end of each episode,
// liveness: once the faults stop and every node acknowledges its loads,
// every partition reaches its target (settle).
//
// Proposals of the planner applied at once must never be rejected; a
// proposal held back while another entry commits (a race the leader has for
// real) may be rejected as stale.
func TestHandoffSimulation(t *testing.T) {
	episodes := 1000
	if testing.Short() {
		episodes = 200
	}
	start := time.Now()
	var total simStats
	for seed := range uint64(episodes) {
		s := runEpisode(t, seed)
		total.entries += s.entries
		total.planner += s.planner
		total.violations += s.violations
		total.stale += s.stale
		total.raceRejected += s.raceRejected
		total.rejected += s.rejected
		total.forced += s.forced
		total.cancelled += s.cancelled
		if t.Failed() {
			t.Fatalf("seed %d failed (rerun: the episode is deterministic in its seed)", seed)
		}
	}
	t.Logf("%d episodes, %d entries checked, %d violations (%d planner proposals committed); %d held proposals rejected as stale, %d held proposals rejected otherwise, %d planner proposals rejected; %d forced, %d cancelled by HandoffTimeout; %v",
		episodes, total.entries, total.violations, total.planner, total.stale, total.raceRejected, total.rejected, total.forced, total.cancelled, time.Since(start).Round(time.Millisecond))
	if total.violations != 0 || total.rejected != 0 {
		t.Fatalf("%d violations, %d planner proposals rejected", total.violations, total.rejected)
	}
}

type simStats struct {
	entries, planner, violations, stale, raceRejected, rejected, forced, cancelled int
}

type sim struct {
	t      *testing.T
	seed   uint64
	rng    *rand.Rand
	f      *raftfsm.FSM
	index  uint64
	now    int64
	h      HandoffConfig
	pool   []string
	hand   map[string]bool   // the node acknowledges loads
	nonce  map[string]uint64 // its current life
	joined map[string]bool   // was ever a member
	cool   map[handoff.Ref]int64
	held   *messages.Command // a proposal delayed past the next entry
	simStats
}

func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.violations++
	s.t.Errorf("seed %d entry %d: "+format, append([]any{s.seed, s.index}, args...)...)
}

func runEpisode(t *testing.T, seed uint64) simStats {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := &sim{t: t, seed: seed, rng: rng, f: raftfsm.New("n1", nil), now: 1_700_000_000_000_000_000,
		hand: map[string]bool{}, nonce: map[string]uint64{}, joined: map[string]bool{}, cool: map[handoff.Ref]int64{}}
	parts := []uint32{16, 24, 32}[rng.IntN(3)]
	rf := uint32(1 + rng.IntN(3))
	nodes := 3 + rng.IntN(4)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		s.pool = append(s.pool, id)
		s.hand[id] = rng.IntN(3) > 0 // most acknowledge loads, some do not
	}
	s.h = HandoffConfig{
		MaxMovesPerNode:  1 + rng.IntN(3),
		MaxMovesInFlight: []int{0, 2, 4, 8}[rng.IntN(4)],
		HandoffTimeout:   10 * time.Second,
		MinReadyReplicas: 1,
	}
	if rng.IntN(2) == 0 {
		s.h.MaxMovesInFlightFraction = 0.25
	}
	if rng.IntN(2) == 0 {
		s.h.ReplicaDelay = 30 * time.Second
	}
	if r := s.apply(configCmd(parts, rf), false); r.Err != nil {
		t.Fatalf("seed %d: config: %v", seed, r.Err)
	}
	s.join(s.pool[0])
	for range 18 + rng.IntN(22) {
		s.event()
		if t.Failed() {
			break
		}
	}
	if !t.Failed() {
		s.settle()
	}
	return s.simStats
}

// apply commits one entry and checks the invariants against the previous
// view. planner marks a proposal of the rebalancer's.
func (s *sim) apply(cmd *messages.Command, planner bool) *raftfsm.ApplyResult {
	s.t.Helper()
	prev := s.f.View()
	s.index++
	cmd.TimeUnixNano = s.now
	data, err := raftfsm.Encode(cmd)
	if err != nil {
		s.t.Fatalf("seed %d: encode: %v", s.seed, err)
	}
	res := s.f.Apply(&raft.Log{Index: s.index, Type: raft.LogCommand, Data: data}).(*raftfsm.ApplyResult)
	if res.Err != nil {
		return res
	}
	s.entries++
	if planner {
		s.planner++
	}
	s.check(prev, s.f.View(), cmd, planner)
	return res
}

func (s *sim) check(prev, next *raftfsm.View, cmd *messages.Command, planner bool) {
	s.t.Helper()
	var reload []string
	if st := cmd.GetSetPartitionTable(); st != nil {
		reload = st.GetRebalance().GetReload()
	}
	for _, v := range handoffcheck.Step(prev, next, handoffcheck.Entry{Planner: planner, Reload: reload, Limits: limitsOf(s.h, next.PartitionCount())}) {
		s.fail("%s", v)
	}
}

func (s *sim) members() []string {
	var out []string
	for _, m := range s.f.View().Members() {
		out = append(out, m.ID)
	}
	return out
}

// event applies one random event, then the held proposal if there is one.
func (s *sim) event() {
	held := s.held
	s.held = nil
	s.now += int64(s.rng.IntN(500)) * int64(time.Millisecond)
	members := s.members()
	var outside []string
	for _, id := range s.pool {
		if !slices.Contains(members, id) {
			outside = append(outside, id)
		}
	}
	pick := func(ids []string) string { return ids[s.rng.IntN(len(ids))] }
	switch k := s.rng.IntN(100); {
	case k < 12 && len(outside) > 0: // a node joins (or comes back after a removal)
		s.join(pick(outside))
	case k < 17: // a member restarts with a new life and must reload
		id := pick(members)
		s.nonce[id]++
		if r := s.apply(s.registerCmd(id), false); r.Err != nil {
			s.t.Fatalf("seed %d: restart %s: %v", s.seed, id, r.Err)
		}
		s.plan([]string{id})
	case k < 22: // a manual rebalance / a leader change's reconciliation
		s.plan(nil)
	case k < 50:
		s.step()
	case k < 72:
		s.ack()
	case k < 78 && len(members) > 1: // failure detection removes a node
		id := pick(members)
		s.remove(id, raftfsm.LeaveHealthFailure)
		if s.rng.IntN(2) == 0 {
			s.plan(nil)
		}
	case k < 83 && len(members) > 1: // planned stop: drain, later leave
		id := pick(members)
		if r := s.apply(&messages.Command{Op: &messages.Command_DrainNode{DrainNode: &messages.DrainNode{Id: id}}}, false); r.Err != nil {
			s.t.Fatalf("seed %d: drain %s: %v", s.seed, id, r.Err)
		}
		if s.rng.IntN(2) == 0 {
			s.plan(nil)
		}
	case k < 86: // a draining node finishes its stop
		for _, m := range s.f.View().Members() {
			if m.Draining && len(members) > 1 {
				s.remove(m.ID, raftfsm.LeaveGraceful)
				s.plan(nil)
				break
			}
		}
	case k < 90 && len(members) > 1: // a status flap
		id := pick(members)
		st := messages.NodeStatus_NODE_STATUS_SUSPECT
		if m, _ := s.f.View().Member(id); m.Status != raftfsm.StatusActive {
			st = messages.NodeStatus_NODE_STATUS_ACTIVE
		}
		s.apply(&messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{Id: id, Status: st}}}, false)
		s.step()
	default: // time passes beyond HandoffTimeout (and maybe ReplicaDelay)
		s.now += int64(s.h.HandoffTimeout) + int64(time.Millisecond)
		if s.rng.IntN(3) == 0 {
			s.now += int64(s.h.ReplicaDelay)
			s.plan(nil)
		} else {
			s.step()
		}
	}
	if held != nil {
		s.commitHeld(held)
	}
}

// settle checks liveness: once the faults stop, draining members finish
// their stop, suspects recover, time passes every cool-down and reservation
// and every node acknowledges its loads, the hand-off must reach its target
// (no partition keeps a target). A stuck partition waits for ever in a real
// cluster: nothing is syncing, so no HandoffTimeout fires.
func (s *sim) settle() {
	if s.held != nil {
		s.commitHeld(s.held)
		s.held = nil
	}
	for _, m := range s.f.View().Members() {
		switch {
		case m.Draining && len(s.members()) > 1:
			s.remove(m.ID, raftfsm.LeaveGraceful)
		case m.Status != raftfsm.StatusActive:
			s.apply(&messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{Id: m.ID, Status: messages.NodeStatus_NODE_STATUS_ACTIVE}}}, false)
		}
	}
	s.now += int64(s.h.ReplicaDelay) + int64(time.Millisecond)
	s.plan(nil)
	const rounds = 100
	for range rounds {
		v := s.f.View()
		if len(handoffcheck.Unsettled(v)) == 0 {
			return
		}
		for n := range v.PartitionCount() {
			a := v.Assignment(n)
			for i, id := range a.GetOwners() {
				if !handoffcheck.SyncingAt(a, i) {
					continue
				}
				m, _ := v.Member(id)
				s.apply(&messages.Command{Op: &messages.Command_MarkReady{MarkReady: &messages.MarkReady{Id: id, Incarnation: m.Incarnation,
					Partitions: []*messages.ReadyPartition{{Partition: uint32(n), Epoch: a.GetSyncing()[i]}}}}}, false)
			}
		}
		// Time passes (every copy is acknowledged well within
		// HandoffTimeout), so the cool-downs of copies cancelled before
		// end.
		s.now += int64(s.h.HandoffTimeout / 4)
		s.step()
		if s.held != nil {
			s.commitHeld(s.held)
			s.held = nil
		}
		if s.t.Failed() {
			return
		}
	}
	v := s.f.View()
	unsettled := handoffcheck.Unsettled(v)
	var ms []string
	for _, m := range v.Members() {
		ms = append(ms, fmt.Sprintf("%s(%s draining=%v handoff=%v)", m.ID, m.Status, m.Draining, m.Handoff))
	}
	s.fail("liveness: %d partitions not settled after %d rounds without faults: %v; members %v", len(unsettled), rounds, unsettled, ms)
}

func (s *sim) registerCmd(id string) *messages.Command {
	return &messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{Member: &messages.Member{
		Id: id, Address: "127.0.0.1:1", Incarnation: 1, Nonce: 1000 + s.nonce[id], Handoff: s.hand[id]}}}}
}

func (s *sim) join(id string) {
	back := s.joined[id]
	s.joined[id] = true
	s.nonce[id]++
	if r := s.apply(s.registerCmd(id), false); r.Err != nil {
		s.t.Fatalf("seed %d: join %s: %v", s.seed, id, r.Err)
	}
	if back {
		s.plan([]string{id})
	} else {
		s.plan(nil)
	}
}

func (s *sim) remove(id, reason string) {
	if r := s.apply(&messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{Id: id, Reason: reason}}}, false); r.Err != nil {
		s.t.Fatalf("seed %d: remove %s: %v", s.seed, id, r.Err)
	}
}

// ack: a node acknowledges one random syncing copy with its load epoch.
func (s *sim) ack() {
	v := s.f.View()
	type ref struct {
		n     int
		id    string
		epoch uint64
	}
	var refs []ref
	for n := range v.PartitionCount() {
		a := v.Assignment(n)
		for i, id := range a.GetOwners() {
			if handoffcheck.SyncingAt(a, i) {
				refs = append(refs, ref{n, id, a.GetSyncing()[i]})
			}
		}
	}
	if len(refs) == 0 {
		s.step()
		return
	}
	r := refs[s.rng.IntN(len(refs))]
	m, _ := v.Member(r.id)
	epoch := r.epoch
	if s.rng.IntN(10) == 0 {
		epoch-- // a late reply for an earlier load: ignored
	}
	res := s.apply(&messages.Command{Op: &messages.Command_MarkReady{MarkReady: &messages.MarkReady{Id: r.id, Incarnation: m.Incarnation,
		Partitions: []*messages.ReadyPartition{{Partition: uint32(r.n), Epoch: epoch}}}}}, false)
	if res.Err != nil {
		s.t.Fatalf("seed %d: MarkReady %v: %v", s.seed, r, res.Err)
	}
	if s.rng.IntN(2) == 0 {
		s.step()
	}
}

func (s *sim) skip(n int, id string) bool {
	until, ok := s.cool[handoff.Ref{Partition: n, Node: id}]
	return ok && s.now < until
}

func (s *sim) reservations(v *raftfsm.View) map[string]*reservation {
	return reservationsOf(v, s.h.ReplicaDelay, s.now)
}

// plan is rebalancer.run: a plan towards a new target and its first step.
func (s *sim) plan(reload []string) {
	v := s.f.View()
	if v.Config() == nil || len(v.Members()) == 0 {
		return
	}
	reload = slices.DeleteFunc(slices.Clone(reload), func(id string) bool { _, ok := v.Member(id); return !ok })
	pl := planFrom(v, s.h, s.reservations(v), s.now, reload, s.skip)
	if v.HasTable() && len(reload) == 0 && !pl.changed {
		return
	}
	s.propose(v, pl.step, &messages.RebalanceInfo{Trigger: raftfsm.TriggerManual, Reload: reload, Plan: true, MovesPlanned: uint32(pl.moves)})
}

// step is rebalancer.stepNow.
func (s *sim) step() {
	v := s.f.View()
	if v.Config() == nil || !v.HasTable() {
		return
	}
	cur, members := current(v)
	out := handoff.Step(handoff.Input{Parts: cur, Members: members, Limits: limitsOf(s.h, len(cur)), Now: s.now, Skip: s.skip})
	if !out.Changed {
		return
	}
	s.propose(v, out, &messages.RebalanceInfo{})
}

// propose is rebalancer.propose; one proposal in ten is held back until
// after the next event (another entry commits first).
func (s *sim) propose(v *raftfsm.View, out handoff.Output, info *messages.RebalanceInfo) {
	for _, c := range out.Cancelled {
		s.cool[c] = s.now + int64(s.h.HandoffTimeout)
	}
	s.forced += len(out.Forced)
	s.cancelled += len(out.Cancelled)
	cmd := stepCommand(v, out, info, "n1", s.now)
	if s.held == nil && s.rng.IntN(10) == 0 {
		s.held = cmd
		return
	}
	if r := s.apply(cmd, true); r.Err != nil {
		s.reject(r.Err)
	}
}

// reject records the FSM's rejection of a planner proposal applied at once
// (not a race: nothing committed in between): always a failure.
func (s *sim) reject(err error) {
	s.rejected++
	s.t.Errorf("seed %d entry %d: the FSM rejected the planner's proposal: %v", s.seed, s.index, err)
}

// commitHeld applies a proposal computed before the last event.
func (s *sim) commitHeld(cmd *messages.Command) {
	r := s.apply(cmd, true)
	switch {
	case r.Err == nil:
	case errors.Is(r.Err, raftfsm.ErrStaleTable):
		s.stale++
	default:
		// The table did not move but the membership did (a target
		// member removed while owning nothing): not stale, invalid.
		s.raceRejected++
		if testing.Verbose() {
			s.t.Logf("seed %d entry %d: held proposal rejected (race, not stale): %v", s.seed, s.index, r.Err)
		}
	}
}

// TestHandoffCommandsDecode: MarkReady and DrainNode entries go through
// the codec and Apply, and do what they say (the simulation relies on it).
func TestHandoffCommandsDecode(t *testing.T) {
	f := raftfsm.New("n1", nil)
	var idx uint64
	apply := func(c *messages.Command) {
		t.Helper()
		idx++
		data, err := raftfsm.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: data}).(*raftfsm.ApplyResult).Err; err != nil {
			t.Fatalf("%T: %v", c.GetOp(), err)
		}
	}
	apply(configCmd(4, 1))
	apply(registerCmd("n1"))
	apply(&messages.Command{Op: &messages.Command_MarkReady{MarkReady: &messages.MarkReady{Id: "n1"}}})
	apply(&messages.Command{Op: &messages.Command_DrainNode{DrainNode: &messages.DrainNode{Id: "n1"}}})
	if m, ok := f.View().Member("n1"); !ok || !m.Draining {
		t.Fatalf("after DrainNode, n1 is %+v (member %v), want draining", m, ok)
	}
}
