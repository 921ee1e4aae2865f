package raftfsm

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

func setDrain(id string, on bool) *messages.Command {
	return &messages.Command{Op: &messages.Command_SetDrain{SetDrain: &messages.SetDrain{Id: id, Drain: on}}}
}

func setPaused(on bool) *messages.Command {
	return &messages.Command{Op: &messages.Command_SetRebalancePaused{SetRebalancePaused: &messages.SetRebalancePaused{Paused: on}}}
}

// TestSetDrain: an operator's drain is a committed member flag; bad input
// (an unknown node, the last holder) is refused and changes nothing; a
// restart of the member keeps it, a removal ends it.
func TestSetDrain(t *testing.T) {
	h := newHarness(t, "a")
	h.mustApply(cfg(8, 2))
	h.mustApply(register("a", 0))
	h.mustApply(register("b", 0))
	if res := h.apply(setDrain("x", true)); !errors.Is(res.Err, ErrUnknownNode) {
		t.Fatalf("drain of an unknown node: %v", res.Err)
	}
	h.mustApply(setDrain("b", true))
	if c := h.last().Change.DrainSet; c == nil || c.Node != "b" || !c.Drain {
		t.Fatalf("DrainSet %+v", c)
	}
	if m, _ := h.f.View().Member("b"); !m.Drained || m.Holds() {
		t.Fatalf("b after the drain: %+v", m)
	}
	version := h.f.View().Version()
	if res := h.apply(setDrain("a", true)); !errors.Is(res.Err, ErrNoHolder) || Code(res.Err) != "no_holder" {
		t.Fatalf("drain of the last holder: %v", res.Err)
	}
	if v := h.f.View(); v.Version() != version {
		t.Fatal("the refused drain changed the state")
	}
	h.mustApply(setDrain("b", true)) // again: no change
	if h.last().Change.DrainSet != nil {
		t.Fatal("a repeated drain reported a change")
	}
	// A new process of b without a removal (a restart) stays drained.
	restart := register("b", 0)
	restart.GetRegisterNode().Member.Nonce = 42
	restart.GetRegisterNode().Member.Drained = false
	h.mustApply(restart)
	if m, _ := h.f.View().Member("b"); !m.Drained {
		t.Fatal("a restart undrained b")
	}
	h.mustApply(remove("b", LeaveGraceful))
	back := register("b", 0)
	back.GetRegisterNode().Member.Drained = true // a registration cannot drain itself
	h.mustApply(back)
	if m, _ := h.f.View().Member("b"); m.Drained {
		t.Fatal("b is drained in a new life after a removal")
	}
}

// TestZoneAndWeightCommitted: zone and weight travel with the member; an
// unset weight (older versions) reads as 1; bad values are refused.
func TestZoneAndWeightCommitted(t *testing.T) {
	h := newHarness(t, "a")
	h.mustApply(cfg(8, 2))
	a := register("a", 0)
	a.GetRegisterNode().Member.Zone = "eu-1a"
	a.GetRegisterNode().Member.Weight = proto.Uint32(0)
	h.mustApply(a)
	h.mustApply(register("b", 0))
	v := h.f.View()
	if m, _ := v.Member("a"); m.Zone != "eu-1a" || m.Weight != 0 || m.Holds() {
		t.Fatalf("a: %+v", m)
	}
	if m, _ := v.Member("b"); m.Zone != "" || m.Weight != 1 || !m.Holds() {
		t.Fatalf("b: %+v", m)
	}
	for _, bad := range []*messages.Member{
		{Id: "c", Address: "127.0.0.1:9", Zone: string(make([]byte, MaxZoneLen+1))},
		{Id: "c", Address: "127.0.0.1:9", Weight: proto.Uint32(MaxWeight + 1)},
	} {
		if err := ValidateMember(bad); !errors.Is(err, ErrInvalidMember) {
			t.Fatalf("ValidateMember(%v) = %v", bad, err)
		}
	}
}

// TestRebalancePausedSurvivesASnapshot: maintenance mode is part of the
// state, so a node restored from a snapshot is still paused.
func TestRebalancePausedSurvivesASnapshot(t *testing.T) {
	h := newHarness(t, "a")
	h.mustApply(cfg(8, 2))
	h.mustApply(register("a", 0))
	h.mustApply(setPaused(true))
	if p := h.last().Change.PauseSet; p == nil || !*p || !h.f.View().RebalancePaused() {
		t.Fatalf("after pausing: change %v, view %v", p, h.f.View().RebalancePaused())
	}
	h.mustApply(setPaused(true))
	if h.last().Change.PauseSet != nil {
		t.Fatal("pausing twice reported a change")
	}
	snap, err := h.f.EncodeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	g := New("a", nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if !g.View().RebalancePaused() {
		t.Fatal("restored FSM is not paused")
	}
	h.mustApply(setPaused(false))
	if h.f.View().RebalancePaused() {
		t.Fatal("still paused after resume")
	}
}
