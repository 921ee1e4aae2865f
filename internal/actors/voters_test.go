package actors

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

func TestVotersPlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const stab = 2 * time.Second
	srv := func(id string, state autopilot.RaftState, healthy bool, since time.Duration, status autopilot.NodeStatus) *autopilot.ServerState {
		return &autopilot.ServerState{
			Server: autopilot.Server{ID: raft.ServerID(id), NodeStatus: status},
			State:  state,
			Health: autopilot.ServerHealth{Healthy: healthy, StableSince: now.Add(-since)},
		}
	}
	state := func(servers ...*autopilot.ServerState) *autopilot.State {
		st := &autopilot.State{Servers: map[raft.ServerID]*autopilot.ServerState{}}
		for _, s := range servers {
			st.Servers[s.Server.ID] = s
		}
		return st
	}
	ids := func(in []raft.ServerID) []string {
		out := []string{}
		for _, id := range in {
			out = append(out, string(id))
		}
		return out
	}
	z := func(s *autopilot.ServerState, zone string) *autopilot.ServerState {
		s.Server.Meta = map[string]string{"zone": zone}
		return s
	}
	alive, failed := autopilot.NodeAlive, autopilot.NodeFailed
	for _, c := range []struct {
		name            string
		st              *autopilot.State
		max             int
		promote, demote []string
	}{
		{"stable non-voters promoted, oldest first, up to MaxVoters", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftNonVoter, true, 3*time.Second, alive),
			srv("c", autopilot.RaftNonVoter, true, 5*time.Second, alive),
			srv("d", autopilot.RaftNonVoter, true, 4*time.Second, alive)), 3, []string{"c", "d"}, []string{}},
		{"two at a time while more members come: 1 → 3, not 1 → 2", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftNonVoter, true, 3*time.Second, alive),
			srv("c", autopilot.RaftNonVoter, true, time.Second, alive),
			srv("d", autopilot.RaftNonVoter, true, time.Second, alive)), 5, []string{}, []string{}},
		{"… and both once a second one is stable", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftNonVoter, true, 3*time.Second, alive),
			srv("c", autopilot.RaftNonVoter, true, 4*time.Second, alive),
			srv("d", autopilot.RaftNonVoter, true, time.Second, alive)), 5, []string{"c", "b"}, []string{}},
		{"3 → 4 waits for a fifth voter", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftVoter, true, time.Hour, alive),
			srv("c", autopilot.RaftVoter, true, time.Hour, alive),
			srv("d", autopilot.RaftNonVoter, true, 3*time.Second, alive),
			srv("e", autopilot.RaftNonVoter, true, time.Second, alive)), 5, []string{}, []string{}},
		{"an even count that is the final one is taken at once (two members)", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftNonVoter, true, 3*time.Second, alive)), 5, []string{"b"}, []string{}},
		{"… (four members, MaxVoters 5)", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftVoter, true, time.Hour, alive),
			srv("c", autopilot.RaftVoter, true, time.Hour, alive),
			srv("d", autopilot.RaftNonVoter, true, 3*time.Second, alive)), 5, []string{"d"}, []string{}},
		{"a failed member is one to come: 3 → 4 waits for it or its removal", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftVoter, true, time.Hour, alive),
			srv("c", autopilot.RaftVoter, true, time.Hour, alive),
			srv("d", autopilot.RaftNonVoter, true, 3*time.Second, alive),
			srv("x", autopilot.RaftNonVoter, false, time.Hour, failed)), 5, []string{}, []string{}},
		{"not yet stable: no promotion", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftNonVoter, true, time.Second, alive)), 5, []string{}, []string{}},
		{"a new life does not inherit its node ID's stability", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			func() *autopilot.ServerState {
				s := srv("b", autopilot.RaftNonVoter, true, time.Hour, alive)
				s.Server.Ext = now.Add(-time.Second) // this life was first seen 1 s ago
				return s
			}()), 5, []string{}, []string{}},
		{"a ghost (unhealthy) is never promoted", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("g", autopilot.RaftNonVoter, false, time.Hour, alive)), 5, []string{}, []string{}},
		{"an unhealthy voter is replaced by a healthy non-voter", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftVoter, false, 5*time.Second, alive),
			srv("c", autopilot.RaftVoter, true, time.Hour, alive),
			srv("d", autopilot.RaftNonVoter, true, time.Hour, alive)), 3, []string{"d"}, []string{"b"}},
		{"a slow voter with nobody to replace it keeps its vote", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftVoter, false, time.Hour, alive),
			srv("c", autopilot.RaftVoter, true, time.Hour, alive)), 3, []string{}, []string{}},
		{"an unreachable voter with nobody to replace it is demoted", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftVoter, false, time.Hour, failed),
			srv("c", autopilot.RaftVoter, true, time.Hour, alive)), 3, []string{}, []string{"b"}},
		{"unhealthy for less than twice the window: kept", state(
			srv("a", autopilot.RaftLeader, true, time.Hour, alive),
			srv("b", autopilot.RaftVoter, false, 3*time.Second, failed)), 3, []string{}, []string{}},
		{"the leader is never demoted", state(
			srv("a", autopilot.RaftLeader, false, time.Hour, failed)), 3, []string{}, []string{}},
		// Zones: at most ceil(5/3) = 2 voters per zone, emptier zones first.
		{"zones: promotions spread over zones, not by age alone", state(
			z(srv("a", autopilot.RaftLeader, true, time.Hour, alive), "z1"),
			z(srv("b", autopilot.RaftNonVoter, true, 9*time.Second, alive), "z1"),
			z(srv("c", autopilot.RaftNonVoter, true, 8*time.Second, alive), "z1"),
			z(srv("d", autopilot.RaftNonVoter, true, 7*time.Second, alive), "z2"),
			z(srv("e", autopilot.RaftNonVoter, true, 6*time.Second, alive), "z2"),
			z(srv("f", autopilot.RaftNonVoter, true, 5*time.Second, alive), "z3")), 5, []string{"d", "f", "b", "e"}, []string{}},
		{"zones: a crowded zone gets a candidate elsewhere promoted", state(
			z(srv("a", autopilot.RaftLeader, true, time.Hour, alive), "z1"),
			z(srv("b", autopilot.RaftVoter, true, time.Hour, alive), "z1"),
			z(srv("c", autopilot.RaftVoter, true, time.Hour, alive), "z1"),
			z(srv("d", autopilot.RaftNonVoter, true, time.Hour, alive), "z2")), 3, []string{"d"}, []string{"c"}},
		{"zones: then the crowded zone's newest healthy voter gives its seat back", state(
			z(srv("a", autopilot.RaftLeader, true, time.Hour, alive), "z1"),
			z(srv("b", autopilot.RaftVoter, true, 2*time.Hour, alive), "z1"),
			z(srv("c", autopilot.RaftVoter, true, time.Hour, alive), "z1"),
			z(srv("d", autopilot.RaftVoter, true, time.Hour, alive), "z2")), 3, []string{}, []string{"c"}},
		{"zones: a zone at its share takes no more voters", state(
			z(srv("a", autopilot.RaftLeader, true, time.Hour, alive), "z1"),
			z(srv("b", autopilot.RaftVoter, true, time.Hour, alive), "z1"),
			z(srv("c", autopilot.RaftVoter, true, time.Hour, alive), "z2"),
			z(srv("d", autopilot.RaftNonVoter, true, time.Hour, alive), "z1")), 5, []string{}, []string{}},
	} {
		ch := votersPlan(c.st, c.max, stab, now)
		if got := ids(ch.Promotions); !slices.Equal(got, c.promote) {
			t.Errorf("%s: promotions %v, want %v", c.name, got, c.promote)
		}
		if got := ids(ch.Demotions); !slices.Equal(got, c.demote) {
			t.Errorf("%s: demotions %v, want %v", c.name, got, c.demote)
		}
	}
}
