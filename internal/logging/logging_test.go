package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func jsonLogger(buf *bytes.Buffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
}

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHCLogRoutesLevelsAndArgs(t *testing.T) {
	var buf bytes.Buffer
	h := HCLog(jsonLogger(&buf, slog.LevelInfo), "raft")
	h.Debug("hidden")
	h.Info("entering leader state", "leader", "node-1", "term", 3)
	h.With("peer", "node-2").Warn("heartbeat failed", "odd")
	h.Named("snapshot").Error("boom", 42, "x")
	recs := records(t, &buf)
	if len(recs) != 3 {
		t.Fatalf("got %d records: %s", len(recs), buf.String())
	}
	if recs[0]["msg"] != "entering leader state" || recs[0]["leader"] != "node-1" || recs[0]["term"] != float64(3) || recs[0]["lib"] != "raft" {
		t.Errorf("record 0 = %v", recs[0])
	}
	if recs[1]["level"] != "WARN" || recs[1]["peer"] != "node-2" || recs[1]["EXTRA_VALUE"] != "odd" {
		t.Errorf("record 1 = %v", recs[1])
	}
	if recs[2]["level"] != "ERROR" || recs[2]["BAD_KEY"] != "x" || recs[2]["sub"] != "snapshot" {
		t.Errorf("record 2 = %v", recs[2])
	}
	if h.IsDebug() || !h.IsInfo() || h.GetLevel() != hclog.Info {
		t.Errorf("level queries wrong: debug=%v info=%v level=%v", h.IsDebug(), h.IsInfo(), h.GetLevel())
	}
}

func TestHCLogStandardWriterParsesPrefixes(t *testing.T) {
	var buf bytes.Buffer
	std := HCLog(jsonLogger(&buf, slog.LevelDebug), "").StandardLogger(nil)
	std.Print("[WARN] raft: something odd")
	std.Print("plain line")
	recs := records(t, &buf)
	if len(recs) != 2 || recs[0]["level"] != "WARN" || recs[0]["msg"] != "raft: something odd" || recs[1]["level"] != "INFO" {
		t.Fatalf("records = %v", recs)
	}
}

func TestDemote(t *testing.T) {
	var buf bytes.Buffer
	l := Demote(jsonLogger(&buf, slog.LevelInfo), 4)
	l.Info("now debug: dropped")
	l.Warn("now info: kept")
	recs := records(t, &buf)
	if len(recs) != 1 || recs[0]["level"] != "INFO" || recs[0]["msg"] != "now info: kept" {
		t.Fatalf("records = %v", recs)
	}
}

// TestHCLogConnectionErrors: raft's ERROR records about peers that are down
// become warnings, and connections closed by our own shutdown debug; other
// errors stay errors.
func TestHCLogConnectionErrors(t *testing.T) {
	var buf bytes.Buffer
	l := HCLog(jsonLogger(&buf, slog.LevelDebug), "raft")
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	closed := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	l.Error("failed to heartbeat to", "peer", "127.0.0.1:1", "error", refused)
	l.Error("failed to decode incoming command", "error", closed)
	l.Error("failed to make TimeoutNow RPC", "error", fmt.Errorf("rpc: %w", io.EOF))
	l.Error("failed to apply", "error", errors.New("disk full"))
	recs := records(t, &buf)
	want := []string{"WARN", "DEBUG", "WARN", "ERROR"}
	if len(recs) != len(want) {
		t.Fatalf("records = %v", recs)
	}
	for i, w := range want {
		if recs[i]["level"] != w {
			t.Errorf("record %d (%v): level %v, want %s", i, recs[i]["msg"], recs[i]["level"], w)
		}
	}
}
