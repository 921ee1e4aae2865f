package actortest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/messages"
)

// The fault suite: seeded random scenarios of partitions, one-way cuts,
// drops, delays, leader kills, restarts (also on a wiped data directory, and
// tried on another cluster's), joins, leaves, a leader cut off until it is
// removed, and ghost members (processes that answer pings but take no log),
// under a workload
// of ownership checks and subscribers, checking after every scenario that
//   - at most one primary was ever observed per (partition, epoch),
//   - epochs strictly increase whenever a partition's owners change,
//   - every live subscriber received every committed event once, in order,
//     with no gaps (all subscribers agree on every seq they both cover),
//   - after healing, every node converges to one table,
//   - every crashed node is removed within the detection budget, and no node
//     that stayed reachable is removed for failing health checks;
//   - a node restarted on a wiped data directory delivers no history (its
//     first event is its own NodeRejoin); a node started on another
//     cluster's data directory is refused (ErrClusterMismatch) and no node
//     of another cluster, nor a ghost, is ever a member or a voter;
//
// and, of a custom-data workload (clients writing, compare-and-setting and
// reading three keys on random live nodes with short timeouts), that
//   - no acknowledged write is lost, no write is applied twice, and a
//     compare-and-set that failed with ErrVersionMismatch changed nothing,
//   - every live node holds the same custom data after a barrier,
//   - the history is linearizable (porcupine; a check that cannot finish in
//     time is logged and skipped).
//
// CI runs a few scenarios; CLUSTERKIT_FAULT_SCENARIOS=300 runs more and
// CLUSTERKIT_FAULT_SEED=<n> starts from another seed (a failure names the
// seed that reproduces it).

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// suiteHealth detects crashes in about 2 s; probes wait 1 s, longer than the
// 400 ms round trips the suite's delays create.
var suiteHealth = clusterkit.HealthCheckConfig{Interval: 300 * time.Millisecond, Timeout: time.Second,
	FailureThreshold: 3, RemovalGrace: time.Second}

// removalAllowance is how long after a crash its removal may come: the
// detection budget, plus an election when the leader crashed, plus slack for
// the faults that may be active meanwhile.
func removalAllowance() time.Duration {
	return time.Duration(envInt("CLUSTERKIT_TIME_SCALE", 1)) * (2*suiteHealth.Budget() + 2*time.Second)
}

// convergeBudget is how long a cluster may take to converge after healing.
// The target is 2 s; CLUSTERKIT_TIME_SCALE stretches it on slow machines.
func convergeBudget() time.Duration {
	return time.Duration(envInt("CLUSTERKIT_TIME_SCALE", 1)) * 2 * time.Second
}

// handoffBudget is what the hand-off adds to convergence: a join or a
// failure moves tens of copies, at most suiteMovesPerNode into or out of a
// node at a time, each a 0-40 ms copy plus two committed entries.
func handoffBudget() time.Duration {
	return time.Duration(envInt("CLUSTERKIT_TIME_SCALE", 1)) * 8 * time.Second
}

func TestFaultScenarios(t *testing.T) {
	n := envInt("CLUSTERKIT_FAULT_SCENARIOS", 2) // two: the suite must finish within 6 minutes next to a busy core
	if testing.Short() {
		n = 1
	}
	base := int64(envInt("CLUSTERKIT_FAULT_SEED", 1))
	for k := range n {
		seed := base + int64(k)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runScenario(t, seed)
		})
	}
}

// recorder is a subscriber that keeps every event it receives.
type recorder struct {
	mu     sync.Mutex
	node   int
	events []proto.Message
}

func (r *recorder) receive(ctx actor.Context) {
	m, ok := ctx.Message().(proto.Message)
	if !ok {
		return
	}
	if rc, ok := m.(*messages.RebalanceComplete); ok { // the duration is local to each node
		rc = proto.Clone(rc).(*messages.RebalanceComplete)
		rc.DurationNanos = 0
		m = rc
	}
	r.mu.Lock()
	r.events = append(r.events, m)
	r.mu.Unlock()
}

// removedOnce reports whether the recorder's process was removed (it may
// have rejoined as a new life since: it did not see the entries in between).
func (r *recorder) removedOnce() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	self := fmt.Sprintf("node-%d", r.node+1)
	for _, e := range r.events {
		if l, ok := e.(*messages.NodeLeave); ok && l.GetNode().GetId() == self {
			return true
		}
	}
	return false
}

type seqd interface {
	GetIndex() uint64
	GetSub() uint32
}

func seqOf(m proto.Message) (uint64, uint32) { s := m.(seqd); return s.GetIndex(), s.GetSub() }

// world runs one scenario's cluster with its checkers.
type world struct {
	t         *testing.T
	c         *actortest.Cluster
	rng       *rand.Rand
	mu        sync.Mutex
	recorders []*recorder
	handoff   *handoffWatch
	primary   map[string]string // "partition/epoch" -> primary
	owners    map[string]string // "node/incarnation/partition" -> "epoch owners"
	problems  []string
	stop      chan struct{}
	sampler   sync.WaitGroup

	killedAt   map[int]time.Time // node -> when it was killed (while dead)
	removedAt  map[string]time.Time
	faultSince time.Time // start of the current run of partition-type faults
	longFault  bool      // a partition-type fault lasted longer than the health budget

	// identity: recorders of nodes restarted on a wiped data directory (their
	// node ID), and the IDs no member may ever have (ghosts)
	wiped  map[*recorder]string
	ghosts []string

	// the custom-data workload
	cd      *cdHistory
	guard   cdGuard // Kill and Leave wait for client operations on the node
	cdStop  chan struct{}
	cdOnce  sync.Once
	clients sync.WaitGroup
}

// cdClients is how many custom-data clients run during a scenario.
const cdClients = 3

// cdClient writes, compare-and-sets and reads custom data on random live
// nodes until stopCustomData.
func (w *world) cdClient(id int, seed int64) {
	defer w.clients.Done()
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(100+id)))
	n := 0
	for {
		select {
		case <-w.cdStop:
			return
		default:
		}
		definite := true
		if live := w.c.Live(); len(live) > 0 {
			i := live[rng.IntN(len(live))]
			key, roll := cdKeys[rng.IntN(len(cdKeys))], rng.IntN(10)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			w.guard.use(w.c, i, func(ck *clusterkit.ClusterKit) { definite = cdClientOp(ctx, w.cd, ck, id, &n, key, roll) })
			cancel()
		}
		pause := time.Duration(5+rng.IntN(10)) * time.Millisecond
		if !definite {
			pause = 50 * time.Millisecond
		}
		select {
		case <-w.cdStop:
			return
		case <-time.After(pause):
		}
	}
}

// stopCustomData stops the clients and waits for them.
func (w *world) stopCustomData() {
	w.cdOnce.Do(func() { close(w.cdStop) })
	w.clients.Wait()
}

// cdStreams turns the recorders' CustomDataChange events into event streams;
// cover lists those that may cover every write: recorders of the first
// nodes, subscribed before the first write, whose node still runs the same
// process.
func (w *world) cdStreams(first int) (all, cover []*cdStream) {
	w.mu.Lock()
	recs := slices.Clone(w.recorders)
	w.mu.Unlock()
	latest := map[int]*recorder{}
	for _, r := range recs {
		latest[r.node] = r
	}
	for k, r := range recs {
		s := &cdStream{Name: fmt.Sprintf("node-%d (recorder %d)", r.node+1, k+1)}
		r.mu.Lock()
		for _, e := range r.events {
			if cd, ok := e.(*messages.CustomDataChange); ok && !cd.GetDeleted() {
				s.evs = append(s.evs, cdEvent{cd.GetKey(), string(cd.GetValue()), cd.GetVersion()})
			}
		}
		r.mu.Unlock()
		all = append(all, s)
		if k < first && latest[r.node] == r && w.c.Alive(r.node) && !r.removedOnce() {
			cover = append(cover, s)
		}
	}
	return all, cover
}

// checkCustomData: after healing, every live node holds the same custom data,
// no acknowledged write is lost, and the history is linearizable.
func (w *world) checkCustomData(first int) string {
	final := cdFinalReads(w.t, w.c, w.cd, cdClients)
	if diff := cdSame(w.c, 5*time.Second); diff != "" {
		w.failf("the nodes hold different custom data after a barrier:\n%s", diff)
	}
	// Events are delivered asynchronously: let the streams catch up.
	var maxFinal uint64
	for _, f := range final {
		maxFinal = max(maxFinal, f.Version)
	}
	deadline := time.Now().Add(5 * time.Second)
	all, candidates := w.cdStreams(first)
	for cdCover(candidates, final, 0) == nil && len(candidates) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		all, candidates = w.cdStreams(first)
	}
	rep := w.cd.verify(final, all, cdCover(candidates, final, 0), 10*time.Second)
	for _, p := range rep.Problems {
		w.failf("custom data: %s", p)
	}
	if rep.Result == porcupine.Unknown {
		w.t.Logf("custom data: porcupine could not decide within its timeout; linearizability not checked")
	}
	return rep.String()
}

func (w *world) failf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) < 20 {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

// subscribe records node i's events from its first one on: it runs between
// New and Start of every start (actortest.Setup), so that a restarted node's
// own NodeRejoin is never delivered before its recorder exists.
func (w *world) subscribe(i int, ck *clusterkit.ClusterKit) {
	r := &recorder{node: i}
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(r.receive))
	if err := ck.Subscribe(pid); err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.recorders = append(w.recorders, r)
	w.mu.Unlock()
}

// sample is the ownership-check workload: it reads every live node's routing
// table and records who is primary of each (partition, epoch).
func (w *world) sample() {
	defer w.sampler.Done()
	tick := time.NewTicker(3 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		if live := w.c.Live(); len(live) > 0 {
			present := map[string]bool{}
			for _, n := range w.c.Node(live[0]).GetCluster().Nodes {
				present[n.ID] = true
			}
			w.mu.Lock()
			for _, g := range w.ghosts {
				if present[g] {
					w.problems = append(w.problems, fmt.Sprintf("ghost %s is a member", g))
				}
			}
			w.mu.Unlock()
			w.mu.Lock()
			for i, at := range w.killedAt {
				id := fmt.Sprintf("node-%d", i+1)
				if !present[id] && w.removedAt[id].IsZero() && time.Since(at) > 0 {
					w.removedAt[id] = time.Now()
				}
			}
			w.mu.Unlock()
		}
		for _, i := range w.c.Live() {
			ck := w.c.Node(i)
			self := ck.GetMyNodeID()
			// The read path agrees with itself: on an unchanged table,
			// IsPrimary matches the partition's primary.
			for _, key := range []string{"user:1", "user:2", "order:3"} {
				before := ck.TableChecksum()
				p, err := ck.GetPartition(key)
				if err != nil {
					continue
				}
				isPrimary := ck.IsPrimary(p)
				if ck.TableChecksum() == before && isPrimary != (p.PrimaryNode == self) {
					w.failf("node-%d: IsPrimary(%s) = %v, primary is %s", i+1, p.ID, isPrimary, p.PrimaryNode)
				}
			}
			cl := ck.GetCluster()
			var incarnation uint64
			for _, n := range cl.Nodes {
				if n.ID == self {
					incarnation = n.Incarnation
				}
			}
			for id, p := range cl.PartitionMap.Partitions {
				if p.PrimaryNode == "" {
					continue
				}
				owners := p.PrimaryNode + "," + strings.Join(p.ReplicaNodes, ",")
				w.mu.Lock()
				key := fmt.Sprintf("%s/%d", id, p.Epoch)
				if prev, ok := w.primary[key]; ok && prev != p.PrimaryNode {
					w.problems = append(w.problems, fmt.Sprintf("two primaries for %s epoch %d: %s and %s", id, p.Epoch, prev, p.PrimaryNode))
				}
				w.primary[key] = p.PrimaryNode
				nk := fmt.Sprintf("%d/%d/%s", i, incarnation, id)
				if prev, ok := w.owners[nk]; ok {
					var pe uint64
					var po string
					fmt.Sscanf(prev, "%d %s", &pe, &po)
					switch {
					case p.Epoch < pe:
						w.problems = append(w.problems, fmt.Sprintf("node-%d: %s epoch went back from %d to %d", i+1, id, pe, p.Epoch))
					case p.Epoch == pe && po != owners:
						w.problems = append(w.problems, fmt.Sprintf("node-%d: %s owners changed %s -> %s at the same epoch %d", i+1, id, po, owners, pe))
					}
				}
				w.owners[nk] = fmt.Sprintf("%d %s", p.Epoch, owners)
				w.mu.Unlock()
			}
		}
	}
}

// checkEvents: each subscriber's seqs strictly increase with contiguous
// sub-indexes, and any two subscribers hold identical events over the seqs
// they both cover.
func (w *world) checkEvents() {
	w.mu.Lock()
	recs := slices.Clone(w.recorders)
	w.mu.Unlock()
	type span struct {
		rec    *recorder
		events []proto.Message
		// left: the span ends with the entry that removed its node. A node
		// that is stopping may not deliver the rest of that entry's events
		// (a known limitation: Stop does not wait for the subscribers'
		// mailboxes), so there a prefix is enough.
		left bool
	}
	removedIn := func(r *recorder, evs []proto.Message) bool {
		self := fmt.Sprintf("node-%d", r.node+1)
		last := lastIndex(evs)
		for _, e := range between(evs, last, last) {
			if l, ok := e.(*messages.NodeLeave); ok && l.GetNode().GetId() == self {
				return true
			}
		}
		return false
	}
	var spans []span
	for _, r := range recs {
		r.mu.Lock()
		evs := slices.Clone(r.events)
		r.mu.Unlock()
		// A process removed and back as a new life delivered nothing in
		// between: each life is a span of its own.
		// A node cut off until it was removed may never apply its own
		// removal: it finds out and rejoins, and its new life begins with
		// its own NodeRejoin.
		self := fmt.Sprintf("node-%d", r.node+1)
		for k, e := range evs {
			if l, ok := e.(*messages.NodeLeave); ok && l.GetNode().GetId() == self {
				end := k + 1 // the rest of the removal's entry belongs to the first life
				for end < len(evs) && firstIndex(evs[end:]) == l.GetIndex() {
					end++
				}
				if end < len(evs) {
					spans = append(spans, span{r, evs[:end], true})
					evs = evs[end:]
				}
				break
			}
			if j, ok := e.(*messages.NodeRejoin); ok && j.GetNode().GetId() == self && k > 0 {
				start := k // the rejoin's whole entry belongs to the new life
				for start > 0 && lastIndex(evs[:start]) == j.GetIndex() {
					start--
				}
				if start > 0 {
					spans = append(spans, span{r, evs[:start], false})
					evs = evs[start:]
				}
				break
			}
		}
		for k := 1; k < len(evs); k++ {
			pi, ps := seqOf(evs[k-1])
			ci, cs := seqOf(evs[k])
			switch {
			case ci < pi || (ci == pi && cs != ps+1):
				w.failf("node-%d: event seq (%d,%d) after (%d,%d)", r.node+1, ci, cs, pi, ps)
			case ci > pi && cs != 0:
				w.failf("node-%d: events of entry %d start at sub %d (a gap)", r.node+1, ci, cs)
			}
		}
		spans = append(spans, span{r, evs, len(evs) > 0 && removedIn(r, evs)})
	}
	for a := range spans {
		for b := a + 1; b < len(spans); b++ {
			x, y := spans[a].events, spans[b].events
			if len(x) == 0 || len(y) == 0 {
				continue
			}
			lo := max(firstIndex(x), firstIndex(y))
			hi := min(lastIndex(x), lastIndex(y))
			xs, ys := between(x, lo, hi), between(y, lo, hi)
			if spans[a].left && lastIndex(x) == hi || spans[b].left && lastIndex(y) == hi {
				// The removal entry of a node that left: it may have learnt
				// of its removal before it applied the last entries (the
				// leader no longer replicates to it) and then delivers the
				// NodeLeave the log derives, and closes. Compare the entries
				// it applied in full, and the removal entry as a prefix.
				upTo := hi - 1
				for _, k := range []struct {
					left bool
					evs  []proto.Message
				}{{spans[a].left, x}, {spans[b].left, y}} {
					if k.left && lastIndex(k.evs) == hi {
						if before := between(k.evs, 0, hi-1); len(before) > 0 {
							upTo = min(upTo, lastIndex(before))
						} else {
							upTo = 0
						}
					}
				}
				xh, yh := between(x, hi, hi), between(y, hi, hi)
				n := min(len(xh), len(yh))
				xs, ys = append(between(x, lo, upTo), xh[:n]...), append(between(y, lo, upTo), yh[:n]...)
			}
			if len(xs) != len(ys) {
				w.failf("node-%d and node-%d delivered %d and %d events for entries %d..%d; first difference: %s", spans[a].rec.node+1, spans[b].rec.node+1, len(xs), len(ys), lo, hi, firstDifference(xs, ys))
				continue
			}
			for k := range xs {
				if !proto.Equal(xs[k], ys[k]) {
					w.failf("node-%d and node-%d differ at event %d:\n%v\n%v", spans[a].rec.node+1, spans[b].rec.node+1, k, xs[k], ys[k])
					break
				}
			}
		}
	}
}

// checkRemovals: a member removed for failing health checks must have
// crashed, unless a partition lasted longer than the detection budget.
func (w *world) checkRemovals(crashed map[string]bool) {
	w.mu.Lock()
	recs := slices.Clone(w.recorders)
	long := w.longFault
	w.mu.Unlock()
	for _, r := range recs {
		r.mu.Lock()
		evs := slices.Clone(r.events)
		r.mu.Unlock()
		for _, e := range evs {
			l, ok := e.(*messages.NodeLeave)
			if ok && l.GetReason() == "health_check_failure" && !crashed[l.GetNode().GetId()] && !long {
				w.failf("node-%d saw %s removed for failing health checks, but it never crashed", r.node+1, l.GetNode().GetId())
			}
		}
	}
}

// firstDifference describes where two event sequences part.
func firstDifference(xs, ys []proto.Message) string {
	for k := range min(len(xs), len(ys)) {
		if !proto.Equal(xs[k], ys[k]) {
			return fmt.Sprintf("event %d: %T %v | %T %v", k, xs[k], xs[k], ys[k], ys[k])
		}
	}
	if len(xs) > len(ys) {
		return fmt.Sprintf("only the first has event %d on: %T %v", len(ys), xs[len(ys)], xs[len(ys)])
	}
	return fmt.Sprintf("only the second has event %d on: %T %v", len(xs), ys[len(xs)], ys[len(xs)])
}

func firstIndex(evs []proto.Message) uint64 { i, _ := seqOf(evs[0]); return i }
func lastIndex(evs []proto.Message) uint64  { i, _ := seqOf(evs[len(evs)-1]); return i }

func between(evs []proto.Message, lo, hi uint64) []proto.Message {
	var out []proto.Message
	for _, e := range evs {
		if i, _ := seqOf(e); i >= lo && i <= hi {
			out = append(out, e)
		}
	}
	return out
}

func runScenario(t *testing.T, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	watch := newHandoffWatch(64, seed)
	// Half the scenarios keep a removed member's slots for a while
	// (ReplicaDelay): its primaries fail over at once, its replicas are
	// re-created only after the delay, or at once if it comes back.
	replicaDelay := []time.Duration{-1, time.Second}[rng.IntN(2)]
	w := &world{t: t, rng: rng, handoff: watch,
		primary: map[string]string{}, owners: map[string]string{}, stop: make(chan struct{}),
		killedAt: map[int]time.Time{}, removedAt: map[string]time.Time{}, wiped: map[*recorder]string{}}
	c := actortest.NewCluster(t, 5, actortest.Seed(seed), actortest.Configure(func(i int, o *clusterkit.Options) {
		watch.configure(i, o)
		o.ReplicaDelay = replicaDelay
		o.PartitionCount = 64
		o.ReplicationFactor = 3
		// Three zones: placement spreads every partition over them, and a
		// zone failure (fault 13) must leave every partition an owner.
		o.Zone = suiteZone(i)
		// Delays reach 200 ms one way (400 ms round trips): Raft's timeouts
		// must exceed that or elections never settle, as on a real WAN.
		o.Raft.HeartbeatTimeout = 500 * time.Millisecond
		o.Raft.ElectionTimeout = 500 * time.Millisecond
		o.Raft.LeaderLeaseTimeout = 250 * time.Millisecond
		o.HealthCheck = suiteHealth
	}), actortest.Setup(watch.setup), actortest.Setup(w.subscribe))
	w.c = c
	c.WaitConverged(10 * time.Second)
	w.sampler.Add(1)
	go w.sample()
	defer func() {
		close(w.stop)
		w.sampler.Wait()
	}()
	first := len(w.recorders)
	w.cd, w.cdStop = newCDHistory(), make(chan struct{})
	for k := range cdClients {
		w.clients.Add(1)
		go w.cdClient(k, seed)
	}
	defer w.stopCustomData() // before the cluster stops, also on a failure

	var log []string
	step := func(format string, args ...any) { log = append(log, fmt.Sprintf(format, args...)) }
	defer func() {
		if t.Failed() {
			t.Logf("seed %d reproduces this; steps:\n  %s", seed, strings.Join(log, "\n  "))
		}
	}()
	dead := -1
	partitioned := false
	crashedEver := map[string]bool{}
	partitionFault := func() {
		w.mu.Lock()
		if w.faultSince.IsZero() {
			w.faultSince = time.Now()
		}
		w.mu.Unlock()
	}
	healed := func() {
		w.mu.Lock()
		if !w.faultSince.IsZero() && time.Since(w.faultSince) > suiteHealth.Budget() {
			w.longFault = true
		}
		w.faultSince = time.Time{}
		w.mu.Unlock()
	}
	restartDead := func(wipe bool) {
		c.Heal()
		healed()
		partitioned = false
		w.mu.Lock()
		delete(w.killedAt, dead)
		delete(w.removedAt, fmt.Sprintf("node-%d", dead+1))
		w.mu.Unlock()
		if wipe {
			c.Wipe(dead)
		}
		c.Restart(dead)
		if wipe {
			w.mu.Lock()
			w.wiped[w.recorders[len(w.recorders)-1]] = fmt.Sprintf("node-%d", dead+1)
			w.mu.Unlock()
		}
		dead = -1
	}
	for range 3 + rng.IntN(4) {
		live := c.Live()
		switch k := rng.IntN(14); {
		case k == 0 && len(live) >= 5:
			a := live[rng.IntN(len(live))]
			c.Partition([]int{a})
			partitioned = true
			partitionFault()
			step("partition 1|%d: node-%d alone", len(live)-1, a+1)
		case k == 1 && len(live) >= 5:
			perm := rng.Perm(len(live))
			c.Partition([]int{live[perm[0]], live[perm[1]]})
			partitioned = true
			partitionFault()
			step("partition 2|%d: node-%d node-%d", len(live)-2, live[perm[0]]+1, live[perm[1]]+1)
		case k == 2:
			from, to := live[rng.IntN(len(live))], live[rng.IntN(len(live))]
			if from != to {
				c.PartitionOneWay([]int{from}, []int{to})
				partitioned = true
				partitionFault()
				step("one-way cut node-%d -> node-%d", from+1, to+1)
			}
		case k == 3:
			p := 0.05 + 0.15*rng.Float64()
			c.SetDropRate(p)
			step("drop rate %.2f", p)
		case k == 4:
			d := time.Duration(10+rng.IntN(190)) * time.Millisecond
			c.SetDelay(d, d/4)
			step("delay %v", d)
		case k == 5 && dead == -1 && !partitioned:
			leader := c.WaitLeader(10 * time.Second)
			w.guard.stopping(leader, func() { c.Kill(leader) })
			dead = leader
			crashedEver[c.Node(leader).GetMyNodeID()] = true
			w.mu.Lock()
			w.killedAt[leader] = time.Now()
			w.mu.Unlock()
			step("kill the leader node-%d", leader+1)
		case k == 6 && dead >= 0 && !partitioned:
			step("restart node-%d", dead+1)
			restartDead(false)
		case k == 9 && dead >= 0 && !partitioned:
			step("restart node-%d on a wiped data directory", dead+1)
			restartDead(true)
		case k == 10 && dead >= 0 && !partitioned:
			// The dead node's disk is swapped for another cluster's (same
			// cluster name, same node ID): it must refuse to start.
			w.foreignRestart(dead)
			step("node-%d refused another cluster's data directory", dead+1)
			restartDead(true)
		case k == 11 && len(live) >= 5 && !partitioned:
			// The leader stops answering (a SIGSTOP) for longer than the
			// removal budget: the others remove it; on healing it finds
			// out and rejoins as a new life.
			leader := c.WaitLeader(10 * time.Second)
			c.Partition([]int{leader})
			partitioned = true
			partitionFault()
			id := c.Node(leader).GetMyNodeID()
			deadline := time.Now().Add(removalAllowance())
			for time.Now().Before(deadline) && slices.ContainsFunc(c.Node(live[(slices.Index(live, leader)+1)%len(live)]).GetCluster().Nodes,
				func(n clusterkit.Node) bool { return n.ID == id }) {
				time.Sleep(20 * time.Millisecond)
			}
			step("leader node-%d cut off until removed", leader+1)
		case k == 12 && len(w.ghosts) < 2:
			id := fmt.Sprintf("ghost-%d", len(w.ghosts)+1)
			c.StartGhost(id, "")
			w.mu.Lock()
			w.ghosts = append(w.ghosts, id)
			w.mu.Unlock()
			step("%s asks to join", id)
		case k == 13 && dead == -1 && !partitioned && len(live) >= 5:
			// A zone fails: every live node of one zone crashes at once.
			// Nothing is restarted afterwards (dead = -2 also stops later
			// kills: two more crashes would leave no quorum).
			zone := suiteZone(live[rng.IntN(len(live))])
			var victims []int
			for _, i := range live {
				if suiteZone(i) == zone {
					victims = append(victims, i)
				}
			}
			if len(live)-len(victims) < 3 {
				break
			}
			before := c.Node(live[slices.IndexFunc(live, func(i int) bool { return suiteZone(i) != zone })]).GetCluster()
			for _, i := range victims {
				w.guard.stopping(i, func() { c.Kill(i) })
				crashedEver[c.Node(i).GetMyNodeID()] = true
				w.mu.Lock()
				w.killedAt[i] = time.Now()
				w.mu.Unlock()
			}
			dead = -2
			w.checkZoneLoss(before, zone)
			step("zone %s fails: %d nodes crash", zone, len(victims))
		case k == 7 && !partitioned && c.N() < 7:
			c.Heal()
			healed()
			i := c.AddNode()
			step("join node-%d", i+1)
		case k == 8 && !partitioned && len(live) > 4:
			leader := c.WaitLeader(10 * time.Second)
			for _, i := range live {
				if i != leader && i != dead {
					c.Heal()
					healed()
					var err error
					w.guard.stopping(i, func() { err = c.Leave(i) })
					if err != nil {
						step("leave node-%d failed: %v", i+1, err)
					} else {
						step("leave node-%d", i+1)
					}
					break
				}
			}
		default:
			c.Heal()
			healed()
			partitioned = false
			step("heal")
		}
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond) // let the fault act
	}
	c.Heal()
	healed()
	w.stopCustomData()
	step("heal (final)")
	healedAt := time.Now()
	// A crashed node must be removed within the allowance of its crash.
	w.mu.Lock()
	killed := maps.Clone(w.killedAt)
	w.mu.Unlock()
	for i, at := range killed {
		id := fmt.Sprintf("node-%d", i+1)
		for time.Since(at) < removalAllowance() {
			w.mu.Lock()
			done := !w.removedAt[id].IsZero()
			w.mu.Unlock()
			if done {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		w.mu.Lock()
		removed := w.removedAt[id]
		w.mu.Unlock()
		if removed.IsZero() {
			w.failf("%s crashed %v ago and is still a member", id, time.Since(at).Round(time.Millisecond))
		} else {
			step("%s removed %v after its crash", id, removed.Sub(at).Round(time.Millisecond))
		}
	}
	took := c.WaitConverged(convergeBudget() + handoffBudget() + max(replicaDelay, 0) + time.Since(healedAt))
	step("converged %v after healing", took.Round(time.Millisecond))
	// Liveness of the hand-off: every copy is acknowledged within 40 ms,
	// so every partition soon reaches its target.
	if !actortest.Poll(handoffBudget(), func() bool { return len(w.handoff.unsettled(c.Live())) == 0 }) {
		w.failf("hand-off not settled %v after convergence: %v", handoffBudget(), w.handoff.unsettled(c.Live()))
	}
	cdSummary := w.checkCustomData(first)
	// Quiesce: every live subscriber has caught up with the last event.
	deadline := time.Now().Add(10 * time.Second)
	for !w.caughtUp() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.checkEvents()
	w.checkRemovals(crashedEver)
	w.checkIdentity()
	hv := w.handoff.problems()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) > 0 || len(hv) > 0 {
		t.Fatalf("invariants broken:\n  %s\nhand-off:\n  %s\ncustom data: %s; hand-off: %s", strings.Join(w.problems, "\n  "), strings.Join(hv, "\n  "), cdSummary, w.handoff.summary())
	}
	lines, levels := c.LogStats()
	t.Logf("seed %d: converged %v after healing; %d (partition, epoch) pairs observed; hand-off (ReplicaDelay %s): %s; custom data: %s; log lines checked so far %d %v; steps: %s",
		seed, took.Round(time.Millisecond), len(w.primary), delayName(replicaDelay), w.handoff.summary(), cdSummary, lines, levels, strings.Join(log, "; "))
}

// foreignRestart swaps the data directory of the dead node i for the one
// of the same node ID in another cluster (same name), and checks that the
// node refuses to start, naming both cluster IDs.
func (w *world) foreignRestart(i int) {
	id := fmt.Sprintf("node-%d", i+1)
	other := actortest.NewCluster(w.t, 1, actortest.NoLeakCheck(), actortest.Configure(func(_ int, o *clusterkit.Options) { o.NodeID = id }))
	other.WaitConverged(10 * time.Second)
	theirs, ours := other.Node(0).ClusterID(), w.c.Node(w.c.Live()[0]).ClusterID()
	other.Stop(0)
	if err := os.RemoveAll(w.c.DataDir(i)); err != nil {
		w.t.Fatal(err)
	}
	if err := os.CopyFS(w.c.DataDir(i), os.DirFS(other.DataDir(0))); err != nil {
		w.t.Fatal(err)
	}
	err := w.c.TryRestart(i)
	// The refused start had its recorder too (Setup): it is no life of
	// this cluster.
	w.mu.Lock()
	if n := len(w.recorders); n > 0 && w.recorders[n-1].node == i {
		w.recorders = w.recorders[:n-1]
	}
	w.mu.Unlock()
	if !errors.Is(err, clusterkit.ErrClusterMismatch) || !strings.Contains(err.Error(), theirs) || !strings.Contains(err.Error(), ours) {
		w.failf("%s started on another cluster's data directory: %v", id, err)
	}
}

// checkIdentity: a node restarted on a wiped data directory delivered no
// history, and no ghost or foreign node is a member or a voter anywhere.
func (w *world) checkIdentity() {
	w.mu.Lock()
	wiped := maps.Clone(w.wiped)
	ghosts := slices.Clone(w.ghosts)
	w.mu.Unlock()
	for r, id := range wiped {
		evs := r.snapshot()
		if len(evs) == 0 {
			continue // it died again before its rejoin was delivered
		}
		if rj, ok := evs[0].(*messages.NodeRejoin); !ok || rj.GetNode().GetId() != id {
			w.failf("%s restarted on a wiped data directory: first event %T, not its own NodeRejoin", id, evs[0])
		}
	}
	known := map[string]bool{}
	for i := range w.c.N() {
		known[fmt.Sprintf("node-%d", i+1)] = true
	}
	for _, i := range w.c.Live() {
		h := w.c.Node(i).HealthCheck()
		for _, id := range h.VoterIDs {
			if !known[id] {
				w.failf("node-%d: %s is a voter", i+1, id)
			}
		}
		for _, id := range h.NonVoterIDs {
			// A ghost's admission adds it for the moment of the log proof.
			if !known[id] && !slices.Contains(ghosts, id) {
				w.failf("node-%d: %s is in Raft's configuration", i+1, id)
			}
		}
		if h.ClusterID != w.c.Node(w.c.Live()[0]).ClusterID() {
			w.failf("node-%d belongs to cluster %s", i+1, h.ClusterID)
		}
	}
}

// caughtUp: the latest recorder of every live node ends at the same seq.
func (w *world) caughtUp() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	latest := map[int]*recorder{}
	for _, r := range w.recorders {
		latest[r.node] = r
	}
	var last uint64
	first := true
	for _, i := range w.c.Live() {
		r := latest[i]
		r.mu.Lock()
		n := len(r.events)
		var idx uint64
		if n > 0 {
			idx, _ = seqOf(r.events[n-1])
		}
		r.mu.Unlock()
		if first {
			last, first = idx, false
		} else if idx != last {
			return false
		}
	}
	return true
}

// suiteZone is node i's zone in the fault suite: three zones, round robin.
func suiteZone(i int) string { return fmt.Sprintf("z%d", i%3) }

// checkZoneLoss checks, on the table c held just before zone failed, that
// no partition had every owner in that zone (zones >= RF), and that when no
// hand-off was in progress each kept a ready owner elsewhere.
func (w *world) checkZoneLoss(c *clusterkit.Cluster, zone string) {
	zoneOf := map[string]string{}
	for _, n := range c.Nodes {
		zoneOf[n.ID] = n.Zone
	}
	zones := map[string]bool{}
	for _, z := range zoneOf {
		zones[z] = true
	}
	if len(zones) < 3 {
		return // a leave emptied a zone: fewer zones than RF
	}
	for id, p := range c.PartitionMap.Partitions {
		elsewhere, ready := 0, 0
		for _, o := range p.Owners {
			if zoneOf[o.ID] != zone {
				elsewhere++
				if o.State == clusterkit.OwnerReady {
					ready++
				}
			}
		}
		if elsewhere == 0 {
			w.failf("zone %s failed: %s had every owner there: %v", zone, id, p.Owners)
		}
		if ready == 0 && slices.ContainsFunc(p.Owners, func(o clusterkit.PartitionOwner) bool { return o.State == clusterkit.OwnerReady }) && settled(c) {
			w.failf("zone %s failed: %s kept no ready owner: %v", zone, id, p.Owners)
		}
	}
}

// settled reports whether no owner in c is loading.
func settled(c *clusterkit.Cluster) bool {
	for _, p := range c.PartitionMap.Partitions {
		for _, o := range p.Owners {
			if o.State != clusterkit.OwnerReady {
				return false
			}
		}
	}
	return true
}
