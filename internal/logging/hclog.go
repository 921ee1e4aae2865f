package logging

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// HCLog adapts l to hclog.Logger, the interface hashicorp/raft (and
// raft-autopilot, raft-wal) log through, with no hooks: see HCLogWith.
func HCLog(l *slog.Logger, name string) hclog.Logger {
	return HCLogWith(l, name, Hooks{})
}

// HCLogWith adapts l to hclog.Logger. Every line gets lib=<name> (and
// sub=<sub-logger name> for a Named logger). hclog's Trace maps to slog
// Debug-4. The adapter
//
//   - expands hclog's formatted values (hclog.Fmt, Hex, Octal, Binary, Quote)
//     as hclog itself would print them, in the arguments of every call, in
//     With's implied arguments and in the standard-library logger's lines;
//   - keeps every key unique in a record: a library key that ClusterKit
//     uses itself (node, time, level, msg, source, lib, sub, actor,
//     component) is prefixed with the library's name and "_" (raft's
//     node="Node at ... [Candidate]" becomes raft_node, its time=250ms in
//     "failed to contact" raft_time), and a key given twice keeps its last
//     value;
//   - sets the level of Raft's routine lines by the rules of levelFor
//     (raftlevels.go), with what hooks tell it about the node and its peers.
func HCLogWith(l *slog.Logger, name string, hooks Hooks) hclog.Logger {
	h := &hcAdapter{base: l, name: name, st: newRaftState(hooks)}
	if name != "" {
		h.base = l.With("lib", name)
		h.prefix = name + "_"
	} else {
		h.prefix = "lib_"
	}
	h.l = h.base
	return h
}

type hcAdapter struct {
	base    *slog.Logger // l with lib=<name>
	l       *slog.Logger // base, with sub=<sub> for a Named logger
	name    string       // hclog's full name ("raft.transport")
	sub     string       // the name below lib ("transport")
	prefix  string       // of renamed keys ("raft_")
	implied []interface{}
	attrs   []slog.Attr // implied, converted
	st      *raftState  // shared by every logger derived from this one
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
	lvl := h.st.levelFor(toSlog(level), msg, args, time.Now())
	ctx := context.Background()
	if !h.l.Enabled(ctx, lvl) {
		return
	}
	h.l.LogAttrs(ctx, lvl, msg, h.merge(args)...)
}

// reserved are the keys ClusterKit's own loggers (and slog) use: a library
// key among them is renamed, so that no JSON line has a key twice.
var reserved = map[string]bool{
	slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true, slog.SourceKey: true,
	"node": true, "lib": true, "sub": true, "actor": true, "component": true,
}

// key returns the slog key of a library key.
func (h *hcAdapter) key(k string) string {
	if reserved[k] {
		return h.prefix + k
	}
	return k
}

// convert turns hclog's key/value pairs into slog attributes: a trailing
// value without a key is EXTRA_VALUE, a key that is not a string BAD_KEY,
// formatted values are expanded, reserved keys renamed and a repeated key
// keeps its last value.
func (h *hcAdapter) convert(args []interface{}, into []slog.Attr) []slog.Attr {
	for i := 0; i < len(args); i += 2 {
		var a slog.Attr
		if i+1 >= len(args) {
			a = slog.Any("EXTRA_VALUE", expand(args[i]))
		} else {
			k, ok := args[i].(string)
			if !ok {
				k = "BAD_KEY"
			}
			a = slog.Any(h.key(k), expand(args[i+1]))
		}
		into = setAttr(into, a)
	}
	return into
}

// setAttr sets a in attrs, replacing an attribute of the same key.
func setAttr(attrs []slog.Attr, a slog.Attr) []slog.Attr {
	for i := range attrs {
		if attrs[i].Key == a.Key {
			attrs[i] = a
			return attrs
		}
	}
	return append(attrs, a)
}

// merge returns the implied attributes followed by args' (a call's key
// overrides the same implied key).
func (h *hcAdapter) merge(args []interface{}) []slog.Attr {
	out := make([]slog.Attr, len(h.attrs), len(h.attrs)+len(args)/2+1)
	copy(out, h.attrs)
	return h.convert(args, out)
}

// expand renders hclog's formatting types as hclog prints them: Fmt's
// format is applied (raft logs servers=hclog.Fmt("%+v", ...)), Hex, Octal
// and Binary become "0x..", "0..", "0b.." strings, Quote a plain string (the
// handler quotes it) and a captured stack trace its text.
func expand(v interface{}) interface{} {
	switch t := v.(type) {
	case hclog.Format:
		if len(t) == 0 {
			return ""
		}
		if f, ok := t[0].(string); ok {
			return fmt.Sprintf(f, t[1:]...)
		}
		return fmt.Sprint(t...)
	case hclog.Hex:
		return "0x" + strconv.FormatUint(uint64(t), 16)
	case hclog.Octal:
		return "0" + strconv.FormatUint(uint64(t), 8)
	case hclog.Binary:
		return "0b" + strconv.FormatUint(uint64(t), 2)
	case hclog.Quote:
		return string(t)
	case hclog.CapturedStacktrace:
		return string(t)
	}
	return v
}

func (h *hcAdapter) Trace(msg string, args ...interface{}) { h.Log(hclog.Trace, msg, args...) }
func (h *hcAdapter) Debug(msg string, args ...interface{}) { h.Log(hclog.Debug, msg, args...) }
func (h *hcAdapter) Info(msg string, args ...interface{})  { h.Log(hclog.Info, msg, args...) }
func (h *hcAdapter) Warn(msg string, args ...interface{})  { h.Log(hclog.Warn, msg, args...) }
func (h *hcAdapter) Error(msg string, args ...interface{}) { h.Log(hclog.Error, msg, args...) }

func (h *hcAdapter) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), toSlog(level))
}

// IsTrace and the others report whether the handler takes hclog's level (a
// line whose level levelFor lowers may still be dropped).
func (h *hcAdapter) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hcAdapter) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hcAdapter) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hcAdapter) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hcAdapter) IsError() bool { return h.enabled(hclog.Error) }

func (h *hcAdapter) ImpliedArgs() []interface{} { return h.implied }

// With returns a logger whose lines carry args too; as in hclog, a key given
// again replaces the earlier value.
func (h *hcAdapter) With(args ...interface{}) hclog.Logger {
	c := *h
	c.implied = append(append([]interface{}{}, h.implied...), args...)
	c.attrs = h.convert(args, append([]slog.Attr{}, h.attrs...))
	return &c
}

func (h *hcAdapter) Name() string { return h.name }

// Named returns a sub-logger: sub=<name> below lib (nested names are
// joined with dots, sub=transport.pool), once per line.
func (h *hcAdapter) Named(name string) hclog.Logger {
	c := *h
	c.name = joinName(h.name, name)
	c.sub = joinName(h.sub, name)
	c.l = h.base.With("sub", c.sub)
	return &c
}

// ResetNamed replaces the sub-logger name.
func (h *hcAdapter) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name, c.sub = name, name
	c.l = h.base.With("sub", name)
	return &c
}

func joinName(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
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

// stdPrefixes are the level prefixes of standard-library log lines.
var stdPrefixes = []struct {
	prefix string
	level  hclog.Level
}{
	{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
	{"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error},
}

// Write logs one standard-library log line, inferring "[WARN]"-style
// prefixes; the line carries the logger's implied arguments like any other.
func (w *stdWriter) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	level := w.level
	for _, s := range stdPrefixes {
		if strings.HasPrefix(msg, s.prefix) {
			level, msg = s.level, strings.TrimSpace(msg[len(s.prefix):])
			break
		}
	}
	w.h.Log(level, msg)
	return len(p), nil
}
