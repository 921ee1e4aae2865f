package actortest_test

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
)

// TestScale runs many nodes in one process (5 voters, the rest
// non-voters), P=1024, RF=3: formation, then a join and a leave, reporting
// the time to converge and the memory per node (-v shows the figures).
// CLUSTERKIT_SCALE is the number of nodes: 12 by default, a short version
// that keeps the default test run quick on a busy machine; 50 is the
// documented measurement (docs/benchmarks.md, about 170 s under -race on
// two cores); 0 (or -short) skips it.
func TestScale(t *testing.T) {
	n := 12
	if v := os.Getenv("CLUSTERKIT_SCALE"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 || (n > 0 && n < 6) {
			t.Fatalf("CLUSTERKIT_SCALE=%q: want 0 (skip) or a number of nodes from 6", v)
		}
	}
	if testing.Short() || n == 0 {
		t.Skip("the scale check is off (-short or CLUSTERKIT_SCALE=0)")
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	c := actortest.NewCluster(t, n, actortest.InMemory(), actortest.Configure(func(_ int, o *clusterkit.Options) {
		o.PartitionCount = 1024
		o.ReplicationFactor = 3
		o.MaxVoters = 5
		// Many nodes on two cores: heartbeat and commit timeouts closer to
		// production values keep the leader's fan-out affordable.
		o.Raft.HeartbeatTimeout = 500 * time.Millisecond
		o.Raft.ElectionTimeout = 500 * time.Millisecond
		o.Raft.LeaderLeaseTimeout = 250 * time.Millisecond
		o.Raft.CommitTimeout = 50 * time.Millisecond
		o.RebalanceDelay = 100 * time.Millisecond
		// The last of many joins waits behind the others' admissions, on
		// two cores shared with the other packages' tests.
		o.StartTimeout = 2 * time.Minute
		// The production default: with 200 ms, a voter that misses its
		// heartbeats for 400 ms on the loaded machine is demoted, and the
		// count of voters churns while the test reads it.
		o.VoterStabilization = clusterkit.DefaultVoterStabilization
	}))
	started := time.Since(start)
	formed := c.WaitConverged(2 * time.Minute)
	t.Logf("%d nodes started in %v, converged %v later", n, started.Round(time.Millisecond), formed.Round(time.Millisecond))

	c.WaitVoters(time.Minute)
	h := c.Node(0).HealthCheck()
	if h.Voters != 5 || h.NonVoters != n-5 {
		t.Fatalf("voters %d non-voters %d, want 5 and %d", h.Voters, h.NonVoters, n-5)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perNode := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(n)
	t.Logf("heap per node: %.1f MiB (heap in use %d MiB for %d nodes, %d goroutines)",
		float64(perNode)/(1<<20), after.HeapAlloc>>20, n, runtime.NumGoroutine())

	t0 := time.Now()
	c.AddNode()
	joined := c.WaitConverged(time.Minute)
	t.Logf("join of node %d: start %v, converged %v later", n+1, time.Since(t0).Round(time.Millisecond)-joined.Round(time.Millisecond), joined.Round(time.Millisecond))

	// The last of the first n, a late joiner: a non-voter, as most are.
	leaver := n - 1
	t0 = time.Now()
	if err := c.Leave(leaver); err != nil {
		t.Fatal(err)
	}
	c.WaitConverged(time.Minute)
	t.Logf("leave of node-%d: %v until the others converged", leaver+1, time.Since(t0).Round(time.Millisecond))
}
