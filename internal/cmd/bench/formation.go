package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/crashnet"
)

// formOnce starts n nodes at the same moment (node-1 bootstraps, the others
// are given every address to join through) and returns the time until one
// cluster's committed table places all of them, on every node.
func formOnce(n int) (time.Duration, error) {
	addrs := make([]string, n)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return 0, err
		}
		addrs[i] = a
	}
	c := &cluster{}
	defer c.stop()
	for i := range n {
		var join []string
		if i > 0 {
			join = addrs
		}
		nd, err := newNode(fmt.Sprintf("node-%d", i+1), addrs[i], join, settings{})
		if err != nil {
			return 0, err
		}
		c.nodes = append(c.nodes, nd)
	}
	start := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, nd := range c.nodes {
		wg.Go(func() { errs[i] = nd.ck.Start(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("start node-%d: %w", i+1, err)
		}
	}
	if err := waitFor(30*time.Second, fmt.Sprintf("%d nodes to form one cluster", n), func() bool { return converged(c.cks(), n) }); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// joinOnce starts a joiner next to c and returns the time until its Start
// returned (it holds the committed table), until the table that places it
// is committed on every node, and until it is a Raft voter (joiners start as
// non-voters and are promoted once healthy for VoterStabilization); then the
// joiner leaves again.
func joinOnce(c *cluster, id string) (ready, placed, voter time.Duration, err error) {
	nd, err := newNode(id, "", []string{c.nodes[0].addr}, c.s)
	if err != nil {
		return 0, 0, 0, err
	}
	defer nd.stop()
	start := time.Now()
	if err := nd.ck.Start(context.Background()); err != nil {
		return 0, 0, 0, fmt.Errorf("start %s: %w", id, err)
	}
	ready = time.Since(start)
	all := append(c.cks(), nd.ck)
	if err := waitFor(10*time.Second, id+"'s table", func() bool { return converged(all, len(all)) }); err != nil {
		return 0, 0, 0, err
	}
	placed = time.Since(start)
	if err := waitFor(30*time.Second, id+" to become a voter", func() bool { return slices.Contains(nd.ck.HealthCheck().VoterIDs, id) }); err != nil {
		return 0, 0, 0, err
	}
	voter = time.Since(start)
	if err := nd.ck.Leave(context.Background()); err != nil {
		return 0, 0, 0, fmt.Errorf("%s leave: %w", id, err)
	}
	if err := waitFor(10*time.Second, id+" to leave", func() bool { return converged(c.cks(), len(c.nodes)) }); err != nil {
		return 0, 0, 0, err
	}
	// The leader drops a departed node from Raft's configuration only after
	// a grace period; until then it still counts as a voter, so the next
	// trial waits for that (see settled).
	return ready, placed, voter, c.settled()
}

// restartOnce is one step of a rolling restart: a follower of three nodes
// (with data directories; failure detection would remove it only after a
// minute) stops, stays down for down, and restarts on its DataDir and
// address. It returns how long the restarted node's Start took.
func restartOnce(down time.Duration) (time.Duration, error) {
	c, err := startCluster(3, settings{dataDir: true, removalGrace: time.Minute})
	if err != nil {
		return 0, err
	}
	defer c.stop()
	leader, err := c.leader()
	if err != nil {
		return 0, err
	}
	victim := c.others(leader)[0]
	if err := victim.ck.Stop(context.Background()); err != nil {
		return 0, fmt.Errorf("stop %s: %w", victim.id, err)
	}
	time.Sleep(down) // the downtime itself, not a wait for a condition
	victim.net = &crashnet.Network{}
	o := options(victim.id, victim.addr, []string{leader.addr}, c.s)
	o.DataDir, o.Network = victim.dir, victim.net
	if victim.ck, err = clusterkit.New(o); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := victim.ck.Start(context.Background()); err != nil {
		return 0, fmt.Errorf("restart %s: %w", victim.id, err)
	}
	took := time.Since(start)
	return took, waitFor(10*time.Second, victim.id+"'s rejoin", func() bool { return converged(c.cks(), 3) })
}

func runFormation(cfg *config) (*section, error) {
	s := &section{
		title: "Formation and joins ([cluster])",
		intro: `Default options (Raft heartbeat and election timeouts 500 ms, rebalance debounce 100 ms). Formation: all
nodes call ` + "`Start`" + ` at the same moment, node-1 bootstraps and the others join through any address; the time ends
when every node applied one table that places all of them.`,
	}
	for _, f := range []struct{ n, trials int }{{3, cfg.formation3Trials}, {10, cfg.formation10}} {
		var took []time.Duration
		for range f.trials {
			d, err := formOnce(f.n)
			if err != nil {
				return nil, err
			}
			took = append(took, d)
		}
		r := row{name: fmt.Sprintf("%d simultaneous `Start`s → one cluster, table placing all", f.n), median: fmtMs(median(ms(took))),
			p99: fmtMs(p99(ms(took))), trials: fmt.Sprint(f.trials)}
		r.target, r.met = noTarget("[cluster]")
		s.rows = append(s.rows, r)
	}

	c, err := startCluster(2, settings{})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	var ready, placed, voter []time.Duration
	for i := range cfg.joinTrials {
		r, p, v, err := joinOnce(c, fmt.Sprintf("joiner-%d", i+1))
		if err != nil {
			return nil, err
		}
		ready, placed, voter = append(ready, r), append(placed, p), append(voter, v)
	}
	r := row{name: "join to ready: a third node's `Start` → it holds the committed table (`Start` returns)",
		median: fmtMs(median(ms(ready))), p99: fmtMs(p99(ms(ready))), trials: fmt.Sprint(len(ready))}
	r.target, r.met = targetLE(p99(ms(ready)), 500, "≤ 500 ms", "[cluster]")
	s.rows = append(s.rows, r)
	r = row{name: "… → the table that places it is committed everywhere (includes the 100 ms debounce)",
		median: fmtMs(median(ms(placed))), p99: fmtMs(p99(ms(placed))), trials: fmt.Sprint(len(placed))}
	r.target, r.met = noTarget("")
	s.rows = append(s.rows, r)
	r = row{name: fmt.Sprintf("… → it is a Raft voter (learner first: promoted once healthy for VoterStabilization %v)", clusterkit.DefaultVoterStabilization),
		median: fmtMs(median(ms(voter))), p99: fmtMs(p99(ms(voter))), trials: fmt.Sprint(len(voter))}
	r.target, r.met = noTarget("[identity]")
	s.rows = append(s.rows, r)
	var restarts []time.Duration
	for range cfg.rollingTrials {
		d, err := restartOnce(cfg.rollingDown)
		if err != nil {
			return nil, err
		}
		restarts = append(restarts, d)
	}
	r = row{name: fmt.Sprintf("rolling restart: a member down %v restarts on its DataDir → `Start` returns", cfg.rollingDown),
		median: fmtMs(median(ms(restarts))), p99: fmtMs(p99(ms(restarts))), trials: fmt.Sprint(len(restarts))}
	r.target, r.met = noTarget("")
	s.rows = append(s.rows, r)
	s.notes = append(s.notes, "Rolling restart: the leader re-adds the restarted member to Raft's configuration, which resets Raft's replication backoff to it (10 ms doubling, uncapped up to about 10 s); before that change the same restart after 8 s down took 2.6 s.")
	s.notes = append(s.notes, "Formation is dominated by the first election: a freshly bootstrapped node waits a randomised 500–1000 ms heartbeat timeout before it leads.")
	return s, nil
}
