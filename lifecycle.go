package clusterkit

// A node's life cycle: Start, Stop, and what stopping waits for.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/eventlog"
	"github.com/clusterkit/clusterkit/internal/logging"
	"github.com/clusterkit/clusterkit/internal/mux"
	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// stopSnapshotBehind: a clean Stop takes a snapshot when more entries than
// this were applied since the last one.
const stopSnapshotBehind = 256

// Start listens on HTTPAddr, starts Raft and the actor tree and returns when
// the node holds a committed partition table. A node with no state
// bootstraps a new cluster; one with join addresses joins through them. Start
// gives up after Options.StartTimeout, or when ctx ends: it then returns an
// error wrapping ctx.Err() within milliseconds. If Start fails for any
// reason, the node is stopped (every goroutine it started has ended) and
// cannot be started again: create a new one with New.
func (ck *ClusterKit) Start(ctx context.Context) error {
	ck.mu.Lock()
	switch {
	case ck.stopped:
		ck.mu.Unlock()
		return ErrStopped
	case ck.started:
		ck.mu.Unlock()
		return ErrAlreadyStarted
	}
	ck.started = true
	ck.mu.Unlock()

	if err := ck.start(ctx); err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		ck.log.Error("start failed", "error", err)
		// The caller's context has ended or Start failed: the clean-up
		// still runs to the end, so nothing is left behind.
		if stopErr := ck.Stop(context.WithoutCancel(ctx)); stopErr != nil {
			ck.log.Warn("cleanup after failed start", "error", stopErr)
		}
		return err
	}
	return nil
}

func (ck *ClusterKit) start(ctx context.Context) error {
	o := ck.opts
	if err := ck.openTokens(); err != nil {
		return err
	}
	ln, err := ck.network.Listen(o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("%w on %s: %w", ErrListen, o.HTTPAddr, err)
	}
	if o.TLSConfig != nil {
		// TLS wraps the whole port: the first-byte demultiplexer sees the
		// decrypted stream, so Raft and HTTP share it as before.
		ln = tls.NewListener(ln, o.TLSConfig)
	}
	ck.ln = ln
	ck.mu.Lock() // AdvertiseAddr may read it concurrently
	ck.advertise = advertiseAddr(o.AdvertiseAddr, o.HTTPAddr, ln.Addr())
	ck.mu.Unlock()
	if err := ck.loadIdentity(); err != nil {
		return err
	}
	// Events up to the last delivered one are not in this run's log: a
	// client resuming from before it gets 410, not a silent gap.
	ck.eventLog.Store(eventlog.New(eventLogCapacity, ck.delivered))
	if o.DataDir != "" {
		ck.persister = newPersister(ck, ck.delivered)
	}

	hc := logging.HCLogWith(ck.log, "raft", ck.raftLogHooks())
	stores, err := raftfsm.OpenStores(o.DataDir, hc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	ck.stores = stores
	hasState, err := raft.HasExistingState(stores.Log, stores.Stable, stores.Snapshots)
	if err != nil {
		return fmt.Errorf("%w: read raft state: %w", ErrDataDir, err)
	}
	if hasState && o.DataDir != "" {
		if err := ck.checkDataDir(stores); err != nil {
			return err
		}
	}
	ck.resumed = hasState
	if ck.recovery, err = ck.loadRecovery(hasState); err != nil {
		return err
	}

	// One port: Raft connections and HTTP (gateway and node-to-node requests).
	ck.mux = mux.New(ln, ck.log.With("component", "mux"))
	dial := ck.dial
	ck.stream = raftfsm.NewStreamLayer(ck.mux.Raft(), dial, raftfsm.Handshake{
		Tokens: ck.currentTokens,
		Local:  func() (string, string, uint64) { return ck.ClusterID(), o.NodeID, ck.lastIncarnation() },
		// The cluster ID from the node file too, not only the view: a
		// restarted node serves Raft before its state is restored, and
		// must refuse another cluster's leader from the first connection.
		Check: func(h *messages.StreamHello) (string, string) {
			return raftfsm.CheckHello(ck.fsm.View(), ck.ClusterID(), h)
		},
		Refused: func(addr string, ack *messages.StreamHelloAck) {
			if ack.GetCode() == raftfsm.HelloStale {
				ck.tellState(&actors.Fenced{Reason: ack.GetReason(), Source: addr})
			}
		},
	}, ck.log.With("component", "raft-transport"))
	ck.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: ck.stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hc.Named("transport"),
		// No pipelining: raft's pipeline can deadlock its Shutdown (a sender
		// and the response decoder block on each other's unbuffered channel),
		// and with batching it brings nothing (hashicorp/raft#541).
		MaxRPCsInFlight: 1,
	})
	ck.peers = rpc.NewClient(func(ctx context.Context, _, addr string) (net.Conn, error) { return ck.dial(ctx, addr) }, ck.primaryToken, ck.ClusterID)
	if hasState {
		// A data directory of another cluster must not join the cluster its
		// join addresses lead to, nor send it a single Raft message.
		if err := ck.checkSeedsCluster(ctx); err != nil {
			return err
		}
	}

	r, err := raft.NewRaft(ck.raftConfig(hc), ck.fsm, stores.Log, stores.Stable, stores.Snapshots, ck.transport)
	if err != nil {
		if hasState {
			return fmt.Errorf("%w: raft cannot load %s: %w", ErrDataDir, o.DataDir, err)
		}
		return fmt.Errorf("start raft: %w", err)
	}
	ck.raft = r
	if o.DataDir != "" {
		ck.snapshots = ck.startSnapshotter()
	}
	seeds := ck.seeds()
	if hasState {
		// A member removed while it was down is no longer in anyone's Raft
		// configuration, so nobody contacts it: the peers it knew are where
		// it asks to join again, even without a join address.
		seeds = append(seeds, knownPeers(r, o.NodeID, ck.advertise, seeds)...)
	}
	switch {
	case hasState:
		ck.log.Info("resuming from existing state", "data_dir", o.DataDir, "advertise", ck.advertise, "cluster_id", ck.ClusterID())
	case len(seeds) == 0:
		ck.log.Info("no existing state and no join address: bootstrapping a new cluster", "advertise", ck.advertise)
		// This node will see the cluster's whole history: GET /events may
		// replay it from seq 0.
		ck.eventLog.Store(eventlog.NewComplete(eventLogCapacity))
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(o.NodeID), Address: raft.ServerAddress(ck.advertise)}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
	default:
		ck.log.Info("joining a cluster", "via", seeds, "advertise", ck.advertise)
	}

	if err := ck.spawnTree(seeds); err != nil {
		return err
	}
	ck.serve()
	ck.warnIfExposed()
	ck.logAccess()
	if store := ck.tokens.Load(); store.Path() != "" {
		ck.tokenStop, ck.tokenDone = make(chan struct{}), make(chan struct{})
		go ck.watchTokens(store, ck.tokenStop, ck.tokenDone)
	}
	if err := ck.waitReady(ctx); err != nil {
		return err
	}
	ck.running.Store(true)
	v := ck.fsm.View()
	var incarnation uint64
	if m, ok := v.Member(ck.opts.NodeID); ok {
		incarnation = m.Incarnation
	}
	ck.log.Info("node ready", "cluster_id", v.ClusterID(), "cluster", v.Config().GetClusterName(), "incarnation", incarnation,
		"http", ln.Addr().String(), "advertise", ck.advertise, "members", len(v.Members()),
		"partitions", v.PartitionCount(), "table_version", v.TableVersion(), "health", v.Health().Status)
	return nil
}

// waitReady waits for the committed configuration, this node's registration
// and a partition table.
func (ck *ClusterKit) waitReady(ctx context.Context) error {
	deadline := time.NewTimer(ck.opts.StartTimeout)
	defer deadline.Stop()
	for {
		v := ck.fsm.View()
		if err := ck.fsm.Err(); err != nil {
			return err
		}
		if err := ck.checkConfig(v.Config()); err != nil {
			return err
		}
		if ck.registered(v) && v.HasTable() {
			return nil
		}
		select {
		case <-v.Done():
		case err := <-ck.refused:
			var refused *actors.JoinRefusedError
			if errors.As(err, &refused) && refused.Code == actors.JoinClusterMismatch {
				return fmt.Errorf("%w: %w: %w", ErrJoinRefused, ErrClusterMismatch, err)
			}
			return fmt.Errorf("%w: %w", ErrJoinRefused, err)
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for the node to be ready: config committed=%v, registered=%v, table=%v",
				ctx.Err(), v.Config() != nil, ck.registered(v), v.HasTable())
		case <-deadline.C:
			return fmt.Errorf("%w after %v: config committed=%v, registered=%v, table=%v, raft state %v",
				ErrStartTimeout, ck.opts.StartTimeout, v.Config() != nil, func() bool { _, ok := v.Member(ck.opts.NodeID); return ok }(),
				v.HasTable(), ck.raft.State())
		}
	}
}

// registered reports whether v has this process's current life as a member
// (and the node has not learned otherwise from another member: a removed
// node's own state may still list it).
func (ck *ClusterKit) registered(v *raftfsm.View) bool {
	switch ck.life.Status().State {
	case actors.MemberRemoved, actors.MemberFenced, actors.MemberRefused:
		return false
	}
	n, ok := v.Nonce(ck.opts.NodeID)
	return ok && n == ck.life.Nonce()
}

// Stop stops this node without leaving the cluster (a restart in place keeps
// its membership). It is idempotent and waits until every goroutine the node
// started has ended, with one exception: event callbacks get no new event
// once Stop is called, and those in a call get CallbackStopTimeout (or until
// ctx ends, if sooner) to return. A callback still running then is abandoned
// (it keeps running until it returns), and Stop, having stopped everything
// else, returns an error wrapping ErrCallbackStuck that names it.
//
// ctx bounds the graceful part only (handing primaries and leadership over,
// draining HTTP requests, waiting for callbacks): when it ends, Stop still releases
// everything, promptly, and returns an error wrapping ctx.Err(). Every later
// Stop returns what the first one did.
func (ck *ClusterKit) Stop(ctx context.Context) error {
	ck.stopOnce.Do(func() {
		ck.stopErr = ck.stop(ctx)
		close(ck.done)
	})
	return ck.stopErr
}

// Done is closed once the node has stopped, whoever stopped it (Stop, Leave,
// or POST /leave through the gateway).
func (ck *ClusterKit) Done() <-chan struct{} { return ck.done }

// lifecycle is "new" (before Start), "starting" (Start called, not ready
// yet), "running" or "stopped".
func (ck *ClusterKit) lifecycle() string {
	if ck.running.Load() {
		return "running"
	}
	ck.mu.Lock()
	defer ck.mu.Unlock()
	switch {
	case ck.stopped:
		return "stopped"
	case ck.started:
		return "starting"
	}
	return "new"
}

func (ck *ClusterKit) stop(ctx context.Context) error {
	ck.mu.Lock()
	ck.stopped = true
	ck.mu.Unlock()
	// Callbacks start no new call from now on; calls in progress may run
	// until the deadline while the rest stops.
	ck.callbacks.StopCalls()
	callbacksCtx, cancelCallbacks := context.WithTimeoutCause(ctx, CallbackStopTimeout, errCallbackWait)
	defer cancelCallbacks()
	wasRunning := ck.running.Swap(false)
	var errs []error
	if wasRunning && ctx.Err() == nil {
		_ = ck.handOverPrimaries(ctx) // logged; failure detection does the rest
		ck.handOverLeadership(ctx)
	}
	if ck.tokenStop != nil {
		close(ck.tokenStop)
		<-ck.tokenDone
	}
	if ck.server != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := ck.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			_ = ck.server.Close()
		}
		cancel()
		<-ck.serverDone
	}
	if ck.root != nil {
		// Actors first, raft second: raft must still run while the actors
		// drain the proposals they handed it (a future queued in raft at
		// shutdown is never resolved, hashicorp/raft#498).
		if err := ck.stopActors(callbacksCtx); err != nil {
			errs = append(errs, err)
		}
	}
	if ck.snapshots != nil {
		ck.snapshots.close()
		// A clean stop leaves a short log: the next start reads and
		// replays at most stopSnapshotBehind entries.
		ck.snapshotIfBehind(stopSnapshotBehind)
	}
	if ck.raft != nil {
		if err := ck.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if ck.transport != nil {
		ck.transport.CloseStreams()
		_ = ck.transport.Close()
	}
	if ck.mux != nil {
		_ = ck.mux.Close()
	} else if ck.ln != nil {
		_ = ck.ln.Close()
	}
	if ck.stream != nil {
		ck.stream.Wait()
	}
	if ck.peers != nil {
		ck.peers.Close()
	}
	if ck.stores != nil {
		if err := ck.stores.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close stores: %w", err))
		}
	}
	if ck.persister != nil {
		ck.persister.close()
	}
	if ck.progress != nil {
		// What was really delivered: events persisted but still pending
		// are delivered after the restart instead of being skipped.
		ck.lastSeq.Lock()
		last := ck.lastSeq.Seq
		ck.lastSeq.Unlock()
		if err := ck.writeProgress(last); err != nil {
			errs = append(errs, fmt.Errorf("write delivery progress: %w", err))
		}
		if err := ck.progress.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close delivery progress: %w", err))
		}
	}
	if ck.ownSystem {
		ck.system.Shutdown()
	}
	if ck.raft != nil {
		ck.log.Info("node stopped")
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("stop: the graceful part was cut short: %w", err))
	}
	return errors.Join(errs...)
}

// handOverLeadership transfers leadership before this node stops or leaves,
// so the cluster has a leader again within a round trip instead of an
// election timeout.
func (ck *ClusterKit) handOverLeadership(ctx context.Context) {
	if ck.raft == nil || ck.raft.State() != raft.Leader {
		return
	}
	// Forwarded: a node that lost leadership meanwhile must not forward.
	resp := ck.transferLeadership(ctx, &messages.TransferLeadershipRequest{Forwarded: true})
	switch resp.GetCode() {
	case "", transferNoOtherVoter, transferNotLeader:
	default:
		ck.log.Warn("leadership hand-over failed; the others will elect a leader after their timeout", "code", resp.GetCode(), "error", resp.GetError())
	}
}

// CallbackStopTimeout is how long Stop waits for event callbacks (OnPartitionChange
// and the others) that are in a call to return. A callback still running
// then is abandoned: Go cannot stop a goroutine, so it keeps running until
// it returns, while Stop stops everything else and returns ErrCallbackStuck.
const CallbackStopTimeout = 5 * time.Second

// errCallbackWait is the cause of the end of Stop's wait for callbacks when
// CallbackStopTimeout, not the caller's context, ended it.
var errCallbackWait = errors.New("callback stop timeout")

// stopActors stops the actor tree. No callback starts a call any more (see
// stop); the calls in progress get until ctx ends to return.
func (ck *ClusterKit) stopActors(ctx context.Context) error {
	stuck := ck.callbacks.WaitIdle(ctx)
	if len(stuck) == 0 {
		if err := ck.system.Root.StopFuture(ck.root).Wait(); err != nil {
			return fmt.Errorf("stop actors: %w", err)
		}
		return nil
	}
	// A callback in a call holds its actor, and so the root, from stopping:
	// stop every other actor one by one, and leave the root to finish
	// stopping when the stuck calls return.
	ck.mu.Lock()
	c := ck.children
	ck.mu.Unlock()
	pids := append([]*actor.PID{c.Hooks, c.Partitions, c.Rebalancer, c.Health, c.State}, ck.callbacks.Idle()...)
	futures := make([]actor.Future, 0, len(pids))
	for _, pid := range pids {
		if pid != nil {
			futures = append(futures, ck.system.Root.StopFuture(pid))
		}
	}
	errs := []error{stuckError(ctx, stuck)}
	for _, f := range futures {
		if err := f.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("stop actors: %w", err))
		}
	}
	ck.system.Root.Stop(ck.root)
	return errors.Join(errs...)
}

// stuckError names the callbacks that did not return in time.
func stuckError(ctx context.Context, stuck []actors.RunningCallback) error {
	names := make([]string, len(stuck))
	for i, s := range stuck {
		names[i] = fmt.Sprintf("%s (%s) running for %v on the event of seq (%d, %d)",
			s.Hook, s.Name, s.For.Round(time.Millisecond), s.Seq.Index, s.Seq.Sub)
	}
	fate := "abandoned, it keeps running until it returns"
	if len(stuck) > 1 {
		fate = "abandoned, they keep running until they return"
	}
	within := fmt.Sprintf("within %v", CallbackStopTimeout)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, errCallbackWait) {
		within = "before Stop's context ended (" + cause.Error() + ")"
	}
	return fmt.Errorf("%w %s: %s; %s", ErrCallbackStuck, within, strings.Join(names, "; "), fate)
}
