package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// cluster is what the hooks of TestRaftLevels know: node-3 was removed,
// node-4 is stopping by plan, node-2 is a member in good standing.
type cluster struct {
	stopping, quorumLostByPlan bool
}

func (c *cluster) hooks() Hooks {
	addrs := map[string]string{"10.0.0.2:7000": "node-2", "10.0.0.3:7000": "node-3", "10.0.0.4:7000": "node-4"}
	return Hooks{
		Peer: func(p string) (string, bool) {
			if id, ok := addrs[p]; ok {
				p = id
			}
			return p, p == "node-3" || p == "node-4"
		},
		Stopping:         func() bool { return c.stopping },
		QuorumLostByPlan: func() bool { return c.quorumLostByPlan },
	}
}

func srv(id string) raft.Server {
	return raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress("10.0.0." + id[len(id)-1:] + ":7000")}
}

var (
	refused = &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	reset   = &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}
)

type quietErr struct{}

func (quietErr) Error() string { return "refused by the peer's handshake" }
func (quietErr) Quiet() bool   { return true }

// TestRaftLevels checks every rule of levelFor, line by line, in order (the
// outage rule remembers earlier lines).
func TestRaftLevels(t *testing.T) {
	c := &cluster{}
	var buf bytes.Buffer
	h := HCLogWith(jsonLogger(&buf, slog.LevelDebug), "raft", c.hooks())
	type line struct {
		level hclog.Level
		msg   string
		args  []interface{}
		want  string
		why   string
	}
	lines := []line{
		// Rule 1: catch-up.
		{hclog.Warn, "failed to get previous log", []interface{}{"previous-index", uint64(7), "last-index", uint64(0), "error", errors.New("log not found")}, "DEBUG", "a joiner's log is shorter"},
		{hclog.Warn, "failed to get previous log", []interface{}{"previous-index", uint64(7), "last-index", uint64(9), "error", errors.New("log not found")}, "WARN", "the index is in the log but unreadable"},
		{hclog.Warn, "appendEntries rejected, sending older logs", []interface{}{"peer", srv("node-5"), "next", uint64(1)}, "DEBUG", "the leader steps back"},
		{hclog.Warn, "skipping application of old log", []interface{}{"index", uint64(14)}, "DEBUG", "a commit index below an installed snapshot"},
		// Rule 3: peers the cluster expects gone.
		{hclog.Error, "failed to appendEntries to", []interface{}{"peer", srv("node-3"), "error", refused}, "DEBUG", "node-3 was removed"},
		{hclog.Error, "failed to heartbeat to", []interface{}{"peer", raft.ServerAddress("10.0.0.4:7000"), "backoff time", time.Millisecond, "error", refused}, "DEBUG", "node-4 is stopping by plan (by address)"},
		{hclog.Warn, "failed to contact", []interface{}{"server-id", raft.ServerID("node-4"), "time", time.Second}, "DEBUG", "lost contact with a peer stopping by plan"},
		{hclog.Warn, "heartbeat timeout reached, starting election", []interface{}{"last-leader-addr", raft.ServerAddress("10.0.0.4:7000"), "last-leader-id", raft.ServerID("node-4")}, "INFO", "the last leader stopped by plan"},
		// Rule 4: one warning per outage of a peer, whatever the RPC.
		{hclog.Error, "failed to heartbeat to", []interface{}{"peer", raft.ServerAddress("10.0.0.2:7000"), "backoff time", time.Millisecond, "error", reset}, "WARN", "node-2's outage begins"},
		{hclog.Error, "failed to appendEntries to", []interface{}{"peer", srv("node-2"), "error", refused}, "DEBUG", "the same outage"},
		{hclog.Warn, "failed to contact", []interface{}{"server-id", raft.ServerID("node-2"), "time", time.Second}, "DEBUG", "the same outage"},
		{hclog.Error, "failed to make requestVote RPC", []interface{}{"target", srv("node-2"), "error", refused, "term", uint64(3)}, "DEBUG", "the same outage"},
		{hclog.Error, "failed to make requestVote RPC", []interface{}{"target", srv("node-5"), "error", errors.New("crashed"), "term", uint64(3)}, "WARN", "node-5's outage begins"},
		{hclog.Error, "failed to appendEntries to", []interface{}{"peer", srv("node-6"), "error", quietErr{}}, "DEBUG", "a refusal logged once already"},
		{hclog.Error, "failed to appendEntries to", []interface{}{"peer", srv("node-6"), "error", net.ErrClosed}, "DEBUG", "closed by our own shutdown"},
		// Rule 3: lost quorum (see the second part for one lost by plan).
		{hclog.Debug, "failed to contact", []interface{}{"server-id", raft.ServerID("node-3"), "time", time.Second}, "DEBUG", "raft's own debug line"},
		{hclog.Warn, "failed to contact quorum of nodes, stepping down", nil, "WARN", "voters not stopping by plan are out of contact"},
		// Rule 5: elections.
		{hclog.Warn, "heartbeat timeout reached, starting election", []interface{}{"last-leader-addr", "", "last-leader-id", ""}, "INFO", "no leader before"},
		{hclog.Warn, "heartbeat timeout reached, starting election", []interface{}{"last-leader-addr", raft.ServerAddress("10.0.0.7:7000"), "last-leader-id", raft.ServerID("node-7")}, "WARN", "the leader went quiet"},
		{hclog.Error, "failed to make requestVote RPC", []interface{}{"target", srv("node-7"), "error", refused, "term", uint64(4)}, "DEBUG", "the silent leader's outage was reported"},
		{hclog.Warn, "Election timeout reached, restarting election", nil, "INFO", "a further round"},
		{hclog.Warn, "not part of stable configuration, aborting election", nil, "INFO", "a non-voter holds no election"},
		{hclog.Warn, "rejecting pre-vote request since we have a leader", []interface{}{"from", raft.ServerAddress("10.0.0.2:7000")}, "DEBUG", "refused pre-vote"},
		{hclog.Warn, "rejecting vote request since our last index is greater", nil, "DEBUG", "refused vote"},
		{hclog.Error, "peer has newer term, stopping replication", []interface{}{"peer", srv("node-2")}, "INFO", "a deposed leader"},
		// Rule 6: inbound connections.
		{hclog.Error, "failed to decode incoming command", []interface{}{"error", reset}, "DEBUG", "the peer reset its connection"},
		{hclog.Error, "failed to decode incoming command", []interface{}{"error", errors.New("unknown rpc type 9")}, "ERROR", "garbage on the wire"},
		// Rule 7: a snapshot refused for now.
		{hclog.Error, "failed to take snapshot", []interface{}{"error", errors.New("cannot take snapshot now, wait until the configuration entry at 446 has been applied (have applied 445)")}, "DEBUG", "raft takes it later"},
		// Rule 8: the rest keeps its level (connection errors WARN).
		{hclog.Error, "failed to take snapshot", []interface{}{"error", errors.New("disk full")}, "ERROR", ""},
		{hclog.Error, "failed to make TimeoutNow RPC", []interface{}{"error", refused}, "WARN", ""},
		{hclog.Warn, "unable to get address for server, using fallback address", []interface{}{"id", "node-9"}, "WARN", ""},
		{hclog.Info, "entering follower state", nil, "INFO", ""},
	}
	for _, l := range lines {
		h.Log(l.level, l.msg, l.args...)
	}
	c.quorumLostByPlan = true
	byPlan := line{hclog.Warn, "failed to contact quorum of nodes, stepping down", nil, "INFO", "the planned stops of the others took the quorum"}
	h.Log(byPlan.level, byPlan.msg)
	lines = append(lines, byPlan)
	// Rule 2: this node is stopping.
	c.stopping = true
	stopping := []line{
		{hclog.Error, "failed to heartbeat to", []interface{}{"peer", raft.ServerAddress("10.0.0.8:7000"), "error", reset}, "DEBUG", "a new peer's failure, while stopping"},
		{hclog.Warn, "failed to contact quorum of nodes, stepping down", nil, "DEBUG", ""},
		{hclog.Warn, "heartbeat timeout reached, starting election", []interface{}{"last-leader-addr", "x", "last-leader-id", raft.ServerID("node-9")}, "DEBUG", ""},
		{hclog.Warn, "Election timeout reached, restarting election", nil, "DEBUG", ""},
		{hclog.Error, "failed to accept connection", []interface{}{"error", reset}, "DEBUG", "a connection error while stopping"},
		{hclog.Error, "failed to take snapshot", []interface{}{"error", errors.New("disk full")}, "ERROR", "not a shutdown consequence"},
	}
	for _, l := range stopping {
		h.Log(l.level, l.msg, l.args...)
	}
	all := append(lines, stopping...)
	recs := records(t, &buf)
	if len(recs) != len(all) {
		t.Fatalf("%d records for %d lines", len(recs), len(all))
	}
	for i, l := range all {
		if recs[i]["msg"] != l.msg || recs[i]["level"] != l.want {
			t.Errorf("line %d %q (%s): level %v, want %s", i, l.msg, l.why, recs[i]["level"], l.want)
		}
	}
}

// TestRaftLevelsOutageEnds: a peer that has been free of failures for
// OutageGap warns again on its next failure.
func TestRaftLevelsOutageEnds(t *testing.T) {
	s := newRaftState(Hooks{})
	t0 := time.Now()
	args := []interface{}{"peer", srv("node-2"), "error", refused}
	for i, c := range []struct {
		at   time.Duration
		want slog.Level
	}{{0, slog.LevelWarn}, {time.Second, slog.LevelDebug}, {OutageGap, slog.LevelDebug}, {2*OutageGap + 2*time.Second, slog.LevelWarn}} {
		if got := s.levelFor(slog.LevelError, "failed to appendEntries to", args, t0.Add(c.at)); got != c.want {
			t.Errorf("failure %d at +%v: %v, want %v", i, c.at, got, c.want)
		}
	}
}
