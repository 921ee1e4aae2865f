package raftfsm

import (
	"testing"

	"github.com/clusterkit/clusterkit/messages"
)

// A planned stop's primary flip that settles the last partition with a
// target ends the hand-off span in that entry (before, only table, removal
// and MarkReady entries closed it, so RebalanceComplete waited for an
// unrelated plan).
func TestDrainThatSettlesClosesTheSpan(t *testing.T) {
	h := newHarness(t, "a")
	h.mustApply(cfg(1, 2))
	h.mustApply(register("a", 0))
	h.mustApply(tableCmd(0, [][]string{{"a"}}, TriggerNodeJoin))
	h.mustApply(register("c", 0))
	// a leads; c is loading, and the target makes c the primary.
	cmd := tableCmd(h.f.View().TableVersion(), [][]string{{"a", "c"}}, TriggerNodeJoin)
	p := cmd.GetSetPartitionTable().GetPartitions()[0]
	p.Syncing, p.Target = []uint64{0, 1}, []string{"c", "a"}
	h.mustApply(cmd)
	v := h.f.View()
	if v.Span() == nil || v.Settled() {
		t.Fatalf("after the plan: span %v, settled %v; want an open span", v.Span(), v.Settled())
	}
	epoch := v.Assignment(0).GetSyncing()[1]
	h.mustApply(&messages.Command{Op: &messages.Command_MarkReady{MarkReady: &messages.MarkReady{Id: "c",
		Partitions: []*messages.ReadyPartition{{Partition: 0, Epoch: epoch}}}}})
	if h.f.View().Span() == nil {
		t.Fatal("the span closed before the primary moved to the target's")
	}
	h.mustApply(&messages.Command{Op: &messages.Command_DrainNode{DrainNode: &messages.DrainNode{Id: "a"}}})
	v = h.f.View()
	if got := v.Owners(0); len(got) != 2 || got[0] != "c" {
		t.Fatalf("owners after the drain %v, want c first", got)
	}
	if !v.Settled() || v.Span() != nil || h.last().Change.SpanClosed == nil {
		t.Fatalf("after the drain settled the partition: settled %v, span %v, closed in the entry %v", v.Settled(), v.Span(), h.last().Change.SpanClosed)
	}
}
