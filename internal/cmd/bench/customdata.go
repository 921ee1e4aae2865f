package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/crashnet"
)

func runCustomData(cfg *config) (*section, error) {
	s := &section{
		title: "Custom data and restart ([durability])",
		intro: `Three nodes on loopback, each with a ` + "`DataDir`" + ` (raft-wal, fsync on every log write, on the leader and the
followers), default options. Each writer calls ` + "`SetCustomData`" + ` (100-byte values) in a loop, on the leader, then
(the same writers, in the same cluster, after each leader trial) on a follower, which forwards to the leader. A write
returns after the commit; a read on the node written to waits until it applied every write acknowledged there
(read-your-writes on that node). Latency percentiles
pool every write of every trial.`,
	}
	for _, writers := range []int{1, 16, 256} {
		c, err := startCluster(3, settings{dataDir: true})
		if err != nil {
			return nil, err
		}
		leader, err := c.leader()
		if err != nil {
			c.stop()
			return nil, err
		}
		follower := c.others(leader)[0]
		total := cfg.writes[writers]
		// The same writers on the leader and on a follower, trial by
		// trial in the same cluster: the follower's figures are ratios
		// to the leader's.
		var rates, fRates []float64
		var lat, fLat []time.Duration
		for range cfg.writeTrials {
			for _, on := range []struct {
				ck    *clusterkit.ClusterKit
				rates *[]float64
				lat   *[]time.Duration
			}{{leader.ck, &rates, &lat}, {follower.ck, &fRates, &fLat}} {
				l := make([]time.Duration, total)
				start := time.Now()
				if err := writeBurst(on.ck, writers, total, l); err != nil {
					c.stop()
					return nil, err
				}
				*on.rates = append(*on.rates, float64(total)/time.Since(start).Seconds())
				*on.lat = append(*on.lat, l...)
			}
		}
		c.stop()
		r := row{name: fmt.Sprintf("%d writer(s): commits/s", writers), median: fmtRate(median(rates), "/s"),
			p99: fmtRate(quantile(rates, 0.01), "/s"), trials: fmt.Sprintf("%d × %s writes", len(rates), thousands(int64(total)))}
		if writers == 256 {
			r.target, r.met = targetGE(median(rates), 10000, "≥ 10,000 commits/s", "[durability]")
		} else {
			r.target, r.met = noTarget("")
		}
		s.rows = append(s.rows, r)
		r = row{name: fmt.Sprintf("%d writer(s): write latency", writers), median: fmtMs(median(ms(lat))), p99: fmtMs(p99(ms(lat))),
			trials: thousands(int64(len(lat))) + " writes"}
		r.target, r.met = noTarget("")
		s.rows = append(s.rows, r)

		ratio := median(fRates) / median(rates)
		r = row{name: fmt.Sprintf("%d writer(s) on a follower: commits/s", writers), median: fmtRate(median(fRates), "/s"),
			p99: fmtRate(quantile(fRates, 0.01), "/s"), trials: fmt.Sprintf("%d × %s writes", len(fRates), thousands(int64(total))),
			baseline: fmtRate(median(rates), "/s on the leader"), ratio: fmtRatio(ratio) + " the leader's"}
		switch writers {
		case 1:
			r.target, r.met = targetGE(ratio, 0.5, "≥ 0.5× the leader's", "[scale]")
		case 256:
			r.target, r.met = targetGE(ratio, 0.8, "≥ 0.8× the leader's", "[scale]")
		default:
			r.target, r.met = noTarget("")
		}
		s.rows = append(s.rows, r)
		pRatio := p99(ms(fLat)) / p99(ms(lat))
		r = row{name: fmt.Sprintf("%d writer(s) on a follower: write latency", writers), median: fmtMs(median(ms(fLat))), p99: fmtMs(p99(ms(fLat))),
			trials: thousands(int64(len(fLat))) + " writes", baseline: "p99 " + fmtMs(p99(ms(lat))) + " on the leader",
			ratio: fmtRatio(pRatio) + " the leader's p99"}
		r.target, r.met = targetLE(pRatio, 2, "p99 ≤ 2× the leader's", "[scale]")
		s.rows = append(s.rows, r)
	}

	large, notes, err := largeValues(cfg.largeWrites)
	if err != nil {
		return nil, err
	}
	s.rows = append(s.rows, large...)
	s.notes = append(s.notes, notes...)

	took, err := restartTimes(cfg.restartEntries, cfg.restartTrials)
	if err != nil {
		return nil, err
	}
	r := row{name: fmt.Sprintf("restart of a one-node cluster after %s writes: `New` + `Start` → ready", thousands(int64(cfg.restartEntries))),
		median: fmtMs(median(ms(took))), p99: fmtMs(p99(ms(took))), trials: fmt.Sprint(len(took))}
	r.target, r.met = noTarget("[durability]")
	s.rows = append(s.rows, r)
	s.notes = append(s.notes,
		"The restart of a lone voter includes its election: a randomised 500–1,000 ms heartbeat timeout before it leads again. Snapshots every `SnapshotThreshold` (4,096) entries and on `Stop` bound what Raft replays.",
		"In a cluster a restarted node follows the existing leader and skips that wait; the multi-process test `TestWholeClusterKill9AndRestart` restarts all three nodes after `kill -9` (target ≤ 5 s).")
	return s, nil
}

// restartTimes writes entries custom-data values (over 1,000 keys) to a
// one-node cluster with a DataDir, stops it, then restarts it trials times
// and returns New+Start durations, checking every key survived.
func restartTimes(entries, trials int) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "clusterkit-bench-restart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	start := func() (*clusterkit.ClusterKit, error) {
		o := options("node-1", addr, nil, settings{})
		o.DataDir, o.Network = dir, &crashnet.Network{}
		ck, err := clusterkit.New(o)
		if err != nil {
			return nil, err
		}
		if err := ck.Start(context.Background()); err != nil {
			_ = ck.Stop(context.Background())
			return nil, err
		}
		return ck, nil
	}
	ck, err := start()
	if err != nil {
		return nil, err
	}
	value := make([]byte, 100)
	errc := make(chan error, 256)
	next := make(chan int, 1024)
	go func() {
		for i := range entries {
			next <- i
		}
		close(next)
	}()
	for range 256 {
		go func() {
			var first error
			for i := range next {
				if first == nil {
					_, first = ck.SetCustomData(context.Background(), fmt.Sprintf("k%d", i%1000), value)
				}
			}
			errc <- first
		}()
	}
	for range 256 {
		if e := <-errc; e != nil && err == nil {
			err = e
		}
	}
	if err2 := ck.Stop(context.Background()); err == nil {
		err = err2
	}
	if err != nil {
		return nil, err
	}
	var took []time.Duration
	for range trials {
		t0 := time.Now()
		ck, err := start()
		if err != nil {
			return nil, fmt.Errorf("restart: %w", err)
		}
		took = append(took, time.Since(t0))
		n := len(ck.ListCustomDataKeys())
		if err := ck.Stop(context.Background()); err != nil {
			return nil, err
		}
		if want := min(entries, 1000); n != want {
			return nil, fmt.Errorf("%d keys after the restart, want %d", n, want)
		}
	}
	return took, nil
}
