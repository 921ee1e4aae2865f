package raftfsm

import (
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// Limits enforced on committed state.
const (
	MaxPartitions        = 65536
	MaxReplicationFactor = 16
	MaxVotersLimit       = 15
	maxNodeIDLength      = 128
	MaxServices          = 64
	// MaxZoneLen bounds a member's zone name.
	MaxZoneLen = 64
	// MaxWeight bounds a member's weight: enough for any mix of machine
	// sizes, small enough that placement's sums never overflow.
	MaxWeight          = 1000
	maxCustomDataKey   = 1024
	MaxCustomDataValue = 1 << 20
	// MaxDeparted bounds the departed list kept for rejoin detection: the
	// most recent removals, oldest dropped first. A record holds the member
	// and the partitions it held (about 2 KB of heap on every node), and a
	// cluster whose members come and go with new IDs must not grow with
	// them; 256 still covers the whole membership of a 200-member cluster
	// leaving and coming back.
	MaxDeparted = 256
)

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidateNodeID checks the node ID syntax: 1 to 128 characters of letters,
// digits, '.', '_' and '-', starting with a letter or digit.
func ValidateNodeID(id string) error {
	if id == "" {
		return errorf(ErrInvalidMember, "node ID is empty")
	}
	if len(id) > maxNodeIDLength {
		return errorf(ErrInvalidMember, "node ID is longer than %d characters", maxNodeIDLength)
	}
	if !nodeIDPattern.MatchString(id) {
		return errorf(ErrInvalidMember, "node ID %q may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit", id)
	}
	return nil
}

// ValidateAddress checks a dialable host:port.
func ValidateAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errorf(ErrInvalidMember, "address %q is not host:port: %v", addr, err)
	}
	if host == "" {
		return errorf(ErrInvalidMember, "address %q has no host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errorf(ErrInvalidMember, "address %q has an invalid port", addr)
	}
	return nil
}

// validateConfig checks a cluster configuration.
func validateConfig(c *messages.ClusterConfig) error {
	switch {
	case c == nil:
		return errorf(errInvalidConfig, "missing")
	case c.GetPartitionCount() < 1 || c.GetPartitionCount() > MaxPartitions:
		return errorf(errInvalidConfig, "partition count %d is outside [1, %d]", c.GetPartitionCount(), MaxPartitions)
	case c.GetReplicationFactor() < 1 || c.GetReplicationFactor() > MaxReplicationFactor:
		return errorf(errInvalidConfig, "replication factor %d is outside [1, %d]", c.GetReplicationFactor(), MaxReplicationFactor)
	case c.GetMaxVoters() < 1 || c.GetMaxVoters() > MaxVotersLimit:
		return errorf(errInvalidConfig, "max voters %d is outside [1, %d]", c.GetMaxVoters(), MaxVotersLimit)
	case c.GetKeyHash() != messages.KeyHash_KEY_HASH_MD5 && c.GetKeyHash() != messages.KeyHash_KEY_HASH_XXH64:
		return errorf(errInvalidConfig, "unknown key hash %d", c.GetKeyHash())
	case c.GetClusterId() != "" && !validClusterID(c.GetClusterId()):
		return errorf(errInvalidConfig, "cluster ID %q is not 32 lowercase hex digits", c.GetClusterId())
	}
	return nil
}

// validClusterID reports whether id has the form of a cluster ID: 32
// lowercase hex digits (128 random bits).
func validClusterID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ValidateMember checks a registration with the rules Apply enforces: ID,
// address and services. Admission runs it before touching Raft, so a
// registration Apply would refuse never changes the configuration.
func ValidateMember(m *messages.Member) error {
	if m == nil {
		return errorf(ErrInvalidMember, "missing")
	}
	if err := ValidateNodeID(m.GetId()); err != nil {
		return err
	}
	if err := ValidateAddress(m.GetAddress()); err != nil {
		return err
	}
	if len(m.GetZone()) > MaxZoneLen {
		return errorf(ErrInvalidMember, "zone longer than %d bytes", MaxZoneLen)
	}
	if m.Weight != nil && m.GetWeight() > MaxWeight {
		return errorf(ErrInvalidMember, "weight %d is above %d", m.GetWeight(), MaxWeight)
	}
	if len(m.GetServices()) > MaxServices {
		return errorf(ErrInvalidMember, "more than %d services", MaxServices)
	}
	for name, addr := range m.GetServices() {
		if name == "" || addr == "" || len(name) > 256 || len(addr) > 256 {
			return errorf(ErrInvalidMember, "service %q=%q: names and addresses must be 1 to 256 characters", name, addr)
		}
	}
	return nil
}

// apply dispatches one decoded command. It validates everything before it
// mutates anything, and replaces stored messages instead of mutating them
// (published views and snapshots share them). changed reports a change to
// config, members or table (a new view is needed).
func (f *FSM) apply(index uint64, cmd *messages.Command, a *Applied, res *ApplyResult) (changed bool, err error) {
	now := cmd.GetTimeUnixNano()
	switch op := cmd.GetOp().(type) {
	case *messages.Command_SetConfig:
		return f.applySetConfig(op.SetConfig.GetConfig())
	case *messages.Command_RegisterNode:
		return f.applyRegister(index, op.RegisterNode, now, a)
	case *messages.Command_SetNodeStatus:
		return f.applySetStatus(op.SetNodeStatus, now, a)
	case *messages.Command_RemoveNode:
		return f.applyRemove(index, op.RemoveNode, cmd.GetOrigin(), now, a)
	case *messages.Command_SetVoter:
		return f.applySetVoter(op.SetVoter, a)
	case *messages.Command_SetPartitionTable:
		return f.applyTable(index, op.SetPartitionTable, now, a)
	case *messages.Command_MarkReady:
		return f.applyMarkReady(index, op.MarkReady, a)
	case *messages.Command_DrainNode:
		return f.applyDrain(index, op.DrainNode, a)
	case *messages.Command_SetDrain:
		return f.applySetDrain(op.SetDrain, a)
	case *messages.Command_SetRebalancePaused:
		return f.applySetPaused(op.SetRebalancePaused.GetPaused(), a)
	case *messages.Command_SetCustomData:
		return false, f.applySetCustomData(index, op.SetCustomData.GetKey(), op.SetCustomData.GetValue(), false, 0, a, res)
	case *messages.Command_CompareAndSetCustomData:
		c := op.CompareAndSetCustomData
		return false, f.applySetCustomData(index, c.GetKey(), c.GetValue(), true, c.GetExpectedVersion(), a, res)
	case *messages.Command_DeleteCustomData:
		return false, f.applyDeleteCustomData(index, op.DeleteCustomData.GetKey(), a, res)
	case *messages.Command_Noop:
		return false, nil
	}
	return false, errorf(errMalformedCommand, "no operation")
}

func (f *FSM) applySetConfig(c *messages.ClusterConfig) (bool, error) {
	if err := validateConfig(c); err != nil {
		return false, err
	}
	if f.config != nil {
		if !proto.Equal(f.config, c) {
			return false, errorf(ErrConfigMismatch, "committed %v, proposed %v", f.config, c)
		}
		return false, nil
	}
	f.config = proto.Clone(c).(*messages.ClusterConfig)
	return true, nil
}

// partitionsOf lists the partitions id holds as primary and as replica.
func (f *FSM) partitionsOf(id string) (primary, replica []uint32) {
	for n, p := range f.table.GetPartitions() {
		for i, o := range p.GetOwners() {
			if o != id {
				continue
			}
			if i == 0 {
				primary = append(primary, uint32(n))
			} else {
				replica = append(replica, uint32(n))
			}
		}
	}
	return primary, replica
}

func (f *FSM) voterCount() int {
	n := 0
	for _, m := range f.members {
		if m.GetVoter() {
			n++
		}
	}
	return n
}

// nonceOf is the process identity of a registration. Entries written before
// nonces existed carried a process-chosen incarnation: it serves as the nonce.
func nonceOf(m *messages.Member) uint64 {
	if n := m.GetNonce(); n != 0 {
		return n
	}
	return m.GetIncarnation()
}

// applyRegister admits a member. The same nonce as the current member is an
// update of its life; a new nonce is a new life, whose incarnation is this
// entry's index: unique and increasing per node ID, whatever happened to the
// node's disk, and never reused even after the departed list forgot the ID.
func (f *FSM) applyRegister(index uint64, r *messages.RegisterNode, now int64, a *Applied) (bool, error) {
	if f.config == nil {
		return false, errNotBootstrapped
	}
	m := r.GetMember()
	if err := ValidateMember(m); err != nil {
		return false, err
	}
	id := m.GetId()
	next := proto.Clone(m).(*messages.Member)
	next.Nonce = nonceOf(m)
	next.Status = messages.NodeStatus_NODE_STATUS_ACTIVE
	next.LastSeenUnixNano = now

	if cur, ok := f.members[id]; ok {
		next.JoinedAtUnixNano = cur.GetJoinedAtUnixNano()
		if nonceOf(cur) == next.GetNonce() {
			// Same process re-registering (e.g. after a leader change): an update.
			next.Incarnation = cur.GetIncarnation()
			next.Voter = cur.GetVoter()
			next.Draining = cur.GetDraining()
			next.Drained = cur.GetDrained()
			next.LastSeenUnixNano = max(cur.GetLastSeenUnixNano(), now)
			f.members[id] = next
			return true, nil
		}
		// A new process without a removal: the node was a member all along.
		// It keeps its vote only if it resumed from its own Raft state; a
		// node that lost its disk lost its log and its votes with it.
		next.Incarnation = index
		next.Voter = cur.GetVoter() && r.GetResumed()
		next.Drained = cur.GetDrained() // an operator's drain outlives a restart
		lastSeen := max(cur.GetLastSeenUnixNano(), r.GetLastAliveUnixNano())
		primary, replica := f.partitionsOf(id)
		f.members[id] = next
		f.setRejoin(a, next, now, lastSeen, append(primary, replica...))
		return true, nil
	}
	next.Incarnation = index
	next.Drained = false // only SetDrain drains
	// Voters are earned (learner first): only the node that bootstraps the
	// cluster starts as one; the leader promotes the others on evidence.
	next.Voter = false
	if d, ok := f.departed[id]; ok {
		lastSeen := departedLastSeen(d, r.GetLastAliveUnixNano())
		next.JoinedAtUnixNano = now
		delete(f.departed, id)
		f.departuresChanged(nil, id)
		f.members[id] = next
		before := append(slices.Clone(d.GetPartitionsPrimary()), d.GetPartitionsReplica()...)
		f.setRejoin(a, next, now, lastSeen, before)
		return true, nil
	}
	next.JoinedAtUnixNano = now
	a.Change.IsBootstrap = len(f.members) == 0 && f.table.GetVersion() == 0 && len(f.departed) == 0
	next.Voter = a.Change.IsBootstrap
	f.members[id] = next
	n := nodeFromMember(next)
	a.Change.Joined = &n
	return true, nil
}

// departedLastSeen is when a removed node was last known alive. Failure
// detection removes a node a detection budget after it was last reached,
// and its suspicion committed that last sighting: that is when it went. A
// node removed any other way (a leave, an admin) was alive at its removal,
// unless its own record says it died before.
func departedLastSeen(d *messages.DepartedMember, lastAlive int64) int64 {
	left, seen := d.GetLeftAtUnixNano(), d.GetMember().GetLastSeenUnixNano()
	if d.GetReason() == LeaveHealthFailure && seen > 0 && seen < left {
		return seen
	}
	if lastAlive > 0 && lastAlive < left {
		return max(lastAlive, seen)
	}
	return left
}

func (f *FSM) setRejoin(a *Applied, m *messages.Member, now, lastSeen int64, before []uint32) {
	n := nodeFromMember(m)
	a.Change.Rejoined = &n
	if lastSeen > 0 {
		a.Change.LastSeen = time.Unix(0, lastSeen).UTC()
		if now > lastSeen {
			a.Change.OfflineDuration = time.Duration(now - lastSeen)
		}
	}
	slices.Sort(before)
	a.Change.PartitionsBefore = before
}

func (f *FSM) applySetStatus(s *messages.SetNodeStatus, now int64, a *Applied) (bool, error) {
	cur, ok := f.members[s.GetId()]
	if !ok {
		return false, errorf(ErrUnknownNode, "%q", s.GetId())
	}
	if s.GetIncarnation() != 0 && s.GetIncarnation() != cur.GetIncarnation() {
		return false, errorf(ErrIncarnationMismatch, "%q is at incarnation %d, not %d", s.GetId(), cur.GetIncarnation(), s.GetIncarnation())
	}
	if s.GetStatus() != messages.NodeStatus_NODE_STATUS_ACTIVE && s.GetStatus() != messages.NodeStatus_NODE_STATUS_SUSPECT {
		return false, errorf(ErrInvalidMember, "status %v", s.GetStatus())
	}
	if cur.GetStatus() == s.GetStatus() {
		return false, nil
	}
	next := proto.Clone(cur).(*messages.Member)
	next.Status = s.GetStatus()
	if s.GetStatus() == messages.NodeStatus_NODE_STATUS_ACTIVE {
		next.LastSeenUnixNano = max(next.GetLastSeenUnixNano(), now)
	} else if t := s.GetLastSeenUnixNano(); t > 0 && t <= now {
		// Suspicion records when the leader last reached the node, so the
		// NodeRejoin's OfflineDuration survives a change of leader.
		next.LastSeenUnixNano = max(next.GetLastSeenUnixNano(), t)
	}
	f.members[s.GetId()] = next
	n := nodeFromMember(next)
	a.Change.StatusChanged = &n
	return true, nil
}

func (f *FSM) applyRemove(index uint64, r *messages.RemoveNode, origin string, now int64, a *Applied) (bool, error) {
	cur, ok := f.members[r.GetId()]
	if !ok {
		return false, errorf(ErrUnknownNode, "%q", r.GetId())
	}
	if r.GetIncarnation() != 0 && r.GetIncarnation() != cur.GetIncarnation() {
		return false, errorf(ErrIncarnationMismatch, "%q is at incarnation %d, not %d", r.GetId(), cur.GetIncarnation(), r.GetIncarnation())
	}
	primary, replica := f.partitionsOf(r.GetId())
	// A voter's seat is not handed to a non-voter here: the leader promotes
	// one that has proven healthy (SetVoter), so a vote never goes to a node
	// that does not take the log.
	delete(f.members, r.GetId())
	f.departed[r.GetId()] = &messages.DepartedMember{
		Member:            cur,
		LeftAtUnixNano:    now,
		Reason:            r.GetReason(),
		PartitionsPrimary: primary,
		PartitionsReplica: replica,
		RemovedBy:         origin,
		Index:             index,
	}
	f.departuresChanged(f.departed[r.GetId()], f.trimDeparted()...)
	// Drop the node from every owner list at once (its first live replica
	// becomes primary), so the table never names a non-member; the rebalancer
	// refills the empty slots.
	if f.table.GetVersion() != 0 {
		if next := dropOwner(f.table.GetPartitions(), r.GetId(), f.canLead); next != nil {
			f.setTable(index, next, f.table.GetSpan(), a)
		}
	}
	n := nodeFromMember(cur)
	a.Change.Left = &n
	a.Change.LeaveReason = r.GetReason()
	a.Change.LeftPrimary, a.Change.LeftReplica = primary, replica
	return true, nil
}

// applySetVoter records a promotion or a demotion decided by the leader.
func (f *FSM) applySetVoter(s *messages.SetVoter, a *Applied) (bool, error) {
	cur, ok := f.members[s.GetId()]
	if !ok {
		return false, errorf(ErrUnknownNode, "%q", s.GetId())
	}
	if s.GetIncarnation() != 0 && s.GetIncarnation() != cur.GetIncarnation() {
		return false, errorf(ErrIncarnationMismatch, "%q is at incarnation %d, not %d", s.GetId(), cur.GetIncarnation(), s.GetIncarnation())
	}
	if cur.GetVoter() == s.GetVoter() {
		return false, nil
	}
	if !s.GetVoter() && f.voterCount() <= 1 {
		return false, errorf(ErrInvalidMember, "%q is the last voter", s.GetId())
	}
	if s.GetVoter() && f.voterCount() >= int(f.config.GetMaxVoters()) {
		return false, errorf(ErrInvalidMember, "already %d voters (MaxVoters)", f.voterCount())
	}
	next := proto.Clone(cur).(*messages.Member)
	next.Voter = s.GetVoter()
	f.members[s.GetId()] = next
	n := nodeFromMember(next)
	a.Change.VoterChanged = &n
	a.Change.VoterReason = s.GetReason()
	return true, nil
}

// dropOwner removes a departed node from every owner list and target. Its
// first ready replica whose node is active takes over as primary (then any
// ready one); when no ready owner is left, the remaining owners become ready
// as they are: there is nobody to copy from (the events say so). It returns
// the new partitions, nil when id is in none of them.
func dropOwner(parts []*messages.PartitionAssignment, id string, active func(string) bool) []*messages.PartitionAssignment {
	var next []*messages.PartitionAssignment
	for n, p := range parts {
		i := slices.Index(p.GetOwners(), id)
		inTarget := slices.Contains(p.GetTarget(), id)
		if i < 0 && !inTarget {
			continue
		}
		if next == nil {
			next = slices.Clone(parts)
		}
		q := proto.Clone(p).(*messages.PartitionAssignment)
		q.Target = slices.DeleteFunc(q.Target, func(o string) bool { return o == id })
		if i >= 0 {
			q.Owners = slices.Delete(q.Owners, i, i+1)
			if len(q.Syncing) > 0 {
				q.Syncing = slices.Delete(q.Syncing, i, i+1)
				q.SyncingSince = slices.Delete(q.SyncingSince, i, i+1)
			}
			q.Epoch++
			if !anyReady(q) {
				q.Syncing, q.SyncingSince = nil, nil
			}
			if len(q.Owners) > 0 && (q.LoadEpoch(0) != 0 || !active(q.Owners[0])) {
				lead := -1
				for j := range q.Owners {
					if q.LoadEpoch(j) == 0 && (lead < 0 || (active(q.Owners[j]) && !active(q.Owners[lead]))) {
						lead = j
					}
				}
				if lead > 0 {
					moveToFront(q, lead)
				}
			}
		}
		normalizeLoads(q)
		if len(q.Target) == 0 || settled(q.Owners, q.Syncing, q.Target) {
			q.Target = nil
		}
		next[n] = q
	}
	return next
}

// moveToFront makes owner i the primary, keeping the others in order.
func moveToFront(q *messages.PartitionAssignment, i int) {
	id := q.Owners[i]
	q.Owners = append([]string{id}, slices.Delete(q.Owners, i, i+1)...)
	if len(q.Syncing) > 0 {
		s, t := q.Syncing[i], q.SyncingSince[i]
		q.Syncing = append([]uint64{s}, slices.Delete(q.Syncing, i, i+1)...)
		q.SyncingSince = append([]int64{t}, slices.Delete(q.SyncingSince, i, i+1)...)
	}
}

// departuresChanged updates the views' converted departed list for add (nil:
// none) and the removed IDs. Views share the old map, so the change goes
// into a copy: a member leaving converts one record, not the whole list.
func (f *FSM) departuresChanged(add *messages.DepartedMember, removed ...string) {
	if f.departures == nil {
		return // the next view converts the whole list
	}
	next := maps.Clone(f.departures)
	for _, id := range removed {
		delete(next, id)
	}
	if add != nil {
		next[add.GetMember().GetId()] = DepartureOf(add)
	}
	f.departures = next
}

// trimDeparted drops the oldest departures beyond MaxDeparted and returns
// their IDs.
func (f *FSM) trimDeparted() (removed []string) {
	for len(f.departed) > MaxDeparted {
		var oldest *messages.DepartedMember
		for _, d := range f.departed {
			if oldest == nil || d.GetLeftAtUnixNano() < oldest.GetLeftAtUnixNano() ||
				(d.GetLeftAtUnixNano() == oldest.GetLeftAtUnixNano() && d.GetMember().GetId() < oldest.GetMember().GetId()) {
				oldest = d
			}
		}
		delete(f.departed, oldest.GetMember().GetId())
		removed = append(removed, oldest.GetMember().GetId())
	}
	return removed
}

func (f *FSM) applyTable(index uint64, s *messages.SetPartitionTable, now int64, a *Applied) (bool, error) {
	if f.config == nil {
		return false, errNotBootstrapped
	}
	if s.GetExpectedVersion() != f.table.GetVersion() {
		return false, errorf(ErrStaleTable, "expected version %d, committed %d", s.GetExpectedVersion(), f.table.GetVersion())
	}
	if len(s.GetPartitions()) != int(f.config.GetPartitionCount()) {
		return false, errorf(errInvalidTable, "%d partitions, want %d", len(s.GetPartitions()), f.config.GetPartitionCount())
	}
	isMember := func(id string) bool { _, ok := f.members[id]; return ok }
	info := s.GetRebalance()
	if info == nil {
		info = &messages.RebalanceInfo{}
	}
	reload := info.GetReload()
	forced := refSet(info.GetForced())
	rf := int(f.config.GetReplicationFactor())
	old := f.table.GetPartitions()
	next := make([]*messages.PartitionAssignment, len(s.GetPartitions()))
	for n, p := range s.GetPartitions() {
		var prev *messages.PartitionAssignment
		if n < len(old) {
			prev = old[n]
		}
		// A partition may stay without owners (a removal left it so, and the
		// next plan fills it), but a table may not empty one.
		if len(p.GetOwners()) == 0 && len(prev.GetOwners()) > 0 {
			return false, errorf(errInvalidTable, "partition %d has no owner", n)
		}
		q, err := buildAssignment(n, prev, p, reload, forced[uint32(n)], rf, isMember, now)
		if err != nil {
			return false, err
		}
		next[n] = q
	}
	span := f.table.GetSpan()
	if info.GetPlan() {
		if span == nil {
			span = &messages.RebalanceSpan{Trigger: info.GetTrigger(), TriggerNodeId: info.GetTriggerNodeId(),
				StartedAtUnixNano: info.GetStartedAtUnixNano(), StartIndex: index}
			a.Change.SpanOpened = true
		} else {
			span = proto.Clone(span).(*messages.RebalanceSpan)
		}
		span.MovesPlanned += info.GetMovesPlanned()
		moving := 0
		for n, p := range next {
			var before []string
			if n < len(old) {
				before = old[n].GetOwners()
			}
			goal := p.GetTarget()
			if len(goal) == 0 {
				goal = p.GetOwners()
			}
			diff := symmetricDiff(before, goal)
			if len(diff) > 0 || len(p.GetTarget()) > 0 {
				moving++
			}
			for _, id := range diff {
				if !slices.Contains(span.NodesAffected, id) {
					span.NodesAffected = append(span.NodesAffected, id)
				}
			}
		}
		span.PartitionsToMove = max(span.PartitionsToMove, uint32(moving))
		slices.Sort(span.NodesAffected)
	}
	f.setTable(index, next, span, a)
	a.Change.Rebalance = info
	return true, nil
}

func validateKey(key string) error {
	if key == "" {
		return errorf(ErrInvalidKey, "key is empty")
	}
	if len(key) > maxCustomDataKey {
		return errorf(ErrInvalidKey, "key is longer than %d bytes", maxCustomDataKey)
	}
	if !utf8.ValidString(key) {
		return errorf(ErrInvalidKey, "key is not valid UTF-8")
	}
	return nil
}

// ValidateCustomData checks a key and value before they are proposed, with
// the same rules Apply enforces.
func ValidateCustomData(key string, value []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if len(value) > MaxCustomDataValue {
		return errorf(ErrValueTooLarge, "%d bytes, the limit is %d", len(value), MaxCustomDataValue)
	}
	return nil
}

func (f *FSM) applySetCustomData(index uint64, key string, value []byte, cas bool, expected uint64, a *Applied, res *ApplyResult) error {
	if err := ValidateCustomData(key, value); err != nil {
		return err
	}
	f.cdMu.Lock()
	defer f.cdMu.Unlock()
	if cas {
		if cur := f.cd[key].GetVersion(); cur != expected {
			return errorf(ErrVersionMismatch, "key %q is at version %d, expected %d", key, cur, expected)
		}
	}
	f.cd[key] = &messages.CustomDataEntry{Key: key, Value: value, Version: index}
	res.Version = index
	a.Change.CustomData = &customDataChange{Key: key, Value: value, Version: index}
	return nil
}

func (f *FSM) applyDeleteCustomData(index uint64, key string, a *Applied, res *ApplyResult) error {
	if err := validateKey(key); err != nil {
		return err
	}
	f.cdMu.Lock()
	defer f.cdMu.Unlock()
	if _, ok := f.cd[key]; !ok {
		return errorf(ErrKeyNotFound, "%q", key)
	}
	delete(f.cd, key)
	res.Version = index
	a.Change.CustomData = &customDataChange{Key: key, Version: index, Deleted: true}
	return nil
}

// symmetricDiff lists the IDs in exactly one of a and b.
func symmetricDiff(a, b []string) []string {
	var out []string
	for _, id := range a {
		if !slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	for _, id := range b {
		if !slices.Contains(a, id) {
			out = append(out, id)
		}
	}
	return out
}
