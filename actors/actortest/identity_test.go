package actortest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/messages"
)

// Regression tests of issue 15 (cluster identity and membership safety),
// in process over the in-memory network. The multi-process versions (kill
// -9, kill -STOP) are in examples/node.

// lives records every process's events: one recorder per start of a node.
type lives struct {
	mu     sync.Mutex
	recs   []*recorder
	byNode map[int][]*recorder
}

// watch subscribes a recorder on every start of every node (restarts too).
func (l *lives) watch() actortest.Option {
	l.byNode = map[int][]*recorder{}
	return actortest.Setup(func(i int, ck *clusterkit.ClusterKit) {
		r := &recorder{node: i}
		pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(r.receive))
		if err := ck.Subscribe(pid); err != nil {
			panic(err)
		}
		l.mu.Lock()
		l.recs = append(l.recs, r)
		l.byNode[i] = append(l.byNode[i], r)
		l.mu.Unlock()
	})
}

// latest is node i's current recorder.
func (l *lives) latest(i int) *recorder {
	l.mu.Lock()
	defer l.mu.Unlock()
	rs := l.byNode[i]
	return rs[len(rs)-1]
}

// all returns the events of every recorder of node i, in order.
func (l *lives) all(i int) []proto.Message {
	l.mu.Lock()
	rs := slices.Clone(l.byNode[i])
	l.mu.Unlock()
	var out []proto.Message
	for _, r := range rs {
		out = append(out, r.snapshot()...)
	}
	return out
}

func (r *recorder) snapshot() []proto.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// rejoinsOf counts the NodeRejoin events for id in evs.
func rejoinsOf(evs []proto.Message, id string) []*messages.NodeRejoin {
	var out []*messages.NodeRejoin
	for _, e := range evs {
		if r, ok := e.(*messages.NodeRejoin); ok && r.GetNode().GetId() == id {
			out = append(out, r)
		}
	}
	return out
}

func kindsOf(evs []proto.Message) []string {
	var out []string
	for _, e := range evs {
		i, s := seqOf(e)
		out = append(out, fmt.Sprintf("%s@%d.%d", e.ProtoReflect().Descriptor().Name(), i, s))
	}
	return out
}

// memberOf reports whether every live node sees id as a member (want) or not.
func everyoneSees(c *actortest.Cluster, id string, member bool) bool {
	for _, i := range c.Live() {
		found := false
		for _, n := range c.Node(i).GetCluster().Nodes {
			found = found || n.ID == id
		}
		if found != member {
			return false
		}
	}
	return true
}

// A node restarted with a wiped data directory is a new life: it replays no
// history to its subscribers (its first event is its own NodeRejoin), every
// node sees exactly one NodeRejoin for it, and it is never refused, whether
// it was still a member, had been removed, or had left.
func TestWipedDataDirIsANewLife(t *testing.T) {
	for _, how := range []string{"still a member", "removed", "left"} {
		t.Run(how, func(t *testing.T) {
			var l lives
			opts := []actortest.Option{l.watch(), actortest.Configure(func(i int, o *clusterkit.Options) {
				o.HealthCheck = clusterkit.FastHealthCheck()
				if how == "still a member" {
					o.HealthCheck.RemovalGrace = time.Minute
				}
			})}
			c := actortest.NewCluster(t, 3, opts...)
			c.WaitConverged(10 * time.Second)
			victim := 2
			if c.WaitLeader(10*time.Second) == victim {
				c.Node(victim).TransferLeadership(context.Background(), "")
				c.WaitLeader(10 * time.Second)
			}
			id := c.Node(victim).GetMyNodeID()
			oldIncarnation := c.Node(0).GetCluster().Nodes[victim].Incarnation
			switch how {
			case "still a member":
				c.Kill(victim)
			case "removed":
				c.Kill(victim)
				actortest.Eventually(t, 20*time.Second, id+" removed", func() bool { return everyoneSees(c, id, false) })
			case "left":
				if err := c.Leave(victim); err != nil {
					t.Fatal(err)
				}
			}
			c.Wipe(victim)
			c.Restart(victim)
			c.WaitConverged(20 * time.Second)

			self := l.latest(victim)
			actortest.Eventually(t, 10*time.Second, "the new life's NodeRejoin", func() bool {
				return len(rejoinsOf(self.snapshot(), id)) > 0
			})
			evs := self.snapshot()
			if first, ok := evs[0].(*messages.NodeRejoin); !ok || first.GetNode().GetId() != id {
				t.Fatalf("the wiped node's first event is not its own NodeRejoin: %v", kindsOf(evs))
			}
			admitted, _ := seqOf(evs[0])
			for _, e := range evs {
				if i, _ := seqOf(e); i < admitted {
					t.Fatalf("history replayed to the wiped node: %v", kindsOf(evs))
				}
				if j, ok := e.(*messages.NodeJoin); ok {
					t.Fatalf("the wiped node delivered a NodeJoin of %s: %v", j.GetNode().GetId(), kindsOf(evs))
				}
			}
			var newIncarnation uint64
			for _, n := range c.Node(0).GetCluster().Nodes {
				if n.ID == id {
					newIncarnation = n.Incarnation
				}
			}
			if newIncarnation <= oldIncarnation {
				t.Fatalf("incarnation %d after the wiped restart, %d before: a new life must have a larger one", newIncarnation, oldIncarnation)
			}
			for _, i := range []int{0, 1} {
				actortest.Eventually(t, 10*time.Second, "a NodeRejoin on every node", func() bool { return len(rejoinsOf(l.all(i), id)) > 0 })
				rj := rejoinsOf(l.all(i), id)
				if len(rj) != 1 {
					t.Fatalf("node-%d saw %d NodeRejoin events for %s, want exactly 1", i+1, len(rj), id)
				}
				if rj[0].GetOfflineDurationNanos() <= 0 || len(rj[0].GetPartitionsBeforeLeave()) == 0 {
					t.Fatalf("node-%d: NodeRejoin without offline time or partitions: %v", i+1, rj[0])
				}
			}
		})
	}
}

// A node started on the data directory of another cluster with the same
// name refuses to start, naming both cluster IDs, and neither cluster is
// disturbed: no term change, no foreign member, no foreign data.
func TestForeignDataDirRefused(t *testing.T) {
	a := actortest.NewCluster(t, 3)
	a.WaitConverged(10 * time.Second)
	// B: one node with the ID of A's node-3, its own data.
	// A's leak check covers both clusters (B's would count A's goroutines).
	b := actortest.NewCluster(t, 1, actortest.NoLeakCheck(), actortest.Configure(func(_ int, o *clusterkit.Options) { o.NodeID = "node-3" }))
	b.WaitConverged(10 * time.Second)
	if _, err := b.Node(0).SetCustomData(context.Background(), "from-b", []byte("b")); err != nil {
		t.Fatal(err)
	}
	idA, idB := a.Node(0).ClusterID(), b.Node(0).ClusterID()
	if idA == "" || idB == "" || idA == idB {
		t.Fatalf("cluster IDs %q and %q", idA, idB)
	}
	b.Stop(0)

	leader := a.WaitLeader(10 * time.Second)
	if leader == 2 {
		a.Node(2).TransferLeadership(context.Background(), "")
		leader = a.WaitLeader(10 * time.Second)
	}
	term := a.Node(leader).HealthCheck().Term
	oldIncarnation := incarnationOf(a.Node(leader), "node-3")
	a.Kill(2)
	if err := os.RemoveAll(a.DataDir(2)); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(a.DataDir(2), os.DirFS(b.DataDir(0))); err != nil {
		t.Fatal(err)
	}
	err := a.TryRestart(2)
	if !errors.Is(err, clusterkit.ErrClusterMismatch) || !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), idB) {
		t.Fatalf("Start on another cluster's data directory: %v; want ErrClusterMismatch naming %s and %s", err, idA, idB)
	}
	for _, i := range a.Live() {
		ck := a.Node(i)
		if h := ck.HealthCheck(); h.Term != term {
			t.Errorf("node-%d: term %d, was %d: the foreign node disturbed the cluster", i+1, h.Term, term)
		}
		if inc := incarnationOf(ck, "node-3"); inc != oldIncarnation {
			t.Errorf("node-%d: node-3 is incarnation %d, was %d: the foreign node was admitted", i+1, inc, oldIncarnation)
		}
		if _, _, err := ck.GetCustomData("from-b"); err == nil {
			t.Errorf("node-%d holds the other cluster's custom data", i+1)
		}
		if ck.ClusterID() != idA {
			t.Errorf("node-%d: cluster ID %s, want %s", i+1, ck.ClusterID(), idA)
		}
	}
}

func incarnationOf(ck *clusterkit.ClusterKit, id string) uint64 {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == id {
			return n.Incarnation
		}
	}
	return 0
}

// A process that answers pings but runs no Raft is never admitted, never a
// voter, and three real nodes keep their quorum when one of them dies.
func TestGhostIsNeverAdmitted(t *testing.T) {
	const token = "ghost-test-token"
	c := actortest.NewCluster(t, 3, actortest.Configure(func(_ int, o *clusterkit.Options) { o.AuthToken = token }))
	c.WaitConverged(10 * time.Second)
	g := c.StartGhost("node-9", token)
	actortest.Eventually(t, 20*time.Second, "the ghost refused 3 times for not taking the log", func() bool {
		return g.Answers()["no_log"] >= 3
	})
	if n := g.Answers()[""]; n != 0 {
		t.Fatalf("the ghost was admitted %d times", n)
	}
	check := func() {
		t.Helper()
		for _, i := range c.Live() {
			h := c.Node(i).HealthCheck()
			if slices.Contains(h.VoterIDs, "node-9") || len(h.VoterIDs) != 3 {
				t.Fatalf("node-%d: voters %v", i+1, h.VoterIDs)
			}
			if !everyoneSees(c, "node-9", false) {
				t.Fatalf("the ghost is a member")
			}
		}
	}
	check()
	// One real node dies (the leader): two of three real voters remain.
	leader := c.WaitLeader(10 * time.Second)
	c.Kill(leader)
	c.WaitLeader(20 * time.Second)
	survivor := c.Live()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Node(survivor).SetCustomData(ctx, "after-the-kill", []byte("ok")); err != nil {
		t.Fatalf("a write after one real node died: %v (the quorum was lost)", err)
	}
	check()
}

// A member cut off for longer than the removal budget finds out it was
// removed once it can talk to a member again: it says so, delivers its own
// NodeLeave, and rejoins as a new life (every node sees a NodeRejoin); with
// AutoRejoinOff it stays out and reports itself not ready, removed.
func TestRemovedNodeFindsOut(t *testing.T) {
	for _, rejoin := range []bool{true, false} {
		t.Run(fmt.Sprintf("rejoin=%v", rejoin), func(t *testing.T) {
			var l lives
			c := actortest.NewCluster(t, 5, l.watch(), actortest.Configure(func(i int, o *clusterkit.Options) {
				o.HealthCheck = clusterkit.FastHealthCheck()
				if i == 0 && !rejoin {
					o.AutoRejoin = clusterkit.AutoRejoinOff
				}
			}))
			c.WaitConverged(10 * time.Second)
			victim := c.WaitLeader(10 * time.Second) // the leader, as in a SIGSTOPped leader
			if !rejoin && victim != 0 {
				c.Node(victim).TransferLeadership(context.Background(), "node-1")
				victim = c.WaitLeader(10 * time.Second)
				if victim != 0 {
					t.Fatalf("leadership went to node-%d, not node-1", victim+1)
				}
			}
			id := c.Node(victim).GetMyNodeID()
			oldIncarnation := incarnationOf(c.Node(victim), id)
			c.Isolate(victim)
			others := liveExcept(c, victim)
			actortest.Eventually(t, 20*time.Second, id+" removed by the others", func() bool {
				for _, i := range others {
					if incarnationOf(c.Node(i), id) != 0 {
						return false
					}
				}
				return true
			})
			c.Heal()
			ck := c.Node(victim)
			if !rejoin {
				actortest.Eventually(t, 20*time.Second, id+" to know it was removed", func() bool {
					return ck.HealthCheck().Membership == "removed"
				})
				deadline := time.Now().Add(3 * time.Second)
				for time.Now().Before(deadline) {
					if h := ck.HealthCheck(); h.Ready || h.Membership != "removed" || !strings.Contains(strings.Join(h.Problems, ";"), "health_check_failure") {
						t.Fatalf("with AutoRejoinOff: ready=%v membership=%q problems=%v", h.Ready, h.Membership, h.Problems)
					}
					if incarnationOf(c.Node(others[0]), id) != 0 {
						t.Fatal("rejoined with AutoRejoinOff")
					}
					time.Sleep(50 * time.Millisecond)
				}
			} else {
				actortest.Eventually(t, 30*time.Second, id+" back as a new life", func() bool {
					inc := incarnationOf(c.Node(others[0]), id)
					return inc > oldIncarnation && ck.HealthCheck().Ready
				})
				c.WaitConverged(20 * time.Second)
				for _, i := range others {
					actortest.Eventually(t, 10*time.Second, "a NodeRejoin on every node", func() bool { return len(rejoinsOf(l.all(i), id)) == 1 })
				}
			}
			// Its own NodeLeave, delivered to its own subscriber, exactly once.
			ownLeaves := func() int {
				n := 0
				for _, e := range l.all(victim) {
					if lv, ok := e.(*messages.NodeLeave); ok && lv.GetNode().GetId() == id {
						n++
					}
				}
				return n
			}
			if !actortest.Poll(10*time.Second, func() bool { return ownLeaves() == 1 }) {
				t.Fatalf("%s delivered its own NodeLeave %d times: %v", id, ownLeaves(), kindsOf(l.all(victim)))
			}
		})
	}
}

// The offline time of a rejoin is measured from when the node was last
// seen, even when leadership changed while it was down (the suspicion
// commits the last sighting), with or without its data directory.
func TestOfflineDurationSurvivesLeaderChange(t *testing.T) {
	for _, wiped := range []bool{false, true} {
		t.Run(fmt.Sprintf("wiped=%v", wiped), func(t *testing.T) {
			var l lives
			c := actortest.NewCluster(t, 3, l.watch(), actortest.Configure(func(_ int, o *clusterkit.Options) {
				o.HealthCheck = clusterkit.FastHealthCheck()
				o.HealthCheck.RemovalGrace = time.Minute // it stays a member while down
			}))
			c.WaitConverged(10 * time.Second)
			leader := c.WaitLeader(10 * time.Second)
			victim := (leader + 1) % 3
			other := 3 - leader - victim
			id := c.Node(victim).GetMyNodeID()
			killed := time.Now()
			c.Kill(victim)
			actortest.Eventually(t, 10*time.Second, id+" suspect", func() bool {
				for _, n := range c.Node(leader).GetCluster().Nodes {
					if n.ID == id {
						return n.Status == "suspect"
					}
				}
				return false
			})
			// Leadership moves while the node is down, long enough after the
			// kill that counting from the takeover is clearly short (the
			// downtime itself: no condition to wait for).
			time.Sleep(2 * time.Second)
			if _, err := c.Node(leader).TransferLeadership(context.Background(), c.Node(other).GetMyNodeID()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if wiped {
				c.Wipe(victim)
			}
			down := time.Since(killed)
			c.Restart(victim)
			// Start returned: the registration, which ends the offline time,
			// committed before now.
			upTo := time.Since(killed)
			actortest.Eventually(t, 10*time.Second, "the NodeRejoin", func() bool { return len(rejoinsOf(l.all(other), id)) == 1 })
			got := time.Duration(rejoinsOf(l.all(other), id)[0].GetOfflineDurationNanos())
			// At least the downtime, less the node's own record's resolution
			// (it ticks every second; the suspicion records the last answered
			// probe, 100 ms apart); at most until the rejoin committed.
			// Counting from the new leader's takeover would be ~2.5 s short.
			if got < down-1200*time.Millisecond || got > upTo {
				t.Fatalf("OfflineDuration %v for a downtime of %v (restarted by %v)", got.Round(time.Millisecond), down.Round(time.Millisecond), upTo.Round(time.Millisecond))
			}
			t.Logf("downtime %v, OfflineDuration %v", down.Round(time.Millisecond), got.Round(time.Millisecond))
		})
	}
}

// A stale process of an old life is fenced: while node-3 was cut off and
// removed, a new process with its ID joined; when the old one can talk
// again it stops claiming membership and says why, and the new one stays.
func TestStaleProcessIsFenced(t *testing.T) {
	c := actortest.NewCluster(t, 3, actortest.Configure(func(_ int, o *clusterkit.Options) {
		o.HealthCheck = clusterkit.FastHealthCheck()
	}))
	c.WaitConverged(10 * time.Second)
	if c.WaitLeader(10*time.Second) == 2 {
		c.Node(2).TransferLeadership(context.Background(), "")
		c.WaitLeader(10 * time.Second)
	}
	old := c.Node(2)
	c.Isolate(2)
	actortest.Eventually(t, 20*time.Second, "node-3 removed", func() bool { return incarnationOf(c.Node(0), "node-3") == 0 })

	o := clusterkit.DefaultOptions()
	actortest.FastTimings(&o)
	o.NodeID, o.HTTPAddr, o.Network = "node-3", "x3:7000", c.Network("x3")
	o.DataDir = filepath.Join(t.TempDir(), "node-3-again")
	o.JoinAddrs = []string{c.Address(0), c.Address(1)}
	o.HealthCheck = clusterkit.FastHealthCheck()
	o.Logger = slog.New(slog.DiscardHandler)
	replacement, err := clusterkit.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := replacement.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = replacement.Stop(context.Background()) })
	newIncarnation := incarnationOf(c.Node(0), "node-3")

	c.Heal()
	actortest.Eventually(t, 20*time.Second, "the old process fenced", func() bool { return old.HealthCheck().Membership == "fenced" })
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if h := old.HealthCheck(); h.Ready || h.Membership != "fenced" {
			t.Fatalf("old process: ready=%v membership=%q problems=%v", h.Ready, h.Membership, h.Problems)
		}
		if inc := incarnationOf(c.Node(0), "node-3"); inc != newIncarnation {
			t.Fatalf("node-3 is incarnation %d, want the new process's %d", inc, newIncarnation)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !replacement.HealthCheck().Ready {
		t.Fatalf("the new process is not ready: %v", replacement.HealthCheck().Problems)
	}
}
