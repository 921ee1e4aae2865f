package actors

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// A member that no leader talks to may have been removed (it was paused or
// cut off for longer than the removal grace) or replaced by a newer process
// of its ID: nobody replicates to a node outside the configuration, so its
// own log never tells it. After a few election timeouts without a leader it
// asks the members it knows what they have committed about it.

type membershipTick struct{}

// maxCheckTargets bounds the members asked in one round of the self-check.
const maxCheckTargets = 8

// membershipAnswer is the first conclusive answer of a membership check (or
// none: answer is nil).
type membershipAnswer struct {
	nonce  uint64 // the life that asked
	answer *messages.MemberStatusResponse
}

// checkPeriod paces the self-check: twice the election timeout.
func (s *stateActor) checkPeriod() time.Duration {
	if et := s.cfg.ElectionTimeout; et > 0 {
		return 2 * et
	}
	return time.Second
}

func (s *stateActor) scheduleMembershipCheck() {
	if s.checkTimer != nil || s.stopped == nil {
		return
	}
	system, self := s.system, s.self
	s.checkTimer = time.AfterFunc(s.checkPeriod(), func() { system.Root.Send(self, &membershipTick{}) })
}

// checkMembership asks the known members about this node when it believes
// it is a member but has had no leader for a while.
func (s *stateActor) checkMembership() {
	defer s.scheduleMembershipCheck()
	if s.checking || s.cfg.Peers == nil || s.leaderlessSince.IsZero() || time.Since(s.leaderlessSince) < s.checkPeriod() {
		return
	}
	if st := s.cfg.Life.Status().State; st != MemberActive {
		return // joining retries on its own; removed, fenced and refused are settled
	}
	v := s.cfg.FSM.View()
	targets := s.knownAddresses(v)
	if len(targets) == 0 {
		return
	}
	// A few at random each round: in an outage of a large cluster every
	// node asks, and one answer settles it.
	rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	targets = targets[:min(len(targets), maxCheckTargets)]
	s.checking = true
	nonce, incarnation, clusterID := s.cfg.Life.Nonce(), s.cfg.Life.Admitted(), v.ClusterID()
	peers, system, self, timeout, id := s.cfg.Peers, s.system, s.self, s.cfg.rpcTimeout(), s.cfg.NodeID
	s.goWork(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		answers := make(chan *messages.MemberStatusResponse, len(targets))
		var wg sync.WaitGroup
		for _, addr := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := peers.MemberStatus(ctx, addr, &messages.MemberStatusRequest{Id: id})
				if err == nil && (clusterID == "" || resp.GetClusterId() == clusterID) {
					answers <- resp
				}
			}()
		}
		go func() { wg.Wait(); close(answers) }()
		var found *messages.MemberStatusResponse
		for resp := range answers {
			if conclusive(resp, nonce, incarnation) {
				found = resp
				cancel() // the others need not finish
				break
			}
		}
		for range answers { // drain: the senders end once cancelled
		}
		system.Root.Send(self, &membershipAnswer{nonce: nonce, answer: found})
	})
}

// conclusive reports whether an answer settles this life's membership: it
// is a member (nothing to do), was removed, or was replaced by a newer life.
// An answerer that knows nothing of this node may just be behind: only an
// answerer whose state is newer than this life's admission is believed.
func conclusive(r *messages.MemberStatusResponse, nonce, incarnation uint64) bool {
	switch {
	case r.GetMember() != nil:
		return r.GetMember().GetNonce() == nonce || r.GetMember().GetIncarnation() > incarnation
	case r.GetDeparted() != nil:
		d := r.GetDeparted()
		return d.GetMember().GetNonce() == nonce || d.GetMember().GetIncarnation() > incarnation
	}
	return r.GetAppliedIndex() > incarnation
}

func (s *stateActor) membershipAnswered(msg *membershipAnswer) {
	s.checking = false
	r := msg.answer
	if r == nil || msg.nonce != s.cfg.Life.Nonce() || s.cfg.Life.Status().State != MemberActive {
		return
	}
	incarnation := s.cfg.Life.Admitted()
	switch m, d := r.GetMember(), r.GetDeparted(); {
	case m != nil && m.GetNonce() == msg.nonce:
		return // still a member: the leader is just out of reach
	case m != nil:
		s.fence(m.GetIncarnation(), m.GetAddress(), "member "+r.GetNodeId())
		return
	case d != nil && d.GetMember().GetNonce() == msg.nonce:
		s.leaderHint = r.GetLeaderAddress()
		if s.removed(raftfsm.DepartureOf(d)) {
			s.retryRegistration(time.Millisecond)
		}
	case d != nil:
		s.fence(d.GetMember().GetIncarnation(), d.GetMember().GetAddress(), "member "+r.GetNodeId())
	default:
		// Removed so long ago that the cluster forgot it.
		s.leaderHint = r.GetLeaderAddress()
		if s.removed(raftfsm.Departure{Incarnation: incarnation, Reason: removalForgotten}) {
			s.retryRegistration(time.Millisecond)
		}
	}
}

// knownAddresses are the other nodes this node knows: the servers of its Raft
// configuration, the committed members and its seeds.
func (s *stateActor) knownAddresses(v *raftfsm.View) []string {
	var out []string
	add := func(addr string) {
		if addr != "" && addr != s.cfg.Self.GetAddress() && !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	if f := s.cfg.Raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			add(string(srv.Address))
		}
	}
	for _, m := range v.Members() {
		add(m.IP)
	}
	for _, a := range s.cfg.Seeds {
		add(a)
	}
	return out
}
