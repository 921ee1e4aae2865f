package actors

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// stateActor owns the raft handle: it proposes commands (forwarding them to
// the leader on a follower), receives applied entries from the FSM, reacts
// to leadership changes, registers this node with the cluster and, on the
// leader, admits joining nodes and keeps raft's configuration in line with
// the committed membership.
type stateActor struct {
	cfg        *Config
	log        *slog.Logger
	system     *actor.ActorSystem
	self       *actor.PID
	partitions *actor.PID
	rebalancer *actor.PID
	health     *actor.PID
	prop       *proposer
	obs        *raft.Observer
	stopObs    chan struct{}
	work       sync.WaitGroup // goroutines that must end before the actor does
	stopped    chan struct{}
	leader     bool
	ready      bool // leader and caught up (barrier passed)

	// proposals waiting to be forwarded to the leader, and the forwarding
	// requests in flight (forward.go)
	fwdQueue    []pendingForward
	fwdInFlight int

	// registration of this node
	regInFlight bool
	regBackoff  time.Duration
	regTimer    *time.Timer
	seedNext    int
	leaderHint  string // leader address named by a refused join
	viaHint     bool   // the join in flight went to leaderHint

	// finding out about its own removal while no leader talks to it
	leaderlessSince time.Time
	checkTimer      *time.Timer
	checking        bool

	// a peer refused this process as stale since then (zero: none pending)
	refusedSince time.Time
	fenceTimer   *time.Timer

	// leader duties
	pendingJoins map[string]int
	// noLog remembers joiners refused for not taking the log (by ID and
	// nonce): their retries are refused at once, without touching Raft's
	// configuration, for noLogHold.
	noLog        map[string]time.Time
	reconciling  bool
	reconcileDue bool
	tick         *time.Timer
	tickAt       time.Time // when tick fires
	// barrierWait is the delay before the next try of a failed
	// post-election barrier (0 after a success), and barrierTimer its timer.
	barrierWait  time.Duration
	barrierTimer *time.Timer
	pilot        *voterPilot // promotes and demotes voters (raft-autopilot)
	recovery     recoveryRun // removal of members a quorum-loss recovery lost (recovery.go)
}

// drainTimeout bounds how long stopping waits for proposals and goroutines
// that hold raft futures.
const drainTimeout = 5 * time.Second

// barrierRetryMin and barrierRetryMax bound the pause before a failed
// post-election barrier is tried again.
const (
	barrierRetryMin = 10 * time.Millisecond
	barrierRetryMax = 500 * time.Millisecond
)

// reconcileEvery is the leader's safety-net period for matching raft's
// configuration to the membership (changes also trigger it at once).
const reconcileEvery = 2 * time.Second

func newStateActor(cfg *Config) actor.Actor {
	return &stateActor{cfg: cfg, log: cfg.Logger.With("actor", "state")}
}

type registerTick struct{}

type registerResult struct {
	resp *messages.JoinResponse
	err  error
}

type joinDone struct {
	id    string
	noLog string // set when refused for not taking the log: its ID and nonce
}

type reconcileTick struct{}

type reconcileDone struct{}

// JoinFromPeer carries a join request received over the network; the reply
// is *messages.JoinResponse.
type JoinFromPeer struct {
	Req *messages.JoinRequest
}

func (s *stateActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.started(ctx)
	case *actor.Restarting:
		s.stopping(false)
	case *actor.Stopping:
		s.stopping(true)
	case *raftfsm.Applied:
		ctx.Send(s.partitions, msg)
		if s.leader {
			ctx.Send(s.rebalancer, msg)
			ctx.Send(s.health, msg)
			if msg.Change.Joined != nil || msg.Change.Rejoined != nil || msg.Change.Left != nil || msg.Restored {
				s.reconcile()
			}
		}
		s.ensureRegistered()
		s.finishRecovery()
	case *messages.Propose:
		s.propose(ctx, msg, ctx.Sender())
	case *forwardDone:
		s.fwdInFlight--
		s.flushForwards()
	case *messages.RebalanceRequest:
		s.rebalance(ctx, msg, ctx.Sender())
	case *JoinFromPeer:
		s.handleJoin(msg.Req, ctx.Sender())
	case *leadershipChanged:
		s.checkLeadership()
	case *barrierDone:
		s.afterBarrier(msg)
	case *recoveryFinished:
		s.recoveryFinished(msg)
	case *registerTick:
		s.regTimer = nil
		s.ensureRegistered()
	case *registerResult:
		s.registered(msg)
	case *joinDone:
		if s.pendingJoins[msg.id]--; s.pendingJoins[msg.id] <= 0 {
			delete(s.pendingJoins, msg.id)
		}
		if msg.noLog != "" {
			s.noLog[msg.noLog] = time.Now()
		}
		s.reconcile()
	case *reconcileTick:
		s.tick, s.tickAt = nil, time.Time{}
		s.reconcile()
	case *reconcileDone:
		s.reconciling = false
		if s.reconcileDue {
			s.reconcileDue = false
			s.reconcile()
		}
		s.scheduleReconcile()
	case *Fenced:
		// Only a process that held a life can be its stale copy: a new
		// process refused for its data directory's older incarnation (one
		// it may simply not have recorded) goes through admission instead,
		// which refuses it if the newer life is alive elsewhere.
		if st := s.cfg.Life.Status().State; st != MemberFenced && st != MemberRefused && s.cfg.Life.Admitted() != 0 {
			s.refusedAsStale(ctx, msg)
		}
	case *fenceCheck:
		s.fenceTimer = nil
		s.refusedAsStale(ctx, msg.f)
	case *membershipTick:
		s.checkTimer = nil
		s.checkMembership()
	case *membershipAnswer:
		s.membershipAnswered(msg)
	case *messages.ProposeResult:
		// Results of this actor's own proposals (its registration as leader).
		s.regInFlight = false
		if err := ResultError(msg); err != nil {
			s.cfg.Stats.ProposalErrors.Add(1)
			s.log.Log(context.Background(), failureLevel(err), "proposal failed", "error", err)
			s.regBackoff = min(max(2*s.regBackoff, 50*time.Millisecond), 2*time.Second)
			s.retryRegistration(s.regBackoff)
		}
	}
}

func (s *stateActor) started(ctx actor.Context) {
	parent := ctx.Parent()
	s.partitions = sibling(parent, "partitions")
	s.rebalancer = sibling(parent, "rebalancer")
	s.health = sibling(parent, "health")
	s.system, s.self = ctx.ActorSystem(), ctx.Self()
	s.stopped = make(chan struct{})
	s.pendingJoins = map[string]int{}
	s.noLog = map[string]time.Time{}
	s.leaderlessSince = time.Now()
	system, self, tracker := s.system, s.self, s.cfg.Tracker
	s.prop = newProposer(s.cfg.Raft, s.cfg.ApplyTimeout, func(pid *actor.PID, res *messages.ProposeResult) {
		if pid != nil {
			system.Root.Send(pid, res)
		}
	})
	// Observe leadership and heartbeats from a goroutine; the actor re-reads
	// raft's state on each signal, so dropped observations cannot mislead it.
	ch := make(chan raft.Observation, 64)
	s.obs = raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState, raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	s.cfg.Raft.RegisterObserver(s.obs)
	s.stopObs = make(chan struct{})
	stop := s.stopObs
	go func() {
		for {
			select {
			case <-stop:
				return
			case o := <-ch:
				switch h := o.Data.(type) {
				case raft.FailedHeartbeatObservation:
					tracker.heartbeatFailed(string(h.PeerID), time.Now())
					continue
				case raft.ResumedHeartbeatObservation:
					tracker.heartbeatOK(string(h.PeerID))
					continue
				}
				system.Root.Send(self, &leadershipChanged{})
			}
		}
	}()
	s.cfg.FSM.SetNotifier(func(a *raftfsm.Applied) { system.Root.Send(self, a) })
	system.Root.Send(self, &leadershipChanged{})
	system.Root.Send(self, &registerTick{})
	s.scheduleMembershipCheck()
}

// stopping releases what the actor started. The node stops its actors before
// raft, so futures in flight still resolve; for a final stop the FSM's records
// are then discarded (on a restart they keep queueing in this mailbox).
func (s *stateActor) stopping(final bool) {
	if s.obs != nil {
		s.cfg.Raft.DeregisterObserver(s.obs)
		close(s.stopObs)
		s.obs = nil
	}
	s.pilot.stop()
	s.pilot = nil
	if s.stopped != nil {
		close(s.stopped)
		s.stopped = nil
	}
	for _, t := range []*time.Timer{s.regTimer, s.tick, s.checkTimer, s.fenceTimer, s.barrierTimer} {
		if t != nil {
			t.Stop()
		}
	}
	if final {
		s.cfg.FSM.SetNotifier(func(*raftfsm.Applied) {})
	}
	s.failForwards()
	if s.prop != nil {
		if !s.prop.close(drainTimeout) {
			s.log.Warn("proposals still in flight after stop", "waited", drainTimeout)
		}
		s.prop = nil
	}
	if !waitTimeout(&s.work, drainTimeout) {
		s.log.Warn("raft operations still in flight after stop", "waited", drainTimeout)
	}
	s.fwdInFlight = 0 // their goroutines ended (or were cancelled) without telling
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// goWork runs f in a goroutine that stopping waits for. f gets a context
// cancelled when the actor stops.
func (s *stateActor) goWork(f func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := s.stopped
	s.work.Add(2)
	done := make(chan struct{})
	go func() {
		defer s.work.Done()
		select {
		case <-stopped:
			cancel()
		case <-done:
		}
	}()
	go func() {
		defer s.work.Done()
		defer close(done)
		defer cancel()
		f(ctx)
	}()
}

func (s *stateActor) checkLeadership() {
	st := s.cfg.Raft.State()
	if st == raft.Shutdown {
		return // the whole tree is stopping; siblings may already be gone
	}
	if addr, _ := s.cfg.Raft.LeaderWithID(); addr != "" {
		s.leaderlessSince = time.Time{}
	} else if s.leaderlessSince.IsZero() {
		s.leaderlessSince = time.Now()
	}
	isLeader := st == raft.Leader
	if isLeader == s.leader {
		return
	}
	s.leader, s.ready = isLeader, false
	s.cfg.Tracker.reset()
	if !isLeader {
		s.log.Info("lost leadership")
		s.pilot.stop()
		s.pilot = nil
		s.system.Root.Send(s.rebalancer, &LeaderInactive{})
		s.system.Root.Send(s.health, &LeaderInactive{})
		s.ensureRegistered()
		return
	}
	// The leadership change is logged once its barrier commits ("became
	// leader", with the index), in afterBarrier.
	s.log.Debug("raft leadership acquired; waiting for the barrier", "term", s.cfg.Raft.CurrentTerm())
	// A new leader may not have applied every committed entry yet: wait for a
	// barrier (off the actor) before acting on the state.
	r, self, system, timeout := s.cfg.Raft, s.self, s.system, s.cfg.ApplyTimeout
	s.goWork(func(context.Context) {
		f := r.Barrier(timeout)
		err := f.Error()
		done := &barrierDone{err: err}
		if idx, ok := f.(raft.IndexFuture); ok && err == nil {
			done.index = idx.Index()
		}
		system.Root.Send(self, done)
	})
}

func (s *stateActor) afterBarrier(msg *barrierDone) {
	if !s.leader {
		return
	}
	if msg.err != nil {
		// Retry after a pause that doubles: Raft rejects a barrier at once
		// while a leadership transfer is in progress, and retrying at once
		// spun thousands of times (two goroutines each) until it ended.
		s.barrierWait = min(max(2*s.barrierWait, barrierRetryMin), barrierRetryMax)
		s.log.Log(context.Background(), failureLevel(msg.err), "barrier after election failed; retrying", "error", msg.err, "in", s.barrierWait)
		s.leader = false
		if s.barrierTimer != nil {
			s.barrierTimer.Stop()
		}
		system, self := s.system, s.self
		s.barrierTimer = time.AfterFunc(s.barrierWait, func() { system.Root.Send(self, &leadershipChanged{}) })
		return
	}
	s.barrierWait = 0
	s.ready = true
	s.log.Info("became leader", "term", s.cfg.Raft.CurrentTerm(), "index", msg.index)
	v := s.cfg.FSM.View()
	if v.Config() == nil {
		s.log.Info("bootstrapping cluster", "cluster", s.cfg.Cluster.GetClusterName(),
			"partitions", s.cfg.Cluster.GetPartitionCount(), "replication_factor", s.cfg.Cluster.GetReplicationFactor())
		s.proposeOwn(&messages.Command{Op: &messages.Command_SetConfig{SetConfig: &messages.SetConfig{Config: s.cfg.Cluster}}})
	}
	s.regInFlight = false // a follower's pending join no longer matters
	s.ensureRegistered()
	s.system.Root.Send(s.rebalancer, &LeaderActive{})
	s.system.Root.Send(s.health, &LeaderActive{})
	s.pilot = startPilot(s.cfg, s.system, s.prop, s.log)
	s.finishRecovery()
	s.reconcile()
}

func (s *stateActor) proposeOwn(cmd *messages.Command) {
	cmd.TimeUnixNano = s.cfg.now()
	cmd.Origin = s.cfg.NodeID
	s.cfg.Stats.Proposals.Add(1)
	s.prop.propose(cmd, s.self)
}

// propose commits cmd on the leader, or forwards it to the leader (one hop).
func (s *stateActor) propose(ctx actor.Context, p *messages.Propose, replyTo *actor.PID) {
	s.cfg.Stats.Proposals.Add(1)
	if s.leader {
		if p.GetForwarded() {
			s.prop.proposeForwarded(p.GetCommand(), replyTo)
		} else {
			s.prop.propose(p.GetCommand(), replyTo)
		}
		return
	}
	if !p.GetForwarded() && s.leaderAddr() != "" && s.cfg.Peers != nil {
		s.enqueueForward(p.GetCommand(), replyTo)
		return
	}
	fwd := &messages.Propose{Command: p.GetCommand(), Forwarded: true}
	s.forward(ctx, p.GetForwarded(), replyTo, s.cfg.rpcTimeout(), func(ctx context.Context, addr string) (*messages.ProposeResult, error) {
		return s.cfg.Peers.Propose(ctx, addr, fwd)
	})
}

// rebalance hands a manual request to the leader's rebalancer.
func (s *stateActor) rebalance(ctx actor.Context, r *messages.RebalanceRequest, replyTo *actor.PID) {
	if s.leader {
		ctx.RequestWithCustomSender(s.rebalancer, r, replyTo)
		return
	}
	fwd := proto.Clone(r).(*messages.RebalanceRequest)
	fwd.Forwarded = true
	s.forward(ctx, r.GetForwarded(), replyTo, s.cfg.ApplyTimeout, func(ctx context.Context, addr string) (*messages.ProposeResult, error) {
		return s.cfg.Peers.Rebalance(ctx, addr, fwd)
	})
}

// forward sends a request this follower cannot serve to the leader, off the
// actor, and relays the answer. A request that was already forwarded once is
// refused instead, so two nodes with stale leader views cannot bounce it.
func (s *stateActor) forward(ctx actor.Context, forwarded bool, replyTo *actor.PID, timeout time.Duration,
	call func(ctx context.Context, addr string) (*messages.ProposeResult, error)) {
	addr := s.leaderAddr()
	if forwarded || addr == "" || s.cfg.Peers == nil {
		ctx.Send(replyTo, &messages.ProposeResult{Code: CodeNotLeader, Error: "not the leader and no leader known"})
		return
	}
	system := s.system
	s.goWork(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		res, err := call(ctx, addr)
		if err != nil {
			// Only a request that never left this node is known not to
			// have reached the leader's log.
			code := CodeUnknown
			if errors.Is(err, rpc.ErrNotSent) {
				code = CodeNotLeader
			}
			res = &messages.ProposeResult{Code: code, Error: "forward to leader " + addr + ": " + err.Error()}
		}
		if replyTo != nil {
			system.Root.Send(replyTo, res)
		}
	})
}

func (s *stateActor) leaderAddr() string {
	addr, _ := s.cfg.Raft.LeaderWithID()
	return string(addr)
}

// sibling returns the PID of the root's child name. Children of one parent
// are named parent/child, so siblings can address each other without a lookup
// (and still do after either restarts).
func sibling(parent *actor.PID, name string) *actor.PID {
	return actor.NewPID(parent.Address, parent.Id+"/"+name)
}
