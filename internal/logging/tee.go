package logging

import (
	"context"
	"errors"
	"log/slog"
)

// Tee returns a handler that hands every record to each of hs that enables
// its level (nil handlers are left out): a test's checker next to the
// printed logs, an audit next to what a demo shows.
func Tee(hs ...slog.Handler) slog.Handler {
	t := make(tee, 0, len(hs))
	for _, h := range hs {
		if h != nil {
			t = append(t, h)
		}
	}
	return t
}

type tee []slog.Handler

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t tee) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(attrs)
	}
	return out
}

func (t tee) WithGroup(name string) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}
