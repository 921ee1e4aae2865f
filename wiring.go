package clusterkit

// The node's actor tree and its HTTP server: what Start wires together.

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/messages"
)

// spawnTree spawns the node's root actor, with the subscriptions and
// callbacks registered before Start, and waits until it runs.
func (ck *ClusterKit) spawnTree(seeds []string) error {
	o := ck.opts
	ck.mu.Lock()
	subs, cbs := ck.pendingSubs, ck.pendingCallbacks
	ck.pendingSubs, ck.pendingCallbacks = nil, nil
	ck.mu.Unlock()
	cfg := &actors.Config{
		NodeID: o.NodeID,
		Raft:   ck.raft,
		FSM:    ck.fsm,
		Logger: ck.log,
		Stats:  ck.stats,
		Self: &messages.Member{
			Id: o.NodeID, Name: o.NodeName, Address: ck.advertise, Services: o.Services, Handoff: o.Handoff,
			Zone: o.Zone, Weight: proto.Uint32(uint32(max(o.Weight, 0))),
		},
		Life:               ck.life,
		Resumed:            ck.resumed,
		AutoRejoin:         o.AutoRejoin == AutoRejoinOn,
		VoterStabilization: o.VoterStabilization,
		ElectionTimeout:    o.Raft.ElectionTimeout,
		Tracker:            ck.tracker,
		Recovery:           ck.recovery,
		LastAlive:          ck.lastAlive,
		Cluster:            ck.clusterConfig(),
		Expect:             ck.expectConfig(),
		ExpectKeyHash:      o.KeyHash != KeyHashDefault,
		Seeds:              seeds,
		Peers:              ck.peers,
		RPCTimeout:         rpcTimeout,
		OnJoinRefused: func(err error) {
			select {
			case ck.refused <- err:
			default:
			}
		},
		RebalanceDelay: o.RebalanceDelay,
		Handoff:        handoffConfig(o),
		Health: actors.HealthConfig{
			Enabled: !o.HealthCheck.Disable, Interval: o.HealthCheck.Interval,
			Timeout: o.HealthCheck.Timeout, FailureThreshold: o.HealthCheck.FailureThreshold, RemovalGrace: o.HealthCheck.RemovalGrace,
		},
		ApplyTimeout:     DefaultApplyTimeout,
		Subscriptions:    subs,
		Callbacks:        cbs,
		CallbackRegistry: ck.callbacks,
		LastDelivered:    ck.delivered,
		Tap: func(e *messages.Event) {
			ck.eventLog.Load().Append(e)
			raftPeerEvent(e) // a departed member's Raft series go away
		},
		PersistDelivered: persistFunc(ck.persister),
		OnView:           ck.prebuildTable,
		OnDelivered: func(s actors.Seq) {
			ck.lastSeq.Lock()
			ck.lastSeq.Seq = s
			ck.lastSeq.Unlock()
		},
	}
	root, err := ck.system.Root.SpawnNamed(actors.NewRootProps(cfg), actors.RootName(o.NodeID))
	if err != nil {
		return fmt.Errorf("spawn root actor %s: %w (is another node with this ID running in this actor system?)", actors.RootName(o.NodeID), err)
	}
	res, err := ck.system.Root.RequestFuture(root, &actors.GetChildren{}, 5*time.Second).Result()
	if err != nil {
		return fmt.Errorf("actor tree did not start: %w", err)
	}
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.root = root
	ck.children = *res.(*actors.Children)
	// Registrations that raced with start-up.
	for _, s := range ck.pendingSubs {
		ck.system.Root.Send(ck.children.Hooks, s)
	}
	for _, c := range ck.pendingCallbacks {
		ck.system.Root.Send(ck.root, c)
	}
	ck.pendingSubs, ck.pendingCallbacks = nil, nil
	return nil
}

// persistFunc adapts a persister (nil: no persistence) to the actor config.
func persistFunc(p *persister) func(actors.Seq, *actor.PID) {
	if p == nil {
		return nil
	}
	return p.request
}

func (ck *ClusterKit) serve() {
	l := ck.opts.HTTPLimits
	ck.gateway = httpgw.New(gatewayBackend{ck}, ck.log.With("component", "http"), httpgw.Security{
		Tokens: ck.currentTokens, AuthReads: ck.opts.AuthReads,
		MaxEventStreams: l.MaxEventStreams, MaxEventStreamsPerClient: l.MaxEventStreamsPerClient,
		AuthFailuresPerSecond: l.AuthFailuresPerSecond, AuthFailureBurst: l.AuthFailureBurst,
	})
	ck.server = &http.Server{
		Handler:           ck.gateway,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(ck.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	ck.servingGateway.Store(ck.gateway)
	// Shutdown waits for handlers: end the event streams when it starts.
	ck.server.RegisterOnShutdown(ck.gateway.Close)
	ck.serverDone = make(chan struct{})
	go func() {
		defer close(ck.serverDone)
		if err := ck.server.Serve(ck.mux.HTTP()); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ck.log.Error("http server stopped", "error", err)
		}
	}()
}

// tellState sends msg to the state actor (dropped before start and after stop).
func (ck *ClusterKit) tellState(msg any) {
	if pid := ck.stateActor(); pid != nil {
		ck.system.Root.Send(pid, msg)
	}
}

func (ck *ClusterKit) stateActor() *actor.PID {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return ck.children.State
}

// readyActor is the PID of the ready actor (nil before Start).
func (ck *ClusterKit) readyActor() *actor.PID {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return ck.children.Ready
}

// handoffConfig is the leader's hand-off policy from the options (with
// defaults filled in): negative values switch a limit off.
func handoffConfig(o Options) actors.HandoffConfig {
	return actors.HandoffConfig{
		MaxMovesPerNode: max(o.MaxMovesPerNode, 0), MaxMovesInFlight: o.MaxMovesInFlight,
		MaxMovesInFlightFraction: max(o.MaxMovesInFlightFraction, 0),
		HandoffTimeout:           o.HandoffTimeout, ReplicaDelay: max(o.ReplicaDelay, 0), MinReadyReplicas: o.MinReadyReplicas,
	}
}
