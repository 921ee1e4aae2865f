// Package raftmetrics bridges the metrics that hashicorp/raft reports through
// the process-wide github.com/hashicorp/go-metrics global into Prometheus.
//
// raft has no per-instance metrics hook: every node calls metrics.IncrCounter,
// metrics.SetGauge, metrics.MeasureSince, ... on the go-metrics global. Sink is
// a go-metrics MetricSink that stores the latest state in memory and is also a
// prometheus.Collector, so a node's prometheus.Registry can export it. Nothing
// runs in the background: values are recorded synchronously by the caller and
// turned into const metrics only when the registry gathers, which keeps
// goleak-based tests clean.
//
// Only keys whose first part is "raft" are recorded, so other libraries that
// share the go-metrics global never leak foreign names into our /metrics page.
//
// # Naming
//
// A raft key becomes "clusterkit_raft_" + its remaining parts in snake_case
// joined by "_" (["raft","commitTime"] -> clusterkit_raft_commit_time), and
// then, in base units:
//
//   - Counters (IncrCounter) get "_total".
//   - Samples (MeasureSince, AddSample) become histograms. Raft measures
//     durations in milliseconds (Install sets go-metrics' TimerGranularity to
//     milliseconds, and raft.leader.lastContact is added in milliseconds):
//     they are divided by 1000 and get "_seconds", with the buckets
//     DurationBuckets (0.1 ms to 10 s). The samples of raft v1.8.0 that are
//     not durations keep their bare name: raft.fsm.applyBatchNum (entries per
//     batch, CountBuckets) and raft.thread.main.saturation and
//     raft.thread.fsm.saturation (busy share in [0,1], RatioBuckets). A
//     sample key unknown to this package is taken for a duration.
//   - Gauges (SetGauge) keep the bare name, except the two raft v1.8.0
//     gauges that hold milliseconds: raft.leader.oldestLogAge and
//     raft.fsm.lastRestoreDuration are divided by 1000 and get "_seconds".
//   - raft.state.follower, raft.state.candidate and raft.state.leader (entries
//     into each state) are one counter, clusterkit_raft_state_transitions_total
//     with the label state="Follower", "Candidate" or "Leader" (the values of
//     the node's own clusterkit_raft_state gauge), so nothing is named like a
//     child of that gauge.
//   - Label names are snake_case too: raft's rpcType is exported as
//     rpc_type; peer_id stays peer_id.
//
// Every family's HELP text ends with the raft key(s) it comes from. Raft's
// deprecated per-peer keys (the peer ID as a key part, emitted unless
// raft.Config.NoLegacyTelemetry) are dropped: they duplicate the peer_id
// series and would create one family per peer.
//
// # Departed peers
//
// The series of the leader's replication (label peer_id) exist per peer.
// ForgetPeer deletes those of a peer that left the cluster, and for a while
// (until PeerJoined, or forgetTTL, at most maxForgotten peers) refuses to
// re-create them, because the leader's replication goroutine for that peer
// may report once more before raft's configuration drops it.
package raftmetrics

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	metrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// namePrefix is prepended to every exported metric name; it replaces the
// leading "raft" key part so all raft series share one namespace.
const namePrefix = "clusterkit_raft_"

// keyRoot is the first key part that raft uses for all of its metrics.
const keyRoot = "raft"

// PeerLabel is the (exported) label name that carries a Raft server ID: raft
// labels its replication metrics with it.
const PeerLabel = "peer_id"

const (
	// maxForgotten bounds the set of recently forgotten peer IDs; the oldest
	// entry makes room for a new one.
	maxForgotten = 1024
	// forgetTTL is how long a forgotten peer's series stay suppressed when
	// no PeerJoined lifts it: far longer than raft takes to stop replicating
	// to a removed server.
	forgetTTL = 10 * time.Minute
)

// Bucket layouts of the exported histograms.
var (
	// DurationBuckets (seconds) span consensus latencies: from local FSM
	// applies and log writes (sub-millisecond) to RPCs to a slow peer.
	DurationBuckets = []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// CountBuckets are for numbers of entries (raft.fsm.applyBatchNum).
	CountBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
	// RatioBuckets are for shares in [0,1] (the saturation samples).
	RatioBuckets = []float64{0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1}
)

// kind is both the go-metrics call (gauge, counter, sample) and the
// Prometheus type it is exported as (gauge, counter, histogram). It is part
// of the raw lookup key so that the same go-metrics key used as, say, a gauge
// and a counter ends up in two separate entries.
type kind byte

const (
	kindGauge kind = iota + 1
	kindCounter
	kindHistogram
)

// unit is what raft reports a value in.
type unit byte

const (
	unitNone   unit = iota // exported as is, no unit suffix
	unitMillis             // milliseconds: exported in seconds, "_seconds"
)

// spec describes how one raft key is exported.
type spec struct {
	kind    kind
	unit    unit
	buckets []float64 // histograms; DurationBuckets when nil
	name    string    // full name; empty: derived from the key (see metricName)
	label   [2]string // an extra constant label (name, value), when name is set
	help    string
}

// known lists every key raft v1.8.0 reports (grep metrics\. in its source),
// by the key joined with ".". Keys not listed are exported by the generic
// rules (see the package doc).
var known = map[string]spec{
	// Counters.
	"raft.apply":                           {kind: kindCounter, help: "Calls to Apply on this process's raft nodes"},
	"raft.barrier":                         {kind: kindCounter, help: "Calls to Barrier on this process's raft nodes"},
	"raft.verify_leader":                   {kind: kindCounter, help: "Calls to VerifyLeader on this process's raft nodes"},
	"raft.restore":                         {kind: kindCounter, help: "User snapshot restores (Restore) on this process's raft nodes"},
	"raft.state.follower":                  stateSpec("Follower"),
	"raft.state.candidate":                 stateSpec("Candidate"),
	"raft.state.leader":                    stateSpec("Leader"),
	"raft.transition.heartbeat_timeout":    {kind: kindCounter, help: "Followers that started an election because the leader's heartbeats stopped"},
	"raft.transition.leader_lease_timeout": {kind: kindCounter, help: "Leaders that stepped down after losing contact with a quorum for the lease timeout"},
	"raft.replication.appendEntries.logs":  {kind: kindCounter, help: "Log entries the leader replicated to a peer, by peer"},
	// Gauges.
	"raft.peers":                   {kind: kindGauge, help: "Servers in the latest raft configuration"},
	"raft.commitNumLogs":           {kind: kindGauge, help: "Entries in the last batch the leader committed and handed to the FSM"},
	"raft.leader.dispatchNumLogs":  {kind: kindGauge, help: "Entries in the last batch the leader wrote to its log"},
	"raft.leader.oldestLogAge":     {kind: kindGauge, unit: unitMillis, help: "Age of the oldest entry in the leader's log store, updated every 10 s"},
	"raft.fsm.lastRestoreDuration": {kind: kindGauge, unit: unitMillis, help: "Duration of the last FSM restore from a snapshot"},
	// Histograms: durations.
	"raft.commitTime":                    dur("Time from the leader dispatching an entry to its commit"),
	"raft.fsm.apply":                     dur("Time the FSM took to apply one entry"),
	"raft.fsm.applyBatch":                dur("Time the FSM took to apply a batch of entries"),
	"raft.fsm.store_config":              dur("Time to hand a configuration entry to the FSM's configuration store"),
	"raft.fsm.enqueue":                   dur("Time to hand committed entries to the FSM goroutine"),
	"raft.fsm.snapshot":                  dur("Time the FSM took to capture a snapshot"),
	"raft.fsm.restore":                   dur("Time the FSM took to restore a snapshot"),
	"raft.net.getRPCType":                dur("Time the network transport took to read an incoming RPC's type"),
	"raft.net.rpcDecode":                 dur("Time the network transport took to decode an incoming RPC, by RPC type"),
	"raft.net.rpcEnqueue":                dur("Time the network transport took to hand a decoded RPC to raft, by RPC type"),
	"raft.net.rpcRespond":                dur("Time from handing an incoming RPC to raft to its response, by RPC type"),
	"raft.leader.lastContact":            dur("Time since the leader last heard from a follower, sampled at each lease check"),
	"raft.leader.dispatchLog":            dur("Time the leader took to write a batch of entries to its log"),
	"raft.restoreUserSnapshot":           dur("Time to restore a user snapshot"),
	"raft.rpc.processHeartbeat":          dur("Time a follower took to process a heartbeat"),
	"raft.rpc.appendEntries":             dur("Time a follower took to process an AppendEntries RPC"),
	"raft.rpc.appendEntries.storeLogs":   dur("Time a follower took to write the entries of an AppendEntries RPC to its log"),
	"raft.rpc.appendEntries.processLogs": dur("Time a follower took to process the commit of an AppendEntries RPC"),
	"raft.rpc.requestVote":               dur("Time to process a RequestVote RPC"),
	"raft.rpc.requestPreVote":            dur("Time to process a RequestPreVote RPC"),
	"raft.rpc.installSnapshot":           dur("Time a follower took to install a snapshot from the leader"),
	"raft.candidate.electSelf":           dur("Time a candidate took to start an election (vote for itself, ask its peers)"),
	"raft.candidate.preElectSelf":        dur("Time a candidate took to start a pre-vote"),
	"raft.replication.appendEntries.rpc": dur("Round trip of the leader's AppendEntries RPCs to a peer, by peer"),
	"raft.replication.heartbeat":         dur("Round trip of the leader's heartbeats to a peer, by peer"),
	"raft.replication.installSnapshot":   dur("Time the leader took to install a snapshot on a peer, by peer"),
	"raft.snapshot.takeSnapshot":         dur("Time to take a snapshot (FSM capture and persist)"),
	"raft.snapshot.create":               dur("Time to create a snapshot sink in the snapshot store"),
	"raft.snapshot.persist":              dur("Time to persist a snapshot to the snapshot store"),
	"raft.compactLogs":                   dur("Time to compact the log after a snapshot"),
	"raft.removeOldLogs":                 dur("Time to remove old logs from the log store"),
	// Histograms: not durations.
	"raft.fsm.applyBatchNum":      {kind: kindHistogram, buckets: CountBuckets, help: "Entries per batch applied to the FSM"},
	"raft.thread.main.saturation": {kind: kindHistogram, buckets: RatioBuckets, help: "Share of time raft's main goroutine was busy, one sample per second of activity"},
	"raft.thread.fsm.saturation":  {kind: kindHistogram, buckets: RatioBuckets, help: "Share of time raft's FSM goroutine was busy, one sample per second of activity"},
}

func dur(help string) spec { return spec{kind: kindHistogram, unit: unitMillis, help: help} }

func stateSpec(state string) spec {
	return spec{kind: kindCounter, name: namePrefix + "state_transitions_total", label: [2]string{"state", state},
		help: "Times a raft node of this process entered a state, by state"}
}

// stateHelpKeys is the HELP suffix of the merged state counter.
const stateHelpKeys = "raft.state.follower, raft.state.candidate, raft.state.leader"

// family is one exported metric name. Prometheus requires every series of a
// name to share the type and label names, so the first series fixes both.
type family struct {
	kind       kind
	labelNames []string // sanitized, sorted
	desc       *prometheus.Desc
	div        float64   // every value is divided by it (1, or 1000 for ms)
	buckets    []float64 // histograms
}

// series is the accumulated state of one name+label-values combination. A
// series with a nil fam stands for a rejected raw key.
type series struct {
	fam         *family
	id          string   // key in Sink.byID
	labelValues []string // in fam.labelNames order
	peer        string   // value of the peer_id label, if any
	deleted     bool
	value       float64  // gauge: last value; counter: running total
	count       uint64   // histogram
	sum         float64  // histogram
	counts      []uint64 // histogram: per bucket, not cumulative (+Inf is count)
}

// rejected is the shared marker for raw keys without a peer that are dropped.
var rejected = &series{}

// Sink receives go-metrics updates and exposes them as Prometheus metrics.
// It implements metrics.MetricSink, metrics.PrecisionGaugeMetricSink and
// prometheus.Collector. The zero value is not usable; use New or Install.
type Sink struct {
	mu sync.Mutex
	// byRaw maps the cheap-to-build raw key (kind + key parts + labels, in
	// the caller's order) to its series, or to a series with a nil fam when
	// the raw key was rejected, so repeat updates skip the name work.
	byRaw map[string]*series
	// scratch is the buffer raw keys are built in (under mu): a hit costs no
	// allocation.
	scratch []byte
	// byID maps sanitized name + label values to the series, so raw keys that
	// sanitize to the same identity (commitTime vs commit_time, or labels in
	// another order) share one series instead of producing duplicates that
	// fail Gather.
	byID     map[string]*series
	families map[string]*family
	order    []*series // insertion order, for deterministic Collect output
	dropped  int
	// reserved names belong to other collectors of the same registry (the
	// node's own clusterkit_raft_* gauges): a raft key that maps to one is
	// dropped instead of failing Gather.
	reserved map[string]bool
	// forgotten holds the peers ForgetPeer removed, with when: their series
	// are not re-created until PeerJoined or forgetTTL. At most maxForgotten.
	forgotten map[string]time.Time
	now       func() time.Time
}

var (
	_ metrics.MetricSink               = (*Sink)(nil)
	_ metrics.PrecisionGaugeMetricSink = (*Sink)(nil)
	_ prometheus.Collector             = (*Sink)(nil)
)

// New returns an empty Sink that is not connected to the go-metrics global.
// It is meant for tests; production code uses Install.
func New() *Sink {
	return &Sink{
		byRaw:     make(map[string]*series),
		byID:      make(map[string]*series),
		families:  make(map[string]*family),
		forgotten: make(map[string]time.Time),
		now:       time.Now,
	}
}

var (
	installOnce sync.Once
	installed   *Sink
)

// Install creates a Sink and makes it the go-metrics global sink, once per
// process; later calls return the same Sink. It is process-wide because raft
// only reports through the go-metrics global, so every raft node in the
// process writes into the same series and there is nothing per node to
// separate. Register the returned Sink with each node's registry as needed
// (it is a prometheus.Collector).
//
// The config disables runtime metrics (they would start a goroutine) and all
// hostname/service/type decoration, so keys arrive exactly as raft emits them,
// and sets the timer granularity to milliseconds, the unit the conversion to
// seconds expects.
func Install() *Sink {
	installOnce.Do(func() {
		s := New()
		cfg := metrics.DefaultConfig("")
		cfg.HostName = "" // never used with the flags below; avoid surprises
		cfg.EnableRuntimeMetrics = false
		cfg.EnableHostname = false
		cfg.EnableHostnameLabel = false
		cfg.EnableServiceLabel = false
		cfg.EnableTypePrefix = false
		cfg.FilterDefault = true
		cfg.TimerGranularity = time.Millisecond
		if _, err := metrics.NewGlobal(cfg, s); err != nil {
			// go-metrics v0.7.0 never fails here; a failure would mean an
			// incompatible upgrade, which should be loud.
			panic(fmt.Sprintf("raftmetrics: installing go-metrics sink: %v", err))
		}
		installed = s
	})
	return installed
}

// Reserve marks metric names that other collectors emit; raft keys that map
// to them are dropped (and counted in Dropped).
func (s *Sink) Reserve(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reserved == nil {
		s.reserved = map[string]bool{}
	}
	for _, n := range names {
		s.reserved[n] = true
	}
}

// Dropped returns how many distinct series were rejected because their label
// names or type conflicted with an existing metric of the same name (or the
// labels were unusable). Exporting them would make the registry's Gather fail
// for the whole page.
func (s *Sink) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// ForgetPeer deletes every series labelled with the Raft server ID id (label
// peer_id): call it when the member left the cluster. Until PeerJoined(id),
// or for forgetTTL, a late report for id (the leader's replication goroutine
// may report once more before raft's configuration drops the server) does
// not re-create them. Several nodes of one process may all call it.
func (s *Sink) ForgetPeer(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireForgotten(now)
	if _, ok := s.forgotten[id]; !ok && len(s.forgotten) >= maxForgotten {
		oldest, at := "", time.Time{}
		for p, t := range s.forgotten {
			if oldest == "" || t.Before(at) {
				oldest, at = p, t
			}
		}
		delete(s.forgotten, oldest)
	}
	s.forgotten[id] = now

	for raw, sr := range s.byRaw {
		if sr.peer == id {
			sr.deleted = true
			delete(s.byRaw, raw)
		}
	}
	kept := s.order[:0]
	for _, sr := range s.order {
		if sr.peer == id {
			sr.deleted = true
			delete(s.byID, sr.id)
			continue
		}
		kept = append(kept, sr)
	}
	clear(s.order[len(kept):])
	s.order = kept
}

// PeerJoined lifts ForgetPeer's suppression: id is a member again, and its
// series may be created anew.
func (s *Sink) PeerJoined(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.forgotten, id)
}

// expireForgotten drops entries older than forgetTTL. Must hold s.mu.
func (s *Sink) expireForgotten(now time.Time) {
	for p, t := range s.forgotten {
		if now.Sub(t) > forgetTTL {
			delete(s.forgotten, p)
		}
	}
}

// isForgotten reports whether peer's series are suppressed. Must hold s.mu.
func (s *Sink) isForgotten(peer string) bool {
	t, ok := s.forgotten[peer]
	if !ok {
		return false
	}
	if s.now().Sub(t) > forgetTTL {
		delete(s.forgotten, peer)
		return false
	}
	return true
}

// SetGauge records the latest value of a gauge.
func (s *Sink) SetGauge(key []string, val float32) {
	s.update(kindGauge, key, nil, float64(val))
}

// SetGaugeWithLabels records the latest value of a labelled gauge.
func (s *Sink) SetGaugeWithLabels(key []string, val float32, labels []metrics.Label) {
	s.update(kindGauge, key, labels, float64(val))
}

// SetPrecisionGauge records the latest value of a gauge with float64 precision.
func (s *Sink) SetPrecisionGauge(key []string, val float64) {
	s.update(kindGauge, key, nil, val)
}

// SetPrecisionGaugeWithLabels records the latest value of a labelled gauge
// with float64 precision.
func (s *Sink) SetPrecisionGaugeWithLabels(key []string, val float64, labels []metrics.Label) {
	s.update(kindGauge, key, labels, val)
}

// EmitKey is ignored: it reports one-off events, which have no Prometheus
// equivalent, and raft does not use it.
func (s *Sink) EmitKey(key []string, val float32) {}

// IncrCounter adds val to a counter.
func (s *Sink) IncrCounter(key []string, val float32) {
	s.update(kindCounter, key, nil, float64(val))
}

// IncrCounterWithLabels adds val to a labelled counter.
func (s *Sink) IncrCounterWithLabels(key []string, val float32, labels []metrics.Label) {
	s.update(kindCounter, key, labels, float64(val))
}

// AddSample records one observation (a duration in milliseconds unless the
// key is one of the unitless samples, see the package doc).
func (s *Sink) AddSample(key []string, val float32) {
	s.update(kindHistogram, key, nil, float64(val))
}

// AddSampleWithLabels records one labelled observation.
func (s *Sink) AddSampleWithLabels(key []string, val float32, labels []metrics.Label) {
	s.update(kindHistogram, key, labels, float64(val))
}

// Describe sends nothing, which makes Sink an unchecked collector: the set
// of metrics is only known once raft has reported them.
func (s *Sink) Describe(chan<- *prometheus.Desc) {}

// Collect emits the current state as const metrics. Values are copied under
// the lock and the metrics are built and sent after releasing it, so a slow
// scrape never blocks raft's hot paths.
func (s *Sink) Collect(ch chan<- prometheus.Metric) {
	type snap struct {
		fam    *family
		labels []string
		value  float64
		count  uint64
		sum    float64
		counts []uint64
	}
	s.mu.Lock()
	snaps := make([]snap, len(s.order))
	for i, sr := range s.order {
		// labelValues is never mutated after creation, so sharing it is safe.
		snaps[i] = snap{sr.fam, sr.labelValues, sr.value, sr.count, sr.sum, slices.Clone(sr.counts)}
	}
	s.mu.Unlock()

	for _, sn := range snaps {
		var (
			m   prometheus.Metric
			err error
		)
		switch sn.fam.kind {
		case kindGauge:
			m, err = prometheus.NewConstMetric(sn.fam.desc, prometheus.GaugeValue, sn.value, sn.labels...)
		case kindCounter:
			m, err = prometheus.NewConstMetric(sn.fam.desc, prometheus.CounterValue, sn.value, sn.labels...)
		case kindHistogram:
			buckets := make(map[float64]uint64, len(sn.fam.buckets))
			var cum uint64
			for i, le := range sn.fam.buckets {
				cum += sn.counts[i]
				buckets[le] = cum
			}
			m, err = prometheus.NewConstHistogram(sn.fam.desc, sn.count, sn.sum, buckets, sn.labels...)
		}
		if err != nil {
			// update already rejects everything we know to be invalid; skip
			// rather than emit an invalid metric that fails the whole Gather.
			continue
		}
		ch <- m
	}
}

// update is the single write path, called on raft's hot paths (every append,
// heartbeat and RPC). A known series costs one raw key built in the scratch
// buffer and one map lookup under the mutex, and allocates nothing.
func (s *Sink) update(k kind, key []string, labels []metrics.Label, val float64) {
	if len(key) < 2 || key[0] != keyRoot {
		return // not raft's, or no name after the root
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scratch = appendRawKey(s.scratch[:0], k, key, labels)
	sr, ok := s.byRaw[string(s.scratch)]
	if !ok {
		var cache bool
		sr, cache = s.newSeries(k, key, labels)
		if !cache {
			return
		}
		s.byRaw[string(s.scratch)] = sr
	}
	fam := sr.fam
	if fam == nil {
		return // rejected
	}
	switch k {
	case kindGauge:
		sr.value = val / fam.div
	case kindCounter:
		sr.value += val / fam.div
	case kindHistogram:
		v := val / fam.div
		sr.count++
		sr.sum += v
		for i, le := range fam.buckets {
			if v <= le {
				sr.counts[i]++
				break
			}
		}
	}
}

// newSeries resolves a raw key seen for the first time to its series,
// creating the family if needed. It returns a series with a nil fam (and
// counts a drop) when the series cannot be exported consistently, and
// cache=false when the raw key must not be remembered at all (a forgotten
// peer, a legacy per-peer key): remembering those would grow without bound.
// Must be called with s.mu held.
func (s *Sink) newSeries(k kind, key []string, labels []metrics.Label) (sr *series, cache bool) {
	if legacyPeerKey(key) {
		return nil, false
	}
	sp := specFor(k, key)
	name := metricName(sp, key)

	type pair struct{ name, value string }
	pairs := make([]pair, 0, len(labels)+1)
	for _, l := range labels {
		pairs = append(pairs, pair{sanitizeLabelName(snakeCase(l.Name)), strings.ToValidUTF8(l.Value, "\uFFFD")})
	}
	if sp.label[0] != "" {
		pairs = append(pairs, pair{sp.label[0], sp.label[1]})
	}
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.name, b.name) })
	names := make([]string, len(pairs))
	values := make([]string, len(pairs))
	peer := ""
	for i, p := range pairs {
		names[i], values[i] = p.name, p.value
		if p.name == PeerLabel {
			peer = p.value
		}
	}
	if peer != "" && s.isForgotten(peer) {
		return nil, false
	}
	reject := func() (*series, bool) {
		s.dropped++
		if peer == "" {
			return rejected, true
		}
		return &series{peer: peer}, true // ForgetPeer finds it
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] == names[i] {
			return reject() // two labels sanitized to the same name
		}
	}
	if k == kindHistogram && slices.Contains(names, "le") {
		return reject() // reserved for buckets in histograms
	}

	div := 1.0
	if sp.unit == unitMillis {
		div = 1000
	}
	buckets := sp.buckets
	if k == kindHistogram && buckets == nil {
		buckets = DurationBuckets
	}
	fam, ok := s.families[name]
	if !ok {
		if s.collides(k, name) {
			return reject()
		}
		help := sp.help
		switch {
		case help == "":
			help = "hashicorp/raft metric " + strings.Join(key, ".")
		case sp.name == namePrefix+"state_transitions_total":
			help += " (" + stateHelpKeys + ")."
		default:
			help += " (" + strings.Join(key, ".") + ")."
		}
		if sp.unit == unitMillis {
			help += " Raft reports milliseconds; exported in seconds."
		}
		fam = &family{
			kind:       k,
			labelNames: names,
			desc:       prometheus.NewDesc(name, help, names, nil),
			div:        div,
			buckets:    buckets,
		}
		s.families[name] = fam
	} else if fam.kind != k || !slices.Equal(fam.labelNames, names) || fam.div != div || !slices.Equal(fam.buckets, buckets) {
		return reject()
	}

	id := name + "\xff" + strings.Join(values, "\xff")
	if sr, ok := s.byID[id]; ok {
		return sr, true // another raw spelling of the same series
	}
	sr = &series{fam: fam, id: id, labelValues: values, peer: peer}
	if k == kindHistogram {
		sr.counts = make([]uint64, len(buckets))
	}
	s.byID[id] = sr
	s.order = append(s.order, sr)
	return sr, true
}

// collides reports whether a new family name would clash with a name another
// collector owns (Reserve) or with the series of a histogram (_bucket, _sum,
// _count), which the registry rejects on Gather. Must be called with s.mu
// held.
func (s *Sink) collides(k kind, name string) bool {
	if s.reserved[name] {
		return true
	}
	suffixes := []string{"_bucket", "_count", "_sum"}
	if k == kindHistogram {
		for _, suffix := range suffixes {
			if _, ok := s.families[name+suffix]; ok || s.reserved[name+suffix] {
				return true
			}
		}
	}
	for _, suffix := range suffixes {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := s.families[base]; ok && f.kind == kindHistogram {
				return true
			}
		}
	}
	return false
}

// legacyPeerKey reports raft's deprecated per-peer keys, which carry the peer
// ID as the last key part (raft.replication.heartbeat.<peer>, ...).
func legacyPeerKey(key []string) bool {
	if len(key) < 4 || key[1] != "replication" {
		return false
	}
	switch key[2] {
	case "heartbeat", "installSnapshot":
		return len(key) == 4
	case "appendEntries":
		return len(key) == 5 && (key[3] == "rpc" || key[3] == "logs")
	}
	return false
}

// specFor returns the known spec of key, or the generic one for its kind.
func specFor(k kind, key []string) spec {
	if sp, ok := known[strings.Join(key, ".")]; ok && sp.kind == k {
		return sp
	}
	sp := spec{kind: k}
	if k == kindHistogram {
		sp.unit = unitMillis // MeasureSince is by far raft's most common sample
	}
	return sp
}

// appendRawKey builds the lookup key. The separators cannot appear in sane
// keys and a collision would only merge two series, never corrupt state.
func appendRawKey(b []byte, k kind, key []string, labels []metrics.Label) []byte {
	b = append(b, byte(k))
	for _, p := range key {
		b = append(b, 0x1f)
		b = append(b, p...)
	}
	b = append(b, 0x1e)
	for _, l := range labels {
		b = append(b, l.Name...)
		b = append(b, 0x1f)
		b = append(b, l.Value...)
		b = append(b, 0x1e)
	}
	return b
}

// metricName maps a raft key to its Prometheus name, see the package doc.
func metricName(sp spec, key []string) string {
	if sp.name != "" {
		return sp.name
	}
	var b strings.Builder
	b.WriteString(namePrefix)
	for i, p := range key[1:] {
		if i > 0 {
			b.WriteByte('_')
		}
		b.WriteString(snakeCase(p))
	}
	if sp.unit == unitMillis {
		b.WriteString("_seconds")
	}
	if sp.kind == kindCounter {
		b.WriteString("_total")
	}
	return b.String()
}

// snakeCase lower-cases a camelCase part, inserting "_" at word boundaries
// (commitTime -> commit_time, getRPCType -> get_rpc_type), and replaces every
// character outside [a-z0-9_:] with "_".
func snakeCase(s string) string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i, r := range rs {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				prev := rs[i-1]
				prevLowerOrDigit := (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9')
				nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z'
				prevUpper := prev >= 'A' && prev <= 'Z'
				if prevLowerOrDigit || (prevUpper && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(r + ('a' - 'A'))
			continue
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == ':' {
			b.WriteRune(r)
			continue
		}
		b.WriteByte('_')
	}
	return b.String()
}

// sanitizeLabelName maps a (snake_cased) go-metrics label name to a valid
// Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with the
// reserved "__".
func sanitizeLabelName(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 1)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), "_")
	if out == "" || (out[0] >= '0' && out[0] <= '9') {
		out = "l_" + out
	}
	return out
}
