package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/messages"
)

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	o := Options{
		NodeID:            "bad id",
		HTTPAddr:          "nope",
		PartitionCount:    -1,
		ReplicationFactor: 99,
		KeyHash:           7,
		HealthCheck:       HealthCheckConfig{Interval: -1, Timeout: -1, FailureThreshold: -1},
		Services:          map[string]string{"": ":1", "api": "noport"},
		RebalanceDelay:    -time.Second,
	}
	err := o.Validate()
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Validate = %v, want ErrInvalidOptions", err)
	}
	for _, want := range []string{"NodeID", "HTTPAddr", "PartitionCount", "ReplicationFactor", "KeyHash",
		"HealthCheck.Interval", "HealthCheck.Timeout", "HealthCheck.FailureThreshold", "service name", "service \"api\"", "RebalanceDelay"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("New accepted invalid options: %v", err)
	}
	if err := (Options{NodeID: "node-1", HTTPAddr: ":8080"}).Validate(); err != nil {
		t.Fatalf("minimal options rejected: %v", err)
	}
}

// TestSingleNodeLifecycleEvents: a user actor and the Go callbacks receive
// NodeJoin (bootstrap), RebalanceStart, one PartitionChange per partition and
// RebalanceComplete, in that order, with increasing seqs.
// TestHealthCheckDefaults: a zero or partly filled HealthCheckConfig means
// detection on, missing fields from DefaultHealthCheck; only Disable turns it
// off.
func TestHealthCheckDefaults(t *testing.T) {
	d := DefaultHealthCheck()
	for name, c := range map[string]struct {
		in   HealthCheckConfig
		want HealthCheckConfig
	}{
		"zero":         {HealthCheckConfig{}, d},
		"only a grace": {HealthCheckConfig{RemovalGrace: 10 * time.Second}, HealthCheckConfig{Interval: d.Interval, Timeout: d.Timeout, FailureThreshold: d.FailureThreshold, RemovalGrace: 10 * time.Second}},
		"reference":    {HealthCheckConfig{Interval: 5 * time.Second}, HealthCheckConfig{Interval: 5 * time.Second, Timeout: d.Timeout, FailureThreshold: d.FailureThreshold, RemovalGrace: d.RemovalGrace}},
		"disabled":     {HealthCheckConfig{Disable: true, Interval: time.Second}, HealthCheckConfig{Disable: true, Interval: time.Second}},
	} {
		o := Options{HealthCheck: c.in}.withDefaults()
		if o.HealthCheck != c.want {
			t.Errorf("%s: %+v, want %+v", name, o.HealthCheck, c.want)
		}
	}
}

func TestSingleNodeLifecycleEvents(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.PartitionCount = 16
	var mu sync.Mutex
	var calls []string
	record := func(s string) { mu.Lock(); calls = append(calls, s); mu.Unlock() }
	var p *probe
	startNode(t, o, func(ck *ClusterKit) {
		p = subscribeProbe(t, ck)
		ck.OnNodeJoin(func(e *NodeJoinEvent) {
			record(fmt.Sprintf("join %s bootstrap=%v size=%d", e.Node.ID, e.IsBootstrap, e.ClusterSize))
		})
		ck.OnRebalanceStart(func(e *RebalanceEvent) { record("start " + e.Trigger) })
		ck.OnPartitionChange(func(e *PartitionChangeEvent) { record("change " + e.PartitionID + " -> " + e.CopyToNode.ID) })
		ck.OnRebalanceComplete(func(e *RebalanceEvent, d time.Duration) { record(fmt.Sprintf("complete %d", e.PartitionsToMove)) })
	})

	var last Seq
	next := func() any {
		m := p.next(t, 5*time.Second)
		s := seqOf(m.(interface {
			GetIndex() uint64
			GetSub() uint32
			GetTimeUnixNano() int64
		}))
		if !last.Less(s) {
			t.Fatalf("seq %v after %v", s, last)
		}
		last = s
		return m
	}
	join, ok := next().(*messages.NodeJoin)
	if !ok || !join.GetIsBootstrap() || join.GetNode().GetId() != "node-1" || join.GetClusterSize() != 1 {
		t.Fatalf("first event %v", join)
	}
	start, ok := next().(*messages.RebalanceStart)
	if !ok || start.GetTrigger() != "node_join" || start.GetPartitionsToMove() != 16 {
		t.Fatalf("second event %T %v", start, start)
	}
	for n := range 16 {
		pc, ok := next().(*messages.PartitionChange)
		if !ok || pc.GetPartition() != uint32(n) || pc.GetCopyToNode().GetId() != "node-1" || !pc.GetInitial() {
			t.Fatalf("PartitionChange %d: %v", n, pc)
		}
	}
	if done, ok := next().(*messages.RebalanceComplete); !ok || done.GetPartitionsMoved() != 16 {
		t.Fatalf("after the changes: %T %v", done, done)
	}
	if hc, ok := next().(*messages.ClusterHealthChange); !ok || hc.GetStatus() != "degraded" {
		t.Fatalf("health: %T %v", hc, hc)
	}
	want := []string{"join node-1 bootstrap=true size=1", "start node_join"}
	for n := range 16 {
		want = append(want, fmt.Sprintf("change partition-%d -> node-1", n))
	}
	want = append(want, "complete 16")
	// Each callback runs in its own actor: order within one kind is
	// guaranteed, across kinds only causally. Compare per kind.
	waitFor(t, 5*time.Second, "all callbacks", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == len(want) })
	mu.Lock()
	defer mu.Unlock()
	for _, prefix := range []string{"join", "start", "change", "complete"} {
		if !slices.Equal(filter(calls, prefix), filter(want, prefix)) {
			t.Fatalf("%s callbacks: %v, want %v", prefix, filter(calls, prefix), filter(want, prefix))
		}
	}
}

func filter(s []string, prefix string) []string {
	var out []string
	for _, x := range s {
		if strings.HasPrefix(x, prefix) {
			out = append(out, x)
		}
	}
	return out
}

func TestReadPath(t *testing.T) {
	leakCheck(t)
	ck := startNode(t, fastOptions(t, "node-1"))
	p, err := ck.GetPartition("user:123")
	if err != nil || p.ID != "partition-48" {
		t.Fatalf("GetPartition(user:123) = %v, %v; the reference contract is partition-48", p, err)
	}
	if p2, _ := ck.GetPartition("test-key"); p2.ID != "partition-49" {
		t.Fatalf("GetPartition(test-key) = %s", p2.ID)
	}
	if !ck.IsPrimary(p) || ck.IsReplica(p) {
		t.Fatal("single node is not primary")
	}
	if n := ck.GetPrimary(p); n == nil || n.ID != "node-1" || n.Port == 0 {
		t.Fatalf("GetPrimary = %+v", n)
	}
	if r := ck.GetReplicas(p); len(r) != 0 {
		t.Fatalf("GetReplicas = %v", r)
	}
	if n := ck.GetNodes(p); len(n) != 1 || n[0].ID != "node-1" {
		t.Fatalf("GetNodes = %v", n)
	}
	if ck.GetPrimary(nil) != nil || ck.IsPrimary(nil) || ck.GetReplicas(nil) != nil {
		t.Fatal("nil partition not handled")
	}
	c := ck.GetCluster()
	if len(c.Nodes) != 1 || c.Config.PartitionCount != 64 || c.Config.ReplicationFactor != 3 || c.HashConfig.Algorithm != "md5" || len(c.PartitionMap.Partitions) != 64 {
		t.Fatalf("GetCluster = %+v", c)
	}
	if ck.GetMyNodeID() != "node-1" {
		t.Fatal("GetMyNodeID")
	}
	h := ck.HealthCheck()
	if !h.Healthy || !h.Ready || !h.IsLeader || h.ClusterStatus != "degraded" || h.Term == 0 || h.AppliedIndex == 0 || h.Leader != "node-1" || h.UnderReplicatedPartitions != 64 {
		t.Fatalf("HealthCheck = %+v", h)
	}
	// Events are derived and delivered asynchronously after the commit.
	waitFor(t, 5*time.Second, "the bootstrap events", func() bool { return ck.GetMetrics().EventsPublished["rebalance_complete"] == 1 })
	m := ck.GetMetrics()
	if m.NodeCount != 1 || m.PartitionCount != 64 || m.PrimaryPartitions != 64 || !m.IsLeader || m.RaftState != "Leader" || m.CommitIndex == 0 || m.EventsPublished["partition_change"] != 64 || m.Rebalances != 1 {
		t.Fatalf("GetMetrics = %+v", m)
	}
}

func TestReadsBeforeStartAndAfterStop(t *testing.T) {
	leakCheck(t)
	ck, err := New(fastOptions(t, "node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ck.GetPartition("k"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("GetPartition before Start = %v", err)
	}
	if err := ck.RebalancePartitions(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("RebalancePartitions before Start = %v", err)
	}
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := ck.Start(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v", err)
	}
	if err := ck.Subscribe(actor.NewPID("nonhost", "x")); !errors.Is(err, ErrStopped) {
		t.Fatalf("Subscribe after Stop = %v", err)
	}
}

func TestStartFailsWhenPortIsBusy(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.HTTPAddr = busyPort(t)
	ck, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	err = ck.Start(context.Background())
	if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), o.HTTPAddr) {
		t.Fatalf("Start on a busy port = %v, want ErrListen naming the address", err)
	}
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after failed Start: %v", err)
	}
}

func TestSecondStartAndStopAreSafe(t *testing.T) {
	leakCheck(t)
	ck := startNode(t, fastOptions(t, "node-1"))
	if err := ck.Start(context.Background()); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second Start = %v", err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = ck.Stop(context.Background()) }()
	}
	wg.Wait()
	if _, err := ck.GetPartition("k"); err != nil {
		t.Fatalf("reads after Stop still answer from the last table: %v", err)
	}
}

// TestPanickingCallbackIsIsolated: a callback that panics on every event
// affects neither later events to itself nor other subscribers.
func TestPanickingCallbackIsIsolated(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.PartitionCount = 8
	var panics, seen sync.WaitGroup
	panics.Add(8)
	seen.Add(8)
	ck := startNode(t, o, func(ck *ClusterKit) {
		ck.OnPartitionChange(func(e *PartitionChangeEvent) {
			defer panics.Done()
			panic("boom " + e.PartitionID)
		})
		ck.OnPartitionChange(func(*PartitionChangeEvent) { seen.Done() })
	})
	waitGroup(t, &panics, "the panicking callback to get all 8 events")
	waitGroup(t, &seen, "the other callback to get all 8 events")
	waitFor(t, 5*time.Second, "panics counted", func() bool { return ck.GetMetrics().CallbackPanics == 8 })
	// Later events still reach the panicking callback.
	var again sync.WaitGroup
	again.Add(1)
	ck.OnRebalanceStart(func(e *RebalanceEvent) {
		if e.Trigger == "manual" {
			again.Done()
		}
	})
	if err := ck.RebalancePartitions(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, &again, "a manual rebalance event")
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestManualRebalanceOnBalancedTable(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.PartitionCount = 4
	var p *probe
	ck := startNode(t, o, func(ck *ClusterKit) {
		p = subscribeProbe(t, ck, WithKinds(EventRebalanceStart, EventRebalanceComplete, EventPartitionChange))
	})
	for range 6 { // the bootstrap: start, 4 changes, complete
		p.next(t, 5*time.Second)
	}
	before := ck.GetCluster().TableVersion
	if err := ck.RebalancePartitions(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, ok := p.next(t, 5*time.Second).(*messages.RebalanceStart); !ok || s.GetTrigger() != "manual" || s.GetPartitionsToMove() != 0 {
		t.Fatalf("got %v", s)
	}
	// Nothing moved: no PartitionChange, straight to completion.
	if c, ok := p.next(t, 5*time.Second).(*messages.RebalanceComplete); !ok || c.GetPartitionsMoved() != 0 {
		t.Fatalf("got %v", c)
	}
	if v := ck.GetCluster().TableVersion; v <= before {
		t.Fatalf("table version %d after manual rebalance, was %d", v, before)
	}
	p.expectNone(t, 100*time.Millisecond)
}

func TestSubscriptionDroppedWhenActorStops(t *testing.T) {
	leakCheck(t)
	ck := startNode(t, fastOptions(t, "node-1"))
	p := newProbe(t, ck.ActorSystem())
	if err := ck.Subscribe(p.pid, WithKinds(EventRebalanceStart)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "one subscriber", func() bool { return ck.GetMetrics().Subscribers == 1 })
	if err := ck.ActorSystem().Root.StopFuture(p.pid).Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the subscription to be dropped", func() bool { return ck.GetMetrics().Subscribers == 0 })
	waitDelivered(t, ck) // the bootstrap's events must not reach q
	q := newProbe(t, ck.ActorSystem())
	if err := ck.Subscribe(q.pid, WithKinds(EventRebalanceStart)); err != nil {
		t.Fatal(err)
	}
	if err := ck.Unsubscribe(q.pid); err != nil {
		t.Fatal(err)
	}
	if err := ck.RebalancePartitions(context.Background()); err != nil {
		t.Fatal(err)
	}
	q.expectNone(t, 200*time.Millisecond)
}

func TestOnlyMineFilter(t *testing.T) {
	leakCheck(t)
	o := fastOptions(t, "node-1")
	o.PartitionCount = 4
	var p *probe
	startNode(t, o, func(ck *ClusterKit) { p = subscribeProbe(t, ck, WithKinds(EventPartitionChange), OnlyMine()) })
	for range 4 {
		if pc, ok := p.next(t, 5*time.Second).(*messages.PartitionChange); !ok || pc.GetCopyToNode().GetId() != "node-1" {
			t.Fatalf("got %v", pc)
		}
	}
	p.expectNone(t, 100*time.Millisecond)
}

// TestRestartOnDataDir: a node restarted on its data directory resumes the
// same table without replaying delivered events, then reports its own rejoin
// and reloads every partition.
func TestRestartOnDataDir(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	o := fastOptions(t, "node-1")
	o.PartitionCount = 8
	o.DataDir = dir
	first := startNode(t, o)
	// Let the bootstrap events be delivered: undelivered ones would (rightly)
	// be delivered after the restart.
	waitDelivered(t, first)
	checksum := first.fsm.View().Checksum()
	p1, _ := first.GetPartition("user:123")
	epoch := p1.Epoch
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	time.Sleep(300 * time.Millisecond) // a measurable downtime

	var p *probe
	second := startNode(t, o, func(ck *ClusterKit) { p = subscribeProbe(t, ck) })
	// First delivered event: the rejoin (the history before it is not replayed).
	m := p.next(t, 5*time.Second)
	rj, ok := m.(*messages.NodeRejoin)
	if !ok || rj.GetNode().GetId() != "node-1" {
		t.Fatalf("first event after restart: %T %v", m, m)
	}
	off := time.Duration(rj.GetOfflineDurationNanos())
	if off < 300*time.Millisecond || off > time.Since(downAt)+time.Second {
		t.Fatalf("OfflineDuration %v, real downtime about %v", off, time.Since(downAt))
	}
	if len(rj.GetPartitionsBeforeLeave()) != 8 {
		t.Fatalf("PartitionsBeforeLeave %v", rj.GetPartitionsBeforeLeave())
	}
	if s, ok := p.next(t, 5*time.Second).(*messages.RebalanceStart); !ok || s.GetTrigger() != "node_rejoin" {
		t.Fatalf("after rejoin: %T %v", s, s)
	}
	for range 8 {
		if pc, ok := p.next(t, 5*time.Second).(*messages.PartitionChange); !ok || pc.GetCopyToNode().GetId() != "node-1" || pc.GetInitial() {
			t.Fatalf("reload: %T %v", pc, pc)
		}
	}
	if _, ok := p.next(t, 5*time.Second).(*messages.RebalanceComplete); !ok {
		t.Fatal("no RebalanceComplete after reload")
	}
	// Same owners; epochs moved on because the node reloads.
	v := second.fsm.View()
	if v.Checksum() == checksum {
		t.Fatal("epochs did not advance on reload")
	}
	p2, _ := second.GetPartition("user:123")
	if p2.PrimaryNode != "node-1" || p2.Epoch <= epoch {
		t.Fatalf("after restart: primary %s epoch %d (was %d)", p2.PrimaryNode, p2.Epoch, epoch)
	}
}

func TestDataDirOfAnotherNodeIsRefused(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	o := fastOptions(t, "node-1")
	o.DataDir = dir
	ck := startNode(t, o)
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	o2 := fastOptions(t, "node-2")
	o2.DataDir = dir
	other, err := New(o2)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(context.Background()); !errors.Is(err, ErrDataDir) {
		t.Fatalf("Start on another node's data dir = %v", err)
	}
}

func TestExplicitConfigMismatchFailsStart(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	o := fastOptions(t, "node-1")
	o.DataDir = dir
	o.PartitionCount = 16
	ck := startNode(t, o)
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.PartitionCount = 32
	again, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Start(context.Background()); !errors.Is(err, ErrConfigMismatch) || !strings.Contains(err.Error(), "PartitionCount is 32 but the cluster has 16") {
		t.Fatalf("Start with a different PartitionCount = %v", err)
	}
	o.PartitionCount = 0 // adopt the cluster's value
	third := startNode(t, o)
	if n := third.GetCluster().Config.PartitionCount; n != 16 {
		t.Fatalf("adopted partition count %d", n)
	}
}

// TestKeyHashText: KeyHash reads and writes the names of /cluster's
// hash_config, so it works as a flag; anything else is refused.
func TestKeyHashText(t *testing.T) {
	for _, k := range []KeyHash{KeyHashDefault, KeyHashMD5, KeyHashXXH64} {
		text, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back KeyHash = 99
		if err := back.UnmarshalText(text); err != nil || back != k {
			t.Errorf("%v: round trip gave %v, %v", k, back, err)
		}
	}
	k := KeyHashXXH64
	if err := k.UnmarshalText([]byte("sha1")); err == nil || k != KeyHashXXH64 {
		t.Errorf("sha1 accepted, or the value changed: %v, %v", k, err)
	}
}
