package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/httpgw/client"
)

// scalePartitions and scaleRF are the [scale] issue's table: 1,024
// partitions, three copies each.
const (
	scalePartitions = 1024
	scaleRF         = 3
)

// scaleResult is one size's figures.
type scaleResult struct {
	n int
	// started: the members' simultaneous Starts → the last returned;
	// formed: → every in-process member applied one table that places all
	// n; voters: → 5 voters.
	started, formed, voters time.Duration
	// leaderIdle: the leader process's CPU, % of one core, at rest;
	// membersIdle: the other members' CPU together (one process), and
	// leaderRebalance: the leader's CPU from the crash to the end of the
	// rebalance.
	leaderIdle, membersIdle, leaderRebalance float64
	heapPerNode                              float64 // MiB, heap after GC ÷ in-process members
	goroutinesPerNode                        float64
	leaderRSS                                float64 // MiB
	// leaveFirst/leaveMedian/leaveLast: from a member's crash to NodeLeave
	// on the first, median and last of the survivors; rebalanced: → every
	// partition has RF live owners again, on every survivor.
	leaveFirst, leaveMedian, leaveLast, rebalanced time.Duration
	stillLeader                                    bool
	// terms: the elections during formation (Raft terms after the first).
	terms uint64
}

// scaleOnce runs one cluster of n members: the leader is a process of its
// own (examples/node, bootstrapping with 1,024 partitions), so that its CPU
// is its own; the n-1 others run in this process, start at the same moment
// and join through it. Default options otherwise (Raft heartbeat and
// election 500 ms, MaxVoters 5, the default failure detection).
func scaleOnce(bin string, n int, window time.Duration) (*scaleResult, error) {
	res := &scaleResult{n: n}
	lp, err := startProc(bin, "node-1", "", "-partitions", fmt.Sprint(scalePartitions),
		"-replication-factor", fmt.Sprint(scaleRF), "-max-voters", fmt.Sprint(clusterkit.DefaultMaxVoters))
	if err != nil {
		return nil, err
	}
	defer lp.stop()
	leaderAPI, err := client.New("http://"+lp.addr, client.WithHTTPClient(probeClient))
	if err != nil {
		return nil, err
	}
	base := heapAfterGC()
	goBase := runtime.NumGoroutine()

	// NodeLeave times, per observer, of every departed member.
	var mu sync.Mutex
	left := map[string]map[string]time.Time{} // departed → observer → when
	s := settings{startTimeout: 5 * time.Minute, prepare: func(nd *node) {
		nd.ck.OnNodeLeave(func(e *clusterkit.NodeLeaveEvent) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if left[e.Node.ID] == nil {
				left[e.Node.ID] = map[string]time.Time{}
			}
			left[e.Node.ID][nd.id] = now
		})
	}}
	c := &cluster{s: s}
	defer stopMany(c)
	for i := 2; i <= n; i++ {
		// Port 0, bound at Start: a port found free beforehand may be taken
		// by one of the many connections the others open meanwhile.
		nd, err := newNode(fmt.Sprintf("node-%d", i), "127.0.0.1:0", []string{lp.addr}, s)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	start := time.Now()
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, nd := range c.nodes {
		wg.Go(func() { errs[i] = nd.ck.Start(context.Background()) })
	}
	wg.Wait()
	res.started = time.Since(start)
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", c.nodes[i].id, err)
		}
	}
	if err := waitSlow(5*time.Minute, fmt.Sprintf("%d members to converge", n), func() bool { return converged(c.cks(), n) }); err != nil {
		return nil, err
	}
	res.formed = time.Since(start)
	res.terms = c.nodes[0].ck.HealthCheck().Term - 2 // the bootstrap election was term 2
	want := clusterkit.DefaultMaxVoters
	if err := waitSlow(2*time.Minute, fmt.Sprintf("%d voters", want), func() bool { return c.nodes[0].ck.HealthCheck().Voters == want }); err != nil {
		return nil, err
	}
	res.voters = time.Since(start)

	// At rest: the leader's process, and this one's for the others. If an
	// election moved the leadership here, it goes back to the process.
	if err := leadFrom(leaderAPI, c.nodes[0].ck); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // let the promotions' rebalances end; a settle, not a wait for a condition
	pid := lp.cmd.Process.Pid
	l0, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	m0, err := cpuTime()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	time.Sleep(window) // the measured window
	l1, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	m1, err := cpuTime()
	if err != nil {
		return nil, err
	}
	wall := time.Since(t0)
	res.leaderIdle = 100 * float64(l1-l0) / float64(wall)
	res.membersIdle = 100 * float64(m1-m0) / float64(wall)
	res.heapPerNode = float64(int64(heapAfterGC())-int64(base)) / float64(n-1) / mib
	res.goroutinesPerNode = float64(runtime.NumGoroutine()-goBase) / float64(n-1)
	if rss, err := procRSS(pid); err == nil {
		res.leaderRSS = float64(rss) / mib
	}

	// A member crashes: a non-voter, as almost all of them are.
	voters := c.nodes[0].ck.HealthCheck().VoterIDs
	var victim *node
	for _, nd := range slices.Backward(c.nodes) {
		if !slices.Contains(voters, nd.id) {
			victim = nd
			break
		}
	}
	if victim == nil {
		return nil, fmt.Errorf("no non-voter to crash among %d members", n)
	}
	survivors := c.others(victim)
	l0, err = procCPU(pid)
	if err != nil {
		return nil, err
	}
	crashed := time.Now()
	victim.crash()
	if err := waitSlow(3*time.Minute, "NodeLeave of "+victim.id+" on every survivor", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(left[victim.id]) == len(survivors)
	}); err != nil {
		return nil, err
	}
	mu.Lock()
	var took []float64
	for _, at := range left[victim.id] {
		took = append(took, float64(at.Sub(crashed))/float64(time.Millisecond))
	}
	mu.Unlock()
	slices.Sort(took)
	res.leaveFirst = time.Duration(took[0] * float64(time.Millisecond))
	res.leaveMedian = time.Duration(median(took) * float64(time.Millisecond))
	res.leaveLast = time.Duration(took[len(took)-1] * float64(time.Millisecond))
	cks := make([]*clusterkit.ClusterKit, len(survivors))
	for i, nd := range survivors {
		cks[i] = nd.ck
	}
	if err := waitSlow(3*time.Minute, "the survivors to converge", func() bool { return converged(cks, n-1) }); err != nil {
		return nil, err
	}
	res.rebalanced = time.Since(crashed)
	l1, err = procCPU(pid)
	if err != nil {
		return nil, err
	}
	res.leaderRebalance = 100 * float64(l1-l0) / float64(time.Since(crashed))
	ctx, cancel := context.WithTimeout(context.Background(), 2*probeClient.Timeout)
	defer cancel()
	if h, err := leaderAPI.DetailedHealth(ctx); err == nil {
		res.stillLeader = h.IsLeader
	}
	return res, nil
}

// leadFrom makes node-1, the leader process, lead (through any member's
// facade) and waits until it says so.
func leadFrom(api *client.Client, any *clusterkit.ClusterKit) error {
	isLeader := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), probeClient.Timeout)
		defer cancel()
		h, err := api.DetailedHealth(ctx)
		return err == nil && h.IsLeader
	}
	if isLeader() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := any.TransferLeadership(ctx, "node-1"); err != nil {
		return fmt.Errorf("leadership back to node-1: %w", err)
	}
	return waitSlow(30*time.Second, "node-1 to lead", isLeader)
}

// waitSlow is waitFor polling every 50 ms: at 200 members a check reads
// every member's table, and polling it continuously would take the CPU
// the members need.
func waitSlow(timeout time.Duration, what string, cond func() bool) error {
	return waitEvery(50*time.Millisecond, timeout, what, cond)
}

// stopMany stops c's members 16 at a time, non-voters first: one by one,
// 200 graceful stops would take minutes.
func stopMany(c *cluster) {
	if len(c.nodes) == 0 {
		return
	}
	ids := c.nodes[0].ck.HealthCheck().VoterIDs
	var voters, rest []*node
	for _, nd := range c.nodes {
		if slices.Contains(ids, nd.id) {
			voters = append(voters, nd)
		} else {
			rest = append(rest, nd)
		}
	}
	for _, group := range [][]*node{rest, voters} {
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for _, nd := range group {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				nd.stop()
			})
		}
		wg.Wait()
	}
	c.nodes = nil
}

func runScale(cfg *config) (*section, error) {
	s := &section{
		title: "Many members ([scale])",
		intro: fmt.Sprintf(`P=%d, RF=%d, default options (Raft heartbeat and election 500 ms, commit timeout 20 ms, MaxVoters 5, default
failure detection). The leader is a process of its own (`+"`examples/node`"+`, bootstrapping), so that its CPU is its own;
the other members run in the benchmark's process and call `+"`Start`"+` at the same moment, joining through it. Then one
non-voter crashes (its connections reset, as after kill -9). One run per size; CPU is %% of one core over %v at rest.`,
			scalePartitions, scaleRF, cfg.scaleWindow),
	}
	bin, cleanup, err := buildNode()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var results []*scaleResult
	for _, n := range cfg.scaleSizes {
		r, err := scaleOnce(bin, n, cfg.scaleWindow)
		if err != nil {
			return nil, fmt.Errorf("%d members: %w", n, err)
		}
		results = append(results, r)
	}
	small, large := results[0], results[len(results)-1]
	growth := float64(large.n) / float64(small.n)
	add := func(name string, f func(*scaleResult) string, target, met string) {
		for _, r := range results {
			rw := row{name: fmt.Sprintf("%d members: %s", r.n, name), median: f(r), p99: "—", trials: "1", target: "none", met: "—"}
			if r == large && target != "" {
				rw.target, rw.met = target, met
			}
			s.rows = append(s.rows, rw)
		}
	}
	pct := func(v float64) string { return fmt.Sprintf("%.1f %%", v) }
	add("simultaneous `Start`s → the last `Start` returned (it holds the committed table)", func(r *scaleResult) string { return fmtMs(ms1(r.started)) }, "", "")
	add("… → one table placing all, on every member", func(r *scaleResult) string { return fmtMs(ms1(r.formed)) }, "", "")
	add("… → 5 voters", func(r *scaleResult) string { return fmtMs(ms1(r.voters)) }, "", "")
	cpuRatio := large.leaderIdle / small.leaderIdle
	t, m := targetLE(cpuRatio, 1.5*growth, fmt.Sprintf("≤ 1.5 × %.0f (linear in N; ratio %s)", growth, fmtRatio(cpuRatio)), "[scale]")
	add("leader CPU at rest", func(r *scaleResult) string { return pct(r.leaderIdle) }, t, m)
	add("the other members' CPU at rest, together", func(r *scaleResult) string { return pct(r.membersIdle) }, "", "")
	add("leader CPU from a member's crash to the end of its rebalance", func(r *scaleResult) string { return pct(r.leaderRebalance) }, "", "")
	add("heap per member (in-process members, after GC)", func(r *scaleResult) string { return fmt.Sprintf("%.1f MiB", r.heapPerNode) }, "", "")
	add("leader RSS", func(r *scaleResult) string { return fmt.Sprintf("%.0f MiB", r.leaderRSS) }, "", "")
	add("a member crashes → NodeLeave on the first / median / last survivor", func(r *scaleResult) string {
		return fmt.Sprintf("%s / %s / %s", fmtMs(ms1(r.leaveFirst)), fmtMs(ms1(r.leaveMedian)), fmtMs(ms1(r.leaveLast)))
	}, "", "")
	add("… → every partition has 3 live owners again, on every survivor", func(r *scaleResult) string { return fmtMs(ms1(r.rebalanced)) }, "", "")
	for _, r := range results {
		s.notes = append(s.notes, fmt.Sprintf("%d members: %d elections during formation; %.1f goroutines per in-process member; the bootstrapping process led at the end: %v.",
			r.n, r.terms, r.goroutinesPerNode, r.stillLeader))
	}
	return s, nil
}

func ms1(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
