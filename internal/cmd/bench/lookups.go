package main

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/internal/refbaseline"
)

type refCluster = refbaseline.Cluster[clusterkit.Node]
type refPartition = refbaseline.Partition

// newRefCluster copies ck's committed cluster into the reference layout.
func newRefCluster(c *clusterkit.Cluster) *refCluster {
	rc := refbaseline.New[clusterkit.Node](len(c.PartitionMap.Partitions))
	for _, p := range c.PartitionMap.Partitions {
		rc.AddPartition(refPartition{ID: p.ID, PrimaryNode: p.PrimaryNode, ReplicaNodes: slices.Clone(p.ReplicaNodes)})
	}
	for _, n := range c.Nodes {
		rc.AddNode(n.ID, n)
	}
	return rc
}

var lookupKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i*7919)
	}
	return keys
}()

// Sinks keep the compiler from dropping the measured calls.
var (
	sinkP   *clusterkit.Partition
	sinkRP  *refPartition
	sinkN   []clusterkit.Node
	sinkB   bool
	sinkU32 uint32
	sinkSum atomic.Int64
)

// bareMD5 names the row of the bare md5 hash, the floor of a lookup.
const bareMD5 = "bare md5 key hash, no table (`internal/keyhash`)"

// nsPerOp runs fn iters times and returns the mean nanoseconds per call.
func nsPerOp(iters int, fn func(i int)) float64 {
	start := time.Now()
	for i := range iters {
		fn(i)
	}
	return float64(time.Since(start).Nanoseconds()) / float64(iters)
}

// nsPerOpParallel runs fn iters times split over g goroutines and returns
// wall-clock nanoseconds per call (lower is better; perfect scaling divides
// the serial figure by g). Each goroutine sums fn's results and publishes
// the sum once, so the goroutines share nothing while they run.
func nsPerOpParallel(iters, g int, fn func(i int) int) float64 {
	var wg sync.WaitGroup
	var total atomic.Int64
	start := time.Now()
	for w := range g {
		wg.Go(func() {
			sum := 0
			for i := w; i < iters; i += g {
				sum += fn(i)
			}
			total.Add(int64(sum))
		})
	}
	wg.Wait()
	sinkSum.Store(total.Load())
	return float64(time.Since(start).Nanoseconds()) / float64(iters)
}

func runLookups(cfg *config) (*section, error) {
	md5c, err := startCluster(5, settings{tuned: true, keyHash: clusterkit.KeyHashMD5})
	if err != nil {
		return nil, err
	}
	defer md5c.stop()
	xxc, err := startCluster(1, settings{tuned: true, keyHash: clusterkit.KeyHashXXH64})
	if err != nil {
		return nil, err
	}
	defer xxc.stop()
	ck, xx := md5c.nodes[0].ck, xxc.nodes[0].ck
	self := ck.GetMyNodeID()
	rc := newRefCluster(ck.GetCluster())

	// The same key in both, checked, so that the two do the same work.
	p, err := ck.GetPartition("user:123")
	if err != nil {
		return nil, err
	}
	rp, err := rc.GetPartition("user:123")
	if err != nil {
		return nil, err
	}
	if p.ID != rp.ID || p.ID != "partition-48" {
		return nil, fmt.Errorf("user:123 maps to %s here and %s in the baseline, want partition-48", p.ID, rp.ID)
	}
	if len(ck.GetNodes(p)) != 3 || len(rc.GetNodes(rp)) != 3 {
		return nil, fmt.Errorf("GetNodes: %d owners, baseline %d, want 3", len(ck.GetNodes(p)), len(rc.GetNodes(rp)))
	}

	type op struct {
		name        string
		ours, ref   func(i int)
		limitNs     float64 // 0: none
		minRatio    float64 // 0: none
		targetText  string
		oursAllocs0 bool // target includes 0 allocs
	}
	ops := []op{
		{name: "`GetPartition`, md5", ours: func(i int) { sinkP, _ = ck.GetPartition(lookupKeys[i&1023]) },
			ref: func(i int) { sinkRP, _ = rc.GetPartition(lookupKeys[i&1023]) }, limitNs: 150, targetText: "≤ 150 ns, 0 allocs", oursAllocs0: true},
		{name: "`GetPartition`, xxh64 (baseline: reference-style md5)", ours: func(i int) { sinkP, _ = xx.GetPartition(lookupKeys[i&1023]) },
			ref: func(i int) { sinkRP, _ = rc.GetPartition(lookupKeys[i&1023]) }, limitNs: 15, targetText: "≤ 15 ns, 0 allocs", oursAllocs0: true},
		{name: "`IsPrimary`", ours: func(int) { sinkB = ck.IsPrimary(p) }, ref: func(int) { sinkB = rc.IsPrimary(rp, self) },
			limitNs: 5, targetText: "≤ 5 ns, 0 allocs", oursAllocs0: true},
		{name: "`IsReplica`", ours: func(int) { sinkB = ck.IsReplica(p) }, ref: func(int) { sinkB = rc.IsReplica(rp, self) },
			limitNs: 5, targetText: "≤ 5 ns, 0 allocs", oursAllocs0: true},
		{name: "`GetReplicas` (RF 3)", ours: func(int) { sinkN = ck.GetReplicas(p) }, ref: func(int) { sinkN = rc.GetReplicas(rp) },
			minRatio: 3, targetText: "≥ 3× faster than reference-style"},
		{name: "`GetNodes` (RF 3)", ours: func(int) { sinkN = ck.GetNodes(p) }, ref: func(int) { sinkN = rc.GetNodes(rp) },
			minRatio: 3, targetText: "≥ 3× faster than reference-style"},
		{name: bareMD5, ours: func(i int) { sinkU32 = keyhash.Partition(keyhash.MD5, lookupKeys[i&1023], 64) }},
		{name: "bare xxh64 key hash, no table (`internal/keyhash`)", ours: func(i int) { sinkU32 = keyhash.Partition(keyhash.XXH64, lookupKeys[i&1023], 64) }},
	}
	s := &section{
		title: "Key → partition and owner lookups ([core])",
		intro: fmt.Sprintf(`A 5-node cluster (P=64, RF=3, md5) and a 1-node xxh64 cluster on loopback; the calls are made on
node-1. The reference-style baseline is built from the same committed table: md5 → `+"`fmt.Sprintf(\"partition-%%d\")`"+` →
`+"`map[string]*Partition`"+` under a `+"`sync.RWMutex`"+`, owner slices copied out of a node map. Each trial is %s calls
over 1,024 keys, ours and the baseline alternating; allocations are `+"`testing.AllocsPerRun`"+`.`, thousands(int64(cfg.lookupIters))),
	}
	var serialBare float64 // the bare md5 hash, serial: the note compares the parallel run with it
	for _, o := range ops {
		var ours, ref []float64
		for range cfg.lookupTrials {
			ours = append(ours, nsPerOp(cfg.lookupIters, o.ours))
			if o.ref != nil {
				ref = append(ref, nsPerOp(cfg.lookupIters, o.ref))
			}
		}
		if o.name == bareMD5 {
			serialBare = median(ours)
		}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() { o.ours(i); i++ })
		r := row{name: o.name, median: fmt.Sprintf("%s, %g alloc/op", fmtNs(median(ours)), allocs), p99: fmtNs(p99(ours)),
			trials: fmt.Sprint(len(ours))}
		ratio := 0.0
		if o.ref != nil {
			refAllocs := testing.AllocsPerRun(1000, func() { o.ref(i); i++ })
			ratio = median(ref) / median(ours)
			r.baseline = fmt.Sprintf("%s, %g alloc/op", fmtNs(median(ref)), refAllocs)
			r.ratio = fmtRatio(ratio) + " faster"
		}
		switch {
		case o.limitNs > 0:
			r.target, r.met = targetLE(median(ours), o.limitNs, o.targetText, "[core]")
			if o.oursAllocs0 && allocs != 0 {
				r.met = yesNo(false)
			}
		case o.minRatio > 0:
			r.target, r.met = targetGE(ratio, o.minRatio, o.targetText, "[core]")
		default:
			r.target, r.met = noTarget("")
		}
		s.rows = append(s.rows, r)
	}

	// Scaling: no lock on the read path, so on all cores ours should cost
	// what the bare hash costs; the baseline's lock and allocation add to it.
	g := runtime.GOMAXPROCS(0)
	var bare, ours, ref []float64
	for range cfg.lookupTrials {
		bare = append(bare, nsPerOpParallel(cfg.lookupIters, g, func(i int) int {
			return int(keyhash.Partition(keyhash.MD5, lookupKeys[i&1023], 64))
		}))
		ours = append(ours, nsPerOpParallel(cfg.lookupIters, g, func(i int) int {
			p, _ := ck.GetPartition(lookupKeys[i&1023])
			return len(p.ID)
		}))
		ref = append(ref, nsPerOpParallel(cfg.lookupIters, g, func(i int) int {
			p, _ := rc.GetPartition(lookupKeys[i&1023])
			return len(p.ID)
		}))
	}
	vsBare := median(ours) / median(bare)
	r := row{name: fmt.Sprintf("`GetPartition`, md5, on %d goroutines (wall ns per call)", g), median: fmtNs(median(ours)), p99: fmtNs(p99(ours)),
		trials: fmt.Sprint(len(ours)), baseline: fmtNs(median(ref)), ratio: fmtRatio(median(ref)/median(ours)) + " faster"}
	r.target, r.met = targetLE(vsBare, 1.25, fmt.Sprintf("scales with cores: ≤ 1.25× the bare hash on %d goroutines (here %.2f×)", g, vsBare), "[core]")
	s.rows = append(s.rows, r)
	s.notes = append(s.notes,
		fmt.Sprintf("Bare md5 hash on %d goroutines: %s per call (serial: %s). The read path takes no lock, so in parallel it stays near the bare hash; the baseline's read lock and allocation do not.",
			g, fmtNs(median(bare)), fmtNs(serialBare)),
		"Zero allocations for keys of any length are also asserted by tests (`TestZeroAllocs`, `TestReadPathAllocations`).")
	return s, nil
}
