package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
)

// latencies collects event latencies from a subscribed actor.
type latencies struct {
	mu  sync.Mutex
	lat []time.Duration
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lat)
}

// subscribeLatency subscribes an actor on ck that records, for every
// CustomDataChange, receive time minus the event's timestamp (taken when the
// write was proposed, by the same process clock).
func subscribeLatency(ck *clusterkit.ClusterKit) (*latencies, *actor.PID, error) {
	l := &latencies{}
	pid := ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if e, ok := ctx.Message().(*messages.CustomDataChange); ok {
			d := time.Duration(time.Now().UnixNano() - e.GetTimeUnixNano())
			l.mu.Lock()
			l.lat = append(l.lat, d)
			l.mu.Unlock()
		}
	}))
	return l, pid, ck.Subscribe(pid, clusterkit.WithKinds(clusterkit.EventCustomDataChange))
}

// burstOnce subscribes subs actors on the leader, then writes burst values
// from 64 concurrent writers on the leader and returns the time until every
// subscriber received every event, and until every write was acknowledged.
func burstOnce(leader *node, subs, burst int) (delivered, committed time.Duration, err error) {
	var wg sync.WaitGroup
	var pids []*actor.PID
	for range subs {
		wg.Add(1)
		var n atomic.Int64
		var once sync.Once
		pid := leader.ck.ActorSystem().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(*messages.CustomDataChange); ok && n.Add(1) == int64(burst) {
				once.Do(wg.Done)
			}
		}))
		if err := leader.ck.Subscribe(pid, clusterkit.WithKinds(clusterkit.EventCustomDataChange)); err != nil {
			return 0, 0, err
		}
		pids = append(pids, pid)
	}
	defer func() {
		for _, pid := range pids {
			_ = leader.ck.Unsubscribe(pid)
			leader.ck.ActorSystem().Root.Stop(pid)
		}
	}()
	all := make(chan struct{})
	start := time.Now()
	go func() { wg.Wait(); close(all) }()
	if err := writeBurst(leader.ck, 64, burst, nil); err != nil {
		return 0, 0, err
	}
	committed = time.Since(start)
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		return 0, 0, fmt.Errorf("%w: %d subscribers did not all receive %d events within 30 s", errTimeout, subs, burst)
	}
	return time.Since(start), committed, nil
}

// writeBurst writes total values to ck from writers goroutines (keys spread
// over 64 per writer) and records each write's latency in lat when non-nil.
func writeBurst(ck *clusterkit.ClusterKit, writers, total int, lat []time.Duration) error {
	value := make([]byte, 100)
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	for w := range writers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				t0 := time.Now()
				if _, err := ck.SetCustomData(context.Background(), fmt.Sprintf("w%d/k%d", w, i%64), value); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
				if lat != nil {
					lat[i] = time.Since(t0)
				}
			}
		})
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return fmt.Errorf("SetCustomData: %w", err)
	}
	return nil
}

func runEvents(cfg *config) (*section, error) {
	c, err := startCluster(3, settings{})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	leader, err := c.leader()
	if err != nil {
		return nil, err
	}
	follower := c.others(leader)[0]
	s := &section{
		title: "Events ([cluster])",
		intro: `Three nodes, default options, no DataDir. Latency: one writer on the leader calls ` + "`SetCustomData`" + ` back
to back; a user actor subscribed to ` + "`CustomDataChange`" + ` on the leader and one on a follower take the receive time
minus the event's timestamp, which the leader set when it proposed the write: commit included, so an upper bound on
commit → actor. Throughput: a burst of writes from 64 writers on the leader, until every subscriber on the leader
received every event.`,
	}
	onLeader, lpid, err := subscribeLatency(leader.ck)
	if err != nil {
		return nil, err
	}
	onFollower, fpid, err := subscribeLatency(follower.ck)
	if err != nil {
		return nil, err
	}
	k := cfg.eventLatencyEvents
	for i := range k {
		if _, err := leader.ck.SetCustomData(context.Background(), fmt.Sprintf("latency/%d", i%64), []byte("x")); err != nil {
			return nil, err
		}
	}
	if err := waitFor(10*time.Second, "every event on both subscribers", func() bool {
		return onLeader.count() >= k && onFollower.count() >= k
	}); err != nil {
		return nil, err
	}
	_ = leader.ck.Unsubscribe(lpid)
	_ = follower.ck.Unsubscribe(fpid)
	for _, x := range []struct {
		name string
		l    *latencies
	}{{"event latency, proposal → user actor on the leader (commit included)", onLeader}, {"event latency, proposal → user actor on a follower", onFollower}} {
		x.l.mu.Lock()
		lat := ms(x.l.lat)
		x.l.mu.Unlock()
		r := row{name: x.name, median: fmtMs(median(lat)), p99: fmtMs(p99(lat)), trials: thousands(int64(len(lat))) + " events"}
		if x.l == onLeader {
			r.target, r.met = targetLE(p99(lat), 5, "p99 ≤ 5 ms from commit", "[cluster]")
		} else {
			r.target, r.met = noTarget("")
		}
		s.rows = append(s.rows, r)
	}
	for _, subs := range []int{1, 100} {
		var rate, commitRate []float64
		for range cfg.eventBurstTrials {
			d, cm, err := burstOnce(leader, subs, cfg.eventBurst)
			if err != nil {
				return nil, err
			}
			rate = append(rate, float64(cfg.eventBurst)/d.Seconds())
			commitRate = append(commitRate, float64(cfg.eventBurst)/cm.Seconds())
		}
		r := row{name: fmt.Sprintf("events/s delivered to each of %d subscriber(s) (%s deliveries/s in all)", subs, thousands(int64(median(rate)*float64(subs)))),
			median: fmtRate(median(rate), "/s"), p99: fmtRate(quantile(rate, 0.01), "/s"),
			trials:   fmt.Sprintf("%d × %s events", len(rate), thousands(int64(cfg.eventBurst))),
			baseline: fmtRate(median(commitRate), "writes/s committed"), ratio: fmtRatio(median(rate)/median(commitRate)) + " the commit rate"}
		r.target, r.met = noTarget("")
		s.rows = append(s.rows, r)
	}
	s.notes = append(s.notes,
		"The follower applies an entry only when the leader's next append carries the commit index, at most `CommitTimeout` (20 ms, randomised up to 2×) later when no new entry comes first: its latency is Raft's commit propagation, not the event pipeline.",
		"Throughput baseline: the same burst's write rate (writes acknowledged per second); delivery at about 1× the commit rate means subscribers keep up with commits.")
	return s, nil
}
