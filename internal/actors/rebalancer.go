package actors

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/internal/handoff"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// rebalancerActor runs only while this node leads. It collects membership
// changes, waits RebalanceDelay after the first one (so several joins close
// together give one rebalance), computes placement on the current view and
// proposes the table through the state actor.
type rebalancerActor struct {
	cfg    *Config
	log    *slog.Logger
	system *actor.ActorSystem
	state  *actor.PID
	active bool

	pending   []trigger
	startedAt int64
	timer     *time.Timer
	gen       uint64
	inFlight  bool
	waiters   []*actor.PID // manual requests waiting for the commit
	inflightW []*actor.PID
	inflightT []trigger

	// step is set when a committed change may let the hand-off progress.
	step     bool
	tick     *time.Timer
	tickGen  uint64
	reserved map[string]*reservation
	// cooldown holds moves HandoffTimeout cancelled, until they may be
	// tried again.
	cooldown map[handoff.Ref]int64
}

// reservation keeps the slots of a member that failure detection removed
// for it during ReplicaDelay: nobody copies its data meanwhile, and if it
// comes back it takes them again.
type reservation struct {
	until int64
	parts map[int]bool
}

// stepTick asks the rebalancer to take the next hand-off step (timeouts,
// reservations that expired).
type stepTick struct {
	gen  uint64
	plan bool
}

type trigger struct {
	kind string
	node string
}

func newRebalancerActor(cfg *Config) actor.Actor {
	return &rebalancerActor{cfg: cfg, log: cfg.Logger.With("actor", "rebalancer")}
}

func (r *rebalancerActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		r.state = sibling(ctx.Parent(), "state")
		r.system = ctx.ActorSystem()
	case *actor.Stopping, *actor.Restarting:
		r.stopTimer()
		r.stopTick()
	case *LeaderActive:
		r.active = true
		r.reserved, r.cooldown = reservationsOf(r.cfg.FSM.View(), r.cfg.Handoff.ReplicaDelay, r.cfg.now()), map[handoff.Ref]int64{}
		// Reconcile: a previous leader may have died between a membership
		// change and its table.
		r.add(ctx, trigger{kind: raftfsm.TriggerLeaderChange, node: r.cfg.NodeID}, 0)
	case *LeaderInactive:
		r.active = false
		r.pending = nil
		r.step = false
		r.stopTimer()
		r.stopTick()
		r.failWaiters(r.waiters, CodeNotLeader, "leadership lost")
		r.waiters = nil
	case *raftfsm.Applied:
		r.applied(ctx, msg)
	case *messages.RebalanceRequest:
		if !r.active {
			ctx.Respond(&messages.ProposeResult{Code: CodeNotLeader, Error: "not the leader"})
			return
		}
		if ctx.Sender() != nil {
			r.waiters = append(r.waiters, ctx.Sender())
		}
		t := msg.GetTrigger()
		if t == "" {
			t = raftfsm.TriggerManual
		}
		r.add(ctx, trigger{kind: t, node: msg.GetTriggerNodeId()}, 0)
	case *rebalanceTick:
		if msg.gen == r.gen {
			r.run(ctx)
		}
	case *stepTick:
		if msg.gen == r.tickGen && r.active {
			r.tick = nil
			if msg.plan {
				r.add(ctx, trigger{kind: raftfsm.TriggerNodeLeave, node: ""}, 0)
			} else {
				r.step = true
				r.kick(ctx)
			}
		}
	case *messages.ProposeResult:
		r.proposed(ctx, msg)
	}
}

func (r *rebalancerActor) applied(ctx actor.Context, a *raftfsm.Applied) {
	if !r.active || a.Err != nil {
		return
	}
	c := &a.Change
	if l := c.Left; l != nil && c.LeaveReason == raftfsm.LeaveHealthFailure {
		r.reserve(l.ID, append(slices.Clone(c.LeftPrimary), c.LeftReplica...), a.Time.UnixNano())
	}
	if a.Next.TableVersion() != a.Prev.TableVersion() || len(c.Readied) > 0 || c.StatusChanged != nil {
		// The hand-off may progress: a copy acknowledged, a table step
		// committed, a member became able to lead.
		r.step = true
		defer r.kick(ctx)
	}
	switch {
	case a.Restored:
		r.add(ctx, trigger{kind: raftfsm.TriggerLeaderChange, node: r.cfg.NodeID}, r.cfg.RebalanceDelay)
	case c.Joined != nil:
		r.add(ctx, trigger{kind: raftfsm.TriggerNodeJoin, node: c.Joined.ID}, r.cfg.RebalanceDelay)
	case c.Rejoined != nil:
		r.add(ctx, trigger{kind: raftfsm.TriggerNodeRejoin, node: c.Rejoined.ID}, r.cfg.RebalanceDelay)
	case c.Left != nil:
		r.add(ctx, trigger{kind: raftfsm.TriggerNodeLeave, node: c.Left.ID}, r.cfg.RebalanceDelay)
	case c.DrainSet != nil:
		// An operator's decision: plan at once.
		kind := raftfsm.TriggerNodeUndrain
		if c.DrainSet.Drain {
			kind = raftfsm.TriggerNodeDrain
		}
		r.log.Info("operator drain changed; planning", "peer", c.DrainSet.Node, "drain", c.DrainSet.Drain, "index", a.Index)
		r.add(ctx, trigger{kind: kind, node: c.DrainSet.Node}, 0)
	case c.PauseSet != nil:
		// Paused: a plan freezes the hand-offs in progress (the owners
		// become the target). Resumed: one plan from the current state.
		kind := raftfsm.TriggerResume
		if *c.PauseSet {
			kind = raftfsm.TriggerPause
		}
		r.log.Info("maintenance mode changed", "paused", *c.PauseSet, "index", a.Index)
		r.add(ctx, trigger{kind: kind, node: r.cfg.NodeID}, 0)
	}
	// c.Drained triggers nothing: the stopping node leads nothing now, and
	// a plan would only move primaries it may not take.
}

// kick runs a hand-off step now unless a proposal or a plan is on its way.
func (r *rebalancerActor) kick(ctx actor.Context) {
	if !r.active || r.inFlight || !r.step {
		return
	}
	if len(r.pending) > 0 && r.timer != nil {
		return // the coming plan takes the step
	}
	r.stepNow(ctx)
}

// add records a trigger and makes sure a run is scheduled within delay. The
// first trigger of a batch fixes the deadline: later ones join it instead of
// pushing it back, so a stream of joins cannot postpone rebalancing forever.
func (r *rebalancerActor) add(ctx actor.Context, t trigger, delay time.Duration) {
	if len(r.pending) == 0 {
		r.startedAt = r.cfg.now()
	}
	r.pending = append(r.pending, t)
	if r.inFlight {
		return // proposed() schedules the next run
	}
	if r.timer != nil && delay > 0 {
		return
	}
	r.schedule(ctx, delay)
}

func (r *rebalancerActor) schedule(ctx actor.Context, delay time.Duration) {
	r.stopTimer()
	r.gen++
	gen, self, system := r.gen, ctx.Self(), ctx.ActorSystem()
	if delay <= 0 {
		ctx.Send(self, &rebalanceTick{gen: gen})
		return
	}
	r.timer = time.AfterFunc(delay, func() { system.Root.Send(self, &rebalanceTick{gen: gen}) })
}

func (r *rebalancerActor) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.gen++
}

// summarize picks the trigger reported for a batch: a rejoin first (its node
// must reload), then joins, leaves, manual requests, reconciliation.
func summarize(pending []trigger) (trigger, []string) {
	rank := map[string]int{raftfsm.TriggerNodeRejoin: 0, raftfsm.TriggerNodeJoin: 1, raftfsm.TriggerNodeLeave: 2,
		raftfsm.TriggerNodeDrain: 3, raftfsm.TriggerNodeUndrain: 3, raftfsm.TriggerResume: 4, raftfsm.TriggerPause: 4,
		raftfsm.TriggerManual: 5, raftfsm.TriggerLeaderChange: 6}
	best := pending[0]
	var reload []string
	for _, t := range pending {
		if rank[t.kind] < rank[best.kind] {
			best = t
		}
		if t.kind == raftfsm.TriggerNodeRejoin && !slices.Contains(reload, t.node) {
			reload = append(reload, t.node)
		}
	}
	slices.Sort(reload)
	return best, reload
}

func (r *rebalancerActor) run(ctx actor.Context) {
	r.timer = nil
	if !r.active || r.inFlight || len(r.pending) == 0 {
		return
	}
	v := r.cfg.FSM.View()
	cfg := v.Config()
	if cfg == nil || len(v.Members()) == 0 {
		r.pending = nil
		r.replyWaiters(&messages.ProposeResult{Code: "not_bootstrapped", Error: "cluster configuration not committed yet"})
		return
	}
	best, reload := summarize(r.pending)
	if !v.HasTable() {
		// The first table: whatever woke us, it is the bootstrap node's join.
		best = trigger{kind: raftfsm.TriggerNodeJoin, node: v.Members()[0].ID}
	}
	reload = slices.DeleteFunc(reload, func(id string) bool { _, ok := v.Member(id); return !ok })
	now := r.cfg.now()
	r.expireReservations(now)
	pl := planFrom(v, r.cfg.Handoff, r.reserved, now, reload, r.skip(now))
	explicit := slices.ContainsFunc(r.pending, func(t trigger) bool { return t.kind == raftfsm.TriggerManual })
	if v.HasTable() && len(reload) == 0 && !pl.changed {
		if !explicit {
			r.log.Debug("table already balanced", "trigger", best.kind)
			r.pending = nil
			r.replyWaiters(&messages.ProposeResult{Index: v.TableVersion()})
			r.scheduleTick(ctx, v, now)
			return
		}
		// Only the manual request makes this rebalance happen: report it as
		// such, not as a pending trigger that turned out to change nothing.
		for _, t := range r.pending {
			if t.kind == raftfsm.TriggerManual {
				best = t
				break
			}
		}
	}
	info := &messages.RebalanceInfo{
		Trigger: best.kind, TriggerNodeId: best.node, StartedAtUnixNano: r.startedAt, Reload: reload,
		Plan: true, MovesPlanned: uint32(pl.moves),
	}
	r.log.Debug("planning partition hand-off", "trigger", best.kind, "trigger_node", best.node,
		"moves", pl.moves, "added", pl.step.Added, "waiting", pl.step.Waiting, "members", len(v.Members()), "reload", reload)
	r.inflightT, r.pending = r.pending, nil
	r.inflightW, r.waiters = r.waiters, nil
	r.step = false
	r.propose(ctx, v, pl.step, info, now)
}

// stepNow proposes the next step of the hand-off in progress, if there is one.
func (r *rebalancerActor) stepNow(ctx actor.Context) {
	r.step = false
	v := r.cfg.FSM.View()
	if v.Config() == nil || !v.HasTable() {
		return
	}
	now := r.cfg.now()
	r.expireReservations(now)
	cur, members := current(v)
	out := handoff.Step(handoff.Input{Parts: cur, Members: members, Limits: r.limits(v), Now: now, Skip: r.skip(now)})
	if !out.Changed {
		r.scheduleTick(ctx, v, now)
		return
	}
	r.propose(ctx, v, out, &messages.RebalanceInfo{}, now)
}

// propose sends one step (a plan's first, or a later one) to the state actor.
func (r *rebalancerActor) propose(ctx actor.Context, v *raftfsm.View, out handoff.Output, info *messages.RebalanceInfo, now int64) {
	for _, c := range out.Cancelled {
		r.cooldown[c] = now + int64(r.cfg.Handoff.HandoffTimeout)
		r.cfg.Stats.HandoffTimeouts.Add(1)
		r.log.Warn("hand-off timed out; copy cancelled (another owner is ready)", "partition", c.Partition, "peer", c.Node, "timeout", r.cfg.Handoff.HandoffTimeout)
	}
	for _, f := range out.Forced {
		r.cfg.Stats.HandoffsForced.Add(1)
		r.log.Warn("hand-off timed out; owner made ready without acknowledgement (no ready owner left)", "partition", f.Partition, "peer", f.Node, "timeout", r.cfg.Handoff.HandoffTimeout)
	}
	cmd := stepCommand(v, out, info, r.cfg.NodeID, now)
	r.inFlight = true
	ctx.Request(r.state, &messages.Propose{Command: cmd})
}

// limits are the throttles for view v.
func (r *rebalancerActor) limits(v *raftfsm.View) handoff.Limits {
	return limitsOf(r.cfg.Handoff, v.PartitionCount())
}

func limitsOf(h HandoffConfig, partitions int) handoff.Limits {
	return handoff.Limits{MaxMovesPerNode: h.MaxMovesPerNode, HandoffTimeout: h.HandoffTimeout,
		MaxMovesInFlight: handoff.InFlightLimit(h.MaxMovesInFlight, h.MaxMovesInFlightFraction, partitions)}
}

func (r *rebalancerActor) skip(now int64) func(int, string) bool {
	return func(n int, id string) bool {
		until, ok := r.cooldown[handoff.Ref{Partition: n, Node: id}]
		return ok && now < until
	}
}

// reserve keeps the slots of a member removed by failure detection.
func (r *rebalancerActor) reserve(id string, parts []uint32, at int64) {
	if r.cfg.Handoff.ReplicaDelay <= 0 || r.reserved == nil {
		return
	}
	if at == 0 {
		at = r.cfg.now()
	}
	r.reserved[id] = newReservation(at+int64(r.cfg.Handoff.ReplicaDelay), parts)
}

func newReservation(until int64, parts []uint32) *reservation {
	res := &reservation{until: until, parts: make(map[int]bool, len(parts))}
	for _, n := range parts {
		res.parts[int(n)] = true
	}
	return res
}

// reservationsOf rebuilds, on a new leader (or for a dry run), the
// reservations of the members failure detection removed less than delay
// before now.
func reservationsOf(v *raftfsm.View, delay time.Duration, now int64) map[string]*reservation {
	out := map[string]*reservation{}
	if delay <= 0 {
		return out
	}
	for _, d := range v.Departures() {
		if d.Reason != raftfsm.LeaveHealthFailure {
			continue
		}
		if until := d.At.UnixNano() + int64(delay); now < until {
			out[d.Node.ID] = newReservation(until, append(slices.Clone(d.PartitionsPrimary), d.PartitionsReplica...))
		}
	}
	return out
}

func (r *rebalancerActor) expireReservations(now int64) {
	for id, res := range r.reserved {
		if now >= res.until {
			delete(r.reserved, id)
		}
	}
	for k, until := range r.cooldown {
		if now >= until {
			delete(r.cooldown, k)
		}
	}
}

// scheduleTick wakes the rebalancer when the next timeout or reservation
// ends: a stuck copy is then cancelled or forced, and a reserved member's
// slots are re-replicated.
func (r *rebalancerActor) scheduleTick(ctx actor.Context, v *raftfsm.View, now int64) {
	r.stopTick()
	next, plan := int64(0), false
	consider := func(at int64, p bool) {
		if at > 0 && (next == 0 || at < next) {
			next, plan = at, p
		}
	}
	if t := r.cfg.Handoff.HandoffTimeout; t > 0 {
		for n := range v.PartitionCount() {
			for _, since := range v.Assignment(n).GetSyncingSince() {
				if since > 0 {
					consider(since+int64(t), false)
				}
			}
		}
	}
	for _, res := range r.reserved {
		consider(res.until, true)
	}
	for _, until := range r.cooldown {
		consider(until, false)
	}
	if next == 0 {
		return
	}
	r.armTick(ctx, max(time.Duration(next-now), time.Millisecond), plan)
}

// armTick wakes the rebalancer after delay, replacing the tick armed
// before (a tick of an older arming is ignored by its generation).
func (r *rebalancerActor) armTick(ctx actor.Context, delay time.Duration, plan bool) {
	r.stopTick()
	gen, self, system := r.tickGen, ctx.Self(), ctx.ActorSystem()
	r.tick = time.AfterFunc(delay, func() { system.Root.Send(self, &stepTick{gen: gen, plan: plan}) })
}

func (r *rebalancerActor) stopTick() {
	if r.tick != nil {
		r.tick.Stop()
		r.tick = nil
	}
	r.tickGen++
}

func (r *rebalancerActor) proposed(ctx actor.Context, res *messages.ProposeResult) {
	r.inFlight = false
	err := ResultError(res)
	waiters, triggers := r.inflightW, r.inflightT
	r.inflightW, r.inflightT = nil, nil
	switch {
	case err == nil:
		for _, w := range waiters {
			ctx.Send(w, res)
		}
	case res.GetCode() == raftfsm.Code(raftfsm.ErrStaleTable) && r.active:
		// The table moved under us (a removal repaired it): recompute now.
		r.log.Debug("table changed while proposing; recomputing", "error", err)
		r.waiters = append(waiters, r.waiters...)
		r.pending = append(triggers, r.pending...)
		if len(r.pending) > 0 {
			r.schedule(ctx, 0)
			return
		}
		r.step = true // a hand-off step: take it again on the new table
	default:
		r.log.Log(context.Background(), failureLevel(err), "partition table proposal failed", "error", err)
		for _, w := range waiters {
			ctx.Send(w, res)
		}
		if r.active && len(triggers) == 0 {
			// A step failed (no quorum, leadership moving): try again
			// shortly rather than wait for the next change.
			r.armTick(ctx, max(r.cfg.RebalanceDelay, 50*time.Millisecond), false)
			return
		}
	}
	if r.active && len(r.pending) > 0 {
		r.schedule(ctx, 0)
		return
	}
	r.kick(ctx)
}

func (r *rebalancerActor) replyWaiters(res *messages.ProposeResult) {
	for _, w := range r.waiters {
		r.sendTo(w, res)
	}
	r.waiters = nil
}

func (r *rebalancerActor) failWaiters(ws []*actor.PID, code, msg string) {
	for _, w := range ws {
		r.sendTo(w, &messages.ProposeResult{Code: code, Error: msg})
	}
}

func (r *rebalancerActor) sendTo(pid *actor.PID, msg any) {
	if pid != nil && r.system != nil {
		r.system.Root.Send(pid, msg)
	}
}
