package actortest_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/messages"
)

func TestProbe(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	p := actortest.NewProbe(t, sys)
	sys.Root.Send(p.PID(), &messages.NodeJoin{Index: 3, Node: &messages.NodeInfo{Id: "a"}})
	sys.Root.Send(p.PID(), "plain")
	sys.Root.Send(p.PID(), &messages.NodeLeave{Index: 4})
	sys.Root.Send(p.PID(), 7)
	sys.Root.Send(p.PID(), &messages.NodeRejoin{Index: 9})
	p.ExpectMsg(&messages.NodeJoin{Index: 3, Node: &messages.NodeInfo{Id: "a"}}) // proto.Equal
	p.ExpectMsg("plain")                                                         // reflect.DeepEqual
	if l := actortest.ExpectMsgType[*messages.NodeLeave](p); l.GetIndex() != 4 {
		t.Fatalf("got %v", l)
	}
	if m := p.FishForMsg(func(m any) bool { _, ok := m.(*messages.NodeRejoin); return ok }); m.(*messages.NodeRejoin).GetIndex() != 9 {
		t.Fatalf("fished %v", m)
	}
	p.ExpectNoMsg(50 * time.Millisecond)
	if _, ok := p.Receive(10 * time.Millisecond); ok {
		t.Fatal("Receive returned a message from an empty probe")
	}
}

// TestPartitionHealAndRestart exercises the harness itself: a partitioned
// leader is replaced by the majority, healing converges everyone, and a
// killed node restarted on its data is seen rejoining.
func TestPartitionHealAndRestart(t *testing.T) {
	c := actortest.NewCluster(t, 3, actortest.Configure(func(_ int, o *clusterkit.Options) { o.PartitionCount = 16 }))
	c.WaitConverged(10 * time.Second)
	leader := c.WaitLeader(10 * time.Second)
	rest := liveExcept(c, leader)
	c.Partition([]int{leader})
	deadline := time.Now().Add(10 * time.Second)
	for {
		h0, h1 := c.Node(rest[0]).HealthCheck(), c.Node(rest[1]).HealthCheck()
		if (h0.IsLeader || h1.IsLeader) && h0.Leader == h1.Leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the majority elected no leader while the old one was cut off")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Heal()
	c.WaitConverged(10 * time.Second)
	if l := c.WaitLeader(10 * time.Second); l == leader {
		t.Logf("the old leader won again after healing (allowed)")
	}

	p := actortest.NewProbe(t, c.Node(rest[0]).ActorSystem())
	if err := c.Node(rest[0]).Subscribe(p.PID(), clusterkit.WithKinds(clusterkit.EventNodeRejoin)); err != nil {
		t.Fatal(err)
	}
	victim := rest[1]
	c.Kill(victim)
	if c.Alive(victim) {
		t.Fatal("killed node reported alive")
	}
	c.Restart(victim)
	rj := actortest.ExpectMsgType[*messages.NodeRejoin](p, 10*time.Second)
	if rj.GetNode().GetId() != c.Node(victim).GetMyNodeID() || rj.GetOfflineDurationNanos() <= 0 {
		t.Fatalf("NodeRejoin %v", rj)
	}
	c.WaitConverged(10 * time.Second)
}
