package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// Hooks tell the Raft log adapter what the node knows about itself and its
// peers. Both are called only for Raft's WARN and ERROR lines, from Raft's
// goroutines: they must be cheap, must not block and must not log.
type Hooks struct {
	// Peer resolves a Raft server ID or address to the member's node ID
	// (peer itself when it is no member's) and reports whether the cluster
	// expects that peer to be unreachable: it was removed from the
	// committed membership, or it is stopping by plan (its hand-over,
	// DrainNode, is committed). Nil: peers resolve to themselves and none
	// is expected gone.
	Peer func(peer string) (id string, expectedGone bool)
	// Stopping reports whether this node itself is going away: its Stop
	// has begun, or it learned that the cluster removed it. Nil: never.
	Stopping func() bool
	// QuorumLostByPlan reports whether the voters other than this node
	// that are not stopping by plan are fewer than a majority of the
	// voters: the planned stops of the others took the quorum. Nil: never.
	QuorumLostByPlan func() bool
}

// OutageGap is how long a peer's RPCs must have succeeded (no failure
// logged) before a new failure counts as a new outage and warns again.
const OutageGap = 30 * time.Second

// The level of Raft's lines. Raft logs at WARN or ERROR many things that are
// the protocol at work; at those levels ClusterKit's logs must mean "look at
// this". levelFor lowers Raft's WARN and ERROR lines by these rules, and
// never raises a line nor touches one below WARN:
//
//  1. Catch-up: a follower that lacks the leader's previous entry because
//     its log is shorter ("failed to get previous log" with previous-index >
//     last-index) and the leader stepping back ("appendEntries rejected,
//     sending older logs") are how every new, restarted or lagging member
//     is brought up to date: DEBUG. A follower whose log has the index but
//     cannot read it still warns. So is "skipping application of old log":
//     a follower that installed a snapshot then hears a commit index below
//     it, and has nothing to apply (seen in the demo as a member joined).
//  2. This node is going away (Stop has begun, or it was removed): failed
//     RPCs, lost contact, lost quorum, elections and connection errors are
//     the shutdown's consequences: DEBUG.
//  3. A peer the cluster expects gone (removed from the committed
//     membership, or stopping by plan): failed RPCs to it and lost contact
//     with it are DEBUG; a lost quorum when the voters not stopping by
//     plan are too few for one (Hooks.QuorumLostByPlan) is INFO; an election started because such a peer, the
//     last leader, went quiet is INFO.
//  4. A peer that fails unexpectedly: Raft logs every retry (several a
//     second, per RPC kind). The first failed RPC or lost contact of an
//     outage is a WARN; the others, until the peer has been free of
//     failures for OutageGap, are DEBUG. Failure detection reports the
//     peer itself (member suspect, removing unreachable member).
//  5. Elections: the start of an election because the leader went quiet
//     ("heartbeat timeout reached, starting election") is a WARN, except
//     by rule 3 or when there was no leader before (a node's first
//     election, at bootstrap or restart: INFO). Its further rounds
//     ("Election timeout reached, restarting election") and a non-voter's
//     notices that it holds no election and a deposed leader's "peer has
//     newer term, stopping replication" are INFO; a refused vote or
//     pre-vote is DEBUG (the candidate logs the election's outcome).
//  6. An inbound connection closed by the peer (reset, EOF) is DEBUG: the
//     peer's failure, if it is one, is reported from the outbound side.
//  7. A snapshot refused for now ("failed to take snapshot": "cannot take
//     snapshot now", a configuration entry is not applied yet) is DEBUG:
//     Raft takes it at its next interval, and whoever asked is told.
//  8. Other lines keep Raft's level, except ERROR lines about a connection:
//     closed by this node's own shutdown, or refused and already logged once
//     (an error with Quiet() true), DEBUG; refused, reset or cut, WARN.
func (s *raftState) levelFor(lvl slog.Level, msg string, args []interface{}, now time.Time) slog.Level {
	if lvl < slog.LevelWarn {
		return lvl
	}
	switch classify(msg) {
	case lineCatchUp:
		if msg == "failed to get previous log" {
			prev, ok1 := argUint(args, "previous-index")
			last, ok2 := argUint(args, "last-index")
			if !ok1 || !ok2 || prev <= last {
				return lvl
			}
		}
		return slog.LevelDebug
	case linePeerRPC:
		peerKey := "peer"
		switch msg {
		case "failed to make requestVote RPC":
			peerKey = "target"
		case "failed to contact":
			peerKey = "server-id"
		}
		peer, ok := peerOf(args, peerKey)
		if !ok {
			return connectionLevel(lvl, args, s.stopping())
		}
		if quietError(args) || s.stopping() {
			return slog.LevelDebug
		}
		id, gone := s.peer(peer)
		if gone {
			return slog.LevelDebug
		}
		if s.newOutage(id, now) {
			return slog.LevelWarn
		}
		return slog.LevelDebug
	case lineLostQuorum:
		if s.stopping() {
			return slog.LevelDebug
		}
		if s.hooks.QuorumLostByPlan != nil && s.hooks.QuorumLostByPlan() {
			return slog.LevelInfo
		}
		return lvl
	case lineLeaderLost:
		if s.stopping() {
			return slog.LevelDebug
		}
		last := argString(args, "last-leader-id")
		if last == "" {
			return slog.LevelInfo
		}
		id, gone := s.peer(last)
		if gone {
			return slog.LevelInfo
		}
		// This line reports the leader's outage: the failed RPCs to it
		// that follow (the votes asked of it) belong to the same outage.
		s.newOutage(id, now)
		return lvl
	case lineElection:
		if s.stopping() {
			return slog.LevelDebug
		}
		return slog.LevelInfo
	case lineVote:
		return slog.LevelDebug
	case lineSnapshot:
		if err := errorOf(args); err != nil && strings.HasPrefix(err.Error(), "cannot take snapshot now") {
			return slog.LevelDebug
		}
		return lvl
	case lineInbound:
		if s.stopping() || closedByPeer(args) {
			return slog.LevelDebug
		}
		return connectionLevel(lvl, args, false)
	}
	return connectionLevel(lvl, args, s.stopping())
}

type lineClass uint8

const (
	lineOther      lineClass = iota
	lineCatchUp              // rule 1
	linePeerRPC              // rules 2-4: a failed RPC to, or lost contact with, one peer
	lineLostQuorum           // rules 2, 3
	lineLeaderLost           // rules 2, 3, 5
	lineElection             // rules 2, 5
	lineVote                 // rule 5
	lineInbound              // rules 2, 6
	lineSnapshot             // rule 7
)

var raftLines = map[string]lineClass{
	"failed to get previous log":                 lineCatchUp,
	"appendEntries rejected, sending older logs": lineCatchUp,
	"skipping application of old log":            lineCatchUp,

	"failed to heartbeat to":                  linePeerRPC,
	"failed to appendEntries to":              linePeerRPC,
	"failed to start pipeline replication to": linePeerRPC,
	"failed to pipeline appendEntries":        linePeerRPC,
	"failed to send snapshot to":              linePeerRPC,
	"failed to install snapshot":              linePeerRPC, // the leader's, with peer=
	"failed to make requestVote RPC":          linePeerRPC,
	"failed to contact":                       linePeerRPC,

	"failed to contact quorum of nodes, stepping down": lineLostQuorum,
	"heartbeat timeout reached, starting election":     lineLeaderLost,

	"Election timeout reached, restarting election":       lineElection,
	"not part of stable configuration, aborting election": lineElection,
	"no known peers, aborting election":                   lineElection,
	"peer has newer term, stopping replication":           lineElection, // a deposed leader
	// A non-voter's notice that it holds no election.
	"heartbeat timeout reached, not part of a stable configuration or a non-voter, not triggering a leader election": lineElection,

	"duplicate requestVote from":        lineVote,
	"failed to decode incoming command": lineInbound,
	"failed to flush response":          lineInbound,
	"failed to take snapshot":           lineSnapshot,
}

func classify(msg string) lineClass {
	if c, ok := raftLines[msg]; ok {
		return c
	}
	if strings.HasPrefix(msg, "rejecting vote request") || strings.HasPrefix(msg, "rejecting pre-vote request") {
		return lineVote
	}
	return lineOther
}

// raftState is what the adapter remembers across lines: shared by every
// logger derived from one HCLogWith.
type raftState struct {
	hooks Hooks

	mu sync.Mutex
	// failedAt is when an RPC to a peer (by node ID) last failed.
	failedAt map[string]time.Time
}

func newRaftState(h Hooks) *raftState {
	return &raftState{hooks: h, failedAt: map[string]time.Time{}}
}

func (s *raftState) stopping() bool { return s.hooks.Stopping != nil && s.hooks.Stopping() }

func (s *raftState) peer(p string) (string, bool) {
	if s.hooks.Peer == nil {
		return p, false
	}
	return s.hooks.Peer(p)
}

// newOutage records a failure to reach peer id and reports whether it
// starts an outage: no failure was recorded in the OutageGap before.
func (s *raftState) newOutage(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, seen := s.failedAt[id]
	s.failedAt[id] = now
	for p, at := range s.failedAt {
		if now.Sub(at) > OutageGap {
			delete(s.failedAt, p)
		}
	}
	return !seen || now.Sub(last) > OutageGap
}

// arg returns the value of key in hclog's key/value pairs.
func arg(args []interface{}, key string) (interface{}, bool) {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == key {
			return args[i+1], true
		}
	}
	return nil, false
}

func argString(args []interface{}, key string) string {
	v, ok := arg(args, key)
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func argUint(args []interface{}, key string) (uint64, bool) {
	v, ok := arg(args, key)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case uint64:
		return n, true
	case int:
		return uint64(n), n >= 0
	}
	u, err := strconv.ParseUint(fmt.Sprint(v), 10, 64)
	return u, err == nil
}

// peerOf returns the peer a line names under key: raft gives a raft.Server
// (its ID is used), a ServerID, a ServerAddress or a string.
func peerOf(args []interface{}, key string) (string, bool) {
	v, ok := arg(args, key)
	if !ok {
		return "", false
	}
	var p string
	switch t := v.(type) {
	case raft.Server:
		p = string(t.ID)
		if p == "" {
			p = string(t.Address)
		}
	case *raft.Server:
		if t == nil {
			return "", false
		}
		p = string(t.ID)
	case raft.ServerID:
		p = string(t)
	case raft.ServerAddress:
		p = string(t)
	case string:
		p = t
	default:
		p = fmt.Sprint(v)
	}
	return p, p != ""
}

// errorOf returns the first error among a line's values.
func errorOf(args []interface{}) error {
	for i := 1; i < len(args); i += 2 {
		if err, ok := args[i].(error); ok {
			return err
		}
	}
	return nil
}

// quietError: the connection was closed by this node (its own shutdown), or
// refused by a peer in a way already logged once (an error with a Quiet()
// bool method that returns true: a refused Raft handshake).
func quietError(args []interface{}) bool {
	err := errorOf(args)
	if err == nil {
		return false
	}
	var quiet interface{ Quiet() bool }
	return errors.Is(err, net.ErrClosed) || (errors.As(err, &quiet) && quiet.Quiet())
}

// closedByPeer: the error says the other side closed or reset the
// connection.
func closedByPeer(args []interface{}) bool {
	err := errorOf(args)
	return err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed))
}

// connectionLevel is rule 8: the level of a line of no other class.
func connectionLevel(lvl slog.Level, args []interface{}, stopping bool) slog.Level {
	err := errorOf(args)
	if err == nil {
		return lvl
	}
	if quietError(args) {
		return slog.LevelDebug
	}
	var ne net.Error
	conn := errors.Is(err, syscall.ECONNREFUSED) || closedByPeer(args) || (errors.As(err, &ne) && ne.Timeout())
	switch {
	case conn && stopping:
		return slog.LevelDebug
	case conn && lvl > slog.LevelWarn:
		return slog.LevelWarn
	}
	return lvl
}
