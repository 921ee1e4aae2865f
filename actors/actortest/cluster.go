package actortest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/logging"
	"github.com/clusterkit/clusterkit/internal/memnet"
	"github.com/clusterkit/clusterkit/internal/placement"
)

// Option configures NewCluster.
type Option func(*settings)

type settings struct {
	seed      int64
	configure []func(i int, o *clusterkit.Options)
	setup     []func(i int, ck *clusterkit.ClusterKit)
	inMemory  bool
	leakCheck bool
	noVoters  bool
}

// Seed makes the network's random decisions (drops, delay jitter)
// reproducible. Default 1.
func Seed(seed int64) Option { return func(s *settings) { s.seed = seed } }

// Configure adjusts the options of node i (0-based) before it starts; it is
// applied again on every Restart of that node.
func Configure(f func(i int, o *clusterkit.Options)) Option {
	return func(s *settings) { s.configure = append(s.configure, f) }
}

// Setup runs f on node i's process between New and Start (on every start,
// restarts included): subscribe your actors there to see everything from the
// node's first event on.
func Setup(f func(i int, ck *clusterkit.ClusterKit)) Option {
	return func(s *settings) { s.setup = append(s.setup, f) }
}

// InMemory runs nodes without a data directory: a restarted node comes back
// empty and rejoins.
func InMemory() Option { return func(s *settings) { s.inMemory = true } }

// NoVoterWait makes NewCluster, AddNode and Restart return as soon as the
// node is ready, without waiting for the leader to promote it to voter (for
// tests of the learner window; see WaitVoters).
func NoVoterWait() Option { return func(s *settings) { s.noVoters = true } }

// NoLeakCheck turns off the goroutine-leak check at the end of the test
// (for tests that share the process with other long-lived goroutines).
func NoLeakCheck() Option { return func(s *settings) { s.leakCheck = false } }

// Cluster is n real nodes in the test process, connected by an in-memory
// network with fault injection. Node indexes are 0-based; node i is named
// "node-<i+1>" and listens on "n<i+1>:7000".
type Cluster struct {
	t    testing.TB
	net  *memnet.Network
	s    settings
	dir  string               // the nodes' data directories live under it ("" in memory)
	logs *logging.LineChecker // every node's log lines, as JSON (see logger)

	mu    sync.Mutex
	nodes []*member
}

type member struct {
	idx  int
	ck   *clusterkit.ClusterKit
	opts clusterkit.Options
	live bool
}

// FastTimings are the Raft and rebalance timings the harness uses: quick
// elections and rebalances (re-replication without ReplicaDelay), still
// stable under -race on a small machine.
func FastTimings(o *clusterkit.Options) {
	o.Raft.HeartbeatTimeout = 100 * time.Millisecond
	o.Raft.ElectionTimeout = 100 * time.Millisecond
	o.Raft.LeaderLeaseTimeout = 100 * time.Millisecond
	o.Raft.CommitTimeout = 5 * time.Millisecond
	o.RebalanceDelay = 20 * time.Millisecond
	// Scenarios expect a crashed member's partitions re-replicated as soon
	// as it is removed; a test of ReplicaDelay sets its own.
	o.ReplicaDelay = -1
	o.StartTimeout = 30 * time.Second
	o.VoterStabilization = 200 * time.Millisecond
}

// NewCluster starts n nodes: node 0 bootstraps, the others join it. It
// returns once every node has started (use WaitConverged to wait for the
// rebalances).
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	s := settings{seed: 1, leakCheck: true}
	for _, o := range opts {
		o(&s)
	}
	if s.leakCheck {
		// Registered first, so it runs after every node's Stop.
		ignore := goleak.IgnoreCurrent()
		t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	}
	c := &Cluster{t: t, net: memnet.New(s.seed), s: s, logs: &logging.LineChecker{}}
	// Registered before stopAll, so it runs after every node's Stop.
	t.Cleanup(c.checkLogs)
	if !s.inMemory {
		// Created before stopAll is registered: cleanups run last-in
		// first-out, so every node stops before its directory is removed
		// (a node stopping on a removed directory would recreate it).
		c.dir = t.TempDir()
	}
	t.Cleanup(c.stopAll)
	for range n {
		c.addNode(false)
	}
	c.waitVoters()
	return c
}

// waitVoters waits for the voters unless the test said not to.
func (c *Cluster) waitVoters() {
	if !c.s.noVoters {
		c.WaitVoters(30 * time.Second)
	}
}

// WaitVoters waits until the live nodes have their votes: min(live members,
// MaxVoters) of them are voters in the committed membership, and the
// leader's Raft configuration has as many voters as the membership. Every
// node joins as a non-voter and is promoted once it has been healthy for
// VoterStabilization: until then, losing a voter may cost the quorum.
func (c *Cluster) WaitVoters(timeout time.Duration) {
	c.t.Helper()
	c.waitFor(timeout, "the live members to be voters", func() bool {
		live := map[string]bool{}
		var leader *clusterkit.ClusterKit
		for _, i := range c.Live() {
			ck := c.Node(i)
			live[ck.GetMyNodeID()] = true
			if ck.HealthCheck().IsLeader {
				leader = ck
			}
		}
		if leader == nil {
			return false
		}
		cl := leader.GetCluster()
		if cl.Config == nil {
			return false
		}
		members, liveVoters, voters := 0, 0, 0
		for _, n := range cl.Nodes {
			if n.Voter {
				voters++
			}
			if live[n.ID] {
				members++
				if n.Voter {
					liveVoters++
				}
			}
		}
		return liveVoters >= min(members, cl.Config.MaxVoters) && leader.HealthCheck().Voters == voters
	})
}

func (c *Cluster) addr(i int) string { return fmt.Sprintf("n%d:7000", i+1) }

func (c *Cluster) host(i int) string { return fmt.Sprintf("n%d", i+1) }

// logger returns the nodes' logger. Every record at DEBUG and above is
// written by a JSON handler to the cluster's line checker: a line that is
// not one JSON object, or that has a key twice, fails the test when it
// ends (checkLogs). Nothing is printed unless CLUSTERKIT_TEST_LOG is set
// (to debug, info, warn or error): the records at that level and above are
// then printed on stderr as text too.
func (c *Cluster) logger() *slog.Logger {
	h := slog.Handler(slog.NewJSONHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if lvl := os.Getenv("CLUSTERKIT_TEST_LOG"); lvl != "" {
		var level slog.Level
		_ = level.UnmarshalText([]byte(lvl))
		h = logging.Tee(h, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(h)
}

// LogStats returns how many log lines the nodes wrote (at DEBUG and above)
// and how many of them had each level ("DEBUG", "INFO", "WARN", "ERROR").
// Every one of them is checked to be a JSON object with unique keys.
func (c *Cluster) LogStats() (lines int, levels map[string]int) {
	n, _ := c.logs.Lines()
	return n, c.logs.Levels()
}

// checkLogs fails the test for every log line that was not a JSON object
// with unique keys (the first ten are shown).
func (c *Cluster) checkLogs() {
	n, problems := c.logs.Lines()
	if len(problems) == 0 {
		return
	}
	shown := problems[:min(len(problems), 10)]
	c.t.Errorf("actortest: %d of %d log lines are not JSON objects with unique keys:\n  %s", len(problems), n, strings.Join(shown, "\n  "))
}

func (c *Cluster) options(i int) clusterkit.Options {
	o := clusterkit.DefaultOptions()
	o.NodeID = fmt.Sprintf("node-%d", i+1)
	o.HTTPAddr = c.addr(i)
	o.Network = c.net.Host(c.host(i))
	o.Logger = c.logger()
	FastTimings(&o)
	if c.dir != "" {
		o.DataDir = filepath.Join(c.dir, o.NodeID)
	}
	for _, f := range c.s.configure {
		f(i, &o)
	}
	return o
}

// seedsFor lists the addresses of the live nodes other than i.
func (c *Cluster) seedsFor(i int) []string {
	var out []string
	for _, m := range c.nodes {
		if m.live && m.idx != i {
			out = append(out, c.addr(m.idx))
		}
	}
	return out
}

func (c *Cluster) start(m *member) {
	c.t.Helper()
	if err := c.tryStart(m); err != nil {
		c.t.Fatalf("actortest: node-%d: %v", m.idx+1, err)
	}
}

func (c *Cluster) tryStart(m *member) error {
	c.mu.Lock()
	opts := m.opts
	c.mu.Unlock()
	ck, err := clusterkit.New(opts)
	if err != nil {
		return err
	}
	for _, f := range c.s.setup {
		f(m.idx, ck)
	}
	if err := ck.Start(context.Background()); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	c.mu.Lock()
	m.ck, m.live = ck, true
	c.mu.Unlock()
	return nil
}

// AddNode starts one more node that joins through the live nodes, and
// returns its index once it is ready and (unless NoVoterWait) the live
// members have their votes.
func (c *Cluster) AddNode() int {
	c.t.Helper()
	i := c.addNode(true)
	return i
}

func (c *Cluster) addNode(wait bool) int {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	m := &member{idx: i, opts: c.options(i)}
	m.opts.JoinAddrs = c.seedsFor(i)
	c.nodes = append(c.nodes, m)
	c.mu.Unlock()
	c.start(m)
	if wait {
		c.waitVoters()
	}
	return i
}

func (c *Cluster) member(i int) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("actortest: no node %d (the cluster has %d)", i, len(c.nodes))
	}
	return c.nodes[i]
}

// N is the number of nodes ever added (live or not).
func (c *Cluster) N() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Node returns node i's current process (after a Restart, the new one).
func (c *Cluster) Node(i int) *clusterkit.ClusterKit {
	m := c.member(i)
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.ck
}

// Alive reports whether node i runs.
func (c *Cluster) Alive(i int) bool {
	m := c.member(i)
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.live
}

// Live returns the indexes of the running nodes.
func (c *Cluster) Live() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, m := range c.nodes {
		if m.live {
			out = append(out, m.idx)
		}
	}
	return out
}

// Address returns node i's address.
func (c *Cluster) Address(i int) string { return c.addr(i) }

// Kill stops node i abruptly, like kill -9: its links are cut first, so it
// neither hands over leadership nor leaves; the others see it vanish. It stays
// a member until removed.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if !c.Alive(i) {
		c.t.Fatalf("actortest: Kill(%d): node is not running", i)
	}
	m := c.member(i)
	c.net.Isolate(c.host(i))
	// A crash is not polite: an ended context skips Stop's graceful part
	// (hand-overs that an isolated node would wait on in vain).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Node(i).Stop(ctx)
	c.net.Reconnect(c.host(i)) // the machine is up, the process is gone: dials are refused
	c.mu.Lock()
	m.live = false
	c.mu.Unlock()
}

// Stop stops node i the polite way (a leader hands leadership over first);
// it stays a member.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	m := c.member(i)
	if err := c.Node(i).Stop(context.Background()); err != nil {
		c.t.Errorf("actortest: Stop(%d): %v", i, err)
	}
	c.mu.Lock()
	m.live = false
	c.mu.Unlock()
}

// Restart starts node i again on its data directory and address, as a new
// life (the cluster sees a rejoin).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.TryRestart(i); err != nil {
		c.t.Fatalf("actortest: node-%d: %v", i+1, err)
	}
}

// TryRestart is Restart that returns Start's error (a refused data
// directory, say) instead of failing the test; the node stays down then.
func (c *Cluster) TryRestart(i int) error {
	c.t.Helper()
	if c.Alive(i) {
		return fmt.Errorf("actortest: Restart(%d): node is running; Kill or Stop it first", i)
	}
	m := c.member(i)
	opts := c.options(i)
	c.mu.Lock()
	opts.DataDir = m.opts.DataDir
	opts.JoinAddrs = c.seedsFor(i)
	m.opts = opts
	c.mu.Unlock()
	if err := c.tryStart(m); err != nil {
		return err
	}
	c.waitVoters()
	return nil
}

// DataDir returns node i's data directory ("" with InMemory).
func (c *Cluster) DataDir(i int) string {
	m := c.member(i)
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.opts.DataDir
}

// Wipe deletes node i's data directory, as a lost disk: its next Restart
// starts with no state and joins as a new life. The node must be down.
func (c *Cluster) Wipe(i int) {
	c.t.Helper()
	if c.Alive(i) {
		c.t.Fatalf("actortest: Wipe(%d): node is running; Kill or Stop it first", i)
	}
	if dir := c.DataDir(i); dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			c.t.Fatalf("actortest: Wipe(%d): %v", i, err)
		}
	}
}

// Network returns the cluster's in-memory network as seen from host (a
// name such as "x1", distinct from the nodes' "n1", "n2", ...), to start
// other processes on it: a second process with a node's ID, a fake node.
func (c *Cluster) Network(host string) clusterkit.Network { return c.net.Host(host) }

// Leave makes node i leave the cluster for good.
func (c *Cluster) Leave(i int) error {
	m := c.member(i)
	err := c.Node(i).Leave(context.Background())
	if err == nil {
		c.mu.Lock()
		m.live = false
		c.mu.Unlock()
	}
	return err
}

func (c *Cluster) hosts(idx []int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = c.host(i)
	}
	return out
}

// Partition splits the network into groups of node indexes; nodes in
// different groups cannot talk (black hole: nothing is lost, it waits for
// Heal). Nodes in no group form one more group.
func (c *Cluster) Partition(groups ...[]int) {
	var hs [][]string
	for _, g := range groups {
		hs = append(hs, c.hosts(g))
	}
	c.net.Partition(hs...)
}

// PartitionOneWay blocks traffic from the nodes in from to the nodes in to.
func (c *Cluster) PartitionOneWay(from, to []int) { c.net.PartitionOneWay(c.hosts(from), c.hosts(to)) }

// SetDropRate makes a fraction p of new connections fail and resets
// established ones at random (p/10 per write).
func (c *Cluster) SetDropRate(p float64) { c.net.SetDropRate(p) }

// SetDelay delays every delivery by d plus up to jitter.
func (c *Cluster) SetDelay(d, jitter time.Duration) { c.net.SetDelay(d, jitter) }

// Isolate cuts node i off (connections reset, dials fail) without stopping it.
func (c *Cluster) Isolate(i int) { c.net.Isolate(c.host(i)) }

// Heal removes every network fault.
func (c *Cluster) Heal() { c.net.Heal() }

// WaitLeader waits until the live nodes agree on a leader and returns its index.
func (c *Cluster) WaitLeader(timeout time.Duration) int {
	c.t.Helper()
	leader := -1
	c.waitFor(timeout, "a leader that every live node knows", func() bool {
		leader = -1
		var id string
		for _, i := range c.Live() {
			h := c.Node(i).HealthCheck()
			if h.Leader == "" || (id != "" && h.Leader != id) {
				return false
			}
			id = h.Leader
			if h.IsLeader {
				leader = i
			}
		}
		return leader >= 0
	})
	return leader
}

// Converged reports whether every live node holds the same committed table
// (same checksum and version), is a member of it, and the table is the
// rebalanced one for the current members: every partition has min(RF, N)
// owners and every member holds floor or ceil of its share of them.
func (c *Cluster) Converged() bool {
	var checksum, version uint64
	for k, i := range c.Live() {
		ck := c.Node(i)
		if !ck.HealthCheck().Ready {
			return false
		}
		cl := ck.GetCluster()
		if cl.Config == nil {
			return false
		}
		// Balanced: every member within one of its optimum, which zones,
		// weights and drains shape (without them, RF·P/N each).
		in := placement.Input{Partitions: len(cl.PartitionMap.Partitions), RF: cl.Config.ReplicationFactor,
			Zones: map[string]string{}, Weights: map[string]int{}}
		for _, n := range cl.Nodes {
			in.Members = append(in.Members, n.ID)
			in.Zones[n.ID], in.Weights[n.ID] = n.Zone, n.Weight
			if n.Drained { // placement plans a drained member with weight 0
				in.Weights[n.ID] = 0
			}
		}
		targets, _ := placement.Targets(in)
		want := 0
		for _, t := range targets {
			if t > 0 {
				want++
			}
		}
		want = min(cl.Config.ReplicationFactor, want)
		slots := map[string]int{}
		for _, p := range cl.PartitionMap.Partitions {
			if 1+len(p.ReplicaNodes) != want || p.PrimaryNode == "" {
				return false
			}
			slots[p.PrimaryNode]++
			for _, r := range p.ReplicaNodes {
				slots[r]++
			}
		}
		for _, n := range cl.Nodes {
			if t := targets[n.ID]; float64(slots[n.ID]) < math.Floor(t+1e-9) || float64(slots[n.ID]) > math.Ceil(t-1e-9) {
				return false
			}
		}
		sum := TableChecksum(ck)
		if k == 0 {
			checksum, version = sum, cl.Version
		} else if sum != checksum || cl.Version != version {
			return false
		}
	}
	return true
}

// WaitConverged waits until Converged holds and returns how long it took.
func (c *Cluster) WaitConverged(timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	c.waitFor(timeout, "all live nodes to converge on one table", c.Converged)
	return time.Since(start)
}

func (c *Cluster) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	if !Poll(timeout, cond) {
		c.t.Fatalf("actortest: timed out after %v waiting for %s\n%s", timeout, what, c.describe())
	}
}

// Eventually waits until cond holds, checking every few milliseconds, and
// fails the test naming what it waited for if timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("actortest: timed out after %v waiting for %s", timeout, what)
	}
}

// Poll reports whether cond holds within timeout, checking every few
// milliseconds: Eventually without failing the test, for a test that says
// more about what it found.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// describe summarises every live node's view, for failure messages.
func (c *Cluster) describe() string {
	var b strings.Builder
	for _, i := range c.Live() {
		ck := c.Node(i)
		h := ck.HealthCheck()
		cl := ck.GetCluster()
		fmt.Fprintf(&b, "  node-%d: raft=%s leader=%q members=%d version=%d table=%d checksum=%x ready=%v problems=%v\n",
			i+1, h.RaftState, h.Leader, len(cl.Nodes), cl.Version, cl.TableVersion, TableChecksum(ck), h.Ready, h.Problems)
	}
	return b.String()
}

func (c *Cluster) stopAll() {
	c.mu.Lock()
	nodes := append([]*member(nil), c.nodes...)
	c.mu.Unlock()
	c.net.Heal()
	for k := len(nodes) - 1; k >= 0; k-- {
		c.mu.Lock()
		m := nodes[k]
		ck, live := m.ck, m.live
		m.live = false
		c.mu.Unlock()
		if live {
			_ = ck.Stop(context.Background())
		}
	}
}

// TableChecksum identifies a node's committed table (owners and epochs).
func TableChecksum(ck *clusterkit.ClusterKit) uint64 { return ck.TableChecksum() }
