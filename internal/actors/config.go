package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

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
	// Self is this node's registration template (ID, name, address,
	// services); the nonce and incarnation of the current life are in Life.
	Self *messages.Member
	// Life is this process's current life in the cluster.
	Life *Life
	// Resumed: this process started from its own persisted Raft state, so a
	// voter keeps its vote across the restart.
	Resumed bool
	// AutoRejoin: a node removed by failure detection that finds out it was
	// removed rejoins as a new life.
	AutoRejoin bool
	// VoterStabilization is how long a non-voter must be healthy before the
	// leader promotes it.
	VoterStabilization time.Duration
	// ElectionTimeout is Raft's; it paces the removal self-check and bounds
	// autopilot's leader-contact threshold.
	ElectionTimeout time.Duration
	// Recovery, when set, is what a quorum-loss recovery of this node's data
	// directory left to do: once it leads, the node removes the lost members.
	Recovery *Recovery
	// Tracker holds the leader's evidence about its peers' replication.
	Tracker *PeerTracker
	// LastAlive is when this node last knew itself alive before this start (0 if unknown).
	LastAlive int64
	// Cluster is the configuration proposed when this node bootstraps a cluster.
	Cluster *messages.ClusterConfig
	// Expect holds this node's explicit cluster settings (zero fields: any),
	// and the cluster ID its data directory belongs to ("" = none).
	Expect *messages.ClusterConfig
	// ExpectKeyHash marks Expect.KeyHash as explicit (MD5 is its zero value).
	ExpectKeyHash bool
	// Seeds are members to send join requests to until a leader is known.
	Seeds []string
	// Peers calls other nodes.
	Peers Peers
	// OnJoinRefused is told when the cluster permanently refuses this node.
	OnJoinRefused func(error)
	// Health configures failure detection (run by the leader).
	Health HealthConfig
	// RebalanceDelay debounces membership changes into one rebalance.
	RebalanceDelay time.Duration
	// Handoff configures partition hand-off (run by the leader's rebalancer).
	Handoff HandoffConfig
	// ApplyTimeout bounds how long a proposal waits to enter raft's queue.
	ApplyTimeout time.Duration
	// RPCTimeout bounds one node-to-node request.
	RPCTimeout time.Duration
	// LastDelivered is the seq of the last event delivered before this start;
	// events up to it are not delivered again.
	LastDelivered Seq
	// OnDelivered, when set, is told the seq of the last event of each
	// delivered batch (for persistence). It runs in the dispatcher: keep it fast.
	OnDelivered func(Seq)
	// PersistDelivered, when set, is asked to make seq durable as the last
	// delivered event before events up to it are delivered; it must not
	// block, and answers with a Persisted message to hooks (the dispatcher).
	PersistDelivered func(seq Seq, hooks *actor.PID)
	// OnView, when set, is given every new view, in log order, by the
	// partitions actor: work that each committed change needs (the facade's
	// routing table) is done there, not on the read path nor in Apply.
	OnView func(*raftfsm.View)
	// Tap, when set, sees every event delivered on this node, once, in seq
	// order (the node's event log for GET /events). It runs in the
	// dispatcher: it must not block.
	Tap func(*messages.Event)
	// Subscriptions and Callbacks registered before start.
	Subscriptions []*Subscribe
	Callbacks     []*RegisterCallback
	// CallbackRegistry, when set, tracks the callback actors for Stop.
	CallbackRegistry *CallbackRegistry
}

// HandoffConfig holds the hand-off throttles and timeouts.
type HandoffConfig struct {
	// MaxMovesPerNode bounds the syncing copies into or out of one node.
	MaxMovesPerNode int
	// MaxMovesInFlight and MaxMovesInFlightFraction bound the syncing copies
	// in the cluster: the smaller of the two (0: that kind of limit is off).
	MaxMovesInFlight         int
	MaxMovesInFlightFraction float64
	// HandoffTimeout bounds one copy: then it is cancelled (another owner is
	// ready) or forced (none is). 0: no bound.
	HandoffTimeout time.Duration
	// ReplicaDelay is how long the slots of a member removed by failure
	// detection stay reserved for it before other nodes copy its data.
	ReplicaDelay time.Duration
	// MinReadyReplicas: a partition with fewer ready owners is re-replicated
	// at once, ReplicaDelay or not.
	MinReadyReplicas int
}

func (c *Config) now() int64 { return time.Now().UnixNano() }

func (c *Config) rpcTimeout() time.Duration {
	if c.RPCTimeout > 0 {
		return c.RPCTimeout
	}
	return 5 * time.Second
}

// Peers is how a node calls other nodes (implemented by internal/rpc.Client).
type Peers interface {
	Join(ctx context.Context, addr string, req *messages.JoinRequest) (*messages.JoinResponse, error)
	Propose(ctx context.Context, addr string, req *messages.Propose) (*messages.ProposeResult, error)
	ProposeBatch(ctx context.Context, addr string, req *messages.ProposeBatch) (*messages.ProposeBatchResult, error)
	Rebalance(ctx context.Context, addr string, req *messages.RebalanceRequest) (*messages.ProposeResult, error)
	Ping(ctx context.Context, addr string, req *messages.PingRequest) (*messages.PingResponse, error)
	MemberStatus(ctx context.Context, addr string, req *messages.MemberStatusRequest) (*messages.MemberStatusResponse, error)
}
