package placement

import (
	"slices"
	"testing"
)

func benchAssign(b *testing.B, prev [][]string, members []string) {
	b.ReportAllocs()
	for b.Loop() {
		Assign(prev, members, 1024, 3)
	}
}

// BenchmarkAssignFromScratch measures a brand-new table (P=1024, N=20, RF=3).
func BenchmarkAssignFromScratch(b *testing.B) {
	benchAssign(b, nil, nodes(20))
}

// BenchmarkAssignJoin measures adding a 20th node to a balanced 19-node table.
func BenchmarkAssignJoin(b *testing.B) {
	all := nodes(20)
	prev := Assign(nil, all[:19], 1024, 3)
	benchAssign(b, prev, all)
}

// BenchmarkAssignLeave measures removing one node from a balanced 20-node table.
func BenchmarkAssignLeave(b *testing.B) {
	all := nodes(20)
	prev := Assign(nil, all, 1024, 3)
	benchAssign(b, prev, slices.Delete(slices.Clone(all), 7, 8))
}

// BenchmarkAssignSteady measures recomputing an unchanged balanced table.
func BenchmarkAssignSteady(b *testing.B) {
	all := nodes(20)
	prev := Assign(nil, all, 1024, 3)
	benchAssign(b, prev, all)
}

// BenchmarkAssignJoinNearRF measures a join where every old node owns almost
// every partition (P=1024, RF=5, 5→6 nodes): 853 slots move to the joiner.
func BenchmarkAssignJoinNearRF(b *testing.B) {
	all := nodes(6)
	prev := Assign(nil, all[:5], 1024, 5)
	b.ReportAllocs()
	for b.Loop() {
		Assign(prev, all, 1024, 5)
	}
}

// BenchmarkAssignDouble measures doubling a cluster at once (P=4096, RF=3,
// 32→64 nodes), a bulk rebalance of about 6,000 slots.
func BenchmarkAssignDouble(b *testing.B) {
	all := nodes(64)
	prev := Assign(nil, all[:32], 4096, 3)
	b.ReportAllocs()
	for b.Loop() {
		Assign(prev, all, 4096, 3)
	}
}
