package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// formatted are hclog's formatting values and how hclog prints them.
var formatted = []struct {
	key  string
	val  interface{}
	want string
}{
	{"servers", hclog.Fmt("%+v", []raft.Server{{Suffrage: raft.Voter, ID: "node-1", Address: "a:1"}}), "[{Suffrage:Voter ID:node-1 Address:a:1}]"},
	{"pct", hclog.Fmt("%d%%", 50), "50%"},
	{"hex", hclog.Hex(255), "0xff"},
	{"octal", hclog.Octal(8), "010"},
	{"binary", hclog.Binary(5), "0b101"},
	{"quoted", hclog.Quote("a b"), "a b"},
}

func formattedArgs() []interface{} {
	var args []interface{}
	for _, f := range formatted {
		args = append(args, f.key, f.val)
	}
	return args
}

// TestHCLogExpandsFormats: every path into the adapter (Log, Trace to
// Error, With's implied arguments, Named loggers, the standard-library
// logger and writer) prints hclog's formatted values expanded, never as
// the raw slice ("[%+v [...]]").
func TestHCLogExpandsFormats(t *testing.T) {
	paths := map[string]func(h hclog.Logger){
		"Log":   func(h hclog.Logger) { h.Log(hclog.Info, "m", formattedArgs()...) },
		"Trace": func(h hclog.Logger) { h.Trace("m", formattedArgs()...) },
		"Debug": func(h hclog.Logger) { h.Debug("m", formattedArgs()...) },
		"Info":  func(h hclog.Logger) { h.Info("m", formattedArgs()...) },
		"Warn":  func(h hclog.Logger) { h.Warn("m", formattedArgs()...) },
		"Error": func(h hclog.Logger) { h.Error("m", formattedArgs()...) },
		"With":  func(h hclog.Logger) { h.With(formattedArgs()...).Info("m") },
		"WithWith": func(h hclog.Logger) {
			h.With(formattedArgs()[:4]...).With(formattedArgs()[4:]...).Info("m")
		},
		"Named":      func(h hclog.Logger) { h.Named("transport").Info("m", formattedArgs()...) },
		"NamedWith":  func(h hclog.Logger) { h.Named("transport").With(formattedArgs()...).Warn("m") },
		"ResetNamed": func(h hclog.Logger) { h.ResetNamed("x").With(formattedArgs()...).Warn("m") },
		"StdLogger":  func(h hclog.Logger) { h.With(formattedArgs()...).StandardLogger(nil).Print("[WARN] m") },
		"StdWriter":  func(h hclog.Logger) { _, _ = h.With(formattedArgs()...).StandardWriter(nil).Write([]byte("m\n")) },
		"StdForced": func(h hclog.Logger) {
			h.With(formattedArgs()...).StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("m")
		},
		"ImpliedKept": func(h hclog.Logger) { h.With(formattedArgs()...).With("other", 1).Info("m") },
	}
	for name, log := range paths {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			log(HCLog(jsonLogger(&buf, slog.LevelDebug-4), "raft"))
			recs := records(t, &buf)
			if len(recs) != 1 {
				t.Fatalf("%d records: %s", len(recs), buf.String())
			}
			for _, f := range formatted {
				if got := recs[0][f.key]; got != f.want {
					t.Errorf("%s = %#v, want %q (line %s)", f.key, got, f.want, buf.String())
				}
			}
			if strings.Contains(buf.String(), "%") && !strings.Contains(buf.String(), "50%") {
				t.Errorf("a format verb is left: %s", buf.String())
			}
		})
	}
}

// TestHCLogKeysUnique: raft's keys that collide with ours (node, time, and
// slog's own) are renamed with the library's prefix; a key given twice
// (With then the call, With twice, Named twice) appears once, with the last
// value; every line is a JSON object without duplicate keys.
func TestHCLogKeysUnique(t *testing.T) {
	var buf bytes.Buffer
	base := jsonLogger(&buf, slog.LevelDebug).With("node", "node-1")
	h := HCLogWith(base, "raft", Hooks{})
	h.Info("entering candidate state", "node", "Node at a:1 [Candidate]", "term", 2)
	h.Debug("failed to contact", "server-id", raft.ServerID("node-2"), "time", "250ms")
	h.Info("odd keys", "level", "x", "msg", "y", "source", "z", "lib", "w", "sub", "v", "actor", "u", "component", "t")
	h.With("peer", "a").Info("override", "peer", "b")
	h.With("peer", "a").With("peer", "c").Info("with twice")
	h.Named("transport").Named("pool").Info("named twice")
	h.Info("repeated in a call", "k", 1, "k", 2)
	std := h.Named("x").With("node", "n").StandardLogger(nil)
	std.Print("[INFO] std line")

	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if err := CheckJSONLine([]byte(line)); err != nil {
			t.Errorf("%v: %s", err, line)
		}
	}
	recs := records(t, &buf)
	if len(recs) != 8 {
		t.Fatalf("%d records: %s", len(recs), buf.String())
	}
	checks := []struct {
		rec       int
		key, want string
	}{
		{0, "node", "node-1"}, {0, "raft_node", "Node at a:1 [Candidate]"},
		{1, "raft_time", "250ms"}, {1, "node", "node-1"},
		{2, "raft_level", "x"}, {2, "raft_msg", "y"}, {2, "raft_source", "z"}, {2, "raft_lib", "w"},
		{2, "raft_sub", "v"}, {2, "raft_actor", "u"}, {2, "raft_component", "t"}, {2, "lib", "raft"}, {2, "msg", "odd keys"},
		{3, "peer", "b"}, {4, "peer", "c"}, {5, "sub", "transport.pool"},
		{7, "raft_node", "n"}, {7, "sub", "x"}, {7, "msg", "std line"},
	}
	for _, c := range checks {
		if got := recs[c.rec][c.key]; got != c.want {
			t.Errorf("record %d: %s = %#v, want %q", c.rec, c.key, got, c.want)
		}
	}
	if got := recs[6]["k"]; got != float64(2) {
		t.Errorf("repeated key: k = %v, want the last value", got)
	}
	if _, ok := recs[1]["time"].(string); !ok {
		t.Errorf("slog's time was replaced: %v", recs[1])
	}
}

// TestCheckJSONLine: the checker refuses what is not one JSON object and a
// duplicate key at any depth.
func TestCheckJSONLine(t *testing.T) {
	for line, ok := range map[string]bool{
		`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`: true,
		`{}`:                          true,
		`{"a":1,"a":2}`:               false,
		`{"a":{"b":1,"b":2}}`:         false,
		`{"a":[{"b":1,"b":2}]}`:       false,
		`[1,2]`:                       false,
		`"x"`:                         false,
		`{"a":1} {"b":2}`:             false,
		`{"a":1`:                      false,
		`time=1 level=INFO msg=hello`: false,
	} {
		if err := CheckJSONLine([]byte(line)); (err == nil) != ok {
			t.Errorf("%s: err %v, want ok=%v", line, err, ok)
		}
	}
	var c LineChecker
	_, _ = c.Write([]byte(`{"a":1}` + "\n" + `{"level":"WARN"}` + "\n{\"a\":1,"))
	_, _ = c.Write([]byte(`"a":2}` + "\n"))
	n, problems := c.Lines()
	if n != 3 || len(problems) != 1 || !strings.Contains(problems[0], `duplicate key "a"`) {
		t.Fatalf("lines %d, problems %q", n, problems)
	}
	if c.Levels()["WARN"] != 1 {
		t.Fatalf("levels %v", c.Levels())
	}
}
