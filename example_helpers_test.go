package clusterkit_test

// Helpers of the runnable examples (example_*_test.go). An example that
// needs a node or a cluster gets it here, so that it shows only what it is
// about; Example, ExampleNew and ExampleClusterKit_Start show the whole
// start of a node.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/clusterkit/clusterkit"
)

// exampleOptions returns the options of an in-process node on a free
// loopback port, with timings for nodes that share one machine: 100 ms Raft
// timeouts, a joiner votes after 200 ms of health, a membership change is
// rebalanced after 10 ms. Deployments keep the defaults (DefaultOptions).
func exampleOptions(id string, join ...string) clusterkit.Options {
	o := clusterkit.DefaultOptions()
	o.NodeID = id
	o.HTTPAddr = "127.0.0.1:0" // any free port
	o.JoinAddrs = join
	o.Logger = slog.New(slog.DiscardHandler) // keep the examples' output clean
	o.Raft = clusterkit.RaftTimings{
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
	}
	o.VoterStabilization = 200 * time.Millisecond
	o.RebalanceDelay = 10 * time.Millisecond
	return o
}

// startNode creates and starts a node, panicking on error. setup runs
// between New and Start: callbacks and subscriptions made there get every
// event of the node's life.
func startNode(o clusterkit.Options, setup ...func(*clusterkit.ClusterKit)) *clusterkit.ClusterKit {
	ck, err := clusterkit.New(o)
	if err != nil {
		panic(err)
	}
	for _, f := range setup {
		f(ck)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ck.Start(ctx); err != nil {
		panic(err)
	}
	return ck
}

// addressOf returns the address a started node advertises to its peers
// (with HTTPAddr "127.0.0.1:0", the port it was given).
func addressOf(ck *clusterkit.ClusterKit) string {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == ck.GetMyNodeID() {
			return n.IP
		}
	}
	panic("not a member: " + ck.GetMyNodeID())
}

// startCluster starts n nodes, node-1 bootstrapping and the others joining
// through it (change, when not nil, adjusts each node's options), and
// returns once every node has applied a table that places every partition
// on min(n, RF) of them and Raft counts min(n, MaxVoters) voters.
func startCluster(n int, change func(*clusterkit.Options)) []*clusterkit.ClusterKit {
	var nodes []*clusterkit.ClusterKit
	for i := 1; i <= n; i++ {
		o := exampleOptions(fmt.Sprintf("node-%d", i))
		if i > 1 {
			o.JoinAddrs = []string{addressOf(nodes[0])}
		}
		if change != nil {
			change(&o)
		}
		nodes = append(nodes, startNode(o))
	}
	waitSettled(nodes)
	return nodes
}

// waitSettled waits until every node has applied a table that places every
// partition on min(members, RF) live members and Raft counts
// min(members, MaxVoters) voters.
func waitSettled(nodes []*clusterkit.ClusterKit) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := len(nodes)
	for _, ck := range nodes {
		_, err := ck.WaitCluster(ctx, func(c *clusterkit.Cluster) bool {
			if len(c.Nodes) != n {
				return false
			}
			voters := 0
			var ids []string
			for _, m := range c.Nodes {
				ids = append(ids, m.ID)
				if m.Voter {
					voters++
				}
			}
			if voters != min(n, c.Config.MaxVoters) {
				return false
			}
			for _, p := range c.PartitionMap.Partitions {
				if !slices.Contains(ids, p.PrimaryNode) || len(p.ReplicaNodes) != min(n, c.Config.ReplicationFactor)-1 {
					return false
				}
			}
			return true
		})
		if err != nil {
			panic(err)
		}
	}
	// A voter is committed first and Raft's configuration follows it; no
	// committed change marks that moment, so this last condition is polled.
	for _, ck := range nodes {
		for ck.HealthCheck().Voters != min(n, ck.GetCluster().Config.MaxVoters) {
			select {
			case <-ctx.Done():
				panic(fmt.Sprintf("%s: Raft has %v as voters", ck.GetMyNodeID(), ck.HealthCheck().VoterIDs))
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// stopAll stops the nodes in order: node-1, usually the leader, hands its
// leadership over to a live voter first.
func stopAll(nodes []*clusterkit.ClusterKit) {
	for _, ck := range nodes {
		_ = ck.Stop(context.Background())
	}
}
