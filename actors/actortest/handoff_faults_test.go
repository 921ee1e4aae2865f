package actortest_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/handoff"
	"github.com/clusterkit/clusterkit/internal/handoffcheck"
	"github.com/clusterkit/clusterkit/internal/testhook"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// The fault suite runs with hand-off on: every node's subscriber
// acknowledges its loads after a short random copy time, and every node's
// state machine is observed on every entry it applies, so that the
// hand-off invariants of internal/handoffcheck hold on every committed step
// of every node of every scenario, not only on samples.

// suiteMovesPerNode is the fault suite's MaxMovesPerNode: small, so that
// the throttle binds during the scenarios' joins, leaves and failures.
const suiteMovesPerNode = 2

// suiteInFlightFraction is its MaxMovesInFlightFraction (of 64 partitions:
// at most 7 copies in flight).
const suiteInFlightFraction = 0.1

// handoffWatch checks every applied entry of every node.
type handoffWatch struct {
	mu         sync.Mutex
	limits     handoff.Limits
	rng        *rand.Rand // copy times
	entries    int        // entries checked
	tables     int        // partition-table entries among them
	restored   int        // snapshots installed (a jump over many entries: not a step)
	violations []string
	seen       map[string]bool       // one report per (entry, violation)
	last       map[int]*raftfsm.View // each node's latest view
}

func newHandoffWatch(partitions int, seed int64) *handoffWatch {
	return &handoffWatch{rng: rand.New(rand.NewPCG(uint64(seed), 11)),
		limits: handoff.Limits{MaxMovesPerNode: suiteMovesPerNode,
			MaxMovesInFlight: handoff.InFlightLimit(0, suiteInFlightFraction, partitions)},
		seen: map[string]bool{}, last: map[int]*raftfsm.View{},
	}
}

// configure turns hand-off on for node i and observes its state machine.
func (h *handoffWatch) configure(i int, o *clusterkit.Options) {
	o.Handoff = true
	o.MaxMovesPerNode = suiteMovesPerNode
	o.MaxMovesInFlightFraction = suiteInFlightFraction
	testhook.ObserveApplied(o, func(a *raftfsm.Applied) { h.observe(i, a) })
}

func (h *handoffWatch) observe(i int, a *raftfsm.Applied) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last[i] = a.Next
	if a.Err != nil {
		return
	}
	if a.Restored {
		h.restored++
		return
	}
	h.entries++
	e := handoffcheck.Entry{Limits: h.limits}
	if r := a.Change.Rebalance; r != nil {
		h.tables++
		e.Planner, e.Reload = true, r.GetReload()
	}
	for _, v := range handoffcheck.Step(a.Prev, a.Next, e) {
		key := fmt.Sprintf("entry %d: %s", a.Index, v)
		if !h.seen[key] {
			h.seen[key] = true
			h.violations = append(h.violations, fmt.Sprintf("node-%d %s", i+1, key))
		}
	}
}

// unsettled describes the partitions still handing off on the given nodes.
func (h *handoffWatch) unsettled(live []int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, i := range live {
		if h.last[i] == nil {
			out = append(out, fmt.Sprintf("node-%d: no entry observed", i+1))
			continue
		}
		for _, u := range handoffcheck.Unsettled(h.last[i]) {
			out = append(out, fmt.Sprintf("node-%d: %s", i+1, u))
		}
	}
	return out
}

// setup subscribes the application's side of hand-off on node i, from its
// first event on: the node named in a load event copies (a random 0–40 ms)
// and then acknowledges to the event's sender. A reply for a load that a
// later change replaced is ignored by the state machine, as it must be.
func (h *handoffWatch) setup(i int, ck *clusterkit.ClusterKit) {
	self := ck.GetMyNodeID()
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		pc, ok := ctx.Message().(*messages.PartitionChange)
		if !ok || pc.GetAction() != raftfsm.ActionLoad || pc.GetCopyToNode().GetId() != self || ctx.Sender() == nil {
			return
		}
		h.mu.Lock()
		d := time.Duration(h.rng.IntN(40)) * time.Millisecond
		h.mu.Unlock()
		to, root := ctx.Sender(), ctx.ActorSystem().Root
		msg := &messages.PartitionReady{PartitionId: pc.GetPartitionId(), Epoch: pc.GetEpoch()}
		time.AfterFunc(d, func() { root.Send(to, msg) })
	}))
	if err := ck.Subscribe(pid); err != nil {
		panic(fmt.Sprintf("node-%d: subscribe the hand-off acknowledger: %v", i+1, err))
	}
}

// summary: the counts for the scenario's log line.
func (h *handoffWatch) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("%d entries checked (%d tables, %d snapshots skipped), %d hand-off violations", h.entries, h.tables, h.restored, len(h.violations))
}

func (h *handoffWatch) problems() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.violations)
}

func delayName(d time.Duration) string {
	if d < 0 {
		return "off"
	}
	return d.String()
}
