// Command bench measures ClusterKit end to end (lookups, placement quality,
// real clusters on loopback: formation, joins, failure detection, failover,
// leadership transfer, events, custom data, restart, idle cost) and writes
// one report: every figure as median and p99 over repeated trials, with its
// target from the issues and whether it is met.
//
//	go run ./internal/cmd/bench                 # full run, rewrites docs/benchmarks.md's generated block
//	go run ./internal/cmd/bench -quick          # CI: a few trials, small sizes, report on stdout only
//	go run ./internal/cmd/bench -only 'lookups|placement'   # some sections, report on stdout only
//
// It exits non-zero only when a measurement fails (a cluster that does not
// form, a timeout, a wrong result), never because a target is missed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// config holds the sizes and trial counts of one run.
type config struct {
	quick bool

	lookupIters, lookupTrials     int
	formation3Trials, formation10 int
	joinTrials                    int
	// rolling restart: a member down for rollingDown, then restarted
	rollingDown                   time.Duration
	rollingTrials                 int
	detectTrials, failoverTrials  int
	transferTrials                int
	eventLatencyEvents            int
	eventBurst, eventBurstTrials  int
	writes                        map[int]int // writers → writes per trial
	writeTrials                   int
	largeWrites                   int // 1 MiB values per writer (four writers)
	securityReads                 int // reads of the normal client, before and during the abuse
	restartEntries, restartTrials int
	idleLarge                     int
	idleWindow                    time.Duration
	// hand-off: joins per throttle, crash-and-returns per ReplicaDelay
	handoffJoinTrials, handoffAwayTrials int
	// scale: cluster sizes (the last is compared with the first) and the
	// CPU window at rest
	scaleSizes  []int
	scaleWindow time.Duration
	// limit bounds the whole run: nothing may hang CI.
	limit time.Duration
}

func fullConfig() *config {
	return &config{
		lookupIters: 1_000_000, lookupTrials: 11,
		formation3Trials: 10, formation10: 5,
		joinTrials:  20,
		rollingDown: 5 * time.Second, rollingTrials: 3,
		detectTrials: 10, failoverTrials: 10,
		transferTrials:     10,
		eventLatencyEvents: 2000,
		eventBurst:         5000, eventBurstTrials: 5,
		writes:      map[int]int{1: 2000, 16: 10000, 256: 40000},
		writeTrials: 3,
		largeWrites: 50, securityReads: 3000,
		restartEntries: 100_000, restartTrials: 5,
		idleLarge: 50, idleWindow: 10 * time.Second,
		handoffJoinTrials: 5, handoffAwayTrials: 3,
		scaleSizes: []int{50, 200}, scaleWindow: 10 * time.Second,
		// The soak's 2,000 join/leave cycles take most of it.
		limit: 100 * time.Minute,
	}
}

func quickConfig() *config {
	return &config{
		quick:       true,
		lookupIters: 200_000, lookupTrials: 2,
		formation3Trials: 2, formation10: 1,
		joinTrials:  3,
		rollingDown: 2 * time.Second, rollingTrials: 1,
		detectTrials: 1, failoverTrials: 1,
		transferTrials:     2,
		eventLatencyEvents: 200,
		eventBurst:         500, eventBurstTrials: 1,
		writes:      map[int]int{1: 200, 16: 1000, 256: 4000},
		writeTrials: 1,
		largeWrites: 10, securityReads: 300,
		restartEntries: 10_000, restartTrials: 2,
		idleLarge: 10, idleWindow: 2 * time.Second,
		handoffJoinTrials: 1, handoffAwayTrials: 1,
		scaleSizes: []int{10, 30}, scaleWindow: 2 * time.Second,
		limit: 12 * time.Minute,
	}
}

// benchmark is one section of the report.
type benchmark struct {
	name string
	run  func(*config) (*section, error)
}

var benchmarks = []benchmark{
	{"lookups", runLookups},
	{"placement", runPlacement},
	{"formation", runFormation},
	{"health", runHealth},
	{"leadership", runLeadership},
	{"events", runEvents},
	{"customdata", runCustomData},
	{"idle", runIdle},
	{"handoff", runHandoff},
	{"dashboard", runDashboard},
	{"security", runSecurity},
	{"scale", runScale},
	{"soak", runSoak},
}

func main() {
	quick := flag.Bool("quick", false, "few trials and small sizes (CI); prints the report and writes no file unless -out is given")
	out := flag.String("out", "", "file whose generated block to replace (default: docs/benchmarks.md for a full run of every section, none with -quick or -only)")
	only := flag.String("only", "", "run only the sections whose name matches this regexp: "+names())
	flag.Func("scale", "the scale section's cluster sizes, comma-separated (default 50,200; -quick 10,30)", func(v string) error {
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 6 {
				return fmt.Errorf("%q: want sizes of at least 6 members", f)
			}
			scaleSizes = append(scaleSizes, n)
		}
		return nil
	})
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the in-process nodes) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if addr := os.Getenv("BENCH_PPROF"); addr != "" {
		// Debugging a trend (a soak that grows): live profiles of the
		// in-process nodes, e.g. go tool pprof http://ADDR/debug/pprof/heap.
		go func() { fmt.Fprintln(os.Stderr, "bench: pprof:", http.ListenAndServe(addr, nil)) }()
	}
	if err := run(*quick, *out, *only); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// scaleSizes, when set (-scale), replaces the configuration's scale sizes.
var scaleSizes []int

func names() string {
	var n []string
	for _, b := range benchmarks {
		n = append(n, b.name)
	}
	return strings.Join(n, ", ")
}

func run(quick bool, out, only string) error {
	cfg := fullConfig()
	if quick {
		cfg = quickConfig()
	}
	if scaleSizes != nil {
		cfg.scaleSizes = scaleSizes
	}
	if out == "" && !quick && only == "" {
		// Only a complete full run replaces the committed figures.
		out = "docs/benchmarks.md"
	}
	var re *regexp.Regexp
	if only != "" {
		var err error
		if re, err = regexp.Compile(only); err != nil {
			return fmt.Errorf("-only: %w", err)
		}
	}
	if out != "" {
		// Fail before spending minutes on measurements the file cannot take.
		if doc, err := os.ReadFile(out); err == nil {
			if _, err := replaceBlock(string(doc), beginMarker+"\n"+endMarker+"\n"); err != nil {
				return fmt.Errorf("%s: %w", out, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}

	command := "go run ./internal/cmd/bench"
	if len(os.Args) > 1 {
		command += " " + strings.Join(os.Args[1:], " ")
	}
	m := describeMachine(command)
	start := time.Now()
	watchdog := time.AfterFunc(cfg.limit, func() {
		fmt.Fprintf(os.Stderr, "bench: the run exceeded %s; giving up\n", cfg.limit)
		killRunning()
		os.Exit(2)
	})
	defer watchdog.Stop()
	var sections []*section
	for _, b := range benchmarks {
		if re != nil && !re.MatchString(b.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", b.name)
		t0 := time.Now()
		s, err := b.run(cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		s.name = b.name
		sections = append(sections, s)
		fmt.Fprintf(os.Stderr, "   %s took %s\n", b.name, time.Since(t0).Round(100*time.Millisecond))
	}
	if len(sections) == 0 {
		return fmt.Errorf("-only %q matches no section (sections: %s)", only, names())
	}
	m.took = time.Since(start)
	block := render(m, quick, sections)
	fmt.Print(block)
	if out == "" {
		return nil
	}
	doc, err := os.ReadFile(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
		doc = []byte(block) // a new file holds just the block
	case err != nil:
		return err
	default:
		s, err := replaceBlock(string(doc), block)
		if err != nil {
			return fmt.Errorf("%s: %w", out, err)
		}
		doc = []byte(s)
	}
	if err := os.WriteFile(out, doc, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%s in all)\n", out, m.took.Round(time.Second))
	return nil
}
