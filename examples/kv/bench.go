package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The -bench mode: what each mode costs and what it loses, measured on
// three nodes in this process, the modes interleaved round by round so
// that they share the machine's state, and compared as ratios.

// benchConfig configures runBench.
type benchConfig struct {
	Story    modeStoryConfig // Options and the story's sizes; the modes are set per run
	Rounds   int             // rounds of the three modes (default 3)
	Writers  int             // concurrent writers, unpaced (default 32)
	Duration time.Duration   // measured load per run (default 3 s)
}

// benchRun is one mode's run.
type benchRun struct {
	Writes       int // acknowledged during the measured load
	Failed       int // writes that failed during the measured load
	CrashFailed  int // and during the crash (cut writes not counted)
	PerSec       float64
	P50, P99     time.Duration
	Lost         int // acknowledged writes lost after the primary's crash, under the same load
	QueuedAtKill int
}

func runBench(ctx context.Context, cfg benchConfig, out io.Writer) error {
	cfg.Rounds = max(cfg.Rounds, 1)
	if cfg.Writers <= 0 {
		cfg.Writers = 32
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 3 * time.Second
	}
	runs := map[int][]benchRun{}
	for round := range cfg.Rounds {
		for i, m := range storyModes {
			c := cfg.Story
			c.Replication, c.Routing, c.Nodes, c.Joiners, c.Writers = m.Replication, m.Routing, 3, -1, cfg.Writers
			r, err := benchOnce(ctx, c, cfg.Duration)
			if err != nil {
				return fmt.Errorf("round %d, %s/%s: %w", round+1, m.Replication, m.Routing, err)
			}
			fmt.Fprintf(os.Stderr, "round %d %s/%s: %.0f writes/s, p50 %v, p99 %v, %d failed; crash: %d failed, %d lost, %d queued\n",
				round+1, m.Replication, m.Routing, r.PerSec, ms(r.P50), ms(r.P99), r.Failed, r.CrashFailed, r.Lost, r.QueuedAtKill)
			runs[i] = append(runs[i], r)
		}
	}
	med := func(i int, f func(benchRun) float64) float64 {
		v := make([]float64, 0, len(runs[i]))
		for _, r := range runs[i] {
			v = append(v, f(r))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	perSec := func(r benchRun) float64 { return r.PerSec }
	p99 := func(r benchRun) float64 { return float64(r.P99) }
	p50 := func(r benchRun) float64 { return float64(r.P50) }
	fmt.Fprintf(out, "3 nodes in one process (RF 3, 64 partitions), %d keys, %d unpaced writers for %v per run; %d rounds, the three modes interleaved; medians.\n\n",
		cfg.Story.Keys, cfg.Writers, cfg.Duration, cfg.Rounds)
	fmt.Fprintln(out, "| mode | writes/s | p50 | p99 | failed writes (load; crash), per round | lost acknowledged writes after a primary crash, per round | writes queued on it at the crash |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
	for i, m := range storyModes {
		var lost, queued, failed []string
		for _, r := range runs[i] {
			lost = append(lost, fmt.Sprint(r.Lost))
			queued = append(queued, fmt.Sprint(r.QueuedAtKill))
			failed = append(failed, fmt.Sprintf("%d; %d", r.Failed, r.CrashFailed))
		}
		q := "n/a (sync)"
		if m.Replication == ReplicationAsync {
			q = join(queued)
		}
		fmt.Fprintf(out, "| %s, %s routing | %.0f | %v | %v | %s | %s | %s |\n", m.Replication, m.Routing,
			med(i, perSec), ms(time.Duration(med(i, p50))), ms(time.Duration(med(i, p99))), join(failed), join(lost), q)
	}
	fmt.Fprintf(out, "\nRatios (medians, same run): async ÷ sync writes/s **%.2f×**, p99 **%.2f×**; server ÷ client routing writes/s **%.2f×**, p99 **%.2f×**.\n",
		med(1, perSec)/med(0, perSec), med(1, p99)/med(0, p99), med(2, perSec)/med(0, perSec), med(2, p99)/med(0, p99))
	return nil
}

func join(v []string) string {
	out := ""
	for i, s := range v {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

// benchOnce: three nodes, the keys written, the measured load, then a
// crash of a primary under the same load, the failover, and the check of
// every key against its last acknowledged write.
func benchOnce(ctx context.Context, cfg modeStoryConfig, d time.Duration) (r benchRun, err error) {
	var out discard
	var s *modeStory
	cfg.defaults()
	err = withModeStory(ctx, cfg, &out, func(st *modeStory) error {
		s = st
		for _, ph := range []func() (string, error){s.formation, s.writeAll} {
			if _, err := ph(); err != nil {
				return err
			}
		}
		api := s.newAPI()
		lat := make([][]time.Duration, cfg.Writers)
		var failed atomic.Int64
		measure := func(ctx context.Context, record bool) *sync.WaitGroup {
			var wg sync.WaitGroup
			for w := range cfg.Writers {
				wg.Go(func() {
					var mine []string
					for i := w; i < cfg.Keys; i += cfg.Writers {
						mine = append(mine, keyName(i))
					}
					for i := 0; ctx.Err() == nil && len(mine) > 0; i++ {
						k := mine[i%len(mine)]
						seq := s.ackedOf(k) + 1
						s.noteTry(k, seq)
						t := time.Now()
						err := api.Put(ctx, k, value(k, seq))
						if ctx.Err() != nil {
							return
						}
						if err == nil {
							s.noteAck(k, seq)
							if record {
								lat[w] = append(lat[w], time.Since(t))
							}
						} else {
							failed.Add(1)
						}
					}
				})
			}
			return &wg
		}
		lctx, cancel := context.WithTimeout(s.ctx, d)
		measure(lctx, true).Wait()
		cancel()
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		if len(all) == 0 {
			return fmt.Errorf("no write acknowledged in %v", d)
		}
		slices.Sort(all)
		r.Writes, r.PerSec = len(all), float64(len(all))/d.Seconds()
		r.P50, r.P99 = all[len(all)/2], all[len(all)*99/100]
		r.Failed = int(failed.Swap(0))

		// The crash, under the same load. The writers stop right after it:
		// a write of a key after the crash would hide the loss of an
		// earlier one. The writes in flight are cut (not counted).
		kctx, kcancel := context.WithCancel(s.ctx)
		wg := measure(kctx, false)
		pace(s.ctx, 300*time.Millisecond)
		_, _, kerr := s.crash()
		kcancel()
		wg.Wait()
		r.CrashFailed = int(failed.Load())
		if kerr != nil {
			return kerr
		}
		r.QueuedAtKill = s.rep.QueuedAtKil
		if err := s.settled("the failover"); err != nil {
			return err
		}
		if _, err := s.check(); err != nil {
			return err
		}
		r.Lost = s.rep.Lost
		return nil
	})
	return r, err
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
