package actors

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// fsmLog applies commands to an FSM directly (no raft), like a one-node log.
type fsmLog struct {
	mu    sync.Mutex
	f     *raftfsm.FSM
	index uint64
}

func (l *fsmLog) apply(t *testing.T, c *messages.Command) *raftfsm.ApplyResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	c.TimeUnixNano = time.Now().UnixNano()
	data, err := raftfsm.Encode(c)
	if err != nil {
		t.Error(err)
		return &raftfsm.ApplyResult{Err: err}
	}
	return l.f.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: data}).(*raftfsm.ApplyResult)
}

func registerCmd(id string) *messages.Command {
	return &messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{Member: &messages.Member{Id: id, Address: "127.0.0.1:1", Incarnation: 1}}}}
}

func configCmd(p, rf uint32) *messages.Command {
	return &messages.Command{Op: &messages.Command_SetConfig{SetConfig: &messages.SetConfig{Config: &messages.ClusterConfig{
		ClusterName: "t", PartitionCount: p, ReplicationFactor: rf, MaxVoters: 5,
	}}}}
}

// rig runs a rebalancer under a fake root whose "state" child applies
// proposals to the FSM (optionally intercepting them) and records them.
type rig struct {
	sys        *actor.ActorSystem
	log        *fsmLog
	cfg        *Config
	rebalancer *actor.PID
	proposals  chan *messages.SetPartitionTable
	intercept  atomic.Pointer[func(*messages.Command)] // runs before a proposal is applied
}

func newRig(t *testing.T, delay time.Duration) *rig {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	r := &rig{sys: sys, proposals: make(chan *messages.SetPartitionTable, 100)}
	r.log = &fsmLog{f: raftfsm.New("n1", nil)}
	r.cfg = &Config{NodeID: "n1", FSM: r.log.f, Logger: slog.New(slog.DiscardHandler), Stats: &Stats{}, RebalanceDelay: delay}
	state := func(ctx actor.Context) {
		p, ok := ctx.Message().(*messages.Propose)
		if !ok {
			return
		}
		if f := r.intercept.Load(); f != nil {
			(*f)(p.GetCommand())
		}
		r.proposals <- p.GetCommand().GetSetPartitionTable()
		res := r.log.apply(t, p.GetCommand())
		ctx.Respond(resultOf(res.Index, res.Err))
	}
	spawned := make(chan *actor.PID, 1)
	root := actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			_, _ = ctx.SpawnNamed(actor.PropsFromFunc(state), "state")
			pid, _ := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newRebalancerActor(r.cfg) }), "rebalancer")
			spawned <- pid
		}
	})
	rootPID, err := sys.Root.SpawnNamed(root, "clusterkit/n1")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r.rebalancer = <-spawned:
	case <-time.After(5 * time.Second):
		t.Fatal("rig did not start")
	}
	// Applied records go straight to the rebalancer, as the state actor forwards them on a leader.
	r.log.f.SetNotifier(func(a *raftfsm.Applied) { sys.Root.Send(r.rebalancer, a) })
	t.Cleanup(func() { _ = sys.Root.StopFuture(rootPID).Wait() })
	return r
}

func (r *rig) nextProposal(t *testing.T) *messages.SetPartitionTable {
	t.Helper()
	select {
	case p := <-r.proposals:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no proposal within 5s")
		return nil
	}
}

func (r *rig) noProposal(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case p := <-r.proposals:
		t.Fatalf("unexpected proposal: %v", p.GetRebalance())
	case <-time.After(d):
	}
}

// TestRebalancerDebouncesJoins: several joins close together give one
// rebalance that includes all of them.
func TestRebalancerDebouncesJoins(t *testing.T) {
	r := newRig(t, 150*time.Millisecond)
	r.log.apply(t, configCmd(32, 2))
	r.log.apply(t, registerCmd("n1"))
	r.sys.Root.Send(r.rebalancer, &LeaderActive{})
	first := r.nextProposal(t)
	if first.GetRebalance().GetTrigger() != raftfsm.TriggerNodeJoin || first.GetExpectedVersion() != 0 {
		t.Fatalf("bootstrap proposal: %v", first.GetRebalance())
	}
	r.noProposal(t, 300*time.Millisecond) // the bootstrap join was already covered

	for _, id := range []string{"n2", "n3", "n4"} {
		if res := r.log.apply(t, registerCmd(id)); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	p := r.nextProposal(t)
	if p.GetRebalance().GetTrigger() != raftfsm.TriggerNodeJoin || p.GetRebalance().GetTriggerNodeId() != "n2" {
		t.Fatalf("join rebalance: %v", p.GetRebalance())
	}
	holders := map[string]bool{}
	for _, a := range p.GetPartitions() {
		for _, o := range a.GetOwners() {
			holders[o] = true
		}
	}
	if len(holders) != 4 {
		t.Fatalf("one rebalance should place all four nodes, got %v", holders)
	}
	r.settle(t)
	r.noProposal(t, 400*time.Millisecond)
}

// settle takes the hand-off steps that follow a plan (an old primary is
// released only by the entry after the flip) until the table is settled.
func (r *rig) settle(t *testing.T) {
	t.Helper()
	for i := 0; ; i++ {
		select {
		case p := <-r.proposals:
			if p.GetRebalance().GetPlan() {
				t.Fatalf("a second plan while settling: %v", p.GetRebalance())
			}
			if i > 10 {
				t.Fatal("the hand-off did not settle in 10 steps")
			}
			continue
		case <-time.After(300 * time.Millisecond):
		}
		if !r.cfg.FSM.View().Settled() {
			t.Fatal("no step proposed, and the table is not settled")
		}
		return
	}
}

// TestRebalancerRetriesStaleTable: if the table changes between computing and
// committing (a removal repaired it), the rebalancer recomputes and proposes
// again with the original trigger.
func TestRebalancerRetriesStaleTable(t *testing.T) {
	r := newRig(t, 20*time.Millisecond)
	r.log.apply(t, configCmd(16, 2))
	for _, id := range []string{"n1", "n2", "n3"} {
		r.log.apply(t, registerCmd(id))
	}
	r.sys.Root.Send(r.rebalancer, &LeaderActive{})
	r.nextProposal(t)

	var once sync.Once
	f := func(c *messages.Command) {
		once.Do(func() { // sneak a removal in before the first join proposal commits
			if res := r.log.apply(t, &messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{Id: "n3", Reason: raftfsm.LeaveAdmin}}}); res.Err != nil {
				t.Error(res.Err)
			}
		})
	}
	r.intercept.Store(&f)
	r.log.apply(t, registerCmd("n4"))
	stale := r.nextProposal(t)
	retry := r.nextProposal(t)
	if retry.GetExpectedVersion() <= stale.GetExpectedVersion() {
		t.Fatalf("retry expected version %d, stale %d", retry.GetExpectedVersion(), stale.GetExpectedVersion())
	}
	if retry.GetRebalance().GetTrigger() != raftfsm.TriggerNodeJoin {
		t.Fatalf("retry trigger %q", retry.GetRebalance().GetTrigger())
	}
	v := r.log.f.View()
	for v.TableVersion() <= retry.GetExpectedVersion() { // the retry is applied after it is recorded
		select {
		case <-v.Done():
			v = r.log.f.View()
		case <-time.After(5 * time.Second):
			t.Fatal("retry never applied")
		}
	}
	for n := range v.PartitionCount() {
		if slices.Contains(v.Owners(n), "n3") || len(v.Owners(n)) != 2 {
			t.Fatalf("partition %d owners %v after the retry", n, v.Owners(n))
		}
	}
}

func TestRebalancerIdleWhenNotLeader(t *testing.T) {
	r := newRig(t, 10*time.Millisecond)
	r.log.apply(t, configCmd(8, 1))
	r.log.apply(t, registerCmd("n1"))
	r.noProposal(t, 200*time.Millisecond)
	res, err := r.sys.Root.RequestFuture(r.rebalancer, &messages.RebalanceRequest{Trigger: raftfsm.TriggerManual}, 5*time.Second).Result()
	if err != nil || res.(*messages.ProposeResult).GetCode() != CodeNotLeader {
		t.Fatalf("manual request on a follower: %v %v", res, err)
	}
}

// TestManualRebalanceReportsManual: a manual request that coincides with a
// pending trigger that changes nothing is reported as manual.
func TestManualRebalanceReportsManual(t *testing.T) {
	r := newRig(t, time.Hour) // membership triggers stay pending
	r.log.apply(t, configCmd(1, 1))
	r.log.apply(t, registerCmd("n1"))
	r.log.apply(t, registerCmd("n2"))
	r.sys.Root.Send(r.rebalancer, &LeaderActive{})
	first := r.nextProposal(t) // the first table: one partition, on one node
	holder := first.GetPartitions()[0].GetOwners()[0]
	other := "n1"
	if holder == "n1" {
		other = "n2"
	}
	// The node holding nothing leaves: a node_leave trigger that changes nothing.
	if res := r.log.apply(t, &messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{Id: other, Reason: raftfsm.LeaveAdmin}}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	res, err := r.sys.Root.RequestFuture(r.rebalancer, &messages.RebalanceRequest{Trigger: raftfsm.TriggerManual, TriggerNodeId: "n1"}, 5*time.Second).Result()
	if err != nil || ResultError(res.(*messages.ProposeResult)) != nil {
		t.Fatalf("manual rebalance: %v %v", res, err)
	}
	if p := r.nextProposal(t); p.GetRebalance().GetTrigger() != raftfsm.TriggerManual {
		t.Fatalf("trigger %q, want manual", p.GetRebalance().GetTrigger())
	}
}
