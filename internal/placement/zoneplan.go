package placement

import (
	"cmp"
	"math"
	"slices"
)

// zplanner is the planner of the zone-aware path (zones.go). Like planner it
// works on int32 member indexes in flat slices; it also tracks each
// partition's owners per zone and its previous owners, so every move can be
// checked against the zone rule and priced in copied slots.
type zplanner struct {
	ly          *layout
	n, p, r, nz int
	own         []int32 // p*r owner indexes; own[i*r] is partition i's primary
	zc          []int32 // p*nz owners per zone
	load, prim  []int32
	pOff, pIdx  []int32 // previous owners (holders) of partition i: pIdx[pOff[i]:pOff[i+1]]
	changed     []bool
	chList      []int32
	co          []int32 // n*n: partitions members x and y both own (fill's tie-break)
	chPos       int
	scanPos     int

	// Primary targets for the current slot counts (rule 4).
	q        []float64
	pLo, pHi []int32
	qStale   bool

	mark  []int32 // membership marks, see newStamp
	stamp int32

	// Breadth-first search scratch.
	vis              []int32 // visited marks (vstamp)
	vstamp           int32
	par, parPart     []int32
	queue            []int32
	head, adj        []int32
	unv              [][]int32
	src, dst         []bool
	srcList, dstList []int32
	undoI            []int32
	undoA, undoB     []int32
	primSrc, primDst []bool
	primTargets      []int32
	pairBudget       int // pairMove's remaining search steps
}

// placeZoned computes one table for layout ly.
func placeZoned(prev [][]string, ly *layout) [][]string {
	p, r := ly.p, ly.r
	if r == 0 {
		out := make([][]string, p)
		empty := make([]string, 0)
		for i := range out {
			out[i] = empty
		}
		return out
	}
	n, nz := len(ly.names), len(ly.zones)
	pl := &zplanner{ly: ly, n: n, p: p, r: r, nz: nz,
		own: make([]int32, p*r), zc: make([]int32, p*nz),
		load: make([]int32, n), prim: make([]int32, n),
		changed: make([]bool, p), mark: make([]int32, n), vis: make([]int32, n),
		co:  make([]int32, n*n),
		par: make([]int32, n), parPart: make([]int32, n),
		src: make([]bool, n), dst: make([]bool, n),
		primSrc: make([]bool, n), primDst: make([]bool, n),
		qStale: true, pairBudget: 50_000_000,
	}
	cnt := pl.keep(prev)
	qT := ly.primaryTargets(ly.t)
	for i := range p {
		if cnt[i] < int32(r) {
			pl.fill(i, int(cnt[i]), qT)
		}
	}
	// A partition without an owner that may lead gets one, which may take
	// a slot against the bands (rule 1 comes first); balancing again then
	// keeps it (leadOK) and repairs the bands.
	for range 4 {
		pl.balanceSlots()
		if !pl.leadFix() {
			break
		}
	}
	pl.balancePrimaries()
	buf := make([]string, p*r)
	for i, x := range pl.own {
		buf[i] = ly.names[x]
	}
	out := make([][]string, p)
	for i := range out {
		out[i] = buf[i*r : (i+1)*r : (i+1)*r]
	}
	return out
}

func (pl *zplanner) newStamp() int32 {
	if pl.stamp == math.MaxInt32 {
		clear(pl.mark)
		pl.stamp = 0
	}
	pl.stamp++
	return pl.stamp
}

func (pl *zplanner) newVisit() int32 {
	if pl.vstamp == math.MaxInt32 {
		clear(pl.vis)
		pl.vstamp = 0
	}
	pl.vstamp++
	return pl.vstamp
}

func (pl *zplanner) markChanged(i int) {
	if !pl.changed[i] {
		pl.changed[i] = true
		pl.chList = append(pl.chList, int32(i))
	}
}

func (pl *zplanner) owners(i int) []int32 { return pl.own[i*pl.r : (i+1)*pl.r] }

func (pl *zplanner) prevOwners(i int) []int32 { return pl.pIdx[pl.pOff[i]:pl.pOff[i+1]] }

// isPrev reports whether x owned partition i in prev.
func (pl *zplanner) isPrev(i int, x int32) bool { return slices.Contains(pl.prevOwners(i), x) }

// keep copies previous owners that are still holders, in previous order,
// skipping any that would break the zone rule (a later-listed excess owner
// in a zone) or exceed r; a dead primary is thereby replaced by the first
// kept replica. It returns the owners kept per partition.
func (pl *zplanner) keep(prev [][]string) []int32 {
	ly, r, nz := pl.ly, pl.r, pl.nz
	index := make(map[string]int32, pl.n)
	for x, name := range ly.names {
		index[name] = int32(x)
	}
	sumLo := int32(0)
	for _, l := range ly.lo {
		sumLo += l
	}
	cnt := make([]int32, pl.p)
	pl.pOff = make([]int32, pl.p+1)
	for i := 0; i < pl.p; i++ {
		pl.pOff[i] = int32(len(pl.pIdx))
		if i >= len(prev) {
			continue
		}
		st := pl.newStamp()
		base, k := i*r, 0
		need := sumLo // Σ_z max(count_z, lo_z): owners the zone rule commits
		for _, name := range prev[i] {
			if name == "" {
				continue
			}
			x, ok := index[name]
			if !ok {
				pl.markChanged(i)
				continue
			}
			if pl.mark[x] == st {
				continue
			}
			pl.mark[x] = st
			pl.pIdx = append(pl.pIdx, x)
			z := int(ly.zone[x])
			c := pl.zc[i*nz+z]
			if k < r && (c < ly.lo[z] || (c < ly.hi[z] && need < int32(r))) {
				pl.own[base+k] = x
				k++
				pl.zc[i*nz+z]++
				pl.load[x]++
				if c >= ly.lo[z] {
					need++
				}
			} else {
				pl.markChanged(i)
			}
		}
		cnt[i] = int32(k)
		if k > 0 {
			pl.prim[pl.own[base]]++
		}
		for j, x := range pl.own[base : base+k] {
			for _, y := range pl.own[base : base+j] {
				pl.co[int(x)*pl.n+int(y)]++
				pl.co[int(y)*pl.n+int(x)]++
			}
		}
	}
	pl.pOff[pl.p] = int32(len(pl.pIdx))
	return cnt
}

// fill completes partition i (k owners so far) with the holders of the
// largest deficit T_x − load_x that the zone rule allows; equal deficits
// are scanned from a per-partition offset (see the package comment). A
// partition without an owner that may lead takes one first. A brand-new
// list is led by its owner with the fewest primaries for its target qT.
func (pl *zplanner) fill(i, k int, qT []float64) {
	ly, r, n, nz := pl.ly, pl.r, pl.n, pl.nz
	pl.markChanged(i)
	base := i * r
	st := pl.newStamp()
	needLead := ly.lead != nil
	for _, x := range pl.own[base : base+k] {
		pl.mark[x] = st
		needLead = needLead && !ly.lead[x]
	}
	zc := pl.zc[i*nz : (i+1)*nz]
	off := int(mix(uint64(i)) % uint64(n))
	for j := k; j < r; j++ {
		need := int32(0)
		for z, c := range zc {
			need += max(c, ly.lo[z])
		}
		best := int32(-1)
		for pass := 0; pass < 2 && best < 0; pass++ {
			allowed := func(x int) bool {
				if pl.mark[x] == st || (pass == 0 && needLead && !ly.lead[x]) {
					return false
				}
				z := ly.zone[x]
				c := zc[z]
				return c < ly.hi[z] && (c < ly.lo[z] || need < int32(r))
			}
			// The largest deficit, then among candidates within one slot
			// of it the fewest partitions shared with the owners so far
			// (spreads co-ownership: no copysets, and a zone's members
			// pair evenly with every other zone, so a leave can be
			// refilled from every zone), then the rotation.
			bestD := math.Inf(-1)
			for x := range n {
				if allowed(x) {
					bestD = max(bestD, ly.t[x]-float64(pl.load[x]))
				}
			}
			bestCo := int32(math.MaxInt32)
			for y := 0; y < n; y++ {
				x := y + off
				if x >= n {
					x -= n
				}
				if !allowed(x) || ly.t[x]-float64(pl.load[x]) < bestD-1 {
					continue
				}
				c := int32(0)
				for _, o := range pl.own[base : base+j] {
					c += pl.co[x*n+int(o)]
				}
				if c < bestCo {
					best, bestCo = int32(x), c
				}
			}
		}
		// best >= 0: Σ max(count, lo) ≤ r keeps a zone with room.
		for _, o := range pl.own[base : base+j] {
			pl.co[int(best)*n+int(o)]++
			pl.co[int(o)*n+int(best)]++
		}
		pl.own[base+j] = best
		pl.mark[best] = st
		zc[ly.zone[best]]++
		pl.load[best]++
		needLead = needLead && !ly.lead[best]
	}
	if k == 0 {
		bj := 0
		for j := 0; j < r; j++ {
			a, b := pl.own[base+j], pl.own[base+bj]
			if !ly.canLead(a) {
				continue
			}
			if !ly.canLead(b) || float64(pl.prim[a])-qT[a] < float64(pl.prim[b])-qT[b] {
				bj = j
			}
		}
		pl.own[base], pl.own[base+bj] = pl.own[base+bj], pl.own[base]
		pl.prim[pl.own[base]]++
	}
}

// replace puts member b in a's position of partition i.
func (pl *zplanner) replace(i int, a, b int32) {
	base := i * pl.r
	for j := 0; j < pl.r; j++ {
		if pl.own[base+j] == a {
			for _, o := range pl.own[base : base+pl.r] {
				if o != a {
					pl.co[int(a)*pl.n+int(o)]--
					pl.co[int(o)*pl.n+int(a)]--
					pl.co[int(b)*pl.n+int(o)]++
					pl.co[int(o)*pl.n+int(b)]++
				}
			}
			pl.own[base+j] = b
			pl.load[a]--
			pl.load[b]++
			pl.zc[i*pl.nz+int(pl.ly.zone[a])]--
			pl.zc[i*pl.nz+int(pl.ly.zone[b])]++
			if j == 0 {
				pl.prim[a]--
				pl.prim[b]++
			}
			pl.qStale = true
			return
		}
	}
}

// zoneOK reports whether replacing a by b in partition i keeps the zone rule
// (b not yet an owner is the caller's check).
func (pl *zplanner) zoneOK(i int, a, b int32) bool {
	za, zb := pl.ly.zone[a], pl.ly.zone[b]
	if za == zb {
		return true
	}
	zc := pl.zc[i*pl.nz : (i+1)*pl.nz]
	return zc[za] > pl.ly.lo[za] && zc[zb] < pl.ly.hi[zb]
}

// leadOK reports whether replacing a by b in partition i leaves it an owner
// that may lead (when it had one).
func (pl *zplanner) leadOK(i int, a, b int32) bool {
	ly := pl.ly
	if ly.lead == nil || ly.lead[b] || !ly.lead[a] {
		return true
	}
	c := 0
	for _, x := range pl.owners(i) {
		if ly.lead[x] {
			c++
		}
	}
	return c > 1
}

// canMove is every check of replacing a by b in partition i.
func (pl *zplanner) canMove(i int, a, b int32) bool {
	own := pl.owners(i)
	return slices.Contains(own, a) && !slices.Contains(own, b) && pl.zoneOK(i, a, b) && pl.leadOK(i, a, b)
}

// slotRoles sets src/dst for the next slot move: first members above their
// band give to those below its ceil, then members below their band take
// from those above its floor (the two phases of a flow with bounds). It
// returns false when every load is within its band.
func (pl *zplanner) slotRoles() bool {
	ly := pl.ly
	over, under := false, false
	for x, l := range pl.load {
		over = over || l > ly.sHi[x]
		under = under || l < ly.sLo[x]
	}
	if !over && !under {
		return false
	}
	pl.srcList, pl.dstList = pl.srcList[:0], pl.dstList[:0]
	for x, l := range pl.load {
		if over {
			pl.src[x], pl.dst[x] = l > ly.sHi[x], l < ly.sHi[x]
		} else {
			pl.src[x], pl.dst[x] = l > ly.sLo[x], l < ly.sLo[x]
		}
		if pl.src[x] {
			pl.srcList = append(pl.srcList, int32(x))
		}
		if pl.dst[x] {
			pl.dstList = append(pl.dstList, int32(x))
		}
	}
	gap := func(x int32) float64 { return ly.t[x] - float64(pl.load[x]) }
	slices.SortFunc(pl.srcList, func(a, b int32) int { return cmp.Or(cmp.Compare(gap(a), gap(b)), cmp.Compare(a, b)) })
	slices.SortFunc(pl.dstList, func(a, b int32) int { return cmp.Or(cmp.Compare(gap(b), gap(a)), cmp.Compare(a, b)) })
	return true
}

// balanceSlots moves slots until every holder's load is within its band
// (rule 3), every move keeping the zone rule and leaving a partition an
// owner that may lead if it had one. Each step tries, in order: a move that
// copies nothing (freeDirect), a chain of such moves, a move in any
// partition (replica positions first), a chain through any partitions,
// and a two-owner replacement (pairMove). Each step removes one unit of
// excess (or deficit) and creates none, so it ends; the loop is bounded
// anyway.
func (pl *zplanner) balanceSlots() {
	limit := 2*pl.p*pl.r + 4*pl.n + 16
	for range limit {
		if !pl.slotRoles() {
			return
		}
		if pl.freeDirect() || pl.chain(true) || pl.paidDirect() || pl.chain(false) || pl.pairMove() {
			continue
		}
		return // never seen in testing: ValidateInput would report it
	}
}

// freeDirect replaces a source by a target in a partition whose owner set
// already changed, where that copies nothing new: the source's slot there
// is new itself, or the target owned the partition before.
func (pl *zplanner) freeDirect() bool {
	m := len(pl.chList)
	for kk := range m {
		at := pl.chPos + kk
		if at >= m {
			at -= m
		}
		i := int(pl.chList[at])
		own := pl.owners(i)
		for pass := range 2 {
			for j, a := range own {
				if (j == 0) != (pass == 1) || !pl.src[a] {
					continue
				}
				cands := pl.dstList
				if pl.isPrev(i, a) {
					cands = pl.prevOwners(i)
				}
				for _, b := range cands {
					if pl.dst[b] && pl.canMove(i, a, b) {
						pl.replace(i, a, b)
						pl.chPos = at
						return true
					}
				}
			}
		}
	}
	return false
}

// paidDirect replaces a source by a target in any partition (one copied
// slot), trying sources by excess and replica positions first.
func (pl *zplanner) paidDirect() bool {
	for pass := range 2 {
		for _, a := range pl.srcList {
			for kk := range pl.p {
				i := pl.scanPos + kk
				if i >= pl.p {
					i -= pl.p
				}
				own := pl.owners(i)
				j := slices.Index(own, a)
				if j < 0 || (j == 0) != (pass == 1) {
					continue
				}
				for _, b := range pl.dstList {
					if pl.canMove(i, a, b) {
						pl.replace(i, a, b)
						pl.markChanged(i)
						pl.scanPos = i
						return true
					}
				}
			}
		}
	}
	return false
}

// chain finds by breadth-first search a chain s → x1 → … → t where each
// hop replaces the current member by the next in a partition that has the
// former and not the latter (zone rule kept), from a source to a target:
// the source loses a slot, the target gains one, the others keep their
// loads. With free, only hops that copy nothing new are used (partitions
// already changed). Hops are re-checked when applied; a chain that no
// longer holds is undone.
func (pl *zplanner) chain(free bool) bool {
	n, r, ly := pl.n, pl.r, pl.ly
	parts := pl.chList
	if !free {
		if cap(pl.adj) < pl.p {
			pl.adj = make([]int32, 0, pl.p)
		}
		parts = pl.adj[:0]
		for i := range pl.p {
			parts = append(parts, int32(i))
		}
		pl.adj = parts
	}
	if len(parts) == 0 {
		return false
	}
	// Compressed adjacency: the partitions of parts each member owns.
	head := slices.Grow(pl.head[:0], n+1)[:n+1]
	clear(head)
	for _, i := range parts {
		for _, x := range pl.owners(int(i)) {
			head[x+1]++
		}
	}
	for x := range n {
		head[x+1] += head[x]
	}
	cursor := slices.Clone(head[:n])
	adj := make([]int32, len(parts)*r)
	for _, i := range parts {
		for _, x := range pl.owners(int(i)) {
			adj[cursor[x]] = i
			cursor[x]++
		}
	}
	pl.head = head

	vst := pl.newVisit()
	q := pl.queue[:0]
	if len(pl.unv) < pl.nz {
		pl.unv = make([][]int32, pl.nz)
	}
	for z := range pl.unv {
		pl.unv[z] = pl.unv[z][:0]
	}
	for x := range n {
		if pl.src[x] {
			pl.vis[x] = vst
			pl.par[x] = -1
			q = append(q, int32(x))
		} else {
			pl.unv[ly.zone[x]] = append(pl.unv[ly.zone[x]], int32(x))
		}
	}
	visit := func(a, b int32, i int32) bool {
		pl.vis[b] = vst
		pl.par[b], pl.parPart[b] = a, i
		if pl.dst[b] && pl.applyChain(b, free) {
			return true
		}
		q = append(q, b)
		return false
	}
	for qi := 0; qi < len(q); qi++ {
		a := q[qi]
		za := ly.zone[a]
		for _, i32 := range adj[head[a]:head[a+1]] {
			i := int(i32)
			st := pl.newStamp()
			for _, x := range pl.owners(i) {
				pl.mark[x] = st
			}
			if free && pl.isPrev(i, a) {
				// Free only towards a previous owner of i.
				for _, b := range pl.prevOwners(i) {
					if pl.vis[b] != vst && pl.mark[b] != st && pl.zoneOK(i, a, b) && pl.leadOK(i, a, b) {
						if visit(a, b, i32) {
							pl.queue = q
							return true
						}
					}
				}
				continue
			}
			zc := pl.zc[i*pl.nz : (i+1)*pl.nz]
			for z := range pl.nz {
				if int32(z) != za && (zc[za] <= ly.lo[za] || zc[z] >= ly.hi[z]) {
					continue
				}
				rest := pl.unv[z][:0]
				for _, b := range pl.unv[z] {
					switch {
					case pl.vis[b] == vst:
					case pl.mark[b] == st || !pl.leadOK(i, a, b):
						rest = append(rest, b)
					default:
						if visit(a, b, i32) {
							pl.queue = q
							return true
						}
					}
				}
				pl.unv[z] = rest
			}
		}
	}
	pl.queue = q
	return false
}

// applyChain replays the replacements along the BFS parent chain ending at
// target, re-checking each hop; it undoes them and returns false if one no
// longer holds (the same partition twice on a chain can do that).
func (pl *zplanner) applyChain(target int32, free bool) bool {
	pl.undoI, pl.undoA, pl.undoB = pl.undoI[:0], pl.undoA[:0], pl.undoB[:0]
	for b := target; pl.par[b] >= 0; b = pl.par[b] {
		a, i := pl.par[b], int(pl.parPart[b])
		if !pl.canMove(i, a, b) {
			for k := len(pl.undoI) - 1; k >= 0; k-- {
				pl.replace(int(pl.undoI[k]), pl.undoB[k], pl.undoA[k])
			}
			return false
		}
		pl.replace(i, a, b)
		pl.undoI, pl.undoA, pl.undoB = append(pl.undoI, int32(i)), append(pl.undoA, a), append(pl.undoB, b)
	}
	if !free {
		for _, i := range pl.undoI {
			pl.markChanged(int(i))
		}
	}
	return true
}

// refreshQ recomputes Q and its bands for the current slot counts.
func (pl *zplanner) refreshQ() {
	if !pl.qStale {
		return
	}
	caps := make([]float64, pl.n)
	for x, l := range pl.load {
		caps[x] = float64(l)
	}
	pl.q = pl.ly.primaryTargets(caps)
	pl.pLo, pl.pHi = bands(pl.q, float64(pl.p))
	pl.qStale = false
}

// swap makes the owner at position j of partition i its primary.
func (pl *zplanner) swap(i, j int) {
	base := i * pl.r
	a, b := pl.own[base], pl.own[base+j]
	pl.own[base], pl.own[base+j] = b, a
	pl.prim[a]--
	pl.prim[b]++
}

// leadFix gives every partition led by a member that may not lead an
// owner that may: by a role swap when it has one (the one furthest below
// its primary target), else by giveLeader, else by forceLeader. It reports
// whether it forced one (slot bands may need repair).
func (pl *zplanner) leadFix() (forced bool) {
	ly, r := pl.ly, pl.r
	if ly.lead == nil {
		return false
	}
	pl.refreshQ()
	for i := range pl.p {
		base := i * r
		if ly.lead[pl.own[base]] {
			continue
		}
		if bj := pl.neediestReplica(i, func(b int32) bool { return ly.lead[b] }); bj > 0 {
			pl.swap(i, bj)
		}
	}
	for i := range pl.p {
		if !ly.lead[pl.own[i*r]] && !pl.giveLeader(i) {
			pl.forceLeader(i)
			forced = true
		}
	}
	return forced
}

// forceLeader replaces an owner of partition i (which has no owner that
// may lead) by the member that may lead furthest below its slot optimum,
// whatever the bands, keeping the zone rule, and makes it the primary.
func (pl *zplanner) forceLeader(i int) {
	ly := pl.ly
	own := pl.owners(i)
	bu, bw := int32(-1), int32(-1)
	for u := range int32(pl.n) {
		if !ly.lead[u] || slices.Contains(own, u) {
			continue
		}
		for _, w := range own {
			if pl.zoneOK(i, w, u) && (bu < 0 || ly.t[u]-float64(pl.load[u]) > ly.t[bu]-float64(pl.load[bu])) {
				bu, bw = u, w
				break
			}
		}
	}
	if bu >= 0 {
		pl.installLeader(i, bw, bu)
	}
}

// pairMove is balanceSlots' last resort: it replaces two owners of one
// partition at once, a source a by a target b and another owner c by a
// member d, where no single replacement keeps the zone rule (with one
// owner per zone, a leader of zone A may only give way to one of zone B
// if the partition's owner in zone B leaves too). c stays within its band
// and d too, so one unit of imbalance goes. The search is bounded over the
// whole placement (pairBudget).
func (pl *zplanner) pairMove() bool {
	ly, nz := pl.ly, pl.nz
	zc := make([]int32, nz)
	for _, a := range pl.srcList {
		for i := range pl.p {
			own := pl.owners(i)
			if !slices.Contains(own, a) {
				continue
			}
			st := pl.newStamp()
			leaders := 0
			for _, x := range own {
				pl.mark[x] = st
				if ly.canLead(x) {
					leaders++
				}
			}
			for _, c := range own {
				if c == a || pl.load[c] <= ly.sLo[c] {
					continue
				}
				for _, b := range pl.dstList {
					if pl.mark[b] == st {
						continue
					}
					copy(zc, pl.zc[i*nz:(i+1)*nz])
					zc[ly.zone[a]]--
					zc[ly.zone[c]]--
					zc[ly.zone[b]]++
					for d := range int32(pl.n) {
						if pl.pairBudget--; pl.pairBudget < 0 {
							return false
						}
						if d == b || pl.mark[d] == st || pl.load[d] >= ly.sHi[d] {
							continue
						}
						zc[ly.zone[d]]++
						ok := true
						for z, v := range zc {
							ok = ok && v >= ly.lo[z] && v <= ly.hi[z]
						}
						zc[ly.zone[d]]--
						if !ok {
							continue
						}
						if ly.lead != nil && leaders > 0 {
							l := leaders
							for _, x := range []int32{a, c} {
								if ly.lead[x] {
									l--
								}
							}
							for _, x := range []int32{b, d} {
								if ly.lead[x] {
									l++
								}
							}
							if l == 0 {
								continue
							}
						}
						pl.replace(i, a, b)
						pl.replace(i, c, d)
						pl.markChanged(i)
						return true
					}
				}
			}
		}
	}
	return false
}

// giveLeader puts a member that may lead into partition i, which has none,
// and makes it the primary, keeping slot bands and the zone rule: either
// an owner above its band's floor hands its slot to a leader below its
// ceil, or the leader u trades slots with an owner w: w takes u's place in
// a partition j where u is a replica.
func (pl *zplanner) giveLeader(i int) bool {
	ly := pl.ly
	var cands []int32
	for x := range pl.n {
		if ly.lead[x] {
			cands = append(cands, int32(x))
		}
	}
	pl.refreshQ()
	slices.SortStableFunc(cands, func(a, b int32) int {
		return cmp.Compare(float64(pl.prim[a])-pl.q[a], float64(pl.prim[b])-pl.q[b])
	})
	own := pl.owners(i)
	for _, u := range cands {
		if pl.load[u] >= ly.sHi[u] {
			continue
		}
		for _, w := range own {
			if pl.load[w] > ly.sLo[w] && pl.canMove(i, w, u) {
				pl.installLeader(i, w, u)
				return true
			}
		}
	}
	for _, u := range cands {
		for _, w := range own {
			if !pl.zoneOK(i, w, u) || slices.Contains(own, u) {
				continue
			}
			if j := pl.partner(u, w, i); j >= 0 {
				pl.replace(j, u, w)
				pl.markChanged(j)
				pl.installLeader(i, w, u)
				return true
			}
		}
	}
	return false
}

// partner finds a partition j ≠ not where u is a replica and w can take
// its place, preferring one whose owner set changed already; -1 if none.
func (pl *zplanner) partner(u, w int32, not int) int {
	found := -1
	for j := range pl.p {
		if j == not {
			continue
		}
		own := pl.owners(j)
		if k := slices.Index(own, u); k <= 0 || !pl.canMove(j, u, w) {
			continue
		}
		if pl.changed[j] {
			return j
		}
		if found < 0 {
			found = j
		}
	}
	return found
}

// installLeader replaces w by u in partition i and makes u its primary.
func (pl *zplanner) installLeader(i int, w, u int32) {
	pl.replace(i, w, u)
	pl.markChanged(i)
	if j := slices.Index(pl.owners(i), u); j > 0 {
		pl.swap(i, j)
	}
}

// primRoles sets primSrc/primDst like slotRoles, for primaries of members
// that may lead; false when every count is within its band.
func (pl *zplanner) primRoles() bool {
	ly := pl.ly
	over, under := false, false
	for x, c := range pl.prim {
		over = over || c > pl.pHi[x]
		under = under || c < pl.pLo[x]
	}
	if !over && !under {
		return false
	}
	pl.primTargets = pl.primTargets[:0]
	for x, c := range pl.prim {
		lead := ly.canLead(int32(x))
		if over {
			pl.primSrc[x], pl.primDst[x] = c > pl.pHi[x], lead && c < pl.pHi[x]
		} else {
			pl.primSrc[x], pl.primDst[x] = c > pl.pLo[x], lead && c < pl.pLo[x]
		}
		if pl.primDst[x] {
			pl.primTargets = append(pl.primTargets, int32(x))
		}
	}
	return true
}

// balancePrimaries swaps roles inside owner lists until every member that
// may lead leads floor or ceil of Q_x (rule 4): a direct swap, else a path
// of swaps found by breadth-first search, else (rarely) exchangeLead,
// which moves a slot so that a swap exists.
func (pl *zplanner) balancePrimaries() {
	limit := 4*pl.p + 4*pl.n + 16
	for range limit {
		pl.refreshQ()
		if !pl.primRoles() {
			return
		}
		if pl.swapDirect() || pl.swapPath() || pl.exchangeLead() {
			continue
		}
		return // never seen in testing: ValidateInput would report it
	}
}

// swapDirect promotes, in a partition led by a source, a replica that is a
// target (the one furthest below its target).
func (pl *zplanner) swapDirect() bool {
	r := pl.r
	for i := range pl.p {
		base := i * r
		if !pl.primSrc[pl.own[base]] {
			continue
		}
		if bj := pl.neediestReplica(i, func(b int32) bool { return pl.primDst[b] }); bj > 0 {
			pl.swap(i, bj)
			return true
		}
	}
	return false
}

// swapPath finds, by BFS over "a leads i, b owns i" edges (b may lead), a
// shortest chain from a source to a target and promotes along it; no data
// moves. The members reached stay in pl.queue for exchangeLead.
func (pl *zplanner) swapPath() bool {
	n, r, ly := pl.n, pl.r, pl.ly
	head := slices.Grow(pl.head[:0], n+1)[:n+1]
	clear(head)
	for i := range pl.p {
		head[pl.own[i*r]+1]++
	}
	for x := range n {
		head[x+1] += head[x]
	}
	cursor := slices.Clone(head[:n])
	adj := slices.Grow(pl.adj[:0], pl.p)[:pl.p]
	for i := range pl.p {
		x := pl.own[i*r]
		adj[cursor[x]] = int32(i)
		cursor[x]++
	}
	pl.head, pl.adj = head, adj
	vst := pl.newVisit()
	q := pl.queue[:0]
	for x := range n {
		if pl.primSrc[x] {
			pl.vis[x] = vst
			pl.par[x] = -1
			q = append(q, int32(x))
		}
	}
	for qi := 0; qi < len(q); qi++ {
		a := q[qi]
		for _, i := range adj[head[a]:head[a+1]] {
			for _, b := range pl.own[int(i)*r+1 : int(i)*r+r] {
				if pl.vis[b] == vst || !ly.canLead(b) {
					continue
				}
				pl.vis[b] = vst
				pl.par[b], pl.parPart[b] = a, i
				if pl.primDst[b] {
					pl.queue = q
					pl.promotePath(b)
					return true
				}
				q = append(q, b)
			}
		}
	}
	pl.queue = q
	return false
}

// promotePath makes every member on the BFS parent chain ending at b the
// primary of the partition its parent led.
func (pl *zplanner) promotePath(b int32) {
	for y := b; pl.par[y] >= 0; y = pl.par[y] {
		i := int(pl.parPart[y])
		if j := slices.Index(pl.owners(i), y); j > 0 {
			pl.swap(i, j)
		}
	}
}

// exchangeLead is balancePrimaries' fallback when no path of swaps reaches
// a target: a target u enters a partition i led by a reached member x in
// place of an owner w (a hand-over within slot bands, or a trade through a
// partition where u is a replica; w may be x itself, which the zone rule
// may demand), takes i's primary, and the swap path to x makes up for x's
// loss. The adjacency of swapPath (partitions led by
// each member) is still valid for the reached members.
func (pl *zplanner) exchangeLead() bool {
	ly := pl.ly
	// First a hand-over within slot bands, then a trade through a partner
	// partition j where u is a replica (u leaves j, w takes its place).
	handOver := func(i int, w, u int32) bool { return pl.load[w] > ly.sLo[w] && pl.load[u] < ly.sHi[u] }
	trade := func(i int, w, u int32) bool {
		j := pl.partner(u, w, i)
		if j < 0 {
			return false
		}
		pl.replace(j, u, w)
		pl.markChanged(j)
		return true
	}
	for _, try := range []func(i int, w, u int32) bool{handOver, trade} {
		if pl.exchangeLeadBy(try) {
			return true
		}
	}
	return false
}

// exchangeLeadBy scans the candidates (i led by a reached member x, w an
// owner of i, u a primary target outside i that the zone rule lets replace
// w) and applies the first for which try succeeds: u then leads i in w's
// place and the swap path to x makes up for x's loss.
func (pl *zplanner) exchangeLeadBy(try func(i int, w, u int32) bool) bool {
	for _, x := range pl.queue {
		for _, i32 := range pl.adj[pl.head[x]:pl.head[x+1]] {
			i := int(i32)
			own := pl.owners(i)
			if own[0] != x {
				continue
			}
			for _, w := range own {
				for _, u := range pl.primTargets {
					if slices.Contains(own, u) || !pl.zoneOK(i, w, u) || !try(i, w, u) {
						continue
					}
					pl.installLeader(i, w, u)
					pl.promotePath(x)
					return true
				}
			}
		}
	}
	return false
}

// neediestReplica returns the position (1..r-1) in partition i of the
// replica that ok accepts and that is furthest below its primary target,
// or -1.
func (pl *zplanner) neediestReplica(i int, ok func(int32) bool) int {
	base, bj := i*pl.r, -1
	need := func(b int32) float64 { return float64(pl.prim[b]) - pl.q[b] }
	for j := 1; j < pl.r; j++ {
		if b := pl.own[base+j]; ok(b) && (bj < 0 || need(b) < need(pl.own[base+bj])) {
			bj = j
		}
	}
	return bj
}
