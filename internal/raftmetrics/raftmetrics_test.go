package raftmetrics

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	metrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
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

func TestGatherValues(t *testing.T) {
	s := New()
	peerA := []metrics.Label{{Name: "peer_id", Value: "a"}}
	peerB := []metrics.Label{{Name: "peer_id", Value: "b"}}

	s.SetGauge([]string{"raft", "peers"}, 3)
	s.SetGauge([]string{"raft", "peers"}, 5) // last value wins
	s.SetPrecisionGauge([]string{"raft", "fsm", "lastRestoreDuration"}, 1.25)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 2, peerA)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 3, peerA)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 7, peerB)
	s.IncrCounter([]string{"raft", "state", "leader"}, 1)
	s.AddSample([]string{"raft", "commitTime"}, 1.5)
	s.AddSample([]string{"raft", "commitTime"}, 2.5)
	s.AddSample([]string{"raft", "commitTime"}, 4)
	s.AddSampleWithLabels([]string{"raft", "net", "getRPCType"}, 0.5, []metrics.Label{{Name: "rpc-type", Value: "x"}})
	s.AddSample([]string{"raft", "fsm", "applyBatchNum"}, 8)
	// Ignored: foreign key, bare root, EmitKey.
	s.IncrCounter([]string{"memberlist", "udp", "sent"}, 1)
	s.SetGauge([]string{"raft"}, 1)
	s.EmitKey([]string{"raft", "event"}, 1)

	_, mfs := gather(t, s)

	if got := len(mfs); got != 7 {
		t.Errorf("got %d families, want 7: %v", got, mfs)
	}

	g := mustFamily(t, mfs, "clusterkit_raft_peers", dto.MetricType_GAUGE)
	if v := metricWith(t, g, nil).GetGauge().GetValue(); v != 5 {
		t.Errorf("peers = %v, want 5", v)
	}
	g = mustFamily(t, mfs, "clusterkit_raft_fsm_last_restore_duration", dto.MetricType_GAUGE)
	if v := metricWith(t, g, nil).GetGauge().GetValue(); v != 1.25 {
		t.Errorf("lastRestoreDuration = %v, want 1.25 (float64 precision)", v)
	}

	c := mustFamily(t, mfs, "clusterkit_raft_replication_append_entries_logs_total", dto.MetricType_COUNTER)
	if v := metricWith(t, c, map[string]string{"peer_id": "a"}).GetCounter().GetValue(); v != 5 {
		t.Errorf("logs{peer_id=a} = %v, want 5", v)
	}
	if v := metricWith(t, c, map[string]string{"peer_id": "b"}).GetCounter().GetValue(); v != 7 {
		t.Errorf("logs{peer_id=b} = %v, want 7", v)
	}
	c = mustFamily(t, mfs, "clusterkit_raft_state_leader_total", dto.MetricType_COUNTER)
	if v := metricWith(t, c, nil).GetCounter().GetValue(); v != 1 {
		t.Errorf("state_leader = %v, want 1", v)
	}

	sm := mustFamily(t, mfs, "clusterkit_raft_commit_time_ms", dto.MetricType_SUMMARY)
	sum := metricWith(t, sm, nil).GetSummary()
	if sum.GetSampleCount() != 3 || sum.GetSampleSum() != 8 {
		t.Errorf("commit_time count/sum = %d/%v, want 3/8", sum.GetSampleCount(), sum.GetSampleSum())
	}
	if len(sum.GetQuantile()) != 0 {
		t.Errorf("commit_time has %d quantiles, want none", len(sum.GetQuantile()))
	}
	sm = mustFamily(t, mfs, "clusterkit_raft_net_get_rpc_type_ms", dto.MetricType_SUMMARY)
	if n := metricWith(t, sm, map[string]string{"rpc_type": "x"}).GetSummary().GetSampleCount(); n != 1 {
		t.Errorf("get_rpc_type count = %d, want 1", n)
	}
	// Not a duration, so no _ms suffix.
	sm = mustFamily(t, mfs, "clusterkit_raft_fsm_apply_batch_num", dto.MetricType_SUMMARY)
	if v := metricWith(t, sm, nil).GetSummary().GetSampleSum(); v != 8 {
		t.Errorf("apply_batch_num sum = %v, want 8", v)
	}

	if d := s.Dropped(); d != 0 {
		t.Errorf("Dropped = %d, want 0", d)
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
	sm := mustFamily(t, mfs, "clusterkit_raft_replication_heartbeat_ms", dto.MetricType_SUMMARY)
	if n := len(sm.GetMetric()); n != 1 {
		t.Fatalf("got %d series, want 1", n)
	}
	got := metricWith(t, sm, map[string]string{"peer_id": "a"}).GetSummary()
	if got.GetSampleCount() != 2 || got.GetSampleSum() != 3 {
		t.Errorf("count/sum = %d/%v, want 2/3", got.GetSampleCount(), got.GetSampleSum())
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
	s.SetGauge([]string{"raft", "b", "ms"}, 1)
	// Names that clash with a summary's _count/_sum series, in both orders.
	s.SetGauge([]string{"raft", "b", "ms", "count"}, 1)
	s.SetGauge([]string{"raft", "c", "ms", "sum"}, 1)
	s.AddSample([]string{"raft", "c"}, 1)
	// Labels that would be invalid or duplicated after sanitizing.
	s.SetGaugeWithLabels([]string{"raft", "d"}, 1, []metrics.Label{{Name: "x-y", Value: "1"}, {Name: "x_y", Value: "2"}})
	s.AddSampleWithLabels([]string{"raft", "e"}, 1, []metrics.Label{{Name: "quantile", Value: "1"}})
	s.SetGaugeWithLabels([]string{"raft", "f"}, 1, []metrics.Label{{Name: "__name__", Value: "x"}, {Name: "1st", Value: "\xff"}})

	_, mfs := gather(t, s)
	mustFamily(t, mfs, "clusterkit_raft_a_total", dto.MetricType_GAUGE)
	mustFamily(t, mfs, "clusterkit_raft_b_ms", dto.MetricType_SUMMARY)
	mustFamily(t, mfs, "clusterkit_raft_c_ms_sum", dto.MetricType_GAUGE)
	f := mustFamily(t, mfs, "clusterkit_raft_f", dto.MetricType_GAUGE)
	metricWith(t, f, map[string]string{"name__": "x", "l_1st": "\uFFFD"})
	for _, name := range []string{"clusterkit_raft_b_ms_count", "clusterkit_raft_c_ms", "clusterkit_raft_d", "clusterkit_raft_e_ms"} {
		if _, ok := mfs[name]; ok {
			t.Errorf("conflicting family %q was exported", name)
		}
	}
	if d := s.Dropped(); d != 6 {
		t.Errorf("Dropped = %d, want 6", d)
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
		{kindSummary, []string{"raft", "commitTime"}, "clusterkit_raft_commit_time_ms"},
		{kindSummary, []string{"raft", "replication", "appendEntries", "rpc"}, "clusterkit_raft_replication_append_entries_rpc_ms"},
		{kindSummary, []string{"raft", "net", "getRPCType"}, "clusterkit_raft_net_get_rpc_type_ms"},
		{kindSummary, []string{"raft", "thread", "main", "saturation"}, "clusterkit_raft_thread_main_saturation"},
		{kindCounter, []string{"raft", "transition", "heartbeat_timeout"}, "clusterkit_raft_transition_heartbeat_timeout_total"},
		{kindCounter, []string{"raft", "replication", "appendEntries", "logs", "node-1.local:7000"}, "clusterkit_raft_replication_append_entries_logs_node_1_local:7000_total"},
		{kindGauge, []string{"raft", "leader", "oldestLogAge"}, "clusterkit_raft_leader_oldest_log_age"},
		{kindGauge, []string{"raft", "HTTPServer2Go"}, "clusterkit_raft_http_server2_go"},
	}
	for _, tt := range tests {
		got := metricName(tt.k, tt.key)
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
	counterName, timerName := "clusterkit_raft_test_install_total", "clusterkit_raft_test_install_timer_ms"
	_, before := gather(t, s)
	var baseCount, baseTimerN, baseTimerSum float64
	if mf, ok := before[counterName]; ok {
		baseCount = metricWith(t, mf, nil).GetCounter().GetValue()
	}
	if mf, ok := before[timerName]; ok {
		sum := metricWith(t, mf, nil).GetSummary()
		baseTimerN, baseTimerSum = float64(sum.GetSampleCount()), sum.GetSampleSum()
	}

	metrics.IncrCounter([]string{"raft", "test_install"}, 1)
	metrics.MeasureSince([]string{"raft", "test_install_timer"}, time.Now().Add(-5*time.Millisecond))
	metrics.IncrCounter([]string{"other", "lib"}, 1)

	_, mfs := gather(t, s)
	c := mustFamily(t, mfs, counterName, dto.MetricType_COUNTER)
	if v := metricWith(t, c, nil).GetCounter().GetValue() - baseCount; v != 1 {
		t.Errorf("test_install_total grew by %v, want 1", v)
	}
	// TimerGranularity is milliseconds, and no hostname/service decoration.
	sm := metricWith(t, mustFamily(t, mfs, timerName, dto.MetricType_SUMMARY), nil).GetSummary()
	if n := float64(sm.GetSampleCount()) - baseTimerN; n != 1 {
		t.Errorf("test_install_timer_ms count grew by %v, want 1", n)
	}
	if v := sm.GetSampleSum() - baseTimerSum; v < 5 || v > 60_000 {
		t.Errorf("test_install_timer_ms sum grew by %v, want >= 5 (milliseconds)", v)
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
	sm := mustFamily(t, parsed, "clusterkit_raft_fsm_apply_ms", dto.MetricType_SUMMARY)
	got := metricWith(t, sm, nil).GetSummary()
	if got.GetSampleCount() != 2 || got.GetSampleSum() != 5 {
		t.Errorf("fsm_apply count/sum = %d/%v, want 2/5", got.GetSampleCount(), got.GetSampleSum())
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
		}
	}()
	for w := range writers {
		wg.Go(func() {
			labels := []metrics.Label{{Name: "peer_id", Value: fmt.Sprintf("p%d", w%3)}}
			for i := range perWriter {
				s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 1, labels)
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
	sm := mustFamily(t, mfs, "clusterkit_raft_commit_time_ms", dto.MetricType_SUMMARY)
	if n := metricWith(t, sm, nil).GetSummary().GetSampleCount(); n != writers*perWriter {
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
	s.Reserve("clusterkit_raft_term")
	s.SetGauge([]string{"raft", "term"}, 7)
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
	}
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", s.Dropped())
	}
}
