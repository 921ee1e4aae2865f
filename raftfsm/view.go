package raftfsm

import (
	"encoding/binary"
	"net"
	"slices"
	"strconv"
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
}

// Partition is one partition of the routing view. Views share Partition
// values between readers: treat them as read-only.
type Partition struct {
	ID           string   `json:"id"`
	PrimaryNode  string   `json:"primary_node"`
	ReplicaNodes []string `json:"replica_nodes"`
	// Epoch increases whenever the owner list changes; use it to fence writes.
	Epoch uint64 `json:"epoch"`
	num   uint32
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
	parts        []Partition
	owners       [][]string
	primary      []*Node
	replicas     [][]Node
	all          [][]Node
	roles        []Role
	health       Health
	checksum     uint64
	departed     map[string]Departure
	done         chan struct{}
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
func (v *View) PartitionCount() int { return len(v.parts) }

// Partitions returns all partitions in order. Read-only.
func (v *View) Partitions() []Partition { return v.parts }

// Partition returns partition n, or nil when out of range.
func (v *View) Partition(n int) *Partition {
	if uint(n) >= uint(len(v.parts)) {
		return nil
	}
	return &v.parts[n]
}

// PartitionOf maps key to its partition; nil before the first table. It does
// not allocate.
func (v *View) PartitionOf(key string) *Partition {
	if len(v.parts) == 0 {
		return nil
	}
	return &v.parts[keyhash.Partition(v.algo, key, v.count)]
}

// Owners returns the owner IDs of partition n (primary first). Read-only.
func (v *View) Owners(n int) []string {
	if uint(n) >= uint(len(v.owners)) {
		return nil
	}
	return v.owners[n]
}

// OwnerTable returns every partition's owner IDs. Read-only.
func (v *View) OwnerTable() [][]string { return v.owners }

// Primary returns the primary of partition n, or nil.
func (v *View) Primary(n int) *Node {
	if uint(n) >= uint(len(v.primary)) {
		return nil
	}
	return v.primary[n]
}

// Replicas returns the replicas of partition n. Read-only.
func (v *View) Replicas(n int) []Node {
	if uint(n) >= uint(len(v.replicas)) {
		return nil
	}
	return v.replicas[n]
}

// Nodes returns primary and replicas of partition n. Read-only.
func (v *View) Nodes(n int) []Node {
	if uint(n) >= uint(len(v.all)) {
		return nil
	}
	return v.all[n]
}

// Role returns the local node's role for partition n.
func (v *View) Role(n int) Role {
	if uint(n) >= uint(len(v.roles)) {
		return RoleNone
	}
	return v.roles[n]
}

// Health returns the committed cluster health.
func (v *View) Health() Health { return v.health }

// Checksum identifies the table (owners and epochs); equal on every node that
// applied the same table.
func (v *View) Checksum() uint64 { return v.checksum }

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
func buildView(localID string, version uint64, cfg *messages.ClusterConfig, members []*messages.Member, table *messages.PartitionTable, departed map[string]*messages.DepartedMember) *View {
	v := &View{
		departed: make(map[string]Departure, len(departed)),
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
	for id, d := range departed {
		v.departed[id] = DepartureOf(d)
	}
	if table.GetVersion() != 0 {
		v.buildTable(table)
	}
	v.health = computeHealth(v)
	return v
}

func (v *View) buildTable(table *messages.PartitionTable) {
	p := len(table.GetPartitions())
	v.tableVersion = table.GetVersion()
	v.count = uint32(p)
	ids := keyhash.IDs(uint32(p))
	v.parts = make([]Partition, p)
	v.owners = make([][]string, p)
	v.primary = make([]*Node, p)
	v.replicas = make([][]Node, p)
	v.all = make([][]Node, p)
	v.roles = make([]Role, p)
	h := xxhash.New()
	var buf [8]byte
	for n, a := range table.GetPartitions() {
		owners := slices.Clip(slices.Clone(a.GetOwners()))
		nodes := make([]Node, 0, len(owners))
		for i, id := range owners {
			if mi, ok := v.index[id]; ok {
				nodes = append(nodes, v.members[mi])
			}
			if id == v.localID {
				if i == 0 {
					v.roles[n] = RolePrimary
				} else {
					v.roles[n] = RoleReplica
				}
			}
			_, _ = h.WriteString(id)
			_, _ = h.Write([]byte{0})
		}
		binary.LittleEndian.PutUint64(buf[:], a.GetEpoch())
		_, _ = h.Write(buf[:])
		v.owners[n] = owners
		v.all[n] = slices.Clip(nodes)
		part := Partition{ID: ids[n], Epoch: a.GetEpoch(), num: uint32(n), ReplicaNodes: []string{}}
		if len(owners) > 0 {
			part.PrimaryNode = owners[0]
			part.ReplicaNodes = owners[1:]
		}
		if len(nodes) > 0 && nodes[0].ID == part.PrimaryNode {
			v.primary[n] = &v.all[n][0]
			v.replicas[n] = v.all[n][1:]
		} else {
			v.replicas[n] = v.all[n]
		}
		v.parts[n] = part
	}
	v.checksum = h.Sum64()
}
