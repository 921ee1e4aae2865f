package actors

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/internal/handoff"
	"github.com/clusterkit/clusterkit/internal/handoffcheck"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// fakeState answers Propose as the state actor does: the first failures
// answers fail (no leader), the rest succeed. It records every command.
type fakeState struct {
	mu       sync.Mutex
	failures int
	cmds     []*messages.Command
}

func (f *fakeState) receive(ctx actor.Context) {
	p, ok := ctx.Message().(*messages.Propose)
	if !ok {
		return
	}
	f.mu.Lock()
	f.cmds = append(f.cmds, p.GetCommand())
	fail := len(f.cmds) <= f.failures
	f.mu.Unlock()
	if fail {
		ctx.Respond(&messages.ProposeResult{Code: CodeNotLeader, Error: "no leader"})
		return
	}
	ctx.Respond(&messages.ProposeResult{Index: 1})
}

func (f *fakeState) proposals() []*messages.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

// syncingTable commits a table in which n2 loads copies, and returns one of
// them (partition, epoch).
func syncingTable(t *testing.T) (*sim, uint32, uint64) {
	t.Helper()
	s := &sim{t: t, seed: 1, rng: rand.New(rand.NewPCG(1, 2)), f: raftfsm.New("n2", nil), now: 1_700_000_000_000_000_000,
		hand: map[string]bool{"n1": true, "n2": true}, nonce: map[string]uint64{}, joined: map[string]bool{}, cool: map[handoff.Ref]int64{},
		h: HandoffConfig{MaxMovesPerNode: 4, HandoffTimeout: time.Minute, MinReadyReplicas: 1}}
	if r := s.apply(configCmd(8, 2), false); r.Err != nil {
		t.Fatal(r.Err)
	}
	s.join("n1")
	s.join("n2")
	if s.held != nil {
		s.commitHeld(s.held)
	}
	v := s.f.View()
	for n := range v.PartitionCount() {
		a := v.Assignment(n)
		if i := slices.Index(a.GetOwners(), "n2"); i >= 0 && handoffcheck.SyncingAt(a, i) {
			return s, uint32(n), a.GetSyncing()[i]
		}
	}
	t.Fatal("n2 loads nothing")
	return nil, 0, 0
}

// TestReadyRetriesFailedAcknowledgement: an acknowledgement whose proposal
// fails (no leader) is proposed again while the copy is still syncing at
// that epoch, and not once it is moot.
func TestReadyRetriesFailedAcknowledgement(t *testing.T) {
	s, part, epoch := syncingTable(t)
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	defer system.Shutdown()
	state := &fakeState{failures: 2}
	cfg := &Config{FSM: s.f, NodeID: "n2", Logger: slog.New(slog.DiscardHandler)}
	var ready *actor.PID
	started := make(chan struct{})
	parent := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			if _, err := ctx.SpawnNamed(actor.PropsFromFunc(state.receive), "state"); err != nil {
				t.Error(err)
			}
			ready, _ = ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newReadyActor(cfg) }), "ready")
			close(started)
		}
	}))
	defer system.Root.Stop(parent)
	<-started
	system.Root.Send(ready, &messages.PartitionReady{PartitionId: fmt.Sprintf("partition-%d", part), Epoch: epoch})
	deadline := time.Now().Add(10 * time.Second)
	for len(state.proposals()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cmds := state.proposals()
	if len(cmds) != 3 {
		t.Fatalf("%d proposals, want 3 (two failures, then success)", len(cmds))
	}
	for _, c := range cmds {
		ps := c.GetMarkReady().GetPartitions()
		if len(ps) != 1 || ps[0].GetPartition() != part || ps[0].GetEpoch() != epoch {
			t.Fatalf("proposal %v, want partition %d at epoch %d", c, part, epoch)
		}
	}

	// Moot: the copy is no longer syncing at that epoch (here: another
	// acknowledgement committed it), so a failed proposal is not retried.
	state.mu.Lock()
	state.failures = 4
	state.mu.Unlock()
	m, _ := s.f.View().Member("n2")
	if r := s.apply(&messages.Command{Op: &messages.Command_MarkReady{MarkReady: &messages.MarkReady{Id: "n2", Incarnation: m.Incarnation,
		Partitions: []*messages.ReadyPartition{{Partition: part, Epoch: epoch}}}}}, false); r.Err != nil {
		t.Fatal(r.Err)
	}
	system.Root.Send(ready, &messages.PartitionReady{PartitionId: fmt.Sprintf("partition-%d", part), Epoch: epoch})
	for len(state.proposals()) < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(state.proposals()); n != 4 {
		t.Fatalf("%d proposals, want 4: the second acknowledgement was not proposed", n)
	}
	// Nothing marks a retry that does not happen: wait past the first
	// backoff (readyRetryMin after a success), then count.
	time.Sleep(4 * readyRetryMin)
	if n := len(state.proposals()); n != 4 {
		t.Fatalf("%d proposals, want 4: a moot acknowledgement was retried", n)
	}
}
