package raftfsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/placement"
	"github.com/clusterkit/clusterkit/messages"
)

// harness drives an FSM directly, without raft, and records what it emits.
type harness struct {
	t       *testing.T
	f       *FSM
	index   uint64
	applied []*Applied
	clock   int64
}

func newHarness(t *testing.T, localID string) *harness {
	h := &harness{t: t, f: New(localID, nil), clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
	h.f.SetNotifier(func(a *Applied) { h.applied = append(h.applied, a) })
	return h
}

// apply appends cmd to the "log" and applies it; time advances one second per entry.
func (h *harness) apply(cmd *messages.Command) *ApplyResult {
	h.t.Helper()
	h.index++
	h.clock += int64(time.Second)
	if cmd.TimeUnixNano == 0 {
		cmd.TimeUnixNano = h.clock
	}
	data, err := Encode(cmd)
	if err != nil {
		h.t.Fatalf("encode: %v", err)
	}
	res, _ := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}).(*ApplyResult)
	if res == nil {
		h.t.Fatalf("Apply returned no result")
	}
	return res
}

func (h *harness) mustApply(cmd *messages.Command) *ApplyResult {
	h.t.Helper()
	res := h.apply(cmd)
	if res.Err != nil {
		h.t.Fatalf("apply %v: %v", typeOf(cmd), res.Err)
	}
	return res
}

func (h *harness) last() *Applied { return h.applied[len(h.applied)-1] }

func cfg(p, rf uint32) *messages.Command {
	return &messages.Command{Op: &messages.Command_SetConfig{SetConfig: &messages.SetConfig{Config: &messages.ClusterConfig{
		ClusterName: "test", PartitionCount: p, ReplicationFactor: rf, MaxVoters: 5,
	}}}}
}

func register(id string, inc uint64) *messages.Command {
	return &messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{Member: &messages.Member{
		Id: id, Name: id, Address: "127.0.0.1:" + fmt.Sprint(8000+len(id)), Incarnation: inc, Services: map[string]string{"kv": ":9080"},
	}}}}
}

func remove(id, reason string) *messages.Command {
	return &messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{Id: id, Reason: reason}}}
}

func tableCmd(expected uint64, owners [][]string, trigger string, reload ...string) *messages.Command {
	parts := make([]*messages.PartitionAssignment, len(owners))
	for i, o := range owners {
		parts[i] = &messages.PartitionAssignment{Owners: o}
	}
	return &messages.Command{Op: &messages.Command_SetPartitionTable{SetPartitionTable: &messages.SetPartitionTable{
		ExpectedVersion: expected, Partitions: parts, Rebalance: &messages.RebalanceInfo{Trigger: trigger, TriggerNodeId: "x", Reload: reload, Plan: true},
	}}}
}

// rebalance proposes what the leader's rebalancer would.
func (h *harness) rebalance(trigger string, reload ...string) *ApplyResult {
	h.t.Helper()
	v := h.f.View()
	var ids []string
	for _, m := range v.Members() {
		ids = append(ids, m.ID)
	}
	var prev [][]string
	if v.HasTable() {
		prev = v.OwnerTable()
	}
	next := placement.Assign(prev, ids, int(v.Config().GetPartitionCount()), int(v.Config().GetReplicationFactor()))
	return h.mustApply(tableCmd(v.TableVersion(), next, trigger, reload...))
}

func snapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	b, err := f.EncodeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCodecRoundTripAndFlags(t *testing.T) {
	cmds := []*messages.Command{
		cfg(8, 3), register("n1", 1), remove("n1", LeaveAdmin), tableCmd(0, [][]string{{"a"}}, TriggerManual),
		{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{Id: "a", Status: messages.NodeStatus_NODE_STATUS_SUSPECT}}},
		{Op: &messages.Command_SetCustomData{SetCustomData: &messages.SetCustomData{Key: "k", Value: []byte("v")}}},
		{Op: &messages.Command_DeleteCustomData{DeleteCustomData: &messages.DeleteCustomData{Key: "k"}}},
		{Op: &messages.Command_CompareAndSetCustomData{CompareAndSetCustomData: &messages.CompareAndSetCustomData{Key: "k", ExpectedVersion: 3}}},
		{Op: &messages.Command_Noop{Noop: &messages.Noop{}}},
	}
	for _, c := range cmds {
		data, err := Encode(c)
		if err != nil {
			t.Fatalf("encode %v: %v", typeOf(c), err)
		}
		if cmdType(data[0]&^ignoreIfUnknown) != typeOf(c) {
			t.Errorf("type byte %d for %v", data[0], typeOf(c))
		}
		if got := data[0]&ignoreIfUnknown != 0; got != skippable[typeOf(c)] {
			t.Errorf("%v: ignore bit %v, want %v", typeOf(c), got, skippable[typeOf(c)])
		}
		back, skip, err := decode(data)
		if err != nil || skip || !proto.Equal(back, c) {
			t.Errorf("decode %v: %v skip=%v equal=%v", typeOf(c), err, skip, proto.Equal(back, c))
		}
	}
	if _, err := Encode(&messages.Command{}); !errors.Is(err, errMalformedCommand) {
		t.Errorf("encode empty: %v", err)
	}
	if _, skip, err := decode([]byte{99 | ignoreIfUnknown, 1, 2}); !skip || err != nil {
		t.Errorf("unknown skippable: skip=%v err=%v", skip, err)
	}
	if _, _, err := decode([]byte{99}); !errors.Is(err, errUnknownCommand) {
		t.Errorf("unknown mandatory: %v", err)
	}
	for _, bad := range [][]byte{nil, {byte(typeNoop), 0xff, 0xff}} {
		if _, _, err := decode(bad); !errors.Is(err, errMalformedCommand) {
			t.Errorf("Decode(%x) = %v, want ErrMalformedCommand", bad, err)
		}
	}
	// A payload that disagrees with its type byte is malformed.
	data, _ := Encode(register("n1", 1))
	data[0] = byte(typeRemoveNode)
	if _, _, err := decode(data); !errors.Is(err, errMalformedCommand) {
		t.Errorf("mismatched type byte: %v", err)
	}
}

func TestBootstrapSingleNode(t *testing.T) {
	h := newHarness(t, "n1")
	if h.f.View().HasTable() || h.f.View().Config() != nil {
		t.Fatal("new FSM has state")
	}
	h.mustApply(cfg(16, 3))
	h.mustApply(register("n1", 1))
	if c := h.last().Change; c.Joined == nil || !c.IsBootstrap {
		t.Fatalf("first registration: %+v", c)
	}
	old := h.f.View()
	res := h.rebalance(TriggerNodeJoin)
	v := h.f.View()
	select {
	case <-old.Done():
	default:
		t.Fatal("old view not marked done after a new one was published")
	}
	if v.TableVersion() != res.Index || v.Version() != res.Index {
		t.Fatalf("table version %d, view version %d, entry index %d", v.TableVersion(), v.Version(), res.Index)
	}
	if v.PartitionCount() != 16 {
		t.Fatalf("%d partitions", v.PartitionCount())
	}
	for n := range 16 {
		// Fewer nodes than RF: every partition on all (one) nodes, never refused.
		if o := v.Owners(n); !slices.Equal(o, []string{"n1"}) || v.Partition(n).Epoch != 1 || v.Role(n) != RolePrimary {
			t.Fatalf("partition %d: owners %v epoch %d role %v", n, o, v.Partition(n).Epoch, v.Role(n))
		}
		if p := v.Primary(n); p == nil || p.ID != "n1" || len(v.Replicas(n)) != 0 || len(v.Nodes(n)) != 1 {
			t.Fatalf("partition %d nodes wrong", n)
		}
	}
	if got := v.PartitionOf("user:123"); got == nil || got.ID != "partition-"+fmt.Sprint(got.Number()) {
		t.Fatalf("PartitionOf = %v", got)
	}
	if h := v.Health(); h.Status != HealthDegraded || h.UnderReplicated != 16 || h.HealthyNodes != 1 {
		t.Fatalf("health %+v", h)
	}
}

// TestRejectedCommandsChangeNothing checks that every kind of bad command is
// refused with the right error and leaves the state byte-for-byte unchanged.
func TestRejectedCommandsChangeNothing(t *testing.T) {
	h := newHarness(t, "n1")
	if res := h.apply(register("n1", 1)); !errors.Is(res.Err, errNotBootstrapped) {
		t.Fatalf("register before config: %v", res.Err)
	}
	h.mustApply(cfg(8, 2))
	h.mustApply(register("n1", 1))
	h.mustApply(register("n2", 1))
	h.rebalance(TriggerNodeJoin)
	v := h.f.View()
	good := v.OwnerTable()
	before := snapshotBytes(t, h.f)
	withLast := func(b []byte) []byte { return b } // last_index changes; compare the rest below

	bad := []struct {
		name string
		cmd  *messages.Command
		want error
	}{
		{"config change", cfg(16, 2), ErrConfigMismatch},
		{"invalid config", cfg(0, 2), errInvalidConfig},
		{"bad node id", register("bad id!", 1), ErrInvalidMember},
		{"empty node id", register("", 1), ErrInvalidMember},
		{"bad address", &messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{Member: &messages.Member{Id: "n9", Address: "nohostport"}}}}, ErrInvalidMember},
		{"remove unknown", remove("n9", LeaveAdmin), ErrUnknownNode},
		{"status unknown", &messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{Id: "n9", Status: messages.NodeStatus_NODE_STATUS_SUSPECT}}}, ErrUnknownNode},
		{"status wrong incarnation", &messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{Id: "n1", Status: messages.NodeStatus_NODE_STATUS_SUSPECT, Incarnation: 7}}}, ErrIncarnationMismatch},
		{"stale table", tableCmd(1, good, TriggerManual), ErrStaleTable},
		{"short table", tableCmd(v.TableVersion(), good[:7], TriggerManual), errInvalidTable},
		{"duplicate owner", tableCmd(v.TableVersion(), replaceRow(good, 0, []string{"n1", "n1"}), TriggerManual), errInvalidTable},
		{"non-member owner", tableCmd(v.TableVersion(), replaceRow(good, 3, []string{"n1", "zz"}), TriggerManual), errInvalidTable},
		{"no owner", tableCmd(v.TableVersion(), replaceRow(good, 5, []string{}), TriggerManual), errInvalidTable},
		{"too many owners", tableCmd(v.TableVersion(), replaceRow(good, 5, []string{"n1", "n2", "n3", "n4", "n5"}), TriggerManual), errInvalidTable},
		{"empty key", &messages.Command{Op: &messages.Command_SetCustomData{SetCustomData: &messages.SetCustomData{Key: ""}}}, ErrInvalidKey},
		{"huge value", &messages.Command{Op: &messages.Command_SetCustomData{SetCustomData: &messages.SetCustomData{Key: "k", Value: make([]byte, MaxCustomDataValue+1)}}}, ErrValueTooLarge},
		{"delete missing", &messages.Command{Op: &messages.Command_DeleteCustomData{DeleteCustomData: &messages.DeleteCustomData{Key: "nope"}}}, ErrKeyNotFound},
		{"cas wrong version", &messages.Command{Op: &messages.Command_CompareAndSetCustomData{CompareAndSetCustomData: &messages.CompareAndSetCustomData{Key: "k", ExpectedVersion: 5}}}, ErrVersionMismatch},
	}
	for _, b := range bad {
		viewBefore := h.f.View()
		res := h.apply(b.cmd)
		if !errors.Is(res.Err, b.want) {
			t.Errorf("%s: got %v, want %v", b.name, res.Err, b.want)
		}
		if h.f.View() != viewBefore {
			t.Errorf("%s: a new view was published", b.name)
		}
		if a := h.last(); a.Err == nil || len(Events(a, time.Now())) != 0 {
			t.Errorf("%s: applied record has no error or yields events", b.name)
		}
	}
	after := snapshotBytes(t, h.f)
	// Only last_index may differ: compare the decoded states without it.
	if !equalIgnoringLastIndex(t, withLast(before), after) {
		t.Fatal("rejected commands changed the state")
	}
}

func replaceRow(t [][]string, n int, row []string) [][]string {
	out := slices.Clone(t)
	out[n] = row
	return out
}

func decodeState(t *testing.T, b []byte) *messages.ClusterState {
	t.Helper()
	st := &messages.ClusterState{}
	if err := proto.Unmarshal(b[len(snapshotMagic):], st); err != nil {
		t.Fatal(err)
	}
	return st
}

func equalIgnoringLastIndex(t *testing.T, a, b []byte) bool {
	sa, sb := decodeState(t, a), decodeState(t, b)
	sa.LastIndex, sb.LastIndex = 0, 0
	return proto.Equal(sa, sb)
}

func TestUnknownMandatoryCommandStopsTheFSM(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 1))
	h.index++
	res := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: []byte{100, 1, 2, 3}}).(*ApplyResult)
	if !errors.Is(res.Err, errUnknownCommand) || !errors.Is(h.f.Err(), errUnknownCommand) {
		t.Fatalf("unknown command: result %v, Err %v", res.Err, h.f.Err())
	}
	// Later entries are refused rather than applied on a diverged state.
	if res := h.apply(register("n1", 1)); res.Err == nil {
		t.Fatal("FSM applied an entry after an unknown mandatory one")
	}
	// An unknown but skippable entry is fine on a healthy FSM.
	h2 := newHarness(t, "n1")
	h2.mustApply(cfg(8, 1))
	h2.index++
	if res := h2.f.Apply(&raft.Log{Index: h2.index, Type: raft.LogCommand, Data: []byte{100 | ignoreIfUnknown}}).(*ApplyResult); res.Err != nil || h2.f.Err() != nil {
		t.Fatalf("skippable unknown: %v / %v", res.Err, h2.f.Err())
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(32, 3))
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		h.mustApply(register(id, 1))
	}
	h.rebalance(TriggerNodeJoin)
	h.mustApply(&messages.Command{Op: &messages.Command_SetCustomData{SetCustomData: &messages.SetCustomData{Key: "flag", Value: []byte("on")}}})
	h.mustApply(remove("n4", LeaveGraceful))
	h.rebalance(TriggerNodeLeave)
	h.mustApply(&messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{Id: "n2", Status: messages.NodeStatus_NODE_STATUS_SUSPECT}}})

	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v closed=%v", err, sink.closed)
	}
	r := newHarness(t, "n1")
	if err := r.f.Restore(io.NopCloser(bytes.NewReader(sink.buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, r.f)) {
		t.Fatal("restored state differs from the original")
	}
	a, b := h.f.View(), r.f.View()
	if a.Checksum() != b.Checksum() || a.Version() != b.Version() || a.TableVersion() != b.TableVersion() || !a.Health().Equal(b.Health()) {
		t.Fatalf("restored view differs: checksum %x/%x version %d/%d", a.Checksum(), b.Checksum(), a.Version(), b.Version())
	}
	if v, ver, ok := r.f.CustomData("flag"); !ok || string(v) != "on" || ver == 0 {
		t.Fatalf("custom data after restore: %q %d %v", v, ver, ok)
	}
	if last := r.last(); !last.Restored || last.Next != r.f.View() {
		t.Fatal("restore did not notify")
	}
	// The departed node is remembered: registering it again is a rejoin.
	r.index = h.index
	r.clock = h.clock
	r.mustApply(register("n4", 2))
	if r.last().Change.Rejoined == nil {
		t.Fatal("departed node not recognised after restore")
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	h := newHarness(t, "n1")
	h.mustApply(cfg(8, 1))
	before := snapshotBytes(t, h.f)
	good, _ := h.f.EncodeSnapshot()
	for name, data := range map[string][]byte{
		"empty":     nil,
		"no magic":  []byte("hello world"),
		"truncated": good[:len(good)-3],
		"bad proto": append(slices.Clone(snapshotMagic), 0xff, 0xff, 0xff),
	} {
		if err := h.f.Restore(io.NopCloser(bytes.NewReader(data))); !errors.Is(err, errBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
	}
	if !bytes.Equal(before, snapshotBytes(t, h.f)) {
		t.Fatal("a rejected snapshot changed the state")
	}
}

type memSink struct {
	buf    bytes.Buffer
	closed bool
}

func (s *memSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *memSink) Close() error                { s.closed = true; return nil }
func (s *memSink) ID() string                  { return "mem" }
func (s *memSink) Cancel() error               { return nil }

// TestDeterminism applies the same log to two FSMs (on different nodes) and
// checks they end in the same state and derive the same events.
func TestDeterminism(t *testing.T) {
	a, b := newHarness(t, "n1"), newHarness(t, "n2")
	var log []*messages.Command
	log = append(log, cfg(64, 3))
	for i := 1; i <= 5; i++ {
		log = append(log, register(fmt.Sprintf("n%d", i), 1))
	}
	for _, c := range log {
		a.mustApply(proto.Clone(c).(*messages.Command))
		b.mustApply(proto.Clone(c).(*messages.Command))
	}
	tc := func(h *harness) *messages.Command {
		v := h.f.View()
		ids := []string{"n1", "n2", "n3", "n4", "n5"}
		return tableCmd(v.TableVersion(), placement.Assign(nil, ids, 64, 3), TriggerNodeJoin)
	}
	a.mustApply(tc(a))
	b.mustApply(tc(b))
	for _, c := range []*messages.Command{remove("n3", LeaveHealthFailure), register("n3", 2), register("n1", 2)} {
		a.mustApply(proto.Clone(c).(*messages.Command))
		b.mustApply(proto.Clone(c).(*messages.Command))
	}
	if !bytes.Equal(snapshotBytes(t, a.f), snapshotBytes(t, b.f)) {
		t.Fatal("same log, different states")
	}
	if a.f.View().Checksum() != b.f.View().Checksum() {
		t.Fatal("same log, different table checksums")
	}
	now := time.Now()
	if len(a.applied) != len(b.applied) {
		t.Fatalf("%d vs %d applied records", len(a.applied), len(b.applied))
	}
	for i := range a.applied {
		ea, eb := Events(a.applied[i], now), Events(b.applied[i], now)
		if len(ea) != len(eb) {
			t.Fatalf("entry %d: %d vs %d events", i, len(ea), len(eb))
		}
		for j := range ea {
			if !proto.Equal(ea[j], eb[j]) {
				t.Fatalf("entry %d event %d differs:\n%v\n%v", i, j, ea[j], eb[j])
			}
		}
	}
}
