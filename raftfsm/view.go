package raftfsm

import (
	"encoding/binary"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/clusterkit/clusterkit/internal/keyhash"
	"github.com/clusterkit/clusterkit/messages"
)

// Node is a member as the routing view shows it. Views share Node values
// between readers: treat them as read-only.
type Node struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	IP          string            `json:"ip"` // advertise address, host:port
	Port        int               `json:"port"`
	Status      string            `json:"status"` // "active" or "suspect"
	Services    map[string]string `json:"services,omitempty"`
	Incarnation uint64            `json:"incarnation,string"` // a string: it exceeds 2^53 (JavaScript numbers)
	Voter       bool              `json:"voter"`
	JoinedAt    time.Time         `json:"joined_at"`
	LastSeen    time.Time         `json:"last_seen"`
	// Handoff: the node acknowledges the partitions it loads.
	Handoff bool `json:"handoff"`
	// Draining: the node is stopping; it leads no partition.
	Draining bool `json:"draining"`
	// Zone is the node's failure domain ("" = none).
	Zone string `json:"zone"`
	// Weight is the node's relative capacity (0: it holds nothing).
	Weight int `json:"weight"`
	// Drained: an operator drained the node; it holds nothing until undrained.
	Drained bool `json:"drained"`
}

// DrainChange is an operator's drain or undrain of a member.
type DrainChange struct {
	Node  string
	Drain bool
}

// Owner is one owner of a partition and its hand-off state.
type Owner struct {
	ID    string `json:"id"`
	State string `json:"state"` // OwnerSyncing or OwnerReady
}

// Partition is one partition of the routing view. Views share Partition
// values between readers: treat them as read-only.
type Partition struct {
	ID           string   `json:"id"`
	PrimaryNode  string   `json:"primary_node"`
	ReplicaNodes []string `json:"replica_nodes"`
	// Epoch increases whenever the owner list changes; use it to fence writes.
	Epoch uint64 `json:"epoch"`
	// Owners lists primary then replicas, each with its state.
	Owners []Owner `json:"owners"`
	// Target is the owner list the hand-off drives towards (nil: settled).
	Target []string `json:"target,omitempty"`
	num    uint32
}

// Syncing reports whether owner id is still loading the partition.
func (p *Partition) Syncing(id string) bool {
	for _, o := range p.Owners {
		if o.ID == id {
			return o.State == OwnerSyncing
		}
	}
	return false
}

// Number returns the partition's index (the n of "partition-n").
func (p *Partition) Number() int { return int(p.num) }

// Role is the local node's role for a partition.
type Role uint8

// Roles.
const (
	RoleNone Role = iota
	RolePrimary
	RoleReplica
)

// Status strings of Node.Status.
const (
	StatusActive  = "active"
	StatusSuspect = "suspect"
)

// View is an immutable snapshot of the membership and the routing table. A
// new View is published after every change; published views are never
// mutated, so readers need no lock.
type View struct {
	version      uint64
	localID      string
	config       *messages.ClusterConfig
	algo         keyhash.Algorithm
	count        uint32
	members      []Node
	nonces       []uint64 // nonces[i] is members[i]'s process nonce
	index        map[string]int
	tableVersion uint64
	health       Health
	departed     map[string]Departure
	done         chan struct{}
	assignments  []*messages.PartitionAssignment
	span         *messages.RebalanceSpan
	paused       bool

	// The routing structures are built on first use: a burst of entries
	// publishes many views that nobody routes with (a table of 1024
	// partitions is thousands of allocations to build).
	table      *messages.PartitionTable
	routeOnce  sync.Once
	routeTable routing
}

// routing is the part of a view built lazily from its table.
type routing struct {
	parts    []Partition
	owners   [][]string
	primary  []*Node
	replicas [][]Node
	all      [][]Node
	checksum uint64
}

func (v *View) rt() *routing {
	v.routeOnce.Do(func() {
		if v.table != nil {
			v.buildTable(v.table)
		}
	})
	return &v.routeTable
}

// Assignment returns the committed assignment of partition n (owners,
// epoch, load states, target), or nil. Read-only.
func (v *View) Assignment(n int) *messages.PartitionAssignment {
	if uint(n) >= uint(len(v.assignments)) {
		return nil
	}
	return v.assignments[n]
}

// Span returns the open hand-off span, or nil. Read-only.
func (v *View) Span() *messages.RebalanceSpan { return v.span }

// Settled reports whether no partition has a hand-off in progress.
func (v *View) Settled() bool {
	for _, a := range v.assignments {
		if len(a.GetTarget()) > 0 || len(a.GetSyncing()) > 0 {
			return false
		}
	}
	return true
}

// Version is the Raft index of the last change to config, members or table.
func (v *View) Version() uint64 { return v.version }

// LocalID is the ID of the node this view was built on.
func (v *View) LocalID() string { return v.localID }

// Config returns the committed configuration, or nil before bootstrap. Read-only.
func (v *View) Config() *messages.ClusterConfig { return v.config }

// KeyHash returns the committed key hash algorithm.
func (v *View) KeyHash() keyhash.Algorithm { return v.algo }

// Members returns the members sorted by ID. Read-only.
func (v *View) Members() []Node { return v.members }

// Member returns the member with the given ID.
func (v *View) Member(id string) (*Node, bool) {
	i, ok := v.index[id]
	if !ok {
		return nil, false
	}
	return &v.members[i], true
}

// HasTable reports whether a partition table has been committed.
func (v *View) HasTable() bool { return v.tableVersion != 0 }

// TableVersion is the Raft index of the entry that last changed the table.
func (v *View) TableVersion() uint64 { return v.tableVersion }

// PartitionCount is the number of partitions in the table (0 before the first table).
func (v *View) PartitionCount() int { return len(v.assignments) }

// Partitions returns all partitions in order. Read-only.
func (v *View) Partitions() []Partition { return v.rt().parts }

// Partition returns partition n, or nil when out of range.
func (v *View) Partition(n int) *Partition {
	parts := v.rt().parts
	if uint(n) >= uint(len(parts)) {
		return nil
	}
	return &parts[n]
}

// PartitionOf maps key to its partition; nil before the first table. It does
// not allocate (once the view's routing structures are built).
func (v *View) PartitionOf(key string) *Partition {
	parts := v.rt().parts
	if len(parts) == 0 {
		return nil
	}
	return &parts[keyhash.Partition(v.algo, key, v.count)]
}

// Owners returns the owner IDs of partition n (primary first). Read-only.
func (v *View) Owners(n int) []string {
	if uint(n) >= uint(len(v.assignments)) {
		return nil
	}
	return slices.Clip(v.assignments[n].GetOwners())
}

// OwnerTable returns every partition's owner IDs. Read-only.
func (v *View) OwnerTable() [][]string { return v.rt().owners }

// Primary returns the primary of partition n, or nil.
func (v *View) Primary(n int) *Node {
	primary := v.rt().primary
	if uint(n) >= uint(len(primary)) {
		return nil
	}
	return primary[n]
}

// Replicas returns the replicas of partition n. Read-only.
func (v *View) Replicas(n int) []Node {
	replicas := v.rt().replicas
	if uint(n) >= uint(len(replicas)) {
		return nil
	}
	return replicas[n]
}

// Nodes returns primary and replicas of partition n. Read-only.
func (v *View) Nodes(n int) []Node {
	all := v.rt().all
	if uint(n) >= uint(len(all)) {
		return nil
	}
	return all[n]
}

// Role returns the local node's role for partition n.
func (v *View) Role(n int) Role {
	if uint(n) >= uint(len(v.assignments)) {
		return RoleNone
	}
	switch slices.Index(v.assignments[n].GetOwners(), v.localID) {
	case -1:
		return RoleNone
	case 0:
		return RolePrimary
	}
	return RoleReplica
}

// Health returns the committed cluster health.
func (v *View) Health() Health { return v.health }

// Checksum identifies the table (owners and epochs); equal on every node that
// applied the same table.
func (v *View) Checksum() uint64 { return v.rt().checksum }

// Nonce returns the process nonce of member id's current life.
func (v *View) Nonce(id string) (uint64, bool) {
	i, ok := v.index[id]
	if !ok {
		return 0, false
	}
	return v.nonces[i], true
}

// ClusterID returns the committed cluster ID ("" before bootstrap, or for a
// cluster bootstrapped before cluster IDs existed).
func (v *View) ClusterID() string { return v.config.GetClusterId() }

// Departure records a removed node.
type Departure struct {
	At          time.Time // when it was removed (proposer clock)
	Incarnation uint64    // the incarnation that was removed
	Nonce       uint64    // the process nonce of that life
	Reason      string
	RemovedBy   string // the node that proposed the removal
	Index       uint64 // Raft index of the removal
	// Partitions it held when it left.
	PartitionsPrimary, PartitionsReplica []uint32
	// Node is the member as it was when it was removed.
	Node Node
	rec  *messages.DepartedMember // the committed record (read-only)
}

// DepartureOf converts a departed-list record.
func DepartureOf(d *messages.DepartedMember) Departure {
	return Departure{At: time.Unix(0, d.GetLeftAtUnixNano()).UTC(), Incarnation: d.GetMember().GetIncarnation(),
		Nonce: nonceOf(d.GetMember()), Reason: d.GetReason(), RemovedBy: d.GetRemovedBy(), Index: d.GetIndex(),
		PartitionsPrimary: d.GetPartitionsPrimary(), PartitionsReplica: d.GetPartitionsReplica(),
		Node: nodeFromMember(d.GetMember()), rec: d}
}

// Record returns the committed departed-list record the departure was read
// from (nil for one built otherwise). Read-only: views share it.
func (d Departure) Record() *messages.DepartedMember { return d.rec }

// Departed returns the departure of a removed node, if it is in the departed list.
func (v *View) Departed(id string) (Departure, bool) {
	d, ok := v.departed[id]
	return d, ok
}

// Done is closed when a newer view replaces this one.
func (v *View) Done() <-chan struct{} { return v.done }

func nodeFromMember(m *messages.Member) Node {
	n := Node{
		ID:          m.GetId(),
		Name:        m.GetName(),
		IP:          m.GetAddress(),
		Services:    m.GetServices(),
		Incarnation: m.GetIncarnation(),
		Voter:       m.GetVoter(),
		Status:      StatusActive,
		Handoff:     m.GetHandoff(),
		Draining:    m.GetDraining(),
		Zone:        m.GetZone(),
		Weight:      int(weightOf(m)),
		Drained:     m.GetDrained(),
	}
	if m.GetStatus() == messages.NodeStatus_NODE_STATUS_SUSPECT {
		n.Status = StatusSuspect
	}
	if _, port, err := net.SplitHostPort(n.IP); err == nil {
		n.Port, _ = strconv.Atoi(port)
	}
	if t := m.GetJoinedAtUnixNano(); t != 0 {
		n.JoinedAt = time.Unix(0, t).UTC()
	}
	if t := m.GetLastSeenUnixNano(); t != 0 {
		n.LastSeen = time.Unix(0, t).UTC()
	}
	return n
}

// buildView derives the immutable view from the state. members must be sorted.
// departed is shared by every view built while the departed list stays the
// same (read-only).
func buildView(localID string, version uint64, cfg *messages.ClusterConfig, members []*messages.Member, table *messages.PartitionTable, departed map[string]Departure) *View {
	v := &View{
		departed: departed,
		version:  version,
		localID:  localID,
		config:   cfg,
		algo:     keyhash.Algorithm(cfg.GetKeyHash()),
		members:  make([]Node, len(members)),
		nonces:   make([]uint64, len(members)),
		index:    make(map[string]int, len(members)),
		done:     make(chan struct{}),
	}
	for i, m := range members {
		v.members[i] = nodeFromMember(m)
		v.nonces[i] = nonceOf(m)
		v.index[m.GetId()] = i
	}
	if table.GetVersion() != 0 {
		v.tableVersion = table.GetVersion()
		v.count = uint32(len(table.GetPartitions()))
		v.assignments = table.GetPartitions()
		v.span = table.GetSpan()
		v.table = table
	}
	v.health = computeHealth(v)
	return v
}

// buildTable builds the routing structures, with one backing array per
// kind for the whole table: a handful of allocations, not thousands.
func (v *View) buildTable(table *messages.PartitionTable) {
	r := &v.routeTable
	p := len(table.GetPartitions())
	ids := keyhash.IDs(uint32(p))
	r.parts = make([]Partition, p)
	r.owners = make([][]string, p)
	r.primary = make([]*Node, p)
	r.replicas = make([][]Node, p)
	r.all = make([][]Node, p)
	total := 0
	for _, a := range table.GetPartitions() {
		total += len(a.GetOwners())
	}
	ownerIDs := make([]string, 0, total)
	nodes := make([]Node, 0, total)
	states := make([]Owner, 0, total)
	h := xxhash.New()
	var buf [8]byte
	for n, a := range table.GetPartitions() {
		from, fromNodes := len(ownerIDs), len(nodes)
		for i, id := range a.GetOwners() {
			ownerIDs = append(ownerIDs, id)
			if mi, ok := v.index[id]; ok {
				nodes = append(nodes, v.members[mi])
			}
			state := OwnerReady
			if a.LoadEpoch(i) != 0 {
				state = OwnerSyncing
			}
			states = append(states, Owner{ID: id, State: state})
			_, _ = h.WriteString(id)
			_, _ = h.Write([]byte{0})
		}
		binary.LittleEndian.PutUint64(buf[:], a.GetEpoch())
		_, _ = h.Write(buf[:])
		for _, o := range states[from:] {
			if o.State == OwnerSyncing {
				_, _ = h.Write([]byte{1})
			}
		}
		owners := ownerIDs[from:len(ownerIDs):len(ownerIDs)]
		r.owners[n] = owners
		r.all[n] = nodes[fromNodes:len(nodes):len(nodes)]
		part := Partition{ID: ids[n], Epoch: a.GetEpoch(), num: uint32(n), ReplicaNodes: []string{},
			Owners: states[from:len(states):len(states)], Target: a.GetTarget()}
		if len(owners) > 0 {
			part.PrimaryNode = owners[0]
			part.ReplicaNodes = owners[1:]
		}
		if len(r.all[n]) > 0 && r.all[n][0].ID == part.PrimaryNode {
			r.primary[n] = &r.all[n][0]
			r.replicas[n] = r.all[n][1:]
		} else {
			r.replicas[n] = r.all[n]
		}
		r.parts[n] = part
	}
	r.checksum = h.Sum64()
}

// Departure returns the record of removed node id, if the view keeps one.
func (v *View) Departure(id string) (Departure, bool) {
	d, ok := v.departed[id]
	return d, ok
}

// Departures returns the departed list, sorted by node ID.
func (v *View) Departures() []Departure {
	out := make([]Departure, 0, len(v.departed))
	for _, d := range v.departed {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Departure) int { return strings.Compare(a.Node.ID, b.Node.ID) })
	return out
}

// RebalancePaused reports maintenance mode: no new copy is planned while it
// is on (PauseRebalancing).
func (v *View) RebalancePaused() bool { return v.paused }

// Holds reports whether node n takes partitions in placement: not drained
// and a weight above 0.
func (n *Node) Holds() bool { return n.PlacementWeight() > 0 }

// PlacementWeight is the weight placement plans node n with: 0 while an
// operator drains it, its Weight otherwise.
func (n *Node) PlacementWeight() int {
	if n.Drained {
		return 0
	}
	return n.Weight
}

// SlotsOf counts the partitions member id owns (as primary or replica).
func (v *View) SlotsOf(id string) int {
	k := 0
	for _, a := range v.assignments {
		if slices.Contains(a.GetOwners(), id) {
			k++
		}
	}
	return k
}
