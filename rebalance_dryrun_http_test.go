package clusterkit

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// POST /rebalance?dry_run=true answers the plan that PlanRebalance computes
// on the answering node and commits nothing: every node keeps its state
// and table version. A bad dry_run value is a 400 and changes nothing.
func TestHTTPRebalanceDryRun(t *testing.T) {
	leakCheck(t)
	_, router := openAPI(t)
	// With Handoff and no application acknowledging its loads, the copies
	// to the second node stay syncing and MaxMovesPerNode holds the rest
	// back: a plan with work in it.
	var nodes []*ClusterKit
	for i := 1; i <= 2; i++ {
		seed := ""
		if i > 1 {
			seed = nodes[0].advertise
		}
		o := clusterOptions(t, i, seed)
		o.AuthToken = testToken
		o.PartitionCount, o.ReplicationFactor = 16, 2
		o.Handoff = true
		o.MaxMovesPerNode = 1
		nodes = append(nodes, startNode(t, o))
	}
	// Both members agree on a state that no longer changes.
	last, stable := "", time.Now()
	waitFor(t, 20*time.Second, "two members agreeing on a settled state", func() bool {
		s := clusterState(nodes)
		v0, v1 := nodes[0].fsm.View(), nodes[1].fsm.View()
		if s != last || len(v0.Members()) != 2 || !v0.HasTable() || v0.Version() != v1.Version() {
			last, stable = s, time.Now()
			return false
		}
		return time.Since(stable) > 500*time.Millisecond
	})
	leader := leaderOf(t, nodes)
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	c := newClient(t, follower)
	ctx := t.Context()

	for _, n := range nodes {
		before, tables := clusterState(nodes), []uint64{nodes[0].fsm.View().TableVersion(), nodes[1].fsm.View().TableVersion()}
		base := "http://" + n.advertise
		body := validated(t, router, base, oaCall{method: "POST", path: "/rebalance?dry_run=true",
			header: map[string]string{"Authorization": "Bearer " + testToken}, status: http.StatusOK})
		want, err := n.PlanRebalance()
		if err != nil {
			t.Fatal(err)
		}
		var got RebalancePlan
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v in %s", n.opts.NodeID, err, body)
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if string(wj) != string(gj) {
			t.Errorf("%s: dry run answered %s, PlanRebalance says %s", n.opts.NodeID, gj, wj)
		}
		t.Logf("%s: plan %s", n.opts.NodeID, gj)

		validated(t, router, base, oaCall{method: "POST", path: "/rebalance?dry_run=true", status: http.StatusUnauthorized})
		validated(t, router, base, oaCall{method: "POST", path: "/rebalance?dry_run=maybe",
			header: map[string]string{"Authorization": "Bearer " + testToken}, status: http.StatusBadRequest})

		// Anything the dry run committed is applied on both nodes after a
		// barrier through each (a no-op entry changes no state).
		for _, m := range nodes {
			if err := m.Barrier(ctx); err != nil {
				t.Fatalf("%s: barrier: %v", m.opts.NodeID, err)
			}
		}
		if after := clusterState(nodes); after != before {
			t.Fatalf("the dry run changed the cluster: %s, then %s", before, after)
		}
		for i, m := range nodes {
			if v := m.fsm.View().TableVersion(); v != tables[i] {
				t.Fatalf("%s: table version %d after the dry run, %d before", m.opts.NodeID, v, tables[i])
			}
		}
	}

	// The typed client.
	plan, err := c.PlanRebalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Moves+plan.Pending == 0 || len(plan.Partitions) == 0 {
		t.Errorf("the plan of a cluster with syncing copies held back: %+v", plan)
	}
	for _, p := range plan.Partitions {
		if p.PartitionID == "" || p.Current == nil || p.Target == nil || p.Add == nil || p.Release == nil {
			t.Errorf("planned partition %+v", p)
		}
	}
}
