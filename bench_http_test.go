package clusterkit

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// BenchmarkHTTP measures gateway requests over loopback with a keep-alive
// client against a 3-node cluster (P=64, RF=3), one request per op.
func BenchmarkHTTP(b *testing.B) {
	nodes := benchCluster(b, 3, benchOptions)
	defer stopAll(nodes)
	base := "http://" + nodes[1].advertise
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	get := func(b *testing.B, path string, hdr map[string]string, want int) {
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			b.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	resp, err := client.Get(base + "/cluster")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	for _, bc := range []struct {
		name, path string
		hdr        map[string]string
		want       int
	}{
		{"health", "/health", nil, 200},
		{"locate", "/locate?key=user:123", nil, 200},
		{"cluster", "/cluster", nil, 200},
		{"cluster-304", "/cluster", map[string]string{"If-None-Match": etag}, 304},
		{"partitions-stats", "/partitions/stats", nil, 200},
		{"metrics", "/metrics", nil, 200},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				get(b, bc.path, bc.hdr, bc.want)
			}
		})
	}
}

// BenchmarkEventStreamLatency: from the proposal of a manual rebalance on the
// leader to its rebalance_start record read by an HTTP client of a
// follower's GET /events, against the same event reaching a Go callback on
// that follower in the same run.
func BenchmarkEventStreamLatency(b *testing.B) {
	nodes := benchCluster(b, 3, benchOptions)
	defer stopAll(nodes)
	leader, follower := nodes[0], nodes[1]
	callback := make(chan time.Duration, 1024)
	follower.OnRebalanceStart(func(e *RebalanceEvent) {
		if e.Trigger == "manual" {
			callback <- time.Since(e.Timestamp)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+follower.advertise+"/events?kinds=rebalance_start", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	stream := make(chan time.Duration, 1024)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e client.Event
			if json.Unmarshal([]byte(data), &e) == nil && e.RebalanceStart != nil && e.RebalanceStart.Trigger == "manual" {
				stream <- time.Since(e.Time)
			}
		}
	}()
	var viaStream, viaCallback []time.Duration
	for b.Loop() {
		if err := leader.RebalancePartitions(context.Background()); err != nil {
			b.Fatal(err)
		}
		for _, ch := range []chan time.Duration{stream, callback} {
			select {
			case d := <-ch:
				if ch == stream {
					viaStream = append(viaStream, d)
				} else {
					viaCallback = append(viaCallback, d)
				}
			case <-time.After(10 * time.Second):
				b.Fatal("event not received")
			}
		}
	}
	b.ReportMetric(float64(percentile(viaStream, 0.5).Microseconds())/1000, "sse-p50-ms")
	b.ReportMetric(float64(percentile(viaStream, 0.99).Microseconds())/1000, "sse-p99-ms")
	b.ReportMetric(float64(percentile(viaCallback, 0.5).Microseconds())/1000, "callback-p50-ms")
	b.ReportMetric(float64(percentile(viaCallback, 0.99).Microseconds())/1000, "callback-p99-ms")
}
