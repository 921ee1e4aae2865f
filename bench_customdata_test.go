package clusterkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCustomDataWrites: custom-data writes on 3 loopback nodes, each
// with a DataDir (raft-wal, fsync on every commit batch), default options.
// Writers call SetCustomData concurrently (on the leader, and through a
// follower that forwards); b.N writes in total. Reports commits/s and the
// per-write latency.
func BenchmarkCustomDataWrites(b *testing.B) {
	for _, via := range []string{"leader", "follower"} {
		for _, writers := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("%s/writers=%d", via, writers), func(b *testing.B) {
				nodes := benchCluster(b, 3, func(id, join string) Options {
					o := benchOptions(id, join)
					o.DataDir = b.TempDir()
					return o
				})
				defer stopAll(nodes)
				target := leaderOfB(b, nodes)
				if via == "follower" {
					for _, n := range nodes {
						if n != target {
							target = n
							break
						}
					}
				}
				value := make([]byte, 100)
				lat := make([]time.Duration, b.N)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := range writers {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							t0 := time.Now()
							if _, err := target.SetCustomData(context.Background(), fmt.Sprintf("w%d/k%d", w, i%64), value); err != nil {
								b.Error(err)
								return
							}
							lat[i] = time.Since(t0)
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
				b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			})
		}
	}
}

func leaderOfB(b *testing.B, nodes []*ClusterKit) *ClusterKit {
	b.Helper()
	var leader *ClusterKit
	spin(b, 10*time.Second, func() bool {
		for _, n := range nodes {
			if n.HealthCheck().IsLeader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// BenchmarkRestartWithEntries: a node with a DataDir that has committed
// 100,000 custom-data writes is stopped and started again; the figure is
// New+Start to ready. Snapshots (every 4096 entries by default) bound what
// Raft replays.
func BenchmarkRestartWithEntries(b *testing.B) {
	const entries = 100_000
	dir := b.TempDir()
	o := benchOptions("node-1", "")
	o.DataDir = dir
	ck := benchStart(b, o)
	value := make([]byte, 100)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= entries {
					return
				}
				if _, err := ck.SetCustomData(context.Background(), fmt.Sprintf("k%d", i%1000), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := ck.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		again := benchStart(b, o)
		times = append(times, time.Since(start))
		if n := len(again.ListCustomDataKeys()); n != 1000 {
			b.Fatalf("%d keys after the restart, want 1000", n)
		}
		if err := again.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(percentile(times, 0.5).Microseconds())/1000, "restart-p50-ms")
	b.ReportMetric(float64(percentile(times, 0.99).Microseconds())/1000, "restart-p99-ms")
}
