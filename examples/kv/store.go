package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/messages"
)

// entry is a key's last write. A delete is kept as a tombstone so that a
// copy or a late replica message cannot bring an older value back.
type entry struct {
	Value   []byte `json:"value,omitempty"`
	Version uint64 `json:"version"`
	Deleted bool   `json:"deleted,omitempty"`
	lsn     uint64 // local order of arrival (see store.bootLSN)
}

// partitionData is one partition on this node.
type partitionData struct {
	data   map[string]entry
	loaded bool   // holds every write acknowledged before its load began
	failed bool   // no source could be copied from: not loaded, not ready
	gen    uint64 // identifies the load in progress: late copy results of an older one are ignored
	epoch  uint64 // epoch of the PartitionChange that started the load
	ahead  uint64 // highest epoch a primary sent writes with (it may know a table this node has not applied yet)
	fence  uint64 // async: a new primary waits for its predecessor's queue (fence.go); 0: none
	// role is this node's role as its last PartitionChange said; under
	// async a primary serves once it was told (fence.go), and unknownSince
	// is when the table first named it primary before that.
	role         string
	unknownSince time.Time
	// ackTo is where the acknowledgement of the load in progress goes (the
	// sender of its PartitionChange); nil when the owner is ready already.
	ackTo *actor.PID
	// releasedAt: when the table stopped giving this partition to this
	// node. It is kept for handoffGrace, to serve the nodes copying it.
	releasedAt time.Time
}

// Messages to the store actor. Only the actor touches the data.
type (
	getRequest struct {
		key         string
		primaryOnly bool // async replication with server routing: replicas may lag
	}
	getReply struct {
		entry entry
		found bool
		part  string
		role  string
		err   *apiError
	}
	writeRequest struct {
		key     string
		value   []byte
		deleted bool
	}
	writeReply struct {
		part     string
		version  uint64
		epoch    uint64
		replicas []string
		err      *apiError
	}
	// replicateRequest is also the JSON body of POST /internal/replicate.
	replicateRequest struct {
		Partition string    `json:"partition"`
		Epoch     uint64    `json:"epoch"`
		Key       string    `json:"key"`
		Entry     entry     `json:"entry"`
		queued    time.Time // async: when the primary queued it
	}
	// replicateBatch: an async primary's writes, applied in order.
	replicateBatch      struct{ entries []*replicateRequest }
	replicateBatchReply struct{ errs []*apiError }
	// snapshotRequest: the HTTP handler already waited for the loader's
	// epoch (see handleSnapshot), so the actor needs only the partition.
	snapshotRequest struct{ part string }
	snapshotReply   struct {
		entries map[string]entry
		err     *apiError
	}
	replicateReply struct{ err *apiError }
	statusRequest  struct{}
	releaseCheck   struct{}
	copyResult     struct {
		part    string
		gen     uint64
		source  string
		entries map[string]entry
		err     error
	}
)

// Status is the body of GET /ready on the kv API.
type Status struct {
	Node    string   `json:"node"`
	Ready   bool     `json:"ready"`
	Member  bool     `json:"member"`
	Held    int      `json:"held"`    // partitions this node owns in the current table
	Loaded  int      `json:"loaded"`  // of those, how many are loaded
	Loading []string `json:"loading"` // held and not loaded yet
	Failed  []string `json:"failed"`  // held, and no source could be copied from
	Keys    int      `json:"keys"`    // live keys in held partitions
	Stored  int      `json:"stored"`  // partitions in memory: held, kept for hand-off, or written to by a primary with a newer table
	// Replication is the node's mode (sync or async); under async, Pending
	// is what this node acknowledged and has not delivered to its replicas
	// yet (a write queued for two replicas counts twice), PendingAge the
	// age of the oldest: what a crash of this node would lose.
	Replication Replication `json:"replication"`
	Pending     int         `json:"replication_pending"`
	PendingAge  string      `json:"replication_pending_age,omitempty"`
}

// store is the actor that owns this node's data.
type store struct {
	ck     *clusterkit.ClusterKit
	self   string
	log    *slog.Logger
	client *http.Client
	ctx    context.Context // ends when the node stops: copies give up

	parts map[string]*partitionData
	clock uint64 // last version issued or seen (a hybrid logical clock)
	gen   uint64
	lsn   uint64
	// bootLSN: entries with lsn <= bootLSN predate this incarnation. Memory
	// starts empty, so it is 0; a store that persists its data would set
	// it to its last LSN when it opens, and NodeRejoin would drop those.
	bootLSN  uint64
	wasReady bool

	handoffGrace   time.Duration
	checkScheduled bool // a releaseCheck is on its way

	// repl queues the writes of an async primary (nil under sync replication).
	repl *replicator
	// skew shifts this node's wall clock, for the tests of clock skew.
	skew time.Duration
}

func newStore(ctx context.Context, ck *clusterkit.ClusterKit, log *slog.Logger, client *http.Client, handoffGrace time.Duration, repl *replicator) *store {
	return &store{ck: ck, self: ck.GetMyNodeID(), log: log, client: client, ctx: ctx, parts: map[string]*partitionData{}, handoffGrace: handoffGrace, repl: repl}
}

// Receive implements actor.Actor.
func (s *store) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.PartitionChange:
		s.partitionChange(ctx, m)
	case *messages.NodeRejoin:
		if m.GetNode().GetId() == s.self {
			s.rejoined(m)
		}
	case *messages.NodeLeave:
		s.nodeLeft(m)
	case *messages.RebalanceComplete:
		s.release(ctx)
	case *releaseCheck:
		s.release(ctx)
	case *copyResult:
		s.copied(ctx, m)
	case *getRequest:
		ctx.Respond(s.get(m))
	case *writeRequest:
		ctx.Respond(s.write(m))
	case *replicateRequest:
		ctx.Respond(&replicateReply{err: s.replicate(m, false)})
	case *replicateBatch:
		errs := make([]*apiError, len(m.entries))
		for i, e := range m.entries {
			errs[i] = s.replicate(e, true)
		}
		ctx.Respond(&replicateBatchReply{errs: errs})
	case *snapshotRequest:
		ctx.Respond(s.snapshot(m))
	case *statusRequest:
		st := s.status(true)
		ctx.Respond(&st)
	case *deliverBarrier:
		ctx.Respond(m)
	case *fenceLifted:
		s.lift(m)
	}
}

// partitionChange: this node must load a partition (action load), or let
// go of one (release). A load keeps what the partition already has (writes
// replicated to it meanwhile): copies merge by version. The owner is
// "syncing" until the copy is done and acknowledged with PartitionReady:
// until then it may not become primary, and it serves no client.
func (s *store) partitionChange(ctx actor.Context, e *messages.PartitionChange) {
	id := e.GetPartitionId()
	switch e.GetAction() {
	case clusterkit.PartitionLoad, "":
	case clusterkit.PartitionRelease:
		// The hand-off is over: every new owner is ready and the flip that
		// replaced this node (if it was primary) is committed. Nobody copies
		// from a released owner, so the data goes at once.
		if d := s.parts[id]; d != nil && !s.holds(id) && d.ahead <= e.GetEpoch() {
			delete(s.parts, id)
			s.log.Debug("partition released: dropped", "partition", id, "epoch", e.GetEpoch())
		}
		return
	case clusterkit.PartitionBecomePrimary, clusterkit.PartitionBecomeReplica:
		// A role change keeps the data.
		if d := s.parts[id]; d != nil {
			d.role, d.unknownSince = e.GetRole(), time.Time{}
		}
		s.fenceIfPromoted(ctx, e)
		return
	default:
		return
	}
	p := s.parts[id]
	if p == nil {
		p = &partitionData{data: map[string]entry{}}
		s.parts[id] = p
	}
	s.gen++
	p.gen, p.epoch, p.loaded, p.failed, p.releasedAt, p.ackTo = s.gen, e.GetEpoch(), false, false, time.Time{}, nil
	p.role, p.unknownSince = e.GetRole(), time.Time{}
	if e.GetState() == clusterkit.OwnerSyncing {
		p.ackTo = ctx.Sender()
	}
	switch {
	case e.GetInitial():
		// A brand new cluster: there is no data anywhere yet.
		s.loadedAt(ctx, id, p)
		s.log.Debug("partition assigned", "partition", id, "role", e.GetRole())
	case e.GetNoLiveSource():
		s.loadedAt(ctx, id, p)
		s.log.Warn("no live source for partition: starting it empty (any data it had is lost)",
			"partition", id, "reason", e.GetChangeReason(), "epoch", e.GetEpoch())
	default:
		var sources []source
		for _, n := range e.GetCopyFromNodes() {
			sources = append(sources, source{id: n.GetId(), kv: serviceAddr(n.GetServices()["kv"], n.GetAddress())})
		}
		s.log.Debug("loading partition", "partition", id, "role", e.GetRole(), "reason", e.GetChangeReason(), "from", sources)
		go s.copyPartition(ctx.ActorSystem(), ctx.Self(), id, p.gen, p.epoch, sources)
	}
	// Without the hand-off a new owner may be primary while it loads.
	s.fenceIfPromoted(ctx, e)
	s.logReadiness()
}

// loadedAt marks p loaded and acknowledges its load: the owner becomes
// ready (and may become primary) once the acknowledgement is committed.
func (s *store) loadedAt(ctx actor.Context, id string, p *partitionData) {
	p.loaded = true
	if p.ackTo != nil {
		ctx.Send(p.ackTo, &messages.PartitionReady{PartitionId: id, Epoch: p.epoch})
		p.ackTo = nil
	}
}

// rejoined: this node restarted and the cluster knows it again. What it held
// before the restart may be stale: it is dropped, and every partition waits
// for the PartitionChange (reload) that follows.
func (s *store) rejoined(e *messages.NodeRejoin) {
	dropped := 0
	for _, p := range s.parts {
		for k, en := range p.data {
			if en.lsn <= s.bootLSN {
				delete(p.data, k)
				dropped++
			}
		}
		s.gen++
		p.gen, p.loaded, p.failed, p.ackTo = s.gen, false, false, nil
	}
	s.log.Info("this node rejoined: its partitions are reloaded from live owners",
		"offline", time.Duration(e.GetOfflineDurationNanos()).Round(time.Millisecond),
		"partitions_before", len(e.GetPartitionsBeforeLeave()), "stale_keys_dropped", dropped)
}

func (s *store) nodeLeft(e *messages.NodeLeave) {
	if e.GetNode().GetId() != s.self {
		s.log.Info("node left", "left", e.GetNode().GetId(), "reason", e.GetReason(),
			"was_primary_of", len(e.GetPartitionsOwned()), "was_replica_of", len(e.GetPartitionsReplica()))
		return
	}
	// Removed: replication no longer reaches this node, so its data goes
	// stale. Drop it; a restart rejoins and reloads.
	s.log.Warn("this node was removed from the cluster: dropping its data (restart it to rejoin)", "reason", e.GetReason())
	clear(s.parts)
}

// release handles the partitions the current table no longer gives this
// node: they stop serving clients at once (reads and writes check the
// table), are kept for handoffGrace so that the nodes that gained them can
// copy them, then dropped. A check is scheduled while any is kept.
func (s *store) release(ctx actor.Context) {
	if _, ok := ctx.Message().(*releaseCheck); ok {
		s.checkScheduled = false
	}
	held := s.held()
	parts := s.ck.GetCluster().PartitionMap.Partitions
	now, pending := time.Now(), false
	for id, d := range s.parts {
		// A partition written to by a primary with a newer table is about
		// to be given to this node: keep what it received.
		if held[id] || (parts[id] != nil && d.ahead > parts[id].Epoch) {
			d.releasedAt = time.Time{}
			continue
		}
		switch {
		case d.releasedAt.IsZero():
			d.releasedAt = now
			pending = true
		case now.Sub(d.releasedAt) >= s.handoffGrace:
			delete(s.parts, id)
			s.log.Debug("partition dropped: no longer held", "partition", id)
		default:
			pending = true
		}
	}
	if pending && !s.checkScheduled {
		s.checkScheduled = true
		system, self := ctx.ActorSystem(), ctx.Self()
		time.AfterFunc(s.handoffGrace/4, func() {
			if s.ctx.Err() == nil {
				system.Root.Send(self, &releaseCheck{})
			}
		})
	}
	s.logReadiness()
}

func (s *store) copied(ctx actor.Context, r *copyResult) {
	p := s.parts[r.part]
	if p == nil || p.gen != r.gen {
		return // dropped or reloaded since: this result is stale
	}
	if r.err != nil {
		p.failed = true
		s.log.Error("cannot load partition: no source answered; it stays unloaded", "partition", r.part, "error", r.err)
		return
	}
	for k, en := range r.entries {
		s.merge(p, k, en)
	}
	s.loadedAt(ctx, r.part, p)
	s.log.Debug("partition loaded", "partition", r.part, "from", r.source, "keys", len(r.entries))
	s.logReadiness()
}

// logReadiness logs each transition of the readiness.
func (s *store) logReadiness() {
	st := s.status(false)
	if st.Ready != s.wasReady {
		s.wasReady = st.Ready
		if st.Ready {
			s.log.Info("all held partitions loaded", "held", st.Held)
		} else {
			s.log.Info("loading partitions", "held", st.Held, "loaded", st.Loaded)
		}
	}
}

// merge keeps the newer of the stored entry and en.
func (s *store) merge(p *partitionData, key string, en entry) {
	s.clock = max(s.clock, en.Version)
	if cur, ok := p.data[key]; ok && cur.Version >= en.Version {
		return
	}
	s.lsn++
	en.lsn = s.lsn
	p.data[key] = en
}

// nextVersion: above every version this node issued or saw, and close to
// the wall clock, so that a new primary's writes supersede its
// predecessor's even though the two never talked.
func (s *store) nextVersion() uint64 {
	s.clock = max(s.clock+1, uint64(time.Now().Add(s.skew).UnixNano()))
	return s.clock
}

// notOwner describes who owns part instead.
func (s *store) notOwner(p *clusterkit.Partition, what string) *apiError {
	e := &apiError{Status: http.StatusMisdirectedRequest, Code: "not_owner", Partition: p.ID, Epoch: p.Epoch,
		Message: fmt.Sprintf("%s is not %s of %s", s.self, what, p.ID), Primary: p.PrimaryNode}
	if p.PrimaryNode != "" {
		e.PrimaryKV = s.ck.ServiceAddresses("kv")[p.PrimaryNode]
	}
	return e
}

func (s *store) get(m *getRequest) *getReply {
	p, err := s.ck.GetPartition(m.key)
	if err != nil {
		return &getReply{err: errNotReady(err)}
	}
	role := "replica"
	switch {
	case p.PrimaryNode == s.self:
		role = "primary"
	case m.primaryOnly:
		return &getReply{err: s.notOwner(p, "the primary")}
	case !slices.Contains(p.ReplicaNodes, s.self):
		return &getReply{err: s.notOwner(p, "an owner")}
	}
	d := s.parts[p.ID]
	if d == nil || !d.loaded {
		return &getReply{err: errLoading(p.ID)}
	}
	if d.fence != 0 && role == "primary" {
		return &getReply{err: s.errFenced(p.ID)}
	}
	en, ok := d.data[m.key]
	return &getReply{entry: en, found: ok && !en.Deleted, part: p.ID, role: role}
}

// write applies a client write on the primary and says where to replicate
// it. The table is read here, in the actor, so that a snapshot taken later
// (after the table that added a replica) and this write are ordered.
func (s *store) write(m *writeRequest) *writeReply {
	p, err := s.ck.GetPartition(m.key)
	if err != nil {
		return &writeReply{err: errNotReady(err)}
	}
	if p.PrimaryNode != s.self {
		return &writeReply{err: s.notOwner(p, "the primary")}
	}
	d := s.parts[p.ID]
	if d == nil || !d.loaded {
		return &writeReply{err: errLoading(p.ID)}
	}
	if s.repl != nil && !s.toldPrimary(p.ID, d) {
		return &writeReply{err: s.errFenced(p.ID)}
	}
	en := entry{Value: m.value, Version: s.nextVersion(), Deleted: m.deleted}
	replicas := slices.Clone(p.ReplicaNodes)
	if s.repl != nil && len(replicas) > 0 {
		// Queued before it is applied: a full queue refuses the write
		// whole, and the queues keep the order of the versions.
		msg := &replicateRequest{Partition: p.ID, Epoch: p.Epoch, Key: m.key, Entry: en, queued: time.Now()}
		if full := s.repl.offer(msg, replicas); full != "" {
			return &writeReply{err: &apiError{Status: http.StatusServiceUnavailable, Code: "busy", Partition: p.ID,
				Message: fmt.Sprintf("the replication queue to %s is full (%d writes): nothing was written, retry", full, s.repl.limit)}}
		}
	}
	s.merge(d, m.key, en)
	return &writeReply{part: p.ID, version: en.Version, epoch: p.Epoch, replicas: replicas}
}

// replicate applies a write sent by the primary. Under sync replication a
// primary whose table is older than this node's is refused (stale_epoch):
// it may not know an owner that is copying the partition right now, which
// would miss the write, so the client must retry. An async write (queued)
// is acknowledged already: any owner keeps it, whatever the epoch it was
// sent with, since merging by version is safe; a node that no longer owns
// the partition refuses it (the partition's new owners copied it from the
// primary, which had it).
func (s *store) replicate(m *replicateRequest, queued bool) *apiError {
	p, err := s.ck.GetPartition(m.Key)
	if err != nil {
		return errNotReady(err)
	}
	owner := p.PrimaryNode == s.self || slices.Contains(p.ReplicaNodes, s.self)
	switch {
	case p.ID != m.Partition:
		return &apiError{Status: http.StatusBadRequest, Code: "wrong_partition",
			Message: fmt.Sprintf("key %q is in %s here, not %s: the nodes disagree on the key hash", m.Key, p.ID, m.Partition)}
	case queued && p.Epoch >= m.Epoch && !owner:
		return s.notOwner(p, "an owner")
	case queued && p.Epoch >= m.Epoch:
	case p.Epoch > m.Epoch:
		return &apiError{Status: http.StatusConflict, Code: "stale_epoch", Partition: p.ID, Epoch: p.Epoch,
			Message: fmt.Sprintf("%s is at epoch %d, the primary sent epoch %d", p.ID, p.Epoch, m.Epoch)}
	case p.Epoch == m.Epoch && !slices.Contains(p.ReplicaNodes, s.self):
		return s.notOwner(p, "a replica")
	}
	// p.Epoch < m.Epoch: this node has not applied the primary's table yet
	// (in which it owns the partition); keep the write, the load merges.
	d := s.parts[p.ID]
	if d == nil {
		d = &partitionData{data: map[string]entry{}}
		s.parts[p.ID] = d
	}
	d.ahead = max(d.ahead, m.Epoch)
	s.merge(d, m.Key, m.Entry)
	return nil
}

// snapshot copies a loaded partition for a node that is loading it. The
// HTTP handler waited until this node's table reached the requested epoch.
func (s *store) snapshot(m *snapshotRequest) *snapshotReply {
	d := s.parts[m.part]
	switch {
	case d == nil:
		return &snapshotReply{err: &apiError{Status: http.StatusNotFound, Code: "not_held", Partition: m.part,
			Message: fmt.Sprintf("%s does not hold %s", s.self, m.part)}}
	case !d.loaded:
		return &snapshotReply{err: errLoading(m.part)}
	}
	return &snapshotReply{entries: maps.Clone(d.data)}
}

// holds reports whether this node owns partition id in the current table
// (one lookup, not a scan of the table).
func (s *store) holds(id string) bool {
	pm := s.ck.GetCluster().PartitionMap
	if pm == nil {
		return false
	}
	p, ok := pm.Partitions[id]
	return ok && (p.PrimaryNode == s.self || slices.Contains(p.ReplicaNodes, s.self))
}

// held is the set of partitions this node owns in the current table.
func (s *store) held() map[string]bool {
	held := map[string]bool{}
	c := s.ck.GetCluster()
	if c.PartitionMap == nil {
		return held
	}
	for id, p := range c.PartitionMap.Partitions {
		if p.PrimaryNode == s.self || slices.Contains(p.ReplicaNodes, s.self) {
			held[id] = true
		}
	}
	return held
}

// status: ready once this node is a member, holds what the table gives it
// and has loaded all of it. A member that holds nothing while the table has
// a slot for every member is still waiting for its first assignment.
// Counting the keys reads every entry: only GET /ready asks for it.
func (s *store) status(countKeys bool) Status {
	st := Status{Node: s.self, Loading: []string{}, Failed: []string{}, Replication: ReplicationSync}
	if s.repl != nil {
		st.Replication = ReplicationAsync
		var age time.Duration
		st.Pending, age = s.repl.pending()
		if st.Pending > 0 {
			st.PendingAge = age.Round(time.Millisecond).String()
		}
	}
	c := s.ck.GetCluster()
	for _, n := range c.Nodes {
		st.Member = st.Member || n.ID == s.self
	}
	held := s.held()
	st.Held, st.Stored = len(held), len(s.parts)
	for _, id := range sortedKeys(held) {
		d := s.parts[id]
		switch {
		case d != nil && d.loaded:
			st.Loaded++
			if countKeys {
				for _, en := range d.data {
					if !en.Deleted {
						st.Keys++
					}
				}
			}
		case d != nil && d.failed:
			st.Failed = append(st.Failed, id)
		default:
			st.Loading = append(st.Loading, id)
		}
	}
	slots := 0
	if c.Config != nil {
		slots = c.Config.PartitionCount * min(c.Config.ReplicationFactor, len(c.Nodes))
	}
	waiting := st.Held == 0 && slots >= len(c.Nodes)
	st.Ready = st.Member && !waiting && st.Loaded == st.Held
	return st
}

// source is a node to copy a partition from.
type source struct {
	id string
	kv string
}

func (s source) String() string { return s.id }

// copyPartition fetches the partition from the first source that serves
// it, outside the actor, and sends the result back. The sources of the
// event come first, then the partition's other current owners; rounds
// repeat with backoff for up to copyDeadline.
func (s *store) copyPartition(system *actor.ActorSystem, self *actor.PID, part string, gen, epoch uint64, sources []source) {
	ctx, cancel := context.WithTimeout(s.ctx, copyDeadline)
	defer cancel()
	backoff := 50 * time.Millisecond
	var last error
	for round := 0; ; round++ {
		if round > 0 {
			sources = s.withCurrentOwners(part, sources)
		}
		for _, src := range sources {
			entries, err := s.fetchPartition(ctx, src, part, epoch)
			if err == nil {
				system.Root.Send(self, &copyResult{part: part, gen: gen, source: src.id, entries: entries})
				return
			}
			last = err
			s.log.Debug("copy source failed", "partition", part, "source", src.id, "error", err)
		}
		select {
		case <-ctx.Done():
			if s.ctx.Err() == nil {
				if last == nil {
					last = errors.New("no node to copy from")
				}
				system.Root.Send(self, &copyResult{part: part, gen: gen, err: fmt.Errorf("%d rounds over %v, last: %w", round+1, copyDeadline, last)})
			}
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// copyDeadline bounds the load of one partition.
const copyDeadline = 30 * time.Second

// withCurrentOwners appends the partition's current owners (other than
// this node) that are not already sources: the event's sources may have died.
func (s *store) withCurrentOwners(part string, sources []source) []source {
	c := s.ck.GetCluster()
	p := c.PartitionMap.Partitions[part]
	if p == nil {
		return sources
	}
	kv := s.ck.ServiceAddresses("kv")
	ip := map[string]string{}
	for _, n := range c.Nodes {
		ip[n.ID] = n.IP
	}
	for _, id := range append([]string{p.PrimaryNode}, p.ReplicaNodes...) {
		if id == s.self || kv[id] == "" || slices.ContainsFunc(sources, func(x source) bool { return x.id == id }) {
			continue
		}
		sources = append(sources, source{id: id, kv: serviceAddr(kv[id], ip[id])})
	}
	return sources
}
