package clusterkit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// peerSeriesLines counts the series lines of a /metrics page that carry a
// Raft peer label, in all and for the peers whose ID starts with prefix.
func peerSeriesLines(page, prefix string) (all, matching int) {
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, "#") || !strings.Contains(l, `peer_id="`) {
			continue
		}
		all++
		if strings.Contains(l, `peer_id="`+prefix) {
			matching++
		}
	}
	return all, matching
}

// Members that join and leave take their Raft series (label peer_id) with
// them: after 40 short-lived members with new IDs, the leader's /metrics
// has as many peer series as before. (Before ForgetPeer every departed ID
// kept its series forever.)
func TestRaftMetricsForgetDepartedPeers(t *testing.T) {
	leakCheck(t)
	const (
		churn  = 40 // members with new IDs that join and leave (a leak shows as 40 series per family)
		batch  = 10 // at a time
		prefix = "churn-"
	)
	// Three voters; the churned members hold no partition (nothing to hand
	// over) and stay non-voters, so each costs a join and a leave only.
	nodes := startCluster(t, 3, func(_ int, o *Options) { o.MaxVoters = 3 }, nil)
	leader := leaderOf(t, nodes)

	// Wait for the leader's per-peer families of both followers (heartbeat,
	// AppendEntries round trips and entry counts): they appear lazily.
	var before int
	waitFor(t, 20*time.Second, "the leader's per-peer Raft series of both followers", func() bool {
		page := metricsText(t, leader)
		for _, n := range nodes {
			if n == leader {
				continue
			}
			for _, fam := range []string{"clusterkit_raft_replication_heartbeat_seconds_count", "clusterkit_raft_replication_append_entries_rpc_seconds_count", "clusterkit_raft_replication_append_entries_logs_total"} {
				if !strings.Contains(page, fam+`{peer_id="`+n.opts.NodeID+`"}`) {
					return false
				}
			}
		}
		before, _ = peerSeriesLines(page, prefix)
		return true
	})

	seed := leader.advertise
	peak := 0
	start := time.Now()
	for b := 0; b < churn; b += batch {
		members := make([]*ClusterKit, 0, batch)
		for i := b; i < min(b+batch, churn); i++ {
			o := fastOptions(t, fmt.Sprintf("%s%d", prefix, i))
			o.JoinAddrs = []string{seed}
			o.Weight = WeightNone
			o.MaxVoters = 3 // must match the cluster's
			members = append(members, startNode(t, o))
		}
		// Each new member is replicated to, so it has series on the leader.
		waitFor(t, 20*time.Second, "series of the new members on the leader", func() bool {
			page := metricsText(t, leader)
			for _, m := range members {
				if !strings.Contains(page, `peer_id="`+m.opts.NodeID+`"`) {
					return false
				}
			}
			all, _ := peerSeriesLines(page, prefix)
			peak = max(peak, all)
			return true
		})
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := m.Leave(ctx); err != nil {
					t.Errorf("%s: Leave: %v", m.opts.NodeID, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}

	var after, left int
	waitFor(t, 20*time.Second, "the departed members' series to go", func() bool {
		after, left = peerSeriesLines(metricsText(t, leader), prefix)
		return left == 0 && after == before
	})
	t.Logf("peer series lines on the leader: %d before, %d at the peak (%d members at a time), %d after %d members came and went (%v)",
		before, peak, batch, after, churn, time.Since(start).Round(time.Millisecond))
	if peak <= before {
		t.Fatalf("the churned members never had series (peak %d, before %d): the test proves nothing", peak, before)
	}
}
