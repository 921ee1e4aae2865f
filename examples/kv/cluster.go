package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clusterkit/clusterkit"
)

// The -cluster mode: three kv nodes in this process, on loopback, and a
// narrated failover. Every wait is on an event or a condition, each bounded
// by StepTimeout.

// storyExtraKeys is how many keys are written besides the featured one, so
// that the end of the story checks more than one partition's data.
const storyExtraKeys = 50

// storyOptions returns the ClusterKit options of the story's nodes when no
// flag overrides them: failure detection and Raft fast enough that the whole
// story takes seconds, with probe timeouts that survive a loaded machine.
func storyOptions() clusterkit.Options {
	o := clusterkit.DefaultOptions()
	o.HealthCheck = clusterkit.HealthCheckConfig{Interval: 100 * time.Millisecond,
		Timeout: 300 * time.Millisecond, FailureThreshold: 3, RemovalGrace: 500 * time.Millisecond}
	o.Raft.HeartbeatTimeout, o.Raft.ElectionTimeout = 250*time.Millisecond, 250*time.Millisecond
	o.RebalanceDelay = 20 * time.Millisecond
	// Joiners become voters quickly, so that the node stopped later is one
	// of three voters, as in a real cluster.
	o.VoterStabilization = 500 * time.Millisecond
	return o
}

// storyConfig configures runStory.
type storyConfig struct {
	// Options are the nodes' shared ClusterKit options; the story sets
	// NodeID, HTTPAddr, DataDir and JoinAddrs.
	Options clusterkit.Options
	// HandoffGrace is the kv nodes' hand-off grace (0: the default).
	HandoffGrace time.Duration
	// StepTimeout bounds every wait of the story (default 20 s).
	StepTimeout time.Duration
}

// storyFacts is what the story established, for its test.
type storyFacts struct {
	Steps      []string // the steps completed, in order
	Leader     string
	Key        string
	Partition  string
	Primary    string        // the key's primary, stopped in step 3
	NewPrimary string        // its primary after the failover
	Failover   time.Duration // from the stop to the new primary's table
	Written    string        // the key's last acknowledged value
	Read       string        // the key's value read at the end (through the client)
	RejoinedAs uint64        // the stopped node's incarnation after its restart (0: no NodeRejoin)
	Moved      int           // partitions the rebalance after the rejoin had to copy
	KeysOK     int           // keys read back intact at the end
	DataDir    string        // the parent of the data directories, removed at the end
}

// storyNode is one of the three nodes; its addresses and data directory
// are kept across the restart.
type storyNode struct {
	id, dir  string
	http, kv string // "127.0.0.1:0" until the first start picks the ports
	n        *Node  // nil while stopped
	j        *journal
}

// story is the state of one run of the -cluster story.
type story struct {
	cfg     storyConfig
	out     io.Writer
	ctx     context.Context
	nodes   []*storyNode
	client  *Client
	http    *http.Client
	stopped stopState
	facts   storyFacts
	bg      sync.WaitGroup // the write sent during the failover
}

// runStory runs the -cluster story, printing it to out, and stops every
// node and removes the data directories before it returns, on failure too.
func runStory(ctx context.Context, cfg storyConfig, out io.Writer) (facts *storyFacts, err error) {
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 20 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &story{cfg: cfg, out: out, ctx: ctx, http: &http.Client{Timeout: 2 * time.Second}}
	begin := time.Now()
	root, err := os.MkdirTemp("", "kv-cluster-")
	if err != nil {
		cancel()
		return nil, err
	}
	s.facts.DataDir = root
	defer func() {
		cancel()
		s.bg.Wait() // it uses the client, which stopAll closes
		t := time.Now()
		stopped, stopErr := s.stopAll()
		if rmErr := os.RemoveAll(root); rmErr != nil {
			stopErr = errors.Join(stopErr, rmErr)
		}
		if stopErr != nil {
			err = errors.Join(err, fmt.Errorf("clean stop: %w", stopErr))
		}
		if err == nil {
			s.say("== done: stopped the %d nodes in %v and removed their data directories; the story took %v",
				stopped, ms(time.Since(t)), ms(time.Since(begin)))
		}
		facts = &s.facts
	}()
	for i := range 3 {
		id := fmt.Sprintf("node-%d", i+1)
		s.nodes = append(s.nodes, &storyNode{id: id, dir: filepath.Join(root, id), http: "127.0.0.1:0", kv: "127.0.0.1:0"})
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"formation", s.formation},
		{"write", s.write},
		{"stop", s.stop},
		{"failover", s.failover},
		{"rejoin", s.rejoin},
		{"rebalance", s.rebalance},
	}
	for i, st := range steps {
		if err := st.fn(); err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i+1, st.name, err)
		}
		s.facts.Steps = append(s.facts.Steps, st.name)
	}
	return nil, nil
}

// say prints one line of the story (a printf wrapper, so vet checks the calls).
func (s *story) say(format string, args ...any) {
	fmt.Fprintf(s.out, format, args...)
	fmt.Fprintln(s.out)
}

// step bounds one wait.
func (s *story) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.cfg.StepTimeout)
}

func (s *story) node(id string) *storyNode {
	for _, sn := range s.nodes {
		if sn.id == id {
			return sn
		}
	}
	return nil
}

// start creates the node (again, on the same data directory and ports, for
// a restart), registers its journal before Start so that it sees the
// node's whole life, and starts it.
func (s *story) start(sn *storyNode, join []string) (time.Duration, error) {
	o := s.cfg.Options
	o.NodeID, o.HTTPAddr, o.DataDir, o.JoinAddrs = sn.id, sn.http, sn.dir, join
	n, err := NewNode(Config{ClusterKit: o, KVAddr: sn.kv, HandoffGrace: s.cfg.HandoffGrace})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", sn.id, err)
	}
	j := watch(n.CK)
	ctx, cancel := s.step()
	defer cancel()
	t := time.Now()
	if err := n.Start(ctx); err != nil {
		return 0, fmt.Errorf("start %s: %w", sn.id, err) // a failed Start stopped the node
	}
	took := time.Since(t)
	sn.n, sn.j, sn.http, sn.kv = n, j, selfAddr(n.CK), n.KVAddr
	return took, nil
}

// stopAll closes the smart client (its Router follows a node's event
// stream), then stops the running nodes, the last started first.
func (s *story) stopAll() (int, error) {
	if s.client != nil {
		s.client.Close()
	}
	var errs []error
	stopped := 0
	for _, sn := range slices.Backward(s.nodes) {
		if sn.n == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := sn.n.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", sn.id, err))
		}
		cancel()
		sn.n = nil
		stopped++
	}
	s.http.CloseIdleConnections()
	return stopped, errors.Join(errs...)
}

// waitFor polls cond until it holds, for at most StepTimeout.
func (s *story) waitFor(what string, cond func() (bool, error)) error {
	ctx, cancel := s.step()
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// kvReady waits until sn's kv API says it is ready: a member holding its
// partitions, all loaded.
func (s *story) kvReady(sn *storyNode) (Status, error) {
	var st Status
	err := s.waitFor(sn.id+"'s kv store to load its partitions", func() (bool, error) {
		resp, err := s.http.Get("http://" + sn.kv + "/ready")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		st = Status{}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return false, err
		}
		return st.Ready && st.Held > 0, fmt.Errorf("status %+v", st)
	})
	return st, err
}

func (s *story) formation() error {
	s.say("== 1. formation: three nodes in this process, on 127.0.0.1, ports chosen by the OS")
	first := s.nodes[0]
	took, err := s.start(first, nil)
	if err != nil {
		return err
	}
	ck := first.n.CK
	c := ck.GetCluster()
	s.say("%s bootstrapped cluster %s in %v: %d partitions, replication factor %d; ClusterKit on %s, kv API on %s",
		first.id, ck.ClusterID(), ms(took), c.Config.PartitionCount, c.Config.ReplicationFactor, first.http, first.kv)
	for _, sn := range s.nodes[1:] {
		from := first.j.len()
		took, err := s.start(sn, []string{first.http})
		if err != nil {
			return err
		}
		join, _, err := awaitEvent(s, first.j, from, "NodeJoin of "+sn.id, func(e *clusterkit.NodeJoinEvent) bool { return e.Node.ID == sn.id })
		if err != nil {
			return err
		}
		rc, _, err := awaitEvent(s, first.j, from, "the rebalance after "+sn.id+" joined", func(e *clusterkit.RebalanceEvent) bool {
			return e.TriggerNodeID == sn.id
		})
		if err != nil {
			return err
		}
		s.say("%s joined through %s in %v (NodeJoin seq %v, cluster size %d); the rebalance had %d partitions to copy, committed in %v; kv API on %s",
			sn.id, first.id, ms(took), join.Seq, join.ClusterSize, rc.PartitionsToMove, ms(rc.Duration), sn.kv)
	}
	for _, sn := range s.nodes {
		if _, err := s.kvReady(sn); err != nil {
			return err
		}
	}
	err = s.waitFor("three Raft voters and a leader", func() (bool, error) {
		h := ck.HealthCheck()
		return h.Voters == 3 && s.node(h.Leader) != nil, fmt.Errorf("leader %q, voters %v, non-voters %v", h.Leader, h.VoterIDs, h.NonVoterIDs)
	})
	if err != nil {
		return err
	}
	h := ck.HealthCheck()
	s.facts.Leader = h.Leader
	s.say("leader %s (term %d), voters %s; partition table version %d, primaries/copies per node: %s",
		h.Leader, h.Term, strings.Join(h.VoterIDs, ", "), h.TableVersion, balance(ck))
	return nil
}

// witness is a running node that the story never stops: the leader.
func (s *story) witness() *storyNode { return s.node(s.facts.Leader) }

func (s *story) write() error {
	w := s.witness()
	ck := w.n.CK
	// The featured key's primary must not be the leader: the story shows
	// the leader's failure detector noticing the stopped primary.
	var p *clusterkit.Partition
	for i := 1; i <= 1000 && p == nil; i++ {
		key := fmt.Sprintf("user:%d", i)
		q, err := ck.GetPartition(key)
		if err != nil {
			return err
		}
		if q.PrimaryNode != s.facts.Leader {
			s.facts.Key, p = key, q
		}
	}
	if p == nil {
		return errors.New("no key among user:1..user:1000 has a primary other than the leader")
	}
	key := s.facts.Key
	s.facts.Partition, s.facts.Primary = p.ID, p.PrimaryNode
	hc := ck.GetCluster().HashConfig
	s.say("\n== 2. a write routed to its primary")
	s.say("%q -> %s (%s) -> primary %s, replicas %s, epoch %d",
		key, p.ID, hc.Formula, p.PrimaryNode, strings.Join(p.ReplicaNodes, ", "), p.Epoch)

	var gateways []string
	for _, sn := range s.nodes {
		gateways = append(gateways, sn.http)
	}
	s.client = NewClient(gateways...)
	ctx, cancel := s.step()
	defer cancel()
	t := time.Now()
	ack, err := s.client.write(ctx, http.MethodPut, key, []byte("v1"))
	if err != nil {
		return err
	}
	took := time.Since(t)
	if ack.Node != p.PrimaryNode || ack.Partition != p.ID {
		return fmt.Errorf("the write was taken by %s for %s, want the primary %s for %s", ack.Node, ack.Partition, p.PrimaryNode, p.ID)
	}
	s.facts.Written = "v1"
	s.say("the smart client (client.go) sent PUT %s=v1 to %s, which acknowledged it in %v once %s had it too (version %d, epoch %d)",
		key, ack.Node, ms(took), strings.Join(ack.Acked, " and "), ack.Version, ack.Epoch)

	replica := p.ReplicaNodes[0]
	t = time.Now()
	res, err := s.client.call(ctx, replica, s.client.kvOf(replica), http.MethodGet, key, nil)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK || string(res.body) != "v1" {
		return fmt.Errorf("read from the replica %s: %d %q", replica, res.status, res.body)
	}
	s.say("read back from the replica %s directly: %q (%v)", replica, res.body, ms(time.Since(t)))

	t = time.Now()
	for i := range storyExtraKeys {
		if err := s.client.Put(ctx, fmt.Sprintf("item:%d", i), []byte(fmt.Sprint("value-", i))); err != nil {
			return err
		}
	}
	s.say("and %d more keys (item:0..item:%d) through the client in %v, to check at the end",
		storyExtraKeys, storyExtraKeys-1, ms(time.Since(t)))
	return nil
}

// Carried from step 3 to the next ones.
type stopState struct {
	at          time.Time
	from        int               // the witness's journal position at the stop
	rejoinFrom  int               // and at the restart
	incarnation uint64            // of the stopped node
	left        time.Time         // when the witness got its NodeLeave
	primaries   map[string]string // partition -> primary before the stop
	write       chan writeOutcome // the write sent right after the stop
}

type writeOutcome struct {
	ack  *writeAck
	err  error
	took time.Duration
}

func (s *story) stop() error {
	victim, w := s.node(s.facts.Primary), s.witness()
	s.say("\n== 3. %s, the primary of %s, is stopped (Stop, not Leave: nobody tells the cluster, %s's failure detector must notice)",
		victim.id, s.facts.Partition, w.id)
	s.stopped = stopState{primaries: primaries(w.n.CK), from: w.j.len(), write: make(chan writeOutcome, 1),
		incarnation: incarnation(w.n.CK, victim.id)}
	ctx, cancel := s.step()
	defer cancel()
	s.stopped.at = time.Now()
	err := victim.n.Stop(ctx)
	victim.n = nil
	if err != nil {
		return err
	}
	s.say("%s stopped in %v; its ports are closed", victim.id, ms(time.Since(s.stopped.at)))

	// A write sent now can only be taken by the next primary: its latency
	// is how long the key could not be written. The client retries it.
	s.bg.Go(func() {
		ctx, cancel := s.step()
		defer cancel()
		t := time.Now()
		ack, err := s.client.write(ctx, http.MethodPut, s.facts.Key, []byte("v2"))
		s.stopped.write <- writeOutcome{ack, err, time.Since(t)}
	})

	leave, at, err := awaitEvent(s, w.j, s.stopped.from, "NodeLeave of "+victim.id, func(e *clusterkit.NodeLeaveEvent) bool {
		return e.Node.ID == victim.id
	})
	if err != nil {
		return err
	}
	for _, r := range w.j.since(s.stopped.from) {
		if h, ok := r.ev.(*clusterkit.ClusterHealthEvent); ok && slices.Contains(h.UnhealthyNodeIDs, victim.id) {
			s.say("%v after the stop: cluster health %s -> %s, unhealthy %v", ms(r.at.Sub(s.stopped.at)), h.PreviousStatus, h.Status, h.UnhealthyNodeIDs)
			break
		}
	}
	s.say("%v after the stop: %s removed %s (NodeLeave, reason %s); it was primary of %d partitions and replica of %d",
		ms(at.Sub(s.stopped.at)), w.id, victim.id, leave.Reason, len(leave.PartitionsOwned), len(leave.PartitionsReplica))
	s.stopped.left = at
	return nil
}

func (s *story) failover() error {
	w := s.witness()
	s.say("\n== 4. failover")
	// Events are delivered once their entry is applied: the table read
	// now is at least the one of the removal.
	gone := func(p *clusterkit.Partition) bool { return p.PrimaryNode == "" || p.PrimaryNode == s.facts.Primary }
	p, err := w.n.CK.GetPartition(s.facts.Key)
	if err != nil {
		return err
	}
	if !gone(p) {
		s.facts.Failover = s.stopped.left.Sub(s.stopped.at)
		s.say("%v after the stop, %s has a new primary: the removal itself promoted the replica %s (epoch %d)",
			ms(s.facts.Failover), p.ID, p.PrimaryNode, p.Epoch)
	}
	rc, at, err := awaitEvent(s, w.j, s.stopped.from, "the rebalance after "+s.facts.Primary+" left", func(e *clusterkit.RebalanceEvent) bool {
		return e.TriggerNodeID == s.facts.Primary
	})
	if err != nil {
		return err
	}
	q, err := w.n.CK.GetPartition(s.facts.Key)
	if err != nil {
		return err
	}
	switch {
	case gone(q):
		return fmt.Errorf("%s's primary after the rebalance is %q", q.ID, q.PrimaryNode)
	case gone(p):
		s.facts.Failover = at.Sub(s.stopped.at)
		s.say("%v after the stop, %s has a new primary: the rebalance after the removal (%s) made %s its primary (epoch %d)",
			ms(s.facts.Failover), q.ID, rc.Trigger, q.PrimaryNode, q.Epoch)
	case q.PrimaryNode != p.PrimaryNode:
		s.say("%v after the stop, the rebalance that followed (%s, %d partitions to copy) evened out the primaries: %s's is now %s (epoch %d); %s",
			ms(at.Sub(s.stopped.at)), rc.Trigger, rc.PartitionsToMove, q.ID, q.PrimaryNode, q.Epoch, balance(w.n.CK))
	default:
		s.say("%v after the stop, the rebalance that followed (%s) had %d partitions to copy; %s kept its primary %s; %s",
			ms(at.Sub(s.stopped.at)), rc.Trigger, rc.PartitionsToMove, q.ID, q.PrimaryNode, balance(w.n.CK))
	}
	s.facts.NewPrimary = q.PrimaryNode

	ctx, cancel := s.step()
	defer cancel()
	var wo writeOutcome
	select {
	case wo = <-s.stopped.write:
	case <-ctx.Done():
		return fmt.Errorf("the write sent after the stop: %w", ctx.Err())
	}
	if wo.err != nil {
		return fmt.Errorf("the write sent after the stop: %w", wo.err)
	}
	if wo.ack.Node == s.facts.Primary {
		return fmt.Errorf("the write sent after the stop was taken by the stopped %s", wo.ack.Node)
	}
	s.facts.Written = "v2"
	s.say("PUT %s=v2, sent right after the stop, was retried by the client (backoff up to 500ms) until %s took it: acknowledged %v after it was sent (replicas %v)",
		s.facts.Key, wo.ack.Node, ms(wo.took), wo.ack.Acked)
	t := time.Now()
	v, err := s.client.Get(ctx, s.facts.Key)
	if err != nil {
		return err
	}
	if string(v) != "v2" {
		return fmt.Errorf("GET %s = %q after the failover, want v2", s.facts.Key, v)
	}
	s.say("GET %s through the client: %q (%v)", s.facts.Key, v, ms(time.Since(t)))
	return nil
}

func (s *story) rejoin() error {
	victim, w := s.node(s.facts.Primary), s.witness()
	s.say("\n== 5. %s restarts on its data directory, same ports, no join address: it asks the peers it knew", victim.id)
	from := w.j.len()
	took, err := s.start(victim, nil)
	if err != nil {
		return err
	}
	started := time.Now()
	rj, at, err := awaitEvent(s, w.j, from, "NodeRejoin of "+victim.id, func(e *clusterkit.NodeRejoinEvent) bool {
		return e.Node.ID == victim.id
	})
	if err != nil {
		return err
	}
	// The event's node may not carry the incarnation; the table does.
	s.facts.RejoinedAs = incarnation(w.n.CK, victim.id)
	s.say("%s's Start returned in %v; %s got NodeRejoin %v after the stop: offline %v, incarnation %d (was %d), it held %d partitions before",
		victim.id, ms(took), w.id, ms(at.Sub(s.stopped.at)), ms(rj.OfflineDuration), s.facts.RejoinedAs, s.stopped.incarnation, len(rj.PartitionsBeforeLeave))
	st, err := s.kvReady(victim)
	if err != nil {
		return err
	}
	s.say("its kv store reloaded %d partitions (%d keys) from the live owners; ready %v after Start returned", st.Loaded, st.Keys, ms(time.Since(started)))
	s.stopped.rejoinFrom = from
	return nil
}

func (s *story) rebalance() error {
	victim, w := s.node(s.facts.Primary), s.witness()
	s.say("\n== 6. rebalance with %s back", victim.id)
	rc, _, err := awaitEvent(s, w.j, s.stopped.rejoinFrom, "the rebalance after "+victim.id+" rejoined", func(e *clusterkit.RebalanceEvent) bool {
		return e.TriggerNodeID == victim.id
	})
	if err != nil {
		return err
	}
	s.facts.Moved = rc.PartitionsToMove
	before, now := s.stopped.primaries, primaries(w.n.CK)
	changed := 0
	for id, primary := range now {
		if before[id] != primary {
			changed++
		}
	}
	p, err := w.n.CK.GetPartition(s.facts.Key)
	if err != nil {
		return err
	}
	s.say("the rebalance (%s) had %d partitions to copy, committed in %v; primaries/copies per node: %s",
		rc.Trigger, rc.PartitionsToMove, ms(rc.Duration), balance(w.n.CK))
	s.say("%d of %d partitions have another primary than before the stop; %s: primary %s, epoch %d",
		changed, len(now), p.ID, p.PrimaryNode, p.Epoch)

	ctx, cancel := s.step()
	defer cancel()
	// A manual rebalance commits a table even when nothing moves, so its
	// event always comes.
	from := w.j.len()
	t := time.Now()
	if err := w.n.CK.RebalancePartitions(ctx); err != nil {
		return err
	}
	took := time.Since(t)
	manual, _, err := awaitEvent(s, w.j, from, "the manual rebalance", func(e *clusterkit.RebalanceEvent) bool { return e.Trigger == "manual" })
	if err != nil {
		return err
	}
	s.say("RebalancePartitions on %s returned in %v: %d partitions to move, the table is balanced", w.id, ms(took), manual.PartitionsToMove)

	want := map[string]string{s.facts.Key: s.facts.Written}
	for i := range storyExtraKeys {
		want[fmt.Sprintf("item:%d", i)] = fmt.Sprint("value-", i)
	}
	t = time.Now()
	for _, key := range sortedKeys(want) {
		v, err := s.client.Get(ctx, key)
		if err != nil {
			return err
		}
		if string(v) != want[key] {
			return fmt.Errorf("GET %s = %q, want %q", key, v, want[key])
		}
		s.facts.KeysOK++
	}
	s.facts.Read = want[s.facts.Key]
	s.say("all %d keys read back through the client in %v, %s=%q", len(want), ms(time.Since(t)), s.facts.Key, s.facts.Read)
	if slices.Contains(p.ReplicaNodes, victim.id) || p.PrimaryNode == victim.id {
		res, err := s.client.call(ctx, victim.id, victim.kv, http.MethodGet, s.facts.Key, nil)
		if err != nil {
			return err
		}
		if res.status != http.StatusOK || string(res.body) != s.facts.Written {
			return fmt.Errorf("%s serves %s: %d %q, want %q", victim.id, s.facts.Key, res.status, res.body, s.facts.Written)
		}
		s.say("%s, an owner of %s again, serves %s=%q itself: the write it missed while stopped was reloaded", victim.id, p.ID, s.facts.Key, res.body)
	}
	return nil
}

// journal records a node's lifecycle events as its On... callbacks receive
// them, with when they arrived, so that the story can wait for one.
type journal struct {
	mu      sync.Mutex
	events  []record
	changed chan struct{} // closed and replaced on every event
}

type record struct {
	at time.Time
	ev any // *clusterkit.NodeJoinEvent, *clusterkit.RebalanceEvent, ...
}

// watch registers the journal's callbacks; before Start, they get every
// event of the node's life. Stop removes them.
func watch(ck *clusterkit.ClusterKit) *journal {
	j := &journal{changed: make(chan struct{})}
	ck.OnNodeJoin(func(e *clusterkit.NodeJoinEvent) { j.add(e) })
	ck.OnNodeLeave(func(e *clusterkit.NodeLeaveEvent) { j.add(e) })
	ck.OnNodeRejoin(func(e *clusterkit.NodeRejoinEvent) { j.add(e) })
	ck.OnRebalanceComplete(func(e *clusterkit.RebalanceEvent, _ time.Duration) { j.add(e) })
	ck.OnClusterHealthChange(func(e *clusterkit.ClusterHealthEvent) { j.add(e) })
	return j
}

func (j *journal) add(ev any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, record{time.Now(), ev})
	close(j.changed)
	j.changed = make(chan struct{})
}

func (j *journal) len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.events)
}

func (j *journal) since(from int) []record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events[from:])
}

// awaitEvent returns the first event of type E at or after position from
// that matches, and when it arrived, waiting at most StepTimeout.
func awaitEvent[E any](s *story, j *journal, from int, what string, match func(E) bool) (E, time.Time, error) {
	ctx, cancel := s.step()
	defer cancel()
	for {
		j.mu.Lock()
		for _, r := range j.events[from:] {
			if e, ok := r.ev.(E); ok && match(e) {
				j.mu.Unlock()
				return e, r.at, nil
			}
		}
		changed := j.changed
		from = len(j.events)
		j.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			var zero E
			return zero, time.Time{}, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// primaries maps every partition to its primary.
func primaries(ck *clusterkit.ClusterKit) map[string]string {
	out := map[string]string{}
	for id, p := range ck.GetCluster().PartitionMap.Partitions {
		out[id] = p.PrimaryNode
	}
	return out
}

// balance is "node-1 22/64, ..." (primaries/copies per node).
func balance(ck *clusterkit.ClusterKit) string {
	prim, copies := map[string]int{}, map[string]int{}
	for _, p := range ck.GetCluster().PartitionMap.Partitions {
		prim[p.PrimaryNode]++
		copies[p.PrimaryNode]++
		for _, r := range p.ReplicaNodes {
			copies[r]++
		}
	}
	var parts []string
	for _, id := range sortedKeys(copies) {
		parts = append(parts, fmt.Sprintf("%s %d/%d", id, prim[id], copies[id]))
	}
	return strings.Join(parts, ", ")
}

// incarnation is the member's current life, as ck's table says (0: not a member).
func incarnation(ck *clusterkit.ClusterKit, id string) uint64 {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == id {
			return n.Incarnation
		}
	}
	return 0
}

func selfAddr(ck *clusterkit.ClusterKit) string {
	for _, n := range ck.GetCluster().Nodes {
		if n.ID == ck.GetMyNodeID() {
			return n.IP
		}
	}
	return ""
}

// ms rounds d for reading: to the millisecond, or to 10 µs below 10 ms.
func ms(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
