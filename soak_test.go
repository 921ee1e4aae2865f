package clusterkit

import (
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestNoSpuriousElectionsUnderLoad keeps a three-node cluster with the
// default timings running while every core is kept busy, and checks that the
// term never changes (no election without a failure). It runs only when
// CLUSTERKIT_SOAK is set to a duration (e.g. 60s): on a shared CI machine
// the load it adds would disturb the other tests.
func TestNoSpuriousElectionsUnderLoad(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("CLUSTERKIT_SOAK"))
	if err != nil {
		t.Skip("set CLUSTERKIT_SOAK=60s to run the soak test")
	}
	leakCheck(t)
	nodes := startCluster(t, 3, func(i int, o *Options) {
		o.Raft = DefaultRaftTimings()
		o.HealthCheck = DefaultHealthCheck()
	}, nil)
	leader := leaderOf(t, nodes)
	term := leader.HealthCheck().Term
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() { // busy loop: the machine is "loaded"
			defer wg.Done()
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
					for k := range 100000 {
						x += k
					}
				}
			}
		}()
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		for _, n := range nodes {
			if got := n.HealthCheck().Term; got != term {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: term %d -> %d: an election without a failure", n.GetMyNodeID(), term, got)
			}
		}
		for _, n := range nodes {
			if h := n.HealthCheck(); h.ClusterStatus != "healthy" {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: %s under load (%v)", n.GetMyNodeID(), h.ClusterStatus, h.UnhealthyNodeIDs)
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("term stayed %d for %v with %d cores busy", term, d, runtime.NumCPU())
}
