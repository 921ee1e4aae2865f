package actortest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
)

// TestCustomDataLinearizable runs concurrent clients against a 3-node
// cluster, kills the leader halfway, and checks with porcupine that the
// custom-data history (writes, compare-and-sets, linearizable reads) is
// linearizable, that no acknowledged write is lost, and that every node ends
// with the same data.
func TestCustomDataLinearizable(t *testing.T) {
	const (
		clients   = 6
		runFor    = 3500 * time.Millisecond
		killAfter = 1500 * time.Millisecond
		opTimeout = time.Second
		maxOps    = 3000 // all clients together
	)
	h := newCDHistory()
	var mu sync.Mutex
	streams := map[int][]*cdStream{} // node -> one event stream per start
	c := actortest.NewCluster(t, 3,
		actortest.Configure(func(_ int, o *clusterkit.Options) { o.PartitionCount = 16 }),
		actortest.Setup(func(i int, ck *clusterkit.ClusterKit) {
			mu.Lock()
			s := &cdStream{Name: fmt.Sprintf("node-%d (start %d)", i+1, len(streams[i])+1)}
			streams[i] = append(streams[i], s)
			mu.Unlock()
			ck.OnCustomDataChange(func(e *clusterkit.CustomDataChangeEvent) {
				if !e.Deleted {
					s.add(cdEvent{e.Key, string(e.Value), e.Version})
				}
			})
		}))
	c.WaitConverged(10 * time.Second)
	c.WaitLeader(10 * time.Second)

	start := time.Now()
	var issued atomic.Int64
	var guard cdGuard
	var wg sync.WaitGroup
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), 1))
			home, n := k%3, 0
			for time.Since(start) < runFor && issued.Add(1) <= maxOps {
				// Bound to a node; when it is dead, use the next live one.
				node := home
				if !c.Alive(node) {
					live := c.Live()
					if len(live) == 0 {
						return
					}
					node = live[k%len(live)]
				}
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				key, roll := cdKeys[rng.IntN(len(cdKeys))], rng.IntN(10)
				definite := true
				guard.use(c, node, func(ck *clusterkit.ClusterKit) { definite = cdClientOp(ctx, h, ck, k, &n, key, roll) })
				cancel()
				if !definite {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(killAfter)
	leader := c.WaitLeader(5 * time.Second)
	guard.stopping(leader, func() { c.Kill(leader) })
	killedAt := time.Since(start)
	wg.Wait()
	t.Logf("killed the leader node-%d after %v; clients stopped after %v", leader+1,
		killedAt.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The survivors hold everything; the restarted node catches up.
	c.WaitLeader(10 * time.Second)
	c.Restart(leader)
	c.WaitConverged(15 * time.Second)
	final := cdFinalReads(t, c, h, clients)
	if diff := cdSame(c, 5*time.Second); diff != "" {
		t.Errorf("the nodes hold different custom data after a barrier:\n%s", diff)
	}
	mu.Lock()
	var all, survivors []*cdStream
	for i, ss := range streams {
		all = append(all, ss...)
		if i != leader {
			survivors = append(survivors, ss[0]) // subscribed before the first write, never restarted
		}
	}
	mu.Unlock()
	rep := h.verify(final, all, cdCover(survivors, final, 5*time.Second), 30*time.Second)
	t.Logf("%s", rep)
	if rep.Result == porcupine.Unknown {
		t.Errorf("porcupine could not decide within its timeout (history of %d ops)", rep.Ops)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("custom data broke its guarantees:\n  %s", strings.Join(rep.Problems, "\n  "))
	}
}
