package actortest_test

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/messages"
)

// store is the kind of actor an application writes: it keeps the data of the
// partitions its node holds and copies a partition from a previous holder
// when ClusterKit assigns it one. (Here "copying" reads another store's map;
// a real store would call the source node over the network.)
type store struct {
	node     string
	registry *registry
	mu       sync.Mutex
	data     map[string]map[string]string // partition -> key -> value
	copied   map[string]string            // partition -> node it was copied from
}

type registry struct {
	mu     sync.Mutex
	stores map[string]*store
}

func (r *registry) get(id string) *store {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stores[id]
}

func (s *store) Receive(ctx actor.Context) {
	e, ok := ctx.Message().(*messages.PartitionChange)
	if !ok || e.GetCopyToNode().GetId() != s.node {
		return
	}
	part := map[string]string{}
	from := ""
	for _, src := range e.GetCopyFromNodes() {
		if other := s.registry.get(src.GetId()); other != nil {
			other.mu.Lock()
			for k, v := range other.data[e.GetPartitionId()] {
				part[k] = v
			}
			other.mu.Unlock()
			from = src.GetId()
			break
		}
	}
	s.mu.Lock()
	for k, v := range s.data[e.GetPartitionId()] { // keep anything written meanwhile
		part[k] = v
	}
	s.data[e.GetPartitionId()] = part
	s.copied[e.GetPartitionId()] = from
	s.mu.Unlock()
}

// TestStoreMigratesOnPartitionChange is the pattern docs/testing.md walks
// through: a real cluster, your actor subscribed on each node, a membership
// change, and assertions on what your actor did.
func TestStoreMigratesOnPartitionChange(t *testing.T) {
	reg := &registry{stores: map[string]*store{}}
	// Setup runs before each node starts: the store sees every event of its node.
	c := actortest.NewCluster(t, 2,
		actortest.Configure(func(_ int, o *clusterkit.Options) {
			o.PartitionCount = 16
			o.ReplicationFactor = 2
		}),
		actortest.Setup(func(_ int, ck *clusterkit.ClusterKit) {
			s := &store{node: ck.GetMyNodeID(), registry: reg, data: map[string]map[string]string{}, copied: map[string]string{}}
			reg.mu.Lock()
			reg.stores[s.node] = s
			reg.mu.Unlock()
			pid := ck.ActorSystem().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return s }))
			if err := ck.Subscribe(pid, clusterkit.OnlyMine()); err != nil {
				t.Error(err)
			}
		}))
	c.WaitConverged(10 * time.Second)
	// Seed some data where the table says it lives.
	for _, key := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		p, err := c.Node(0).GetPartition(key)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Node(0).GetNodes(p) {
			s := reg.get(n.ID)
			s.mu.Lock()
			if s.data[p.ID] == nil { // its PartitionChange may still be in its mailbox
				s.data[p.ID] = map[string]string{}
			}
			s.data[p.ID][key] = "value-" + key
			s.mu.Unlock()
		}
	}

	// A third node joins: its store must load exactly the partitions it now
	// holds, each from a node that had it, with the data.
	third := c.AddNode()
	c.WaitConverged(10 * time.Second)
	ck := c.Node(third)
	s := reg.get(ck.GetMyNodeID())
	var held []string
	for _, p := range ck.GetCluster().PartitionMap.Partitions {
		if ck.IsPrimary(p) || ck.IsReplica(p) {
			held = append(held, p.ID)
		}
	}
	sort.Strings(held)
	loaded := func() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.copied) }
	deadline := time.Now().Add(5 * time.Second)
	for loaded() < len(held) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.copied) != len(held) || len(held) == 0 {
		t.Fatalf("the new node's store loaded %d partitions, it holds %d", len(s.copied), len(held))
	}
	for _, id := range held {
		if s.copied[id] == "" {
			t.Fatalf("%s was not copied from a previous holder", id)
		}
	}
	for _, key := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		p, _ := ck.GetPartition(key)
		if ck.IsPrimary(p) || ck.IsReplica(p) {
			if s.data[p.ID][key] != "value-"+key {
				t.Fatalf("key %s missing from the new node's copy of %s", key, p.ID)
			}
		}
	}
}
