package clusterkit

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// requirePromtool finds promtool (Debian's prometheus package). .ci/run
// installs it and sets CLUSTERKIT_REQUIRE_PROMTOOL=1: there a missing
// promtool fails the test instead of skipping it.
func requirePromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CLUSTERKIT_REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool not found and CLUSTERKIT_REQUIRE_PROMTOOL=1 (install Debian's prometheus package)")
		}
		t.Skip("promtool not found (Debian package prometheus); .ci/run installs it")
	}
	return path
}

// liveMetricsPages starts a 3-node cluster with some activity (a write, a
// Go callback) so that every family a node can export exists, and returns
// the leader's and a follower's /metrics pages.
func liveMetricsPages(t *testing.T) map[string]string {
	t.Helper()
	nodes := startCluster(t, 3, nil, nil)
	for _, n := range nodes {
		remove := n.OnCustomDataChange(func(*CustomDataChangeEvent) {})
		t.Cleanup(remove)
	}
	leader := leaderOf(t, nodes)
	if _, err := leader.SetCustomData(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{}
	for _, n := range nodes {
		role := "follower"
		if n == leader {
			role = "leader"
		}
		if _, ok := pages[role]; !ok {
			pages[role] = metricsText(t, n)
		}
	}
	return pages
}

// TestPromtoolChecksMetrics: promtool check metrics passes, with no warning,
// on a live leader's and a follower's /metrics.
func TestPromtoolChecksMetrics(t *testing.T) {
	promtool := requirePromtool(t)
	leakCheck(t)
	for role, page := range liveMetricsPages(t) {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(page)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", role, err, out)
		}
	}
}

// metricNameRE finds our metric names in PromQL expressions.
var metricNameRE = regexp.MustCompile(`\bclusterkit_[a-z0-9_]+`)

// TestMonitoringAssets: the alert rules pass promtool check rules, and every
// metric the rules and the Grafana dashboard name exists on a live node.
func TestMonitoringAssets(t *testing.T) {
	promtool := requirePromtool(t)
	leakCheck(t)
	const rules, dashboard = "docs/monitoring/alerts.yml", "docs/monitoring/grafana-dashboard.json"
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rules, err, out)
	}
	families := map[string]string{} // name -> type
	for _, page := range liveMetricsPages(t) {
		for _, l := range strings.Split(page, "\n") {
			if f, ok := strings.CutPrefix(l, "# TYPE "); ok {
				name, typ, _ := strings.Cut(f, " ")
				families[name] = typ
			}
		}
	}
	exists := func(name string) bool {
		if _, ok := families[name]; ok {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && (families[base] == "histogram" || families[base] == "summary") {
				return true
			}
		}
		return false
	}
	for _, file := range []string{rules, dashboard} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := slices.Compact(slices.Sorted(slices.Values(metricNameRE.FindAllString(string(b), -1))))
		if len(names) < 10 {
			t.Fatalf("%s names only %d metrics: %v", file, len(names), names)
		}
		for _, name := range names {
			if !exists(name) {
				t.Errorf("%s names %s, which no live node exports", file, name)
			}
		}
	}
}
