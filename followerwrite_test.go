package clusterkit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestFollowerWritesReadYourWrites: writes made on a follower, one at a
// time and by many goroutines at once, are each visible to the next local
// read on that follower, with the version the write returned.
func TestFollowerWritesReadYourWrites(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, nil, nil)
	follower := othersThan(nodes, leaderOf(t, nodes))[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	check := func(key string, value []byte) error {
		version, err := follower.SetCustomData(ctx, key, value)
		if err != nil {
			return fmt.Errorf("SetCustomData(%q) on follower %s: %w", key, follower.GetMyNodeID(), err)
		}
		got, gotVersion, err := follower.GetCustomData(key)
		if err != nil || string(got) != string(value) || gotVersion != version {
			return fmt.Errorf("after writing %q=%q (version %d) on %s, its next read got %q version %d, %v",
				key, value, version, follower.GetMyNodeID(), got, gotVersion, err)
		}
		return nil
	}
	for i := range 20 {
		if err := check("lone", fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	const writers, each = 64, 10
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := check(fmt.Sprintf("w%d", w), fmt.Appendf(nil, "w%d-%d", w, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every node ends with every writer's last value.
	waitFor(t, 30*time.Second, "every node to apply the last writes", func() bool {
		for _, n := range nodes {
			for w := range writers {
				v, _, err := n.GetCustomData(fmt.Sprintf("w%d", w))
				if err != nil || string(v) != fmt.Sprintf("w%d-%d", w, each-1) {
					return false
				}
			}
		}
		return true
	})
}
