package clusterkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/internal/placement"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// slotLoads counts each member's owner slots in v.
func slotLoads(v *raftfsm.View) map[string]int {
	out := map[string]int{}
	for n := range v.PartitionCount() {
		for _, id := range v.Owners(n) {
			out[id]++
		}
	}
	return out
}

// TestDrainMovesEverythingAndUndrainGivesItBack: a drained member ends with
// nothing and stays a member (a voter keeps its vote), every partition keeps
// RF owners on the others, balanced; the drain is visible as a rebalance with
// trigger node_drain; Undrain gives the member its share back.
func TestDrainMovesEverythingAndUndrainGivesItBack(t *testing.T) {
	leakCheck(t)
	var starts *probe
	nodes := startCluster(t, 4, func(i int, o *Options) { o.PartitionCount = 48; o.ReplicationFactor = 2 },
		func(i int, ck *ClusterKit) {
			if i == 2 {
				starts = subscribeProbe(t, ck, WithKinds(EventRebalanceStart))
			}
		})
	ctx := context.Background()
	if err := nodes[1].Drain(ctx, "nope"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Drain of an unknown node: %v, want ErrUnknownNode", err)
	}
	wasVoter := false
	if m, ok := nodes[0].fsm.View().Member("node-4"); ok {
		wasVoter = m.Voter
	}
	drainCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := nodes[1].Drain(drainCtx, "node-4"); err != nil { // from a follower
		t.Fatal(err)
	}
	// Drain returned: node-4 holds nothing on the node that drained it.
	v := nodes[1].fsm.View()
	m, ok := v.Member("node-4")
	if !ok || !m.Drained || m.Voter != wasVoter {
		t.Fatalf("node-4 after the drain: %+v (member %v), want a drained member, voter %v", m, ok, wasVoter)
	}
	loads := slotLoads(v)
	if loads["node-4"] != 0 {
		t.Fatalf("node-4 still holds %d partitions", loads["node-4"])
	}
	for n := range v.PartitionCount() {
		if len(v.Owners(n)) != 2 {
			t.Fatalf("partition %d has owners %v, want 2", n, v.Owners(n))
		}
	}
	for _, id := range []string{"node-1", "node-2", "node-3"} {
		if l := loads[id]; l != 32 { // 96 slots over 3 holders
			t.Fatalf("%s holds %d partitions, want 32 (loads %v)", id, l, loads)
		}
	}
	// The gauges say the drain is done.
	if d, left := metricValue(t, nodes[1], "clusterkit_drained_nodes"), metricValue(t, nodes[1], "clusterkit_drain_remaining_partitions"); d != 1 || left != 0 {
		t.Fatalf("drained_nodes %v, drain_remaining_partitions %v; want 1 and 0", d, left)
	}
	collect(t, starts, func(m any) bool {
		rs, ok := m.(*messages.RebalanceStart)
		return ok && rs.GetTrigger() == raftfsm.TriggerNodeDrain && rs.GetTriggerNodeId() == "node-4"
	})
	if err := nodes[2].Undrain(ctx, "node-4"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "node-4 to get its share back", func() bool {
		v := nodes[0].fsm.View()
		m, _ := v.Member("node-4")
		return !m.Drained && slotLoads(v)["node-4"] == 24 && v.Settled()
	})
}

// TestDrainSurvivesALeaderChange: a drain committed under one leader is
// carried out by the next one.
func TestDrainSurvivesALeaderChange(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 3, func(i int, o *Options) { o.PartitionCount = 32; o.ReplicationFactor = 2 }, nil)
	ctx := context.Background()
	leader := leaderOf(t, nodes)
	victim := "node-3"
	if leader.GetMyNodeID() == victim {
		victim = "node-2"
	}
	// Paused (over HTTP), the first leader commits the drain but moves nothing.
	base := "http://" + leader.advertise
	for _, path := range []string{"/rebalance/pause", "/nodes/" + victim + "/drain"} {
		resp, err := http.Post(base+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
		}
	}
	type node struct {
		ID      string `json:"id"`
		Drained bool   `json:"drained"`
	}
	var cluster struct {
		Cluster struct {
			Paused bool   `json:"rebalance_paused"`
			Nodes  []node `json:"nodes"`
		} `json:"cluster"`
	}
	getJSON(t, base+"/cluster", &cluster)
	drained := slices.ContainsFunc(cluster.Cluster.Nodes, func(n node) bool { return n.ID == victim && n.Drained })
	if !cluster.Cluster.Paused || !drained {
		t.Fatalf("GET /cluster after pause and drain: %+v", cluster.Cluster)
	}
	if l := slotLoads(leader.fsm.View())[victim]; l == 0 {
		t.Fatalf("paused, %s was emptied anyway", victim)
	}
	next, err := leader.TransferLeadership(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var nl *ClusterKit
	for _, n := range nodes {
		if n.GetMyNodeID() == next {
			nl = n
		}
	}
	waitFor(t, 10*time.Second, "the new leader to lead", func() bool { return leaderOf(t, nodes) == nl })
	if err := nl.ResumeRebalancing(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, victim+" to be emptied by the new leader", func() bool {
		return slotLoads(nl.fsm.View())[victim] == 0
	})
	if _, ok := nl.fsm.View().Member(victim); !ok {
		t.Fatalf("%s is no longer a member", victim)
	}
}

// TestDrainOfTheLastHolderIsRefused: with every other member drained, the
// last one cannot be (nobody would hold the partitions), and nothing changes.
func TestDrainOfTheLastHolderIsRefused(t *testing.T) {
	leakCheck(t)
	nodes := startCluster(t, 2, func(i int, o *Options) { o.PartitionCount = 8; o.ReplicationFactor = 2 }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].Drain(ctx, "node-2"); err != nil {
		t.Fatal(err)
	}
	before := nodes[0].fsm.View().Version()
	if err := nodes[1].Drain(ctx, "node-1"); !errors.Is(err, ErrNoHolder) {
		t.Fatalf("Drain of the last holder: %v, want ErrNoHolder", err)
	}
	v := nodes[0].fsm.View()
	if m, _ := v.Member("node-1"); m.Drained || slotLoads(v)["node-1"] != 8 {
		t.Fatalf("after the refusal node-1 is %+v with %d partitions", m, slotLoads(v)["node-1"])
	}
	if v.Version() != before {
		t.Fatalf("the refused drain changed the state: version %d -> %d", before, v.Version())
	}
}

// TestZonesAndWeightsInACluster: zones and weights are committed with the
// members, shown on /cluster, and placement spreads each partition's owners
// over the zones (one per zone: RF 3 over 3 zones) and a weight-2 node
// twice the primaries; a weight-0 node holds nothing.
func TestZonesAndWeightsInACluster(t *testing.T) {
	leakCheck(t)
	zones := map[int]string{1: "a", 2: "b", 3: "c", 4: "a"}
	mod := func(i int, o *Options) {
		o.PartitionCount, o.ReplicationFactor, o.Zone = 60, 3, zones[i]
		switch i {
		case 2:
			o.Weight = 2
		case 4:
			o.Weight = WeightNone // it only routes
		}
	}
	nodes := startCluster(t, 3, mod, nil)
	o := clusterOptions(t, 4, nodes[0].advertise)
	mod(4, &o)
	nodes = append(nodes, startNode(t, o))
	var v *raftfsm.View
	waitFor(t, 20*time.Second, "a placement that honours zones and weights", func() bool {
		v = nodes[0].fsm.View()
		return len(v.Members()) == 4 && v.Settled() && slotLoads(v)["node-4"] == 0
	})
	for _, n := range nodes {
		for _, m := range n.GetCluster().Nodes {
			if m.Zone != zones[mustAtoi(t, m.ID)] {
				t.Fatalf("%s has zone %q, want %q", m.ID, m.Zone, zones[mustAtoi(t, m.ID)])
			}
		}
	}
	in := placement.Input{Partitions: 60, RF: 3, Zones: map[string]string{}, Weights: map[string]int{}}
	for _, m := range v.Members() {
		in.Members = append(in.Members, m.ID)
		in.Zones[m.ID], in.Weights[m.ID] = m.Zone, m.Weight
	}
	if w, _ := v.Member("node-4"); w.Weight != 0 {
		t.Fatalf("node-4 has weight %d, want 0", w.Weight)
	}
	if err := placement.ValidateInput(v.OwnerTable(), in); err != nil {
		t.Fatalf("committed table breaks the zone/weight rules: %v", err)
	}
	for n := range v.PartitionCount() {
		seen := map[string]bool{}
		for _, id := range v.Owners(n) {
			m, _ := v.Member(id)
			if seen[m.Zone] {
				t.Fatalf("partition %d has two owners in zone %q: %v", n, m.Zone, v.Owners(n))
			}
			seen[m.Zone] = true
		}
	}
}

func mustAtoi(t *testing.T, id string) int {
	var i int
	if _, err := fmt.Sscanf(id, "node-%d", &i); err != nil {
		t.Fatal(err)
	}
	return i
}

// TestRollingUpgradeInMaintenanceMoveNoData: in maintenance mode, every node
// of a 5-node cluster restarts on its data directory, one at a time; no
// partition's owner set changes at any step, nor after resuming.
func TestRollingUpgradeInMaintenanceMoveNoData(t *testing.T) {
	leakCheck(t)
	dirs := map[int]string{}
	mod := func(i int, o *Options) {
		if dirs[i] == "" {
			dirs[i] = t.TempDir()
		}
		o.DataDir, o.PartitionCount, o.ReplicationFactor = dirs[i], 40, 3
		// A generous detection budget: a restart under load stays a restart.
		o.HealthCheck = HealthCheckConfig{Interval: 500 * time.Millisecond, Timeout: 400 * time.Millisecond, FailureThreshold: 10, RemovalGrace: 10 * time.Second}
	}
	nodes := startCluster(t, 5, mod, nil)
	ctx := context.Background()
	if err := nodes[2].PauseRebalancing(ctx); err != nil {
		t.Fatal(err)
	}
	// The pause is committed when PauseRebalancing returns on nodes[2]; the
	// other nodes apply it a moment later.
	waitFor(t, 10*time.Second, "every node to see the pause", func() bool {
		for _, n := range nodes {
			if !n.RebalancingPaused() {
				return false
			}
		}
		return true
	})
	initial := nodes[0].fsm.View().OwnerTable()
	check := func(step string) {
		t.Helper()
		for _, n := range nodes {
			if !n.running.Load() {
				continue
			}
			v := n.fsm.View()
			if moved := placement.Moved(initial, v.OwnerTable()); moved != 0 {
				t.Fatalf("%s: %d partitions changed owners on %s", step, moved, n.GetMyNodeID())
			}
		}
	}
	// Followers first, the leader last.
	order := []int{}
	leader := leaderOf(t, nodes)
	for i, n := range nodes {
		if n != leader {
			order = append(order, i)
		}
	}
	order = append(order, slices.Index(nodes, leader))
	for _, i := range order {
		id := nodes[i].GetMyNodeID()
		addr := nodes[i].advertise
		if err := nodes[i].Stop(ctx); err != nil {
			t.Fatal(err)
		}
		check("after stopping " + id)
		seed := nodes[(i+1)%len(nodes)].advertise
		o := clusterOptions(t, i+1, seed)
		mod(i+1, &o)
		o.HTTPAddr = addr
		nodes[i] = startNode(t, o)
		waitFor(t, 30*time.Second, id+" back and every node agreeing", func() bool {
			first := nodes[0].fsm.View()
			m, ok := first.Member(id)
			if !ok || m.Status != raftfsm.StatusActive || len(first.Members()) != 5 {
				return false
			}
			for _, n := range nodes[1:] {
				if n.fsm.View().Version() != first.Version() {
					return false
				}
			}
			return true
		})
		check("after restarting " + id)
	}
	if err := nodes[0].ResumeRebalancing(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "every node to see the resume", func() bool {
		for _, n := range nodes {
			if n.RebalancingPaused() {
				return false
			}
		}
		return true
	})
	waitFor(t, 30*time.Second, "the resumed cluster to settle", func() bool {
		v := nodes[0].fsm.View()
		return v.Settled()
	})
	check("after resuming")
}

// getJSON decodes the JSON answer of GET url into out.
func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// metricValue scrapes ck's /metrics and returns the value of the series
// name (with its labels, if any).
func metricValue(t *testing.T, ck *ClusterKit, name string) float64 {
	t.Helper()
	return seriesValue(t, metricsText(t, ck), name)
}

// TestExplainWhenAConstraintCannotBeMet: with three members in two zones
// and RF 3, /partitions/{id} and /locate say why a partition has two owners
// in one zone; with three zones they say nothing.
func TestExplainWhenAConstraintCannotBeMet(t *testing.T) {
	leakCheck(t)
	zones := map[int]string{1: "a", 2: "b", 3: "b"}
	nodes := startCluster(t, 3, func(i int, o *Options) { o.PartitionCount, o.Zone = 16, zones[i] }, nil)
	var d struct {
		Explain []string `json:"explain"`
	}
	base := "http://" + nodes[1].advertise
	getJSON(t, base+"/partitions/3", &d)
	if !slices.Contains(d.Explain, "2 zones for RF 3: a partition may have 2 owners in one zone") ||
		!slices.ContainsFunc(d.Explain, func(s string) bool { return strings.Contains(s, `share zone "b"`) }) {
		t.Fatalf("explain %q", d.Explain)
	}
	d.Explain = nil
	getJSON(t, base+"/locate?key=user:123", &d)
	if len(d.Explain) == 0 {
		t.Fatal("no explain on /locate")
	}
	// A third zone: the owners are in three zones; what is left to explain
	// is only why zone b (half the weight) holds a third of the slots.
	o := clusterOptions(t, 4, nodes[0].advertise)
	o.PartitionCount, o.Zone = 16, "c"
	nodes = append(nodes, startNode(t, o))
	waitFor(t, 20*time.Second, "owners in three zones", func() bool {
		v := nodes[1].fsm.View()
		return len(v.Members()) == 4 && v.Settled() && slotLoads(v)["node-4"] == 16
	})
	d.Explain = nil
	getJSON(t, base+"/partitions/3", &d)
	if slices.ContainsFunc(d.Explain, func(s string) bool { return strings.Contains(s, "in one zone") || strings.Contains(s, "share zone") }) ||
		!slices.ContainsFunc(d.Explain, func(s string) bool { return strings.HasPrefix(s, `zone "b" has 50.0% of the weight`) }) {
		t.Fatalf("explain %q with three zones", d.Explain)
	}
}
