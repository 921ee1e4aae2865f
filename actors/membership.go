package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Join refusal codes (JoinResponse.code).
const (
	JoinNotLeader      = "not_leader"
	JoinNotReady       = "not_ready"
	JoinInvalidMember  = "invalid_member"
	JoinConfigMismatch = "config_mismatch"
	JoinUnreachable    = "unreachable"
	JoinImpersonation  = "impersonation"
	JoinDuplicateNode  = "duplicate_node"
	JoinFailed         = "join_failed"
	JoinUnauthorized   = "unauthorized"
	JoinRemoved        = "removed"
)

// PermanentJoinRefusal reports whether a refusal code means "retrying will
// not help": the joiner must change its configuration.
func PermanentJoinRefusal(code string) bool {
	switch code {
	case JoinInvalidMember, JoinConfigMismatch, JoinImpersonation, JoinDuplicateNode, JoinUnauthorized, JoinRemoved:
		return true
	}
	return false
}

// JoinRefusedError is a join refused by the cluster.
type JoinRefusedError struct {
	Code, Message string
}

func (e *JoinRefusedError) Error() string { return "join refused (" + e.Code + "): " + e.Message }

func (s *stateActor) isRegistered(v *raftfsm.View) bool {
	m, ok := v.Member(s.cfg.NodeID)
	return ok && m.Incarnation == s.cfg.Self.GetIncarnation()
}

// wasRemoved: this very process was removed (left, or removed by an admin or
// for failing health checks). It must not register again: removal is final
// for an incarnation; a restart (a new incarnation) may rejoin.
func (s *stateActor) wasRemoved(v *raftfsm.View) bool {
	d, ok := v.Departed(s.cfg.NodeID)
	_, member := v.Member(s.cfg.NodeID)
	return ok && !member && d.Incarnation == s.cfg.Self.GetIncarnation()
}

// ensureRegistered makes sure the committed membership has this node's
// current incarnation: a leader proposes it, a follower asks the leader (or a
// seed, which forwards) and retries with backoff.
func (s *stateActor) ensureRegistered() {
	if s.prop == nil || s.regInFlight || s.regTimer != nil {
		return
	}
	v := s.cfg.FSM.View()
	if s.isRegistered(v) {
		s.regBackoff = 0
		return
	}
	if s.wasRemoved(v) {
		if !s.removedLogged {
			s.removedLogged = true
			d, _ := v.Departed(s.cfg.NodeID)
			s.log.Warn("this node was removed from the cluster; it stays out until restarted", "reason", d.Reason)
		}
		return
	}
	if s.leader {
		if s.ready {
			s.regInFlight = true
			s.proposeOwn(&messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{
				Member: proto.Clone(s.cfg.Self).(*messages.Member), LastAliveUnixNano: s.cfg.LastAlive,
			}}})
		}
		return
	}
	target := s.leaderAddr()
	s.viaHint = false
	if target == "" && s.leaderHint != "" {
		target, s.leaderHint, s.viaHint = s.leaderHint, "", true
	}
	if target == "" || target == s.cfg.Self.GetAddress() {
		if len(s.cfg.Seeds) == 0 || s.cfg.Peers == nil {
			return // a bootstrapping node registers itself once it leads
		}
		target = s.cfg.Seeds[s.seedNext%len(s.cfg.Seeds)]
		s.seedNext++
	}
	req := &messages.JoinRequest{
		Member:            proto.Clone(s.cfg.Self).(*messages.Member),
		LastAliveUnixNano: s.cfg.LastAlive,
		Expect:            s.cfg.Expect,
		ExpectKeyHash:     s.cfg.ExpectKeyHash,
	}
	s.regInFlight = true
	peers, system, self, timeout := s.cfg.Peers, s.system, s.self, s.cfg.rpcTimeout()
	s.log.Debug("asking to join", "via", target)
	s.goWork(func(ctx context.Context) {
		// Admission pings us back and waits for a commit: allow for both.
		ctx, cancel := context.WithTimeout(ctx, 2*timeout+s.cfg.ApplyTimeout)
		defer cancel()
		resp, err := peers.Join(ctx, target, req)
		if err == nil && !resp.GetAccepted() {
			err = &JoinRefusedError{Code: resp.GetCode(), Message: resp.GetError()}
		}
		system.Root.Send(self, &registerResult{resp: resp, err: err})
	})
}

func (s *stateActor) registered(r *registerResult) {
	s.regInFlight = false
	var refused *JoinRefusedError
	var remote *rpc.RemoteError
	if errors.As(r.err, &remote) && (remote.Status == 401 || remote.Status == 403) {
		refused = &JoinRefusedError{Code: JoinUnauthorized, Message: remote.Message}
		r.err = refused
	}
	switch {
	case r.err == nil:
		s.log.Info("joined the cluster", "index", r.resp.GetIndex(), "leader", r.resp.GetLeaderId())
		s.regBackoff = 0
		// The entry reaches this node by replication; check again later in
		// case it never does (leadership lost before it committed).
		s.retryRegistration(time.Second)
		return
	case errors.As(r.err, &refused) && PermanentJoinRefusal(refused.Code):
		s.log.Error("the cluster refused this node", "code", refused.Code, "reason", refused.Message)
		if s.cfg.OnJoinRefused != nil {
			s.cfg.OnJoinRefused(refused)
		}
		return
	}
	if hint := r.resp.GetLeaderAddress(); hint != "" && hint != s.cfg.Self.GetAddress() && !s.viaHint {
		// The answer names the leader: go there straight away (once; a
		// stale hint falls back to the backoff).
		s.leaderHint = hint
		s.retryRegistration(time.Millisecond)
		return
	}
	// Joins are cheap to retry; a short cap keeps a cluster that is still
	// electing its first leader from adding seconds to formation.
	s.regBackoff = min(max(2*s.regBackoff, 20*time.Millisecond), 250*time.Millisecond)
	s.log.Debug("join attempt failed; retrying", "error", r.err, "in", s.regBackoff)
	s.retryRegistration(s.regBackoff)
}

func (s *stateActor) retryRegistration(after time.Duration) {
	if s.regTimer != nil {
		s.regTimer.Stop()
	}
	system, self := s.system, s.self
	s.regTimer = time.AfterFunc(after, func() { system.Root.Send(self, &registerTick{}) })
}

func configMismatch(expect, c *messages.ClusterConfig, keyHashExplicit bool) error {
	var problems []string
	if n := expect.GetClusterName(); n != "" && n != c.GetClusterName() {
		problems = append(problems, fmt.Sprintf("ClusterName is %q but the cluster is %q", n, c.GetClusterName()))
	}
	if n := expect.GetPartitionCount(); n != 0 && n != c.GetPartitionCount() {
		problems = append(problems, fmt.Sprintf("PartitionCount is %d but the cluster has %d", n, c.GetPartitionCount()))
	}
	if n := expect.GetReplicationFactor(); n != 0 && n != c.GetReplicationFactor() {
		problems = append(problems, fmt.Sprintf("ReplicationFactor is %d but the cluster has %d", n, c.GetReplicationFactor()))
	}
	// Checked here, before the joiner becomes a voter: a joiner that found
	// the mismatch only after admission would stop as a dead voter, and a
	// one-node cluster would lose its quorum for good.
	if keyHashExplicit && expect.GetKeyHash() != c.GetKeyHash() {
		problems = append(problems, fmt.Sprintf("KeyHash is %v but the cluster uses %v", expect.GetKeyHash(), c.GetKeyHash()))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%v", problems)
}

// handleJoin admits a node. Only the leader admits; other members forward the
// request to it once. Validation happens before raft's configuration is
// touched, so a refused join leaves no trace.
func (s *stateActor) handleJoin(req *messages.JoinRequest, replyTo *actor.PID) {
	system := s.system
	reply := func(r *messages.JoinResponse) {
		if replyTo != nil {
			system.Root.Send(replyTo, r)
		}
	}
	leaderAddr, leaderID := s.cfg.Raft.LeaderWithID()
	refuse := func(code, format string, args ...any) {
		reply(&messages.JoinResponse{Code: code, Error: fmt.Sprintf(format, args...), LeaderId: string(leaderID), LeaderAddress: string(leaderAddr)})
	}
	m := req.GetMember()
	if !s.leader || !s.ready {
		addr := string(leaderAddr)
		if req.GetForwarded() || addr == "" || addr == s.cfg.Self.GetAddress() || s.cfg.Peers == nil {
			refuse(JoinNotLeader, "this node is not the leader and knows no leader yet")
			return
		}
		fwd := proto.Clone(req).(*messages.JoinRequest)
		fwd.Forwarded = true
		peers, timeout := s.cfg.Peers, s.cfg.rpcTimeout()
		s.goWork(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 2*timeout+s.cfg.ApplyTimeout)
			defer cancel()
			resp, err := peers.Join(ctx, addr, fwd)
			if err != nil {
				resp = &messages.JoinResponse{Code: JoinNotLeader, Error: "forward to leader " + addr + ": " + err.Error()}
			}
			reply(resp)
		})
		return
	}
	if m == nil {
		refuse(JoinInvalidMember, "no member in the request")
		return
	}
	if err := raftfsm.ValidateNodeID(m.GetId()); err != nil {
		refuse(JoinInvalidMember, "%v", err)
		return
	}
	if err := raftfsm.ValidateAddress(m.GetAddress()); err != nil {
		refuse(JoinInvalidMember, "%v", err)
		return
	}
	v := s.cfg.FSM.View()
	cfg := v.Config()
	if cfg == nil {
		refuse(JoinNotReady, "the cluster is still bootstrapping")
		return
	}
	if err := configMismatch(req.GetExpect(), cfg, req.GetExpectKeyHash()); err != nil {
		refuse(JoinConfigMismatch, "%v", err)
		return
	}
	if d, ok := v.Departed(m.GetId()); ok && d.Incarnation == m.GetIncarnation() {
		refuse(JoinRemoved, "node %q (incarnation %d) was removed (%s); restart it to rejoin", m.GetId(), m.GetIncarnation(), d.Reason)
		return
	}
	existing, known := v.Member(m.GetId())
	if known && existing.Incarnation == m.GetIncarnation() && existing.IP == m.GetAddress() {
		reply(&messages.JoinResponse{Accepted: true, Config: cfg, LeaderId: s.cfg.NodeID, LeaderAddress: s.cfg.Self.GetAddress(), Index: v.Version()})
		return
	}
	var oldAddr string
	if known {
		oldAddr = existing.IP
	}
	lastAlive := req.GetLastAliveUnixNano()
	if t, ok := s.lastContact[m.GetId()]; ok && t.UnixNano() > lastAlive {
		lastAlive = t.UnixNano()
	}
	s.pendingJoins[m.GetId()]++
	unreachable := maps.Clone(s.unreachable)
	delete(unreachable, m.GetId())
	peers, r, prop, self, timeout := s.cfg.Peers, s.cfg.Raft, s.prop, s.self, s.cfg.rpcTimeout()
	applyTimeout, selfID, selfAddr, logger := s.cfg.ApplyTimeout, s.cfg.NodeID, s.cfg.Self.GetAddress(), s.log
	s.goWork(func(ctx context.Context) {
		defer system.Root.Send(self, &joinDone{id: m.GetId()})
		resp := admit(ctx, admission{
			peers: peers, r: r, prop: prop, system: system, m: m, oldAddr: oldAddr, lastAlive: lastAlive,
			unreachable: unreachable,
			rpcTimeout:  timeout, applyTimeout: applyTimeout,
		})
		if resp.GetAccepted() {
			resp.Config, resp.LeaderId, resp.LeaderAddress = cfg, selfID, selfAddr
			logger.Info("admitted node", "node", m.GetId(), "address", m.GetAddress(), "index", resp.GetIndex())
		} else {
			logger.Warn("join refused", "node", m.GetId(), "address", m.GetAddress(), "code", resp.GetCode(), "reason", resp.GetError())
		}
		reply(resp)
	})
}

type admission struct {
	peers     Peers
	r         *raft.Raft
	prop      *proposer
	system    *actor.ActorSystem
	m         *messages.Member
	oldAddr   string
	lastAlive int64
	// unreachable: the other peers whose heartbeats fail right now.
	unreachable  map[string]bool
	rpcTimeout   time.Duration
	applyTimeout time.Duration
}

// admit runs the admission steps off the actor: prove the address belongs to
// the node, add it to raft as a non-voter (the reconciler promotes it if the
// committed membership makes it a voter), then commit its registration.
func admit(ctx context.Context, a admission) *messages.JoinResponse {
	m := a.m
	refuse := func(code, format string, args ...any) *messages.JoinResponse {
		return &messages.JoinResponse{Code: code, Error: fmt.Sprintf(format, args...)}
	}
	pctx, cancel := context.WithTimeout(ctx, a.rpcTimeout)
	pong, err := a.peers.Ping(pctx, m.GetAddress())
	cancel()
	if err != nil {
		return refuse(JoinUnreachable, "advertised address %s does not answer: %v", m.GetAddress(), err)
	}
	if pong.GetNodeId() != m.GetId() || pong.GetIncarnation() != m.GetIncarnation() {
		return refuse(JoinImpersonation, "advertised address %s answers as node %q incarnation %d, not %q incarnation %d",
			m.GetAddress(), pong.GetNodeId(), pong.GetIncarnation(), m.GetId(), m.GetIncarnation())
	}
	if a.oldAddr != "" && a.oldAddr != m.GetAddress() {
		pctx, cancel := context.WithTimeout(ctx, a.rpcTimeout)
		old, err := a.peers.Ping(pctx, a.oldAddr)
		cancel()
		if err == nil && old.GetNodeId() == m.GetId() && old.GetIncarnation() != m.GetIncarnation() {
			return refuse(JoinDuplicateNode, "node %q is already running at %s (incarnation %d)", m.GetId(), a.oldAddr, old.GetIncarnation())
		}
	}
	f := a.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return refuse(JoinNotLeader, "read raft configuration: %v", err)
	}
	id, addr := raft.ServerID(m.GetId()), raft.ServerAddress(m.GetAddress())
	var current *raft.Server
	for _, srv := range f.Configuration().Servers {
		if srv.ID == id {
			current = &srv
		}
	}
	switch {
	case current == nil:
		err = a.r.AddNonvoter(id, addr, 0, a.applyTimeout).Error()
	case current.Address != addr && current.Suffrage == raft.Voter:
		err = a.r.AddVoter(id, addr, 0, a.applyTimeout).Error() // moves the address, keeps the vote
	case current.Address != addr:
		err = a.r.AddNonvoter(id, addr, 0, a.applyTimeout).Error()
	case current.Suffrage != raft.Voter || quorumWithout(f.Configuration(), id, a.unreachable):
		// Still a server at the same address, so a new process (a member
		// restarted, or one removed whose departure is still in its grace).
		err = readd(a.r, id, addr, a.applyTimeout)
	}
	if err != nil {
		return refuse(JoinNotLeader, "add to raft configuration: %v", err)
	}
	cmd := &messages.Command{
		TimeUnixNano: time.Now().UnixNano(),
		Origin:       string(id),
		Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{
			Member: proto.Clone(m).(*messages.Member), LastAliveUnixNano: a.lastAlive,
		}},
	}
	fut := actor.NewFuture(a.system, a.applyTimeout+a.rpcTimeout)
	a.prop.propose(cmd, fut.PID())
	res, err := fut.Result()
	if err != nil {
		return refuse(JoinFailed, "registration did not complete: %v", err)
	}
	pr, _ := res.(*messages.ProposeResult)
	if err := ResultError(pr); err != nil {
		code := JoinFailed
		if errors.Is(err, raftfsm.ErrInvalidMember) {
			code = JoinInvalidMember
		} else if pr.GetCode() == CodeNotLeader {
			code = JoinNotLeader
		}
		return refuse(code, "registration refused: %v", err)
	}
	return &messages.JoinResponse{Accepted: true, Index: pr.GetIndex()}
}

// readd removes a restarted server from raft's configuration and adds it back
// as a non-voter (the reconciler promotes it again). Raft backs off
// replication to a peer that kept failing, exponentially and without a cap
// (10 ms doubling up to about 10 s), and only success or a fresh replication
// resets it: without this, a node restarted after a few seconds down waited
// for the backoff to expire before it got a single entry.
func readd(r *raft.Raft, id raft.ServerID, addr raft.ServerAddress, timeout time.Duration) error {
	if err := r.RemoveServer(id, 0, timeout).Error(); err != nil {
		return err
	}
	return r.AddNonvoter(id, addr, 0, timeout).Error()
}

// quorumWithout reports whether the voters other than id that answer
// heartbeats are a majority of the configuration without id: only then may
// id leave the configuration for a moment without stalling commits.
func quorumWithout(c raft.Configuration, id raft.ServerID, unreachable map[string]bool) bool {
	voters, live := 0, 0
	for _, srv := range c.Servers {
		if srv.ID == id || srv.Suffrage != raft.Voter {
			continue
		}
		voters++
		if !unreachable[string(srv.ID)] {
			live++
		}
	}
	return live > voters/2
}

// reconcile makes raft's configuration follow the committed membership: every
// member is a server, with the suffrage its committed voter flag says, at its
// committed address; servers that are not members (and not being admitted)
// are removed. It runs on the leader, off the actor, one pass at a time.
func (s *stateActor) reconcile() {
	if !s.leader || !s.ready {
		return
	}
	if s.reconciling {
		s.reconcileDue = true
		return
	}
	s.reconciling = true
	v := s.cfg.FSM.View()
	pending := make(map[string]bool, len(s.pendingJoins))
	for id := range s.pendingJoins {
		pending[id] = true
	}
	r, system, self, selfID, logger, timeout := s.cfg.Raft, s.system, s.self, s.cfg.NodeID, s.log, s.cfg.ApplyTimeout
	s.goWork(func(context.Context) {
		defer system.Root.Send(self, &reconcileDone{})
		f := r.GetConfiguration()
		if f.Error() != nil {
			return
		}
		servers := map[string]raft.Server{}
		for _, srv := range f.Configuration().Servers {
			servers[string(srv.ID)] = srv
		}
		change := func(what, id string, fut raft.IndexFuture) {
			if err := fut.Error(); err != nil {
				logger.Warn("raft configuration change failed", "change", what, "node", id, "error", err)
				return
			}
			logger.Info("raft configuration changed", "change", what, "node", id)
		}
		members := v.Members()
		logger.Debug("reconciling raft configuration", "servers", len(servers), "members", len(members), "pending", len(pending))
		isMember := map[string]bool{}
		// Additions and promotions before removals, so the voter count never dips.
		for _, m := range members {
			isMember[m.ID] = true
			if m.ID == selfID || pending[m.ID] {
				continue
			}
			id, addr := raft.ServerID(m.ID), raft.ServerAddress(m.IP)
			srv, in := servers[m.ID]
			switch {
			case (!in || srv.Address != addr) && m.Voter:
				change("add voter", m.ID, r.AddVoter(id, addr, 0, timeout))
			case !in || srv.Address != addr:
				change("add non-voter", m.ID, r.AddNonvoter(id, addr, 0, timeout))
			case m.Voter && srv.Suffrage != raft.Voter:
				change("promote to voter", m.ID, r.AddVoter(id, addr, 0, timeout))
			case !m.Voter && srv.Suffrage == raft.Voter:
				change("demote to non-voter", m.ID, r.DemoteVoter(id, 0, timeout))
			}
		}
		for id := range servers {
			if id == selfID || isMember[id] || pending[id] {
				continue
			}
			// A node that just left gets a moment to learn that its removal
			// committed (and deliver its own NodeLeave) before replication
			// to it stops; a later pass removes it. Meanwhile it must not
			// count towards the quorum: it may already be gone, and in a
			// two-voter cluster a dead voter for a whole grace outlasts the
			// leader's lease and leaves no leader for good.
			if d, ok := v.Departed(id); ok && time.Since(d.At) < departGrace {
				if servers[id].Suffrage == raft.Voter {
					change("demote departed voter", id, r.DemoteVoter(raft.ServerID(id), 0, timeout))
				}
				continue
			}
			change("remove", id, r.RemoveServer(raft.ServerID(id), 0, timeout))
		}
		if !isMember[selfID] && len(members) > 0 {
			// This leader was removed: hand over so the next leader removes it.
			if err := r.LeadershipTransfer().Error(); err != nil {
				logger.Warn("leadership transfer after removal failed", "error", err)
			}
		}
	})
}

// departGrace delays a departed node's removal from raft's configuration.
const departGrace = time.Second

func (s *stateActor) scheduleReconcile() {
	if !s.leader || s.tick != nil || s.stopped == nil {
		return
	}
	every := reconcileEvery
	if s.pendingDeparture() {
		every = departGrace / 2 // finish a departure promptly
	}
	system, self := s.system, s.self
	s.tick = time.AfterFunc(every, func() { system.Root.Send(self, &reconcileTick{}) })
}

// pendingDeparture reports whether raft still lists a node that left.
// (GetConfiguration reads a cached copy: it does not block the actor.)
func (s *stateActor) pendingDeparture() bool {
	f := s.cfg.Raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	v := s.cfg.FSM.View()
	for _, srv := range f.Configuration().Servers {
		if _, member := v.Member(string(srv.ID)); !member && string(srv.ID) != s.cfg.NodeID {
			return true
		}
	}
	return false
}
