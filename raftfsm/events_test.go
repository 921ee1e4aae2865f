package raftfsm

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// payload returns the concrete event inside e's oneof.
func payload(e *messages.Event) proto.Message {
	m := e.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("kind"))
	return m.Get(fd).Message().Interface()
}

// kinds names the events in order, collapsing runs of PartitionChange.
func kinds(evs []*messages.Event) []string {
	var out []string
	for _, e := range evs {
		name := string(payload(e).ProtoReflect().Descriptor().Name())
		if name == "PartitionChange" {
			name = "PartitionChange*"
			if len(out) > 0 && out[len(out)-1] == name {
				continue
			}
		}
		out = append(out, name)
	}
	return out
}

func changes(evs []*messages.Event) []*messages.PartitionChange {
	var out []*messages.PartitionChange
	for _, e := range evs {
		if pc := e.GetPartitionChange(); pc != nil && pc.GetAction() == ActionLoad {
			out = append(out, pc)
		}
	}
	return out
}

func checkSeqs(t *testing.T, index uint64, evs []*messages.Event) {
	t.Helper()
	for i, e := range evs {
		s := payload(e).(interface {
			GetIndex() uint64
			GetSub() uint32
		})
		if s.GetIndex() != index || s.GetSub() != uint32(i) {
			t.Fatalf("event %d has seq (%d,%d), want (%d,%d)", i, s.GetIndex(), s.GetSub(), index, i)
		}
	}
}

func TestBootstrapEvents(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 3))
	if evs := Events(h.last(), time.Now()); len(evs) != 0 {
		t.Fatalf("config entry produced %v", kinds(evs))
	}
	h.mustApply(register("n1", 1))
	evs := Events(h.last(), time.Now())
	if got := kinds(evs); !slices.Equal(got, []string{"NodeJoin"}) {
		t.Fatalf("registration events %v", got)
	}
	j := evs[0].GetNodeJoin()
	if !j.GetIsBootstrap() || j.GetClusterSize() != 1 || j.GetNode().GetId() != "n1" || j.GetNode().GetServices()["kv"] != ":9080" || j.GetTimeUnixNano() != h.clock {
		t.Fatalf("NodeJoin %v", j)
	}
	res := h.rebalance(TriggerNodeJoin)
	evs = Events(h.last(), time.Now())
	if got := kinds(evs); !slices.Equal(got, []string{"RebalanceStart", "PartitionChange*", "RebalanceComplete", "ClusterHealthChange"}) {
		t.Fatalf("initial table events %v", got)
	}
	checkSeqs(t, res.Index, evs)
	pcs := changes(evs)
	if len(pcs) != 8 {
		t.Fatalf("%d PartitionChange events, want 8", len(pcs))
	}
	for n, pc := range pcs {
		if pc.GetPartition() != uint32(n) || pc.GetCopyToNode().GetId() != "n1" || !pc.GetInitial() || !pc.GetNoLiveSource() ||
			len(pc.GetCopyFromNodes()) != 0 || pc.GetRole() != "primary" || pc.GetNewPrimary() != "n1" || pc.GetChangeReason() != TriggerNodeJoin {
			t.Fatalf("PartitionChange %d: %v", n, pc)
		}
	}
	if s := evs[0].GetRebalanceStart(); s.GetPartitionsToMove() != 8 || !slices.Equal(s.GetNodesAffected(), []string{"n1"}) {
		t.Fatalf("RebalanceStart %v", s)
	}
	hc := evs[len(evs)-1].GetClusterHealthChange()
	if hc.GetStatus() != HealthDegraded || hc.GetPreviousStatus() != healthUnknown || hc.GetUnderReplicatedPartitions() != 8 {
		t.Fatalf("health event %v", hc)
	}
}

// TestJoinMovesOnlyToTheNewNode: on a join, only the joining node gains
// partitions, every gain names the live previous holders, and nobody who
// already held a partition gets an event for it.
func TestJoinMovesOnlyToTheNewNode(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(256, 3))
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		h.mustApply(register(id, 1))
	}
	h.rebalance(TriggerNodeJoin)
	prev := h.f.View()
	h.mustApply(register("n5", 1))
	h.rebalance(TriggerNodeJoin)
	next := h.f.View()
	evs := Events(h.last(), time.Now())
	pcs := changes(evs)
	if len(pcs) == 0 {
		t.Fatal("no partition moved to the new node")
	}
	for _, pc := range pcs {
		n := int(pc.GetPartition())
		if pc.GetCopyToNode().GetId() != "n5" {
			t.Fatalf("partition %d moved to %s, only n5 should gain", n, pc.GetCopyToNode().GetId())
		}
		var from []string
		for _, f := range pc.GetCopyFromNodes() {
			from = append(from, f.GetId())
		}
		// The sources are the ready owners that keep the partition: an
		// owner this entry releases may drop the data at once.
		want := slices.DeleteFunc(slices.Clone(next.Owners(n)), func(id string) bool { return id == "n5" })
		if !slices.Equal(from, want) || pc.GetNoLiveSource() || pc.GetInitial() {
			t.Fatalf("partition %d: copy from %v, owners %v", n, from, next.Owners(n))
		}
		if pc.GetEpoch() != prev.Partition(n).Epoch+1 {
			t.Fatalf("partition %d epoch %d -> %d", n, prev.Partition(n).Epoch, pc.GetEpoch())
		}
	}
	// Partitions whose owner list did not change keep their epoch.
	for n := range next.PartitionCount() {
		if slices.Equal(prev.Owners(n), next.Owners(n)) && prev.Partition(n).Epoch != next.Partition(n).Epoch {
			t.Fatalf("partition %d epoch changed without an owner change", n)
		}
	}
	start := evs[0].GetRebalanceStart()
	if int(start.GetPartitionsToMove()) != len(pcs) {
		t.Fatalf("RebalanceStart says %d partitions move, %d PartitionChange events", start.GetPartitionsToMove(), len(pcs))
	}
}

func TestLeaveRepairsTableAndRebalanceNamesLiveSources(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(64, 3))
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		h.mustApply(register(id, 1))
	}
	h.rebalance(TriggerNodeJoin)
	before := h.f.View()
	var ownedPrimary, ownedReplica []string
	for n := range before.PartitionCount() {
		if i := slices.Index(before.Owners(n), "n2"); i == 0 {
			ownedPrimary = append(ownedPrimary, before.Partition(n).ID)
		} else if i > 0 {
			ownedReplica = append(ownedReplica, before.Partition(n).ID)
		}
	}
	h.mustApply(remove("n2", LeaveHealthFailure))
	evs := Events(h.last(), time.Now())
	// The replicas promoted to primary are told so (become_primary).
	if got := kinds(evs); !slices.Equal(got, []string{"NodeLeave", "PartitionChange*", "ClusterHealthChange"}) && !slices.Equal(got, []string{"NodeLeave", "PartitionChange*"}) {
		t.Fatalf("remove events %v", got)
	}
	promoted := 0
	for _, e := range evs {
		if pc := e.GetPartitionChange(); pc != nil {
			if pc.GetAction() != ActionBecomePrimary || pc.GetChangeReason() != TriggerNodeLeave || pc.GetCopyToNode().GetId() != pc.GetNewPrimary() {
				t.Fatalf("removal PartitionChange %v", pc)
			}
			promoted++
		}
	}
	if promoted != len(ownedPrimary) {
		t.Fatalf("%d become_primary events, n2 led %d partitions", promoted, len(ownedPrimary))
	}
	l := evs[0].GetNodeLeave()
	if l.GetReason() != LeaveHealthFailure || !slices.Equal(l.GetPartitionsOwned(), ownedPrimary) || !slices.Equal(l.GetPartitionsReplica(), ownedReplica) {
		t.Fatalf("NodeLeave %v", l)
	}
	// The table no longer names n2; a replica took over as primary at once.
	mid := h.f.View()
	for n := range mid.PartitionCount() {
		if slices.Contains(mid.Owners(n), "n2") {
			t.Fatalf("partition %d still owned by the removed node", n)
		}
		if before.Owners(n)[0] == "n2" && mid.Owners(n)[0] != before.Owners(n)[1] {
			t.Fatalf("partition %d: primary %s, want promoted replica %s", n, mid.Owners(n)[0], before.Owners(n)[1])
		}
	}
	h.rebalance(TriggerNodeLeave)
	evs = Events(h.last(), time.Now())
	if len(changes(evs)) == 0 {
		t.Fatal("the refill loads nothing")
	}
	for _, pc := range changes(evs) {
		n := int(pc.GetPartition())
		if len(pc.GetCopyFromNodes()) != len(mid.Owners(n)) {
			t.Fatalf("partition %d: %d sources, %d live holders", n, len(pc.GetCopyFromNodes()), len(mid.Owners(n)))
		}
		if pc.GetChangeReason() != TriggerNodeLeave {
			t.Fatalf("reason %s", pc.GetChangeReason())
		}
	}
	if h.f.View().Health().Status != HealthHealthy {
		t.Fatalf("health after refill: %+v", h.f.View().Health())
	}
}

func TestRejoinOfARestartedMember(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(16, 2))
	for _, id := range []string{"n1", "n2", "n3"} {
		h.mustApply(register(id, 1))
	}
	h.rebalance(TriggerNodeJoin)
	held := []string{}
	v := h.f.View()
	for n := range v.PartitionCount() {
		if slices.Contains(v.Owners(n), "n3") {
			held = append(held, v.Partition(n).ID)
		}
	}
	lastSeen := h.clock + 5*int64(time.Second) // n3 knew itself alive 5 s after the table...
	h.clock += 25 * int64(time.Second)         // ...and came back 20 s later
	cmd := register("n3", 2)
	cmd.GetRegisterNode().LastAliveUnixNano = lastSeen
	h.mustApply(cmd)
	evs := Events(h.last(), time.Now())
	if got := kinds(evs); !slices.Equal(got, []string{"NodeRejoin"}) {
		t.Fatalf("rejoin events %v", got)
	}
	r := evs[0].GetNodeRejoin()
	if time.Duration(r.GetOfflineDurationNanos()) != time.Duration(h.clock-lastSeen) || r.GetLastSeenUnixNano() != lastSeen {
		t.Fatalf("offline %v last seen %d", time.Duration(r.GetOfflineDurationNanos()), r.GetLastSeenUnixNano())
	}
	slices.Sort(held)
	got := slices.Clone(r.GetPartitionsBeforeLeave())
	slices.Sort(got)
	if !slices.Equal(got, held) {
		t.Fatalf("PartitionsBeforeLeave %v, want %v", got, held)
	}
	// The rebalance after a rejoin tells n3 to reload every partition it holds,
	// even those whose assignment did not change, from the other holders.
	h.rebalance(TriggerNodeRejoin, "n3")
	after := h.f.View()
	mine := 0
	for _, pc := range changes(Events(h.last(), time.Now())) {
		if pc.GetCopyToNode().GetId() != "n3" {
			continue
		}
		mine++
		for _, f := range pc.GetCopyFromNodes() {
			if f.GetId() == "n3" {
				t.Fatal("a reloading node is listed as its own source")
			}
		}
	}
	want := 0
	for n := range after.PartitionCount() {
		if slices.Contains(after.Owners(n), "n3") {
			want++
		}
	}
	if mine != want || want == 0 {
		t.Fatalf("n3 got %d PartitionChange events, holds %d partitions", mine, want)
	}
}

func TestRejoinAfterRemoval(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 2))
	h.mustApply(register("n1", 1))
	h.mustApply(register("n2", 1))
	h.rebalance(TriggerNodeJoin)
	h.mustApply(remove("n2", LeaveGraceful))
	leftAt := h.clock
	h.clock += int64(90 * time.Second)
	h.mustApply(register("n2", 2))
	a := h.last()
	if a.Change.Rejoined == nil || a.Change.Joined != nil {
		t.Fatalf("registration of a departed node: %+v", a.Change)
	}
	if a.Change.LastSeen.UnixNano() != leftAt || a.Change.OfflineDuration != time.Duration(h.clock-leftAt) {
		t.Fatalf("last seen %v offline %v", a.Change.LastSeen, a.Change.OfflineDuration)
	}
	if len(a.Change.PartitionsBefore) == 0 {
		t.Fatal("partitions before leave forgotten")
	}
}

func TestSameIncarnationIsAnUpdateNotARejoin(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 1))
	h.mustApply(register("n1", 7))
	h.mustApply(register("n1", 7))
	if c := h.last().Change; c.Joined != nil || c.Rejoined != nil {
		t.Fatalf("re-registration with the same incarnation: %+v", c)
	}
}

func TestHealthTransitions(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 2))
	h.mustApply(register("n1", 1))
	h.mustApply(register("n2", 1))
	h.rebalance(TriggerNodeJoin)
	if s := h.f.View().Health().Status; s != HealthHealthy {
		t.Fatalf("two nodes, RF 2: %s", s)
	}
	// RF 2 on two live members: any one of them may fail.
	tolerance := func(want int) {
		t.Helper()
		if hl := h.f.View().Health(); hl.NodeFailureTolerance() != want {
			t.Fatalf("node failure tolerance %d (min live owners %d), want %d", hl.NodeFailureTolerance(), hl.MinLiveOwners, want)
		}
	}
	tolerance(1)
	status := func(id string, st messages.NodeStatus) *messages.Command {
		return &messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{Id: id, Status: st}}}
	}
	h.mustApply(status("n2", messages.NodeStatus_NODE_STATUS_SUSPECT))
	evs := Events(h.last(), time.Now())
	if got := kinds(evs); !slices.Equal(got, []string{"ClusterHealthChange"}) {
		t.Fatalf("suspect events %v", got)
	}
	if hc := evs[0].GetClusterHealthChange(); hc.GetStatus() != HealthDegraded || !slices.Equal(hc.GetUnhealthyNodeIds(), []string{"n2"}) {
		t.Fatalf("degraded event %v", hc)
	}
	tolerance(0) // n1 holds every partition's last live copy
	h.mustApply(status("n1", messages.NodeStatus_NODE_STATUS_SUSPECT))
	if hc := Events(h.last(), time.Now())[0].GetClusterHealthChange(); hc.GetStatus() != HealthCritical || hc.GetUnownedPartitions() != 8 {
		t.Fatalf("critical event %v", hc)
	}
	if hl := h.f.View().Health(); hl.MinLiveOwners != 0 || hl.NodeFailureTolerance() != 0 {
		t.Fatalf("no live owner: %+v", hl)
	}
	h.mustApply(status("n1", messages.NodeStatus_NODE_STATUS_ACTIVE))
	h.mustApply(status("n2", messages.NodeStatus_NODE_STATUS_ACTIVE))
	if hc := Events(h.last(), time.Now())[0].GetClusterHealthChange(); hc.GetStatus() != HealthHealthy || hc.GetPreviousStatus() != HealthDegraded {
		t.Fatalf("recovery event %v", hc)
	}
	tolerance(1)
	// No transition, no event.
	h.mustApply(&messages.Command{Op: &messages.Command_Noop{Noop: &messages.Noop{}}})
	if evs := Events(h.last(), time.Now()); len(evs) != 0 {
		t.Fatalf("noop produced %v", kinds(evs))
	}
}

func TestCustomData(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 1))
	set := h.mustApply(&messages.Command{Op: &messages.Command_SetCustomData{SetCustomData: &messages.SetCustomData{Key: "b", Value: []byte("1")}}})
	if set.Version != set.Index {
		t.Fatalf("version %d, index %d", set.Version, set.Index)
	}
	if evs := Events(h.last(), time.Now()); len(evs) != 1 || evs[0].GetCustomDataChange().GetKey() != "b" || evs[0].GetCustomDataChange().GetVersion() != set.Index {
		t.Fatalf("custom data events %v", evs)
	}
	cas := func(key, val string, expected uint64) *ApplyResult {
		return h.apply(&messages.Command{Op: &messages.Command_CompareAndSetCustomData{CompareAndSetCustomData: &messages.CompareAndSetCustomData{Key: key, Value: []byte(val), ExpectedVersion: expected}}})
	}
	if res := cas("a", "x", 0); res.Err != nil {
		t.Fatalf("create-if-absent: %v", res.Err)
	}
	if res := cas("a", "y", 0); res.Err == nil {
		t.Fatal("create-if-absent over an existing key succeeded")
	}
	if res := cas("b", "2", set.Version); res.Err != nil {
		t.Fatalf("cas with the right version: %v", res.Err)
	}
	if v, _, _ := h.f.CustomData("b"); string(v) != "2" {
		t.Fatalf("b = %q", v)
	}
	if keys := h.f.CustomDataKeys(); !slices.Equal(keys, []string{"a", "b"}) {
		t.Fatalf("keys %v", keys)
	}
	h.mustApply(&messages.Command{Op: &messages.Command_DeleteCustomData{DeleteCustomData: &messages.DeleteCustomData{Key: "a"}}})
	if _, _, ok := h.f.CustomData("a"); ok {
		t.Fatal("deleted key still readable")
	}
	if !Events(h.last(), time.Now())[0].GetCustomDataChange().GetDeleted() {
		t.Fatal("delete event not flagged")
	}
}

func setVoter(id string, voter bool) *messages.Command {
	return &messages.Command{Op: &messages.Command_SetVoter{SetVoter: &messages.SetVoter{Id: id, Voter: voter, Reason: "test"}}}
}

func TestVotersAreEarnedAndCapped(t *testing.T) {
	h := newHarness(t, "n1")
	c := cfg(8, 1)
	c.GetSetConfig().GetConfig().MaxVoters = 3
	h.mustApply(c)
	for _, id := range []string{"n1", "n2", "n3", "n4", "n5"} {
		h.mustApply(register(id, 1))
	}
	voters := func() []string {
		var out []string
		for _, m := range h.f.View().Members() {
			if m.Voter {
				out = append(out, m.ID)
			}
		}
		return out
	}
	if got := voters(); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("voters %v: only the bootstrap node starts as a voter", got)
	}
	h.mustApply(setVoter("n2", true))
	if ch := h.last().Change.VoterChanged; ch == nil || ch.ID != "n2" || !ch.Voter || h.last().Change.VoterReason != "test" {
		t.Fatalf("promotion change %+v", h.last().Change)
	}
	h.mustApply(setVoter("n3", true))
	if res := h.apply(setVoter("n4", true)); !errors.Is(res.Err, ErrInvalidMember) {
		t.Fatalf("a fourth voter with MaxVoters 3: %v", res.Err)
	}
	if got := voters(); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("voters %v", got)
	}
	h.mustApply(remove("n2", LeaveGraceful))
	if got := voters(); !slices.Equal(got, []string{"n1", "n3"}) {
		t.Fatalf("voters after removing n2: %v (a removal promotes nobody: the leader promotes a healthy node)", got)
	}
	inc := func(id string) uint64 { m, _ := h.f.View().Member(id); return m.Incarnation }
	if res := h.apply(&messages.Command{Op: &messages.Command_SetVoter{SetVoter: &messages.SetVoter{Id: "n4", Voter: true, Incarnation: inc("n4") + 1}}}); !errors.Is(res.Err, ErrIncarnationMismatch) {
		t.Fatalf("promotion of another life: %v", res.Err)
	}
	h.mustApply(setVoter("n3", false))
	if res := h.apply(setVoter("n1", false)); !errors.Is(res.Err, ErrInvalidMember) {
		t.Fatalf("demoting the last voter: %v", res.Err)
	}
	if res := h.apply(setVoter("ghost", true)); !errors.Is(res.Err, ErrUnknownNode) {
		t.Fatalf("promoting a non-member: %v", res.Err)
	}
}

func registerLife(id string, nonce uint64, resumed bool, lastAlive int64) *messages.Command {
	return &messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{Member: &messages.Member{
		Id: id, Name: id, Address: "127.0.0.1:9" + fmt.Sprint(len(id)), Nonce: nonce, Incarnation: 777,
	}, Resumed: resumed, LastAliveUnixNano: lastAlive}}}
}

// Incarnations come from the log, not from the node: a node that lost its
// disk (and would count from 1 again) still gets a new, larger one.
func TestIncarnationIsTheAdmittingIndex(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 1))
	h.mustApply(registerLife("n1", 11, false, 0))
	reg := h.mustApply(registerLife("n2", 21, false, 0))
	m, _ := h.f.View().Member("n2")
	if m.Incarnation != reg.Index || m.Incarnation == 777 {
		t.Fatalf("incarnation %d, want the entry's index %d (not the proposed 777)", m.Incarnation, reg.Index)
	}
	if n, _ := h.f.View().Nonce("n2"); n != 21 {
		t.Fatalf("nonce %d", n)
	}
	// Same nonce: an update of the same life.
	h.mustApply(registerLife("n2", 21, false, 0))
	if m2, _ := h.f.View().Member("n2"); m2.Incarnation != reg.Index || h.last().Change.Rejoined != nil {
		t.Fatalf("re-registration changed the life: %d, %+v", m2.Incarnation, h.last().Change)
	}
	// Promote, then a new process that lost its disk: a rejoin, a new
	// incarnation, and no vote.
	h.mustApply(setVoter("n2", true))
	wiped := h.mustApply(registerLife("n2", 22, false, 0))
	m3, _ := h.f.View().Member("n2")
	if m3.Incarnation != wiped.Index || m3.Voter || h.last().Change.Rejoined == nil {
		t.Fatalf("wiped restart: incarnation %d (want %d), voter %v, change %+v", m3.Incarnation, wiped.Index, m3.Voter, h.last().Change)
	}
	// A voter that resumed from its own state keeps its vote.
	h.mustApply(setVoter("n2", true))
	h.mustApply(registerLife("n2", 23, true, 0))
	if m4, _ := h.f.View().Member("n2"); !m4.Voter {
		t.Fatal("a voter restarted on its own disk lost its vote")
	}
	// Removed, then back as a new life: a rejoin with a larger incarnation,
	// never refused, and no vote even though it resumed.
	rm := h.mustApply(remove("n2", LeaveHealthFailure))
	d, ok := h.f.View().Departed("n2")
	if !ok || d.Index != rm.Index || d.Nonce != 23 {
		t.Fatalf("departure %+v", d)
	}
	back := h.mustApply(registerLife("n2", 24, true, 0))
	m5, _ := h.f.View().Member("n2")
	if m5.Incarnation != back.Index || m5.Voter || h.last().Change.Rejoined == nil {
		t.Fatalf("after removal: %+v change %+v", m5, h.last().Change)
	}
}

// The suspicion records when the node was last reached, so a later leader
// computes the real OfflineDuration.
func TestSuspicionRecordsLastSeen(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 1))
	h.mustApply(registerLife("n1", 1, false, 0))
	h.mustApply(registerLife("n2", 2, false, 0))
	m, _ := h.f.View().Member("n2")
	joined := m.LastSeen
	seen := joined.Add(30 * time.Second)
	h.clock = joined.Add(40 * time.Second).UnixNano() // the next entry is at +41 s
	h.mustApply(&messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{
		Id: "n2", Status: messages.NodeStatus_NODE_STATUS_SUSPECT, LastSeenUnixNano: seen.UnixNano(),
	}}})
	if m, _ := h.f.View().Member("n2"); !m.LastSeen.Equal(seen) {
		t.Fatalf("last seen %v, want %v", m.LastSeen, seen)
	}
	h.clock = seen.Add(59 * time.Second).UnixNano() // the restart registers at seen + 60 s
	h.mustApply(registerLife("n2", 3, false, 0))
	if got := h.last().Change.OfflineDuration; got != time.Minute {
		t.Fatalf("offline %v, want 1m0s", got)
	}

	// Removed by failure detection after its suspicion: the rejoin counts
	// from the committed last sighting, not from the removal.
	seen = time.Unix(0, h.clock).Add(10 * time.Second)
	h.clock = seen.Add(5 * time.Second).UnixNano()
	h.mustApply(&messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{
		Id: "n2", Status: messages.NodeStatus_NODE_STATUS_SUSPECT, LastSeenUnixNano: seen.UnixNano(),
	}}})
	h.mustApply(remove("n2", LeaveHealthFailure)) // at seen + 7 s
	h.clock = seen.Add(29 * time.Second).UnixNano()
	h.mustApply(registerLife("n2", 4, false, 0)) // a wiped node: no record of its own
	if got := h.last().Change.OfflineDuration; got != 30*time.Second {
		t.Fatalf("offline after a removal %v, want 30s (from the last sighting, not from the removal)", got)
	}
}

// TestDepartedListBounded: the departed list keeps the MaxDeparted most
// recent removals (a member that comes and goes with a new ID each time
// must not grow the state), a node removed within that bound still rejoins,
// and one removed before it joins as new.
func TestDepartedListBounded(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(16, 2))
	h.mustApply(register("n1", 1))
	h.mustApply(register("old", 1))
	h.mustApply(remove("old", LeaveGraceful))
	const n = MaxDeparted + 40
	for i := range n {
		id := fmt.Sprintf("gone-%03d", i)
		h.mustApply(register(id, 1))
		h.mustApply(remove(id, LeaveGraceful))
		if got := len(h.f.View().Departures()); got > MaxDeparted {
			t.Fatalf("after %d removals the departed list holds %d (bound %d)", i+2, got, MaxDeparted)
		}
	}
	v := h.f.View()
	if got := len(v.Departures()); got != MaxDeparted {
		t.Fatalf("departed list holds %d, want %d", got, MaxDeparted)
	}
	if _, ok := v.Departed("old"); ok {
		t.Fatal("the oldest departure is still kept past the bound")
	}
	for _, i := range []int{n - MaxDeparted, n - 1} { // the oldest kept, the newest
		if _, ok := v.Departed(fmt.Sprintf("gone-%03d", i)); !ok {
			t.Fatalf("gone-%03d, within the bound, is not in the departed list", i)
		}
	}
	back := fmt.Sprintf("gone-%03d", n-MaxDeparted)
	h.mustApply(register(back, 2))
	if h.last().Change.Rejoined == nil {
		t.Fatal("a node removed within the bound came back without a rejoin")
	}
	if _, ok := h.f.View().Departed(back); ok {
		t.Fatalf("%s is a member again and still in the departed list", back)
	}
	h.mustApply(register("old", 2))
	if h.last().Change.Rejoined != nil {
		t.Fatal("a node removed beyond the bound came back as a rejoin")
	}
}
