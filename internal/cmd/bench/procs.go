package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// proc is one examples/node process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// running holds the node processes not yet reaped, for killRunning.
var running = struct {
	sync.Mutex
	procs map[*proc]bool
}{procs: map[*proc]bool{}}

// killRunning kills every node process still running. The watchdog calls it
// before os.Exit, which skips the deferred stops: without it the nodes
// would outlive the program.
func killRunning() {
	running.Lock()
	defer running.Unlock()
	for p := range running.procs {
		_ = p.cmd.Process.Kill()
	}
}

// probeClient bounds every request to a node process: one that accepts
// and never answers must not hang the run.
var probeClient = &http.Client{Timeout: 2 * time.Second}

// procCPU returns the user+system CPU time of pid from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: split after its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14 overall
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procRSS returns VmRSS of pid in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// startProc starts bin as a node, with extra flags, and waits for its
// "ready" line.
func startProc(bin, id, join string, extra ...string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"-id", id, "-http", addr, "-log-level", "error"}
	if join != "" {
		args = append(args, "-join", join)
	}
	args = append(args, extra...)
	p := &proc{cmd: exec.Command(bin, args...), addr: addr, done: make(chan error, 1)}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = io.Discard
	if path := os.Getenv("BENCH_PROC_LOG"); path != "" { // debugging a failed measurement: every process's INFO lines
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own descriptor
		p.cmd.Args = append(p.cmd.Args, "-log-level", "info")
		p.cmd.Stderr = f
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	running.Lock()
	running.procs[p] = true
	running.Unlock()
	ready := make(chan bool, 1)
	go func() {
		defer func() {
			running.Lock()
			delete(running.procs, p)
			running.Unlock()
		}()
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.HasPrefix(sc.Text(), "ready ") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		p.done <- p.cmd.Wait()
	}()
	select {
	case ok := <-ready:
		if ok {
			return p, nil
		}
		p.stop()
		return nil, fmt.Errorf("%s exited before it was ready", id)
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%w: %s not ready within 30 s", errTimeout, id)
	}
}

// stop sends SIGTERM and waits; SIGKILL after 10 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func procsConverged(ps []*proc) bool {
	var version uint64
	for i, p := range ps {
		c, err := client.New("http://"+p.addr, client.WithHTTPClient(probeClient))
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeClient.Timeout)
		h, err := c.DetailedHealth(ctx)
		cancel()
		if err != nil || !h.Ready || h.NodeCount != len(ps) || (i > 0 && h.TableVersion != version) {
			return false
		}
		version = h.TableVersion
	}
	return true
}

// idleProcesses builds examples/node, runs n of them as one cluster and
// returns CPU per process per 1 s interval (% of one core) and the RSS of
// each process at the end.
func idleProcesses(n int, window time.Duration) (cpu, rss []float64, err error) {
	bin, cleanup, err := buildNode()
	if err != nil {
		return nil, nil, err
	}
	defer cleanup()
	var ps []*proc
	defer func() {
		for _, p := range ps {
			p.stop()
		}
	}()
	for i := range n {
		join := ""
		if i > 0 {
			join = ps[0].addr
		}
		p, err := startProc(bin, fmt.Sprintf("node-%d", i+1), join)
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, p)
	}
	if err := waitFor(30*time.Second, "the node processes to converge", func() bool { return procsConverged(ps) }); err != nil {
		return nil, nil, err
	}
	time.Sleep(time.Second) // settle, as in-process
	cpu, err = sampleCPU(window, func() ([]time.Duration, error) {
		times := make([]time.Duration, len(ps))
		for i, p := range ps {
			var err error
			if times[i], err = procCPU(p.cmd.Process.Pid); err != nil {
				return nil, err
			}
		}
		return times, nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, p := range ps {
		r, err := procRSS(p.cmd.Process.Pid)
		if err != nil {
			return nil, nil, err
		}
		rss = append(rss, float64(r)/mib)
	}
	return cpu, rss, nil
}

// buildNode builds examples/node into a temporary directory; cleanup
// removes it.
func buildNode() (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "clusterkit-bench-node-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "node")
	build := exec.Command("go", "build", "-o", bin, "./examples/node")
	if out, err := build.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build ./examples/node (run from the module root): %v: %s", err, out)
	}
	return bin, func() { _ = os.RemoveAll(dir) }, nil
}
