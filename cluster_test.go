package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// clusterOptions returns fast options for node i of a loopback cluster; the
// first node bootstraps and the others join it.
func clusterOptions(t *testing.T, i int, seed string) Options {
	o := fastOptions(t, fmt.Sprintf("node-%d", i))
	if seed != "" {
		o.JoinAddrs = []string{seed}
	}
	return o
}

// waitConverged waits until every node has the same table and every node is
// a member of it.
func waitConverged(t *testing.T, nodes []*ClusterKit, members int) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d nodes to agree on a table with %d members", len(nodes), members), func() bool {
		first := nodes[0].fsm.View()
		if len(first.Members()) != members || !first.HasTable() {
			return false
		}
		for _, n := range nodes[1:] {
			v := n.fsm.View()
			if v.Checksum() != first.Checksum() || v.Version() != first.Version() {
				return false
			}
		}
		return fullyPlaced(first, members)
	})
}

func TestThreeNodeFormation(t *testing.T) {
	leakCheck(t)
	first := startNode(t, clusterOptions(t, 1, ""))
	nodes := []*ClusterKit{first}
	for i := 2; i <= 3; i++ {
		nodes = append(nodes, startNode(t, clusterOptions(t, i, first.advertise)))
	}
	waitConverged(t, nodes, 3)
	v := first.fsm.View()
	for n := range v.PartitionCount() {
		if o := v.Owners(n); len(o) != 3 {
			t.Fatalf("partition %d owners %v, want all three nodes (RF 3)", n, o)
		}
	}
	// One leader, the others followers, all agreeing on it.
	leaders := 0
	for _, n := range nodes {
		if n.HealthCheck().IsLeader {
			leaders++
		}
		if h := n.HealthCheck(); h.Leader != "node-1" || !h.Ready || h.ClusterStatus != "healthy" {
			t.Fatalf("%s health: %+v", n.GetMyNodeID(), h)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders", leaders)
	}
	waitFor(t, 10*time.Second, "all three voters", func() bool { return first.HealthCheck().Voters == 3 })
	// Reads on every node agree.
	for _, key := range []string{"user:123", "a", "b", "c"} {
		var prim []string
		for _, n := range nodes {
			p, err := n.GetPartition(key)
			if err != nil {
				t.Fatal(err)
			}
			prim = append(prim, n.GetPrimary(p).ID)
		}
		if len(slices.Compact(slices.Clone(prim))) != 1 {
			t.Fatalf("nodes disagree on the primary of %q: %v", key, prim)
		}
	}
}

func TestSimultaneousStart(t *testing.T) {
	leakCheck(t)
	// Reserve three addresses so every node knows the others before any starts.
	addrs := make([]string, 3)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	nodes := make([]*ClusterKit, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range nodes {
		o := clusterOptions(t, i+1, "")
		o.HTTPAddr = addrs[i]
		if i > 0 {
			o.JoinAddrs = []string{addrs[0], addrs[1], addrs[2]}
		}
		ck, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = ck
		t.Cleanup(func() { _ = ck.Stop(context.Background()) })
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = ck.Start(context.Background()) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node-%d: %v", i+1, err)
		}
	}
	waitConverged(t, nodes, 3)
}

// startCluster starts n nodes over loopback TCP: node-1 bootstraps, the
// others join it. mod adjusts each node's options; setup runs before each Start.
func startCluster(t *testing.T, n int, mod func(i int, o *Options), setup func(i int, ck *ClusterKit)) []*ClusterKit {
	t.Helper()
	var nodes []*ClusterKit
	maxVoters := DefaultMaxVoters
	for i := 1; i <= n; i++ {
		seed := ""
		if i > 1 {
			seed = nodes[0].advertise
		}
		o := clusterOptions(t, i, seed)
		if mod != nil {
			mod(i, &o)
		}
		if i == 1 && o.MaxVoters != 0 {
			maxVoters = o.MaxVoters
		}
		nodes = append(nodes, startNode(t, o, func(ck *ClusterKit) {
			if setup != nil {
				setup(i, ck)
			}
		}))
	}
	waitConverged(t, nodes, n)
	waitVoters(t, nodes, min(n, maxVoters))
	return nodes
}

func leaderOf(t *testing.T, nodes []*ClusterKit) *ClusterKit {
	t.Helper()
	var leader *ClusterKit
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.running.Load() && n.raft.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// collect drains a probe until stop returns true for a message (inclusive).
func collect(t *testing.T, p *probe, stop func(any) bool) []any {
	t.Helper()
	var out []any
	for {
		m := p.next(t, 10*time.Second)
		out = append(out, m)
		if stop(m) {
			return out
		}
	}
}

func seqOfMsg(m any) Seq {
	return seqOf(m.(interface {
		GetIndex() uint64
		GetSub() uint32
		GetTimeUnixNano() int64
	}))
}

// normalized drops what is legitimately local (the rebalance duration
// measured on each node) so event sequences can be compared across nodes.
func normalized(m any) proto.Message {
	c := proto.Clone(m.(proto.Message))
	if rc, ok := c.(*messages.RebalanceComplete); ok {
		rc.DurationNanos = 0
	}
	return c
}

// TestEveryNodeDeliversTheSameEvents: from a node's own registration on,
// every node delivers the same events with the same seqs in the same order.
func TestEveryNodeDeliversTheSameEvents(t *testing.T) {
	leakCheck(t)
	probes := map[int]*probe{}
	nodes := startCluster(t, 3, func(i int, o *Options) { o.PartitionCount = 32; o.ReplicationFactor = 2 },
		func(i int, ck *ClusterKit) { probes[i] = subscribeProbe(t, ck) })
	// One more membership change after everyone is in: node-3 leaves.
	if err := nodes[2].Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	isLeaveRebalanceEnd := func(m any) bool {
		rc, ok := m.(*messages.RebalanceComplete)
		return ok && rc.GetTrigger() == "node_leave"
	}
	seqs := map[int][]any{}
	for _, i := range []int{1, 2} {
		seqs[i] = collect(t, probes[i], isLeaveRebalanceEnd)
	}
	// node-3 saw events until its removal.
	seqs[3] = collect(t, probes[3], func(m any) bool {
		l, ok := m.(*messages.NodeLeave)
		return ok && l.GetNode().GetId() == "node-3"
	})
	if l := seqs[3][len(seqs[3])-1].(*messages.NodeLeave); l.GetReason() != "graceful_shutdown" {
		t.Fatalf("leave reason %q", l.GetReason())
	}
	// Each node's first event is its own join.
	for i, evs := range seqs {
		j, ok := evs[0].(*messages.NodeJoin)
		if !ok || j.GetNode().GetId() != fmt.Sprintf("node-%d", i) {
			t.Fatalf("node-%d: first event %T %v", i, evs[0], evs[0])
		}
	}
	// From node-3's join on, all three delivered exactly the same events.
	from := seqOfMsg(seqs[3][0])
	suffix := func(evs []any, n int) []any {
		for k, m := range evs {
			if !seqOfMsg(m).Less(from) {
				return evs[k : k+n]
			}
		}
		return nil
	}
	common := len(seqs[3])
	for _, i := range []int{1, 2} {
		a, b := suffix(seqs[i], common), seqs[3]
		if len(a) != common {
			t.Fatalf("node-%d has %d events after node-3's join, node-3 has %d", i, len(a), common)
		}
		for k := range b {
			if !proto.Equal(normalized(a[k]), normalized(b[k])) {
				t.Fatalf("event %d differs between node-%d and node-3:\n%v\n%v", k, i, a[k], b[k])
			}
		}
	}
	// nodes 1 and 2 agree on everything from node-2's join on, including the leave.
	from = seqOfMsg(seqs[2][0])
	a, b := suffix(seqs[1], len(seqs[2])), seqs[2]
	for k := range b {
		if !proto.Equal(normalized(a[k]), normalized(b[k])) {
			t.Fatalf("event %d differs between node-1 and node-2:\n%v\n%v", k, a[k], b[k])
		}
	}
}

// TestJoinMovesOnlyToTheJoiner: when a fourth node joins, only it gains
// partitions; each PartitionChange names the live previous holders; the
// nodes that already held a partition get no event for it.
func TestJoinMovesOnlyToTheJoiner(t *testing.T) {
	leakCheck(t)
	probes := map[int]*probe{}
	nodes := startCluster(t, 3, func(i int, o *Options) { o.PartitionCount = 256; o.ReplicationFactor = 2 },
		func(i int, ck *ClusterKit) {
			probes[i] = subscribeProbe(t, ck, WithKinds(EventPartitionChange, EventRebalanceComplete))
		})
	for _, p := range probes { // drain the formation
		collect(t, p, func(m any) bool {
			rc, ok := m.(*messages.RebalanceComplete)
			return ok && slices.Contains(rc.GetNodesAffected(), "node-3")
		})
	}
	before := nodes[0].fsm.View()
	o := clusterOptions(t, 4, nodes[0].advertise)
	o.PartitionCount, o.ReplicationFactor = 256, 2
	fourth := startNode(t, o)
	waitConverged(t, append(nodes, fourth), 4)
	after := nodes[0].fsm.View()
	moved := 0
	for n := range after.PartitionCount() {
		if !sameSet(before.Owners(n), after.Owners(n)) { // a primary swap moves no data
			if !slices.Contains(after.Owners(n), "node-4") {
				t.Fatalf("partition %d changed owners %v -> %v without node-4", n, before.Owners(n), after.Owners(n))
			}
		}
		if slices.Contains(after.Owners(n), "node-4") {
			moved++
		}
	}
	optimum := 2 * 256 / 4
	if moved != optimum {
		t.Fatalf("node-4 holds %d partitions, balanced optimum %d", moved, optimum)
	}
	for i, p := range probes {
		evs := collect(t, p, func(m any) bool { _, ok := m.(*messages.RebalanceComplete); return ok })
		changes := 0
		for _, m := range evs {
			pc, ok := m.(*messages.PartitionChange)
			if !ok {
				continue
			}
			if pc.GetAction() == PartitionRelease {
				// The owners node-4 replaces are told to drop the data.
				if !slices.Contains(before.Owners(int(pc.GetPartition())), pc.GetCopyToNode().GetId()) {
					t.Fatalf("node-%d: release to %s, which did not own %s", i, pc.GetCopyToNode().GetId(), pc.GetPartitionId())
				}
				continue
			}
			if pc.GetAction() != PartitionLoad {
				continue // a role change inside the owner set moves no data
			}
			changes++
			if pc.GetCopyToNode().GetId() != "node-4" {
				t.Fatalf("node-%d: PartitionChange to %s on a join of node-4", i, pc.GetCopyToNode().GetId())
			}
			var from []string
			for _, f := range pc.GetCopyFromNodes() {
				from = append(from, f.GetId())
			}
			// The sources are ready owners that keep the partition (an owner
			// released in the same entry may already have dropped it).
			if len(from) == 0 || slices.ContainsFunc(from, func(id string) bool { return !slices.Contains(before.Owners(int(pc.GetPartition())), id) }) {
				t.Fatalf("copy from %v, previous owners %v", from, before.Owners(int(pc.GetPartition())))
			}
		}
		if changes != moved {
			t.Fatalf("node-%d saw %d PartitionChange events, %d partitions moved", i, changes, moved)
		}
	}
}

func TestLeaderLeaveHandsOverLeadership(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, nil, nil)
	leader := leaderOf(t, nodes)
	var rest []*ClusterKit
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	p := subscribeProbe(t, rest[0], WithKinds(EventNodeLeave))
	if err := leader.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	nl := p.next(t, 10*time.Second).(*messages.NodeLeave)
	// A leaver hands its primaries over first (DrainNode): it leaves as a
	// replica only.
	if nl.GetNode().GetId() != leader.GetMyNodeID() || nl.GetReason() != "graceful_shutdown" ||
		len(nl.GetPartitionsOwned()) != 0 || len(nl.GetPartitionsReplica()) == 0 {
		t.Fatalf("NodeLeave %v", nl)
	}
	newLeader := leaderOf(t, rest)
	waitConverged(t, rest, 2)
	waitFor(t, 10*time.Second, "raft configuration without the leaver", func() bool {
		f := newLeader.raft.GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == 2
	})
	for n := range newLeader.fsm.View().PartitionCount() {
		if slices.Contains(newLeader.fsm.View().Owners(n), leader.GetMyNodeID()) {
			t.Fatalf("partition %d still owned by the node that left", n)
		}
	}
	if err := leader.Leave(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("second Leave: %v", err)
	}
}

// TestLeaveFromTwoNodes: when one of two nodes leaves, the other keeps a
// quorum of one at once: the leaver stops counting as a voter while it gets
// its grace to learn of its removal, so the survivor still leads and commits.
func TestLeaveFromTwoNodes(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 2, nil, nil)
	first, second := nodes[0], nodes[1]
	waitFor(t, 10*time.Second, "two voters", func() bool { return first.HealthCheck().Voters == 2 })
	if err := second.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Longer than the leader's lease and the departure grace together: a
	// leader counting the gone voter would have stepped down by now.
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline) && i < 100000; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := first.SetCustomData(ctx, "after-leave", []byte(fmt.Sprint(i)))
		cancel()
		if err != nil {
			t.Fatalf("write %d after the other node left: %v", i, err)
		}
	}
	f := first.raft.GetConfiguration()
	if f.Error() != nil || len(f.Configuration().Servers) != 1 {
		t.Fatalf("raft configuration %v %v, want only node-1", f.Configuration().Servers, f.Error())
	}
}

func TestStopLeaderHandsOverLeadership(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, nil, nil)
	leader := leaderOf(t, nodes)
	if err := leader.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rest []*ClusterKit
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	// The transfer finished inside Stop: a follower is leader already,
	// without waiting for an election timeout.
	leaders := 0
	for _, n := range rest {
		if n.raft.State() == raft.Leader {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders right after the leader's Stop", leaders)
	}
	// Stop is not Leave: the stopped node stays a member.
	if _, ok := rest[0].fsm.View().Member(leader.GetMyNodeID()); !ok {
		t.Fatal("a stopped node was removed")
	}
}

func TestAdminRemoveFromAFollower(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, nil, nil)
	leader := leaderOf(t, nodes)
	var follower, victim *ClusterKit
	for _, n := range nodes {
		if n != leader {
			if follower == nil {
				follower = n
			} else {
				victim = n
			}
		}
	}
	p := subscribeProbe(t, leader, WithKinds(EventNodeLeave))
	if err := follower.RemoveNode(context.Background(), victim.GetMyNodeID()); err != nil {
		t.Fatal(err)
	}
	if nl := p.next(t, 10*time.Second).(*messages.NodeLeave); nl.GetReason() != "removed_by_admin" || nl.GetNode().GetId() != victim.GetMyNodeID() {
		t.Fatalf("NodeLeave %v", nl)
	}
	waitFor(t, 10*time.Second, "the removed node out of raft", func() bool {
		f := leader.raft.GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == 2
	})
	// The removed node keeps running but is no member, so it is not ready.
	waitFor(t, 10*time.Second, "the removed node to see its removal", func() bool {
		_, ok := victim.fsm.View().Member(victim.GetMyNodeID())
		return !ok
	})
	if victim.HealthCheck().Ready {
		t.Fatal("a removed node reports ready")
	}
	if err := follower.RemoveNode(context.Background(), "nobody"); !errors.Is(err, raftfsm.ErrUnknownNode) {
		t.Fatalf("RemoveNode(nobody) = %v", err)
	}
	if err := follower.RemoveNode(context.Background(), follower.GetMyNodeID()); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("RemoveNode(self) = %v", err)
	}
}

// TestLateThirdNode: RF 3 with two nodes for a while (degraded, nobody
// evicted), then a third node brings full replication.
func TestLateThirdNode(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 2, nil, nil)
	h := nodes[0].HealthCheck()
	if h.ClusterStatus != "degraded" || h.UnderReplicatedPartitions != 64 || h.NodeCount != 2 {
		t.Fatalf("two nodes, RF 3: %+v", h)
	}
	for n := range 64 {
		if o := nodes[0].fsm.View().Owners(n); len(o) != 2 {
			t.Fatalf("partition %d owners %v: with N < RF every node holds every partition", n, o)
		}
	}
	third := startNode(t, clusterOptions(t, 3, nodes[1].advertise)) // through a follower
	all := append(nodes, third)
	waitConverged(t, all, 3)
	waitFor(t, 10*time.Second, "healthy", func() bool { return nodes[0].HealthCheck().ClusterStatus == "healthy" })
	for n := range 64 {
		if o := third.fsm.View().Owners(n); len(o) != 3 {
			t.Fatalf("partition %d owners %v", n, o)
		}
	}
}

func TestServiceDiscoveryAcrossNodes(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, func(i int, o *Options) {
		o.Services = map[string]string{"kv": fmt.Sprintf(":90%02d", i), "api": fmt.Sprintf(":30%02d", i)}
	}, nil)
	for _, n := range nodes {
		got := n.ServiceAddresses("kv")
		want := map[string]string{"node-1": ":9001", "node-2": ":9002", "node-3": ":9003"}
		if !maps.Equal(got, want) {
			t.Fatalf("%s sees kv at %v", n.GetMyNodeID(), got)
		}
		for _, m := range n.GetCluster().Nodes {
			if m.Services["api"] == "" {
				t.Fatalf("%s: no api service for %s", n.GetMyNodeID(), m.ID)
			}
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestMaxVotersAndPromotion: with MaxVoters 3, five members give three Raft
// voters and two non-voters (which still hold partitions); when a voter
// leaves, a non-voter is promoted.
func TestMaxVotersAndPromotion(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 5, func(i int, o *Options) { o.MaxVoters = 3 }, nil)
	suffrage := func(ck *ClusterKit) (voters, nonvoters []string) {
		f := ck.raft.GetConfiguration()
		if f.Error() != nil {
			return nil, nil
		}
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters = append(voters, string(s.ID))
			} else {
				nonvoters = append(nonvoters, string(s.ID))
			}
		}
		slices.Sort(voters)
		slices.Sort(nonvoters)
		return voters, nonvoters
	}
	leader := leaderOf(t, nodes)
	waitFor(t, 10*time.Second, "3 voters and 2 non-voters", func() bool {
		v, nv := suffrage(leader)
		return len(v) == 3 && len(nv) == 2
	})
	voters, nonvoters := suffrage(leader)
	if !slices.Equal(voters, []string{"node-1", "node-2", "node-3"}) {
		t.Fatalf("voters %v: the first three members should vote", voters)
	}
	for _, id := range nonvoters { // non-voters get partitions like everyone else
		holds := false
		for n := range leader.fsm.View().PartitionCount() {
			holds = holds || slices.Contains(leader.fsm.View().Owners(n), id)
		}
		if !holds {
			t.Fatalf("non-voter %s holds no partition", id)
		}
	}
	// A voter (not the leader) leaves: the longest-standing non-voter is promoted.
	var leaving *ClusterKit
	for _, n := range nodes {
		if n != leader && slices.Contains(voters, n.GetMyNodeID()) {
			leaving = n
			break
		}
	}
	if err := leaving.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a non-voter promoted", func() bool {
		v, nv := suffrage(leader)
		return len(v) == 3 && len(nv) == 1 && slices.Contains(v, "node-4")
	})
}

// TestLeaveMovesOnlyTheLeaversPartitions: after a leave, only partitions the
// leaver held get new owners, and they get exactly one each.
func TestLeaveMovesOnlyTheLeaversPartitions(t *testing.T) {
	leakCheck(t)
	// One join at a time: joins merged into one rebalance pair the joiners
	// up (copysets), and a leave then has to move more than the leaver's
	// partitions (a known placement limitation; see internal/placement).
	var nodes []*ClusterKit
	for i := 1; i <= 4; i++ {
		seed := ""
		if i > 1 {
			seed = nodes[0].advertise
		}
		o := clusterOptions(t, i, seed)
		o.PartitionCount, o.ReplicationFactor = 128, 2
		nodes = append(nodes, startNode(t, o))
		waitConverged(t, nodes, i)
	}
	leader := leaderOf(t, nodes)
	var leaving *ClusterKit
	for _, n := range nodes {
		if n != leader {
			leaving = n
		}
	}
	before := leader.fsm.View()
	if err := leaving.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rest []*ClusterKit
	for _, n := range nodes {
		if n != leaving {
			rest = append(rest, n)
		}
	}
	waitConverged(t, rest, 3)
	after := leader.fsm.View()
	for n := range after.PartitionCount() {
		b, a := before.Owners(n), after.Owners(n)
		if !slices.Contains(b, leaving.GetMyNodeID()) {
			if !sameSet(a, b) {
				t.Fatalf("partition %d did not involve the leaver but moved: %v -> %v", n, b, a)
			}
			continue
		}
		kept := 0
		for _, id := range a {
			if slices.Contains(b, id) {
				kept++
			}
		}
		if kept != len(b)-1 || len(a) != 2 {
			t.Fatalf("partition %d: %v -> %v", n, b, a)
		}
	}
}

// fullyPlaced: the rebalance after the last membership change committed: every
// member holds partitions and every partition has min(RF, members) owners.
func fullyPlaced(v *raftfsm.View, members int) bool {
	want := min(int(v.Config().GetReplicationFactor()), members)
	holders := map[string]bool{}
	for _, owners := range v.OwnerTable() {
		if len(owners) != want {
			return false
		}
		for _, id := range owners {
			holders[id] = true
		}
	}
	return len(holders) == members
}

// TestRemovedNodeStaysOut: a node removed by an admin keeps running but does
// not register again (the admin's decision is not undone), says why, and a
// join of its removed life is refused.
func TestRemovedNodeStaysOut(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, nil, nil)
	victim := nodes[2]
	removedNonce := victim.life.Nonce()
	if err := nodes[1].RemoveNode(context.Background(), victim.GetMyNodeID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the victim to know it was removed", func() bool {
		return victim.life.Status().State == actors.MemberRemoved
	})
	// Long enough for its registration loop to have tried, were it going to.
	time.Sleep(1500 * time.Millisecond)
	if _, ok := nodes[0].fsm.View().Member(victim.GetMyNodeID()); ok {
		t.Fatal("the removed node registered again")
	}
	h := victim.HealthCheck()
	if h.Ready || h.Membership != actors.MemberRemoved || !strings.Contains(strings.Join(h.Problems, "; "), "removed_by_admin") {
		t.Fatalf("victim health: ready=%v membership=%q problems=%v", h.Ready, h.Membership, h.Problems)
	}
	resp := gatewayBackend{nodes[0]}.Join(context.Background(), &messages.JoinRequest{Member: &messages.Member{
		Id: victim.GetMyNodeID(), Address: victim.advertise, Nonce: removedNonce,
	}})
	if resp.GetAccepted() || resp.GetCode() != actors.JoinRemoved {
		t.Fatalf("join of the removed life: %v", resp)
	}
}
