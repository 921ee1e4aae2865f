package actortest_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
)

// TestScale50 runs 50 nodes in one process (5 voters, 45 non-voters),
// P=1024, RF=3: formation, then a join and a leave, reporting the time to
// converge and the memory per node (-v shows the figures). It takes about
// 100 s under -race on two cores; -short or CLUSTERKIT_SCALE=0 skips it.
func TestScale50(t *testing.T) {
	if testing.Short() || os.Getenv("CLUSTERKIT_SCALE") == "0" {
		t.Skip("the 50-node scale check is off (-short or CLUSTERKIT_SCALE=0)")
	}
	const n = 50
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	c := actortest.NewCluster(t, n, actortest.InMemory(), actortest.Configure(func(_ int, o *clusterkit.Options) {
		o.PartitionCount = 1024
		o.ReplicationFactor = 3
		o.MaxVoters = 5
		// Fifty nodes on two cores: heartbeat and commit timeouts closer to
		// production values keep the leader's fan-out affordable.
		o.Raft.HeartbeatTimeout = 500 * time.Millisecond
		o.Raft.ElectionTimeout = 500 * time.Millisecond
		o.Raft.LeaderLeaseTimeout = 250 * time.Millisecond
		o.Raft.CommitTimeout = 50 * time.Millisecond
		o.RebalanceDelay = 100 * time.Millisecond
		// The last of fifty joins waits behind the others' admissions, on
		// two cores shared with the other packages' tests.
		o.StartTimeout = 2 * time.Minute
		// The production default: with 200 ms, a voter that misses its
		// heartbeats for 400 ms on the loaded machine is demoted, and the
		// count of voters churns while the test reads it.
		o.VoterStabilization = clusterkit.DefaultVoterStabilization
	}))
	started := time.Since(start)
	formed := c.WaitConverged(2 * time.Minute)
	t.Logf("50 nodes started in %v, converged %v later", started.Round(time.Millisecond), formed.Round(time.Millisecond))

	c.WaitVoters(time.Minute)
	h := c.Node(0).HealthCheck()
	if h.Voters != 5 || h.NonVoters != n-5 {
		t.Fatalf("voters %d non-voters %d, want 5 and %d", h.Voters, h.NonVoters, n-5)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perNode := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("heap per node: %.1f MiB (heap in use %d MiB for %d nodes, %d goroutines)",
		float64(perNode)/(1<<20), after.HeapAlloc>>20, n, runtime.NumGoroutine())

	t0 := time.Now()
	c.AddNode()
	joined := c.WaitConverged(time.Minute)
	t.Logf("join of node 51: start %v, converged %v later", time.Since(t0).Round(time.Millisecond)-joined.Round(time.Millisecond), joined.Round(time.Millisecond))

	t0 = time.Now()
	if err := c.Leave(10); err != nil {
		t.Fatal(err)
	}
	left := c.WaitConverged(time.Minute)
	t.Logf("leave of node-11: %v until the others converged", time.Since(t0).Round(time.Millisecond))
	_ = left
}
