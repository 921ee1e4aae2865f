package actors

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestQuorumWithout: a restarted voter may leave raft's configuration for a
// moment only if the voters that answer are a majority without it.
func TestQuorumWithout(t *testing.T) {
	cfg := func(voters, nonvoters int) raft.Configuration {
		var c raft.Configuration
		for i := range voters {
			c.Servers = append(c.Servers, raft.Server{ID: raft.ServerID(rune('a' + i)), Suffrage: raft.Voter})
		}
		for i := range nonvoters {
			c.Servers = append(c.Servers, raft.Server{ID: raft.ServerID(rune('v' + i)), Suffrage: raft.Nonvoter})
		}
		return c
	}
	down := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	for _, c := range []struct {
		name        string
		c           raft.Configuration
		unreachable map[string]bool
		want        bool
	}{
		{"two voters: the other one alone remains", cfg(2, 0), nil, true},
		{"three voters, all others answer", cfg(3, 0), nil, true},
		{"three voters, one other down", cfg(3, 0), down("b"), false},
		{"five voters, one other down", cfg(5, 0), down("b"), true},
		{"five voters, two others down", cfg(5, 0), down("b", "d"), false},
		{"non-voters do not count", cfg(3, 2), down("v", "w"), true},
		{"the restarted node's own state does not count", cfg(3, 0), down("c"), true},
	} {
		restarted := raft.ServerID("c")
		if len(c.c.Servers) == 2 {
			restarted = "b"
		}
		tracker := NewPeerTracker()
		for id := range c.unreachable {
			tracker.heartbeatFailed(id, time.Now())
		}
		if got := quorumWithout(c.c, restarted, tracker); got != c.want {
			t.Errorf("%s: quorumWithout = %v, want %v", c.name, got, c.want)
		}
	}
}
