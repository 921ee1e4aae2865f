package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// HealthConfig configures failure detection (see clusterkit.HealthCheckConfig).
type HealthConfig struct {
	Enabled          bool
	Interval         time.Duration
	Timeout          time.Duration
	FailureThreshold int
	RemovalGrace     time.Duration
}

// healthActor runs only while this node leads. It keeps one child per other
// member, each probing its peer for liveness, and turns their reports into
// committed status changes: suspect after FailureThreshold misses, active
// again on an answer, removal ("health_check_failure") after RemovalGrace.
// It never acts on a majority of peers at once: when most peers look dead
// the problem is more likely here (an overloaded or cut-off leader) than
// there, and evicting healthy nodes would make things worse.
type healthActor struct {
	cfg      *Config
	log      *slog.Logger
	state    *actor.PID
	active   bool
	peers    map[string]*peerChild
	removing string // member whose removal is being committed
	held     bool   // refrained because most peers look down (logged once)
}

type peerChild struct {
	pid         *actor.PID
	addr        string
	incarnation uint64
	failing     bool // latest report was a miss
	suspect     bool
}

// raftFailAfter is how long Raft's heartbeats to a peer may fail before the
// peer is not alive for the cluster although it answers pings (a probe
// counts as a miss, autopilot sees it failed): a member that does not take
// the log.
func (c *Config) raftFailAfter() time.Duration {
	if c.Health.Interval > 0 {
		return c.Health.Interval
	}
	return time.Second
}

// peerReport is what a peer prober tells the health actor.
type peerReport struct {
	id          string
	incarnation uint64
	ok          bool // the probe was answered by this incarnation
	misses      int  // consecutive misses
	suspect     bool // misses reached the threshold
	dead        bool // suspect for longer than the removal grace
	latency     time.Duration
	lastOK      time.Time // when the peer last answered (zero: never, to this prober)
}

func newHealthActor(cfg *Config) actor.Actor {
	return &healthActor{cfg: cfg, log: cfg.Logger.With("actor", "health"), peers: map[string]*peerChild{}}
}

func (h *healthActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		h.state = sibling(ctx.Parent(), "state")
	case *LeaderActive:
		if h.cfg.Health.Enabled {
			h.active = true
			h.sync(ctx)
		}
	case *LeaderInactive:
		h.active = false
		h.stopAll(ctx)
	case *raftfsm.Applied:
		if h.active && (msg.Change.Joined != nil || msg.Change.Rejoined != nil || msg.Change.Left != nil || msg.Restored) {
			h.sync(ctx)
		}
	case *peerReport:
		h.report(ctx, msg)
	case *messages.ProposeResult:
		if err := ResultError(msg); err != nil {
			h.log.Log(context.Background(), failureLevel(err), "health status change not committed", "error", err)
		}
		h.removing = ""
	case *actor.Terminated:
		// A prober that stopped for good (its supervisor gave up) is
		// replaced on the next sync.
		for id, p := range h.peers {
			if p.pid.Equal(msg.Who) {
				delete(h.peers, id)
			}
		}
	}
}

// sync starts a prober for every other member and stops those of departed
// members (or of members that restarted: a new incarnation, maybe a new address).
func (h *healthActor) sync(ctx actor.Context) {
	v := h.cfg.FSM.View()
	want := map[string]raftfsm.Node{}
	for _, m := range v.Members() {
		if m.ID != h.cfg.NodeID {
			want[m.ID] = m
		}
	}
	for id, p := range h.peers {
		if m, ok := want[id]; !ok || m.Incarnation != p.incarnation || m.IP != p.addr {
			ctx.Stop(p.pid)
			delete(h.peers, id)
		}
	}
	for id, m := range want {
		if _, ok := h.peers[id]; ok {
			continue
		}
		nonce, _ := v.Nonce(id)
		probe := &peerProber{cfg: h.cfg, id: id, addr: m.IP, incarnation: m.Incarnation, nonce: nonce, log: h.log.With("peer", id)}
		pid, err := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return probe.fresh() },
			actor.WithMailbox(actor.Unbounded())), "peer-"+id+"-"+uitoa(m.Incarnation))
		if err != nil {
			h.log.Warn("cannot start a prober", "peer", id, "error", err)
			continue
		}
		ctx.Watch(pid)
		h.peers[id] = &peerChild{pid: pid, addr: m.IP, incarnation: m.Incarnation, suspect: m.Status == raftfsm.StatusSuspect}
	}
}

func (h *healthActor) stopAll(ctx actor.Context) {
	for id, p := range h.peers {
		ctx.Stop(p.pid)
		delete(h.peers, id)
	}
	h.removing, h.held = "", false
}

// mostlyDown reports whether a majority of the peers are failing right now.
// Members stopping by plan (their hand-over committed) are left out: a
// cluster stopped node by node is not this node's problem.
func (h *healthActor) mostlyDown() bool {
	v := h.cfg.FSM.View()
	peers, failing := 0, 0
	for id, p := range h.peers {
		if m, ok := v.Member(id); ok && m.Draining {
			continue
		}
		peers++
		if p.failing {
			failing++
		}
	}
	return peers >= 2 && 2*failing > peers
}

func (h *healthActor) report(ctx actor.Context, r *peerReport) {
	p, ok := h.peers[r.id]
	if !ok || p.incarnation != r.incarnation || !h.active {
		return // a late report from a prober already replaced
	}
	h.cfg.Stats.recordProbe(r.ok, r.latency)
	p.failing = !r.ok
	m, member := h.cfg.FSM.View().Member(r.id)
	if !member || m.Incarnation != r.incarnation {
		return
	}
	if r.ok {
		if m.Status == raftfsm.StatusSuspect {
			h.log.Info("peer answers again", "peer", r.id)
			h.setStatus(ctx, r.id, r.incarnation, messages.NodeStatus_NODE_STATUS_ACTIVE)
		}
		return
	}
	if h.mostlyDown() {
		if !h.held {
			h.held = true
			h.log.Warn("most peers fail their probes: not marking or removing anyone (this node may be the problem)")
		}
		return
	}
	h.held = false
	switch {
	case r.dead && h.removing == "":
		h.removing = r.id
		h.cfg.Stats.Removals.Add(1)
		// One warning per failure: a member already reported suspect, or
		// one stopping by plan, is removed at a lower level (the committed
		// removal is logged by the leader with its index: "member removed").
		lvl := slog.LevelWarn
		if m.Status == raftfsm.StatusSuspect {
			lvl = slog.LevelDebug
		} else if m.Draining {
			lvl = slog.LevelInfo
		}
		h.log.Log(context.Background(), lvl, "removing unreachable member", "peer", r.id, "misses", r.misses, "stopped_by_plan", m.Draining)
		h.propose(ctx, &messages.Command{Op: &messages.Command_RemoveNode{RemoveNode: &messages.RemoveNode{
			Id: r.id, Reason: raftfsm.LeaveHealthFailure, Incarnation: r.incarnation,
		}}})
	case r.suspect && m.Status != raftfsm.StatusSuspect:
		// A member stopping by plan (its hand-over committed) is expected
		// to go quiet: not a problem.
		lvl := slog.LevelWarn
		if m.Draining {
			lvl = slog.LevelInfo
		}
		h.log.Log(context.Background(), lvl, "member suspect", "peer", r.id, "misses", r.misses, "stopped_by_plan", m.Draining)
		var seen int64
		if !r.lastOK.IsZero() {
			seen = r.lastOK.UnixNano()
		}
		h.propose(ctx, &messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{
			Id: r.id, Status: messages.NodeStatus_NODE_STATUS_SUSPECT, Incarnation: r.incarnation, LastSeenUnixNano: seen,
		}}})
	}
}

func (h *healthActor) setStatus(ctx actor.Context, id string, inc uint64, st messages.NodeStatus) {
	h.propose(ctx, &messages.Command{Op: &messages.Command_SetNodeStatus{SetNodeStatus: &messages.SetNodeStatus{
		Id: id, Status: st, Incarnation: inc,
	}}})
}

func (h *healthActor) propose(ctx actor.Context, cmd *messages.Command) {
	cmd.TimeUnixNano = h.cfg.now()
	cmd.Origin = h.cfg.NodeID
	ctx.Request(h.state, &messages.Propose{Command: cmd})
}

func uitoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// peerProber probes one peer: a protobuf ping to its address every Interval,
// answered by the expected process (its nonce) within Timeout, while Raft's
// heartbeats to it succeed. It reports every outcome to the health actor,
// which decides; the prober only counts.
type peerProber struct {
	cfg         *Config
	id, addr    string
	incarnation uint64
	nonce       uint64
	log         *slog.Logger

	misses       int
	suspectSince time.Time
	lastOK       time.Time
	inFlight     bool
	timer        *time.Timer
	cancel       context.CancelFunc
	done         chan struct{}
}

// fresh returns a clean prober (a restart by the supervisor starts over).
func (p *peerProber) fresh() actor.Actor {
	return &peerProber{cfg: p.cfg, id: p.id, addr: p.addr, incarnation: p.incarnation, nonce: p.nonce, log: p.log}
}

type probeTick struct{}

type probeResult struct {
	ok      bool
	latency time.Duration
	err     error
}

func (p *peerProber) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		ctx.Send(ctx.Self(), &probeTick{})
	case *actor.Stopping, *actor.Restarting:
		if p.timer != nil {
			p.timer.Stop()
		}
		if p.cancel != nil {
			p.cancel()
			<-p.done // the probe goroutine ends promptly once cancelled
		}
	case *probeTick:
		p.probe(ctx)
	case *probeResult:
		p.result(ctx, msg)
	}
}

func (p *peerProber) probe(ctx actor.Context) {
	if p.inFlight || p.cfg.Peers == nil {
		return
	}
	p.inFlight = true
	pctx, cancel := context.WithTimeout(context.Background(), p.cfg.Health.Timeout)
	done := make(chan struct{})
	p.cancel, p.done = cancel, done
	system, self, peers, addr, id, nonce := ctx.ActorSystem(), ctx.Self(), p.cfg.Peers, p.addr, p.id, p.nonce
	tracker, failAfter := p.cfg.Tracker, p.cfg.raftFailAfter()
	go func() {
		defer close(done)
		defer cancel()
		start := time.Now()
		res := &probeResult{}
		// One immediate retry: a single refused or reset connection (a
		// flaky link) is not a miss; a node that is down fails both.
		for attempt := 0; attempt < 2 && pctx.Err() == nil; attempt++ {
			pong, err := peers.Ping(pctx, addr, &messages.PingRequest{})
			if err == nil && pong.GetNodeId() == id && pong.GetNonce() == nonce {
				res.ok = true
				break
			}
			res.err = err
			if err == nil {
				// Another process answers there: this life is gone (a
				// restarted node registers its new life itself).
				res.err = errors.New("another process answers at this address")
				break
			}
		}
		res.latency = time.Since(start)
		if res.ok {
			if d := tracker.FailingFor(id, time.Now()); d > failAfter {
				res.ok, res.err = false, fmt.Errorf("answers pings, but Raft's heartbeats to it have failed for %v", d.Round(time.Millisecond))
			} else {
				tracker.probeOK(id, time.Now())
			}
		}
		if errors.Is(pctx.Err(), context.Canceled) {
			return // the prober is stopping: nobody to tell
		}
		system.Root.Send(self, res)
	}()
}

func (p *peerProber) result(ctx actor.Context, r *probeResult) {
	p.inFlight, p.cancel, p.done = false, nil, nil
	rep := &peerReport{id: p.id, incarnation: p.incarnation, ok: r.ok, latency: r.latency}
	if r.ok {
		p.misses, p.suspectSince, p.lastOK = 0, time.Time{}, time.Now()
	} else {
		rep.lastOK = p.lastOK
		if t, ok := p.cfg.Tracker.LastSeen(p.id); ok && t.After(rep.lastOK) {
			rep.lastOK = t
		}
		p.misses++
		if p.misses >= p.cfg.Health.FailureThreshold && p.suspectSince.IsZero() {
			p.suspectSince = time.Now()
		}
		rep.misses = p.misses
		rep.suspect = !p.suspectSince.IsZero()
		rep.dead = rep.suspect && time.Since(p.suspectSince) >= p.cfg.Health.RemovalGrace
		p.log.Debug("probe missed", "misses", p.misses, "error", r.err)
	}
	ctx.Send(ctx.Parent(), rep)
	// Probes start every Interval, however long the last one took: a peer
	// whose host vanished (no reset, as when a container's IP disappears)
	// times out every probe, and waiting a whole Interval after each timeout
	// stretched detection by Timeout per miss (4-4.8 s instead of 2.5 s).
	next := max(p.cfg.Health.Interval-r.latency, 0)
	system, self := ctx.ActorSystem(), ctx.Self()
	p.timer = time.AfterFunc(next, func() { system.Root.Send(self, &probeTick{}) })
}
