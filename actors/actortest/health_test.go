package actortest_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/messages"
)

// events collects the events of every node's current process.
type events struct {
	mu  sync.Mutex
	all map[int][]any
}

func (e *events) setup(i int, ck *clusterkit.ClusterKit) {
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started, *actor.Stopping, *actor.Stopped:
			return
		}
		e.mu.Lock()
		e.all[i] = append(e.all[i], ctx.Message())
		e.mu.Unlock()
	}))
	_ = ck.Subscribe(pid)
}

func (e *events) leaves(i int) []*messages.NodeLeave {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*messages.NodeLeave
	for _, m := range e.all[i] {
		if l, ok := m.(*messages.NodeLeave); ok {
			out = append(out, l)
		}
	}
	return out
}

func (e *events) health(i int) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, m := range e.all[i] {
		if h, ok := m.(*messages.ClusterHealthChange); ok {
			out = append(out, h.GetStatus())
		}
	}
	return out
}

func fastHealth(_ int, o *clusterkit.Options) { o.HealthCheck = clusterkit.FastHealthCheck() }

// liveExcept returns the running nodes of c other than skip.
func liveExcept(c *actortest.Cluster, skip int) []int {
	var out []int
	for _, i := range c.Live() {
		if i != skip {
			out = append(out, i)
		}
	}
	return out
}

// TestKilledLeaderIsReplacedAndRemoved: after the leader is killed a new one
// is elected, its health actor takes over probing, and the old leader is
// removed (health_check_failure) on every survivor.
func TestKilledLeaderIsReplacedAndRemoved(t *testing.T) {
	ev := &events{all: map[int][]any{}}
	c := actortest.NewCluster(t, 4, actortest.Configure(fastHealth), actortest.Setup(ev.setup))
	c.WaitConverged(10 * time.Second)
	leader := c.WaitLeader(5 * time.Second)
	leaderID := c.Node(leader).GetMyNodeID()
	c.Kill(leader)
	for _, i := range c.Live() {
		actortest.Eventually(t, 10*time.Second, "NodeLeave of the old leader", func() bool {
			for _, l := range ev.leaves(i) {
				if l.GetNode().GetId() == leaderID && l.GetReason() == "health_check_failure" {
					return true
				}
			}
			return false
		})
	}
	c.WaitConverged(10 * time.Second)
	if l := c.WaitLeader(5 * time.Second); l == leader {
		t.Fatal("the dead leader still leads")
	}
	for _, p := range c.Node(c.Live()[0]).GetCluster().PartitionMap.Partitions {
		if p.PrimaryNode == leaderID || slices.Contains(p.ReplicaNodes, leaderID) {
			t.Fatalf("%s still names the dead leader", p.ID)
		}
	}
}

// TestTwoSurvivorsOfThreeStay: RF 3, three nodes, one dies: it is removed,
// the two survivors stay members (degraded, each partition on both) and keep
// serving, however long it lasts.
func TestTwoSurvivorsOfThreeStay(t *testing.T) {
	ev := &events{all: map[int][]any{}}
	c := actortest.NewCluster(t, 3, actortest.Configure(fastHealth), actortest.Setup(ev.setup))
	c.WaitConverged(10 * time.Second)
	victim := 2
	if c.WaitLeader(5*time.Second) == victim {
		victim = 1
	}
	c.Kill(victim)
	c.WaitConverged(10 * time.Second)
	// Several detection budgets later, still two members, both serving.
	time.Sleep(3 * clusterkit.FastHealthCheck().Budget())
	for _, i := range c.Live() {
		ck := c.Node(i)
		h := ck.HealthCheck()
		if h.NodeCount != 2 || h.ClusterStatus != "degraded" || !h.Ready {
			t.Fatalf("node-%d: %+v", i+1, h)
		}
		for _, p := range ck.GetCluster().PartitionMap.Partitions {
			if 1+len(p.ReplicaNodes) != 2 {
				t.Fatalf("%s owners %s %v", p.ID, p.PrimaryNode, p.ReplicaNodes)
			}
		}
		if _, err := ck.GetPartition("user:123"); err != nil {
			t.Fatal(err)
		}
		if n := len(ev.leaves(i)); n != 1 {
			t.Fatalf("node-%d saw %d NodeLeave events, want only the dead node's", i+1, n)
		}
	}
}

// TestShortOutageIsNotRemoval: a node cut off (black hole) for less than the
// detection budget, or slowed by delays below the probe timeout, is never
// removed.
func TestShortOutageIsNotRemoval(t *testing.T) {
	ev := &events{all: map[int][]any{}}
	c := actortest.NewCluster(t, 4, actortest.Configure(fastHealth), actortest.Setup(ev.setup))
	c.WaitConverged(10 * time.Second)
	leader := c.WaitLeader(5 * time.Second)
	victim := (leader + 1) % 4
	budget := clusterkit.FastHealthCheck().Budget()
	c.Partition([]int{victim})
	time.Sleep(budget / 3)
	c.Heal()
	c.SetDelay(30*time.Millisecond, 20*time.Millisecond) // below the 150 ms probe timeout
	time.Sleep(2 * budget)
	c.Heal()
	c.WaitConverged(10 * time.Second)
	for _, i := range c.Live() {
		if l := ev.leaves(i); len(l) != 0 {
			t.Fatalf("node-%d saw %v removed after a short outage", i+1, l[0].GetNode().GetId())
		}
	}
}

// TestHealthTransitions: healthy -> degraded -> critical -> healthy, one
// ClusterHealthChange per transition, the same on every node.
func TestHealthTransitions(t *testing.T) {
	ev := &events{all: map[int][]any{}}
	c := actortest.NewCluster(t, 5, actortest.Configure(func(_ int, o *clusterkit.Options) {
		o.PartitionCount = 64
		o.ReplicationFactor = 2
		o.HealthCheck = clusterkit.FastHealthCheck()
		o.HealthCheck.RemovalGrace = time.Minute // stay suspect: observe the statuses, no removal
	}), actortest.Setup(ev.setup))
	c.WaitConverged(10 * time.Second)
	leader := c.WaitLeader(5 * time.Second)
	// Two non-leaders that share a partition: cutting both off leaves that
	// partition without a live owner.
	ck := c.Node(leader)
	var a, b string
	for _, p := range ck.GetCluster().PartitionMap.Partitions {
		if p.PrimaryNode != ck.GetMyNodeID() && p.ReplicaNodes[0] != ck.GetMyNodeID() {
			a, b = p.PrimaryNode, p.ReplicaNodes[0]
			break
		}
	}
	if a == "" {
		t.Fatal("no partition without the leader")
	}
	index := func(id string) int {
		for _, i := range c.Live() {
			if c.Node(i).GetMyNodeID() == id {
				return i
			}
		}
		t.Fatalf("no node %s", id)
		return -1
	}
	ia, ib := index(a), index(b)
	start := map[int]int{} // events before the test's transitions
	for _, i := range c.Live() {
		start[i] = len(ev.health(i))
	}
	c.Isolate(ia)
	actortest.Eventually(t, 10*time.Second, "degraded", func() bool { return ck.HealthCheck().ClusterStatus == "degraded" })
	c.Isolate(ib)
	actortest.Eventually(t, 10*time.Second, "critical", func() bool { return ck.HealthCheck().ClusterStatus == "critical" })
	others := []int{}
	for _, i := range c.Live() {
		if i != ia && i != ib {
			others = append(others, i)
		}
	}
	since := func(i int) []string { return ev.health(i)[start[i]:] }
	// Every node that is not isolated must have told its subscribers
	// "critical" before the heal: on a busy machine a heal right after
	// ck's status could otherwise come before another node's event.
	actortest.Eventually(t, 10*time.Second, "critical on every node not isolated", func() bool {
		for _, i := range others {
			if !slices.Contains(since(i), "critical") {
				return false
			}
		}
		return true
	})
	c.Heal()
	actortest.Eventually(t, 20*time.Second, "healthy", func() bool {
		for _, i := range c.Live() {
			if c.Node(i).HealthCheck().ClusterStatus != "healthy" {
				return false
			}
		}
		return true
	})
	var want []string
	actortest.Eventually(t, 5*time.Second, "the last health event everywhere", func() bool {
		want = since(others[0])
		for _, i := range others {
			if h := since(i); len(h) != len(want) || len(h) == 0 || h[len(h)-1] != "healthy" {
				return false
			}
		}
		return true
	})
	for k := 1; k < len(want); k++ {
		if want[k] == want[k-1] {
			t.Fatalf("two events for one status: %v", want)
		}
	}
	if len(want) < 3 || want[0] != "degraded" || !slices.Contains(want, "critical") || want[len(want)-1] != "healthy" {
		t.Fatalf("statuses %v, want degraded, critical, ..., healthy", want)
	}
	for _, i := range others {
		if h := since(i); !slices.Equal(h, want) {
			t.Fatalf("node-%d saw %v, node-%d %v", i+1, h, others[0]+1, want)
		}
	}
	for _, i := range c.Live() {
		if l := ev.leaves(i); len(l) != 0 {
			t.Fatalf("a suspect node was removed within the grace: %v", l[0])
		}
	}
}
