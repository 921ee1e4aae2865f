package actortest_test

import (
	"context"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/actors/actortest"
)

// TestHandOverPrimariesWaitsForElection: a node that knows no leader, as
// after it voted in an election (the one a stopping leader's hand-over
// starts, say), waits for the election before it hands its primaries over,
// instead of giving up at once and leaving them to failure detection. Here
// the node is alone on its side until the network heals, so it knows no
// leader when the call starts.
func TestHandOverPrimariesWaitsForElection(t *testing.T) {
	c := actortest.NewCluster(t, 3)
	c.WaitConverged(10 * time.Second)
	leader := c.WaitLeader(5 * time.Second)
	others := liveExcept(c, leader)
	a, b := c.Node(others[0]), others[1]
	id := a.GetMyNodeID()
	primaries := func() int {
		n := 0
		for _, p := range a.GetCluster().PartitionMap.Partitions {
			if p.PrimaryNode == id {
				n++
			}
		}
		return n
	}
	if primaries() == 0 {
		t.Fatalf("%s leads no partition to hand over", id)
	}
	c.Isolate(leader)
	c.Isolate(b)
	actortest.Eventually(t, 10*time.Second, id+" to know no leader", func() bool { return a.HealthCheck().Leader == "" })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- a.HandOverPrimaries(ctx)
	}()
	c.Heal()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hand-over across an election: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("HandOverPrimaries did not return")
	}
	if n := primaries(); n != 0 {
		t.Fatalf("%s still leads %d partitions after its hand-over", id, n)
	}
}
