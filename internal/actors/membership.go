package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// JoinRemoved: the request comes from a life that was removed (its
	// nonce); a node that rejoins does so as a new life, with a new nonce.
	JoinRemoved = "removed"
	// JoinClusterMismatch: the joiner's data directory belongs to another cluster.
	JoinClusterMismatch = "cluster_mismatch"
	// JoinNoLog: the joiner answers pings but did not take the Raft log
	// (retryable: a slow node may succeed later; a process that only looks
	// alive never will).
	JoinNoLog = "no_log"
)

// PermanentJoinRefusal reports whether a refusal code means "retrying will
// not help": the joiner must change its configuration.
func PermanentJoinRefusal(code string) bool {
	switch code {
	case JoinInvalidMember, JoinConfigMismatch, JoinImpersonation, JoinDuplicateNode, JoinUnauthorized, JoinClusterMismatch, JoinRemoved:
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
	n, ok := v.Nonce(s.cfg.NodeID)
	return ok && n == s.cfg.Life.Nonce()
}

// removal returns this life's departure: it was removed (left, removed by an
// admin or for failing health checks) and is not a member again.
func (s *stateActor) removal(v *raftfsm.View) (raftfsm.Departure, bool) {
	d, ok := v.Departed(s.cfg.NodeID)
	if !ok || d.Nonce != s.cfg.Life.Nonce() || s.isRegistered(v) {
		return raftfsm.Departure{}, false
	}
	return d, true
}

// fencedBy returns the member that replaced this process: the same node ID
// in a newer life than any this process held (another process took the ID
// over while this one was paused, cut off or removed).
func (s *stateActor) fencedBy(v *raftfsm.View) (*raftfsm.Node, bool) {
	m, ok := v.Member(s.cfg.NodeID)
	admitted := s.cfg.Life.Admitted()
	if !ok || s.isRegistered(v) || admitted == 0 || m.Incarnation <= admitted {
		return nil, false
	}
	return m, true
}

// ensureRegistered makes sure the committed membership has this node's
// current life: a leader proposes it, a follower asks the leader (or a seed,
// which forwards) and retries with backoff. A removed life rejoins as a new
// one when the rules allow it; a fenced or refused process stays out.
func (s *stateActor) ensureRegistered() {
	if s.prop == nil || s.regInFlight || s.regTimer != nil {
		return
	}
	// A life known to be out stays out, whatever this node's own view
	// says: a removal learned from a peer is ahead of a view that has not
	// applied it yet, and must not be undone by it.
	switch st := s.cfg.Life.Status(); st.State {
	case MemberFenced, MemberRefused:
		return // for good: only a new process may try again
	case MemberRemoved:
		if !s.rejoinAllowed(st.Reason) {
			return
		}
	}
	v := s.cfg.FSM.View()
	if s.isRegistered(v) {
		s.regBackoff = 0
		m, _ := v.Member(s.cfg.NodeID)
		s.cfg.Life.set(Membership{State: MemberActive, Incarnation: m.Incarnation})
		return
	}
	if m, ok := s.fencedBy(v); ok {
		s.fence(m.Incarnation, m.IP, "the committed membership")
		return
	}
	if d, ok := s.removal(v); ok {
		if !s.removed(d) {
			return
		}
	}
	if s.leader {
		if s.ready {
			s.regInFlight = true
			self := s.member()
			s.proposeOwn(&messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{
				Member: self, LastAliveUnixNano: s.cfg.LastAlive, Resumed: s.cfg.Resumed,
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
		seeds := s.joinTargets(v)
		if len(seeds) == 0 || s.cfg.Peers == nil {
			return // a bootstrapping node registers itself once it leads
		}
		target = seeds[s.seedNext%len(seeds)]
		s.seedNext++
	}
	req := &messages.JoinRequest{
		Member:            s.member(),
		LastAliveUnixNano: s.cfg.LastAlive,
		Expect:            s.cfg.Expect,
		ExpectKeyHash:     s.cfg.ExpectKeyHash,
		Resumed:           s.cfg.Resumed,
	}
	s.regInFlight = true
	peers, system, self, timeout := s.cfg.Peers, s.system, s.self, s.cfg.rpcTimeout()
	s.log.Debug("asking to join", "via", target)
	s.goWork(func(ctx context.Context) {
		// Admission pings us back, waits for us to take the log and for a
		// commit: allow for all of them.
		ctx, cancel := context.WithTimeout(ctx, 3*timeout+2*s.cfg.ApplyTimeout)
		defer cancel()
		resp, err := peers.Join(ctx, target, req)
		if err == nil && !resp.GetAccepted() {
			err = &JoinRefusedError{Code: resp.GetCode(), Message: resp.GetError()}
		}
		system.Root.Send(self, &registerResult{resp: resp, err: err})
	})
}

// member is this life's registration.
func (s *stateActor) member() *messages.Member {
	m := proto.Clone(s.cfg.Self).(*messages.Member)
	m.Nonce = s.cfg.Life.Nonce()
	m.Incarnation = 0 // assigned by the cluster
	return m
}

// joinTargets are where a node without a known leader asks to join: its
// seeds, then the members it knows (a removed node rejoins through them).
func (s *stateActor) joinTargets(v *raftfsm.View) []string {
	out := slices.Clone(s.cfg.Seeds)
	for _, m := range v.Members() {
		if m.ID != s.cfg.NodeID && m.IP != "" && !slices.Contains(out, m.IP) {
			out = append(out, m.IP)
		}
	}
	return out
}

// rejoinAllowed: after a removal the node rejoins as a new life only when
// failure detection removed it (it is alive, so that was a mistake or a
// healed partition) and AutoRejoin is on. A graceful leave is final, and an
// admin's removal is a decision this node does not undo (like etcd's member
// remove); restarting the process rejoins in both cases.
func (s *stateActor) rejoinAllowed(reason string) bool {
	return s.cfg.AutoRejoin && (reason == raftfsm.LeaveHealthFailure || reason == removalForgotten)
}

// removalForgotten is the reason of a removal the cluster no longer has on
// record (the departed list is bounded).
const removalForgotten = "unknown (no longer on record)"

// removed handles the discovery that this life was removed: it logs it once,
// reports it, and starts a new life when rejoining is allowed (reported by
// the result). The life's own NodeLeave: a rejoining node catches up with
// the log and delivers it from its entry (after what it missed before it);
// a node that stays out gets it handed to its partitions actor now, which
// delivers it unless the entry already did.
func (s *stateActor) removed(d raftfsm.Departure) bool {
	st := Membership{State: MemberRemoved, Incarnation: d.Incarnation, Reason: d.Reason, RemovedBy: d.RemovedBy, Index: d.Index}
	rejoin := s.rejoinAllowed(d.Reason)
	if s.cfg.Life.set(st) {
		what := "it stays out: restart the process to rejoin"
		switch {
		case rejoin:
			what = "rejoining as a new life"
		case d.Reason == raftfsm.LeaveHealthFailure:
			what = "it stays out (AutoRejoin is off): restart the process to rejoin"
		}
		// Its own Leave is a plan, not a problem.
		lvl := slog.LevelWarn
		if d.Reason == raftfsm.LeaveGraceful {
			lvl = slog.LevelInfo
		}
		s.log.Log(context.Background(), lvl, "this node was removed from the cluster; "+what, "reason", d.Reason, "removed_by", d.RemovedBy,
			"index", d.Index, "incarnation", d.Incarnation)
		if !rejoin && d.Index != 0 {
			s.system.Root.Send(s.partitions, &selfRemoved{nonce: s.cfg.Life.Nonce(), event: d.LeaveEvent()})
		}
	}
	if !rejoin {
		return false
	}
	s.cfg.Life.renew()
	s.system.Root.Send(s.partitions, &lifeRenewed{nonce: s.cfg.Life.Nonce()})
	s.cfg.Stats.Rejoins.Add(1)
	return true
}

// fence stops this process from claiming membership: a newer life of its ID
// is a member. It is logged once and reported (not ready); the process stays
// out for good.
func (s *stateActor) fence(newer uint64, addr, source string) {
	s.fenceFor(fmt.Sprintf("node %s is incarnation %d now (at %s)", s.cfg.NodeID, newer, addr), source)
}

// fenceGrace is how long a refusal as stale waits for this process's own
// new admission to show in its view before it is believed.
const fenceGrace = 5 * time.Second

// fenceCheck decides a refusal again once fenceGrace has passed.
type fenceCheck struct{ f *Fenced }

// refusedAsStale handles a peer's refusal of this process as stale. A
// restarted process dials with its previous incarnation until it applies
// its own new admission, and a peer that applied the admission first
// refuses that dial: the newer life it names is this process. So the
// refusal is ignored while this process's own nonce is the member's, and
// believed only when its view still shows no admission of its own
// fenceGrace after the first refusal (a stale process never applies one:
// its peers refuse it).
func (s *stateActor) refusedAsStale(ctx actor.Context, f *Fenced) {
	current, known := s.cfg.FSM.View().Nonce(s.cfg.NodeID)
	if s.refusedSince.IsZero() {
		s.refusedSince = time.Now()
	}
	switch wait := staleWait(s.cfg.Life.Nonce(), current, known, time.Since(s.refusedSince)); {
	case wait < 0:
		s.refusedSince = time.Time{} // the newer life is this process
	case wait > 0:
		if s.fenceTimer == nil {
			system, self := ctx.ActorSystem(), ctx.Self()
			s.fenceTimer = time.AfterFunc(wait, func() { system.Root.Send(self, &fenceCheck{f: f}) })
		}
	default:
		s.fenceFor(f.Reason, "peer "+f.Source)
	}
}

// staleWait decides a refusal as stale that came refusedFor ago, given this
// process's nonce and the nonce of its node ID's current life in its view:
// negative, the refusal is moot (that life is this process); positive, how
// much longer to wait for this process's own admission to show; 0, believe
// it and fence.
func staleWait(own, current uint64, known bool, refusedFor time.Duration) time.Duration {
	if known && current == own {
		return -1
	}
	return max(fenceGrace-refusedFor, 0)
}

func (s *stateActor) fenceFor(reason, source string) {
	if s.cfg.Life.set(Membership{State: MemberFenced, Incarnation: s.cfg.Life.Admitted(), Reason: reason}) {
		s.log.Warn("a newer process of this node ID is a member: this process is stale and stays out, its Raft stopped; stop it",
			"reason", reason, "this_incarnation", s.cfg.Life.Admitted(), "learned_from", source)
		// Its Raft would go on calling elections over the connections it
		// opened before the newer process was admitted (the hello is
		// checked once per connection): a stale process takes no part.
		r := s.cfg.Raft
		s.goWork(func(context.Context) { _ = r.Shutdown().Error() })
	}
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
		// For good: retrying cannot help (a starting node fails Start, a
		// running one reports it and stays out).
		s.cfg.Life.set(Membership{State: MemberRefused, Reason: refused.Code + ": " + refused.Message})
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

// ConfigMismatch lists what of expect (a node's explicit settings; zero
// fields adopt the cluster's) disagrees with the committed configuration c,
// or returns nil. The leader applies it at admission and the node itself at
// start.
func ConfigMismatch(expect, c *messages.ClusterConfig, keyHashExplicit bool) error {
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
	if n := expect.GetMaxVoters(); n != 0 && n != c.GetMaxVoters() {
		problems = append(problems, fmt.Sprintf("MaxVoters is %d but the cluster has %d", n, c.GetMaxVoters()))
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

// clusterMismatch describes a joiner whose data directory belongs to another
// cluster, naming both IDs ("" when there is no conflict).
func clusterMismatch(joiner string, c *messages.ClusterConfig) string {
	if joiner == "" || c.GetClusterId() == "" || joiner == c.GetClusterId() {
		return ""
	}
	return fmt.Sprintf("the joining node's data directory belongs to cluster %s, but this is cluster %s (%q): a node never moves between clusters; give it an empty data directory to join this one",
		joiner, c.GetClusterId(), c.GetClusterName())
}

// handleJoin admits a node. Only the leader admits; other members forward the
// request to it once. Every validation (ID, address, services, limits,
// cluster ID, configuration) runs before Raft's configuration is touched, so
// a refused join leaves no trace.
func (s *stateActor) handleJoin(req *messages.JoinRequest, replyTo *actor.PID) {
	system := s.system
	reply := func(r *messages.JoinResponse) {
		if replyTo != nil {
			system.Root.Send(replyTo, r)
		}
	}
	leaderAddr, leaderID := s.cfg.Raft.LeaderWithID()
	refuse := func(code, format string, args ...any) {
		reply(&messages.JoinResponse{Code: code, Error: fmt.Sprintf(format, args...), LeaderId: string(leaderID), LeaderAddress: string(leaderAddr),
			ClusterId: s.cfg.FSM.View().ClusterID()})
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
			ctx, cancel := context.WithTimeout(ctx, 3*timeout+2*s.cfg.ApplyTimeout)
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
	if err := raftfsm.ValidateMember(m); err != nil {
		refuse(JoinInvalidMember, "%v", err)
		return
	}
	if m.GetNonce() == 0 {
		refuse(JoinInvalidMember, "node %q sent no nonce (a node of an older version?)", m.GetId())
		return
	}
	v := s.cfg.FSM.View()
	cfg := v.Config()
	if cfg == nil {
		refuse(JoinNotReady, "the cluster is still bootstrapping")
		return
	}
	if why := clusterMismatch(req.GetExpect().GetClusterId(), cfg); why != "" {
		refuse(JoinClusterMismatch, "%s", why)
		return
	}
	if err := ConfigMismatch(req.GetExpect(), cfg, req.GetExpectKeyHash()); err != nil {
		refuse(JoinConfigMismatch, "%v", err)
		return
	}
	if d, ok := v.Departed(m.GetId()); ok && d.Nonce == m.GetNonce() {
		refuse(JoinRemoved, "this life of node %q (incarnation %d) was removed (%s): a removed life never comes back; a new process (or a new life of this one) may rejoin",
			m.GetId(), d.Incarnation, d.Reason)
		return
	}
	key := fmt.Sprintf("%s/%d", m.GetId(), m.GetNonce())
	if at, ok := s.noLog[key]; ok {
		if time.Since(at) < noLogHold {
			refuse(JoinNoLog, "node %q did not take the Raft log %v ago; it may ask again in %v", m.GetId(),
				time.Since(at).Round(time.Millisecond), (noLogHold - time.Since(at)).Round(time.Millisecond))
			return
		}
		delete(s.noLog, key)
	}
	for k, at := range s.noLog {
		if time.Since(at) >= noLogHold {
			delete(s.noLog, k)
		}
	}
	existing, known := v.Member(m.GetId())
	if nonce, _ := v.Nonce(m.GetId()); known && nonce == m.GetNonce() && existing.IP == m.GetAddress() {
		reply(&messages.JoinResponse{Accepted: true, Config: cfg, LeaderId: s.cfg.NodeID, LeaderAddress: s.cfg.Self.GetAddress(),
			Index: v.Version(), ClusterId: cfg.GetClusterId()})
		return
	}
	var oldAddr string
	if known {
		oldAddr = existing.IP
	}
	lastAlive := req.GetLastAliveUnixNano()
	if known && existing.Status == raftfsm.StatusActive {
		// Not suspect: this leader may have seen it since its own record
		// (a suspect's last sighting is committed with the suspicion).
		if t, ok := s.cfg.Tracker.LastSeen(m.GetId()); ok && t.UnixNano() > lastAlive {
			lastAlive = t.UnixNano()
		}
	}
	s.pendingJoins[m.GetId()]++
	peers, r, prop, self, timeout := s.cfg.Peers, s.cfg.Raft, s.prop, s.self, s.cfg.rpcTimeout()
	applyTimeout, selfID, selfAddr, logger, tracker := s.cfg.ApplyTimeout, s.cfg.NodeID, s.cfg.Self.GetAddress(), s.log, s.cfg.Tracker
	s.goWork(func(ctx context.Context) {
		done := &joinDone{id: m.GetId()}
		defer func() { system.Root.Send(self, done) }()
		resp := admit(ctx, admission{
			peers: peers, r: r, prop: prop, system: system, m: m, oldAddr: oldAddr, lastAlive: lastAlive,
			resumed: req.GetResumed(), clusterID: cfg.GetClusterId(), tracker: tracker,
			rpcTimeout: timeout, applyTimeout: applyTimeout,
		})
		if resp.GetCode() == JoinNoLog {
			done.noLog = key
		}
		resp.LeaderId, resp.LeaderAddress, resp.ClusterId = selfID, selfAddr, cfg.GetClusterId()
		if resp.GetAccepted() {
			resp.Config = cfg
			logger.Info("admitted node", "peer", m.GetId(), "address", m.GetAddress(), "index", resp.GetIndex(), "resumed", req.GetResumed())
		} else {
			logger.Warn("join refused", "peer", m.GetId(), "address", m.GetAddress(), "code", resp.GetCode(), "reason", resp.GetError())
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
	resumed   bool
	clusterID string
	// tracker says which other peers Raft's heartbeats fail to reach now.
	tracker      *PeerTracker
	rpcTimeout   time.Duration
	applyTimeout time.Duration
}

// admit runs the admission steps off the actor: prove the address belongs to
// the joining process, add it to Raft as a non-voter, prove it takes the log,
// then commit its registration. The leader promotes it to voter later, once
// it has been healthy for the stabilisation window.
func admit(ctx context.Context, a admission) *messages.JoinResponse {
	m := a.m
	refuse := func(code, format string, args ...any) *messages.JoinResponse {
		return &messages.JoinResponse{Code: code, Error: fmt.Sprintf(format, args...)}
	}
	pctx, cancel := context.WithTimeout(ctx, a.rpcTimeout)
	pong, err := a.peers.Ping(pctx, m.GetAddress(), &messages.PingRequest{})
	cancel()
	if err != nil {
		return refuse(JoinUnreachable, "advertised address %s does not answer: %v", m.GetAddress(), err)
	}
	if pong.GetNodeId() != m.GetId() || pong.GetNonce() != m.GetNonce() {
		return refuse(JoinImpersonation, "advertised address %s answers as another process (node %q), not the one asking to join as %q",
			m.GetAddress(), pong.GetNodeId(), m.GetId())
	}
	if id := pong.GetClusterId(); id != "" && a.clusterID != "" && id != a.clusterID {
		return refuse(JoinClusterMismatch, "the node at %s belongs to cluster %s, but this is cluster %s", m.GetAddress(), id, a.clusterID)
	}
	if a.oldAddr != "" && a.oldAddr != m.GetAddress() {
		pctx, cancel := context.WithTimeout(ctx, a.rpcTimeout)
		old, err := a.peers.Ping(pctx, a.oldAddr, &messages.PingRequest{})
		cancel()
		if err == nil && old.GetNodeId() == m.GetId() && old.GetNonce() != m.GetNonce() {
			return refuse(JoinDuplicateNode, "node %q is already running at %s (incarnation %d): stop one of them", m.GetId(), a.oldAddr, old.GetIncarnation())
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
	var changed raft.IndexFuture
	switch {
	case current == nil:
		changed = a.r.AddNonvoter(id, addr, 0, a.applyTimeout)
	case current.Suffrage == raft.Voter && a.resumed && current.Address != addr:
		changed = a.r.AddVoter(id, addr, 0, a.applyTimeout) // moves the address, keeps the vote
	case current.Suffrage == raft.Voter && quorumWithout(f.Configuration(), id, a.tracker):
		// A new process at the same address (a member restarted, or one
		// removed whose departure is still in its grace): re-added as a
		// non-voter; a resumed voter gets its vote back once healthy.
		changed, err = readd(a.r, id, addr, a.applyTimeout)
	case current.Address != addr:
		changed = a.r.AddNonvoter(id, addr, 0, a.applyTimeout) // moves the address (a voter keeps its vote until it is safe to demote)
	case current.Suffrage != raft.Voter:
		changed, err = readd(a.r, id, addr, a.applyTimeout)
	}
	if err == nil && changed != nil {
		err = changed.Error()
	}
	if err != nil {
		return refuse(JoinNotLeader, "add to raft configuration: %v", err)
	}
	// Proof that the joiner takes the log: it answers once its log holds
	// the configuration entry that added it. A process that only answers
	// pings never does, and never becomes a member.
	want := a.r.LastIndex()
	if changed != nil {
		want = max(want, changed.Index())
	}
	pctx, cancel = context.WithTimeout(ctx, a.applyTimeout)
	proof, err := a.peers.Ping(pctx, m.GetAddress(), &messages.PingRequest{WaitIndex: want})
	cancel()
	if err != nil || proof.GetNonce() != m.GetNonce() || proof.GetLastIndex() < want {
		if current == nil {
			// Leave the configuration as it was.
			if rerr := a.r.RemoveServer(id, 0, a.applyTimeout).Error(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove it again: %w", rerr))
			}
		}
		why := fmt.Sprintf("its log is at %d", proof.GetLastIndex())
		if err != nil {
			why = err.Error()
		}
		return refuse(JoinNoLog, "node %q answers pings but its Raft log did not reach index %d in time (%s)", m.GetId(), want, why)
	}
	a.tracker.heartbeatOK(m.GetId()) // it takes the log now
	cmd := &messages.Command{
		TimeUnixNano: time.Now().UnixNano(),
		Origin:       string(id),
		Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{
			Member: proto.Clone(m).(*messages.Member), LastAliveUnixNano: a.lastAlive, Resumed: a.resumed,
		}},
	}
	pr, err := a.prop.commit(ctx, a.system, cmd, a.applyTimeout+a.rpcTimeout)
	if err != nil {
		return refuse(JoinFailed, "registration did not complete: %v", err)
	}
	if err := ResultError(pr); err != nil {
		code := JoinFailed
		if errors.Is(err, raftfsm.ErrInvalidMember) {
			code = JoinInvalidMember
		} else if pr.GetCode() == CodeNotLeader {
			code = JoinNotLeader
		}
		return refuse(code, "registration refused: %v", err)
	}
	// The joiner holds the registration entry but learns that it committed
	// only with the leader's next append, up to CommitTimeout later when
	// other voters had to acknowledge it: a barrier entry goes out at once
	// and carries the commit index (nobody waits for it).
	_ = a.r.Barrier(a.applyTimeout)
	return &messages.JoinResponse{Accepted: true, Index: pr.GetIndex()}
}

// noLogHold is how long a joiner refused for not taking the log is refused
// again at once: a process that only looks alive, retrying, must not churn
// Raft's configuration.
const noLogHold = 5 * time.Second

// readd removes a restarted server from raft's configuration and adds it back
// as a non-voter (the reconciler promotes it again). Raft backs off
// replication to a peer that kept failing, exponentially and without a cap
// (10 ms doubling up to about 10 s), and only success or a fresh replication
// resets it: without this, a node restarted after a few seconds down waited
// for the backoff to expire before it got a single entry.
func readd(r *raft.Raft, id raft.ServerID, addr raft.ServerAddress, timeout time.Duration) (raft.IndexFuture, error) {
	if err := r.RemoveServer(id, 0, timeout).Error(); err != nil {
		return nil, err
	}
	return r.AddNonvoter(id, addr, 0, timeout), nil
}

// quorumWithout reports whether the voters other than id that answer
// heartbeats are a majority of the configuration without id: only then may
// id leave the voters (for a moment, or for good) without stalling commits.
func quorumWithout(c raft.Configuration, id raft.ServerID, tracker *PeerTracker) bool {
	voters, live := 0, 0
	now := time.Now()
	for _, srv := range c.Servers {
		if srv.ID == id || srv.Suffrage != raft.Voter {
			continue
		}
		voters++
		if tracker.FailingFor(string(srv.ID), now) == 0 {
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
	r, system, self, selfID, logger, timeout, tracker := s.cfg.Raft, s.system, s.self, s.cfg.NodeID, s.log, s.cfg.ApplyTimeout, s.cfg.Tracker
	healthy := s.pilot.healthyFunc()
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
				logger.Log(context.Background(), failureLevel(err), "raft configuration change failed", "change", what, "peer", id, "error", err)
				return
			}
			logger.Info("raft configuration changed", "change", what, "peer", id, "index", fut.Index())
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
			case !in:
				// Never straight in as a voter: a member missing from the
				// configuration (after a quorum-loss recovery, say) may be
				// dead, and a dead voter costs the quorum.
				change("add non-voter", m.ID, r.AddNonvoter(id, addr, 0, timeout))
			case srv.Address != addr && srv.Suffrage == raft.Voter:
				change("move voter", m.ID, r.AddVoter(id, addr, 0, timeout))
			case srv.Address != addr:
				change("move non-voter", m.ID, r.AddNonvoter(id, addr, 0, timeout))
			case m.Voter && srv.Suffrage != raft.Voter && healthy(m.ID):
				// A committed voter that was re-added (a restart on its
				// disk): its vote back once it takes the log.
				change("promote to voter", m.ID, r.AddVoter(id, addr, 0, timeout))
			case !m.Voter && srv.Suffrage == raft.Voter:
				f := r.GetConfiguration()
				if f.Error() == nil && quorumWithout(f.Configuration(), id, tracker) {
					change("demote to non-voter", m.ID, r.DemoteVoter(id, 0, timeout))
				}
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
			tracker.forget(id)
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
	if !s.leader || s.stopped == nil {
		return
	}
	every := reconcileEvery
	if s.pendingDeparture() {
		every = departGrace / 2 // finish a departure promptly
	}
	at := time.Now().Add(every)
	if s.tick != nil {
		if !s.tickAt.After(at) {
			return // the pending tick comes first
		}
		// A departure while the safety-net tick was pending: without this it
		// waited for that tick, up to reconcileEvery, not departGrace/2.
		s.tick.Stop() // if it fired already, one more reconcile is harmless
	}
	system, self := s.system, s.self
	s.tick, s.tickAt = time.AfterFunc(every, func() { system.Root.Send(self, &reconcileTick{}) }), at
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
