package main

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/clusterkit/clusterkit"
)

// largeValues writes 1 MiB custom-data values (the maximum) from two
// writers on the leader and two on a follower, next to a CPU-bound process
// that keeps one of the machine's cores busy, and reports their latency
// and how many times leadership changed meanwhile: a large entry must
// never cost the leader its lease ([scale]).
func largeValues(each int) ([]row, []string, error) {
	c, err := startCluster(3, settings{dataDir: true})
	if err != nil {
		return nil, nil, err
	}
	defer c.stop()
	leader, err := c.leader()
	if err != nil {
		return nil, nil, err
	}
	follower := c.others(leader)[0]
	term0 := leader.ck.GetMetrics().Term

	// The neighbour: a shell spinning on one core, as scripts/busy-test.sh
	// runs next to the tests.
	burner := exec.Command("sh", "-c", "while :; do :; done")
	if err := burner.Start(); err != nil {
		return nil, nil, fmt.Errorf("start the CPU-bound neighbour: %w", err)
	}
	defer func() { _ = burner.Process.Kill(); _ = burner.Wait() }()

	value := make([]byte, clusterkit.MaxCustomDataValue)
	for i := range value {
		value[i] = byte(i)
	}
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	start := time.Now()
	for w, ck := range []*clusterkit.ClusterKit{leader.ck, leader.ck, follower.ck, follower.ck} {
		wg.Go(func() {
			for i := range each {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				t0 := time.Now()
				_, err := ck.SetCustomData(ctx, fmt.Sprintf("large-%d", w), value)
				d := time.Since(t0)
				cancel()
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("writer %d, write %d: %w", w, i+1, err))
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if len(lat) == 0 {
		return nil, nil, fmt.Errorf("1 MiB writes next to a busy core: all %d failed, first: %w", len(errs), errs[0])
	}
	// Every node knows the same leader, at a term that counts the elections.
	now, err := c.leader()
	if err != nil {
		return nil, nil, err
	}
	changes := now.ck.GetMetrics().Term - term0
	r1 := row{name: "1 MiB values next to a busy core: write latency", median: fmtMs(median(ms(lat))), p99: fmtMs(p99(ms(lat))),
		trials: fmt.Sprintf("%d writes", len(lat))}
	r1.target, r1.met = noTarget("[scale]")
	r2 := row{name: "1 MiB values next to a busy core: elections meanwhile (terms)", median: fmt.Sprint(changes), trials: fmt.Sprintf("%d writes", len(lat))}
	r2.target, r2.met = targetLE(float64(changes), 0, "0", "[scale]")
	// A failed write is a figure, not an abort: the quick run in CI shares
	// its machine, and the full run must still report the rest.
	r3 := row{name: "1 MiB values next to a busy core: failed writes", median: fmt.Sprint(len(errs)), trials: fmt.Sprintf("%d writes", 4*each)}
	r3.target, r3.met = targetLE(float64(len(errs)), 0, "0", "[scale]")
	note := fmt.Sprintf("1 MiB values: 4 writers (2 on the leader, 2 on a follower) wrote %d values of 1 MiB in %v (%.1f MiB/s) next to `sh -c 'while :; do :; done'` "+
		"on one of the two cores; the leader's term went from %d to %d.", len(lat), took.Round(100*time.Millisecond), float64(len(lat))/took.Seconds(), term0, term0+changes)
	notes := []string{note}
	if len(errs) > 0 {
		notes = append(notes, fmt.Sprintf("The first failed 1 MiB write: %v.", errs[0]))
	}
	return []row{r1, r2, r3}, notes, nil
}
