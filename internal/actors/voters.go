package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/clusterkit/clusterkit/internal/logging"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Voters are earned, the way Consul, Nomad and Vault decide it: the leader
// runs hashicorp/raft-autopilot, which judges every server's health (recent
// contact with the leader, the leader's term, a log within MaxTrailingLogs
// of the leader's, and the application's own verdict) and how long it has
// held. A non-voter healthy for VoterStabilization is promoted while there
// are fewer than MaxVoters voters; a voter unhealthy for twice that long is
// replaced by such a non-voter, or, when there is none and Raft cannot reach
// it, demoted (a voter that does not take the log only raises the quorum). Autopilot's changes go
// through pilotRaft, which commits each decision (SetVoter) before Raft's
// configuration follows it, so every node sees who votes and why.

// Autopilot tuning derived from the node's timings.
const (
	// maxTrailingLogs: a server further behind the leader's log is unhealthy.
	maxTrailingLogs = 1024
	// minContactThreshold floors the allowed time since the leader's last
	// contact (heartbeats go out every HeartbeatTimeout/10).
	minContactThreshold = 250 * time.Millisecond
)

// voterPilot runs autopilot while this node leads.
type voterPilot struct {
	stats  *Stats
	ap     *autopilot.Autopilot
	cancel context.CancelFunc
	done   chan struct{}
}

// startPilot starts autopilot in the background (its first state needs a
// round of pings, which an actor must not wait for).
func startPilot(cfg *Config, system *actor.ActorSystem, prop *proposer, logger *slog.Logger) *voterPilot {
	ctx, cancel := context.WithCancel(context.Background())
	p := &voterPilot{cancel: cancel, done: make(chan struct{}), stats: cfg.Stats}
	d := &pilotDelegate{cfg: cfg, system: system, prop: prop, log: logger, ctx: ctx, pilot: p, lives: map[string]lifeSeen{}}
	every := pilotInterval(cfg.VoterStabilization)
	p.ap = autopilot.New(&pilotRaft{r: cfg.Raft, d: d}, d,
		autopilot.WithLogger(logging.HCLog(logging.Demote(logger, 4), "autopilot")),
		autopilot.WithPromoter(&promoter{cfg: cfg}),
		autopilot.WithUpdateInterval(every),
		autopilot.WithReconcileInterval(every))
	go func() {
		defer close(p.done)
		p.ap.Start(ctx)
		<-ctx.Done()
		<-p.ap.Stop()
	}()
	return p
}

// pilotInterval is how often autopilot refreshes the servers' health and
// reconciles the voters: a quarter of the stabilisation window, within
// [100 ms, 500 ms].
func pilotInterval(stabilization time.Duration) time.Duration {
	return min(max(stabilization/4, 100*time.Millisecond), 500*time.Millisecond)
}

// stop stops autopilot and waits for its goroutines (nil-safe).
func (p *voterPilot) stop() {
	if p == nil {
		return
	}
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(drainTimeout):
	}
	p.stats.tolerance.Store(0)
}

// healthyFunc reports, from autopilot's latest state, whether a server is
// healthy (nil-safe: nothing is healthy without a pilot).
func (p *voterPilot) healthyFunc() func(id string) bool {
	var st *autopilot.State
	if p != nil {
		st = p.ap.GetState()
	}
	return func(id string) bool {
		if st == nil {
			return false
		}
		srv, ok := st.Servers[raft.ServerID(id)]
		return ok && srv.Health.Healthy
	}
}

// pilotDelegate is autopilot's window on the node.
type pilotDelegate struct {
	cfg    *Config
	system *actor.ActorSystem
	prop   *proposer
	log    *slog.Logger
	ctx    context.Context
	pilot  *voterPilot

	// lives records when this pilot first saw each member's current life:
	// autopilot tracks health per node ID, and a new life (a node restarted
	// on a wiped disk faster than a health refresh) must not inherit the
	// stability of the previous one.
	mu    sync.Mutex
	lives map[string]lifeSeen
}

type lifeSeen struct {
	incarnation uint64
	since       time.Time
}

var _ autopilot.ApplicationIntegration = (*pilotDelegate)(nil)

func (d *pilotDelegate) AutopilotConfig() *autopilot.Config {
	return &autopilot.Config{
		CleanupDeadServers:      false, // failure detection removes members
		LastContactThreshold:    max(2*d.cfg.ElectionTimeout, minContactThreshold),
		MaxTrailingLogs:         maxTrailingLogs,
		ServerStabilizationTime: d.cfg.VoterStabilization,
	}
}

func (d *pilotDelegate) NotifyState(st *autopilot.State) {
	d.cfg.Stats.setFailureTolerance(st.FailureTolerance)
}

func (d *pilotDelegate) RemoveFailedServer(*autopilot.Server) {}

// KnownServers are the committed members. A member is failed for autopilot
// when it is suspect or when Raft's heartbeats to it have failed for longer
// than a probe interval, even if it answers pings.
func (d *pilotDelegate) KnownServers() map[raft.ServerID]*autopilot.Server {
	v := d.cfg.FSM.View()
	now := time.Now()
	out := make(map[raft.ServerID]*autopilot.Server, len(v.Members()))
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := make(map[string]lifeSeen, len(v.Members()))
	for _, m := range v.Members() {
		status := autopilot.NodeAlive
		if m.Status != raftfsm.StatusActive || d.cfg.Tracker.FailingFor(m.ID, now) > d.cfg.raftFailAfter() {
			status = autopilot.NodeFailed
		}
		life, ok := d.lives[m.ID]
		if !ok || life.incarnation != m.Incarnation {
			life = lifeSeen{incarnation: m.Incarnation, since: now}
		}
		seen[m.ID] = life
		out[raft.ServerID(m.ID)] = &autopilot.Server{
			ID: raft.ServerID(m.ID), Name: m.Name, Address: raft.ServerAddress(m.IP), NodeStatus: status,
			IsLeader: m.ID == d.cfg.NodeID, NodeType: autopilot.NodeVoter, Ext: life.since,
			Meta: map[string]string{"zone": m.Zone},
		}
	}
	d.lives = seen
	return out
}

// FetchServerStats asks every server for its Raft progress (a ping), in
// parallel, bounded by ctx. A server that does not answer as the committed
// process, or runs no Raft, gets no stats and is unhealthy.
func (d *pilotDelegate) FetchServerStats(ctx context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	v := d.cfg.FSM.View()
	out := make(map[raft.ServerID]*autopilot.ServerStats, len(servers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, srv := range servers {
		if string(id) == d.cfg.NodeID {
			term, _ := strconv.ParseUint(d.cfg.Raft.Stats()["last_log_term"], 10, 64)
			mu.Lock()
			out[id] = &autopilot.ServerStats{LastTerm: term, LastIndex: d.cfg.Raft.LastIndex()}
			mu.Unlock()
			continue
		}
		nonce, member := v.Nonce(string(id))
		if !member || d.cfg.Peers == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pong, err := d.cfg.Peers.Ping(ctx, string(srv.Address), &messages.PingRequest{})
			if err != nil || pong.GetNodeId() != string(id) || pong.GetNonce() != nonce || pong.GetRaftState() == "" {
				return
			}
			contact := time.Duration(pong.GetLastContactNanos())
			if contact < 0 {
				contact = time.Hour // never heard from a leader
			}
			mu.Lock()
			out[id] = &autopilot.ServerStats{LastContact: contact, LastTerm: pong.GetLastTerm(), LastIndex: pong.GetLastIndex()}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// promoter decides voters (see the comment at the top of this file).
type promoter struct{ cfg *Config }

var _ autopilot.Promoter = (*promoter)(nil)

func (*promoter) GetServerExt(*autopilot.Config, *autopilot.ServerState) interface{} { return nil }
func (*promoter) GetStateExt(*autopilot.Config, *autopilot.State) interface{}        { return nil }
func (*promoter) IsPotentialVoter(t autopilot.NodeType) bool                         { return t == autopilot.NodeVoter }

func (*promoter) GetNodeTypes(_ *autopilot.Config, st *autopilot.State) map[raft.ServerID]autopilot.NodeType {
	out := make(map[raft.ServerID]autopilot.NodeType, len(st.Servers))
	for id := range st.Servers {
		out[id] = autopilot.NodeVoter
	}
	return out
}

// FilterFailedServerRemovals removes nothing: failure detection does.
func (*promoter) FilterFailedServerRemovals(*autopilot.Config, *autopilot.State, *autopilot.FailedServers) *autopilot.FailedServers {
	return &autopilot.FailedServers{}
}

func (p *promoter) CalculatePromotionsAndDemotions(conf *autopilot.Config, st *autopilot.State) autopilot.RaftChanges {
	return votersPlan(st, p.maxVoters(), conf.ServerStabilizationTime, time.Now())
}

func (p *promoter) maxVoters() int {
	if c := p.cfg.FSM.View().Config(); c != nil {
		return int(c.GetMaxVoters())
	}
	return 1
}

// votersPlan is the promotion rule, pure: promote the non-voters that have
// been healthy for stab, in their current life (Server.Ext: when the pilot
// first saw it), longest first, while there are fewer than
// maxVoters voters; replace each voter unhealthy for 2*stab by such a
// non-voter, or, when none is left, demote it if Raft cannot reach it. The
// leader is never demoted.
//
// Zones (Server.Meta["zone"]): no zone gets more than ceil(v/z) voters, v
// the voters wanted (min(maxVoters, servers)) and z the zones with members,
// so that losing one zone keeps a quorum whenever the member counts allow
// it. Candidates from the zones with the fewest voters go first; when a zone
// is above its share and a candidate elsewhere could take the seat, one
// voter of that zone is swapped out per round (a slow, safe convergence:
// promotion before demotion, never the leader).
func votersPlan(st *autopilot.State, maxVoters int, stab time.Duration, now time.Time) autopilot.RaftChanges {
	var candidates, failing, healthyVoters []*autopilot.ServerState
	voters := 0
	perZone := map[string]int{}
	zones := map[string]bool{}
	for _, srv := range st.Servers {
		zones[zoneOf(srv)] = true
		switch srv.State {
		case autopilot.RaftLeader:
			voters++
			perZone[zoneOf(srv)]++
		case autopilot.RaftVoter:
			voters++
			perZone[zoneOf(srv)]++
			if !srv.Health.Healthy && now.Sub(srv.Health.StableSince) >= 2*stab {
				failing = append(failing, srv)
			} else {
				healthyVoters = append(healthyVoters, srv)
			}
		case autopilot.RaftNonVoter, autopilot.RaftStaging:
			lifeSince, _ := srv.Server.Ext.(time.Time) // when this life was first seen
			if srv.Server.NodeStatus == autopilot.NodeAlive && srv.Health.IsStable(now, stab) && now.Sub(lifeSince) >= stab {
				candidates = append(candidates, srv)
			}
		}
	}
	zoneCap := len(st.Servers) + 1 // no cap without zones
	if len(zones) > 1 {
		want := min(maxVoters, len(st.Servers))
		zoneCap = (want + len(zones) - 1) / len(zones)
	}
	byAge := func(a, b *autopilot.ServerState) int {
		if c := a.Health.StableSince.Compare(b.Health.StableSince); c != 0 {
			return c
		}
		return cmpID(a.Server.ID, b.Server.ID)
	}
	slices.SortFunc(candidates, byAge)
	slices.SortFunc(failing, byAge)
	// next takes the oldest candidate of a zone with the fewest voters,
	// among the zones below their cap (leaving is the zone a seat frees).
	next := func(leaving string) *autopilot.ServerState {
		eff := func(c *autopilot.ServerState) int { // voters of c's zone once leaving's seat is free
			n := perZone[zoneOf(c)]
			if zoneOf(c) == leaving {
				n--
			}
			return n
		}
		best := -1
		for i, c := range candidates {
			if eff(c) < zoneCap && (best < 0 || eff(c) < eff(candidates[best])) {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		c := candidates[best]
		candidates = slices.Delete(candidates, best, best+1)
		perZone[zoneOf(c)]++
		return c
	}
	var ch autopilot.RaftChanges
	var promoted []*autopilot.ServerState
	for voters+len(promoted) < maxVoters {
		c := next(noZone)
		if c == nil {
			break
		}
		promoted = append(promoted, c)
	}
	// Grow the voters two at a time (1 → 3 → 5) while more members are
	// coming: an even count tolerates no more failures than the odd one
	// below it, and its larger quorum makes every slow follower a threat
	// to the leader's lease (two voters on a busy machine lost the leader
	// over and over while 200 members joined). A last seat that makes the
	// final count (MaxVoters, or every member) is taken at once. Members
	// count whatever their health: joiners that Raft has not caught up
	// with yet are members to come, and a dead one is removed in time.
	if n := voters + len(promoted); len(promoted) > 0 && n%2 == 0 && n < min(maxVoters, len(st.Servers)) {
		last := promoted[len(promoted)-1]
		promoted = promoted[:len(promoted)-1]
		perZone[zoneOf(last)]--
		candidates = append(candidates, last)
		slices.SortFunc(candidates, byAge)
	}
	for _, c := range promoted {
		ch.Promotions = append(ch.Promotions, c.Server.ID)
	}
	for _, f := range failing {
		if c := next(zoneOf(f)); c != nil {
			ch.Promotions = append(ch.Promotions, c.Server.ID)
			ch.Demotions = append(ch.Demotions, f.Server.ID)
			perZone[zoneOf(f)]--
			continue
		}
		if f.Server.NodeStatus != autopilot.NodeAlive {
			// Unreachable for Raft (or suspect), and nobody to replace it:
			// its vote only raises the quorum. A voter that is merely slow
			// (late contact, a trailing log: a busy machine) still votes,
			// and keeps its seat until a healthy non-voter can take it.
			ch.Demotions = append(ch.Demotions, f.Server.ID)
			perZone[zoneOf(f)]--
		}
	}
	// A zone above its share: promote a candidate elsewhere (the seat it
	// takes is given back below, in a later round: autopilot applies a
	// round's promotions before any demotion).
	crowded := false
	for _, n := range perZone {
		crowded = crowded || n > zoneCap
	}
	if crowded && len(ch.Promotions) == 0 {
		if c := next(noZone); c != nil {
			ch.Promotions = append(ch.Promotions, c.Server.ID)
		}
	}
	// Voters above maxVoters (after such a swap): the most recent healthy
	// voter of the most crowded zone gives its seat back.
	slices.SortFunc(healthyVoters, byAge)
	for excess := voters + len(ch.Promotions) - len(ch.Demotions) - maxVoters; excess > 0; excess-- {
		pick := -1
		for i, v := range healthyVoters {
			if pick < 0 || perZone[zoneOf(v)] >= perZone[zoneOf(healthyVoters[pick])] {
				pick = i
			}
		}
		if pick < 0 {
			break
		}
		v := healthyVoters[pick]
		healthyVoters = slices.Delete(healthyVoters, pick, pick+1)
		ch.Demotions = append(ch.Demotions, v.Server.ID)
		perZone[zoneOf(v)]--
	}
	return ch
}

// noZone is no zone's name: next(noZone) frees no seat. ("" is the zone of
// members without one.)
const noZone = "\x00"

// zoneOf is a server's zone, as KnownServers put it in its metadata.
func zoneOf(s *autopilot.ServerState) string { return s.Server.Meta["zone"] }

func cmpID(a, b raft.ServerID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pilotRaft is the Raft autopilot drives: promotions and demotions are
// committed decisions (SetVoter) before they are Raft configuration changes;
// everything autopilot may only read passes through.
type pilotRaft struct {
	r *raft.Raft
	d *pilotDelegate
}

var _ autopilot.Raft = (*pilotRaft)(nil)

var errNotUsed = errors.New("clusterkit: autopilot may not change this (failure detection and admission do)")

func (p *pilotRaft) AddNonvoter(raft.ServerID, raft.ServerAddress, uint64, time.Duration) raft.IndexFuture {
	return doneFuture{err: errNotUsed}
}
func (p *pilotRaft) RemoveServer(raft.ServerID, uint64, time.Duration) raft.IndexFuture {
	return doneFuture{err: errNotUsed}
}
func (p *pilotRaft) LeadershipTransferToServer(raft.ServerID, raft.ServerAddress) raft.Future {
	return doneFuture{err: errNotUsed}
}
func (p *pilotRaft) LastIndex() uint64                          { return p.r.LastIndex() }
func (p *pilotRaft) Leader() raft.ServerAddress                 { return p.r.Leader() }
func (p *pilotRaft) GetConfiguration() raft.ConfigurationFuture { return p.r.GetConfiguration() }
func (p *pilotRaft) Stats() map[string]string                   { return p.r.Stats() }
func (p *pilotRaft) State() raft.RaftState                      { return p.r.State() }

func (p *pilotRaft) AddVoter(id raft.ServerID, addr raft.ServerAddress, _ uint64, _ time.Duration) raft.IndexFuture {
	return p.d.setVoter(string(id), addr, true)
}

func (p *pilotRaft) DemoteVoter(id raft.ServerID, _ uint64, _ time.Duration) raft.IndexFuture {
	return p.d.setVoter(string(id), "", false)
}

// setVoter commits the decision, then changes Raft's configuration.
func (d *pilotDelegate) setVoter(id string, addr raft.ServerAddress, voter bool) raft.IndexFuture {
	v := d.cfg.FSM.View()
	m, ok := v.Member(id)
	if !ok {
		if _, departed := v.Departed(id); departed && !voter {
			// Removed meanwhile: autopilot's view was behind, and the
			// membership actor takes the departed voter out of Raft's
			// configuration itself ("demote departed voter").
			return doneFuture{}
		}
		return doneFuture{err: fmt.Errorf("%w: %q", raftfsm.ErrUnknownNode, id)}
	}
	timeout := d.cfg.ApplyTimeout
	f := d.cfg.Raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return doneFuture{err: err}
	}
	isVoter := false
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			isVoter = srv.Suffrage == raft.Voter
		}
	}
	if m.Voter == voter && isVoter == voter {
		return doneFuture{} // already so: autopilot's view was behind
	}
	if !voter && !quorumWithout(f.Configuration(), raft.ServerID(id), d.cfg.Tracker) {
		return doneFuture{err: fmt.Errorf("demoting %q would leave too few voters that answer", id)}
	}
	reason := d.reason(id, voter)
	var index uint64 // of the committed SetVoter: the decision
	if m.Voter != voter {
		cmd := &messages.Command{TimeUnixNano: time.Now().UnixNano(), Origin: d.cfg.NodeID,
			Op: &messages.Command_SetVoter{SetVoter: &messages.SetVoter{Id: id, Incarnation: m.Incarnation, Voter: voter, Reason: reason}}}
		pr, err := d.prop.commit(d.ctx, d.system, cmd, timeout)
		if err == nil {
			err = ResultError(pr)
		}
		if err != nil {
			return doneFuture{err: err}
		}
		index = pr.GetIndex()
	}
	var fut raft.IndexFuture
	if voter {
		fut = d.cfg.Raft.AddVoter(raft.ServerID(id), addr, 0, timeout)
	} else {
		fut = d.cfg.Raft.DemoteVoter(raft.ServerID(id), 0, timeout)
	}
	if err := fut.Error(); err != nil {
		return doneFuture{err: err}
	}
	if index == 0 { // the membership already said so: raft's change is the decision
		index = fut.Index()
	}
	if voter {
		d.cfg.Stats.VoterPromotions.Add(1)
		d.log.Info("promoted to voter", "peer", id, "reason", reason, "index", index, "config_index", fut.Index())
	} else {
		// A decision, not a fault: failure detection reports an
		// unreachable voter itself.
		d.cfg.Stats.VoterDemotions.Add(1)
		d.log.Info("demoted to non-voter", "peer", id, "reason", reason, "index", index, "config_index", fut.Index())
	}
	return doneFuture{index: fut.Index()}
}

// reason explains a decision from autopilot's view of the server.
func (d *pilotDelegate) reason(id string, voter bool) string {
	st := d.pilot.ap.GetState()
	if st == nil {
		return ""
	}
	srv, ok := st.Servers[raft.ServerID(id)]
	if !ok {
		return ""
	}
	since := time.Since(srv.Health.StableSince).Round(time.Millisecond)
	if voter {
		return fmt.Sprintf("healthy for %v: leader contact %v ago, log at %d", since, srv.Stats.LastContact.Round(time.Millisecond), srv.Stats.LastIndex)
	}
	why := "its Raft heartbeats fail"
	switch {
	case srv.Server.NodeStatus == autopilot.NodeAlive && srv.Stats.LastIndex == 0:
		why = "it reports no Raft progress"
	case srv.Server.NodeStatus == autopilot.NodeAlive:
		why = fmt.Sprintf("leader contact %v ago, log at %d", srv.Stats.LastContact.Round(time.Millisecond), srv.Stats.LastIndex)
	}
	return fmt.Sprintf("unhealthy for %v: %s", since, why)
}

// doneFuture is an already resolved raft future.
type doneFuture struct {
	err   error
	index uint64
}

func (f doneFuture) Error() error  { return f.err }
func (f doneFuture) Index() uint64 { return f.index }
