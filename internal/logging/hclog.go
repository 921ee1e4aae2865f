package logging

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// HCLog adapts l to hclog.Logger, the interface hashicorp/raft logs through.
// hclog's Trace maps to slog Debug-4.
func HCLog(l *slog.Logger, name string) hclog.Logger {
	h := &hcAdapter{l: l, name: name}
	if name != "" {
		h.l = l.With("lib", name)
	}
	return h
}

type hcAdapter struct {
	l       *slog.Logger
	name    string
	implied []interface{}
}

var _ hclog.Logger = (*hcAdapter)(nil)

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (h *hcAdapter) Log(level hclog.Level, msg string, args ...interface{}) {
	if level == hclog.Off {
		return
	}
	lvl := toSlog(level)
	if lvl == slog.LevelError {
		lvl = connectionLevel(args)
	}
	h.l.Log(context.Background(), lvl, msg, normalizeArgs(args)...)
}

// connectionLevel is the level of a raft ERROR record by the error it
// carries (errors with a Quiet() bool method that returns true are debug). Raft logs every failed RPC to an unreachable peer at ERROR, once
// per retry: a member that is down or restarting is normal operation (failure
// detection reports it once, as a warning), so refused or reset connections
// are warnings; a connection closed under the node's own shutdown is debug.
func connectionLevel(args []interface{}) slog.Level {
	for i := 1; i < len(args); i += 2 {
		err, ok := args[i].(error)
		if !ok {
			continue
		}
		var quiet interface{ Quiet() bool }
		switch {
		case errors.Is(err, net.ErrClosed):
			return slog.LevelDebug
		case errors.As(err, &quiet) && quiet.Quiet():
			// Already logged once by whoever produced it (a refused Raft
			// handshake): raft repeats it on every retry.
			return slog.LevelDebug
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
			errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return slog.LevelWarn
		}
	}
	return slog.LevelError
}

// normalizeArgs turns hclog's key/value pairs into slog arguments; hclog
// allows a trailing value without a key and non-string keys.
func normalizeArgs(args []interface{}) []any {
	out := make([]any, 0, len(args)+1)
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			out = append(out, slog.Any("EXTRA_VALUE", args[i]))
			break
		}
		key, ok := args[i].(string)
		if !ok {
			key = "BAD_KEY"
		}
		out = append(out, slog.Any(key, args[i+1]))
	}
	return out
}

func (h *hcAdapter) Trace(msg string, args ...interface{}) { h.Log(hclog.Trace, msg, args...) }
func (h *hcAdapter) Debug(msg string, args ...interface{}) { h.Log(hclog.Debug, msg, args...) }
func (h *hcAdapter) Info(msg string, args ...interface{})  { h.Log(hclog.Info, msg, args...) }
func (h *hcAdapter) Warn(msg string, args ...interface{})  { h.Log(hclog.Warn, msg, args...) }
func (h *hcAdapter) Error(msg string, args ...interface{}) { h.Log(hclog.Error, msg, args...) }

func (h *hcAdapter) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), toSlog(level))
}

func (h *hcAdapter) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hcAdapter) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hcAdapter) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hcAdapter) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hcAdapter) IsError() bool { return h.enabled(hclog.Error) }

func (h *hcAdapter) ImpliedArgs() []interface{} { return h.implied }

func (h *hcAdapter) With(args ...interface{}) hclog.Logger {
	return &hcAdapter{l: h.l.With(normalizeArgs(args)...), name: h.name, implied: append(append([]interface{}{}, h.implied...), args...)}
}

func (h *hcAdapter) Name() string { return h.name }

func (h *hcAdapter) Named(name string) hclog.Logger {
	full := name
	if h.name != "" {
		full = h.name + "." + name
	}
	return &hcAdapter{l: h.l.With("sub", name), name: full, implied: h.implied}
}

func (h *hcAdapter) ResetNamed(name string) hclog.Logger {
	return &hcAdapter{l: h.l.With("sub", name), name: name, implied: h.implied}
}

// SetLevel is a no-op: the level is the slog handler's.
func (h *hcAdapter) SetLevel(hclog.Level) {}

// GetLevel reports the most verbose level the slog handler accepts.
func (h *hcAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Error
}

func (h *hcAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hcAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return &stdWriter{h: h, level: level}
}

type stdWriter struct {
	h     *hcAdapter
	level hclog.Level
}

// Write logs one standard-library log line, inferring "[WARN]"-style prefixes.
func (w *stdWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	level := w.level
	for prefix, l := range map[string]hclog.Level{"[TRACE]": hclog.Trace, "[DEBUG]": hclog.Debug, "[INFO]": hclog.Info, "[WARN]": hclog.Warn, "[ERR]": hclog.Error, "[ERROR]": hclog.Error} {
		if strings.HasPrefix(msg, prefix) {
			level, msg = l, strings.TrimSpace(msg[len(prefix):])
			break
		}
	}
	w.h.Log(level, msg)
	return len(p), nil
}
