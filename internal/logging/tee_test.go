package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestTee: each handler gets the records at its own level, with the
// attributes and groups added on the way; nil handlers are left out.
func TestTee(t *testing.T) {
	var debug, warn bytes.Buffer
	l := slog.New(Tee(nil,
		slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewTextHandler(&warn, &slog.HandlerOptions{Level: slog.LevelWarn}),
	)).With("node", "n1").WithGroup("g")
	l.Debug("low", "k", 1)
	l.Warn("high", "k", 2)
	if got := strings.Count(debug.String(), "\n"); got != 2 || !strings.Contains(debug.String(), "node=n1 g.k=1") {
		t.Errorf("debug handler got %d lines:\n%s", got, debug.String())
	}
	if got := warn.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "msg=high node=n1 g.k=2") {
		t.Errorf("warn handler got:\n%s", got)
	}
	if slog.New(Tee(nil)).Enabled(t.Context(), slog.LevelError) {
		t.Error("a tee of nothing enables a level")
	}
}
