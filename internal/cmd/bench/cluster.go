package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/crashnet"
)

// settings select a node configuration.
type settings struct {
	// tuned: Raft heartbeat/election 150 ms and FastHealthCheck (a quiet LAN);
	// otherwise DefaultOptions.
	tuned bool
	// dataDir gives every node a DataDir (raft-wal, fsync) in a temporary directory.
	dataDir bool
	keyHash clusterkit.KeyHash
	// removalGrace, when set, replaces the health check's removal grace
	// (a member that is down stays a member for that long).
	removalGrace time.Duration
	// partitions, when set, is the PartitionCount at bootstrap.
	partitions int
	// handoff sets Options.Handoff (loads wait for the application's
	// acknowledgement); unthrottled switches every hand-off throttle off;
	// replicaDelay, when set, replaces ReplicaDelay (negative: off).
	handoff, unthrottled bool
	replicaDelay         time.Duration
	// prepare, when set, runs on every node newNode creates, before it
	// starts: callbacks registered there see every event of its life.
	prepare func(*node)
	// startTimeout, when set, replaces Options.StartTimeout (many
	// simultaneous joiners queue behind each other's admissions).
	startTimeout time.Duration
	// modify, when set, adjusts every node's options last.
	modify func(*clusterkit.Options)
}

// node is one in-process ClusterKit with its own crashable network.
type node struct {
	id   string
	addr string
	dir  string
	net  *crashnet.Network
	ck   *clusterkit.ClusterKit
}

func options(id, addr string, join []string, s settings) clusterkit.Options {
	o := clusterkit.DefaultOptions()
	o.NodeID, o.HTTPAddr, o.JoinAddrs = id, addr, join
	o.Logger = slog.New(slog.DiscardHandler)
	if os.Getenv("BENCH_LOG") != "" { // debugging a failed measurement
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})) // ClusterKit adds node=<id>
	}
	o.KeyHash = s.keyHash
	if s.removalGrace > 0 {
		o.HealthCheck.RemovalGrace = s.removalGrace
	}
	o.PartitionCount, o.Handoff = s.partitions, s.handoff
	if s.unthrottled {
		// Negative switches MaxMovesPerNode and the fraction off (0 would
		// mean their defaults); MaxMovesInFlight 0 is "no absolute limit".
		o.MaxMovesPerNode, o.MaxMovesInFlight, o.MaxMovesInFlightFraction = -1, 0, -1
	}
	if s.startTimeout > 0 {
		o.StartTimeout = s.startTimeout
	}
	if s.replicaDelay != 0 {
		o.ReplicaDelay = s.replicaDelay
	}
	if s.tuned {
		o.Raft.HeartbeatTimeout, o.Raft.ElectionTimeout, o.Raft.LeaderLeaseTimeout = 150*time.Millisecond, 150*time.Millisecond, 100*time.Millisecond
		o.HealthCheck = clusterkit.FastHealthCheck()
	}
	if s.modify != nil {
		s.modify(&o)
	}
	return o
}

// freeAddr returns a loopback address that was free a moment ago. Nodes that
// start at the same moment must know each other's addresses beforehand.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// newNode creates (does not start) a node listening on addr ("": a free
// port) that joins through join (none: it bootstraps a new cluster).
func newNode(id, addr string, join []string, s settings) (*node, error) {
	var err error
	if addr == "" {
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	n := &node{id: id, addr: addr, net: &crashnet.Network{}}
	if s.dataDir {
		if n.dir, err = os.MkdirTemp("", "clusterkit-bench-"); err != nil {
			return nil, err
		}
	}
	o := options(id, addr, join, s)
	o.DataDir, o.Network = n.dir, n.net
	if n.ck, err = clusterkit.New(o); err != nil {
		n.cleanup()
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	if s.prepare != nil {
		s.prepare(n)
	}
	return n, nil
}

// stop stops the node (after a crash too: it reclaims the goroutines) and
// removes its data directory.
func (n *node) stop() {
	_ = n.ck.Stop(context.Background())
	n.cleanup()
}

func (n *node) cleanup() {
	if n.dir != "" {
		_ = os.RemoveAll(n.dir)
	}
}

// crash makes the node vanish as after kill -9: its peers see resets and
// refused connections. Call stop afterwards.
func (n *node) crash() { n.net.Crash() }

// cluster is a set of nodes started by startCluster.
type cluster struct {
	nodes []*node
	s     settings
}

// startCluster starts n nodes one after the other (node-1 bootstraps, the
// others join it) and waits until all agree on a table that places them all
// and min(n, MaxVoters) of them are Raft voters: joiners start as
// non-voters, and every figure is measured on a cluster that has its votes
// (commits wait for a quorum of them, elections need them).
func startCluster(n int, s settings) (*cluster, error) {
	c := &cluster{s: s}
	for i := 1; i <= n; i++ {
		if _, err := c.add(fmt.Sprintf("node-%d", i)); err != nil {
			c.stop()
			return nil, err
		}
	}
	if err := waitFor(30*time.Second+time.Duration(n)*time.Second, fmt.Sprintf("%d nodes to converge", n), func() bool { return converged(c.cks(), n) }); err != nil {
		c.stop()
		return nil, err
	}
	if err := c.waitVoters(30*time.Second, min(n, clusterkit.DefaultMaxVoters)); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// waitVoters waits until every node's Raft configuration has want voters.
// The leader lists a promotion as soon as it appends it: a crash of the
// leader before the others have it leaves them with the old voters, which
// may be too few to elect anyone.
func (c *cluster) waitVoters(timeout time.Duration, want int) error {
	return waitFor(timeout, fmt.Sprintf("%d voters on every node", want), func() bool {
		for _, n := range c.nodes {
			if n.ck.HealthCheck().Voters != want {
				return false
			}
		}
		return true
	})
}

// add starts one more node that joins through the first one.
func (c *cluster) add(id string) (*node, error) {
	var join []string
	if len(c.nodes) > 0 {
		join = []string{c.nodes[0].addr}
	}
	nd, err := newNode(id, "", join, c.s)
	if err != nil {
		return nil, err
	}
	if err := nd.ck.Start(context.Background()); err != nil {
		nd.stop()
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	c.nodes = append(c.nodes, nd)
	return nd, nil
}

func (c *cluster) cks() []*clusterkit.ClusterKit {
	out := make([]*clusterkit.ClusterKit, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.ck
	}
	return out
}

// stop stops every node, followers first so that each leader hand-over
// finds a voter only once.
func (c *cluster) stop() {
	var leaders []*node
	for _, n := range c.nodes {
		if n.ck.HealthCheck().IsLeader {
			leaders = append(leaders, n)
			continue
		}
		n.stop()
	}
	for _, n := range leaders {
		n.stop()
	}
	c.nodes = nil
}

// leader returns the node that leads now, waiting for one.
func (c *cluster) leader() (*node, error) {
	var l *node
	err := waitFor(10*time.Second, "a leader", func() bool {
		for _, n := range c.nodes {
			if !n.net.Crashed() && n.ck.HealthCheck().IsLeader {
				l = n
				return true
			}
		}
		return false
	})
	return l, err
}

// others returns the nodes except x.
func (c *cluster) others(x *node) []*node {
	var out []*node
	for _, n := range c.nodes {
		if n != x {
			out = append(out, n)
		}
	}
	return out
}

// converged reports whether every node applied the same table and the first
// node's view has the given number of members, all of them owning
// partitions.
func converged(cks []*clusterkit.ClusterKit, members int) bool {
	c := cks[0].GetCluster()
	if len(c.Nodes) != members || c.PartitionMap == nil || len(c.PartitionMap.Partitions) == 0 {
		return false
	}
	owners := map[string]bool{}
	for _, p := range c.PartitionMap.Partitions {
		owners[p.PrimaryNode] = true
		for _, r := range p.ReplicaNodes {
			owners[r] = true
		}
	}
	for _, n := range c.Nodes {
		if !owners[n.ID] {
			return false
		}
	}
	sum := cks[0].TableChecksum()
	for _, ck := range cks[1:] {
		if ck.TableChecksum() != sum {
			return false
		}
	}
	return true
}

// errTimeout marks a wait that ran out of time.
var errTimeout = errors.New("timed out")

// waitFor polls cond every 0.5 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, what string, cond func() bool) error {
	return waitEvery(500*time.Microsecond, timeout, what, cond)
}

// waitEvery polls cond every period until it holds or timeout passes.
func waitEvery(period, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s waiting for %s", errTimeout, timeout, what)
		}
		time.Sleep(period)
	}
	return nil
}

// drop stops nd (crashed or not) and forgets it.
func (c *cluster) drop(nd *node) {
	nd.stop()
	c.nodes = c.others(nd)
}

// settled waits until the leader's Raft configuration lists exactly the
// cluster's nodes. A departed voter stays in it for a grace period after
// Leave returns, and two departures inside that window can leave the
// remaining voters without a quorum.
func (c *cluster) settled() error {
	l, err := c.leader()
	if err != nil {
		return err
	}
	return waitFor(10*time.Second, "raft's configuration to drop departed nodes", func() bool {
		h := l.ck.HealthCheck()
		return h.Voters+h.NonVoters == len(c.nodes)
	})
}
