// Package proctest runs this module's commands as real processes in tests:
// built once per test binary, started on loopback, waited for until they
// print their "ready" line, killed with SIGKILL. The example programs' tests
// use it so that failures are real (kill -9, restarts on a data directory).
package proctest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary is a command of this module, built on first use.
type Binary struct {
	// Pkg is the package to build, as for go build ("." for the test's own).
	Pkg string

	once sync.Once
	path string
	err  error
}

// Path builds the binary once and returns its path. It skips the test with
// -short: building and running processes is slow.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "clusterkit-proctest-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(filepath.Clean(b.Pkg)))
		if b.Pkg == "." {
			b.path = filepath.Join(dir, "cmd")
		}
		build := exec.Command("go", "build", "-o", b.path, b.Pkg)
		build.Stderr = os.Stderr
		b.err = build.Run()
	})
	if b.err != nil {
		t.Fatalf("build %s: %v", b.Pkg, b.err)
	}
	return b.path
}

// Remove deletes the built binary; call it from TestMain after m.Run.
func (b *Binary) Remove() {
	if b.path != "" {
		_ = os.RemoveAll(filepath.Dir(b.path))
	}
}

// FreeAddr returns a loopback address that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is one running process.
type Proc struct {
	Cmd *exec.Cmd
	// Done is closed once the process exited and its output was read.
	Done chan struct{}
}

// Start starts cmd (its Stderr set by the caller, or inherited) and waits
// until it prints a line starting with "ready "; ready checks that line.
// Every stdout line is also passed to onLine (nil: ignored), from one
// goroutine. The test's cleanup kills the process if it still runs.
func Start(t testing.TB, name string, cmd *exec.Cmd, ready func(line string) bool, onLine func(line string)) *Proc {
	t.Helper()
	return Launch(t, name, cmd, ready, onLine).Wait(t)
}

// Pending is a process launched and not yet waited for: launch several,
// then Wait for each, to start them at the same moment.
type Pending struct {
	name      string
	proc      *Proc
	ready     func(line string) bool
	readyLine chan string
}

// Launch is Start without the wait for the ready line (see Pending.Wait).
func Launch(t testing.TB, name string, cmd *exec.Cmd, ready func(line string) bool, onLine func(line string)) *Pending {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Done: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die
		_ = cmd.Process.Kill()
		<-p.Done
	})
	readyLine := make(chan string, 1)
	go func() {
		defer close(p.Done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4<<20), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ready ") {
				select {
				case readyLine <- line:
				default:
				}
			}
			if onLine != nil {
				onLine(line)
			}
		}
		_ = cmd.Wait()
	}()
	return &Pending{name: name, proc: p, ready: ready, readyLine: readyLine}
}

// Wait waits until the process prints its ready line (30 s at most) and
// checks it.
func (pp *Pending) Wait(t testing.TB) *Proc {
	t.Helper()
	select {
	case line := <-pp.readyLine:
		if !pp.ready(line) {
			t.Fatalf("%s: unexpected ready line %q", pp.name, line)
		}
	case <-pp.proc.Done:
		t.Fatalf("%s exited before it was ready", pp.name)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready after 30 s", pp.name)
	}
	return pp.proc
}

// Kill9 kills the process with SIGKILL and waits until it is gone.
func (p *Proc) Kill9(t testing.TB, name string) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10 s after SIGKILL", name)
	}
}
