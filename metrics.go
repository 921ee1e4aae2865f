package clusterkit

import (
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/raftmetrics"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Metrics is the JSON metrics view (GET /metrics?format=json): the
// reference's fields plus consensus, event and queue counters.
type Metrics struct {
	NodeCount      int       `json:"node_count"`
	PartitionCount int       `json:"partition_count"`
	RequestCount   int64     `json:"request_count"`
	ErrorCount     int64     `json:"error_count"`
	LastSync       time.Time `json:"last_sync"`
	IsLeader       bool      `json:"is_leader"`
	RaftState      string    `json:"raft_state"`
	UptimeSeconds  int64     `json:"uptime_seconds"`

	PrimaryPartitions int               `json:"primary_partitions"`
	ReplicaPartitions int               `json:"replica_partitions"`
	TableVersion      uint64            `json:"table_version"`
	Term              uint64            `json:"term"`
	CommitIndex       uint64            `json:"commit_index"`
	AppliedIndex      uint64            `json:"applied_index"`
	LastLogIndex      uint64            `json:"last_log_index"`
	ClusterHealth     string            `json:"cluster_health"`
	EventsPublished   map[string]uint64 `json:"events_published"`
	EventsDelivered   map[string]uint64 `json:"events_delivered"`
	EventsSuppressed  uint64            `json:"events_suppressed"`
	CallbackPanics    uint64            `json:"callback_panics"`
	Rebalances        uint64            `json:"rebalances"`
	RebalanceMillis   uint64            `json:"rebalance_ms_total"` // start on the leader to commit here, summed
	Subscribers       int64             `json:"subscribers"`
	Proposals         uint64            `json:"proposals"`
	ProposalErrors    uint64            `json:"proposal_errors"`
	QueueLengths      map[string]int64  `json:"queue_lengths"`
	// Failure detection (counted on the leader that probed).
	SuspectNodes   int               `json:"suspect_nodes"`
	Probes         uint64            `json:"probes"`
	ProbeFailures  uint64            `json:"probe_failures"`
	Removals       uint64            `json:"health_removals"`
	ProbeLatencyMs map[string]uint64 `json:"probe_latency_ms_buckets"`
}

// GetMetrics returns a snapshot of the node's metrics.
func (ck *ClusterKit) GetMetrics() *Metrics {
	v := ck.fsm.View()
	rs := ck.raftStatus()
	s := ck.stats
	m := &Metrics{
		NodeCount:        len(v.Members()),
		PartitionCount:   v.PartitionCount(),
		RequestCount:     ck.httpRequests.Load(),
		ErrorCount:       ck.httpErrors.Load(),
		IsLeader:         rs.State == raft.Leader.String(),
		RaftState:        rs.State,
		UptimeSeconds:    int64(time.Since(ck.createdAt).Seconds()),
		TableVersion:     v.TableVersion(),
		Term:             rs.Term,
		CommitIndex:      rs.CommitIndex,
		AppliedIndex:     rs.AppliedIndex,
		LastLogIndex:     rs.LastLogIndex,
		ClusterHealth:    v.Health().Status,
		EventsPublished:  map[string]uint64{},
		EventsDelivered:  map[string]uint64{},
		EventsSuppressed: s.SuppressedTotal(),
		CallbackPanics:   s.CallbackPanics.Load(),
		Rebalances:       s.Rebalances.Load(),
		Subscribers:      s.Subscribers.Load(),
		Proposals:        s.Proposals.Load(),
		ProposalErrors:   s.ProposalErrors.Load(),
		QueueLengths: map[string]int64{
			"state": s.StateQueue.Len(), "partitions": s.PartitionsQueue.Len(), "hooks": s.HooksQueue.Len(),
		},
	}
	if v.Version() != 0 {
		if mem, ok := v.Member(ck.opts.NodeID); ok {
			m.LastSync = mem.LastSeen
		}
	}
	m.PrimaryPartitions, m.ReplicaPartitions = ownedByRole(v)
	for k, name := range actors.KindNames {
		m.EventsPublished[name] = s.Published(k)
		m.EventsDelivered[name] = s.Delivered(k)
	}
	m.SuspectNodes = v.Health().UnhealthyNodes
	m.Probes, m.ProbeFailures, m.Removals = s.Probes.Load(), s.ProbeFailures.Load(), s.Removals.Load()
	m.ProbeLatencyMs = map[string]uint64{}
	counts, _, _ := s.ProbeLatency.Snapshot()
	for i, c := range counts {
		le := "+Inf"
		if i < len(actors.Buckets) {
			le = strconv.FormatFloat(float64(actors.Buckets[i].Microseconds())/1000, 'f', -1, 64)
		}
		m.ProbeLatencyMs["le_"+le] = c
	}
	_, _, rebalanceSum := s.RebalanceDuration.Snapshot()
	m.RebalanceMillis = uint64(rebalanceSum.Milliseconds())
	return m
}

// Prometheus metrics. Each node has its own registry (several nodes may share
// a process), served at GET /metrics. Raft's own go-metrics are process-wide
// (raft reports them through the go-metrics global): see internal/raftmetrics.

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("clusterkit_"+name, help, labels, nil)
}

var (
	descMembers         = desc("members", "Cluster members by status (active, suspect).", "status")
	descPartitions      = desc("partitions", "Partitions in the table.")
	descOwned           = desc("partitions_owned", "Partitions this node holds, by role.", "role")
	descLeader          = desc("is_leader", "1 when this node is the Raft leader.")
	descRaftState       = desc("raft_state", "1 for this node's current Raft state.", "state")
	descTerm            = desc("raft_term", "Current Raft term.")
	descCommit          = desc("raft_commit_index", "Raft commit index.")
	descApplied         = desc("raft_applied_index", "Raft index applied to the state machine.")
	descLastIndex       = desc("raft_last_log_index", "Last Raft log index.")
	descVoters          = desc("raft_voters", "Voters in the Raft configuration.")
	descNonVoters       = desc("raft_non_voters", "Non-voters in the Raft configuration.")
	descHealth          = desc("cluster_health", "1 for the cluster's current health status.", "status")
	descTableVersion    = desc("table_version", "Raft index of the committed partition table.")
	descPublished       = desc("events_published_total", "Events derived from committed entries, by kind.", "kind")
	descDelivered       = desc("events_delivered_total", "Event deliveries to subscribers (one per subscriber), by kind.", "kind")
	descDropped         = desc("events_dropped_total", "Events not delivered, by kind and reason (replay: already delivered before a restart).", "kind", "reason")
	descStreamEvicted   = desc("event_log_evicted_total", "Events evicted from the log that GET /events resumes from.")
	descCallbackPanics  = desc("callback_panics_total", "Event callbacks that panicked.")
	descSubscribers     = desc("subscribers", "Event subscriptions (actors and callbacks).")
	descRebalances      = desc("rebalances_total", "Rebalances committed.")
	descRebalanceTime   = desc("rebalance_duration_seconds", "From the start of a rebalance on the leader to its commit on this node.")
	descOwnerStates     = desc("partition_owners", "Partition owners in the committed table, by hand-off state.", "state")
	descMovesInFlight   = desc("handoff_moves_in_flight", "Copies in progress in the cluster (syncing owners).")
	descPaused          = desc("rebalance_paused", "1 in maintenance mode (no new copy is planned), else 0.")
	descDrained         = desc("drained_nodes", "Members an operator drained.")
	descDrainLeft       = desc("drain_remaining_partitions", "Partition copies drained members still hold: 0 once every drain is done.")
	descHandoffTime     = desc("handoff_duration_seconds", "From the entry that added an owner to the one that made it ready (its acknowledged copy).")
	descHandoffTimeouts = desc("handoff_timeouts_total", "Copies HandoffTimeout ended, decided by this node as leader, by outcome.", "outcome")
	descProposals       = desc("proposals_total", "Commands proposed through this node.")
	descProposalErrors  = desc("proposal_errors_total", "Proposals that failed.")
	descQueue           = desc("mailbox_length", "Messages waiting in an actor's mailbox.", "actor")
	descProbes          = desc("health_probes_total", "Liveness probes sent (by the leader).")
	descProbeFailures   = desc("health_probe_failures_total", "Liveness probes that failed.")
	descRemovals        = desc("health_removals_total", "Nodes removed by failure detection.")
	descSuspects        = desc("health_suspect_nodes", "Members currently suspect.")
	descProbeLatency    = desc("health_probe_latency_seconds", "Latency of answered liveness probes.")
	descUptime          = desc("uptime_seconds", "Seconds since the node was created.")
	descNodeInfo        = desc("node_info", "Always 1: this node's identity (the cluster ID is empty until the node knows its cluster: it joined, or its data directory says).", "node_id", "cluster_id", "cluster_name", "zone")
	descSubBacklog      = desc("event_subscriber_backlog", "Events dispatched to a Go callback or Events iteration on this node and not finished (in its call or waiting).", "subscriber")
	descSubLag          = desc("event_subscriber_lag_seconds", "How long the oldest event a Go callback or Events iteration has not finished has waited since this node dispatched it (0 when idle).", "subscriber")
	descBuildInfo       = desc("build_info", "Always 1: the ClusterKit version, VCS revision and Go version of this binary.", "version", "revision", "goversion")
	descMembership      = desc("membership", "1 for this node's own membership state (joining, member, rejoining, removed, fenced, refused).", "state")
	descIncarnation     = desc("incarnation", "Incarnation of this node's current life (0 until admitted).")
	descVoterChanges    = desc("voter_changes_total", "Voter promotions and demotions this node decided as leader.", "change")
	descRejoins         = desc("self_rejoins_total", "New lives this node started after finding out it was removed.")
	descAuthTokens      = desc("auth_tokens", "Tokens this node accepts, by kind (admin, read); 0 admin tokens: authentication is off.", "kind")
	descAuthReloads     = desc("auth_token_reloads_total", "Loads of the token file after start, by result (ok: a new file applied; error: refused, the tokens in place kept).", "result")
	descEventStreams    = desc("event_streams", "GET /events streams open on this node.")
	descFailureTol      = desc("failure_tolerance", "How many more failures the cluster survives: voters with quorum kept (autopilot's figure on the leader), nodes with every partition keeping a live ready owner.", "kind")
	healthStatuses      = []string{raftfsm.HealthHealthy, raftfsm.HealthDegraded, raftfsm.HealthCritical}
	membershipStates    = []string{actors.MemberJoining, actors.MemberActive, membershipRejoining, actors.MemberRemoved, actors.MemberFenced, actors.MemberRefused}
	raftStates          = []string{"Follower", "Candidate", "Leader", "Shutdown"}
	descHTTPRequestsHlp = "HTTP requests served, by route pattern and status code."
)

// ownRaftMetrics are the clusterkit_raft_* names nodeCollector emits.
var ownRaftMetrics = []string{
	"clusterkit_raft_state", "clusterkit_raft_term", "clusterkit_raft_commit_index", "clusterkit_raft_applied_index",
	"clusterkit_raft_last_log_index", "clusterkit_raft_voters", "clusterkit_raft_non_voters",
}

// nodeCollector reads the node's state at scrape time: nothing is counted
// twice and nothing runs between scrapes.
type nodeCollector struct{ ck *ClusterKit }

// Describe sends nothing: an unchecked collector (its label sets are fixed
// by construction, and the registry still checks duplicates at Gather).
func (nodeCollector) Describe(chan<- *prometheus.Desc) {}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	ck := c.ck
	v := ck.fsm.View()
	rs := ck.raftStatus()
	s := ck.stats
	gauge := func(d *prometheus.Desc, val float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, val, labels...)
	}
	counter := func(d *prometheus.Desc, val uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(val), labels...)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}

	active, suspect := 0, 0
	for _, m := range v.Members() {
		if m.Status == raftfsm.StatusSuspect {
			suspect++
		} else {
			active++
		}
	}
	gauge(descMembers, float64(active), raftfsm.StatusActive)
	gauge(descMembers, float64(suspect), raftfsm.StatusSuspect)
	gauge(descPartitions, float64(v.PartitionCount()))
	primary, replica := ownedByRole(v)
	gauge(descOwned, float64(primary), "primary")
	gauge(descOwned, float64(replica), "replica")
	gauge(descLeader, flag(rs.State == raft.Leader.String()))
	for _, st := range raftStates {
		gauge(descRaftState, flag(rs.State == st), st)
	}
	gauge(descTerm, float64(rs.Term))
	gauge(descCommit, float64(rs.CommitIndex))
	gauge(descApplied, float64(rs.AppliedIndex))
	gauge(descLastIndex, float64(rs.LastLogIndex))
	gauge(descVoters, float64(len(rs.Voters)))
	gauge(descNonVoters, float64(len(rs.NonVoters)))
	status := v.Health().Status
	for _, h := range healthStatuses {
		gauge(descHealth, flag(status == h), h)
	}
	gauge(descTableVersion, float64(v.TableVersion()))
	admins, reads := ck.currentTokens().Counts()
	gauge(descAuthTokens, float64(admins), "admin")
	gauge(descAuthTokens, float64(reads), "read")
	counter(descAuthReloads, ck.authReloads.Load(), "ok")
	counter(descAuthReloads, ck.authReloadErrors.Load(), "error")
	if g := ck.servingGateway.Load(); g != nil {
		gauge(descEventStreams, float64(g.EventStreams()))
	}
	for k, name := range actors.KindNames {
		counter(descPublished, s.Published(k), name)
		counter(descDelivered, s.Delivered(k), name)
		counter(descDropped, s.Suppressed(k), name, "replay")
	}
	counter(descStreamEvicted, ck.eventLog.Load().Evicted())
	counter(descCallbackPanics, s.CallbackPanics.Load())
	gauge(descSubscribers, float64(s.Subscribers.Load()))
	counter(descRebalances, s.Rebalances.Load())
	ch <- histogram(descRebalanceTime, &s.RebalanceDuration)
	syncing, ready := 0, 0
	for _, p := range v.Partitions() {
		for _, o := range p.Owners {
			if o.State == raftfsm.OwnerSyncing {
				syncing++
			} else {
				ready++
			}
		}
	}
	gauge(descOwnerStates, float64(syncing), raftfsm.OwnerSyncing)
	gauge(descOwnerStates, float64(ready), raftfsm.OwnerReady)
	gauge(descMovesInFlight, float64(syncing))
	drained, held := 0, 0
	for _, m := range v.Members() {
		if m.Drained {
			drained++
			held += v.SlotsOf(m.ID)
		}
	}
	gauge(descPaused, flag(v.RebalancePaused()))
	gauge(descDrained, float64(drained))
	gauge(descDrainLeft, float64(held))
	ch <- histogram(descHandoffTime, &s.HandoffDuration)
	counter(descHandoffTimeouts, s.HandoffTimeouts.Load(), "cancelled")
	counter(descHandoffTimeouts, s.HandoffsForced.Load(), "forced")
	counter(descProposals, s.Proposals.Load())
	counter(descProposalErrors, s.ProposalErrors.Load())
	gauge(descQueue, float64(s.StateQueue.Len()), "state")
	gauge(descQueue, float64(s.PartitionsQueue.Len()), "partitions")
	gauge(descQueue, float64(s.HooksQueue.Len()), "hooks")
	counter(descProbes, s.Probes.Load())
	counter(descProbeFailures, s.ProbeFailures.Load())
	counter(descRemovals, s.Removals.Load())
	gauge(descSuspects, float64(v.Health().UnhealthyNodes))
	ch <- histogram(descProbeLatency, &s.ProbeLatency)
	gauge(descUptime, time.Since(ck.createdAt).Seconds())
	gauge(descNodeInfo, 1, ck.opts.NodeID, ck.ClusterID(), ck.opts.ClusterName, ck.opts.Zone)
	for _, l := range ck.callbacks.Lags() {
		gauge(descSubBacklog, float64(l.Backlog), l.Name)
		gauge(descSubLag, l.Lag.Seconds(), l.Name)
	}
	bi := Build()
	gauge(descBuildInfo, 1, bi.Version, bi.Revision, bi.GoVersion)
	own := ck.membership()
	for _, st := range membershipStates {
		gauge(descMembership, flag(own.State == st), st)
	}
	gauge(descIncarnation, float64(own.Incarnation))
	counter(descVoterChanges, s.VoterPromotions.Load(), "promote")
	counter(descVoterChanges, s.VoterDemotions.Load(), "demote")
	counter(descRejoins, s.Rejoins.Load())
	ft := ck.failureTolerance(v, rs)
	gauge(descFailureTol, float64(ft.Voters), "voters")
	gauge(descFailureTol, float64(ft.Nodes), "nodes")
}

// ownedByRole counts the partitions this node holds as primary and replica.
func ownedByRole(v *raftfsm.View) (primary, replica int) {
	for n := range v.PartitionCount() {
		switch v.Role(n) {
		case raftfsm.RolePrimary:
			primary++
		case raftfsm.RoleReplica:
			replica++
		}
	}
	return primary, replica
}

// histogram converts an actors.Histogram to a Prometheus one (cumulative
// buckets, seconds).
func histogram(d *prometheus.Desc, h *actors.Histogram) prometheus.Metric {
	counts, total, sum := h.Snapshot()
	buckets := make(map[float64]uint64, len(actors.Buckets))
	var cum uint64
	for i, b := range actors.Buckets {
		cum += counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, total, sum.Seconds(), buckets)
}

// raftPeerEvent keeps raft's per-peer series (label peer_id, a Raft server
// ID, which is the node ID) to the members: a NodeLeave deletes the departed
// node's series from the process-wide sink and keeps raft's last reports for
// it from re-creating them; a NodeJoin or NodeRejoin lets them exist again.
// It sees every event delivered on this node (actors.Config.Tap); several
// nodes of one process calling it for the same event is harmless.
func raftPeerEvent(e *messages.Event) {
	switch {
	case e.GetNodeLeave() != nil:
		raftmetrics.Install().ForgetPeer(e.GetNodeLeave().GetNode().GetId())
	case e.GetNodeJoin() != nil:
		raftmetrics.Install().PeerJoined(e.GetNodeJoin().GetNode().GetId())
	case e.GetNodeRejoin() != nil:
		raftmetrics.Install().PeerJoined(e.GetNodeRejoin().GetNode().GetId())
	}
}

// newRegistry builds the node's Prometheus registry: our metrics, Raft's,
// the HTTP request counter, and the Go runtime and process collectors.
func (ck *ClusterKit) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	ck.httpRequestsVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clusterkit_http_requests_total", Help: descHTTPRequestsHlp,
	}, []string{"route", "code"})
	raftSink := raftmetrics.Install()
	// Our per-node Raft gauges share the clusterkit_raft_ prefix with raft's
	// process-wide metrics: keep raft from ever emitting the same names.
	raftSink.Reserve(ownRaftMetrics...)
	reg.MustRegister(
		nodeCollector{ck},
		ck.httpRequestsVec,
		raftSink,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
