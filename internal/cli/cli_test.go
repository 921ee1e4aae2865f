package cli

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestStartOrInterrupt(t *testing.T) {
	boom := errors.New("boom")
	if err := StartOrInterrupt(context.Background(), func() error { return boom }, nil); !errors.Is(err, boom) {
		t.Fatalf("start error: %v", err)
	}
	// Interrupted: start never returns on its own; stop unblocks it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	stopped := false
	err := StartOrInterrupt(ctx, func() error { <-release; return nil }, func() error { stopped = true; close(release); return nil })
	if !stopped || err == nil || !strings.Contains(err.Error(), "interrupted while starting") {
		t.Fatalf("interrupt: stopped=%v err=%v", stopped, err)
	}
}
