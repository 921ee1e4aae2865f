// Package logging routes every log line of ClusterKit and of the libraries it
// embeds (hashicorp/raft through hclog, protoactor-go through its slog logger
// factory) into one *slog.Logger, so nothing writes to stderr on its own.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
)

// Default returns the default logger: a tint text handler on w at level,
// in colour only when w is a terminal.
func Default(w io.Writer, level slog.Leveler) *slog.Logger {
	f, isFile := w.(*os.File)
	return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly + ".000",
		NoColor: !isFile || !IsTerminal(f)}))
}

// Discard returns a logger that drops everything (tests, benchmarks).
func Discard() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// Demote returns a logger that logs every record `by` levels lower (for
// example Info as Debug). Libraries that are chatty at Info (protoactor logs
// every actor system start) stay quiet at our default level but remain
// available at Debug.
func Demote(l *slog.Logger, by slog.Level) *slog.Logger {
	return slog.New(&demoteHandler{h: l.Handler(), by: by})
}

type demoteHandler struct {
	h  slog.Handler
	by slog.Level
}

func (d *demoteHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, l-d.by)
}

func (d *demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level -= d.by
	return d.h.Handle(ctx, r)
}

func (d *demoteHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &demoteHandler{h: d.h.WithAttrs(attrs), by: d.by}
}

func (d *demoteHandler) WithGroup(name string) slog.Handler {
	return &demoteHandler{h: d.h.WithGroup(name), by: d.by}
}

// IsTerminal reports whether f is a terminal: colours only there, not in
// files, pipes and `docker logs`.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
