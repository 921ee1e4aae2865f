package actors

import (
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Config is what the actor tree of one node needs. It is shared, read-only,
// by every actor (and survives their restarts).
type Config struct {
	NodeID string
	Raft   *raft.Raft
	FSM    *raftfsm.FSM
	Logger *slog.Logger
	Stats  *Stats
	// Self is this node's registration (ID, name, address, services, incarnation).
	Self *messages.Member
	// LastAlive is when this node last knew itself alive before this start (0 if unknown).
	LastAlive int64
	// Cluster is the configuration proposed when this node bootstraps a cluster.
	Cluster *messages.ClusterConfig
	// RebalanceDelay debounces membership changes into one rebalance.
	RebalanceDelay time.Duration
	// ApplyTimeout bounds how long a proposal waits to enter raft's queue.
	ApplyTimeout time.Duration
	// LastDelivered is the seq of the last event delivered before this start;
	// events up to it are not delivered again.
	LastDelivered Seq
	// OnDelivered, when set, is told the seq of the last event of each
	// delivered batch (for persistence). It runs in the dispatcher: keep it fast.
	OnDelivered func(Seq)
	// Subscriptions and Callbacks registered before start.
	Subscriptions []*Subscribe
	Callbacks     []*RegisterCallback
}

func (c *Config) now() int64 { return time.Now().UnixNano() }

// stateActor owns the raft handle: it proposes commands, receives applied
// entries from the FSM and reacts to leadership changes.
type stateActor struct {
	cfg        *Config
	log        *slog.Logger
	partitions *actor.PID
	rebalancer *actor.PID
	prop       *proposer
	obs        *raft.Observer
	stopObs    chan struct{}
	barriers   sync.WaitGroup
	leader     bool
}

// drainTimeout bounds how long stopping waits for proposals and barriers
// already handed to raft.
const drainTimeout = 5 * time.Second

func newStateActor(cfg *Config) actor.Actor {
	return &stateActor{cfg: cfg, log: cfg.Logger.With("actor", "state")}
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
		}
	case *messages.Propose:
		s.cfg.Stats.Proposals.Add(1)
		s.prop.propose(msg.GetCommand(), ctx.Sender())
	case *leadershipChanged:
		s.checkLeadership(ctx)
	case *barrierDone:
		s.afterBarrier(ctx, msg)
	case *messages.ProposeResult:
		// Results of our own bootstrap proposals.
		if err := ResultError(msg); err != nil {
			s.cfg.Stats.ProposalErrors.Add(1)
			s.log.Warn("bootstrap proposal failed", "error", err)
		}
	}
}

func (s *stateActor) started(ctx actor.Context) {
	parent := ctx.Parent()
	s.partitions = sibling(parent, "partitions")
	s.rebalancer = sibling(parent, "rebalancer")
	system := ctx.ActorSystem()
	self := ctx.Self()
	s.prop = newProposer(s.cfg.Raft, s.cfg.ApplyTimeout, func(pid *actor.PID, res *messages.ProposeResult) {
		if pid != nil {
			system.Root.Send(pid, res)
		}
	})
	// Observe leadership from a goroutine; the actor re-reads raft's state on
	// each signal, so dropped observations cannot leave it wrong.
	ch := make(chan raft.Observation, 16)
	s.obs = raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
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
			case <-ch:
				system.Root.Send(self, &leadershipChanged{})
			}
		}
	}()
	s.cfg.FSM.SetNotifier(func(a *raftfsm.Applied) { system.Root.Send(self, a) })
	system.Root.Send(self, &leadershipChanged{})
}

// stopping releases what the actor started. The node stops its actors before
// raft, so proposals and barriers in flight still resolve; for a final stop
// the FSM's records are then discarded (on a restart they keep queueing in
// this actor's mailbox).
func (s *stateActor) stopping(final bool) {
	if s.obs != nil {
		s.cfg.Raft.DeregisterObserver(s.obs)
		close(s.stopObs)
		s.obs = nil
	}
	if final {
		s.cfg.FSM.SetNotifier(func(*raftfsm.Applied) {})
	}
	if s.prop != nil {
		if !s.prop.close(drainTimeout) {
			s.log.Warn("proposals still in flight after stop", "waited", drainTimeout)
		}
		s.prop = nil
	}
	done := make(chan struct{})
	go func() { s.barriers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		s.log.Warn("barrier still in flight after stop", "waited", drainTimeout)
	}
}

func (s *stateActor) checkLeadership(ctx actor.Context) {
	st := s.cfg.Raft.State()
	if st == raft.Shutdown {
		return // the whole tree is stopping; siblings may already be gone
	}
	isLeader := st == raft.Leader
	if isLeader == s.leader {
		return
	}
	s.leader = isLeader
	if !isLeader {
		s.log.Info("lost leadership")
		ctx.Send(s.rebalancer, &LeaderInactive{})
		return
	}
	s.log.Info("became leader", "term", s.cfg.Raft.CurrentTerm())
	// A new leader may not have applied every committed entry yet: wait for a
	// barrier (off the actor) before acting on the state.
	r, self, system := s.cfg.Raft, ctx.Self(), ctx.ActorSystem()
	s.barriers.Add(1)
	go func() {
		defer s.barriers.Done()
		err := r.Barrier(s.cfg.ApplyTimeout).Error()
		system.Root.Send(self, &barrierDone{err: err})
	}()
}

func (s *stateActor) afterBarrier(ctx actor.Context, msg *barrierDone) {
	if !s.leader {
		return
	}
	if msg.err != nil {
		s.log.Warn("barrier after election failed; retrying", "error", msg.err)
		s.leader = false
		ctx.Send(ctx.Self(), &leadershipChanged{})
		return
	}
	v := s.cfg.FSM.View()
	if v.Config() == nil {
		s.log.Info("bootstrapping cluster", "cluster", s.cfg.Cluster.GetClusterName(),
			"partitions", s.cfg.Cluster.GetPartitionCount(), "replication_factor", s.cfg.Cluster.GetReplicationFactor())
		s.proposeOwn(ctx, &messages.Command{Op: &messages.Command_SetConfig{SetConfig: &messages.SetConfig{Config: s.cfg.Cluster}}})
	}
	if m, ok := v.Member(s.cfg.NodeID); !ok || m.Incarnation != s.cfg.Self.GetIncarnation() {
		s.proposeOwn(ctx, &messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{
			Member: proto.Clone(s.cfg.Self).(*messages.Member), LastAliveUnixNano: s.cfg.LastAlive,
		}}})
	}
	ctx.Send(s.rebalancer, &LeaderActive{})
}

func (s *stateActor) proposeOwn(ctx actor.Context, cmd *messages.Command) {
	cmd.TimeUnixNano = s.cfg.now()
	cmd.Origin = s.cfg.NodeID
	s.cfg.Stats.Proposals.Add(1)
	s.prop.propose(cmd, ctx.Self())
}

// sibling returns the PID of the root's child name. Children of one parent
// are named parent/child, so siblings can address each other without a lookup
// (and still do after either restarts).
func sibling(parent *actor.PID, name string) *actor.PID {
	return actor.NewPID(parent.Address, parent.Id+"/"+name)
}
