package raftmetrics

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// gather registers s in a fresh registry and returns the families by name,
// failing the test if Gather reports an error (which would break /metrics).
func gather(t *testing.T, s *Sink) (*prometheus.Registry, map[string]*dto.MetricFamily) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(s); err != nil {
		t.Fatalf("Register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return reg, out
}

func mustFamily(t *testing.T, mfs map[string]*dto.MetricFamily, name string, typ dto.MetricType) *dto.MetricFamily {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		names := make([]string, 0, len(mfs))
		for n := range mfs {
			names = append(names, n)
		}
		t.Fatalf("family %q missing; have %v", name, names)
	}
	if mf.GetType() != typ {
		t.Fatalf("family %q type = %v, want %v", name, mf.GetType(), typ)
	}
	return mf
}

// metricWith returns the metric of mf whose labels are exactly want.
func metricWith(t *testing.T, mf *dto.MetricFamily, want map[string]string) *dto.Metric {
	t.Helper()
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	t.Fatalf("family %q has no metric with labels %v", mf.GetName(), want)
	return nil
}

func histogramOf(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Histogram {
	t.Helper()
	return metricWith(t, mustFamily(t, mfs, name, dto.MetricType_HISTOGRAM), labels).GetHistogram()
}

// bucketCount returns the cumulative count of h's bucket le.
func bucketCount(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%v", le)
	return 0
}

func TestGatherValues(t *testing.T) {
	s := New()
	peerA := []metrics.Label{{Name: "peer_id", Value: "a"}}
	peerB := []metrics.Label{{Name: "peer_id", Value: "b"}}

	s.SetGauge([]string{"raft", "peers"}, 3)
	s.SetGauge([]string{"raft", "peers"}, 5) // last value wins
	s.SetPrecisionGauge([]string{"raft", "x", "precise"}, 1.25)
	s.SetGauge([]string{"raft", "fsm", "lastRestoreDuration"}, 1250)
	s.SetGauge([]string{"raft", "leader", "oldestLogAge"}, 90_000)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 2, peerA)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 3, peerA)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 7, peerB)
	s.IncrCounter([]string{"raft", "state", "leader"}, 1)
	s.IncrCounter([]string{"raft", "state", "follower"}, 1)
	s.IncrCounter([]string{"raft", "state", "follower"}, 1)
	s.AddSample([]string{"raft", "commitTime"}, 1.5)
	s.AddSample([]string{"raft", "commitTime"}, 2.5)
	s.AddSample([]string{"raft", "commitTime"}, 4)
	s.AddSampleWithLabels([]string{"raft", "net", "rpcDecode"}, 0.25, []metrics.Label{{Name: "rpcType", Value: "AppendEntries"}})
	s.AddSample([]string{"raft", "fsm", "applyBatchNum"}, 8)
	s.AddSample([]string{"raft", "thread", "main", "saturation"}, 0.5)
	// Ignored: foreign key, bare root, EmitKey.
	s.IncrCounter([]string{"memberlist", "udp", "sent"}, 1)
	s.SetGauge([]string{"raft"}, 1)
	s.EmitKey([]string{"raft", "event"}, 1)

	_, mfs := gather(t, s)

	if got := len(mfs); got != 10 {
		t.Errorf("got %d families, want 10: %v", got, mfs)
	}

	g := mustFamily(t, mfs, "clusterkit_raft_peers", dto.MetricType_GAUGE)
	if v := metricWith(t, g, nil).GetGauge().GetValue(); v != 5 {
		t.Errorf("peers = %v, want 5", v)
	}
	g = mustFamily(t, mfs, "clusterkit_raft_x_precise", dto.MetricType_GAUGE)
	if v := metricWith(t, g, nil).GetGauge().GetValue(); v != 1.25 {
		t.Errorf("x_precise = %v, want 1.25 (float64 precision)", v)
	}
	// Millisecond gauges are exported in seconds.
	g = mustFamily(t, mfs, "clusterkit_raft_fsm_last_restore_duration_seconds", dto.MetricType_GAUGE)
	if v := metricWith(t, g, nil).GetGauge().GetValue(); v != 1.25 {
		t.Errorf("last_restore_duration_seconds = %v, want 1.25", v)
	}
	g = mustFamily(t, mfs, "clusterkit_raft_leader_oldest_log_age_seconds", dto.MetricType_GAUGE)
	if v := metricWith(t, g, nil).GetGauge().GetValue(); v != 90 {
		t.Errorf("oldest_log_age_seconds = %v, want 90", v)
	}

	c := mustFamily(t, mfs, "clusterkit_raft_replication_append_entries_logs_total", dto.MetricType_COUNTER)
	if v := metricWith(t, c, map[string]string{"peer_id": "a"}).GetCounter().GetValue(); v != 5 {
		t.Errorf("logs{peer_id=a} = %v, want 5", v)
	}
	if v := metricWith(t, c, map[string]string{"peer_id": "b"}).GetCounter().GetValue(); v != 7 {
		t.Errorf("logs{peer_id=b} = %v, want 7", v)
	}
	// raft.state.* is one counter with a state label, named apart from the
	// node's own clusterkit_raft_state gauge.
	c = mustFamily(t, mfs, "clusterkit_raft_state_transitions_total", dto.MetricType_COUNTER)
	if v := metricWith(t, c, map[string]string{"state": "Leader"}).GetCounter().GetValue(); v != 1 {
		t.Errorf("state_transitions{Leader} = %v, want 1", v)
	}
	if v := metricWith(t, c, map[string]string{"state": "Follower"}).GetCounter().GetValue(); v != 2 {
		t.Errorf("state_transitions{Follower} = %v, want 2", v)
	}
	if !strings.Contains(c.GetHelp(), "raft.state.leader") {
		t.Errorf("state_transitions help %q does not name its raft keys", c.GetHelp())
	}

	// Durations: milliseconds in, seconds out, as histograms.
	h := histogramOf(t, mfs, "clusterkit_raft_commit_time_seconds", nil)
	if h.GetSampleCount() != 3 || h.GetSampleSum() != 0.008 {
		t.Errorf("commit_time count/sum = %d/%v, want 3/0.008", h.GetSampleCount(), h.GetSampleSum())
	}
	if got := len(h.GetBucket()); got != len(DurationBuckets) {
		t.Errorf("commit_time has %d buckets, want %d", got, len(DurationBuckets))
	}
	if n := bucketCount(t, h, 0.001); n != 0 {
		t.Errorf("commit_time le=0.001: %d, want 0", n)
	}
	if n := bucketCount(t, h, 0.0025); n != 2 { // upper bounds are inclusive
		t.Errorf("commit_time le=0.0025: %d, want 2", n)
	}
	if n := bucketCount(t, h, 0.005); n != 3 {
		t.Errorf("commit_time le=0.005: %d, want 3", n)
	}
	// rpcType becomes rpc_type.
	h = histogramOf(t, mfs, "clusterkit_raft_net_rpc_decode_seconds", map[string]string{"rpc_type": "AppendEntries"})
	if h.GetSampleCount() != 1 || bucketCount(t, h, 0.0005) != 1 {
		t.Errorf("rpc_decode = %v, want one sample in le=0.0005", h)
	}
	// Not durations: no unit, no conversion.
	h = histogramOf(t, mfs, "clusterkit_raft_fsm_apply_batch_num", nil)
	if h.GetSampleSum() != 8 || bucketCount(t, h, 8) != 1 || bucketCount(t, h, 4) != 0 {
		t.Errorf("apply_batch_num = %v, want one sample of 8", h)
	}
	h = histogramOf(t, mfs, "clusterkit_raft_thread_main_saturation", nil)
	if h.GetSampleSum() != 0.5 || bucketCount(t, h, 0.5) != 1 || bucketCount(t, h, 0.25) != 0 {
		t.Errorf("main_saturation = %v, want one sample of 0.5", h)
	}

	if d := s.Dropped(); d != 0 {
		t.Errorf("Dropped = %d, want 0", d)
	}
}

// Every key raft v1.8.0 reports, with the labels it uses, exports names
// that pass the Prometheus linter (promtool check metrics uses the same).
func TestKnownKeysPassLint(t *testing.T) {
	s := New()
	for k, sp := range known {
		key := strings.Split(k, ".")
		var labels []metrics.Label
		switch {
		case strings.HasPrefix(k, "raft.net.rpc"):
			labels = []metrics.Label{{Name: "rpcType", Value: "AppendEntries"}}
		case strings.HasPrefix(k, "raft.replication."):
			labels = []metrics.Label{{Name: "peer_id", Value: "node-2"}}
		}
		switch sp.kind {
		case kindGauge:
			s.SetGaugeWithLabels(key, 1, labels)
		case kindCounter:
			s.IncrCounterWithLabels(key, 1, labels)
		case kindHistogram:
			s.AddSampleWithLabels(key, 1, labels)
		}
	}
	reg, mfs := gather(t, s)
	if d := s.Dropped(); d != 0 {
		t.Fatalf("Dropped = %d, want 0", d)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	for name, mf := range mfs {
		if strings.Contains(name, "_ms") {
			t.Errorf("%s has a millisecond suffix", name)
		}
		if mf.GetHelp() == "" || strings.HasPrefix(mf.GetHelp(), "hashicorp/raft metric") {
			t.Errorf("%s has only the generic help %q", name, mf.GetHelp())
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != strings.ToLower(l.GetName()) {
					t.Errorf("%s has the label %q, not snake_case", name, l.GetName())
				}
			}
		}
	}
	if want := len(known) - 2; len(mfs) != want { // the three state keys are one family
		t.Errorf("%d families, want %d", len(mfs), want)
	}
}

// metricsCallRE finds raft's go-metrics calls with a literal key.
var metricsCallRE = regexp.MustCompile(`metrics\.(IncrCounter|IncrCounterWithLabels|SetGauge|SetGaugeWithLabels|AddSample|AddSampleWithLabels|MeasureSince|MeasureSinceWithLabels)\(\[\]string\{([^}]*)\}`)

// The known table covers every key of the raft version in go.mod, with the
// kind raft reports it as: a raft upgrade that adds a key fails here, so
// its unit gets checked instead of guessed.
func TestKnownCoversRaft(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/hashicorp/raft").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Skipf("raft's source not found in %q: %v", dir, err)
	}
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricsCallRE.FindAllStringSubmatch(string(src), -1) {
			var parts []string
			variable := false
			for _, p := range strings.Split(m[2], ",") {
				p = strings.TrimSpace(p)
				if !strings.HasPrefix(p, `"`) {
					variable = true // the peer ID: a legacy per-peer key
					p = "PEER"
				}
				parts = append(parts, strings.Trim(p, `"`))
			}
			if variable {
				if !legacyPeerKey(parts) {
					t.Errorf("%s: a key with a variable part that is not a legacy per-peer key: %s", filepath.Base(f), m[0])
				}
				continue
			}
			seen++
			k := strings.Join(parts, ".")
			sp, ok := known[k]
			if !ok {
				t.Errorf("%s: raft reports %s (%s), which the known table lacks", filepath.Base(f), k, m[1])
				continue
			}
			want := map[string]kind{"IncrCounter": kindCounter, "SetGauge": kindGauge, "AddSample": kindHistogram, "MeasureSince": kindHistogram}[strings.TrimSuffix(m[1], "WithLabels")]
			if sp.kind != want {
				t.Errorf("%s is reported with %s but listed as kind %d", k, m[1], sp.kind)
			}
		}
	}
	if seen < 40 {
		t.Errorf("found only %d literal keys in %s: did the source layout change?", seen, dir)
	}
}

func TestLegacyPeerKeysDropped(t *testing.T) {
	s := New()
	s.AddSample([]string{"raft", "replication", "heartbeat", "node-2"}, 1)
	s.AddSample([]string{"raft", "replication", "installSnapshot", "node-2"}, 1)
	s.AddSample([]string{"raft", "replication", "appendEntries", "rpc", "node-2"}, 1)
	s.IncrCounter([]string{"raft", "replication", "appendEntries", "logs", "node-2"}, 1)
	s.AddSampleWithLabels([]string{"raft", "replication", "heartbeat"}, 1, []metrics.Label{{Name: "peer_id", Value: "node-2"}})
	_, mfs := gather(t, s)
	if len(mfs) != 1 {
		t.Errorf("got %d families, want only the labelled heartbeat: %v", len(mfs), mfs)
	}
	histogramOf(t, mfs, "clusterkit_raft_replication_heartbeat_seconds", map[string]string{"peer_id": "node-2"})
	if len(s.byRaw) != 1 {
		t.Errorf("byRaw holds %d keys, want 1 (legacy keys must not be remembered)", len(s.byRaw))
	}
}

func TestInconsistentLabelsDropped(t *testing.T) {
	s := New()
	key := []string{"raft", "replication", "heartbeat"}
	s.AddSampleWithLabels(key, 1, []metrics.Label{{Name: "peer_id", Value: "a"}})
	s.AddSampleWithLabels(key, 1, []metrics.Label{{Name: "peer", Value: "b"}})
	s.AddSampleWithLabels(key, 1, []metrics.Label{{Name: "peer", Value: "b"}}) // same rejected series
	s.AddSample(key, 1)                                                        // no labels: also a different set
	s.AddSampleWithLabels(key, 2, []metrics.Label{{Name: "peer_id", Value: "a"}})

	_, mfs := gather(t, s)
	hf := mustFamily(t, mfs, "clusterkit_raft_replication_heartbeat_seconds", dto.MetricType_HISTOGRAM)
	if n := len(hf.GetMetric()); n != 1 {
		t.Fatalf("got %d series, want 1", n)
	}
	got := metricWith(t, hf, map[string]string{"peer_id": "a"}).GetHistogram()
	if got.GetSampleCount() != 2 || got.GetSampleSum() != 0.003 {
		t.Errorf("count/sum = %d/%v, want 2/0.003", got.GetSampleCount(), got.GetSampleSum())
	}
	if d := s.Dropped(); d != 2 {
		t.Errorf("Dropped = %d, want 2 (distinct rejected series)", d)
	}
}

func TestTypeConflictsDoNotBreakGather(t *testing.T) {
	s := New()
	// Same exported name, different types.
	s.SetGauge([]string{"raft", "a_total"}, 1)
	s.IncrCounter([]string{"raft", "a"}, 1)
	s.AddSample([]string{"raft", "b"}, 1)
	s.SetGauge([]string{"raft", "b", "seconds"}, 1)
	// Names that clash with a histogram's _bucket/_count/_sum series, in
	// both orders.
	s.SetGauge([]string{"raft", "b", "seconds", "count"}, 1)
	s.SetGauge([]string{"raft", "b", "seconds", "bucket"}, 1)
	s.SetGauge([]string{"raft", "c", "seconds", "sum"}, 1)
	s.AddSample([]string{"raft", "c"}, 1)
	// Labels that would be invalid or duplicated after sanitizing.
	s.SetGaugeWithLabels([]string{"raft", "d"}, 1, []metrics.Label{{Name: "x-y", Value: "1"}, {Name: "x_y", Value: "2"}})
	s.SetGaugeWithLabels([]string{"raft", "d2"}, 1, []metrics.Label{{Name: "rpcType", Value: "1"}, {Name: "rpc_type", Value: "2"}})
	s.AddSampleWithLabels([]string{"raft", "e"}, 1, []metrics.Label{{Name: "le", Value: "1"}})
	s.SetGaugeWithLabels([]string{"raft", "f"}, 1, []metrics.Label{{Name: "__name__", Value: "x"}, {Name: "1st", Value: "\xff"}})

	_, mfs := gather(t, s)
	mustFamily(t, mfs, "clusterkit_raft_a_total", dto.MetricType_GAUGE)
	mustFamily(t, mfs, "clusterkit_raft_b_seconds", dto.MetricType_HISTOGRAM)
	mustFamily(t, mfs, "clusterkit_raft_c_seconds_sum", dto.MetricType_GAUGE)
	f := mustFamily(t, mfs, "clusterkit_raft_f", dto.MetricType_GAUGE)
	metricWith(t, f, map[string]string{"name__": "x", "l_1st": "\uFFFD"})
	for _, name := range []string{"clusterkit_raft_b_seconds_count", "clusterkit_raft_b_seconds_bucket", "clusterkit_raft_c_seconds", "clusterkit_raft_d", "clusterkit_raft_d2", "clusterkit_raft_e_seconds"} {
		if _, ok := mfs[name]; ok {
			t.Errorf("conflicting family %q was exported", name)
		}
	}
	if d := s.Dropped(); d != 8 {
		t.Errorf("Dropped = %d, want 8", d)
	}
}

func TestSameSeriesDifferentSpelling(t *testing.T) {
	s := New()
	s.IncrCounter([]string{"raft", "commitTime"}, 1)
	s.IncrCounter([]string{"raft", "commit_time"}, 2)
	s.IncrCounterWithLabels([]string{"raft", "x"}, 1, []metrics.Label{{Name: "a", Value: "1"}, {Name: "b", Value: "2"}})
	s.IncrCounterWithLabels([]string{"raft", "x"}, 1, []metrics.Label{{Name: "b", Value: "2"}, {Name: "a", Value: "1"}})

	_, mfs := gather(t, s)
	c := mustFamily(t, mfs, "clusterkit_raft_commit_time_total", dto.MetricType_COUNTER)
	if v := metricWith(t, c, nil).GetCounter().GetValue(); v != 3 {
		t.Errorf("commit_time_total = %v, want 3", v)
	}
	c = mustFamily(t, mfs, "clusterkit_raft_x_total", dto.MetricType_COUNTER)
	if v := metricWith(t, c, map[string]string{"a": "1", "b": "2"}).GetCounter().GetValue(); v != 2 {
		t.Errorf("x_total = %v, want 2 (label order must not matter)", v)
	}
}

func TestMetricName(t *testing.T) {
	tests := []struct {
		k    kind
		key  []string
		want string
	}{
		{kindHistogram, []string{"raft", "commitTime"}, "clusterkit_raft_commit_time_seconds"},
		{kindHistogram, []string{"raft", "replication", "appendEntries", "rpc"}, "clusterkit_raft_replication_append_entries_rpc_seconds"},
		{kindHistogram, []string{"raft", "net", "getRPCType"}, "clusterkit_raft_net_get_rpc_type_seconds"},
		{kindHistogram, []string{"raft", "leader", "lastContact"}, "clusterkit_raft_leader_last_contact_seconds"},
		{kindHistogram, []string{"raft", "thread", "main", "saturation"}, "clusterkit_raft_thread_main_saturation"},
		{kindHistogram, []string{"raft", "fsm", "applyBatchNum"}, "clusterkit_raft_fsm_apply_batch_num"},
		{kindHistogram, []string{"raft", "someFutureTimer"}, "clusterkit_raft_some_future_timer_seconds"},
		{kindCounter, []string{"raft", "transition", "heartbeat_timeout"}, "clusterkit_raft_transition_heartbeat_timeout_total"},
		{kindCounter, []string{"raft", "state", "candidate"}, "clusterkit_raft_state_transitions_total"},
		{kindCounter, []string{"raft", "replication", "appendEntries", "logs", "node-1.local:7000"}, "clusterkit_raft_replication_append_entries_logs_node_1_local:7000_total"},
		{kindGauge, []string{"raft", "leader", "oldestLogAge"}, "clusterkit_raft_leader_oldest_log_age_seconds"},
		{kindGauge, []string{"raft", "fsm", "lastRestoreDuration"}, "clusterkit_raft_fsm_last_restore_duration_seconds"},
		{kindGauge, []string{"raft", "commitNumLogs"}, "clusterkit_raft_commit_num_logs"},
		{kindGauge, []string{"raft", "HTTPServer2Go"}, "clusterkit_raft_http_server2_go"},
		// A known key reported with another kind follows the generic rule.
		{kindGauge, []string{"raft", "commitTime"}, "clusterkit_raft_commit_time"},
	}
	for _, tt := range tests {
		got := metricName(specFor(tt.k, tt.key), tt.key)
		if got != tt.want {
			t.Errorf("metricName(%v) = %q, want %q", tt.key, got, tt.want)
		}
		if !model.LegacyValidation.IsValidMetricName(got) {
			t.Errorf("metricName(%v) = %q is not a valid legacy metric name", tt.key, got)
		}
	}
}

func TestInstall(t *testing.T) {
	s := Install()
	if s == nil || Install() != s {
		t.Fatal("Install must return the same non-nil *Sink every time")
	}
	// The sink is process-wide, so with -count>1 earlier runs already left
	// values behind: compare against a baseline instead of absolute values.
	counterName, timerName := "clusterkit_raft_test_install_total", "clusterkit_raft_test_install_timer_seconds"
	_, before := gather(t, s)
	var baseCount, baseTimerN, baseTimerSum float64
	if mf, ok := before[counterName]; ok {
		baseCount = metricWith(t, mf, nil).GetCounter().GetValue()
	}
	if mf, ok := before[timerName]; ok {
		h := metricWith(t, mf, nil).GetHistogram()
		baseTimerN, baseTimerSum = float64(h.GetSampleCount()), h.GetSampleSum()
	}

	metrics.IncrCounter([]string{"raft", "test_install"}, 1)
	metrics.MeasureSince([]string{"raft", "test_install_timer"}, time.Now().Add(-5*time.Millisecond))
	metrics.IncrCounter([]string{"other", "lib"}, 1)

	_, mfs := gather(t, s)
	c := mustFamily(t, mfs, counterName, dto.MetricType_COUNTER)
	if v := metricWith(t, c, nil).GetCounter().GetValue() - baseCount; v != 1 {
		t.Errorf("test_install_total grew by %v, want 1", v)
	}
	// TimerGranularity is milliseconds, converted to seconds, and no
	// hostname/service decoration.
	h := histogramOf(t, mfs, timerName, nil)
	if n := float64(h.GetSampleCount()) - baseTimerN; n != 1 {
		t.Errorf("test_install_timer_seconds count grew by %v, want 1", n)
	}
	if v := h.GetSampleSum() - baseTimerSum; v < 0.005 || v > 60 {
		t.Errorf("test_install_timer_seconds sum grew by %v, want >= 0.005 (seconds)", v)
	}
	for name := range mfs {
		if name == "clusterkit_raft_other_lib_total" || name == "clusterkit_raft_lib_total" {
			t.Errorf("foreign key exported as %q", name)
		}
	}
}

func TestTextFormatRoundTrip(t *testing.T) {
	s := New()
	s.SetGauge([]string{"raft", "peers"}, 3)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 4, []metrics.Label{{Name: "peer_id", Value: `n"1\`}})
	s.AddSample([]string{"raft", "fsm", "apply"}, 2)
	s.AddSample([]string{"raft", "fsm", "apply"}, 3)

	reg, _ := gather(t, s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("Encode: %v", err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}

	// Legacy validation also proves the names need no UTF-8 escaping.
	p := expfmt.NewTextParser(model.LegacyValidation)
	parsed, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("TextToMetricFamilies: %v\n%s", err, buf.String())
	}
	if len(parsed) != 3 {
		t.Errorf("parsed %d families, want 3", len(parsed))
	}
	g := mustFamily(t, parsed, "clusterkit_raft_peers", dto.MetricType_GAUGE)
	if v := metricWith(t, g, nil).GetGauge().GetValue(); v != 3 {
		t.Errorf("peers = %v, want 3", v)
	}
	c := mustFamily(t, parsed, "clusterkit_raft_replication_append_entries_logs_total", dto.MetricType_COUNTER)
	if v := metricWith(t, c, map[string]string{"peer_id": `n"1\`}).GetCounter().GetValue(); v != 4 {
		t.Errorf("logs_total = %v, want 4", v)
	}
	h := histogramOf(t, parsed, "clusterkit_raft_fsm_apply_seconds", nil)
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.005 {
		t.Errorf("fsm_apply count/sum = %d/%v, want 2/0.005", h.GetSampleCount(), h.GetSampleSum())
	}
}

func TestConcurrentWritesAndGather(t *testing.T) {
	s := New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)

	const writers, perWriter = 8, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	gatherDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				gatherDone <- nil
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				gatherDone <- err
				return
			}
			s.ForgetPeer("gone") // concurrent deletes of a peer nobody counts
		}
	}()
	for w := range writers {
		wg.Go(func() {
			labels := []metrics.Label{{Name: "peer_id", Value: fmt.Sprintf("p%d", w%3)}}
			gone := []metrics.Label{{Name: "peer_id", Value: "gone"}}
			for i := range perWriter {
				s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 1, labels)
				s.AddSampleWithLabels([]string{"raft", "replication", "heartbeat"}, 1, gone)
				s.AddSample([]string{"raft", "commitTime"}, 1)
				s.SetGauge([]string{"raft", "peers"}, float32(i))
				s.SetGaugeWithLabels([]string{"raft", "w"}, 1, []metrics.Label{{Name: "w", Value: fmt.Sprint(w)}})
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-gatherDone; err != nil {
		t.Fatalf("concurrent Gather: %v", err)
	}

	_, mfs := gather(t, s)
	c := mustFamily(t, mfs, "clusterkit_raft_replication_append_entries_logs_total", dto.MetricType_COUNTER)
	var total float64
	for _, m := range c.GetMetric() {
		total += m.GetCounter().GetValue()
	}
	if total != writers*perWriter {
		t.Errorf("total logs = %v, want %d", total, writers*perWriter)
	}
	if n := histogramOf(t, mfs, "clusterkit_raft_commit_time_seconds", nil).GetSampleCount(); n != writers*perWriter {
		t.Errorf("commit_time count = %d, want %d", n, writers*perWriter)
	}
	if n := len(mustFamily(t, mfs, "clusterkit_raft_w", dto.MetricType_GAUGE).GetMetric()); n != writers {
		t.Errorf("w series = %d, want %d", n, writers)
	}
}

// A raft key that maps to a name another collector owns is dropped, so the
// shared registry never fails to Gather.
func TestReservedNamesAreDropped(t *testing.T) {
	s := New()
	s.Reserve("clusterkit_raft_term", "clusterkit_raft_x_seconds_count")
	s.SetGauge([]string{"raft", "term"}, 7)
	s.AddSample([]string{"raft", "x"}, 1) // its _count would clash
	s.SetGauge([]string{"raft", "other"}, 1)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "clusterkit_raft_term", Help: "ours"}, func() float64 { return 3 }))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "clusterkit_raft_term" && f.GetMetric()[0].GetGauge().GetValue() != 3 {
			t.Fatalf("raft's term replaced ours: %v", f)
		}
		if f.GetName() == "clusterkit_raft_x_seconds" {
			t.Fatal("a histogram whose _count is reserved was exported")
		}
	}
	if s.Dropped() != 2 {
		t.Fatalf("dropped %d, want 2", s.Dropped())
	}
}

// emitPeer reports what the leader's replication reports per peer.
func emitPeer(s *Sink, peer string) {
	l := []metrics.Label{{Name: "peer_id", Value: peer}}
	s.AddSampleWithLabels([]string{"raft", "replication", "appendEntries", "rpc"}, 1, l)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 1, l)
	s.AddSampleWithLabels([]string{"raft", "replication", "heartbeat"}, 1, l)
}

// peerSeries counts the gathered series labelled with each peer.
func peerSeries(t *testing.T, s *Sink) map[string]int {
	t.Helper()
	_, mfs := gather(t, s)
	out := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == PeerLabel {
					out[l.GetValue()]++
				}
			}
		}
	}
	return out
}

func TestForgetPeer(t *testing.T) {
	s := New()
	emitPeer(s, "a")
	emitPeer(s, "b")
	s.AddSample([]string{"raft", "commitTime"}, 1)
	// A rejected series of b (inconsistent labels) is remembered too.
	s.AddSampleWithLabels([]string{"raft", "replication", "heartbeat"}, 1, []metrics.Label{{Name: "peer_id", Value: "b"}, {Name: "extra", Value: "x"}})
	if got := peerSeries(t, s); got["a"] != 3 || got["b"] != 3 {
		t.Fatalf("before: %v, want 3 series each", got)
	}
	rawBefore := len(s.byRaw)

	s.ForgetPeer("b")
	got := peerSeries(t, s)
	if got["a"] != 3 || got["b"] != 0 {
		t.Fatalf("after ForgetPeer(b): %v, want a:3 and no b", got)
	}
	if len(s.byRaw) != rawBefore-4 || len(s.byID) != len(s.order) || len(s.order) != 4 {
		t.Fatalf("byRaw %d (was %d), byID %d, order %d: b's entries are not all gone", len(s.byRaw), rawBefore, len(s.byID), len(s.order))
	}
	// Forgetting twice, or a peer never seen, is harmless.
	s.ForgetPeer("b")
	s.ForgetPeer("never")
	s.ForgetPeer("")
	// a's series keep counting.
	emitPeer(s, "a")
	_, mfs := gather(t, s)
	c := mustFamily(t, mfs, "clusterkit_raft_replication_append_entries_logs_total", dto.MetricType_COUNTER)
	if v := metricWith(t, c, map[string]string{"peer_id": "a"}).GetCounter().GetValue(); v != 2 {
		t.Errorf("logs{a} = %v, want 2", v)
	}
}

// A late report for a forgotten peer does not bring its series back, and
// costs no memory; PeerJoined (or the TTL) lifts that.
func TestForgetPeerGuard(t *testing.T) {
	s := New()
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	emitPeer(s, "b")
	s.ForgetPeer("b")
	for range 10 {
		emitPeer(s, "b") // raft's replication goroutine, not stopped yet
	}
	if got := peerSeries(t, s); got["b"] != 0 {
		t.Fatalf("late reports re-created %d series of b", got["b"])
	}
	if len(s.byRaw) != 0 || len(s.order) != 0 {
		t.Fatalf("late reports are remembered: byRaw %d, order %d", len(s.byRaw), len(s.order))
	}

	s.PeerJoined("b")
	emitPeer(s, "b")
	if got := peerSeries(t, s); got["b"] != 3 {
		t.Fatalf("after PeerJoined: %d series of b, want 3", got["b"])
	}

	// Without PeerJoined, the suppression ends after forgetTTL.
	s.ForgetPeer("b")
	now = now.Add(forgetTTL - time.Second)
	emitPeer(s, "b")
	if got := peerSeries(t, s); got["b"] != 0 {
		t.Fatalf("before the TTL: %d series of b", got["b"])
	}
	now = now.Add(2 * time.Second)
	emitPeer(s, "b")
	if got := peerSeries(t, s); got["b"] != 3 {
		t.Fatalf("after the TTL: %d series of b, want 3", got["b"])
	}
	if _, ok := s.forgotten["b"]; ok {
		t.Fatal("an expired entry stayed in the forgotten set")
	}
}

// The forgotten set never holds more than maxForgotten peers: the oldest
// make room.
func TestForgottenIsBounded(t *testing.T) {
	s := New()
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	const n = maxForgotten + 500
	for i := range n {
		now = now.Add(time.Millisecond)
		s.ForgetPeer(fmt.Sprintf("p%d", i))
	}
	if len(s.forgotten) != maxForgotten {
		t.Fatalf("forgotten holds %d, want %d", len(s.forgotten), maxForgotten)
	}
	if _, ok := s.forgotten["p0"]; ok {
		t.Fatal("the oldest entry was kept")
	}
	if _, ok := s.forgotten[fmt.Sprintf("p%d", n-1)]; !ok {
		t.Fatal("the newest entry was evicted")
	}
}

// Members that come and go leave nothing behind.
func TestPeerChurnLeavesNothing(t *testing.T) {
	s := New()
	emitPeer(s, "stay")
	s.AddSample([]string{"raft", "commitTime"}, 1)
	raw, series := len(s.byRaw), len(s.order)
	for i := range 2000 {
		p := fmt.Sprintf("tmp-%d", i)
		s.PeerJoined(p)
		emitPeer(s, p)
		s.ForgetPeer(p)
		emitPeer(s, p) // late
	}
	if len(s.byRaw) != raw || len(s.order) != series || len(s.byID) != series {
		t.Fatalf("after churn: byRaw %d (was %d), order %d, byID %d (were %d)", len(s.byRaw), raw, len(s.order), len(s.byID), series)
	}
	if len(s.forgotten) > maxForgotten {
		t.Fatalf("forgotten holds %d", len(s.forgotten))
	}
	if got := peerSeries(t, s); len(got) != 1 || got["stay"] != 3 {
		t.Fatalf("peer series after churn: %v", got)
	}
}

// An update of a known series allocates nothing: the sink runs on raft's
// hot path (every append, heartbeat and RPC).
func TestUpdateDoesNotAllocate(t *testing.T) {
	s := New()
	l := []metrics.Label{{Name: "peer_id", Value: "node-2"}}
	key := []string{"raft", "replication", "appendEntries", "rpc"}
	s.AddSampleWithLabels(key, 1, l)
	if n := testing.AllocsPerRun(100, func() {
		s.AddSampleWithLabels(key, 1.5, l)
		s.IncrCounter([]string{"raft", "apply"}, 1)
	}); n != 0 {
		t.Errorf("%v allocations per update, want 0", n)
	}
}

func BenchmarkSinkUpdate(b *testing.B) {
	s := New()
	l := []metrics.Label{{Name: "peer_id", Value: "node-2"}}
	rpc := []string{"raft", "replication", "appendEntries", "rpc"}
	logs := []string{"raft", "replication", "appendEntries", "logs"}
	commit := []string{"raft", "commitTime"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.AddSampleWithLabels(rpc, 0.8, l)
			s.IncrCounterWithLabels(logs, 1, l)
			s.AddSample(commit, 1.2)
		}
	})
}

// BenchmarkGather is one scrape of a sink holding what a leader of a
// 5-node cluster holds.
func BenchmarkGather(b *testing.B) {
	s := New()
	for k, sp := range known {
		switch sp.kind {
		case kindGauge:
			s.SetGauge(strings.Split(k, "."), 1)
		case kindCounter:
			s.IncrCounter(strings.Split(k, "."), 1)
		case kindHistogram:
			s.AddSample(strings.Split(k, "."), 1)
		}
	}
	for i := range 4 {
		emitPeer(s, fmt.Sprintf("node-%d", i))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// docs/http-api.md lists every family the known keys export, and no raft
// family that does not exist.
func TestDocsListKnownNames(t *testing.T) {
	b, err := os.ReadFile("../../docs/http-api.md")
	if err != nil {
		t.Skipf("docs: %v", err)
	}
	doc := string(b)
	names := map[string]bool{}
	for k, sp := range known {
		names[metricName(sp, strings.Split(k, "."))] = true
	}
	for name := range names {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/http-api.md does not list %s", name)
		}
	}
	own := map[string]bool{"state": true, "term": true, "commit_index": true, "applied_index": true, "last_log_index": true, "voters": true, "non_voters": true}
	for _, m := range regexp.MustCompile("`(clusterkit_raft_[a-z0-9_]+)`").FindAllStringSubmatch(doc, -1) {
		if !names[m[1]] && !own[strings.TrimPrefix(m[1], namePrefix)] && m[1] != "clusterkit_raft_commit_time" {
			t.Errorf("docs/http-api.md lists %s, which no raft key exports", m[1])
		}
	}
}
