package raftfsm

import (
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// This file holds the operator's placement controls: drain and maintenance
// mode. Both only change committed flags; the leader's rebalancer turns them
// into hand-offs (or, paused, into none).

// Rebalance triggers of the operator's controls.
const (
	TriggerNodeDrain   = "node_drain"
	TriggerNodeUndrain = "node_undrain"
	TriggerResume      = "rebalance_resume"
	TriggerPause       = "rebalance_pause"
)

// weightOf is a member's placement weight: unset (a member registered by a
// version without weights) counts as 1.
func weightOf(m *messages.Member) uint32 {
	if m.Weight == nil {
		return 1
	}
	return m.GetWeight()
}

// holds reports whether member m takes slots in placement.
func holds(m *messages.Member) bool {
	return !m.GetDrained() && weightOf(m) > 0
}

// applySetDrain sets or clears a member's operator drain. Draining the last
// member that holds data is refused: the partitions would have no owner.
func (f *FSM) applySetDrain(d *messages.SetDrain, a *Applied) (bool, error) {
	cur, ok := f.members[d.GetId()]
	if !ok {
		return false, errorf(ErrUnknownNode, "%q", d.GetId())
	}
	if cur.GetDrained() == d.GetDrain() {
		return false, nil
	}
	if d.GetDrain() {
		left := 0
		for id, m := range f.members {
			if id != d.GetId() && holds(m) {
				left++
			}
		}
		if left == 0 {
			return false, errorf(ErrNoHolder, "draining %q would leave no member with weight above 0 that is not drained", d.GetId())
		}
	}
	next := proto.Clone(cur).(*messages.Member)
	next.Drained = d.GetDrain()
	f.members[d.GetId()] = next
	a.Change.DrainSet = &DrainChange{Node: d.GetId(), Drain: d.GetDrain()}
	return true, nil
}

// applySetPaused enters or leaves maintenance mode.
func (f *FSM) applySetPaused(paused bool, a *Applied) (bool, error) {
	if f.paused == paused {
		return false, nil
	}
	f.paused = paused
	a.Change.PauseSet = &paused
	return true, nil
}
