package actors

import (
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/internal/placement"
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
	case *LeaderActive:
		r.active = true
		// Reconcile: a previous leader may have died between a membership
		// change and its table.
		r.add(ctx, trigger{kind: raftfsm.TriggerLeaderChange, node: r.cfg.NodeID}, 0)
	case *LeaderInactive:
		r.active = false
		r.pending = nil
		r.stopTimer()
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
	case *messages.ProposeResult:
		r.proposed(ctx, msg)
	}
}

func (r *rebalancerActor) applied(ctx actor.Context, a *raftfsm.Applied) {
	if !r.active || a.Err != nil {
		return
	}
	c := &a.Change
	switch {
	case a.Restored:
		r.add(ctx, trigger{kind: raftfsm.TriggerLeaderChange, node: r.cfg.NodeID}, r.cfg.RebalanceDelay)
	case c.Joined != nil:
		r.add(ctx, trigger{kind: raftfsm.TriggerNodeJoin, node: c.Joined.ID}, r.cfg.RebalanceDelay)
	case c.Rejoined != nil:
		r.add(ctx, trigger{kind: raftfsm.TriggerNodeRejoin, node: c.Rejoined.ID}, r.cfg.RebalanceDelay)
	case c.Left != nil:
		r.add(ctx, trigger{kind: raftfsm.TriggerNodeLeave, node: c.Left.ID}, r.cfg.RebalanceDelay)
	}
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
	rank := map[string]int{raftfsm.TriggerNodeRejoin: 0, raftfsm.TriggerNodeJoin: 1, raftfsm.TriggerNodeLeave: 2, raftfsm.TriggerManual: 3, raftfsm.TriggerLeaderChange: 4}
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
	members := make([]string, len(v.Members()))
	for i, m := range v.Members() {
		members[i] = m.ID
	}
	var prev [][]string
	if v.HasTable() {
		prev = v.OwnerTable()
	}
	next := placement.Assign(prev, members, int(cfg.GetPartitionCount()), int(cfg.GetReplicationFactor()))
	explicit := slices.ContainsFunc(r.pending, func(t trigger) bool { return t.kind == raftfsm.TriggerManual })
	if v.HasTable() && len(reload) == 0 && tablesEqual(prev, next) {
		if !explicit {
			r.log.Debug("table already balanced", "trigger", best.kind)
			r.pending = nil
			r.replyWaiters(&messages.ProposeResult{Index: v.TableVersion()})
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
	parts := make([]*messages.PartitionAssignment, len(next))
	for n, owners := range next {
		parts[n] = &messages.PartitionAssignment{Owners: owners}
	}
	cmd := &messages.Command{
		TimeUnixNano: r.cfg.now(),
		Origin:       r.cfg.NodeID,
		Op: &messages.Command_SetPartitionTable{SetPartitionTable: &messages.SetPartitionTable{
			ExpectedVersion: v.TableVersion(),
			Partitions:      parts,
			Rebalance: &messages.RebalanceInfo{
				Trigger: best.kind, TriggerNodeId: best.node, StartedAtUnixNano: r.startedAt, Reload: reload,
			},
		}},
	}
	r.log.Debug("proposing partition table", "trigger", best.kind, "node", best.node,
		"moved", placement.Moved(prev, next), "members", len(members), "reload", reload)
	r.inflightT, r.pending = r.pending, nil
	r.inFlight = true
	r.inflightW, r.waiters = r.waiters, nil
	ctx.Request(r.state, &messages.Propose{Command: cmd})
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
		r.schedule(ctx, 0)
		return
	default:
		r.log.Warn("partition table proposal failed", "error", err)
		for _, w := range waiters {
			ctx.Send(w, res)
		}
	}
	if r.active && len(r.pending) > 0 {
		r.schedule(ctx, 0)
	}
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

func tablesEqual(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
