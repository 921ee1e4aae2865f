package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestClusterStory runs the -cluster story in this process and checks what
// it established: every step, a failover to another node, the key's value
// through it, the stopped node back as a new incarnation, a rebalance that
// moved partitions to it, every key intact, and a clean end (no error from
// the stops, no goroutine left, the data directories removed).
func TestClusterStory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster for a few seconds")
	}
	ignore := goleak.IgnoreCurrent()
	var logs lockedBuffer
	o := storyOptions()
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	var out bytes.Buffer
	// Generous: the story takes a few seconds alone, more under -race on
	// a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	facts, err := runStory(ctx, storyConfig{Options: o, StepTimeout: 45 * time.Second}, &out)
	t.Logf("the story (%v):\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Logf("the nodes' logs (last 80 lines):\n%s", tail(logs.String(), 80))
		t.Fatal(err)
	}

	if want := []string{"formation", "write", "stop", "failover", "rejoin", "rebalance"}; !slices.Equal(facts.Steps, want) {
		t.Errorf("steps %v, want %v", facts.Steps, want)
	}
	for _, line := range []string{"== 1. formation", "== 2.", "== 3.", "== 4. failover", "== 5.", "== 6.", "== done"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("the story does not say %q", line)
		}
	}
	if facts.Primary == "" || facts.Primary == facts.Leader {
		t.Errorf("stopped %q, leader %q: the stopped primary must be a follower", facts.Primary, facts.Leader)
	}
	if facts.NewPrimary == "" || facts.NewPrimary == facts.Primary {
		t.Errorf("%s's primary went from %s to %q", facts.Partition, facts.Primary, facts.NewPrimary)
	}
	if facts.Failover <= 0 {
		t.Errorf("failover took %v", facts.Failover)
	}
	if facts.Written != "v2" || facts.Read != "v2" {
		t.Errorf("%s: wrote %q, read %q at the end; want v2 (written across the failover)", facts.Key, facts.Written, facts.Read)
	}
	if facts.RejoinedAs == 0 {
		t.Error("the restarted node has no incarnation after its NodeRejoin")
	}
	if facts.Moved == 0 {
		t.Error("the rebalance after the rejoin moved nothing to the node that came back")
	}
	if facts.KeysOK != storyExtraKeys+1 {
		t.Errorf("%d keys read back, want %d", facts.KeysOK, storyExtraKeys+1)
	}
	if _, err := os.Stat(facts.DataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data directories %s not removed: %v", facts.DataDir, err)
	}
	goleak.VerifyNone(t, ignore)
}

// TestClusterFlags: the single-node flags are refused with -cluster, with
// a message that says why.
func TestClusterFlags(t *testing.T) {
	for _, args := range [][]string{{"-cluster", "-id", "node-1"}, {"-cluster", "-data-dir", "/tmp/x"}, {"-cluster", "-join", "127.0.0.1:1"}} {
		err := run(args)
		if err == nil || !strings.Contains(err.Error(), "does not apply with -cluster") {
			t.Errorf("run %v: %v", args, err)
		}
	}
}

// lockedBuffer collects the nodes' logs, written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
