package main

import (
	"fmt"
	"testing"
	"time"
)

// TestSoakShort is the soak's short version: join/leave cycles of a fourth
// node against three (new IDs, then one ID again and again), on real nodes
// with data directories. (Leader changes open a connection between each
// pair of nodes as each first leads, at a time a short run cannot pin down:
// they are left to the long run, `-only soak`.) After a few warm-up cycles
// (connections, the resume log filling), seven more of each must not raise
// the process's goroutine floor by more than the slack of 4: a leak of one
// goroutine per cycle would show as seven. (Seven, not more: the suite must
// finish within 6 minutes next to a busy core, scripts/busy-test.sh.) The
// heap's trend needs the long run (`-only soak`).
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster and 18 more nodes, one at a time")
	}
	c, err := startCluster(3, settings{dataDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	const warm, cycles, slack = 2, 7, 4
	phases := []struct {
		name string
		one  func(i int) error
	}{
		{"new ID", func(i int) error { _, err := soakJoinLeave(c, fmt.Sprintf("short-new-%d", i)); return err }},
		{"same ID", func(int) error { _, err := soakJoinLeave(c, "short-same"); return err }},
	}
	for _, p := range phases {
		for i := range warm {
			if err := p.one(i); err != nil {
				t.Fatalf("%s, warm-up cycle %d: %v", p.name, i+1, err)
			}
		}
		before := takeSoakSample(soakTestWindow)
		for i := range cycles {
			if err := p.one(warm + i); err != nil {
				t.Fatalf("%s, cycle %d: %v", p.name, i+1, err)
			}
		}
		// A departed node's connections take a few seconds to close on a
		// busy machine; a leak never does. Wait for the floor to come back
		// (at most 10 samples) before calling it a leak.
		var after soakSample
		for range 10 {
			if after = takeSoakSample(soakTestWindow); after.goroutines <= before.goroutines+slack {
				break
			}
		}
		t.Logf("%s: goroutines %d → %d, heap after GC %.1f → %.1f MiB over %d cycles",
			p.name, before.goroutines, after.goroutines, float64(before.heap)/mib, float64(after.heap)/mib, cycles)
		if after.goroutines > before.goroutines+slack {
			t.Errorf("%s: the goroutine floor rose from %d to %d over %d cycles and stayed there for %v",
				p.name, before.goroutines, after.goroutines, cycles, 10*soakTestWindow)
		}
	}
}

// soakTestWindow is the floor's observation window in the short soak.
const soakTestWindow = 2 * time.Second
