package clusterkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
)

// TestRejoinAfterRestart: a member restarted on its data directory yields
// exactly one NodeRejoin, seen on every node including itself, with the real
// offline duration, then PartitionChange events for every partition it holds.
func TestRejoinAfterRestart(t *testing.T) {
	leakCheck(t)
	dirs := map[int]string{1: t.TempDir(), 2: t.TempDir(), 3: t.TempDir()}
	probes := map[int]*probe{}
	mod := func(i int, o *Options) { o.DataDir = dirs[i]; o.PartitionCount = 32; o.ReplicationFactor = 2 }
	nodes := startCluster(t, 3, mod, func(i int, ck *ClusterKit) {
		if i < 3 {
			probes[i] = subscribeProbe(t, ck, WithKinds(EventNodeRejoin, EventPartitionChange, EventRebalanceComplete))
		}
	})
	victim := nodes[2] // a follower: node-1 bootstrapped and leads
	addr := victim.advertise
	held := map[string]bool{}
	for _, p := range victim.fsm.View().Partitions() {
		if p.PrimaryNode == "node-3" || slices.Contains(p.ReplicaNodes, "node-3") {
			held[p.ID] = true
		}
	}
	for _, p := range probes { // drain the formation
		collect(t, p, func(m any) bool {
			rc, ok := m.(*messages.RebalanceComplete)
			return ok && slices.Contains(rc.GetNodesAffected(), "node-3")
		})
	}
	if err := victim.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(700 * time.Millisecond) // a measurable downtime

	o := clusterOptions(t, 3, nodes[0].advertise)
	mod(3, &o)
	o.HTTPAddr = addr // same address, as a restarted process would have
	var self *probe
	restarted := startNode(t, o, func(ck *ClusterKit) {
		self = subscribeProbe(t, ck, WithKinds(EventNodeRejoin, EventPartitionChange, EventRebalanceComplete))
	})
	offline := time.Since(down)
	probes[3] = self
	for i, p := range probes {
		evs := collect(t, p, func(m any) bool {
			rc, ok := m.(*messages.RebalanceComplete)
			return ok && rc.GetTrigger() == "node_rejoin"
		})
		// The planned stop handed node-3's primaries over first.
		for len(evs) > 0 {
			if pc, ok := evs[0].(*messages.PartitionChange); !ok || pc.GetChangeReason() != "planned_stop" {
				break
			}
			evs = evs[1:]
		}
		rj, ok := evs[0].(*messages.NodeRejoin)
		if !ok {
			t.Fatalf("node-%d: first event after the restart is %T %v", i, evs[0], evs[0])
		}
		got := time.Duration(rj.GetOfflineDurationNanos())
		if rj.GetNode().GetId() != "node-3" || got < 700*time.Millisecond || got > offline+time.Second {
			t.Fatalf("node-%d: NodeRejoin %v: offline %v, real downtime %v", i, rj, got, offline)
		}
		if rj.GetLastSeenUnixNano() == 0 || time.Unix(0, rj.GetLastSeenUnixNano()).After(down.Add(time.Second)) {
			t.Fatalf("node-%d: LastSeenAt %v, stopped at %v", i, time.Unix(0, rj.GetLastSeenUnixNano()), down)
		}
		before := map[string]bool{}
		for _, id := range rj.GetPartitionsBeforeLeave() {
			before[id] = true
		}
		if len(before) != len(held) {
			t.Fatalf("node-%d: PartitionsBeforeLeave has %d partitions, node-3 held %d", i, len(before), len(held))
		}
		reload := map[string]bool{}
		for _, m := range evs[1:] {
			if pc, ok := m.(*messages.PartitionChange); ok && pc.GetCopyToNode().GetId() == "node-3" {
				reload[pc.GetPartitionId()] = true
				for _, f := range pc.GetCopyFromNodes() {
					if f.GetId() == "node-3" {
						t.Fatal("node-3 told to copy from itself")
					}
				}
			}
		}
		now := restarted.fsm.View()
		for _, p := range now.Partitions() {
			if (p.PrimaryNode == "node-3" || slices.Contains(p.ReplicaNodes, "node-3")) && !reload[p.ID] {
				t.Fatalf("node-%d: no PartitionChange for %s, which node-3 holds and must reload", i, p.ID)
			}
		}
		for _, m := range evs[1:] {
			if _, again := m.(*messages.NodeRejoin); again {
				t.Fatalf("node-%d: a second NodeRejoin", i)
			}
		}
	}
}

// TestRemovedWhileDownRejoinsWithoutJoinAddr: a member removed while it was
// down is in nobody's Raft configuration any more, so nobody contacts it; a
// restart on its data directory without a join address still brings it back,
// through the peers its persisted configuration names.
func TestRemovedWhileDownRejoinsWithoutJoinAddr(t *testing.T) {
	leakCheck(t)
	dirs := map[int]string{1: t.TempDir(), 2: t.TempDir(), 3: t.TempDir()}
	nodes := startCluster(t, 3, func(i int, o *Options) { o.DataDir = dirs[i]; o.PartitionCount = 16 }, nil)
	// The bootstrap node, which leads: the one usually started without a
	// join address, and whose successor it has never heard of.
	victim := nodes[0]
	addr := victim.advertise
	if err := victim.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	survivors := nodes[1:]
	leader := leaderOf(t, survivors)
	if err := leader.RemoveNode(context.Background(), "node-1"); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, survivors, 2)
	waitFor(t, 10*time.Second, "node-1 out of raft's configuration", func() bool {
		f := leader.raft.GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == 2
	})

	o := clusterOptions(t, 1, "") // no join address
	o.DataDir, o.HTTPAddr = dirs[1], addr
	back := startNode(t, o)
	waitConverged(t, append(survivors, back), 3)
}

// TestBadJoinsAreRefused: join requests that must not be admitted are
// refused with a clear error and a code, for every refusal code, and leave
// the committed state and Raft's configuration byte-for-byte unchanged:
// every validation runs before Raft's configuration is touched, and the one
// check that needs the joiner in the configuration (that it takes the log)
// takes it out again.
func TestBadJoinsAreRefused(t *testing.T) {
	leakCheck(t)
	const token = "s3cret-token"
	nodes := startCluster(t, 3, func(i int, o *Options) { o.AuthToken = token }, nil)
	leader, follower := nodes[0], nodes[1]
	// A departed life, for the "removed" refusal.
	removed := nodes[2]
	removedNonce := removed.life.Nonce()
	if err := leader.RemoveNode(context.Background(), removed.GetMyNodeID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node-3 out of Raft's configuration", func() bool { return len(leader.raftStatus().Voters) == 2 && leader.raftStatus().NumPeers == 1 })
	waitDelivered(t, leader)

	state := func() (snapshot []byte, servers string) {
		b, err := leader.fsm.EncodeSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		f := leader.raft.GetConfiguration()
		if f.Error() != nil {
			t.Fatal(f.Error())
		}
		return b, fmt.Sprint(f.Configuration().Servers)
	}
	beforeState, beforeServers := state()
	unchanged := func(what string) {
		t.Helper()
		afterState, afterServers := state()
		if !bytes.Equal(afterState, beforeState) || afterServers != beforeServers {
			t.Fatalf("%s changed the state or the configuration:\n  servers before %s\n  servers after  %s\n  state equal: %v",
				what, beforeServers, afterServers, bytes.Equal(afterState, beforeState))
		}
	}
	client := rpc.NewClient(func(ctx context.Context, _, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}, rpc.StaticToken(token), nil)
	defer client.Close()
	member := func(id, addr string) *messages.JoinRequest {
		return &messages.JoinRequest{Member: &messages.Member{Id: id, Address: addr, Nonce: 7}}
	}
	services := map[string]string{}
	for i := range 65 {
		services[fmt.Sprintf("svc-%d", i)] = "127.0.0.1:1"
	}
	// Processes that answer pings as a node but run no Raft.
	ghost := fakeNode(t, "node-9", 9)
	posingAsNode2 := fakeNode(t, "node-2", 5)
	otherCluster := "0123456789abcdef0123456789abcdef"
	cases := []struct {
		name string
		req  *messages.JoinRequest
		code string
	}{
		{"empty address", member("node-9", ""), actors.JoinInvalidMember},
		{"malformed address", member("node-9", "not-an-address"), actors.JoinInvalidMember},
		{"malformed id", member("bad id", "127.0.0.1:1"), actors.JoinInvalidMember},
		{"no member", &messages.JoinRequest{}, actors.JoinInvalidMember},
		{"no nonce", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: "127.0.0.1:1"}}, actors.JoinInvalidMember},
		{"65 services", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: ghost, Nonce: 9, Services: services}}, actors.JoinInvalidMember},
		{"empty service name", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: ghost, Nonce: 9, Services: map[string]string{"": ":1"}}}, actors.JoinInvalidMember},
		{"unreachable address", member("node-9", freeAddr(t)), actors.JoinUnreachable},
		{"address of another node", member("node-9", follower.advertise), actors.JoinImpersonation},
		{"claims an existing node's id", member("node-2", leader.advertise), actors.JoinImpersonation},
		{"a second process of a running node", &messages.JoinRequest{Member: &messages.Member{Id: "node-2", Address: posingAsNode2, Nonce: 5}}, actors.JoinDuplicateNode},
		{"a removed life", &messages.JoinRequest{Member: &messages.Member{Id: removed.GetMyNodeID(), Address: removed.advertise, Nonce: removedNonce}}, actors.JoinRemoved},
		{"config mismatch", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: ghost, Nonce: 9},
			Expect: &messages.ClusterConfig{PartitionCount: 32}}, actors.JoinConfigMismatch},
		{"cluster name mismatch", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: ghost, Nonce: 9},
			Expect: &messages.ClusterConfig{ClusterName: "another-cluster"}}, actors.JoinConfigMismatch},
		{"key hash mismatch", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: ghost, Nonce: 9},
			Expect: &messages.ClusterConfig{KeyHash: messages.KeyHash_KEY_HASH_XXH64}, ExpectKeyHash: true}, actors.JoinConfigMismatch},
		{"another cluster's data directory", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: ghost, Nonce: 9},
			Expect: &messages.ClusterConfig{ClusterId: otherCluster}}, actors.JoinClusterMismatch},
		{"answers pings but takes no log", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: ghost, Nonce: 9}}, actors.JoinNoLog},
		{"takes no log, asking again", &messages.JoinRequest{Member: &messages.Member{Id: "node-9", Address: ghost, Nonce: 9}}, actors.JoinNoLog},
	}
	for _, c := range cases {
		// Through the follower: it forwards to the leader.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := client.Join(ctx, follower.advertise, c.req)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if resp.GetAccepted() || resp.GetCode() != c.code || resp.GetError() == "" {
			t.Errorf("%s: accepted=%v code=%q error=%q, want code %q", c.name, resp.GetAccepted(), resp.GetCode(), resp.GetError(), c.code)
		}
		if c.code == actors.JoinClusterMismatch && (!strings.Contains(resp.GetError(), otherCluster) || !strings.Contains(resp.GetError(), leader.ClusterID())) {
			t.Errorf("%s: the refusal does not name both cluster IDs: %s", c.name, resp.GetError())
		}
		unchanged(c.name)
	}

	// Without the token: 401.
	anon := rpc.NewClient(func(ctx context.Context, _, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}, nil, nil)
	defer anon.Close()
	_, err := anon.Join(context.Background(), leader.advertise, member("node-9", "127.0.0.1:1"))
	var remote *rpc.RemoteError
	if !errors.As(err, &remote) || remote.Status != 401 {
		t.Fatalf("join without the token: %v", err)
	}
	unchanged("a join without the token")

	// Real nodes refused: wrong token, mismatched configuration. Start fails
	// fast with ErrJoinRefused instead of retrying until its timeout.
	for name, mod := range map[string]func(*Options){
		"wrong token":        func(o *Options) { o.AuthToken = "wrong" },
		"partition mismatch": func(o *Options) { o.AuthToken = token; o.PartitionCount = 32 },
		// Refused before admission: found only afterwards, the joiner would
		// stop as a dead voter.
		"key hash mismatch":     func(o *Options) { o.AuthToken = token; o.KeyHash = KeyHashXXH64 },
		"cluster name mismatch": func(o *Options) { o.AuthToken = token; o.ClusterName = "another-cluster" },
	} {
		o := clusterOptions(t, 9, leader.advertise)
		mod(&o)
		ck, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = ck.Start(context.Background())
		if !errors.Is(err, ErrJoinRefused) || time.Since(start) > o.StartTimeout/2 {
			t.Errorf("%s: Start = %v after %v", name, err, time.Since(start))
		}
		want := map[string]string{
			"partition mismatch":    "PartitionCount is 32 but the cluster has 64",
			"key hash mismatch":     "KeyHash is KEY_HASH_XXH64 but the cluster uses KEY_HASH_MD5",
			"cluster name mismatch": `ClusterName is "another-cluster"`,
		}[name]
		if err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: unclear error: %v", name, err)
		}
		unchanged(name)
	}
}

// fakeNode serves the internal ping as node id with nonce, and nothing
// else (no Raft): a process that only looks alive. It returns its address.
func fakeNode(t *testing.T, id string, nonce uint64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != rpc.PathPing {
			http.NotFound(w, r)
			return
		}
		data, _ := proto.Marshal(&messages.PingResponse{NodeId: id, Nonce: nonce})
		w.Header().Set("Content-Type", rpc.ContentType)
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}
