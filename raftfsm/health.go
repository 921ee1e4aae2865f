package raftfsm

// Cluster health statuses.
const (
	healthUnknown  = "unknown" // before the first table
	HealthHealthy  = "healthy"
	HealthDegraded = "degraded"
	HealthCritical = "critical"
)

// Health is the cluster health derived from committed state, so every node
// computes the same value at the same log index.
type Health struct {
	Status           string
	HealthyNodes     int
	UnhealthyNodes   int
	TotalNodes       int
	UnhealthyNodeIDs []string
	// Partitions with fewer live owners than the replication factor.
	UnderReplicated int
	// Partitions without any live owner.
	Unowned int
	// MinLiveOwners is the fewest live, ready owners any partition has (0
	// without a table): any MinLiveOwners members failing together can take
	// every copy of some partition, one fewer never can.
	MinLiveOwners int
}

// NodeFailureTolerance is how many members may fail, whichever they are,
// with every partition keeping a live ready owner: MinLiveOwners - 1, and 0
// when some partition has none already.
func (h Health) NodeFailureTolerance() int { return max(h.MinLiveOwners-1, 0) }

// Equal reports whether two health values would be reported identically.
func (h Health) Equal(o Health) bool {
	if h.Status != o.Status || h.HealthyNodes != o.HealthyNodes || h.UnhealthyNodes != o.UnhealthyNodes ||
		h.TotalNodes != o.TotalNodes || h.UnderReplicated != o.UnderReplicated || h.Unowned != o.Unowned ||
		h.MinLiveOwners != o.MinLiveOwners ||
		len(h.UnhealthyNodeIDs) != len(o.UnhealthyNodeIDs) {
		return false
	}
	for i := range h.UnhealthyNodeIDs {
		if h.UnhealthyNodeIDs[i] != o.UnhealthyNodeIDs[i] {
			return false
		}
	}
	return true
}

// computeHealth derives the health of v: healthy (every member active and
// every partition with RF live ready owners), degraded (a member suspect or a
// partition under-replicated, but every partition has a live owner), critical
// (a partition without a live owner).
func computeHealth(v *View) Health {
	h := Health{Status: healthUnknown, TotalNodes: len(v.members)}
	live := make(map[string]bool, len(v.members))
	for _, m := range v.members {
		if m.Status == StatusActive {
			h.HealthyNodes++
			live[m.ID] = true
		} else {
			h.UnhealthyNodes++
			h.UnhealthyNodeIDs = append(h.UnhealthyNodeIDs, m.ID)
		}
	}
	if v.config == nil || !v.HasTable() {
		return h
	}
	rf := int(v.config.GetReplicationFactor())
	for p, a := range v.assignments {
		n := 0
		for i, id := range a.GetOwners() {
			// A syncing owner does not hold the data yet: it does not count.
			if live[id] && a.LoadEpoch(i) == 0 {
				n++
			}
		}
		if p == 0 || n < h.MinLiveOwners {
			h.MinLiveOwners = n
		}
		switch {
		case n == 0:
			h.Unowned++
		case n < rf:
			h.UnderReplicated++
		}
	}
	switch {
	case h.Unowned > 0:
		h.Status = HealthCritical
	case h.UnhealthyNodes > 0 || h.UnderReplicated > 0:
		h.Status = HealthDegraded
	default:
		h.Status = HealthHealthy
	}
	return h
}
