package clusterkit

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestLogsGoOnlyToOptionsLogger: Raft, raft-wal, protoactor and ClusterKit all
// log through Options.Logger; nothing writes to stderr on its own.
func TestLogsGoOnlyToOptionsLogger(t *testing.T) {
	leakCheck(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stderr
	os.Stderr = w
	var captured bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&captured, r); close(copied) }()
	restore := func() {
		os.Stderr = orig
		_ = w.Close()
		<-copied
		_ = r.Close()
	}
	defer func() {
		if os.Stderr != orig {
			restore()
		}
	}()

	var mu sync.Mutex
	var logs bytes.Buffer
	o := fastOptions(t, "node-1")
	o.DataDir = t.TempDir()
	o.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for range 2 { // the second start reads the raft-wal log and the snapshot store
		ck, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := ck.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := ck.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	restore()
	if captured.Len() != 0 {
		t.Fatalf("written to stderr:\n%s", captured.String())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"lib=raft", "lib=protoactor", "node ready", "became leader"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the logger got no %q line", want)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
