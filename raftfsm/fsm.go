package raftfsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// ApplyResult is what Apply returns through raft's ApplyFuture.Response().
type ApplyResult struct {
	Index uint64
	// Err is set when the command was rejected; the state did not change.
	Err error
	// Version is the custom-data version written by a custom-data command.
	Version uint64
}

// Applied describes one applied log entry (or a snapshot restore) to the
// actors. Prev and Next are the views before and after; they are the same
// pointer when the entry changed no membership or table.
type Applied struct {
	Index    uint64
	Time     time.Time
	Origin   string
	Type     cmdType
	Err      error
	Restored bool
	Prev     *View
	Next     *View
	Change   change
}

// change details what an applied entry did, for event derivation.
type change struct {
	// Joined is set for a brand new member.
	Joined      *Node
	IsBootstrap bool
	// Rejoined is set when a known node registered with a new incarnation.
	Rejoined         *Node
	OfflineDuration  time.Duration
	LastSeen         time.Time
	PartitionsBefore []uint32
	// Left is set when a member was removed.
	Left        *Node
	LeaveReason string
	LeftPrimary []uint32
	LeftReplica []uint32
	// StatusChanged is set when a member's status changed.
	StatusChanged *Node
	// VoterChanged is set when a member was promoted to voter or demoted.
	VoterChanged *Node
	VoterReason  string
	// Rebalance is set when a SetPartitionTable entry was applied.
	Rebalance *messages.RebalanceInfo
	// SpanOpened is set when the entry opened a hand-off span.
	SpanOpened bool
	// SpanClosed is the span the entry closed (every partition settled).
	SpanClosed *messages.RebalanceSpan
	// Readied lists the partitions a MarkReady of ReadiedBy made ready.
	Readied   []uint32
	ReadiedBy string
	// Drained is the node whose primaries a DrainNode handed over.
	Drained string
	// DrainSet is set when an operator drained or undrained a member.
	DrainSet *DrainChange
	// PauseSet is set when maintenance mode changed (its new value).
	PauseSet *bool
	// CustomData is set for custom-data writes and deletes.
	CustomData *customDataChange
}

// customDataChange is a committed custom-data write or delete.
type customDataChange struct {
	Key     string
	Value   []byte
	Version uint64
	Deleted bool
}

// notifier receives every Applied record. It must not block: it is called
// from raft's FSM goroutine (typically it Sends to an actor's unbounded mailbox).
type notifier func(*Applied)

// FSM is the replicated state machine. Apply, Snapshot and Restore are called
// by raft from one goroutine; View and the custom-data reads are safe from any
// goroutine.
type FSM struct {
	localID string
	log     *slog.Logger

	// Owned by raft's FSM goroutine.
	config   *messages.ClusterConfig
	members  map[string]*messages.Member
	departed map[string]*messages.DepartedMember
	// departures is departed converted for views, shared by every view
	// until departed changes (nil: to rebuild). Rebuilding it for every
	// view cost O(departed list) per applied entry.
	departures map[string]Departure
	table      *messages.PartitionTable
	lastIndex  uint64
	version    uint64
	paused     bool // maintenance mode

	cdMu sync.RWMutex
	cd   map[string]*messages.CustomDataEntry

	view atomic.Pointer[View]
	// applied is the index of the last entry Apply or Restore finished
	// (raft's own AppliedIndex counts entries handed to the FSM, not done).
	applied atomic.Uint64
	fatal   atomic.Pointer[error]

	nmu      sync.Mutex
	notify   notifier
	pending  []*Applied
	observer func(*Applied)
}

var _ raft.FSM = (*FSM)(nil)

// New returns an empty FSM for the node localID. Applied records are kept
// until SetNotifier is called, so nothing applied during start-up is lost.
func New(localID string, logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &FSM{
		localID:  localID,
		log:      logger,
		members:  map[string]*messages.Member{},
		departed: map[string]*messages.DepartedMember{},
		table:    &messages.PartitionTable{},
		cd:       map[string]*messages.CustomDataEntry{},
	}
	f.view.Store(f.buildView())
	return f
}

// SetNotifier installs n, first handing it every record applied so far.
func (f *FSM) SetNotifier(n notifier) {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	for _, a := range f.pending {
		n(a)
	}
	f.pending = nil
	f.notify = n
}

// SetObserver makes fn see every Applied record as it is made, on raft's
// FSM goroutine, before the notifier: the test harness checks invariants on
// every committed step with it. fn must be quick and must not block.
func (f *FSM) SetObserver(fn func(*Applied)) {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	f.observer = fn
}

func (f *FSM) emit(a *Applied) {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	if f.observer != nil {
		f.observer(a)
	}
	if f.notify == nil {
		f.pending = append(f.pending, a)
		return
	}
	f.notify(a)
}

// View returns the current immutable view. It never blocks.
func (f *FSM) View() *View { return f.view.Load() }

// AppliedIndex is the index of the last log entry this FSM finished applying.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Err returns the fatal error that stopped this FSM (an entry of a type this
// version cannot apply), or nil.
func (f *FSM) Err() error {
	if p := f.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// CustomData returns a copy of the value and its version.
func (f *FSM) CustomData(key string) (value []byte, version uint64, ok bool) {
	f.cdMu.RLock()
	defer f.cdMu.RUnlock()
	e, ok := f.cd[key]
	if !ok {
		return nil, 0, false
	}
	return bytes.Clone(e.GetValue()), e.GetVersion(), true
}

// CustomDataKeys returns the keys in sorted order.
func (f *FSM) CustomDataKeys() []string {
	f.cdMu.RLock()
	keys := make([]string, 0, len(f.cd))
	for k := range f.cd {
		keys = append(keys, k)
	}
	f.cdMu.RUnlock()
	sort.Strings(keys)
	return keys
}

// Apply applies one committed log entry. It is deterministic: the same log
// gives the same state and the same Applied records on every node.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	if err := f.Err(); err != nil {
		return &ApplyResult{Index: l.Index, Err: err}
	}
	cmd, skip, err := decode(l.Data)
	if skip {
		f.lastIndex = l.Index
		f.applied.Store(l.Index)
		return &ApplyResult{Index: l.Index}
	}
	if err != nil {
		if errors.Is(err, errUnknownCommand) {
			// Applying later entries without this one would silently diverge
			// from the other nodes: stop and say so.
			fatal := fmt.Errorf("entry %d: %w (this node runs an older ClusterKit than the cluster; upgrade it)", l.Index, err)
			f.fatal.Store(&fatal)
			f.log.Error("state machine stopped", "index", l.Index, "error", fatal)
			return &ApplyResult{Index: l.Index, Err: fatal}
		}
		f.lastIndex = l.Index
		f.applied.Store(l.Index)
		f.emit(&Applied{Index: l.Index, Err: err, Prev: f.View(), Next: f.View()})
		return &ApplyResult{Index: l.Index, Err: err}
	}
	prev := f.View()
	a := &Applied{
		Index:  l.Index,
		Origin: cmd.GetOrigin(),
		Type:   typeOf(cmd),
		Prev:   prev,
		Next:   prev,
	}
	if t := cmd.GetTimeUnixNano(); t != 0 {
		a.Time = time.Unix(0, t).UTC()
	}
	res := &ApplyResult{Index: l.Index}
	changed, err := f.apply(l.Index, cmd, a, res)
	f.lastIndex = l.Index
	if err != nil {
		res.Err, a.Err = err, err
	} else if changed {
		f.version = l.Index
		a.Next = f.publish()
	}
	f.applied.Store(l.Index)
	f.emit(a)
	return res
}

// publish builds and stores a new view and wakes the waiters of the old one.
func (f *FSM) publish() *View {
	next := f.buildView()
	old := f.view.Swap(next)
	if old != nil {
		close(old.done)
	}
	return next
}

func (f *FSM) sortedMembers() []*messages.Member {
	out := make([]*messages.Member, 0, len(f.members))
	for _, m := range f.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *messages.Member) int { return strings.Compare(a.GetId(), b.GetId()) })
	return out
}

func (f *FSM) buildView() *View {
	// The view keeps references to these messages; Apply replaces messages
	// instead of mutating them, so views stay immutable.
	if f.departures == nil {
		f.departures = make(map[string]Departure, len(f.departed))
		for id, d := range f.departed {
			f.departures[id] = DepartureOf(d)
		}
	}
	v := buildView(f.localID, f.version, f.config, f.sortedMembers(), f.table, f.departures)
	v.paused = f.paused
	return v
}

// state returns the whole state as one message (the snapshot format).
func (f *FSM) state() *messages.ClusterState {
	st := &messages.ClusterState{
		Config:    f.config,
		Members:   f.sortedMembers(),
		Table:     f.table,
		LastIndex: f.lastIndex,
		Version:   f.version,

		RebalancePaused: f.paused,
	}
	for _, d := range f.departed {
		st.Departed = append(st.Departed, d)
	}
	slices.SortFunc(st.Departed, func(a, b *messages.DepartedMember) int {
		return strings.Compare(a.GetMember().GetId(), b.GetMember().GetId())
	})
	f.cdMu.RLock()
	for _, e := range f.cd {
		st.CustomData = append(st.CustomData, e)
	}
	f.cdMu.RUnlock()
	slices.SortFunc(st.CustomData, func(a, b *messages.CustomDataEntry) int { return strings.Compare(a.GetKey(), b.GetKey()) })
	return st
}

// snapshotMagic starts every snapshot so garbage is recognised as such.
var snapshotMagic = []byte("CKSNAP1\n")

// Snapshot captures the state. Messages are never mutated after Apply stores
// them, so sharing them with the concurrent Persist is safe.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.state()}, nil
}

type fsmSnapshot struct{ state *messages.ClusterState }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(s.state)
	if err == nil {
		_, err = sink.Write(append(slices.Clone(snapshotMagic), data...))
	}
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// EncodeSnapshot returns the snapshot bytes of the current state (tests and tools).
func (f *FSM) EncodeSnapshot() ([]byte, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(f.state())
	return append(slices.Clone(snapshotMagic), data...), err
}

// Restore replaces the state with a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadSnapshot, err)
	}
	if !bytes.HasPrefix(data, snapshotMagic) {
		return fmt.Errorf("%w: not a ClusterKit snapshot", errBadSnapshot)
	}
	st := &messages.ClusterState{}
	if err := proto.Unmarshal(data[len(snapshotMagic):], st); err != nil {
		return fmt.Errorf("%w: %v", errBadSnapshot, err)
	}
	if err := validateState(st); err != nil {
		return fmt.Errorf("%w: %v", errBadSnapshot, err)
	}
	prev := f.View()
	f.config = st.GetConfig()
	f.members = make(map[string]*messages.Member, len(st.GetMembers()))
	for _, m := range st.GetMembers() {
		f.members[m.GetId()] = m
	}
	f.departed = make(map[string]*messages.DepartedMember, len(st.GetDeparted()))
	f.departures = nil
	for _, d := range st.GetDeparted() {
		f.departed[d.GetMember().GetId()] = d
	}
	f.table = st.GetTable()
	if f.table == nil {
		f.table = &messages.PartitionTable{}
	}
	cd := make(map[string]*messages.CustomDataEntry, len(st.GetCustomData()))
	for _, e := range st.GetCustomData() {
		cd[e.GetKey()] = e
	}
	f.cdMu.Lock()
	f.cd = cd
	f.cdMu.Unlock()
	f.lastIndex = st.GetLastIndex()
	f.applied.Store(f.lastIndex)
	f.version = st.GetVersion()
	f.paused = st.GetRebalancePaused()
	next := f.publish()
	f.emit(&Applied{Index: f.lastIndex, Restored: true, Prev: prev, Next: next})
	return nil
}

// validateState checks the invariants a snapshot must satisfy before it
// replaces the state.
func validateState(st *messages.ClusterState) error {
	seen := map[string]bool{}
	for _, m := range st.GetMembers() {
		if m.GetId() == "" || seen[m.GetId()] {
			return fmt.Errorf("bad or duplicate member %q", m.GetId())
		}
		seen[m.GetId()] = true
	}
	t := st.GetTable()
	if t.GetVersion() == 0 {
		return nil
	}
	if st.GetConfig() == nil || len(t.GetPartitions()) != int(st.GetConfig().GetPartitionCount()) {
		return fmt.Errorf("table has %d partitions, config says %d", len(t.GetPartitions()), st.GetConfig().GetPartitionCount())
	}
	for n, p := range t.GetPartitions() {
		for _, id := range p.GetOwners() {
			if !seen[id] {
				return fmt.Errorf("partition %d owned by non-member %q", n, id)
			}
		}
	}
	return nil
}
