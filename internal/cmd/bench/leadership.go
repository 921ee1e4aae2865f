package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// gapOnce runs one writer per node of a 3-node cluster (each calls
// SetCustomData on its node in a loop), then makes the leader hand over
// leadership (TransferLeadership, or Stop when stop is set). It returns the
// longest interval between two successful writes (from any writer) that
// ends after the hand-over began, and, as the same trial's baseline, the
// longest one before it.
func gapOnce(stop bool) (gap, baseline time.Duration, failed int64, err error) {
	c, err := startCluster(3, settings{})
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.stop()
	leader, err := c.leader()
	if err != nil {
		return 0, 0, 0, err
	}
	var (
		mu       sync.Mutex
		done     []time.Time
		fails    atomic.Int64
		quit     atomic.Bool
		stopping atomic.Bool
		wg       sync.WaitGroup
	)
	value := make([]byte, 16)
	for i, n := range c.nodes {
		wg.Go(func() {
			for k := 0; !quit.Load() && k < 1_000_000; k++ {
				if n == leader && stopping.Load() {
					return // this writer's node is going away
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := n.ck.SetCustomData(ctx, fmt.Sprintf("writer-%d", i), value)
				cancel()
				if err != nil {
					fails.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				now := time.Now()
				mu.Lock()
				done = append(done, now)
				mu.Unlock()
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // the baseline window
	mark := time.Now()
	if stop {
		stopping.Store(true)
		c.drop(leader)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = leader.ck.TransferLeadership(ctx, "")
		cancel()
	}
	if err == nil {
		// Writes must resume: wait for a few after the hand-over returned.
		back := time.Now()
		err = waitFor(10*time.Second, "writes after the hand-over", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(done) > 0 && done[len(done)-1].After(back.Add(300*time.Millisecond))
		})
	}
	quit.Store(true)
	wg.Wait()
	if err != nil {
		return 0, 0, 0, err
	}
	slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(done); i++ {
		g := done[i].Sub(done[i-1])
		if done[i].Before(mark) {
			baseline = max(baseline, g)
		} else {
			gap = max(gap, g)
		}
	}
	return gap, baseline, fails.Load(), nil
}

func runLeadership(cfg *config) (*section, error) {
	s := &section{
		title: "Planned leadership changes ([cluster])",
		intro: `Three nodes, default options, one writer per node calling ` + "`SetCustomData`" + ` on its own node in a loop
(followers forward to the leader). The figure is the longest time without any successful write that ends after the
hand-over began; the baseline is the longest one in the 500 ms before it, in the same trial.`,
	}
	for _, m := range []struct {
		name string
		stop bool
	}{{"`TransferLeadership` on the leader → writes resume", false}, {"the leader's `Stop` (hands leadership over first) → writes resume", true}} {
		var gaps, bases []time.Duration
		var failed int64
		for range cfg.transferTrials {
			g, b, f, err := gapOnce(m.stop)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			gaps, bases, failed = append(gaps, g), append(bases, b), failed+f
		}
		r := row{name: m.name, median: fmtMs(median(ms(gaps))), p99: fmtMs(p99(ms(gaps))), trials: fmt.Sprint(len(gaps)),
			baseline: fmtMs(median(ms(bases))), ratio: fmtRatio(median(ms(gaps))/median(ms(bases))) + " the steady gap"}
		r.target, r.met = targetLE(p99(ms(gaps)), 50, "≤ 50 ms", "[cluster]")
		s.rows = append(s.rows, r)
		s.notes = append(s.notes, fmt.Sprintf("%s: %d writes failed over all trials (each is retried after 1 ms).", m.name, failed))
	}
	return s, nil
}
