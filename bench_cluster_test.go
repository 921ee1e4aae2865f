package clusterkit

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/messages"
)

// Cluster benchmarks run real nodes over loopback TCP with the default
// timings (DefaultOptions) unless a name says otherwise. Run with a small
// fixed count, e.g. -benchtime=10x.

func benchOptions(id, join string) Options {
	o := DefaultOptions()
	o.NodeID, o.HTTPAddr = id, "127.0.0.1:0"
	if join != "" {
		o.JoinAddrs = []string{join}
	}
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

func benchStart(b *testing.B, o Options) *ClusterKit {
	b.Helper()
	ck, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := ck.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	return ck
}

// benchCluster starts n nodes (node-1 bootstraps, the others join it) and
// waits until they agree on a table that places all of them.
func benchCluster(b *testing.B, n int, opts func(id, join string) Options) []*ClusterKit {
	b.Helper()
	first := benchStart(b, opts("node-1", ""))
	nodes := []*ClusterKit{first}
	for i := 2; i <= n; i++ {
		nodes = append(nodes, benchStart(b, opts(fmt.Sprintf("node-%d", i), first.advertise)))
	}
	spin(b, 20*time.Second, func() bool { return converged(nodes, n) })
	return nodes
}

func stopAll(nodes []*ClusterKit) {
	for _, n := range nodes {
		_ = n.Stop(context.Background())
	}
}

func converged(nodes []*ClusterKit, members int) bool {
	first := nodes[0].fsm.View()
	if len(first.Members()) != members || !first.HasTable() || !fullyPlaced(first, members) {
		return false
	}
	for _, n := range nodes[1:] {
		if n.fsm.View().Checksum() != first.Checksum() {
			return false
		}
	}
	return true
}

func spin(b *testing.B, timeout time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("condition not reached")
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkFormation3: three Starts at the same moment (node-1 bootstraps,
// the others join it) to one cluster whose committed table places all three.
func BenchmarkFormation3(b *testing.B) {
	var times []time.Duration
	for b.Loop() {
		addrs := []string{freeAddrB(b), freeAddrB(b), freeAddrB(b)}
		nodes := make([]*ClusterKit, 3)
		for i := range nodes {
			o := benchOptions(fmt.Sprintf("node-%d", i+1), "")
			o.HTTPAddr = addrs[i]
			if i > 0 {
				o.JoinAddrs = addrs
			}
			ck, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			nodes[i] = ck
		}
		start := time.Now()
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); _ = n.Start(context.Background()) }()
		}
		wg.Wait()
		spin(b, 30*time.Second, func() bool { return converged(nodes, 3) })
		times = append(times, time.Since(start))
		stopAll(nodes)
	}
	b.ReportMetric(float64(percentile(times, 0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(percentile(times, 0.99).Milliseconds()), "p99-ms")
}

// BenchmarkJoinToReady: a joiner's Start until it holds the committed table
// (Start returns), and until the table places it (its rebalance committed).
func BenchmarkJoinToReady(b *testing.B) {
	first := benchStart(b, benchOptions("node-1", ""))
	defer first.Stop(context.Background())
	second := benchStart(b, benchOptions("node-2", first.advertise))
	defer second.Stop(context.Background())
	var ready, placed []time.Duration
	i := 0
	for b.Loop() {
		i++
		o := benchOptions(fmt.Sprintf("joiner-%d", i), first.advertise)
		start := time.Now()
		ck := benchStart(b, o)
		ready = append(ready, time.Since(start))
		spin(b, 10*time.Second, func() bool { return converged([]*ClusterKit{first, second, ck}, 3) })
		placed = append(placed, time.Since(start))
		if err := ck.Leave(context.Background()); err != nil {
			b.Fatal(err)
		}
		spin(b, 10*time.Second, func() bool { return converged([]*ClusterKit{first, second}, 2) })
	}
	b.ReportMetric(float64(percentile(ready, 0.5).Microseconds())/1000, "ready-p50-ms")
	b.ReportMetric(float64(percentile(ready, 0.99).Microseconds())/1000, "ready-p99-ms")
	b.ReportMetric(float64(percentile(placed, 0.5).Microseconds())/1000, "placed-p50-ms")
}

// tunedOptions: fast Raft timeouts and failure detection for a quiet LAN.
func tunedOptions(id, join string) Options {
	o := benchOptions(id, join)
	o.Raft.HeartbeatTimeout, o.Raft.ElectionTimeout, o.Raft.LeaderLeaseTimeout = 150*time.Millisecond, 150*time.Millisecond, 100*time.Millisecond
	o.HealthCheck = FastHealthCheck()
	return o
}

// BenchmarkLeaderStop: the time without a leader that can commit when the
// leader stops: Stop (leadership hand-over first) against a crash (raft shut
// down without a hand-over; the failover time), measured from the call until
// a survivor commits an entry. crash-tuned uses tunedOptions.
func BenchmarkLeaderStop(b *testing.B) {
	for _, mode := range []string{"stop-with-handover", "crash-baseline", "crash-tuned"} {
		b.Run(mode, func(b *testing.B) {
			opts := benchOptions
			if mode == "crash-tuned" {
				opts = tunedOptions
			}
			var gaps []time.Duration
			for b.Loop() {
				nodes := benchCluster(b, 3, opts)
				first := nodes[0]
				spin(b, 10*time.Second, func() bool { return first.HealthCheck().Voters == 3 })
				start := time.Now()
				if mode == "stop-with-handover" {
					_ = first.Stop(context.Background())
				} else {
					_ = first.raft.Shutdown().Error() // no hand-over: the others must time out
				}
				for {
					if nodes[1].raft.State() == raft.Leader || nodes[2].raft.State() == raft.Leader {
						leader := nodes[1]
						if nodes[2].raft.State() == raft.Leader {
							leader = nodes[2]
						}
						if leader.raft.Barrier(time.Second).Error() == nil {
							break
						}
					}
					if time.Since(start) > 20*time.Second {
						b.Fatal("no new leader")
					}
					time.Sleep(100 * time.Microsecond)
				}
				gaps = append(gaps, time.Since(start))
				stopAll(nodes)
			}
			b.ReportMetric(float64(percentile(gaps, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(gaps, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkDetection: a member crashes (stops answering; connections are
// refused) until every survivor has received its NodeLeave
// (health_check_failure), with the default failure detection and with
// FastHealthCheck. A follower crashes, so no election is involved.
func BenchmarkDetection(b *testing.B) {
	for _, mode := range []string{"default", "tuned"} {
		b.Run(mode, func(b *testing.B) {
			opts := benchOptions
			if mode == "tuned" {
				opts = tunedOptions
			}
			var took []time.Duration
			for b.Loop() {
				nodes := benchCluster(b, 4, opts)
				var wg sync.WaitGroup
				for _, n := range nodes[:3] {
					wg.Add(1)
					var once sync.Once
					pid := n.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
						if l, ok := ctx.Message().(*messages.NodeLeave); ok && l.GetNode().GetId() == "node-4" {
							once.Do(wg.Done)
						}
					}))
					if err := n.Subscribe(pid, WithKinds(EventNodeLeave)); err != nil {
						b.Fatal(err)
					}
				}
				start := time.Now()
				_ = nodes[3].Stop(context.Background()) // node-1 leads: a follower vanishes
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					b.Fatal("no NodeLeave on every survivor")
				}
				took = append(took, time.Since(start))
				stopAll(nodes[:3])
			}
			b.ReportMetric(float64(percentile(took, 0.5).Milliseconds()), "p50-ms")
			b.ReportMetric(float64(percentile(took, 0.99).Milliseconds()), "p99-ms")
		})
	}
}

// BenchmarkEventLatency: from the leader proposing an entry (the event's
// timestamp) to a user actor receiving its event, on the leader and on a
// follower: an upper bound on commit-to-actor latency, Raft round trip
// included.
func BenchmarkEventLatency(b *testing.B) {
	nodes := benchCluster(b, 3, benchOptions)
	defer stopAll(nodes)
	first, second := nodes[0], nodes[1]
	type sample struct {
		mu  sync.Mutex
		lat []time.Duration
	}
	leader, follower := &sample{}, &sample{}
	for _, x := range []struct {
		ck *ClusterKit
		s  *sample
	}{{first, leader}, {second, follower}} {
		s := x.s
		pid := x.ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if e, ok := ctx.Message().(*messages.RebalanceStart); ok && e.GetTrigger() == "manual" {
				d := time.Duration(time.Now().UnixNano() - e.GetTimeUnixNano())
				s.mu.Lock()
				s.lat = append(s.lat, d)
				s.mu.Unlock()
			}
		}))
		if err := x.ck.Subscribe(pid, WithKinds(EventRebalanceStart)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := first.RebalancePartitions(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	spin(b, 10*time.Second, func() bool {
		follower.mu.Lock()
		defer follower.mu.Unlock()
		return len(follower.lat) == b.N
	})
	for name, s := range map[string]*sample{"leader": leader, "follower": follower} {
		s.mu.Lock()
		b.ReportMetric(float64(percentile(s.lat, 0.5).Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(percentile(s.lat, 0.99).Microseconds())/1000, name+"-p99-ms")
		s.mu.Unlock()
	}
}

func freeAddrB(b *testing.B) string {
	b.Helper()
	ln, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
