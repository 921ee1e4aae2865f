package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// rssBytes returns the process's resident set size (VmRSS), or 0 where
// /proc is unavailable.
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

const mib = 1 << 20

// sampleCPU reads the CPU times that read returns (one per process) once a
// second for window and returns, per process and interval, the CPU used in
// % of one core. Each interval is divided by the wall time it really took:
// a sleep that overruns on a busy machine must not inflate the figure.
func sampleCPU(window time.Duration, read func() ([]time.Duration, error)) ([]float64, error) {
	prev, err := read()
	if err != nil {
		return nil, err
	}
	var out []float64
	t0 := time.Now()
	for range int(window / time.Second) {
		time.Sleep(time.Second)
		now, err := read()
		if err != nil {
			return nil, err
		}
		t1 := time.Now()
		wall := t1.Sub(t0).Seconds()
		for i := range now {
			out = append(out, 100*(now[i]-prev[i]).Seconds()/wall)
		}
		prev, t0 = now, t1
	}
	return out, nil
}

func runIdle(cfg *config) (*section, error) {
	s := &section{
		title: "Idle cost per node ([harness])",
		intro: fmt.Sprintf(`In-process clusters over loopback TCP, default options (P=64, RF=3, at most 5 voters, the others
non-voters; leader probes every member every 500 ms): the nodes start one after the other, converge, settle for 1 s,
then idle for %s. CPU is the process's user+system time (getrusage) per 1 s interval divided by the number of nodes,
in %% of one core, so the trials are the intervals. Memory is the Go heap after GC with the cluster running minus
before it started, divided by the number of nodes; RSS and goroutines likewise (in-process: the runtime and the
binary are shared, so a separate process per node costs more).`, cfg.idleWindow),
	}
	for _, n := range []int{3, cfg.idleLarge} {
		heap0, rss0, g0 := heapAfterGC(), rssBytes(), runtime.NumGoroutine()
		t0 := time.Now()
		c, err := startCluster(n, settings{})
		if err != nil {
			return nil, err
		}
		formed := time.Since(t0)
		time.Sleep(time.Second)
		cpu, err := sampleCPU(cfg.idleWindow, func() ([]time.Duration, error) {
			d, err := cpuTime()
			return []time.Duration{d}, err
		})
		if err != nil {
			c.stop()
			return nil, err
		}
		for i := range cpu {
			cpu[i] /= float64(n)
		}
		heap, rss, g := heapAfterGC(), rssBytes(), runtime.NumGoroutine()
		ok := converged(c.cks(), n)
		c.stop()
		if !ok {
			return nil, fmt.Errorf("%d idle nodes diverged", n)
		}
		perNode := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) / mib }
		r := row{name: fmt.Sprintf("%d nodes: CPU per node, %% of one core", n), median: fmt.Sprintf("%.2f%%", median(cpu)),
			p99: fmt.Sprintf("%.2f%%", p99(cpu)), trials: fmt.Sprintf("%d × 1 s", len(cpu))}
		r.target, r.met = noTarget("")
		s.rows = append(s.rows, r)
		r = row{name: fmt.Sprintf("%d nodes: Go heap per node after GC", n), median: fmt.Sprintf("%.1f MiB", perNode(heap, heap0)), trials: "1"}
		r.target, r.met = noTarget("[harness]")
		s.rows = append(s.rows, r)
		s.notes = append(s.notes, fmt.Sprintf("%d nodes: RSS %.1f MiB per node, %d goroutines per node; they started one after the other and converged in %s.",
			n, perNode(uint64(rss), uint64(rss0)), (g-g0)/n, formed.Round(10*time.Millisecond)))
	}
	if runtime.GOOS == "linux" {
		cpu, rss, err := idleProcesses(3, cfg.idleWindow)
		if err != nil {
			return nil, fmt.Errorf("separate processes: %w", err)
		}
		r := row{name: "3 separate `examples/node` processes: CPU per process, % of one core", median: fmt.Sprintf("%.2f%%", median(cpu)),
			p99: fmt.Sprintf("%.2f%%", p99(cpu)), trials: fmt.Sprintf("%d × 1 s × 3", len(cpu)/3)}
		r.target, r.met = noTarget("")
		s.rows = append(s.rows, r)
		r = row{name: "3 separate `examples/node` processes: RSS per process", median: fmt.Sprintf("%.1f MiB", median(rss)),
			p99: fmt.Sprintf("%.1f MiB", p99(rss)), trials: "3"}
		r.target, r.met = noTarget("")
		s.rows = append(s.rows, r)
		s.notes = append(s.notes, "Separate processes: /proc/<pid>/stat CPU ticks (10 ms resolution) per 1 s interval and /proc/<pid>/status VmRSS; each is a whole Go program (runtime, HTTP gateway, Prometheus registry).")
	}
	return s, nil
}
