// Command demo runs a five-node ClusterKit cluster in one process over
// loopback TCP and narrates what happens: bootstrap and leader election,
// four joins with the partitions that move and the balance after each
// rebalance, where keys live, service discovery, a node killed (detected,
// removed, rebalanced) and restarted (NodeRejoin with its offline time), the
// leader killed (failover time), custom data written on one node and read on
// another, the events a user actor received, and a summary of the timings.
// It exits 0 within a minute, or 1 with the reason.
//
//	go run ./examples/demo          # the narrated run
//	go run ./examples/demo -serve   # then keep the nodes running and print their addresses (Ctrl-C stops)
//	go run ./examples/demo -v       # with ClusterKit's own logs
//	go run ./examples/demo -json    # with ClusterKit's own logs, as JSON lines
//
// A "kill" makes a node vanish the way kill -9 does (its listener and every
// connection close at once, internal/crashnet); nothing tells the cluster.
// A killed process writes nothing more: from the kill on, the logs of the
// killed instance (whose leftovers the demo stops in the background) are
// dropped.
// Each node keeps its state in a temporary data directory, so a killed node
// restarts on it, like a process on its disk.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/crashnet"
	"github.com/clusterkit/clusterkit/internal/logging"
	"github.com/clusterkit/clusterkit/messages"
)

// budget bounds the whole narrated run: the demo must end within a minute.
const budget = 55 * time.Second

func main() {
	serve := flag.Bool("serve", false, "keep the nodes running after the demo and print their HTTP addresses (Ctrl-C to stop)")
	verbose := flag.Bool("v", false, "show ClusterKit's own logs")
	jsonLogs := flag.Bool("json", false, "show ClusterKit's own logs as JSON lines (implies -v)")
	flag.Parse()
	d := &demo{verbose: *verbose || *jsonLogs, nodes: map[string]*node{}}
	switch {
	case *jsonLogs:
		d.logs = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	case *verbose:
		d.logs = logging.Default(os.Stderr, slog.LevelInfo).Handler()
	}
	err := d.run(*serve)
	d.stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// node is one cluster member: the ClusterKit instance, the network that can
// kill it, and the events its user actor received.
type node struct {
	id   string
	addr string // host:port, kept across a restart
	dir  string
	ck   *clusterkit.ClusterKit
	net  *crashnet.Network
	rec  *recorder
	// stopped receives the result of stopping a killed node's instance.
	stopped chan error
	// killed silences the current instance's logs (see kill).
	killed *atomic.Bool
}

type demo struct {
	verbose bool
	logs    slog.Handler // every node's logs go there (nil: dropped)
	// audit, when set (by tests), gets every record, the killed
	// instances' too, at the level it enables.
	audit   slog.Handler
	root    string // parent of the data directories
	order   []string
	nodes   map[string]*node
	timings []timing
	ctx     context.Context
}

type timing struct{ what, took, note string }

func (d *demo) note(what string, took time.Duration, note string) {
	d.timings = append(d.timings, timing{what, took.Round(time.Millisecond).String(), note})
}

func (d *demo) options(n *node, join string) clusterkit.Options {
	o := clusterkit.DefaultOptions()
	o.NodeID, o.HTTPAddr, o.DataDir = n.id, n.addr, n.dir
	if join != "" {
		o.JoinAddrs = []string{join}
	}
	o.Network = n.net
	o.Services = map[string]string{"kv": "127.0.0.1:9" + strings.TrimPrefix(n.id, "node-") + "00"}
	o.Logger = slog.New(slog.DiscardHandler)
	if d.logs != nil || d.audit != nil {
		// The audit gets every record, before and after a kill.
		var shown slog.Handler
		if d.logs != nil {
			shown = &silenced{h: d.logs, killed: n.killed}
		}
		o.Logger = slog.New(logging.Tee(shown, d.audit))
	}
	return o
}

// start creates (or re-creates, on the same data directory and address) a
// node, subscribes its user actor before Start so it sees its own join, and
// starts it.
func (d *demo) start(id, join string) (*node, time.Duration, error) {
	n := d.nodes[id]
	if n == nil {
		dir, err := os.MkdirTemp(d.root, id+"-")
		if err != nil {
			return nil, 0, err
		}
		n = &node{id: id, addr: "127.0.0.1:0", dir: dir}
		d.nodes[id] = n
		d.order = append(d.order, id)
	}
	n.net, n.killed = &crashnet.Network{}, new(atomic.Bool)
	ck, err := clusterkit.New(d.options(n, join))
	if err != nil {
		return nil, 0, err
	}
	n.ck, n.rec = ck, newRecorder()
	if err := n.rec.subscribe(ck); err != nil {
		return nil, 0, err
	}
	t := time.Now()
	if err := ck.Start(context.Background()); err != nil {
		_ = ck.Stop(context.Background())
		return nil, 0, fmt.Errorf("start %s: %w", id, err)
	}
	took := time.Since(t)
	n.addr = selfAddr(ck) // the port chosen at the first start is kept for restarts
	return n, took, nil
}

// kill makes the node vanish like a killed process: its listener and every
// connection close at once. Its instance is then stopped in the background,
// as a dead process does nothing more (no probes, no liveness record).
func (d *demo) kill(id string) {
	n := d.nodes[id]
	n.killed.Store(true)
	n.net.Crash()
	n.stopped = make(chan error, 1)
	ck := n.ck
	go func() { n.stopped <- ck.Stop(context.Background()) }()
}

// reap waits until a killed node's instance has stopped, so that it can be
// restarted on its data directory.
func (d *demo) reap(id string) error {
	n := d.nodes[id]
	select {
	case err := <-n.stopped:
		if err != nil && d.verbose {
			fmt.Printf("  (stopping the killed %s's leftovers: %v)\n", id, err)
		}
	case <-d.ctx.Done():
		return fmt.Errorf("the killed %s did not stop", id)
	}
	n.ck = nil
	return nil
}

func (d *demo) stopAll() {
	for _, id := range slices.Backward(d.order) {
		if n := d.nodes[id]; n.ck != nil {
			_ = n.ck.Stop(context.Background())
		}
	}
	if d.root != "" {
		_ = os.RemoveAll(d.root)
	}
}

func (d *demo) alive() []*node {
	var out []*node
	for _, id := range d.order {
		if n := d.nodes[id]; n.ck != nil && !n.net.Crashed() {
			out = append(out, n)
		}
	}
	return out
}

func (d *demo) leader() *node {
	for _, n := range d.alive() {
		if n.ck.HealthCheck().IsLeader {
			return n
		}
	}
	return nil
}

func (d *demo) run(serve bool) error {
	begin := time.Now()
	var cancel context.CancelFunc
	d.ctx, cancel = context.WithTimeout(context.Background(), budget)
	defer cancel()
	root, err := os.MkdirTemp("", "clusterkit-demo-")
	if err != nil {
		return err
	}
	d.root = root

	fmt.Println("== 1. bootstrap and leader election")
	first, took, err := d.start("node-1", "")
	if err != nil {
		return err
	}
	if _, err := first.rec.await(d.ctx, 0, rebalanceBy("node-1")); err != nil {
		return err
	}
	d.note("bootstrap: Start returned (leader elected, table committed)", took, "")
	fmt.Printf("node-1 bootstrapped a new cluster and was elected leader in %v, at %s\n", took.Round(time.Millisecond), first.addr)
	fmt.Printf("  cluster ID %s (random, minted at bootstrap: a node never mixes two clusters' data)\n", first.ck.ClusterID())
	fmt.Printf("  %d partitions, replication factor %d; alone it holds every copy\n", len(first.ck.GetCluster().PartitionMap.Partitions), first.ck.GetCluster().Config.ReplicationFactor)
	printBalance(first.ck)

	fmt.Println("\n== 2. four nodes join; after each, the rebalance moves the fewest partitions to restore balance")
	joined := map[string]time.Time{}
	for _, id := range []string{"node-2", "node-3", "node-4", "node-5"} {
		from := first.rec.len()
		_, took, err := d.start(id, first.addr)
		if err != nil {
			return err
		}
		joined[id] = time.Now()
		done, err := first.rec.await(d.ctx, from, rebalanceBy(id))
		if err != nil {
			return err
		}
		d.note(id+" join: Start returned (admitted, table received)", took, "")
		moves := first.rec.partitionChangesFor(from, id)
		fmt.Printf("%s joined through node-1 in %v; the rebalance moved %d partitions in %v\n",
			id, took.Round(time.Millisecond), done.(*messages.RebalanceComplete).GetPartitionsMoved(),
			time.Duration(done.(*messages.RebalanceComplete).GetDurationNanos()).Round(time.Millisecond))
		fmt.Printf("  %s copies %s\n", id, moves)
		printBalance(first.ck)
	}

	if err := d.awaitVoters(first.ck, joined); err != nil {
		return err
	}

	fmt.Println("\n== 3. where keys live (answered locally from the committed table: one atomic load, no network hop)")
	five := d.nodes["node-5"].ck
	for _, key := range []string{"user:123", "test-key", "order:42"} {
		p, err := five.GetPartition(key)
		if err != nil {
			return err
		}
		var replicas []string
		for _, r := range five.GetReplicas(p) {
			replicas = append(replicas, r.ID)
		}
		fmt.Printf("  %-9s -> %-13s primary=%s replicas=%v epoch=%d\n", key, p.ID, five.GetPrimary(p).ID, replicas, p.Epoch)
	}
	kv := five.ServiceAddresses("kv")
	fmt.Println("service discovery, as seen from node-5: the kv service of each node")
	for _, id := range slices.Sorted(maps.Keys(kv)) {
		fmt.Printf("  %s kv=%s\n", id, kv[id])
	}

	if err := d.killFollower(); err != nil {
		return err
	}
	if err := d.killLeader(); err != nil {
		return err
	}
	if err := d.customData(); err != nil {
		return err
	}

	witness := d.nodes["node-2"] // alive from its join to the end
	fmt.Printf("\n== 8. what a user actor on %s received, in commit order (every node delivers the same events from its own join on)\n", witness.id)
	for _, l := range witness.rec.journal() {
		fmt.Println("  " + l)
	}

	fmt.Println("\n== summary")
	for _, t := range d.timings {
		fmt.Println(strings.TrimRight(fmt.Sprintf("  %-62s %9s  %s", t.what, t.took, t.note), " "))
	}
	fmt.Printf("  %-62s %9s\n", "the whole demo", time.Since(begin).Round(time.Millisecond))

	if serve {
		fmt.Println("\nserving; every node answers the HTTP API on its address (Ctrl-C to stop):")
		for _, n := range d.alive() {
			fmt.Printf("  %s  http://%s   e.g. curl http://%s/cluster\n", n.id, n.addr, n.addr)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
	}
	return nil
}

// awaitVoters waits until every joiner is a Raft voter and says when each
// became one: a joiner starts as a non-voter, and the leader promotes it
// once it has been healthy (caught up, in contact) for VoterStabilization.
func (d *demo) awaitVoters(leader *clusterkit.ClusterKit, joined map[string]time.Time) error {
	fmt.Printf("every joiner started as a non-voter; the leader promotes one once it has been healthy for %v:\n", clusterkit.DefaultVoterStabilization)
	promoted := map[string]time.Duration{}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(promoted) < len(joined) {
		for _, n := range leader.GetCluster().Nodes {
			if at, ok := joined[n.ID]; ok && n.Voter {
				if _, done := promoted[n.ID]; !done {
					promoted[n.ID] = time.Since(at)
				}
			}
		}
		select {
		case <-d.ctx.Done():
			return fmt.Errorf("joiners not promoted to voters in time: %v", promoted)
		case <-tick.C:
		}
	}
	for _, id := range slices.Sorted(maps.Keys(promoted)) {
		fmt.Printf("  %s became a voter %v after its join\n", id, promoted[id].Round(10*time.Millisecond))
		d.note(id+" join -> Raft voter", promoted[id], "VoterStabilization")
	}
	// Autopilot refreshes every server's health twice a second: wait for
	// its view of the last promotion.
	h := leader.HealthCheck()
	for want := h.Voters - (h.Voters/2 + 1); h.FailureTolerance.Voters < want; h = leader.HealthCheck() {
		select {
		case <-d.ctx.Done():
			return fmt.Errorf("failure tolerance %d, want %d", h.FailureTolerance.Voters, want)
		case <-tick.C:
		}
	}
	fmt.Printf("  %d voters, all healthy: the cluster keeps its quorum through %d voter failures,\n", h.Voters, h.FailureTolerance.Voters)
	fmt.Printf("  and every partition keeps a live owner through any %d node failures\n", h.FailureTolerance.Nodes)
	return nil
}

// killFollower kills a follower, waits for the leader to detect and remove
// it, then restarts it on its data directory.
func (d *demo) killFollower() error {
	fmt.Println("\n== 4. node-4 (a follower) is killed: detected, removed, rebalanced")
	witness := d.nodes["node-2"]
	from := witness.rec.len()
	t := time.Now()
	d.kill("node-4")
	left, err := witness.rec.await(d.ctx, from, leaveOf("node-4"))
	if err != nil {
		return err
	}
	detected := time.Since(t)
	if _, err := witness.rec.await(d.ctx, from, rebalanceBy("node-4")); err != nil {
		return err
	}
	rebalanced := time.Since(t)
	l := left.(*messages.NodeLeave)
	fmt.Printf("the leader's prober missed node-4, marked it suspect, and removed it (%s) %v after the kill;\n", l.GetReason(), detected.Round(time.Millisecond))
	fmt.Printf("  it had been primary of %d and replica of %d partitions;\n  %v after the kill every partition had three live owners again\n",
		len(l.GetPartitionsOwned()), len(l.GetPartitionsReplica()), rebalanced.Round(time.Millisecond))
	printBalance(witness.ck)
	d.note("follower killed -> removed (NodeLeave on node-2)", detected, "DefaultHealthCheck")
	d.note("follower killed -> rebalanced", rebalanced, "")
	if err := d.reap("node-4"); err != nil {
		return err
	}

	fmt.Println("\n== 5. node-4 restarts on its data directory and rejoins")
	from = witness.rec.len()
	killedAt := t
	restartAt := time.Now()
	n, took, err := d.start("node-4", witness.addr)
	if err != nil {
		return err
	}
	rj, err := witness.rec.await(d.ctx, from, rejoinOf("node-4"))
	if err != nil {
		return err
	}
	if _, err := witness.rec.await(d.ctx, from, rebalanceBy("node-4")); err != nil {
		return err
	}
	r := rj.(*messages.NodeRejoin)
	fmt.Printf("node-4 was ready %v after Start; NodeRejoin says it was offline for %v (from its own last record; it restarted %v after the kill)\n",
		took.Round(time.Millisecond), time.Duration(r.GetOfflineDurationNanos()).Round(time.Millisecond), restartAt.Sub(killedAt).Round(time.Millisecond))
	// node-4's own user actor is told what to reload, like every node.
	if _, err := n.rec.await(d.ctx, 0, rebalanceBy("node-4")); err != nil {
		return err
	}
	fmt.Printf("  its own user actor got NodeRejoin, then a PartitionChange for each partition to reload:\n    %s\n", n.rec.partitionChangesFor(0, "node-4"))
	printBalance(witness.ck)
	d.note("killed follower restarted: Start returned (NodeRejoin)", took, "")
	return nil
}

// killLeader kills the leader and measures how long the cluster cannot
// commit: until a write through a survivor succeeds.
func (d *demo) killLeader() error {
	old := d.leader()
	if old == nil {
		return errors.New("no leader among the live nodes")
	}
	fmt.Printf("\n== 6. the leader, %s, is killed\n", old.id)
	witness := d.nodes["node-2"]
	if witness == old {
		witness = d.nodes["node-3"]
	}
	from := witness.rec.len()
	t := time.Now()
	d.kill(old.id)
	// The write is sent after the kill, so it can only be retried until a new
	// leader commits it: its latency is the time the cluster could not write.
	if _, err := witness.ck.SetCustomData(d.ctx, "demo/failover", []byte("written by "+witness.id+" after the leader died")); err != nil {
		return fmt.Errorf("write after the leader died: %w", err)
	}
	failover := time.Since(t)
	leader := d.leader()
	if leader == nil {
		return errors.New("a write committed but no live node says it leads")
	}
	fmt.Printf("%s was elected and a write through %s committed %v after the kill\n", leader.id, witness.id, failover.Round(time.Millisecond))
	d.note("leader killed -> a write commits again (failover)", failover, "Raft election timeout 500 ms")
	left, err := witness.rec.await(d.ctx, from, leaveOf(old.id))
	if err != nil {
		return err
	}
	removed := time.Since(t)
	if _, err := witness.rec.await(d.ctx, from, rebalanceBy(old.id)); err != nil {
		return err
	}
	fmt.Printf("the new leader then removed %s (%s) %v after the kill; the cluster runs on %d nodes: %s\n",
		old.id, left.(*messages.NodeLeave).GetReason(), removed.Round(time.Millisecond), len(d.alive()), witness.ck.HealthCheck().ClusterStatus)
	d.note("leader killed -> removed (NodeLeave)", removed, "")
	return d.reap(old.id)
}

// customData writes on one node and reads linearizably on another.
func (d *demo) customData() error {
	fmt.Println("\n== 7. custom data: written on one node, read on another")
	// Written on a follower, so the write is forwarded to the leader; read
	// on another node, linearizably.
	var followers []*node
	for _, n := range d.alive() {
		if !n.ck.HealthCheck().IsLeader {
			followers = append(followers, n)
		}
	}
	if len(followers) < 2 {
		return errors.New("fewer than two followers alive")
	}
	writer, reader := followers[0], followers[len(followers)-1]
	t := time.Now()
	version, err := writer.ck.SetCustomData(d.ctx, "flags/dark-mode", []byte("on"))
	if err != nil {
		return err
	}
	wrote := time.Since(t)
	value, v, err := reader.ck.GetCustomDataLinearizable(d.ctx, "flags/dark-mode")
	if err != nil {
		return err
	}
	if v != version || string(value) != "on" {
		return fmt.Errorf("%s read %q version %d, %s wrote %q version %d", reader.id, value, v, writer.id, "on", version)
	}
	fmt.Printf("%s (a follower) wrote flags/dark-mode=on in %v, forwarded to the leader; %s read it linearizably: %q, version %d\n",
		writer.id, wrote.Round(time.Millisecond), reader.id, value, v)
	value, _, _ = d.nodes["node-2"].ck.GetCustomData("demo/failover")
	fmt.Printf("and the write made during the failover is there too: demo/failover=%q\n", value)
	d.note("custom data write from a follower (commit + apply)", wrote, "")
	return nil
}

func selfAddr(ck *clusterkit.ClusterKit) string {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == ck.GetMyNodeID() {
			return n.IP
		}
	}
	return ""
}

// printBalance prints, per node, how many partitions it is primary of and
// how many copies it holds, against the integer optimum.
func printBalance(ck *clusterkit.ClusterKit) {
	c := ck.GetCluster()
	primaries, copies := map[string]int{}, map[string]int{}
	for _, p := range c.PartitionMap.Partitions {
		primaries[p.PrimaryNode]++
		copies[p.PrimaryNode]++
		for _, r := range p.ReplicaNodes {
			copies[r]++
		}
	}
	var ids []string
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s %d/%d", id, primaries[id], copies[id]))
	}
	total := 0
	for _, n := range copies {
		total += n
	}
	fmt.Printf("  balance (primary/copies): %s   [optimum %s primaries, %s copies per node; %s]\n",
		strings.Join(parts, "  "), optimum(len(c.PartitionMap.Partitions), len(ids)), optimum(total, len(ids)), ck.HealthCheck().ClusterStatus)
}

// optimum is the integer optimum of spreading n items over k nodes.
func optimum(n, k int) string {
	if k == 0 {
		return "-"
	}
	if n%k == 0 {
		return fmt.Sprint(n / k)
	}
	return fmt.Sprintf("%d-%d", n/k, n/k+1)
}

// silenced passes records on until its node is killed, then drops them: a
// killed process writes nothing more, while the demo stops the killed
// instance's leftovers in the background.
type silenced struct {
	h      slog.Handler
	killed *atomic.Bool
}

func (s *silenced) Enabled(ctx context.Context, l slog.Level) bool {
	return !s.killed.Load() && s.h.Enabled(ctx, l)
}

func (s *silenced) Handle(ctx context.Context, r slog.Record) error {
	if s.killed.Load() {
		return nil
	}
	return s.h.Handle(ctx, r)
}

func (s *silenced) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &silenced{h: s.h.WithAttrs(attrs), killed: s.killed}
}

func (s *silenced) WithGroup(name string) slog.Handler {
	return &silenced{h: s.h.WithGroup(name), killed: s.killed}
}
