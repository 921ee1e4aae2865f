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
// Naming: "clusterkit_raft_" + the remaining key parts in snake_case joined by
// "_" (["raft","commitTime"] -> clusterkit_raft_commit_time). Counters get
// "_total"; samples become summaries (only _sum and _count) with an "_ms"
// suffix because MeasureSince reports milliseconds.
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

// kind is the Prometheus type a series is exported as. It is part of the
// raw lookup key so that the same go-metrics key used as, say, a gauge and a
// counter ends up in two separate entries.
type kind byte

const (
	kindGauge kind = iota + 1
	kindCounter
	kindSummary
)

// unitlessSamples lists raft v1.8.0 keys that are reported with AddSample but
// are not durations, so they must not get the "_ms" suffix. A sink cannot tell
// MeasureSince from AddSample (both end up in AddSampleWithLabels).
var unitlessSamples = map[string]bool{
	"raft.fsm.applyBatchNum":      true, // number of logs per FSM batch
	"raft.thread.main.saturation": true, // ratio in [0,1]
	"raft.thread.fsm.saturation":  true, // ratio in [0,1]
}

// family is one exported metric name. Prometheus requires every series of a
// name to share the type and label names, so the first series fixes both.
type family struct {
	kind       kind
	labelNames []string // sanitized, sorted
	desc       *prometheus.Desc
}

// series is the accumulated state of one name+label-values combination.
type series struct {
	fam         *family
	labelValues []string // in fam.labelNames order
	value       float64  // gauge: last value; counter: running total
	count       uint64   // summary only
	sum         float64  // summary only
}

// Sink receives go-metrics updates and exposes them as Prometheus metrics.
// It implements metrics.MetricSink, metrics.PrecisionGaugeMetricSink and
// prometheus.Collector. The zero value is not usable; use New or Install.
type Sink struct {
	mu sync.Mutex
	// byRaw maps the cheap-to-build raw key (kind + key parts + sorted
	// labels) to its series; nil marks a series that was rejected so repeat
	// updates are dropped without redoing the name work.
	byRaw map[string]*series
	// byID maps sanitized name + label values to the series, so raw keys that
	// sanitize to the same identity (commitTime vs commit_time) share one
	// series instead of producing duplicates that fail Gather.
	byID     map[string]*series
	families map[string]*family
	order    []*series // insertion order, for deterministic Collect output
	dropped  int
	// reserved names belong to other collectors of the same registry (the
	// node's own clusterkit_raft_* gauges): a raft key that maps to one is
	// dropped instead of failing Gather.
	reserved map[string]bool
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

var (
	_ metrics.MetricSink               = (*Sink)(nil)
	_ metrics.PrecisionGaugeMetricSink = (*Sink)(nil)
	_ prometheus.Collector             = (*Sink)(nil)
)

// New returns an empty Sink that is not connected to the go-metrics global.
// It is meant for tests; production code uses Install.
func New() *Sink {
	return &Sink{
		byRaw:    make(map[string]*series),
		byID:     make(map[string]*series),
		families: make(map[string]*family),
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
// hostname/service/type decoration, so keys arrive exactly as raft emits them.
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

// Dropped returns how many distinct series were rejected because their label
// names or type conflicted with an existing metric of the same name (or the
// labels were unusable). Exporting them would make the registry's Gather fail
// for the whole page.
func (s *Sink) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
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

// AddSample records one observation (usually a duration in milliseconds).
func (s *Sink) AddSample(key []string, val float32) {
	s.update(kindSummary, key, nil, float64(val))
}

// AddSampleWithLabels records one labelled observation.
func (s *Sink) AddSampleWithLabels(key []string, val float32, labels []metrics.Label) {
	s.update(kindSummary, key, labels, float64(val))
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
	}
	s.mu.Lock()
	snaps := make([]snap, len(s.order))
	for i, sr := range s.order {
		// labelValues is never mutated after creation, so sharing it is safe.
		snaps[i] = snap{sr.fam, sr.labelValues, sr.value, sr.count, sr.sum}
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
		case kindSummary:
			m, err = prometheus.NewConstSummary(sn.fam.desc, sn.count, sn.sum, nil, sn.labels...)
		}
		if err != nil {
			// update already rejects everything we know to be invalid; skip
			// rather than emit an invalid metric that fails the whole Gather.
			continue
		}
		ch <- m
	}
}

// update is the single write path. The fast path is one string build and one
// map lookup under the mutex.
func (s *Sink) update(k kind, key []string, labels []metrics.Label, val float64) {
	if len(key) < 2 || key[0] != keyRoot {
		return // not raft's, or no name after the root
	}
	if len(labels) > 1 && !slices.IsSortedFunc(labels, compareLabels) {
		// Sort a copy: the caller's slice may be shared or reused.
		labels = slices.Clone(labels)
		slices.SortFunc(labels, compareLabels)
	}
	raw := rawKey(k, key, labels)

	s.mu.Lock()
	defer s.mu.Unlock()
	sr, ok := s.byRaw[raw]
	if !ok {
		sr = s.newSeries(k, key, labels)
		s.byRaw[raw] = sr
	}
	if sr == nil {
		return
	}
	switch k {
	case kindGauge:
		sr.value = val
	case kindCounter:
		sr.value += val
	case kindSummary:
		sr.count++
		sr.sum += val
	}
}

// newSeries resolves a raw key seen for the first time to its series, creating
// the family if needed. It returns nil (and counts a drop) when the series
// cannot be exported consistently. Must be called with s.mu held.
func (s *Sink) newSeries(k kind, key []string, labels []metrics.Label) *series {
	name := metricName(k, key)

	type pair struct{ name, value string }
	pairs := make([]pair, len(labels))
	for i, l := range labels {
		pairs[i] = pair{sanitizeLabelName(l.Name), strings.ToValidUTF8(l.Value, "\uFFFD")}
	}
	// Re-sort: sanitizing can change the order of the names.
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.name, b.name) })
	names := make([]string, len(pairs))
	values := make([]string, len(pairs))
	for i, p := range pairs {
		names[i], values[i] = p.name, p.value
		if i > 0 && names[i-1] == p.name {
			s.dropped++ // two labels sanitized to the same name
			return nil
		}
		if k == kindSummary && p.name == "quantile" {
			s.dropped++ // reserved for quantiles in summaries
			return nil
		}
	}

	fam, ok := s.families[name]
	if !ok {
		if s.collides(k, name) || s.reserved[name] || (k == kindSummary && (s.reserved[name+"_count"] || s.reserved[name+"_sum"])) {
			s.dropped++
			return nil
		}
		fam = &family{
			kind:       k,
			labelNames: names,
			desc: prometheus.NewDesc(name,
				"hashicorp/raft metric "+strings.Join(key, "."), names, nil),
		}
		s.families[name] = fam
	} else if fam.kind != k || !slices.Equal(fam.labelNames, names) {
		s.dropped++
		return nil
	}

	id := name + "\xff" + strings.Join(values, "\xff")
	if sr, ok := s.byID[id]; ok {
		return sr // another raw spelling of the same series
	}
	sr := &series{fam: fam, labelValues: values}
	s.byID[id] = sr
	s.order = append(s.order, sr)
	return sr
}

// collides reports whether a new family name would clash with the _count and
// _sum series of a summary, which the registry rejects on Gather. Must be
// called with s.mu held.
func (s *Sink) collides(k kind, name string) bool {
	if k == kindSummary {
		if _, ok := s.families[name+"_count"]; ok {
			return true
		}
		if _, ok := s.families[name+"_sum"]; ok {
			return true
		}
	}
	for _, suffix := range []string{"_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := s.families[base]; ok && f.kind == kindSummary {
				return true
			}
		}
	}
	return false
}

func compareLabels(a, b metrics.Label) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Value, b.Value)
}

// rawKey builds the lookup key. The separators cannot appear in sane keys and
// a collision would only merge two series, never corrupt state.
func rawKey(k kind, key []string, labels []metrics.Label) string {
	n := 2
	for _, p := range key {
		n += len(p) + 1
	}
	for _, l := range labels {
		n += len(l.Name) + len(l.Value) + 2
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte(byte(k))
	for _, p := range key {
		b.WriteByte(0x1f)
		b.WriteString(p)
	}
	b.WriteByte(0x1e)
	for _, l := range labels {
		b.WriteString(l.Name)
		b.WriteByte(0x1f)
		b.WriteString(l.Value)
		b.WriteByte(0x1e)
	}
	return b.String()
}

// metricName maps a raft key to its Prometheus name, see the package doc.
func metricName(k kind, key []string) string {
	var b strings.Builder
	b.WriteString(namePrefix)
	for i, p := range key[1:] {
		if i > 0 {
			b.WriteByte('_')
		}
		b.WriteString(snakeCase(p))
	}
	switch k {
	case kindCounter:
		b.WriteString("_total")
	case kindSummary:
		if !unitlessSamples[strings.Join(key, ".")] {
			b.WriteString("_ms")
		}
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

// sanitizeLabelName maps a go-metrics label name to a valid Prometheus label
// name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with the reserved "__".
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
