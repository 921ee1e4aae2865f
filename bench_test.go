package clusterkit

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/internal/placement"
	"github.com/clusterkit/clusterkit/internal/refbaseline"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// benchNode returns an unstarted node whose FSM holds a 5-member, 64-partition,
// RF 3 table, applied directly (no Raft): the read path is what is measured.
func benchNode(b testing.TB, hash KeyHash) *ClusterKit {
	b.Helper()
	ck, err := New(Options{NodeID: "n1", HTTPAddr: ":0", Logger: slog.New(slog.DiscardHandler), KeyHash: hash})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ck.Stop(context.Background()) })
	ids := []string{"n1", "n2", "n3", "n4", "n5"}
	var index uint64
	apply := func(c *messages.Command) {
		index++
		data, err := raftfsm.Encode(c)
		if err != nil {
			b.Fatal(err)
		}
		if res := ck.fsm.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(*raftfsm.ApplyResult); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	apply(&messages.Command{Op: &messages.Command_SetConfig{SetConfig: &messages.SetConfig{Config: &messages.ClusterConfig{
		ClusterName: "bench", PartitionCount: 64, ReplicationFactor: 3, MaxVoters: 5, KeyHash: hash.proto(),
	}}}})
	for i, id := range ids {
		apply(&messages.Command{Op: &messages.Command_RegisterNode{RegisterNode: &messages.RegisterNode{Member: &messages.Member{
			Id: id, Name: id, Address: "127.0.0.1:" + strconv.Itoa(8081+i), Incarnation: 1,
		}}}})
	}
	var parts []*messages.PartitionAssignment
	for _, o := range placement.Assign(nil, ids, 64, 3) {
		parts = append(parts, &messages.PartitionAssignment{Owners: o})
	}
	apply(&messages.Command{Op: &messages.Command_SetPartitionTable{SetPartitionTable: &messages.SetPartitionTable{Partitions: parts}}})
	return ck
}

type refPartition = refbaseline.Partition

// newRefCluster copies ck's committed table into the reference layout.
func newRefCluster(ck *ClusterKit) *refbaseline.Cluster[Node] {
	v := ck.fsm.View()
	rc := refbaseline.New[Node](v.PartitionCount())
	for _, p := range v.Partitions() {
		rc.AddPartition(refPartition{ID: p.ID, PrimaryNode: p.PrimaryNode, ReplicaNodes: p.ReplicaNodes})
	}
	for _, m := range v.Members() {
		rc.AddNode(m.ID, nodeFrom(m))
	}
	return rc
}

var benchKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i*7919)
	}
	return keys
}()

var (
	sinkFound atomic.Int64
	sinkP     *Partition
	sinkRP    *refPartition
	sinkN     []Node
	sinkB     bool
)

func BenchmarkGetPartition(b *testing.B) {
	b.Run("reference-style", func(b *testing.B) {
		rc := newRefCluster(benchNode(b, KeyHashMD5))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sinkRP, _ = rc.GetPartition(benchKeys[i&1023])
		}
	})
	b.Run("md5", func(b *testing.B) {
		ck := benchNode(b, KeyHashMD5)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sinkP, _ = ck.GetPartition(benchKeys[i&1023])
		}
	})
	b.Run("xxh64", func(b *testing.B) {
		ck := benchNode(b, KeyHashXXH64)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sinkP, _ = ck.GetPartition(benchKeys[i&1023])
		}
	})
}

// BenchmarkGetPartitionParallel shows the read path scales with cores (no
// lock): compare each with "hash-only", the bare key hash with no table at all.
func BenchmarkGetPartitionParallel(b *testing.B) {
	b.Run("hash-only-md5", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i, sum := 0, uint32(0)
			for pb.Next() {
				sum += keyhash.Partition(keyhash.MD5, benchKeys[i&1023], 64)
				i++
			}
			sinkFound.Add(int64(sum))
		})
	})
	b.Run("reference-style", func(b *testing.B) {
		rc := newRefCluster(benchNode(b, KeyHashMD5))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i, found := 0, 0
			for pb.Next() {
				if p, _ := rc.GetPartition(benchKeys[i&1023]); p != nil {
					found++
				}
				i++
			}
			sinkFound.Add(int64(found)) // one shared write per goroutine, not per op
		})
	})
	for _, h := range []struct {
		name string
		hash KeyHash
	}{{"md5", KeyHashMD5}, {"xxh64", KeyHashXXH64}} {
		b.Run(h.name, func(b *testing.B) {
			ck := benchNode(b, h.hash)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i, found := 0, 0
				for pb.Next() {
					if p, _ := ck.GetPartition(benchKeys[i&1023]); p != nil {
						found++
					}
					i++
				}
				sinkFound.Add(int64(found))
			})
		})
	}
}

func BenchmarkOwnerLookups(b *testing.B) {
	ck := benchNode(b, KeyHashMD5)
	rc := newRefCluster(ck)
	p, _ := ck.GetPartition("user:123")
	rp, _ := rc.GetPartition("user:123")
	for _, bm := range []struct {
		name string
		fn   func()
	}{
		{"IsPrimary", func() { sinkB = ck.IsPrimary(p) }},
		{"IsReplica", func() { sinkB = ck.IsReplica(p) }},
		{"GetReplicas", func() { sinkN = ck.GetReplicas(p) }},
		{"GetNodes", func() { sinkN = ck.GetNodes(p) }},
		{"reference-style/IsPrimary", func() { sinkB = rc.IsPrimary(rp, "n1") }},
		{"reference-style/GetReplicas", func() { sinkN = rc.GetReplicas(rp) }},
		{"reference-style/GetNodes", func() { sinkN = rc.GetNodes(rp) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bm.fn()
			}
		})
	}
}

// TestReadPathAllocations pins the zero-allocation contract outside benchmarks.
func TestReadPathAllocations(t *testing.T) {
	bn := benchNode(t, KeyHashMD5)
	p, _ := bn.GetPartition("user:123")
	for name, fn := range map[string]func(){
		"GetPartition": func() { sinkP, _ = bn.GetPartition("some-rather-long-key-" + "x") },
		"IsPrimary":    func() { sinkB = bn.IsPrimary(p) },
		"IsReplica":    func() { sinkB = bn.IsReplica(p) },
		"GetReplicas":  func() { sinkN = bn.GetReplicas(p) },
		"GetNodes":     func() { sinkN = bn.GetNodes(p) },
		"GetPrimary":   func() { sinkB = bn.GetPrimary(p) != nil },
	} {
		if a := testing.AllocsPerRun(200, fn); a != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, a)
		}
	}
	if len(bn.GetReplicas(p)) != 2 || len(bn.GetNodes(p)) != 3 {
		t.Fatalf("replicas %d nodes %d", len(bn.GetReplicas(p)), len(bn.GetNodes(p)))
	}
}
