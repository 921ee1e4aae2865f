package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterkit/clusterkit"
)

// The -story mode: one replication and routing mode, a cluster of -nodes
// (10) nodes in this process on loopback, -keys (1,000) keys written and
// read back, two nodes join (rebalance), one is killed (failover) and
// restarted (rejoin), while a write and read load runs; at the end every
// key is read back and compared with its last acknowledged value. It
// prints a short report (phases, requests, failures, lost acknowledged
// writes) and fails when the mode broke its promise.

// modeStoryConfig configures runModeStory.
type modeStoryConfig struct {
	Options     clusterkit.Options // shared; the story sets the node's ID, addresses, data directory and joins
	Replication Replication
	Routing     Routing
	AsyncQueue  int
	Nodes       int // the cluster before the joins (default 10)
	Joiners     int // nodes that join under load (default 2)
	Keys        int // default 1,000
	Writers     int // writers of the background load (default 4), each paced
	StepTimeout time.Duration
}

// phaseReport is one phase of the story.
type phaseReport struct {
	Name     string
	Took     time.Duration
	Requests int64 // the load's requests that ended during the phase
	Failed   int64 // of those, the ones that returned an error to the application
	Note     string
}

// modeReport is what a story measured.
type modeReport struct {
	Replication Replication
	Routing     Routing
	Nodes       int
	Keys        int
	Phases      []phaseReport
	Requests    int64
	Failed      int64
	JoinFailed  int64 // failed requests during the joins (the hand-off should make it 0)
	Acked       int64 // acknowledged writes, the initial ones included
	Lost        int   // keys whose final value is older than their last acknowledged write
	StaleReads  int64 // reads older than a write acknowledged before they began (sync), or refused with ErrStale (async client)
	Killed      string
	QueuedAtKil int // async: writes queued on the killed node when it was killed
	Total       time.Duration
}

// kvAPI is what the load needs of a client: the smart client, or the plain
// HTTP client of server routing.
type kvAPI interface {
	Put(ctx context.Context, key string, value []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
}

// modeStory is the state of one run.
type modeStory struct {
	cfg   modeStoryConfig
	out   io.Writer
	ctx   context.Context
	root  string
	nodes []*storyNode
	http  *http.Client
	rep   modeReport

	clients []interface{ Close() }
	addrMu  sync.Mutex // the nodes' addresses, set by start
	phase   atomic.Pointer[phaseCounters]

	// The load's bookkeeping: per key, the last acknowledged and the last
	// attempted sequence number (a failed write may have been applied).
	mu    sync.Mutex
	acked map[string]int
	tried map[string]int
}

type phaseCounters struct {
	requests, failed, stale atomic.Int64
	first                   atomic.Pointer[string] // the first failure, for the report
}

func (c *modeStoryConfig) defaults() {
	c.Replication = cmpOr(c.Replication, ReplicationSync)
	c.Routing = cmpOr(c.Routing, RoutingClient)
	if c.Nodes <= 0 {
		c.Nodes = 10
	}
	if c.Joiners < 0 {
		c.Joiners = 0
	} else if c.Joiners == 0 {
		c.Joiners = 2
	}
	if c.Keys <= 0 {
		c.Keys = 1000
	}
	if c.Writers <= 0 {
		c.Writers = 4
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = 30 * time.Second
	}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// runModeStory runs one story and prints its report to out. The nodes are
// stopped and their directories removed before it returns, on failure too.
func runModeStory(ctx context.Context, cfg modeStoryConfig, out io.Writer) (*modeReport, error) {
	cfg.defaults()
	var rep *modeReport
	err := withModeStory(ctx, cfg, out, func(s *modeStory) error {
		rep = &s.rep
		return s.run()
	})
	return rep, err
}

// withModeStory sets a story up (its nodes not started yet), runs fn, then
// stops every node and removes the data directories, on failure too.
func withModeStory(ctx context.Context, cfg modeStoryConfig, out io.Writer, fn func(*modeStory) error) (err error) {
	if cfg.Nodes < 3 {
		return fmt.Errorf("-nodes %d: the story kills one node of at least 3", cfg.Nodes)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &modeStory{cfg: cfg, out: out, ctx: ctx, http: &http.Client{Timeout: 2 * time.Second},
		acked: map[string]int{}, tried: map[string]int{}}
	s.rep = modeReport{Replication: cfg.Replication, Routing: cfg.Routing, Nodes: cfg.Nodes, Keys: cfg.Keys}
	s.phase.Store(&phaseCounters{})
	begin := time.Now()
	root, err := os.MkdirTemp("", "kv-story-")
	if err != nil {
		cancel()
		return err
	}
	s.root = root
	defer func() {
		cancel()
		for _, c := range s.clients {
			c.Close()
		}
		var errs []error
		for _, sn := range slices.Backward(s.nodes) {
			if sn.n != nil {
				sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
				if e := sn.n.Stop(sctx); e != nil {
					errs = append(errs, fmt.Errorf("stop %s: %w", sn.id, e))
				}
				scancel()
				sn.n = nil
			}
		}
		s.http.CloseIdleConnections()
		errs = append(errs, os.RemoveAll(root))
		if e := errors.Join(errs...); e != nil {
			err = errors.Join(err, fmt.Errorf("clean stop: %w", e))
		}
		s.rep.Total = time.Since(begin)
	}()
	for i := range cfg.Nodes + max(cfg.Joiners, 0) {
		id := fmt.Sprintf("node-%d", i+1)
		s.nodes = append(s.nodes, &storyNode{id: id, dir: filepath.Join(root, id), http: "127.0.0.1:0", kv: "127.0.0.1:0"})
	}
	return fn(s)
}

// run runs the phases, the load from the end of the first writes to the
// final check, and prints the report.
func (s *modeStory) run() error {
	cfg, out := s.cfg, s.out
	fmt.Fprintf(out, "== kv story: replication %s, routing %s; %d nodes, then %d join; %d keys; %d paced writers and a reader run through the joins, the kill and the rejoin\n",
		cfg.Replication, cfg.Routing, cfg.Nodes, max(cfg.Joiners, 0), cfg.Keys, cfg.Writers)
	phases := []struct {
		name string
		fn   func() (string, error)
	}{
		{"formation", s.formation},
		{"write and read", s.writeAll},
		{"join", s.join},
		{"kill", s.kill},
		{"rejoin", s.rejoin},
		{"check", s.check},
	}
	fmt.Fprintf(out, "%-15s %9s %9s %7s  %s\n", "phase", "time", "requests", "failed", "what happened")
	var load sync.WaitGroup
	stopLoad := func() {}
	defer func() { stopLoad() }()
	for _, ph := range phases {
		if ph.name == "check" {
			stopLoad() // the check reads what the load left
			stopLoad = func() {}
		}
		pc := &phaseCounters{}
		s.phase.Store(pc)
		t := time.Now()
		note, err := ph.fn()
		pr := phaseReport{Name: ph.name, Took: time.Since(t), Requests: pc.requests.Load(), Failed: pc.failed.Load(), Note: note}
		s.rep.Phases = append(s.rep.Phases, pr)
		s.rep.Requests += pr.Requests
		s.rep.Failed += pr.Failed
		s.rep.StaleReads += pc.stale.Load()
		if ph.name == "join" {
			s.rep.JoinFailed = pr.Failed
		}
		if err != nil {
			fmt.Fprintf(out, "%-15s %9v %9d %7d  FAILED: %v\n", pr.Name, ms(pr.Took), pr.Requests, pr.Failed, err)
			return fmt.Errorf("%s: %w", ph.name, err)
		}
		fmt.Fprintf(out, "%-15s %9v %9d %7d  %s\n", pr.Name, ms(pr.Took), pr.Requests, pr.Failed, note)
		if first := pc.first.Load(); first != nil {
			fmt.Fprintf(out, "%-15s first failure: %s\n", "", *first)
		}
		if ph.name == "write and read" {
			lctx, lcancel := context.WithCancel(s.ctx)
			s.startLoad(lctx, &load)
			stopLoad = func() { lcancel(); load.Wait() }
		}
	}
	s.summary()
	return s.verdict()
}

// summary prints the totals.
func (s *modeStory) summary() {
	r := &s.rep
	fmt.Fprintf(s.out, "result: %d keys, %d requests, %d failed (%d during the joins), %d acknowledged writes, lost acknowledged writes: %d",
		r.Keys, r.Requests, r.Failed, r.JoinFailed, r.Acked, r.Lost)
	if r.Replication == ReplicationAsync {
		fmt.Fprintf(s.out, " (%d writes were queued on %s when it was killed)", r.QueuedAtKil, r.Killed)
	}
	fmt.Fprintf(s.out, ", stale reads: %d; %v in all\n", r.StaleReads, ms(r.total()))
}

func (r *modeReport) total() time.Duration {
	var d time.Duration
	for _, p := range r.Phases {
		d += p.Took
	}
	return d
}

// verdict: what each mode promises. No failed request during the joins
// (they go through ClusterKit's hand-off) in any mode; under sync
// replication no acknowledged write lost and no stale read.
func (s *modeStory) verdict() error {
	r := &s.rep
	var errs []error
	if r.JoinFailed > 0 {
		errs = append(errs, fmt.Errorf("%d requests failed during the joins", r.JoinFailed))
	}
	if r.Replication == ReplicationSync && r.Lost > 0 {
		errs = append(errs, fmt.Errorf("%d acknowledged writes lost under sync replication", r.Lost))
	}
	if r.Replication == ReplicationSync && r.StaleReads > 0 {
		errs = append(errs, fmt.Errorf("%d reads returned a value older than one acknowledged before they began", r.StaleReads))
	}
	return errors.Join(errs...)
}

func (s *modeStory) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.cfg.StepTimeout)
}

// start creates and starts sn (again, on the same ports and directory, for
// a restart).
func (s *modeStory) start(sn *storyNode, join []string) error {
	o := s.cfg.Options
	o.NodeID, o.HTTPAddr, o.DataDir, o.JoinAddrs = sn.id, sn.http, sn.dir, join
	n, err := NewNode(Config{ClusterKit: o, KVAddr: sn.kv, Replication: s.cfg.Replication, Routing: s.cfg.Routing, AsyncQueue: s.cfg.AsyncQueue})
	if err != nil {
		return fmt.Errorf("%s: %w", sn.id, err)
	}
	ctx, cancel := s.step()
	defer cancel()
	if err := n.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", sn.id, err)
	}
	s.addrMu.Lock() // the load's plain client reads the kv addresses
	sn.n, sn.http, sn.kv = n, selfAddr(n.CK), n.KVAddr
	s.addrMu.Unlock()
	return nil
}

// startAll starts nodes at once, joining through via.
func (s *modeStory) startAll(nodes []*storyNode, via string) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, sn := range nodes {
		wg.Go(func() { errs[i] = s.start(sn, []string{via}) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *modeStory) running() []*storyNode {
	var out []*storyNode
	for _, sn := range s.nodes {
		if sn.n != nil {
			out = append(out, sn)
		}
	}
	return out
}

// waitFor polls cond until it holds, for at most StepTimeout.
func (s *modeStory) waitFor(what string, cond func() (bool, error)) error {
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
			return fmt.Errorf("%s: %w (last: %v)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// settled waits until the running nodes are exactly the members, every
// partition has a primary among them, and every node's kv store is ready.
func (s *modeStory) settled(what string) error {
	return s.waitFor(what, func() (bool, error) {
		run := s.running()
		live := map[string]bool{}
		for _, sn := range run {
			live[sn.id] = true
		}
		for _, sn := range run {
			c := sn.n.CK.GetCluster()
			if len(c.Nodes) != len(run) {
				return false, fmt.Errorf("%s sees %d members, %d run", sn.id, len(c.Nodes), len(run))
			}
			if c.PartitionMap == nil {
				return false, fmt.Errorf("%s has no table", sn.id)
			}
			for id, p := range c.PartitionMap.Partitions {
				if !live[p.PrimaryNode] {
					return false, fmt.Errorf("%s: %s's primary is %q", sn.id, id, p.PrimaryNode)
				}
				for _, o := range p.Owners {
					if o.State != clusterkit.OwnerReady {
						return false, fmt.Errorf("%s: %s's owner %s is %s", sn.id, id, o.ID, o.State)
					}
				}
			}
			// At rest: nothing left to move, no hand-off in progress.
			plan, err := sn.n.CK.PlanRebalance()
			if err != nil || plan.Moves > 0 || plan.Pending > 0 {
				return false, fmt.Errorf("%s: the table is not at rest: %+v (%v)", sn.id, plan, err)
			}
			st, err := s.status(sn)
			if err != nil || !st.Ready || st.Held == 0 {
				return false, fmt.Errorf("%s: ready %v, held %d, loading %d (%v)", sn.id, st.Ready, st.Held, len(st.Loading), err)
			}
		}
		return true, nil
	})
}

func (s *modeStory) status(sn *storyNode) (Status, error) {
	var st Status
	resp, err := s.http.Get("http://" + sn.kv + "/ready")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

func (s *modeStory) formation() (string, error) {
	first := s.nodes[0]
	if err := s.start(first, nil); err != nil {
		return "", err
	}
	if err := s.startAll(s.nodes[1:s.cfg.Nodes], first.http); err != nil {
		return "", err
	}
	if err := s.settled("the cluster to form"); err != nil {
		return "", err
	}
	h := first.n.CK.HealthCheck()
	c := first.n.CK.GetCluster()
	return fmt.Sprintf("%d nodes, %d partitions, RF %d, leader %s", len(c.Nodes), c.Config.PartitionCount, c.Config.ReplicationFactor, h.Leader), nil
}

// newAPI returns a client of the story's routing mode, closed at the end.
func (s *modeStory) newAPI() kvAPI {
	if s.cfg.Routing == RoutingServer {
		p := &plainClient{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}, addrs: s.kvAddrs}
		s.clients = append(s.clients, p)
		return p
	}
	c := NewClient(s.nodes[0].http, s.nodes[1].http, s.nodes[2].http)
	s.clients = append(s.clients, c)
	return c
}

// kvAddrs are every node's kv address (a stopped node's too: a plain
// client learns that it is down by trying it).
func (s *modeStory) kvAddrs() []string {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	var out []string
	for _, sn := range s.nodes {
		if sn.kv != "127.0.0.1:0" {
			out = append(out, sn.kv)
		}
	}
	return out
}

func keyName(i int) string { return fmt.Sprintf("key-%04d", i) }

func value(key string, seq int) []byte { return []byte(key + "=" + strconv.Itoa(seq)) }

// seqOf parses a value written by the story.
func seqOf(key string, v []byte) (int, error) {
	rest, ok := strings.CutPrefix(string(v), key+"=")
	if !ok {
		return 0, fmt.Errorf("%s: unexpected value %q", key, v)
	}
	return strconv.Atoi(rest)
}

// count records one request of the load in the current phase.
func (s *modeStory) count(err error) {
	pc := s.phase.Load()
	pc.requests.Add(1)
	if err != nil && !errors.Is(err, ErrNotFound) {
		pc.failed.Add(1)
		msg := err.Error()
		pc.first.CompareAndSwap(nil, &msg)
	}
}

// writeAll writes every key (sequence 1) and reads each back.
func (s *modeStory) writeAll() (string, error) {
	api := s.newAPI()
	keys := make(chan int)
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 8 {
		wg.Go(func() {
			for i := range keys {
				k := keyName(i)
				s.noteTry(k, 1)
				err := api.Put(s.ctx, k, value(k, 1))
				s.count(err)
				if err == nil {
					s.noteAck(k, 1)
				}
			}
		})
	}
	for i := range s.cfg.Keys {
		keys <- i
	}
	close(keys)
	wg.Wait()
	keys = make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range keys {
				k := keyName(i)
				v, err := api.Get(s.ctx, k)
				s.count(err)
				if err == nil {
					if seq, err := seqOf(k, v); err != nil || seq != 1 {
						bad.Add(1)
					}
				}
			}
		})
	}
	for i := range s.cfg.Keys {
		keys <- i
	}
	close(keys)
	wg.Wait()
	if pc := s.phase.Load(); pc.failed.Load() > 0 || bad.Load() > 0 {
		return "", fmt.Errorf("%d requests failed, %d keys read back wrong", pc.failed.Load(), bad.Load())
	}
	return fmt.Sprintf("%d keys written and read back", s.cfg.Keys), nil
}

func (s *modeStory) noteTry(k string, seq int) {
	s.mu.Lock()
	s.tried[k] = seq
	s.mu.Unlock()
}

func (s *modeStory) noteAck(k string, seq int) {
	s.mu.Lock()
	s.acked[k] = seq
	s.rep.Acked++
	s.mu.Unlock()
}

func (s *modeStory) ackedOf(k string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[k]
}

// startLoad runs the writers (each owns every Writers-th key, and rewrites
// its keys in turn with the next sequence number) and one reader, paced so
// that the cluster's own work (heartbeats, probes) keeps the CPU it needs,
// until ctx ends.
func (s *modeStory) startLoad(ctx context.Context, wg *sync.WaitGroup) {
	api := s.newAPI()
	for w := range s.cfg.Writers {
		wg.Go(func() {
			// This writer's keys only: the bookkeeping per key assumes one writer.
			var mine []string
			for i := w; i < s.cfg.Keys; i += s.cfg.Writers {
				mine = append(mine, keyName(i))
			}
			seq := map[string]int{}
			for i := 0; ctx.Err() == nil && len(mine) > 0; i++ {
				k := mine[i%len(mine)]
				if seq[k] == 0 {
					seq[k] = s.ackedOf(k)
				}
				seq[k]++
				s.noteTry(k, seq[k])
				err := api.Put(ctx, k, value(k, seq[k]))
				if ctx.Err() != nil {
					return // cut by the end of the load: not a failure
				}
				s.count(err)
				if err == nil {
					s.noteAck(k, seq[k])
				}
				pace(ctx, 5*time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for ctx.Err() == nil {
			k := keyName(rng.IntN(s.cfg.Keys))
			floor := s.ackedOf(k)
			v, err := api.Get(ctx, k)
			if ctx.Err() != nil {
				return
			}
			s.count(err)
			switch {
			case errors.Is(err, ErrStale):
				s.phase.Load().stale.Add(1)
			case err == nil:
				if seq, perr := seqOf(k, v); perr != nil || (s.cfg.Replication == ReplicationSync && seq < floor) {
					s.phase.Load().stale.Add(1)
				}
			}
			pace(ctx, 2*time.Millisecond)
		}
	})
}

func pace(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (s *modeStory) join() (string, error) {
	joiners := s.nodes[s.cfg.Nodes:]
	if len(joiners) == 0 {
		return "no node joins (-joiners 0)", nil
	}
	before := owners(s.nodes[0].n.CK)
	if err := s.startAll(joiners, s.nodes[0].http); err != nil {
		return "", err
	}
	if err := s.settled("the joiners to load their partitions"); err != nil {
		return "", err
	}
	after := owners(s.nodes[0].n.CK)
	moved := 0
	for id, o := range after {
		if !slices.Equal(before[id], o) {
			moved++
		}
	}
	ids := make([]string, len(joiners))
	for i, sn := range joiners {
		ids[i] = sn.id
	}
	return fmt.Sprintf("%s joined; %d partitions changed owners, each new owner loaded its copy before it served", strings.Join(ids, ", "), moved), nil
}

// owners is each partition's owners, the primary first.
func owners(ck *clusterkit.ClusterKit) map[string][]string {
	out := map[string][]string{}
	for id, p := range ck.GetCluster().PartitionMap.Partitions {
		out[id] = append([]string{p.PrimaryNode}, p.ReplicaNodes...)
	}
	return out
}

// kill crashes the node (not the Raft leader, not node-1) that is primary
// of the most partitions, under load, and waits for the failover.
func (s *modeStory) kill() (string, error) {
	victim, primaries, err := s.crash()
	if err != nil {
		return "", err
	}
	t := time.Now()
	if err := s.settled("the failover"); err != nil {
		return "", err
	}
	note := fmt.Sprintf("%s (primary of %d partitions) crashed; removed and every partition served again after %v", victim, primaries, ms(time.Since(t)))
	if s.cfg.Replication == ReplicationAsync {
		note += fmt.Sprintf("; %d writes were queued on it", s.rep.QueuedAtKil)
	}
	return note, nil
}

// crash crashes the victim (see kill) and returns at once.
func (s *modeStory) crash() (victimID string, primaries int, err error) {
	ck := s.nodes[0].n.CK
	leader := ck.HealthCheck().Leader
	count := map[string]int{}
	for _, p := range ck.GetCluster().PartitionMap.Partitions {
		count[p.PrimaryNode]++
	}
	var victim *storyNode
	for _, sn := range s.nodes[1:] {
		if sn.n != nil && sn.id != leader && (victim == nil || count[sn.id] > count[victim.id]) {
			victim = sn
		}
	}
	if victim == nil {
		return "", 0, errors.New("no node to kill")
	}
	if victim.n.repl != nil {
		s.rep.QueuedAtKil, _ = victim.n.repl.pending()
	}
	s.rep.Killed = victim.id
	if err := victim.n.Crash(); err != nil {
		return "", 0, fmt.Errorf("crash %s: %w", victim.id, err)
	}
	s.addrMu.Lock()
	victim.n = nil
	s.addrMu.Unlock()
	return victim.id, count[victim.id], nil
}

// rejoin restarts the killed node on its data directory and ports.
func (s *modeStory) rejoin() (string, error) {
	var victim *storyNode
	for _, sn := range s.nodes {
		if sn.id == s.rep.Killed {
			victim = sn
		}
	}
	t := time.Now()
	if err := s.start(victim, nil); err != nil {
		return "", err
	}
	if err := s.settled("the rejoin"); err != nil {
		return "", err
	}
	st, _ := s.status(victim)
	return fmt.Sprintf("%s restarted on its data directory, rejoined and reloaded %d partitions in %v", victim.id, st.Held, ms(time.Since(t))), nil
}

// check reads every key with a new client and compares it with its last
// acknowledged write. A value newer than that is fine (a write that failed
// may have been applied), one older is a lost acknowledged write.
func (s *modeStory) check() (string, error) {
	api := s.newAPI()
	var lost, bad atomic.Int64
	var examples []string
	var exMu sync.Mutex
	keys := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range keys {
				k := keyName(i)
				s.mu.Lock()
				acked, tried := s.acked[k], s.tried[k]
				s.mu.Unlock()
				v, err := api.Get(s.ctx, k)
				s.count(err)
				seq := 0
				switch {
				case errors.Is(err, ErrNotFound):
				case err != nil:
					bad.Add(1)
					continue
				default:
					if seq, err = seqOf(k, v); err != nil || seq > tried {
						bad.Add(1)
						continue
					}
				}
				if seq < acked {
					lost.Add(1)
					exMu.Lock()
					if len(examples) < 3 {
						examples = append(examples, fmt.Sprintf("%s: %d, acknowledged %d", k, seq, acked))
					}
					exMu.Unlock()
				}
			}
		})
	}
	for i := range s.cfg.Keys {
		keys <- i
	}
	close(keys)
	wg.Wait()
	s.rep.Lost = int(lost.Load())
	if bad.Load() > 0 {
		return "", fmt.Errorf("%d keys could not be read or had a value never written", bad.Load())
	}
	note := fmt.Sprintf("every key read back: %d hold their last acknowledged value or a newer attempted one, %d lost", s.cfg.Keys-s.rep.Lost, s.rep.Lost)
	if len(examples) > 0 {
		note += " (" + strings.Join(examples, "; ") + ")"
	}
	return note, nil
}
