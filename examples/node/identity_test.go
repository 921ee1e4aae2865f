package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
)

// Cluster identity and membership safety (issue 15), with real processes:
// a data directory of another cluster, a wiped data directory, a process
// that answers pings but does not take the Raft log, a paused leader.

// transferLeadership asks addr to hand leadership over (to target, or to
// any voter when target is empty).
func transferLeadership(t *testing.T, addr, target string) {
	t.Helper()
	var body io.Reader
	if target != "" {
		body = strings.NewReader(`{"target_id":"` + target + `"}`)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/leadership/transfer", body)
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /leadership/transfer on %s: %d", addr, resp.StatusCode)
	}
}

// leaderOtherThan returns the leader of nodes once it is not avoid,
// handing leadership to another node when avoid holds it.
func leaderOtherThan(t *testing.T, nodes []*lnode, avoid string) *lnode {
	t.Helper()
	l := leaderAmong(t, nodes)
	if l.id != avoid {
		return l
	}
	for _, n := range nodes {
		if n.id != avoid {
			transferLeadership(t, l.addr, n.id)
			break
		}
	}
	if l = leaderAmong(t, nodes); l.id == avoid {
		t.Fatalf("leadership stayed on %s after a transfer away from it", avoid)
	}
	return l
}

// TestForeignDataDir: two clusters A and B, same name, same node IDs. A
// process started on B's node-3 data directory with -join at A exits non-zero
// naming both cluster IDs. The same data directory started at the address of
// A's killed node-3, without -join, so that A's leader keeps dialing it: the
// Raft handshake refuses A's leader (logged once on each side), A's term and
// membership do not move, and B is undisturbed.
func TestForeignDataDir(t *testing.T) {
	ids := []string{"node-1", "node-2", "node-3"}
	// A long grace: A's node-3 stays a member after it is killed, and in
	// Raft's configuration (demoted to non-voter), so A's leader keeps
	// dialing its address.
	// Raft timeouts long enough that a busy machine causes no election of
	// its own: the test asserts that A's term does not move.
	args := identityArgs("-health-removal-grace", "30s", "-raft-heartbeat-timeout", "1s", "-raft-election-timeout", "1s")
	dirsA := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	dirsB := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	A := form(t, ids, dirsA, args...)
	B := form(t, ids, dirsB, args...)

	idA, idB := clusterIDOf(t, A[0].addr), clusterIDOf(t, B[0].addr)
	for _, id := range []string{idA, idB} {
		if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("cluster ID %q is not 128 bits in hex", id)
		}
	}
	if idA == idB {
		t.Fatalf("two bootstraps minted the same cluster ID %s", idA)
	}
	for _, n := range A {
		if got := clusterIDOf(t, n.addr); got != idA {
			t.Fatalf("A's %s says cluster %s, A is %s", n.id, got, idA)
		}
	}
	for _, n := range B {
		if got := clusterIDOf(t, n.addr); got != idB {
			t.Fatalf("B's %s says cluster %s, B is %s", n.id, got, idB)
		}
	}
	// B's term ahead of A's: without the handshake, B's node-3 answering
	// A's leader with its higher term would depose A's leader.
	// node-3 of each cluster is killed below: its leadership would move
	// that cluster's term, which the test asserts does not move.
	leaderA := leaderOtherThan(t, A, "node-3")
	transferLeadership(t, B[0].addr, "")
	leaderAmong(t, B)
	transferLeadership(t, B[0].addr, "")
	leaderAmong(t, B)
	leaderOtherThan(t, B, "node-3")
	termsA, termsB := terms(t, A), terms(t, B)
	for _, n := range B {
		for _, a := range A {
			if termsB[n.id] <= termsA[a.id] {
				t.Fatalf("B's terms %v are not all ahead of A's %v", termsB, termsA)
			}
		}
	}
	before, err := membersOf(A[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	var a3 member
	for _, m := range before {
		if m.ID == "node-3" {
			a3 = m
		}
	}

	// 1. B's node-3 data directory, -join pointing at A: refused at start.
	B[2].kill9(t)
	code, stderr, took := runToExit(t, 30*time.Second, append([]string{"-id", "node-3", "-http", freeAddr(t)},
		append(slices.Clone(args), "-data-dir", dirsB[2], "-join", A[0].addr)...)...)
	t.Logf("B's node-3 data directory with -join at A: exit %d after %v: %s", code, took.Round(time.Millisecond), strings.TrimSpace(stderr))
	if code == 0 || took > 10*time.Second {
		t.Fatalf("exit %d after %v, want a non-zero exit within a few seconds; stderr:\n%s", code, took, tail(stderr, 30))
	}
	if !strings.Contains(stderr, "cluster ID mismatch") || !strings.Contains(stderr, idA) || !strings.Contains(stderr, idB) {
		t.Fatalf("stderr does not say \"cluster ID mismatch\" naming A (%s) and B (%s):\n%s", idA, idB, tail(stderr, 30))
	}

	// 2. The same data directory at the address of A's killed node-3,
	// without -join: A's leader keeps dialing that address.
	A[2].kill9(t)
	foreign := spawn(t, "node-3", A[2].addr, append(slices.Clone(args), "-data-dir", dirsB[2])...)
	const refusedIn, refusedOut = "raft connection refused", "a peer refused this node's raft connection"
	eventually(t, 15*time.Second, "the foreign process to refuse A's leader at the Raft handshake", func() bool {
		return len(foreign.log.lines(refusedIn, "cluster_mismatch")) > 0
	})
	// A's leader dials it; a follower whose heartbeat timed out on a busy
	// machine pre-votes and dials it too: either logs the refusal.
	eventually(t, 15*time.Second, "A to log the refusal", func() bool {
		return len(A[0].log.lines(refusedOut, "cluster_mismatch"))+len(A[1].log.lines(refusedOut, "cluster_mismatch")) > 0
	})
	// Watch for a while: A's leader keeps trying (heartbeats every few
	// tens of milliseconds, with backoff), nothing may change.
	watchUntil := time.Now().Add(3 * time.Second)
	for time.Now().Before(watchUntil) {
		for _, n := range A[:2] {
			checkA(t, n, idA, a3)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Logged once per dialer, however often it dials: the leader, and a
	// follower that pre-voted after a heartbeat timeout on a busy machine.
	in := foreign.log.lines(refusedIn)
	for _, n := range A[:2] {
		if c := len(foreign.log.lines(refusedIn, "peer="+n.id+" ")); c > 1 {
			t.Fatalf("the foreign process logged %d refusals of %s, want at most 1:\n%s", c, n.id, strings.Join(in, "\n"))
		}
	}
	if len(in) == 0 {
		t.Fatal("the foreign process logged no refusal")
	}
	var out []string
	for _, n := range A[:2] {
		lines := n.log.lines(refusedOut)
		if len(lines) > 1 {
			t.Fatalf("A's %s logged %d refusals of its Raft connection, want at most 1:\n%s", n.id, len(lines), strings.Join(lines, "\n"))
		}
		out = append(out, lines...)
	}
	if len(out) == 0 {
		t.Fatal("A logged no refusal of its Raft connection")
	}
	if l := in[0]; !strings.Contains(l, idA) || !strings.Contains(l, idB) {
		t.Errorf("the refusal does not name both clusters: %s", l)
	}
	after := terms(t, A[:2])
	for _, n := range A[:2] {
		if after[n.id] != termsA[n.id] {
			t.Fatalf("A's term moved: %v, was %v", after, termsA)
		}
	}
	if l := leaderAmong(t, A[:2]); l != leaderA {
		t.Fatalf("A's leader changed from %s to %s", leaderA.id, l.id)
	}
	for _, n := range A[:2] {
		for _, e := range n.allEvents() {
			if (e.Kind == "node_join" || e.Kind == "node_rejoin") && e.nodeID() == "node-3" && e.index() > a3.Incarnation {
				t.Fatalf("A's %s admitted node-3 again: %v", n.id, e)
			}
		}
	}
	if got := clusterIDOf(t, foreign.addr); got != idB {
		t.Fatalf("the process on B's data directory says cluster %s, want B's %s", got, idB)
	}

	// B is undisturbed: same term on its survivors, its own cluster ID, and
	// no member at an address of A's live nodes.
	afterB := terms(t, B[:2])
	for _, n := range B[:2] {
		if afterB[n.id] != termsB[n.id] {
			t.Fatalf("B's term moved: %v, was %v", afterB, termsB)
		}
		if got := clusterIDOf(t, n.addr); got != idB {
			t.Fatalf("B's %s says cluster %s", n.id, got)
		}
		ms, err := membersOf(n.addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if !slices.Contains(ids, m.ID) || m.IP == A[0].addr || m.IP == A[1].addr {
				t.Fatalf("B's %s lists a node of A: %+v", n.id, m)
			}
		}
		s, err := consensus(n.addr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s.Raw["latest_configuration"], A[0].addr) || strings.Contains(s.Raw["latest_configuration"], A[1].addr) {
			t.Fatalf("B's %s has A's nodes in its Raft configuration: %s", n.id, s.Raw["latest_configuration"])
		}
	}
	select {
	case <-foreign.ready:
		t.Logf("the process on B's data directory at A's old address rejoined B")
	default:
		t.Logf("the process on B's data directory at A's old address is not ready (in B)")
	}
}

func parseU(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

// checkA fails the test if A's node n lists a foreign node or changed its
// identity: its cluster ID stays A's, node-3 (if still listed) is A's node-3
// (same address and incarnation), and Raft's configuration holds only A's
// IDs.
func checkA(t *testing.T, n *lnode, idA string, a3 member) {
	t.Helper()
	if got := clusterIDOf(t, n.addr); got != idA {
		t.Fatalf("A's %s now says cluster %s, A is %s", n.id, got, idA)
	}
	ms, err := membersOf(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		switch {
		case m.ID == "node-3" && (m.Incarnation != a3.Incarnation || m.IP != a3.IP):
			t.Fatalf("A's %s lists node-3 as %+v, A's node-3 was %+v", n.id, m, a3)
		case m.ID != "node-1" && m.ID != "node-2" && m.ID != "node-3":
			t.Fatalf("A's %s lists a foreign node %+v", n.id, m)
		}
	}
	s, err := consensus(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append(slices.Clone(s.Voters), s.NonVoters...) {
		if id != "node-1" && id != "node-2" && id != "node-3" {
			t.Fatalf("A's %s has %s in its Raft configuration (voters %v, non-voters %v)", n.id, id, s.Voters, s.NonVoters)
		}
	}
}

// TestWipedDataDir: node-3 killed with kill -9 and restarted as a new life,
// with its data directory deleted or without one: the cluster admits it as a
// rejoin (one NodeRejoin on every node, no second NodeJoin), it delivers no
// event from before its admission (its first event is its own NodeRejoin),
// it becomes ready and it is never refused.
func TestWipedDataDir(t *testing.T) {
	t.Run("restart before the removal", func(t *testing.T) { wipedRestart(t, false, false) })
	t.Run("restart after the removal", func(t *testing.T) { wipedRestart(t, true, false) })
	t.Run("restart in memory", func(t *testing.T) { wipedRestart(t, false, true) })
}

func wipedRestart(t *testing.T, afterRemoval, inMemory bool) {
	ids := []string{"node-1", "node-2", "node-3"}
	grace := "30s" // a quick restart, not a removal
	if afterRemoval {
		grace = "300ms"
	}
	args := identityArgs("-health-removal-grace", grace)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	nodes := form(t, ids, dirs, args...)
	// Some history: a custom-data write every node delivers.
	if code, body, err := put(nodes[0].addr, "", "history", "old"); err != nil || code != 200 {
		t.Fatalf("PUT: %d %s %v", code, body, err)
	}
	for _, n := range nodes {
		eventually(t, 10*time.Second, n.id+" to deliver the custom-data event", func() bool {
			return len(n.events("custom_data_change")) == 1
		})
	}
	old := incarnationOf(t, nodes[0].addr, "node-3")

	victim := nodes[2]
	victim.kill9(t)
	killedAt := time.Now()
	survivors := nodes[:2]
	if afterRemoval {
		waitMembersOf(t, survivors, "node-1", "node-2")
		for _, n := range survivors {
			eventually(t, 10*time.Second, n.id+"'s NodeLeave for node-3", func() bool { return len(n.about("node_leave", "node-3")) == 1 })
		}
	}
	restartArgs := append(slices.Clone(args), "-join", nodes[0].addr)
	if !inMemory {
		if err := os.RemoveAll(dirs[2]); err != nil {
			t.Fatal(err)
		}
		restartArgs = append(restartArgs, "-data-dir", dirs[2])
	}
	again := start(t, "node-3", victim.addr, restartArgs...)
	all := []*lnode{nodes[0], nodes[1], again}
	waitMembersOf(t, all, ids...)
	for _, n := range all {
		eventually(t, 10*time.Second, n.id+"'s NodeRejoin for node-3", func() bool { return len(n.about("node_rejoin", "node-3")) > 0 })
	}
	eventually(t, 10*time.Second, "node-3 ready", func() bool {
		code, _, err := readyOf(again.addr)
		return err == nil && code == 200
	})
	waitVoters(t, all, ids...)
	time.Sleep(time.Second) // room for a late duplicate
	inc := incarnationOf(t, nodes[0].addr, "node-3")
	if inc <= old {
		t.Fatalf("node-3's incarnation is %d after the restart, was %d", inc, old)
	}
	for _, n := range all {
		if got := incarnationOf(t, n.addr, "node-3"); got != inc {
			t.Fatalf("%s says node-3 is incarnation %d, node-1 says %d", n.id, got, inc)
		}
		rejoins := n.about("node_rejoin", "node-3")
		if len(rejoins) != 1 {
			t.Fatalf("%s printed %d NodeRejoin for node-3, want 1: %v", n.id, len(rejoins), rejoins)
		}
		if rejoins[0].index() != inc {
			t.Errorf("%s: NodeRejoin at index %d, node-3's incarnation (its admission) is %d", n.id, rejoins[0].index(), inc)
		}
		checkOffline(t, n.id, rejoins[0], killedAt, afterRemoval)
	}
	for _, n := range survivors {
		if joins := n.about("node_join", "node-3"); len(joins) != 1 {
			t.Fatalf("%s printed %d NodeJoin for node-3, want only the first one: %v", n.id, len(joins), joins)
		}
		if afterRemoval {
			if leaves := n.about("node_leave", "node-3"); len(leaves) != 1 {
				t.Fatalf("%s printed %d NodeLeave for node-3: %v", n.id, len(leaves), leaves)
			}
		}
	}
	// The new life delivers nothing from before its admission.
	evs := again.allEvents()
	if len(evs) == 0 || evs[0].Kind != "node_rejoin" || evs[0].nodeID() != "node-3" {
		t.Fatalf("node-3's first event is not its own NodeRejoin: %v", firstEvents(evs, 5))
	}
	for _, e := range evs {
		if e.index() < inc || e.Kind == "node_join" || e.Kind == "custom_data_change" {
			t.Fatalf("node-3 (admitted at %d) delivered history: %v (first events: %v)", inc, e, firstEvents(evs, 5))
		}
	}
	// Never refused.
	for _, n := range all {
		for _, what := range []string{"join refused", "refused this node", "raft connection refused", "stale_incarnation", "this process is stale"} {
			if lines := n.log.lines(what); len(lines) > 0 {
				t.Fatalf("%s logged %q:\n%s", n.id, what, strings.Join(lines, "\n"))
			}
		}
	}
	if code, body, err := readyOf(again.addr); err != nil || code != 200 {
		t.Fatalf("node-3 GET /ready: %d %+v %v", code, body, err)
	}
}

// checkOffline checks NodeRejoin's LastSeenAt and OfflineDuration ("the real
// ones", DESIGN §5) for a node killed at killedAt. After a removal nothing
// could have seen the node between the kill and its restart (it was down
// for a whole detection budget), so its last sighting precedes the kill.
func checkOffline(t *testing.T, who string, rejoin event, killedAt time.Time, removed bool) {
	t.Helper()
	r := rejoin.NodeRejoin
	seen, offline, at := r.LastSeen.UnixNano(), int64(msDuration(r.OfflineDurationMs)), rejoin.Time.UnixNano()
	// offline_duration_ms is a float: allow its rounding, a microsecond.
	if seen <= 0 || offline <= 0 || r.LastSeen.IsZero() || max(seen+offline-at, at-seen-offline) > int64(time.Microsecond) {
		t.Errorf("%s: NodeRejoin lastSeen %d, offline %d, at %d: %v", who, seen, offline, at, rejoin)
		return
	}
	if removed && seen > killedAt.UnixNano() {
		t.Errorf("%s: NodeRejoin says node-3 was last seen %v after it was killed (offline %v, down for %v in fact): %v",
			who, time.Duration(seen-killedAt.UnixNano()), time.Duration(offline), time.Unix(0, at).Sub(killedAt).Round(time.Millisecond), rejoin)
	}
}

func parseI(v any) int64 {
	i, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
	return i
}

func incarnationOf(t *testing.T, addr, id string) uint64 {
	t.Helper()
	ms, err := membersOf(addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == id {
			return m.Incarnation
		}
	}
	t.Fatalf("%s does not list %s", addr, id)
	return 0
}

// outline lists the first n events as Kind(node)@index.
func outline(evs []event, n int) string {
	var out []string
	for _, e := range evs[:min(n, len(evs))] {
		s := e.Kind
		if id := e.nodeID(); id != "" {
			s += "(" + id + ")"
		}
		out = append(out, fmt.Sprintf("%s@%d", s, e.index()))
	}
	if len(evs) > n {
		out = append(out, fmt.Sprintf("… %d more", len(evs)-n))
	}
	return strings.Join(out, " ")
}

func firstEvents(evs []event, n int) []string {
	var out []string
	for _, e := range evs[:min(n, len(evs))] {
		out = append(out, e.String())
	}
	return out
}

// ghost answers the internal ping as node id with the nonce it joins with,
// but runs no Raft: it looks alive and never takes the log.
type ghost struct {
	id, addr  string
	nonce     uint64
	pings     atomic.Int64
	waitPings atomic.Int64 // pings asking for a Raft index
	other     atomic.Int64 // anything else it was sent
	// claimLog: answer a ping that asks for a Raft index as if its log had
	// reached it (a liar); otherwise it reports an empty log.
	claimLog bool
}

func startGhost(t *testing.T, id string, claimLog bool) *ghost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &ghost{id: id, addr: ln.Addr().String(), nonce: rand.Uint64() | 1, claimLog: claimLog}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+rpc.PathPing, func(w http.ResponseWriter, r *http.Request) {
		req := &messages.PingRequest{}
		_ = rpc.Decode(r, req)
		g.pings.Add(1)
		if req.GetWaitIndex() > 0 {
			g.waitPings.Add(1)
		}
		pong := &messages.PingResponse{NodeId: g.id, Nonce: g.nonce,
			ClusterName: clusterkit.DefaultOptions().ClusterName, LastContactNanos: -1}
		if g.claimLog {
			pong.LastIndex, pong.RaftState = req.GetWaitIndex(), "Follower"
		}
		data, _ := proto.Marshal(pong)
		w.Header().Set("Content-Type", rpc.ContentType)
		_, _ = w.Write(data)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.other.Add(1)
		http.NotFound(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return g
}

// join asks via to admit the ghost, as a joining node does.
func (g *ghost) join(via, token string) (*messages.JoinResponse, error) {
	c := rpc.NewClient(func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}, rpc.StaticToken(token), nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	return c.Join(ctx, via, &messages.JoinRequest{Member: &messages.Member{Id: g.id, Name: g.id, Address: g.addr, Nonce: g.nonce}})
}

// TestGhostMember: a process that answers pings (with the right ID and
// nonce) but runs no Raft asks to join a 3-node cluster with a token: it is
// refused (no_log), never listed as a member or a voter, and Raft's
// configuration ends as it was; so the cluster keeps its quorum when one real
// node is killed (a follower, or the leader).
//
// A ghost that lies about its log (it answers admission's ping with the
// index asked for) may be admitted, but only as a non-voter: Raft's
// heartbeats to it fail, so it is never promoted, and failure detection
// removes it.
func TestGhostMember(t *testing.T) {
	t.Run("kill a follower", func(t *testing.T) { ghostScenario(t, false, false) })
	t.Run("kill the leader", func(t *testing.T) { ghostScenario(t, true, false) })
	t.Run("a ghost that claims the log", func(t *testing.T) { ghostScenario(t, false, true) })
}

func ghostScenario(t *testing.T, killLeader, liar bool) {
	const token = "ghost-test-token"
	ids := []string{"node-1", "node-2", "node-3"}
	nodes := form(t, ids, nil, identityArgs("-auth-token", token)...)
	leader := leaderAmong(t, nodes)
	var followers []*lnode
	for _, n := range nodes {
		if n != leader {
			followers = append(followers, n)
		}
	}
	g := startGhost(t, "ghost-1", liar)

	// Watch every node while the ghost asks: it must never be a voter, nor
	// a member unless it lied its way in.
	var (
		mu        sync.Mutex
		sightings []string
		stop      = make(chan struct{})
		watched   = make(chan struct{})
	)
	go func() {
		defer close(watched)
		for {
			for _, n := range nodes {
				if ms, err := membersOf(n.addr); err == nil && !liar && slices.Contains(memberIDs(ms), g.id) {
					mu.Lock()
					sightings = append(sightings, fmt.Sprintf("%s lists %s as a member: %+v", n.id, g.id, ms))
					mu.Unlock()
				}
				if s, err := consensus(n.addr); err == nil && slices.Contains(s.Voters, g.id) {
					mu.Lock()
					sightings = append(sightings, fmt.Sprintf("%s has %s as a Raft voter: %v", n.id, g.id, s.Voters))
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// Through a follower (forwarded to the leader), then the leader itself.
	for _, via := range []*lnode{followers[0], leader} {
		if liar {
			resp, err := g.join(via.addr, token)
			t.Logf("the liar's join via %s: %v %v", via.id, resp, err)
			break
		}
		began := time.Now()
		resp, err := g.join(via.addr, token)
		if err != nil {
			t.Fatalf("join via %s: %v", via.id, err)
		}
		t.Logf("join via %s: %v after %v", via.id, resp, time.Since(began).Round(time.Millisecond))
		if resp.GetAccepted() || resp.GetCode() != "no_log" {
			t.Fatalf("join via %s: accepted %v code %q (%s), want refused with no_log", via.id, resp.GetAccepted(), resp.GetCode(), resp.GetError())
		}
	}
	if g.pings.Load() == 0 {
		t.Fatalf("admission never pinged the ghost")
	}
	if liar {
		// Admitted or not, it must be out (removed) soon, with Raft's
		// configuration as it was.
		waitMembersOf(t, nodes, ids...)
		for _, n := range nodes {
			if ms := n.about("node_join", g.id); len(ms) > 0 {
				if l := n.about("node_leave", g.id); len(l) != 1 || l[0].NodeLeave.Reason != "health_check_failure" {
					t.Fatalf("%s: the liar joined (%v) and left with %v, want one NodeLeave (health_check_failure)", n.id, ms, l)
				}
			}
		}
	} else if lines := leader.log.lines("join refused", g.id, "no_log"); len(lines) == 0 {
		t.Errorf("the leader did not log the refusal")
	}
	// Raft's configuration ends as it was, and stays so past several
	// voter-stabilisation windows (300 ms): a ghost that slipped in as a
	// non-voter would be promoted by now.
	waitVoters(t, nodes, ids...)
	time.Sleep(1500 * time.Millisecond)
	waitVoters(t, nodes, ids...)
	close(stop)
	<-watched
	mu.Lock()
	if len(sightings) > 0 {
		t.Fatalf("the ghost was seen in the cluster:\n%s", strings.Join(sightings, "\n"))
	}
	mu.Unlock()
	waitMembersOf(t, nodes, ids...)
	t.Logf("ghost: %d pings (%d with a wait index), %d other requests", g.pings.Load(), g.waitPings.Load(), g.other.Load())

	// kill -9 one real node: two voters of three remain, a quorum.
	victim := followers[1]
	if killLeader {
		victim = leader
	}
	victim.kill9(t)
	var survivors []*lnode
	for _, n := range nodes {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	began := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := put(survivors[0].addr, token, "after-kill", "quorum")
		if err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write through %s 30 s after killing %s: %d %s %v", survivors[0].id, victim.id, code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("write after kill -9 of %s: %v", victim.id, time.Since(began).Round(time.Millisecond))
	if v, err := getCustom(survivors[1].addr, "after-kill", true); err != nil || v != "quorum" {
		t.Fatalf("read back on %s: %q %v", survivors[1].id, v, err)
	}
	for _, n := range survivors {
		if ms, err := membersOf(n.addr); err != nil || slices.Contains(memberIDs(ms), g.id) {
			t.Fatalf("%s: members %v (%v)", n.id, memberIDs(ms), err)
		}
	}
}

// TestPausedLeaderRemoved: the leader of 5 nodes paused (kill -STOP) past
// the failure-detection budget is removed by the others; once continued it
// finds out by itself (it logs it and delivers its own NodeLeave), then
// rejoins as a new life: NodeRejoin on every node, 5 members, ready again.
// With -auto-rejoin=false it stays out: GET /ready 503 "removed".
//
// Continued at once, it is still in Raft's configuration for the departure
// grace and the new leader's log tells it; continued after it left the
// configuration, nobody replicates to it and only asking the members it
// knows can tell it.
func TestPausedLeaderRemoved(t *testing.T) {
	// Each setting once, not every pair (five processes per case; the
	// suite must finish within 6 minutes next to a busy core).
	t.Run("auto-rejoin", func(t *testing.T) { pausedLeader(t, true, false) })
	t.Run("auto-rejoin off, out of the raft configuration", func(t *testing.T) { pausedLeader(t, false, true) })
}

func pausedLeader(t *testing.T, autoRejoin, outOfRaft bool) {
	ids := []string{"node-1", "node-2", "node-3", "node-4", "node-5"}
	args := identityArgs() // removal 300 ms after the 0.75 s budget
	var nodes []*lnode
	for i, id := range ids {
		a := slices.Clone(args)
		if i == 0 && !autoRejoin {
			a = append(a, "-auto-rejoin=false")
		}
		if i > 0 {
			a = append(a, "-join", nodes[0].addr)
		}
		nodes = append(nodes, start(t, id, freeAddr(t), a...))
	}
	waitMembersOf(t, nodes, ids...)
	waitVoters(t, nodes, ids...)
	paused, others := nodes[0], nodes[1:]
	if l := leaderAmong(t, nodes); l != paused {
		transferLeadership(t, l.addr, paused.id)
		if l := leaderAmong(t, nodes); l != paused {
			t.Fatalf("the leader is %s after a transfer to %s", l.id, paused.id)
		}
	}
	oldInc := incarnationOf(t, others[0].addr, paused.id)

	pausedEvents := len(paused.allEvents())
	paused.signal(t, syscall.SIGSTOP)
	stoppedAt := time.Now()
	waitMembersOf(t, others, ids[1:]...)
	for _, n := range others {
		eventually(t, 10*time.Second, n.id+"'s NodeLeave for the paused leader", func() bool { return len(n.about("node_leave", paused.id)) > 0 })
		if e := n.about("node_leave", paused.id)[0]; e.NodeLeave.Reason != "health_check_failure" {
			t.Fatalf("%s: %v, want the reason health_check_failure", n.id, e)
		}
	}
	if l := leaderAmong(t, others); l == paused {
		t.Fatalf("the paused node still leads")
	}
	t.Logf("paused leader removed by the others after %v", time.Since(stoppedAt).Round(time.Millisecond))
	if outOfRaft {
		eventually(t, 15*time.Second, "the paused node to leave Raft's configuration", func() bool {
			for _, n := range others {
				s, err := consensus(n.addr)
				if err != nil || slices.Contains(s.Voters, paused.id) || slices.Contains(s.NonVoters, paused.id) {
					return false
				}
			}
			return true
		})
		t.Logf("paused leader out of Raft's configuration after %v", time.Since(stoppedAt).Round(time.Millisecond))
		time.Sleep(300 * time.Millisecond)
	}

	paused.signal(t, syscall.SIGCONT)
	continued := time.Now()
	const removedLine = "this node was removed from the cluster"
	eventually(t, 20*time.Second, "the continued node to log that it was removed", func() bool {
		return len(paused.log.lines(removedLine)) > 0
	})
	t.Logf("continued node knew it was removed after %v", time.Since(continued).Round(time.Millisecond))
	line := paused.log.lines(removedLine)[0]
	if !strings.Contains(line, "WRN") || !strings.Contains(line, "health_check_failure") {
		t.Fatalf("removal line %q: want a warning with the reason health_check_failure", line)
	}
	// Its own NodeLeave (checked without stopping the test, so that a
	// missing one does not hide the rest).
	ownLeave := func(within time.Duration) {
		t.Helper()
		if !poll(within, func() bool { return len(paused.about("node_leave", paused.id)) > 0 }) {
			t.Errorf("the continued node delivered no NodeLeave for itself; its events since the pause: %s",
				outline(paused.allEventsSince(pausedEvents), 8))
			return
		}
		if e := paused.about("node_leave", paused.id); len(e) != 1 || e[0].NodeLeave.Reason != "health_check_failure" {
			t.Errorf("the continued node's own NodeLeave: %v, want one (health_check_failure)", e)
		}
	}

	if !autoRejoin {
		ownLeave(10 * time.Second)
		if !strings.Contains(line, "stays out") {
			t.Fatalf("removal line %q: want it to say it stays out", line)
		}
		eventually(t, 10*time.Second, "GET /ready 503 removed on the continued node", func() bool {
			code, d, err := readyOf(paused.addr)
			return err == nil && code == 503 && slices.Contains(d.Reasons, "removed")
		})
		time.Sleep(3 * time.Second) // it must not rejoin
		code, d, err := readyOf(paused.addr)
		if err != nil || code != 503 || !slices.Contains(d.Reasons, "removed") || d.Removal == nil ||
			d.Removal.Reason != "health_check_failure" || d.Removal.Rejoining {
			t.Fatalf("GET /ready on the removed node: %d %+v (removal %+v) %v", code, d, d.Removal, err)
		}
		waitMembersOf(t, others, ids[1:]...)
		for _, n := range nodes {
			if r := n.about("node_rejoin", paused.id); len(r) > 0 {
				t.Fatalf("%s: %v, but the node has -auto-rejoin=false", n.id, r)
			}
		}
		if n := len(paused.log.lines(removedLine)); n != 1 {
			t.Fatalf("the removal was logged %d times", n)
		}
		// Its NodeLeave is the last event it delivered.
		if evs := paused.allEvents(); evs[len(evs)-1].Kind != "node_leave" {
			t.Fatalf("the removed node delivered %v after its own NodeLeave", evs[len(evs)-1])
		}
		return
	}

	if !strings.Contains(line, "rejoining") {
		t.Fatalf("removal line %q: want it to say it rejoins", line)
	}
	for _, n := range nodes {
		eventually(t, 20*time.Second, n.id+"'s NodeRejoin for "+paused.id, func() bool { return len(n.about("node_rejoin", paused.id)) > 0 })
	}
	waitMembersOf(t, nodes, ids...)
	eventually(t, 10*time.Second, "GET /ready 200 on the rejoined node", func() bool {
		code, _, err := readyOf(paused.addr)
		return err == nil && code == 200
	})
	t.Logf("continued node ready again after %v", time.Since(continued).Round(time.Millisecond))
	waitVoters(t, nodes, ids...)
	time.Sleep(time.Second) // room for a late duplicate
	inc := incarnationOf(t, others[0].addr, paused.id)
	if inc <= oldInc {
		t.Fatalf("incarnation %d after the rejoin, was %d", inc, oldInc)
	}
	for _, n := range nodes {
		if r := n.about("node_rejoin", paused.id); len(r) != 1 || r[0].index() != inc {
			t.Fatalf("%s: NodeRejoin for %s %v, want one at index %d", n.id, paused.id, r, inc)
		}
	}
	// The new life delivers nothing from before its admission: its own
	// NodeLeave (the old life's last event) is followed by its NodeRejoin.
	evs := paused.allEvents()
	for i, e := range evs {
		if e.Kind == "node_leave" && e.nodeID() == paused.id {
			if i+1 >= len(evs) || evs[i+1].Kind != "node_rejoin" || evs[i+1].nodeID() != paused.id {
				t.Fatalf("after its own NodeLeave the node delivered %v, want its NodeRejoin first", firstEvents(evs[i+1:], 5))
			}
			for _, later := range evs[i+1:] {
				if later.index() < inc {
					t.Fatalf("the new life (admitted at %d) delivered %v", inc, later)
				}
			}
			break
		}
	}
	if n := len(paused.log.lines(removedLine)); n != 1 {
		t.Fatalf("the removal was logged %d times", n)
	}
	ownLeave(0)
	for _, n := range nodes {
		if lines := append(n.log.lines("join refused", "peer="+paused.id), n.log.lines("refused this node")...); len(lines) > 0 {
			t.Errorf("%s logged a refusal of the rejoin:\n%s", n.id, strings.Join(lines, "\n"))
		}
	}
	// NodeRejoin's LastSeenAt and OfflineDuration are the real ones (DESIGN
	// §5): nothing saw the node from its SIGSTOP to its SIGCONT.
	for _, n := range nodes {
		e := n.about("node_rejoin", paused.id)[0]
		seen, offline := e.NodeRejoin.LastSeen.UnixNano(), msDuration(e.NodeRejoin.OfflineDurationMs)
		if slack := 100 * time.Millisecond; seen > stoppedAt.Add(slack).UnixNano() || offline < continued.Sub(stoppedAt)-slack {
			t.Errorf("%s: NodeRejoin says %s was last seen %v after its SIGSTOP and offline for %v; it was paused for %v: %v",
				n.id, paused.id, time.Duration(seen-stoppedAt.UnixNano()).Round(time.Millisecond), offline.Round(time.Millisecond),
				continued.Sub(stoppedAt).Round(time.Millisecond), e)
		}
	}
}
