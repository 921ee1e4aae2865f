package placement

import (
	"math"
	"slices"
	"strings"
)

// MinCopies returns the fewest slot copies (owner-list entries naming a
// member that did not own the partition in in.Prev) that any table
// meeting the owner count, zone and slot-balance rules of AssignInput
// for in must have: a lower bound for AssignInput's own copies, to judge a
// planned change or the planner. It ignores primaries and NoPrimary, so
// the bound may be below what is reachable when they bind. It is exact
// for those rules: a minimum-cost flow over partitions grouped by their
// previous owner set (partitions with the same set are interchangeable).
func MinCopies(in Input) int {
	hs := holdersOf(in)
	p := max(in.Partitions, 0)
	n := len(hs.names)
	r := max(min(in.RF, n), 0)
	if p == 0 || r == 0 {
		return 0
	}
	// Zones and slot bands of the path AssignInput takes.
	var zone []int32
	var lo, hi []int32
	var sLo, sHi []int32
	if hs.plain() {
		zone = make([]int32, n)
		lo, hi = []int32{int32(r)}, []int32{int32(r)}
		ts, _ := Targets(in)
		v := make([]float64, n)
		for x, name := range hs.names {
			v[x] = ts[name]
		}
		sLo, sHi = bands(v, float64(p))
	} else {
		ly := newLayout(hs, normalize(in.NoPrimary), p, in.RF)
		zone, lo, hi, sLo, sHi = ly.zone, ly.lo, ly.hi, ly.sLo, ly.sHi
	}
	nz := len(lo)

	// Group partitions by previous owner set (holders only, sorted).
	type group struct {
		set []int32
		cnt int
	}
	var groups []group
	byKey := map[string]int{}
	var sb strings.Builder
	for i := range p {
		var set []int32
		if i < len(in.Prev) {
			for _, name := range in.Prev[i] {
				if x, ok := slices.BinarySearch(hs.names, name); ok && !slices.Contains(set, int32(x)) {
					set = append(set, int32(x))
				}
			}
		}
		slices.Sort(set)
		sb.Reset()
		for _, x := range set {
			sb.WriteString(string(rune(x + 1)))
		}
		k, ok := byKey[sb.String()]
		if !ok {
			k = len(groups)
			byKey[sb.String()] = k
			groups = append(groups, group{set: set})
		}
		groups[k].cnt++
	}

	// Nodes: source, sink, groups, group×zone, members; then super nodes.
	g := len(groups)
	src, snk := 0, 1
	gNode := func(k int) int { return 2 + k }
	gzNode := func(k, z int) int { return 2 + g + k*nz + z }
	mNode := func(x int) int { return 2 + g + g*nz + x }
	nn := 2 + g + g*nz + n
	f := newFlow(nn + 2)
	ss, tt := nn, nn+1
	excess := make([]int, nn)
	edge := func(u, v, l, c, cost int) {
		if c > l {
			f.add(u, v, c-l, cost)
		}
		excess[v] += l
		excess[u] -= l
	}
	for k, gr := range groups {
		edge(src, gNode(k), r*gr.cnt, r*gr.cnt, 0)
		for z := range nz {
			edge(gNode(k), gzNode(k, z), int(lo[z])*gr.cnt, int(hi[z])*gr.cnt, 0)
		}
		for x := range n {
			cost := 1
			if slices.Contains(gr.set, int32(x)) {
				cost = 0
			}
			edge(gzNode(k, int(zone[x])), mNode(x), 0, gr.cnt, cost)
		}
	}
	for x := range n {
		edge(mNode(x), snk, int(sLo[x]), int(sHi[x]), 0)
	}
	f.add(snk, src, r*p, 0)
	need := 0
	for v, e := range excess {
		switch {
		case e > 0:
			f.add(ss, v, e, 0)
			need += e
		case e < 0:
			f.add(v, tt, -e, 0)
		}
	}
	flow, cost := f.run(ss, tt)
	if flow < need {
		return -1 // infeasible: never for a layout AssignInput accepts
	}
	return cost
}

// flow is a small min-cost flow (successive shortest paths with
// Bellman-Ford, for the handful of nodes MinCopies builds).
type flow struct {
	head                []int
	to, next, cap, cost []int
}

func newFlow(n int) *flow {
	f := &flow{head: make([]int, n)}
	for i := range f.head {
		f.head[i] = -1
	}
	return f
}

func (f *flow) add(u, v, c, cost int) {
	f.to, f.cap, f.cost, f.next = append(f.to, v), append(f.cap, c), append(f.cost, cost), append(f.next, f.head[u])
	f.head[u] = len(f.to) - 1
	f.to, f.cap, f.cost, f.next = append(f.to, u), append(f.cap, 0), append(f.cost, -cost), append(f.next, f.head[v])
	f.head[v] = len(f.to) - 1
}

func (f *flow) run(s, t int) (total, cost int) {
	n := len(f.head)
	dist := make([]int, n)
	inQ := make([]bool, n)
	via := make([]int, n)
	ring := make([]int, n) // at most n nodes are queued at once
	for {
		for i := range dist {
			dist[i], via[i] = math.MaxInt, -1
		}
		dist[s] = 0
		ring[0], inQ[s] = s, true
		head, size := 0, 1
		for size > 0 {
			u := ring[head]
			head, size = (head+1)%n, size-1
			inQ[u] = false
			for e := f.head[u]; e >= 0; e = f.next[e] {
				if v := f.to[e]; f.cap[e] > 0 && dist[u]+f.cost[e] < dist[v] {
					dist[v], via[v] = dist[u]+f.cost[e], e
					if !inQ[v] {
						inQ[v] = true
						ring[(head+size)%n] = v
						size++
					}
				}
			}
		}
		if dist[t] == math.MaxInt {
			return total, cost
		}
		push := math.MaxInt
		for v := t; v != s; v = f.to[via[v]^1] {
			push = min(push, f.cap[via[v]])
		}
		for v := t; v != s; v = f.to[via[v]^1] {
			f.cap[via[v]] -= push
			f.cap[via[v]^1] += push
		}
		total += push
		cost += push * dist[t]
	}
}
