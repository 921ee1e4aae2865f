package clusterkit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHTTPGateway(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.Services = map[string]string{"kv": ":9080", "api": ":3000"}
	ck := startNode(t, o)
	base := "http://" + ck.advertise
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	do := func(method, path string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
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
	resp, body = do("GET", "/ready", nil)
	var ready map[string]any
	if err := json.Unmarshal(body, &ready); err != nil || resp.StatusCode != 200 || ready["ready"] != true || ready["cluster_status"] != "degraded" {
		t.Fatalf("/ready: %d %s", resp.StatusCode, body)
	}
	resp, body = do("GET", "/cluster", nil)
	var doc struct {
		Cluster struct {
			Nodes []struct {
				ID       string            `json:"id"`
				IP       string            `json:"ip"`
				Status   string            `json:"status"`
				Services map[string]string `json:"services"`
			} `json:"nodes"`
			PartitionMap struct {
				Partitions map[string]struct {
					PrimaryNode  string   `json:"primary_node"`
					ReplicaNodes []string `json:"replica_nodes"`
				} `json:"partitions"`
			} `json:"partition_map"`
			Config struct {
				PartitionCount    int `json:"partition_count"`
				ReplicationFactor int `json:"replication_factor"`
			} `json:"config"`
		} `json:"cluster"`
		HashConfig struct {
			Algorithm      string `json:"algorithm"`
			PartitionCount int    `json:"partition_count"`
		} `json:"hash_config"`
		Leader string `json:"leader"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/cluster: %d %v %s", resp.StatusCode, err, body)
	}
	n := doc.Cluster.Nodes
	if len(n) != 1 || n[0].ID != "node-1" || n[0].IP != ck.advertise || n[0].Status != "active" || n[0].Services["kv"] != ":9080" || n[0].Services["api"] != ":3000" {
		t.Fatalf("/cluster nodes: %+v", n)
	}
	if len(doc.Cluster.PartitionMap.Partitions) != 64 || doc.Cluster.PartitionMap.Partitions["partition-48"].PrimaryNode != "node-1" ||
		doc.Cluster.PartitionMap.Partitions["partition-48"].ReplicaNodes == nil {
		t.Fatalf("/cluster partition map wrong")
	}
	if doc.HashConfig.Algorithm != "md5" || doc.HashConfig.PartitionCount != 64 || doc.Cluster.Config.ReplicationFactor != 3 || doc.Leader != "node-1" {
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
	resp, body = do("GET", "/health/detailed", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"term"`) {
		t.Fatalf("/health/detailed: %d %s", resp.StatusCode, body)
	}
	if m := ck.GetMetrics(); m.RequestCount < 8 || m.ErrorCount < 2 {
		t.Fatalf("request counters %d/%d", m.RequestCount, m.ErrorCount)
	}
}
