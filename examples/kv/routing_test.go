package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/httpgw/client"
)

// A /cluster document as the gateway writes it (trimmed to two partitions).
const clusterDoc = `{
  "cluster": {
    "id": "demo", "name": "demo", "cluster_id": "0123456789abcdef0123456789abcdef",
    "nodes": [
      {"id": "node-1", "ip": "10.1.0.1:8080", "port": 8080, "status": "active", "services": {"kv": "10.1.0.1:9080"}},
      {"id": "node-2", "ip": "10.1.0.2:8080", "port": 8080, "status": "active", "services": {"kv": ":9080"}},
      {"id": "node-3", "ip": "10.1.0.3:8080", "port": 8080, "status": "active", "services": {}}
    ],
    "partition_map": {"partitions": {
      "partition-48": {"id": "partition-48", "primary_node": "node-2", "replica_nodes": ["node-1", "node-3"], "epoch": 3},
      "partition-49": {"id": "partition-49", "primary_node": "node-3", "replica_nodes": ["node-2"], "epoch": 1}
    }},
    "hash_config": {"algorithm": "md5", "encoding": "big_endian_uint32", "modulo": 64, "format": "partition-%d", "partition_count": 64, "partition_id_format": "partition-%d"},
    "version": 14, "table_version": 14, "health": "healthy"
  },
  "hash_config": {"algorithm": "md5", "encoding": "big_endian_uint32", "modulo": 64, "format": "partition-%d", "partition_count": 64, "partition_id_format": "partition-%d"},
  "leader": "node-1", "node_id": "node-1"
}`

// newTestClient is a smart client closed with the test.
func newTestClient(t *testing.T, gateways ...string) *Client {
	t.Helper()
	c := NewClient(gateways...)
	t.Cleanup(c.Close)
	return c
}

// TestRoutingFromClusterDocument: from a gateway's GET /cluster alone, the
// client routes keys by the reference contract (md5, 64 partitions), tries
// the owners primary first, completes a kv address registered without a
// host, and refuses to route a key whose partition has no owner.
func TestRoutingFromClusterDocument(t *testing.T) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cluster" {
			http.NotFound(w, r) // no event stream: the Router polls
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, clusterDoc)
	}))
	defer gw.Close()
	c := newTestClient(t, gw.Listener.Addr().String())
	if err := c.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	r, err := c.current()
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"user:123": "partition-48", "test-key": "partition-49"} {
		if d, err := r.Locate(key); err != nil || d.Partition != want {
			t.Errorf("Locate(%q) = %+v, %v; want %s", key, d, err, want)
		}
	}
	owners, err := route(r.Router, "user:123")
	want := []owner{{"node-2", "10.1.0.2:9080"}, {"node-1", "10.1.0.1:9080"}, {"node-3", ""}}
	if err != nil || !slices.Equal(owners, want) {
		t.Fatalf("route(user:123) = %v, %v; want %v", owners, err, want)
	}
	if _, err := route(r.Router, "key-without-owner"); err == nil {
		t.Fatal("a key of a partition missing from the map must not route")
	}
	if got := c.kvOf("node-1"); got != "10.1.0.1:9080" {
		t.Fatalf("kvOf(node-1) = %q", got)
	}
	// The members' ClusterKit addresses are learnt as gateways to fall back on.
	c.mu.Lock()
	gateways := slices.Clone(c.gateways)
	c.mu.Unlock()
	if !slices.Contains(gateways, "10.1.0.3:8080") {
		t.Fatalf("gateways %v", gateways)
	}
}

func testOptions(id string) clusterkit.Options {
	o := clusterkit.DefaultOptions()
	o.NodeID, o.HTTPAddr = id, "127.0.0.1:0"
	o.Raft.HeartbeatTimeout, o.Raft.ElectionTimeout, o.Raft.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	o.RebalanceDelay = 10 * time.Millisecond
	o.HealthCheck = clusterkit.HealthCheckConfig{Disable: true}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

// startNode starts an in-process kv node on loopback and stops it with the test.
func startNode(t *testing.T, o clusterkit.Options) *Node {
	t.Helper()
	n, _ := startConfigNode(t, Config{ClusterKit: o})
	return n
}

// startConfigNode starts an in-process kv node with cfg (on loopback, with
// a short hand-off grace unless cfg says otherwise) and returns it with its
// stop, which runs once: now if the test calls it, else with the cleanup.
func startConfigNode(t *testing.T, cfg Config) (*Node, func()) {
	t.Helper()
	cfg.KVAddr = cmp.Or(cfg.KVAddr, "127.0.0.1:0")
	cfg.HandoffGrace = cmp.Or(cfg.HandoffGrace, 300*time.Millisecond)
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := sync.OnceFunc(func() {
		if err := n.Stop(context.Background()); err != nil {
			t.Errorf("stop %s: %v", cfg.ClusterKit.NodeID, err)
		}
	})
	t.Cleanup(stop)
	return n, stop
}

func gateway(n *Node) string {
	for _, m := range n.CK.GetCluster().Nodes {
		if m.ID == n.CK.GetMyNodeID() {
			return m.IP
		}
	}
	return ""
}

// TestRoutingMatchesClusterKit: the client's routing (httpgw/client's
// Router, from GET /cluster) agrees with the node's GET /locate and with
// ck.GetPartition on every key's partition and primary, with both hash
// algorithms, and finds the node's kv service.
func TestRoutingMatchesClusterKit(t *testing.T) {
	for name, hash := range map[string]clusterkit.KeyHash{"md5": clusterkit.KeyHashMD5, "xxh64": clusterkit.KeyHashXXH64} {
		t.Run(name, func(t *testing.T) {
			o := testOptions("node-1")
			o.PartitionCount, o.KeyHash = 64, hash
			n := startNode(t, o)
			c := newTestClient(t, gateway(n))
			ctx := t.Context()
			if err := c.refresh(ctx); err != nil {
				t.Fatal(err)
			}
			r, err := c.current()
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Cluster().HashConfig.Algorithm; got != name {
				t.Fatalf("hash_config.algorithm %q, want %q", got, name)
			}
			if hash == clusterkit.KeyHashMD5 {
				if d, _ := r.Locate("user:123"); d == nil || d.Partition != "partition-48" {
					t.Fatalf("user:123 -> %+v, want partition-48", d)
				}
			}
			gw, err := client.New(gateway(n))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				key := fmt.Sprintf("k-%d-%s", i, strings.Repeat("é", i%40))
				p, err := n.CK.GetPartition(key)
				if err != nil {
					t.Fatal(err)
				}
				owners, err := route(r.Router, key)
				d, _ := r.Locate(key)
				if err != nil || d.Partition != p.ID || owners[0].id != p.PrimaryNode {
					t.Fatalf("%q: client says %+v %v (%v), ClusterKit says %s (primary %s)", key, d, owners, err, p.ID, p.PrimaryNode)
				}
				if i%20 == 0 { // GET /locate for a sample: one request each
					l, err := gw.Locate(ctx, key)
					if err != nil || l.Partition != d.Partition || l.Primary == nil || l.Primary.ID != owners[0].id || l.Epoch != d.Epoch {
						t.Fatalf("%q: client says %s (primary %s), GET /locate says %+v (%v)", key, d.Partition, owners[0].id, l, err)
					}
				}
			}
			if got := c.kvOf("node-1"); got != n.KVAddr {
				t.Fatalf("kv address %q, want %q", got, n.KVAddr)
			}
		})
	}
}

// TestAPI: two in-process nodes (RF 2): the primary replicates before it
// answers; a non-primary refuses a write naming the primary; a replica
// refuses a write from an older table; deletes are replicated.
func TestAPI(t *testing.T) {
	o1 := testOptions("node-1")
	o1.PartitionCount, o1.ReplicationFactor = 16, 2
	n1 := startNode(t, o1)
	o2 := testOptions("node-2")
	o2.JoinAddrs = []string{gateway(n1)}
	n2 := startNode(t, o2)
	nodes := map[string]*Node{"node-1": n1, "node-2": n2}
	for _, n := range nodes {
		actortest.Eventually(t, 10*time.Second, n.CK.GetMyNodeID()+" to load its 16 partitions", func() bool {
			st, err := kvStatus(n.KVAddr)
			return err == nil && st.Ready && st.Held == 16
		})
	}
	ctx := context.Background()
	c := newTestClient(t, gateway(n1))
	if err := c.Put(ctx, "user:123", []byte("alice")); err != nil {
		t.Fatal(err)
	}
	p, _ := n1.CK.GetPartition("user:123")
	primary, replica := nodes[p.PrimaryNode], nodes[p.ReplicaNodes[0]]
	// Acknowledged means on the replica too.
	for _, n := range nodes {
		res, err := c.call(ctx, n.CK.GetMyNodeID(), n.KVAddr, http.MethodGet, "user:123", nil)
		if err != nil || res.status != http.StatusOK || string(res.body) != "alice" {
			t.Fatalf("%s: %+v %v", n.CK.GetMyNodeID(), res, err)
		}
	}

	// A write sent to the replica is refused with the primary's name.
	res, err := c.call(ctx, replica.CK.GetMyNodeID(), replica.KVAddr, http.MethodPut, "user:123", []byte("bob"))
	if err != nil || res.status != http.StatusMisdirectedRequest || res.apiErr.Code != "not_owner" ||
		res.apiErr.Primary != p.PrimaryNode || res.apiErr.PrimaryKV != primary.KVAddr {
		t.Fatalf("write to the replica: %+v %v", res, err)
	}

	// A replicated write from an older table is refused, and not applied:
	// its version is above every real one, so a merge would let it win.
	body := fmt.Sprintf(`{"partition": %q, "epoch": %d, "key": "user:123", "entry": {"value": "ZXZl", "version": %d}}`, p.ID, p.Epoch-1, uint64(1)<<63)
	resp, err := probe.Post("http://"+replica.KVAddr+"/internal/replicate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("stale replicate: %s", resp.Status)
	}
	res, err = c.call(ctx, replica.CK.GetMyNodeID(), replica.KVAddr, http.MethodGet, "user:123", nil)
	if err != nil || res.status != http.StatusOK || string(res.body) != "alice" {
		t.Fatalf("the replica applied a refused stale write: %+v %v", res, err)
	}

	// Delete goes everywhere; a missing key is 404 on every owner.
	if err := c.Delete(ctx, "user:123"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "user:123"); err != ErrNotFound {
		t.Fatalf("Get after Delete: %v", err)
	}
	for _, n := range nodes {
		res, err := c.call(ctx, n.CK.GetMyNodeID(), n.KVAddr, http.MethodGet, "user:123", nil)
		if err != nil || res.status != http.StatusNotFound {
			t.Fatalf("%s after delete: %+v %v", n.CK.GetMyNodeID(), res, err)
		}
	}
}

// TestSendReplicaDownOrSilent: only a replica that refuses the connection
// is skipped as down; one that accepts the request and does not answer in
// time fails the write, since it may miss an acknowledged write for good.
func TestSendReplicaDownOrSilent(t *testing.T) {
	s := &server{st: &store{client: &http.Client{Timeout: 200 * time.Millisecond}}}
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // answers only once the test is over
	}))
	defer silent.Close()
	defer close(release) // before Close, which waits for the handler
	refused, down := s.sendReplica(context.Background(), silent.Listener.Addr().String(), []byte("{}"))
	if refused == nil || down != nil {
		t.Fatalf("silent replica: refused %v, down %v; want a refusal", refused, down)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	addr := closed.Listener.Addr().String()
	closed.Close()
	refused, down = s.sendReplica(context.Background(), addr, []byte("{}"))
	if refused != nil || down == nil {
		t.Fatalf("closed port: refused %v, down %v; want down", refused, down)
	}
}
