package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/crashnet"
)

// The hand-off benchmark's cluster: 5 nodes, 256 partitions, the default
// replication factor, every node acknowledging its loads after a copy of
// handoffCopy.
const (
	handoffNodes      = 5
	handoffPartitions = 256
	handoffCopy       = 10 * time.Millisecond
	// handoffReplicaDelay is shorter than DefaultReplicaDelay (30 s) to
	// keep the run short; it only has to outlast the removal and the
	// restart.
	handoffReplicaDelay = 6 * time.Second
	// handoffSettle bounds every wait for a settled table.
	handoffSettle = 90 * time.Second
)

// load is one OnPartitionLoad call.
type load struct {
	node string
	at   time.Time
	// initial: the partition's first assignment (no data anywhere yet);
	// noSource: no live node had the data. Neither copies anything.
	initial, noSource bool
}

// loadLog records the OnPartitionLoad calls of every node of a cluster.
type loadLog struct {
	mu    sync.Mutex
	loads []load
}

// attach registers n's load callback: it records the call, copies (sleeps
// handoffCopy) when there is data to copy, and returns nil, which
// acknowledges the load (the owner becomes ready). Call it before Start.
func (l *loadLog) attach(n *node) {
	id := n.id
	n.ck.OnPartitionLoad(func(e *clusterkit.PartitionChangeEvent) error {
		rec := load{node: id, at: time.Now(), initial: e.Initial, noSource: e.NoLiveSource}
		l.mu.Lock()
		l.loads = append(l.loads, rec)
		l.mu.Unlock()
		if !rec.initial && !rec.noSource {
			time.Sleep(handoffCopy) // the copy
		}
		return nil
	})
}

// count returns the loads (initial ones excepted) that started in
// [from, to] on the nodes that on accepts, and how many of them had no
// live source.
func (l *loadLog) count(from, to time.Time, on func(string) bool) (loads, noSource int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.loads {
		if r.initial || r.at.Before(from) || r.at.After(to) || !on(r.node) {
			continue
		}
		loads++
		if r.noSource {
			noSource++
		}
	}
	return loads, noSource
}

// table is a committed partition table: partition → owners, primary first.
type table map[string][]string

func tableOf(ck *clusterkit.ClusterKit) table {
	t := table{}
	if pm := ck.GetCluster().PartitionMap; pm != nil {
		for id, p := range pm.Partitions {
			t[id] = append([]string{p.PrimaryNode}, p.ReplicaNodes...)
		}
	}
	return t
}

// changes counts the owner slots of after that before did not have (the
// copies a hand-off from before to after makes) and the partitions whose
// primary differs.
func changes(before, after table) (moves, primaries int) {
	for id, owners := range after {
		for _, o := range owners {
			if !slices.Contains(before[id], o) {
				moves++
			}
		}
		if len(owners) > 0 && (len(before[id]) == 0 || before[id][0] != owners[0]) {
			primaries++
		}
	}
	return moves, primaries
}

// slotsOf returns the partitions t places on node id.
func slotsOf(t table, id string) map[string]bool {
	out := map[string]bool{}
	for p, owners := range t {
		if slices.Contains(owners, id) {
			out[p] = true
		}
	}
	return out
}

// settledWhy returns "" when the nodes agree on one table (equal
// checksums) that places exactly members, with rf owners per partition, all
// of them ready, and no node's PlanRebalance plans a move or waits for a
// copy (no partition has a target); otherwise what is still missing.
func settledWhy(nodes []*node, members []string, rf int) string {
	sum := nodes[0].ck.TableChecksum()
	for _, n := range nodes[1:] {
		if n.ck.TableChecksum() != sum {
			return fmt.Sprintf("the table checksums of %s and %s differ", nodes[0].id, n.id)
		}
	}
	c := nodes[0].ck.GetCluster()
	if len(c.Nodes) != len(members) {
		return fmt.Sprintf("%d members, want %d", len(c.Nodes), len(members))
	}
	for _, m := range c.Nodes {
		if !slices.Contains(members, m.ID) {
			return fmt.Sprintf("member %s is not one of %v", m.ID, members)
		}
	}
	if c.PartitionMap == nil || len(c.PartitionMap.Partitions) != handoffPartitions {
		return "no complete table"
	}
	slots := map[string]int{}
	for id, p := range c.PartitionMap.Partitions {
		if len(p.Owners) != rf {
			return fmt.Sprintf("%s has %d owners, want %d", id, len(p.Owners), rf)
		}
		for _, o := range p.Owners {
			if o.State != clusterkit.OwnerReady {
				return fmt.Sprintf("%s: owner %s is %s", id, o.ID, o.State)
			}
			slots[o.ID]++
		}
	}
	for _, m := range members {
		if slots[m] == 0 {
			return m + " owns no partition"
		}
	}
	for _, n := range nodes {
		p, err := n.ck.PlanRebalance()
		if err != nil {
			return fmt.Sprintf("%s: PlanRebalance: %v", n.id, err)
		}
		if len(p.Partitions) > 0 || p.Pending > 0 {
			return fmt.Sprintf("%s: PlanRebalance has %d partitions to change, %d copies pending", n.id, len(p.Partitions), p.Pending)
		}
	}
	return ""
}

// every limits cond to one evaluation per d (false in between): an
// expensive condition polled by waitFor must not take a core from the nodes
// it measures. It adds at most d to a measured time.
func every(d time.Duration, cond func() bool) func() bool {
	var last time.Time
	return func() bool {
		if time.Since(last) < d {
			return false
		}
		last = time.Now()
		return cond()
	}
}

// waitSettled waits (bounded) until settledWhy holds, checking every 5 ms.
func waitSettled(nodes []*node, members []string, what string) error {
	why := "not checked yet"
	err := waitFor(handoffSettle, what, every(5*time.Millisecond, func() bool {
		why = settledWhy(nodes, members, clusterkit.DefaultReplicationFactor)
		return why == ""
	}))
	if err != nil {
		return fmt.Errorf("%w (still: %s)", err, why)
	}
	return nil
}

func (c *cluster) ids() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.id
	}
	return out
}

// handoffCluster starts the 5 nodes with s (hand-off on, 256 partitions,
// data directories, every load recorded in the returned log) and waits
// until their table is settled.
func handoffCluster(s settings) (*cluster, *loadLog, error) {
	log := &loadLog{}
	s.partitions, s.handoff, s.dataDir, s.prepare = handoffPartitions, true, true, log.attach
	c, err := startCluster(handoffNodes, s)
	if err != nil {
		return nil, nil, err
	}
	if err := waitSettled(c.nodes, c.ids(), fmt.Sprintf("the %d nodes' table to settle", handoffNodes)); err != nil {
		c.stop()
		return nil, nil, err
	}
	return c, log, nil
}

// joined is one join's result.
type joined struct {
	took                       time.Duration
	onJoiner, elsewhere, noSrc int
	moves, primaries           int
}

// handoffJoinOnce starts a sixth node next to the settled five of c and
// returns the time from its Start until every node's table is settled with
// it placed (every move done, every owner ready), with the loads on it and
// on the others meanwhile and the table's changes; then it leaves, and the
// five settle again.
func handoffJoinOnce(c *cluster, log *loadLog, id string) (j joined, err error) {
	members := c.ids()
	before := tableOf(c.nodes[0].ck)
	nd, err := newNode(id, "", []string{c.nodes[0].addr}, c.s)
	if err != nil {
		return j, err
	}
	defer nd.stop()
	start := time.Now()
	if err := nd.ck.Start(context.Background()); err != nil {
		return j, fmt.Errorf("start %s: %w", id, err)
	}
	if err := waitSettled(append(slices.Clone(c.nodes), nd), append(slices.Clone(members), id), id+"'s join to settle"); err != nil {
		return j, err
	}
	j.took = time.Since(start)
	end := time.Now()
	j.moves, j.primaries = changes(before, tableOf(nd.ck))
	var n1, n2 int
	j.onJoiner, n1 = log.count(start, end, func(n string) bool { return n == id })
	j.elsewhere, n2 = log.count(start, end, func(n string) bool { return n != id })
	j.noSrc = n1 + n2
	if err := nd.ck.Leave(context.Background()); err != nil {
		return j, fmt.Errorf("%s leave: %w", id, err)
	}
	if err := waitSettled(c.nodes, members, id+"'s departure to settle"); err != nil {
		return j, err
	}
	return j, c.settled()
}

// away is one crash-and-return's result.
type away struct {
	// took: the restarted node's Start → the table settled with it back.
	took time.Duration
	// copies to the survivors while it was away and after it came back;
	// loads on the returning node itself.
	whileAway, afterBack, onReturning, noSrc int
	// slots it held before the crash, and how many of them it holds after.
	held, kept int
	// partitions whose primary differs from before the crash.
	primaries int
}

// handoffAwayOnce crashes a follower of c (settled), waits until failure
// detection removed it, restarts it on its data directory and address back
// after the removal, and waits until the table is settled with it back.
func handoffAwayOnce(c *cluster, log *loadLog, back time.Duration) (a away, err error) {
	leader, err := c.leader()
	if err != nil {
		return a, err
	}
	victim := c.others(leader)[len(c.nodes)-2]
	survivors := c.others(victim)
	members := c.ids()
	before := tableOf(leader.ck)
	a.held = len(slotsOf(before, victim.id))

	crashed := time.Now()
	victim.crash()
	// Stop reclaims the crashed node's goroutines and its data directory's
	// lock (its drain fails: it has no network), while the others detect.
	stopped := make(chan error, 1)
	go func() { stopped <- victim.ck.Stop(context.Background()) }()
	removedErr := waitFor(30*time.Second, victim.id+"'s removal by failure detection", every(time.Millisecond, func() bool {
		for _, n := range survivors {
			for _, m := range n.ck.GetCluster().Nodes {
				if m.ID == victim.id {
					return false
				}
			}
		}
		return true
	}))
	removed := time.Now()
	select {
	case <-stopped: // an error only says that its drain failed: it has no network
	case <-time.After(30 * time.Second):
		return a, fmt.Errorf("%w: the crashed %s's Stop did not return within 30 s", errTimeout, victim.id)
	}
	if removedErr != nil {
		return a, removedErr
	}
	wait := time.Until(removed.Add(back))
	if wait < 0 {
		return a, fmt.Errorf("the crashed %s's Stop returned %v after its removal, later than its return was due (%v)", victim.id, -wait+back, back)
	}
	time.Sleep(wait) // the downtime itself, not a wait for a condition

	nw := &crashnet.Network{}
	o := options(victim.id, victim.addr, []string{leader.addr}, c.s)
	o.DataDir, o.Network = victim.dir, nw
	ck, err := clusterkit.New(o)
	if err != nil {
		return a, fmt.Errorf("restart %s: %w", victim.id, err)
	}
	victim.net, victim.ck = nw, ck
	log.attach(victim)
	restarted := time.Now()
	if err := victim.ck.Start(context.Background()); err != nil {
		return a, fmt.Errorf("restart %s: %w", victim.id, err)
	}
	if err := waitSettled(c.nodes, members, victim.id+"'s return to settle"); err != nil {
		return a, err
	}
	a.took = time.Since(restarted)
	end := time.Now()
	after := tableOf(victim.ck)
	isSurvivor := func(n string) bool { return n != victim.id }
	var n1, n2, n3 int
	a.whileAway, n1 = log.count(crashed, restarted, isSurvivor)
	a.afterBack, n2 = log.count(restarted, end, isSurvivor)
	a.onReturning, n3 = log.count(restarted, end, func(n string) bool { return n == victim.id })
	a.noSrc = n1 + n2 + n3
	for p := range slotsOf(after, victim.id) {
		if slices.Contains(before[p], victim.id) {
			a.kept++
		}
	}
	_, a.primaries = changes(before, after)
	// The next trial starts from the same state: the returned node is a
	// voter again (it rejoined as a non-voter) and Raft's configuration
	// lists exactly the members.
	if err := waitFor(30*time.Second, fmt.Sprintf("%d voters again", handoffNodes), func() bool {
		l, err := c.leader()
		return err == nil && l.ck.HealthCheck().Voters == handoffNodes
	}); err != nil {
		return a, err
	}
	return a, c.settled()
}

func runHandoff(cfg *config) (*section, error) {
	back := handoffReplicaDelay / 2
	s := &section{
		title: "Partition hand-off ([handoff])",
		intro: fmt.Sprintf(`5 nodes, %d partitions, replication factor %d (the default), `+"`Options.Handoff`"+` on every node, data
directories (raft-wal, fsync), default health check. Every node registers an `+"`OnPartitionLoad`"+` callback that sleeps
%v (the copy) and returns nil, which acknowledges the load (the owner becomes ready; loads of a first assignment or
without a live source copy nothing and do not sleep). Callbacks run in their own actor, one call at a time: a
node copies one partition at a time, so a joiner's copies take at least copies × %v. Join: a sixth node's
`+"`Start`"+` until the table is settled on all six (same `+"`TableChecksum`"+`, every owner ready, `+"`PlanRebalance`"+`
empty with nothing pending on every node), then it leaves again. Default throttle: `+"`MaxMovesPerNode`"+` %d,
`+"`MaxMovesInFlightFraction`"+` %v (%d in flight); none: `+"`MaxMovesPerNode`"+` −1, `+"`MaxMovesInFlight`"+` 0, fraction −1.
Return: a follower crashes, failure detection removes it (about 3 s), and it restarts on its data directory %v
after the removal, half of `+"`ReplicaDelay`"+` %v (shorter than the default %v to keep the run short); the
baseline is the same with `+"`ReplicaDelay`"+` −1 (re-replicate at once), default throttle in both.`,
			handoffPartitions, clusterkit.DefaultReplicationFactor, handoffCopy, handoffCopy,
			clusterkit.DefaultMaxMovesPerNode, clusterkit.DefaultMaxMovesInFlightFraction,
			int(math.Ceil(clusterkit.DefaultMaxMovesInFlightFraction*handoffPartitions)), back, handoffReplicaDelay, clusterkit.DefaultReplicaDelay),
	}

	// One cluster per setting; the one with the default throttle and
	// ReplicaDelay serves both the throttled joins and the returns.
	measure := func(st settings, name string, joinTrials, awayTrials int) ([]joined, []away, error) {
		c, log, err := handoffCluster(st)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		defer c.stop()
		var js []joined
		for i := range joinTrials {
			j, err := handoffJoinOnce(c, log, fmt.Sprintf("joiner-%d", i+1))
			if err != nil {
				return nil, nil, fmt.Errorf("%s, join: %w", name, err)
			}
			js = append(js, j)
		}
		var as []away
		for range awayTrials {
			a, err := handoffAwayOnce(c, log, back)
			if err != nil {
				return nil, nil, fmt.Errorf("%s, return: %w", name, err)
			}
			as = append(as, a)
		}
		return js, as, nil
	}
	throttled, kept, err := measure(settings{replicaDelay: handoffReplicaDelay}, "default throttle, ReplicaDelay", cfg.handoffJoinTrials, cfg.handoffAwayTrials)
	if err != nil {
		return nil, err
	}
	free, _, err := measure(settings{replicaDelay: handoffReplicaDelay, unthrottled: true}, "no throttle", cfg.handoffJoinTrials, 0)
	if err != nil {
		return nil, err
	}
	_, off, err := measure(settings{replicaDelay: -1}, "ReplicaDelay off", 0, cfg.handoffAwayTrials)
	if err != nil {
		return nil, err
	}

	joinTimes := func(js []joined) []float64 {
		var d []time.Duration
		for _, j := range js {
			d = append(d, j.took)
		}
		return ms(d)
	}
	tT, tF := joinTimes(throttled), joinTimes(free)
	r := row{name: fmt.Sprintf("join 5 → 6: `Start` → every move done, every owner ready, on all 6; default throttle (%d per node)", clusterkit.DefaultMaxMovesPerNode),
		median: fmtMs(median(tT)), p99: fmtMs(p99(tT)), trials: fmt.Sprint(len(tT)),
		baseline: fmtMs(median(tF)) + " (no throttle)", ratio: fmtRatio(median(tT)/median(tF)) + " (default ÷ none)"}
	r.target, r.met = noTarget("[handoff]")
	s.rows = append(s.rows, r)
	r = row{name: "… no throttle", median: fmtMs(median(tF)), p99: fmtMs(p99(tF)), trials: fmt.Sprint(len(tF))}
	r.target, r.met = noTarget("[handoff]")
	s.rows = append(s.rows, r)
	all := append(slices.Clone(throttled), free...)
	count := func(name string, f func(joined) int) {
		var xs []float64
		for _, j := range all {
			xs = append(xs, float64(f(j)))
		}
		r := row{name: name, median: fmt.Sprint(median(xs)), p99: fmt.Sprint(p99(xs)), trials: fmt.Sprint(len(xs))}
		r.target, r.met = noTarget("")
		s.rows = append(s.rows, r)
	}
	count("… copies per join loaded on the joiner (both throttles)", func(j joined) int { return j.onJoiner })
	count("… copies per join loaded on the five others", func(j joined) int { return j.elsewhere })
	count("… primary changes per join", func(j joined) int { return j.primaries })

	sum := func(as []away, f func(away) int) []float64 {
		var xs []float64
		for _, a := range as {
			xs = append(xs, float64(f(a)))
		}
		return xs
	}
	toOthers := func(a away) int { return a.whileAway + a.afterBack }
	cK, cO := sum(kept, toOthers), sum(off, toOthers)
	r = row{name: fmt.Sprintf("a follower crashes, is removed, restarts %v later (`ReplicaDelay` %v): copies to the other nodes", back, handoffReplicaDelay),
		median: fmt.Sprint(median(cK)), p99: fmt.Sprint(p99(cK)), trials: fmt.Sprint(len(cK)),
		baseline: fmt.Sprint(median(cO)) + " (`ReplicaDelay` off)"}
	r.target, r.met = targetLE(p99(cK), 0, "0 moves", "[handoff]")
	s.rows = append(s.rows, r)
	lK, lO := sum(kept, func(a away) int { return a.onReturning }), sum(off, func(a away) int { return a.onReturning })
	r = row{name: "… loads on the returning node (it reloads every slot it holds)", median: fmt.Sprint(median(lK)), p99: fmt.Sprint(p99(lK)),
		trials: fmt.Sprint(len(lK)), baseline: fmt.Sprint(median(lO)) + " (off)"}
	r.target, r.met = noTarget("")
	s.rows = append(s.rows, r)
	var dK, dO []time.Duration
	for _, a := range kept {
		dK = append(dK, a.took)
	}
	for _, a := range off {
		dO = append(dO, a.took)
	}
	tK, tO := ms(dK), ms(dO)
	r = row{name: "… its restarted `Start` → table settled with it back", median: fmtMs(median(tK)), p99: fmtMs(p99(tK)), trials: fmt.Sprint(len(tK)),
		baseline: fmtMs(median(tO)) + " (off)", ratio: fmtRatio(median(tK)/median(tO)) + " (delay ÷ off)"}
	r.target, r.met = noTarget("[handoff]")
	s.rows = append(s.rows, r)
	pK, pO := sum(kept, func(a away) int { return a.primaries }), sum(off, func(a away) int { return a.primaries })
	r = row{name: "… primary changes against the table before the crash", median: fmt.Sprint(median(pK)), p99: fmt.Sprint(p99(pK)),
		trials: fmt.Sprint(len(pK)), baseline: fmt.Sprint(median(pO)) + " (off)"}
	r.target, r.met = noTarget("")
	s.rows = append(s.rows, r)

	var notes []string
	for _, set := range []struct {
		name string
		as   []away
	}{{fmt.Sprintf("ReplicaDelay %v", handoffReplicaDelay), kept}, {"ReplicaDelay off", off}} {
		for i, a := range set.as {
			notes = append(notes, fmt.Sprintf("%s, trial %d: copies to the others %d while it was away + %d after it came back; %d loads on it; it took back %d of the %d slots it held; %d primaries differ from before the crash",
				set.name, i+1, a.whileAway, a.afterBack, a.onReturning, a.kept, a.held, a.primaries))
		}
	}
	noSrc := 0
	for _, j := range all {
		noSrc += j.noSrc
		if j.moves != j.onJoiner+j.elsewhere {
			s.notes = append(s.notes, fmt.Sprintf("A join's table gained %d owner slots but %d loads were made.", j.moves, j.onJoiner+j.elsewhere))
		}
	}
	for _, a := range append(slices.Clone(kept), off...) {
		noSrc += a.noSrc
	}
	if noSrc > 0 {
		s.notes = append(s.notes, fmt.Sprintf("%d loads had no live source (`NoLiveSource`): data was lost.", noSrc))
	}
	s.notes = append(s.notes, "Loads counted: every `OnPartitionLoad` call on any node from the joiner's `Start` (from the crash, for a return) until the table settled, a first assignment's excepted.")
	s.notes = append(s.notes, "The returning node rejoins after a restart, so it reloads every slot it holds (docs/partitioning.md): with `ReplicaDelay` those are exactly the slots it held, and no copy goes to another node; an application whose data survived the restart can acknowledge those loads at once. Without the delay its slots are first re-created on the others, then it is placed again as a new owner.")
	s.notes = append(s.notes, notes...)
	return s, nil
}
