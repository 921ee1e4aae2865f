package clusterkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// TestFailureTolerance: every node reports how many more voter and node
// failures the cluster survives, in HealthCheck, /health and /metrics, and
// the figures drop when a member fails.
func TestFailureTolerance(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, func(i int, o *Options) {
		o.PartitionCount, o.ReplicationFactor = 16, 3
		// Suspect quickly, removed only much later: the test reads the
		// figures while the stopped member is suspect.
		o.HealthCheck = HealthCheckConfig{Interval: 200 * time.Millisecond, Timeout: 200 * time.Millisecond, FailureThreshold: 2, RemovalGrace: time.Minute}
	}, nil)
	want := func(ft FailureTolerance, on []*ClusterKit) func() bool {
		return func() bool {
			for _, n := range on {
				if n.HealthCheck().FailureTolerance != ft {
					return false
				}
			}
			return true
		}
	}
	// Three voters survive one voter failure; RF 3 survives two lost members.
	waitFor(t, 30*time.Second, "every node reporting {voters 1, nodes 2}", want(FailureTolerance{Voters: 1, Nodes: 2}, nodes))

	leader := leaderOf(t, nodes)
	rest := othersThan(nodes, leader)
	follower, victim := rest[0], rest[1]
	c, err := client.New("http://" + follower.advertise)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(context.Background())
	if err != nil || h.FailureTolerance != (client.FailureTolerance{Voters: 1, Nodes: 2}) {
		t.Fatalf("GET /health on %s: %+v, %v", follower.GetMyNodeID(), h, err)
	}

	if err := victim.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// One voter of three down: the next voter failure stops the cluster;
	// every partition still has two live copies.
	alive := []*ClusterKit{leader, follower}
	waitFor(t, 30*time.Second, victim.GetMyNodeID()+" suspect and the survivors reporting {voters 0, nodes 1}", want(FailureTolerance{Voters: 0, Nodes: 1}, alive))
	if h, err = c.Health(context.Background()); err != nil || h.FailureTolerance != (client.FailureTolerance{Voters: 0, Nodes: 1}) {
		t.Fatalf("GET /health after the failure: %+v, %v", h, err)
	}
	text := metricsText(t, follower)
	for _, line := range []string{`clusterkit_failure_tolerance{kind="voters"} 0`, `clusterkit_failure_tolerance{kind="nodes"} 1`} {
		if !containsLine(text, line) {
			t.Fatalf("/metrics lacks %q:\n%s", line, grepPrefix(text, "clusterkit_failure_tolerance"))
		}
	}
}

// metricsText is the Prometheus text of the node's /metrics.
func metricsText(t *testing.T, ck *ClusterKit) string {
	t.Helper()
	resp, err := http.Get("http://" + ck.advertise + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
	}
	return string(b)
}

func containsLine(text, line string) bool {
	return slices.Contains(strings.Split(text, "\n"), line)
}

// grepPrefix returns the lines of text that start with prefix.
func grepPrefix(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSubscriberLagMetrics: a Go callback that falls behind shows its
// backlog and lag on /metrics, and both return to 0 once it catches up.
func TestSubscriberLagMetrics(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	ck := startNode(t, o)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // never leave the callback blocked
	remove := ck.OnCustomDataChange(func(*CustomDataChangeEvent) { <-release })
	defer remove()
	ctx := context.Background()
	for i := range 4 {
		if _, err := ck.SetCustomData(ctx, fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	// One event in the call, three waiting: four not finished.
	var subscriber string
	waitFor(t, 10*time.Second, "the callback's backlog of 4 on /metrics", func() bool {
		text := metricsText(t, ck)
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "clusterkit_event_subscriber_backlog{") && strings.HasSuffix(l, "} 4") {
				subscriber = l[strings.Index(l, "{") : strings.LastIndex(l, "}")+1]
				return true
			}
		}
		return false
	})
	// The lag grows while the callback blocks.
	waitFor(t, 10*time.Second, "the blocked callback's lag to pass 20 ms", func() bool {
		return seriesValue(t, metricsText(t, ck), "clusterkit_event_subscriber_lag_seconds"+subscriber) >= 0.02
	})
	unblock()
	waitFor(t, 10*time.Second, "the callback caught up: backlog and lag 0", func() bool {
		text := metricsText(t, ck)
		return seriesValue(t, text, "clusterkit_event_subscriber_backlog"+subscriber) == 0 &&
			seriesValue(t, text, "clusterkit_event_subscriber_lag_seconds"+subscriber) == 0
	})
}

// seriesValue is the value of the series named exactly name (with its
// labels) in a Prometheus text page; the test fails when there is none.
func seriesValue(t *testing.T, text, name string) float64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s:\n%s", name, grepPrefix(text, name[:strings.IndexAny(name+"{", "{")]))
	return 0
}
