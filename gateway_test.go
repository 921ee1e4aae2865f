package clusterkit

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

func TestHTTPGateway(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.Services = map[string]string{"kv": ":9080", "api": ":3000"}
	ck := startNode(t, o)
	base := "http://" + ck.advertise
	httpClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	do := func(method, path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	resp, body := do("GET", "/health", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status": "ok"`) {
		t.Fatalf("/health: %d %s", resp.StatusCode, body)
	}
	if ready, err := newClient(t, ck).Ready(t.Context()); err != nil || !ready.Ready || ready.ClusterStatus != "degraded" {
		t.Fatalf("/ready: %+v %v", ready, err)
	}
	c, err := client.New(base, client.WithHTTPClient(httpClient))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = do("GET", "/cluster", nil)
	doc, err := c.Cluster(t.Context())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/cluster: %d %v", resp.StatusCode, err)
	}
	n := doc.Cluster.Nodes
	if len(n) != 1 || n[0].ID != "node-1" || n[0].IP != ck.advertise || n[0].Status != "active" || n[0].Services["kv"] != ":9080" || n[0].Services["api"] != ":3000" {
		t.Fatalf("/cluster nodes: %+v", n)
	}
	parts := doc.Cluster.PartitionMap.Partitions
	if len(parts) != 64 || parts["partition-48"].PrimaryNode != "node-1" || parts["partition-48"].ReplicaNodes == nil {
		t.Fatalf("/cluster partition map wrong")
	}
	if doc.HashConfig.Algorithm != "md5" || doc.HashConfig.Modulo != 64 || doc.Cluster.Config.ReplicationFactor != 3 || doc.Leader != "node-1" {
		t.Fatalf("/cluster config: %+v", doc)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if resp, _ := do("GET", "/cluster", map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("unchanged cluster with If-None-Match: %d", resp.StatusCode)
	}
	// A reassignment that keeps every count equal still changes the ETag.
	if err := ck.RebalancePartitions(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do("GET", "/cluster", map[string]string{"If-None-Match": etag}); resp.StatusCode != 200 || resp.Header.Get("ETag") == etag {
		t.Fatalf("after a new table: %d, ETag %s (was %s)", resp.StatusCode, resp.Header.Get("ETag"), etag)
	}
	resp, body = do("POST", "/cluster", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(string(body), `"code": "method_not_allowed"`) {
		t.Fatalf("POST /cluster: %d %s", resp.StatusCode, body)
	}
	resp, body = do("GET", "/nope", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("unknown route: %d %s", resp.StatusCode, body)
	}
	if h, err := c.DetailedHealth(t.Context()); err != nil || h.Term == 0 {
		t.Fatalf("/health/detailed: %+v %v", h, err)
	}
	if m := ck.GetMetrics(); m.RequestCount < 8 || m.ErrorCount < 2 {
		t.Fatalf("request counters %d/%d", m.RequestCount, m.ErrorCount)
	}
}
