package clusterkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/logging"
	"github.com/clusterkit/clusterkit/internal/nodefile"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Recovery describes what RecoverCluster did.
type Recovery struct {
	// ClusterID is the cluster that was recovered.
	ClusterID string
	// Servers is the new Raft configuration, all voters: this node first,
	// then the other survivors by ID.
	Servers []RecoveredServer
	// LastIndex is the index of the last log entry kept: the recovered state
	// holds every entry of the node's log up to it.
	LastIndex uint64
	// Lost are the members (sorted IDs) the node removes, with reason
	// "removed_by_admin", once it leads again.
	Lost []string
}

// RecoveredServer is one voter of a recovered configuration.
type RecoveredServer struct {
	ID      string
	Address string
}

// String is one line for logs and tools:
// "cluster=... servers=node-1@10.0.0.1:8080 last_index=42 lost=node-2,node-3".
func (r Recovery) String() string {
	servers := make([]string, len(r.Servers))
	for i, s := range r.Servers {
		servers[i] = s.ID + "@" + s.Address
	}
	lost := strings.Join(r.Lost, ",")
	if lost == "" {
		lost = "none"
	}
	return fmt.Sprintf("cluster=%s servers=%s last_index=%d lost=%s", r.ClusterID, strings.Join(servers, ","), r.LastIndex, lost)
}

// recoveryMarkerName is the marker RecoverCluster leaves in the data
// directory for the node's next start.
const recoveryMarkerName = "recovery.json"

// recoveryMarker is the content of the marker file.
type recoveryMarker struct {
	NodeID      string            `json:"node_id"`
	ClusterID   string            `json:"cluster_id"`
	RecoveredAt time.Time         `json:"recovered_at"`
	LastIndex   uint64            `json:"last_index"`
	Survivors   []string          `json:"survivors"`
	Lost        map[string]uint64 `json:"lost"` // node ID -> incarnation at the recovery
}

// RecoverCluster recovers a node from the loss of a majority of its
// cluster's voters, offline: when those voters are gone for good, no leader
// can ever be elected again, and this is the one step that gets the cluster
// back. It is not for a temporary outage: voters that come back recover the
// cluster by themselves.
//
// Run it on a stopped node's data directory (o.NodeID and o.DataDir, and
// o.HTTPAddr or o.AdvertiseAddr as the node runs with; other options are
// ignored). It rewrites the node's Raft state with a new configuration made
// of this node, at its advertise address (AdvertiseAddr, else derived from
// HTTPAddr as Start does), plus the other survivors (node ID -> advertise
// address), all voters, and keeps the state: members, partition table and
// custom data, replayed from the node's snapshot and log. Every survivor
// must be recovered the same way (the same survivors, each with its own
// options) before any of them starts. Pick as survivors the most up-to-date
// nodes: entries only the lost voters held are lost with them.
//
// Started again, the node leads (alone, or with the other survivors) and
// then removes every other member with reason "removed_by_admin"; RecoverCluster
// records which ones in a marker file (recovery.json) in the data directory,
// which the node deletes once the removals are committed. New nodes then
// join as usual.
//
// RecoverCluster refuses, and changes nothing, when the data directory has
// no Raft state, belongs to another node, is damaged, when a survivor is not
// a member of the recovered cluster, or when the node seems to be running:
// Raft's log store takes no lock, so RecoverCluster holds the node's port
// (o.HTTPAddr) while it works, and fails with ErrListen if it is taken. A
// process using the same data directory on another port is not detected.
//
// Never recover both sides of a partition separately: that forks the
// cluster into two with the same cluster ID.
func RecoverCluster(o Options, survivors map[string]string) (Recovery, error) {
	var res Recovery
	if err := o.Validate(); err != nil {
		return res, err
	}
	o = o.withDefaults()
	logger := o.nodeLogger()
	var bad []error
	if o.DataDir == "" {
		bad = append(bad, errors.New("DataDir is required: only a node with persisted state can be recovered"))
	}
	if _, port, _ := net.SplitHostPort(o.HTTPAddr); port == "0" {
		bad = append(bad, fmt.Errorf("HTTPAddr %q: give the node's own port, not 0 (it proves the node is not running)", o.HTTPAddr))
	}
	for id, addr := range survivors {
		if err := raftfsm.ValidateNodeID(id); err != nil {
			bad = append(bad, fmt.Errorf("survivor %q: %w", id, err))
		}
		if err := raftfsm.ValidateAddress(addr); err != nil {
			bad = append(bad, fmt.Errorf("survivor %q: %w", id, err))
		}
	}
	if len(bad) > 0 {
		return res, fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(bad...))
	}

	// Read-only checks first: nothing is created in a wrong directory.
	dir := o.DataDir
	// Opening the log store would create it in an empty directory.
	if _, err := os.Stat(filepath.Join(dir, "raft", "wal", "wal-meta.db")); err != nil {
		return res, fmt.Errorf("%w: %s has no Raft log (%w): nothing to recover", ErrDataDir, dir, err)
	}
	nf, err := nodefile.Read(dir, o.NodeID)
	if err != nil {
		return res, fmt.Errorf("%w: %w (not a ClusterKit node's data directory?)", ErrDataDir, err)
	}

	// Hold the node's port while recovering: a node starting meanwhile on it
	// fails instead of opening the stores under us.
	network := o.Network
	if network == nil {
		network = &TCPNetwork{}
	}
	ln, err := network.Listen(o.HTTPAddr)
	if err != nil {
		return res, fmt.Errorf("%w on %s: %w (is node %s still running? stop it first)", ErrListen, o.HTTPAddr, err, o.NodeID)
	}
	defer ln.Close()
	advertise := advertiseAddr(o.AdvertiseAddr, o.HTTPAddr, ln.Addr())

	servers := []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(o.NodeID), Address: raft.ServerAddress(advertise)}}
	ids := make([]string, 0, len(survivors))
	for id := range survivors {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		addr := survivors[id]
		switch {
		case id == o.NodeID && addr != advertise:
			bad = append(bad, fmt.Errorf("survivor %q is this node, at %s, but its advertise address is %s", id, addr, advertise))
		case id == o.NodeID:
		case addr == advertise:
			bad = append(bad, fmt.Errorf("survivor %q has this node's address %s", id, addr))
		default:
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)})
		}
	}
	seen := map[string]string{}
	for _, s := range servers {
		if other, dup := seen[string(s.Address)]; dup {
			bad = append(bad, fmt.Errorf("survivors %q and %q share the address %s", other, s.ID, s.Address))
		}
		seen[string(s.Address)] = string(s.ID)
	}
	if len(bad) > 0 {
		return res, fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(bad...))
	}

	hc := logging.HCLog(logger, "raft")
	stores, err := raftfsm.OpenStores(dir, hc)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	defer stores.Close()
	hasState, err := raft.HasExistingState(stores.Log, stores.Stable, stores.Snapshots)
	if err != nil {
		return res, fmt.Errorf("%w: read raft state: %w", ErrDataDir, err)
	}
	if !hasState {
		return res, fmt.Errorf("%w: %s has no Raft state: nothing to recover", ErrDataDir, dir)
	}
	sum, err := raftfsm.CheckStores(stores)
	if err != nil {
		return res, fmt.Errorf("%w: %s: %w (recover another survivor, or restore this one from a backup first)", ErrDataDir, dir, err)
	}
	if id := sum.Config.GetClusterId(); nf.ClusterID != "" && id != "" && id != nf.ClusterID {
		return res, fmt.Errorf("%w: %s holds the Raft state of cluster %s but its node file says cluster %s",
			ErrClusterMismatch, dir, id, nf.ClusterID)
	}

	// raft.RecoverCluster replays the snapshot and the log into the FSM,
	// then snapshots it before it writes anything: the check runs there,
	// on the replayed state, so a refusal leaves the directory as it was.
	fsm := &checkedFSM{FSM: raftfsm.New(o.NodeID, logger.With("component", "fsm"))}
	var marker recoveryMarker
	fsm.check = func() error {
		if err := fsm.Err(); err != nil {
			return fmt.Errorf("%w: replaying %s: %w", ErrDataDir, dir, err)
		}
		v := fsm.View()
		if v.Config() == nil {
			return fmt.Errorf("%w: %s holds no committed cluster configuration (the cluster never finished bootstrapping): nothing to recover", ErrDataDir, dir)
		}
		if _, ok := v.Member(o.NodeID); !ok {
			return fmt.Errorf("%w: node %s is not a member of cluster %s in %s: recover a node that was", ErrDataDir, o.NodeID, v.ClusterID(), dir)
		}
		marker = recoveryMarker{NodeID: o.NodeID, ClusterID: v.ClusterID(), Lost: map[string]uint64{}}
		for _, s := range servers {
			if _, ok := v.Member(string(s.ID)); !ok {
				bad = append(bad, fmt.Errorf("survivor %q is not a member of cluster %s", s.ID, v.ClusterID()))
			}
			marker.Survivors = append(marker.Survivors, string(s.ID))
		}
		if len(bad) > 0 {
			return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(bad...))
		}
		for _, m := range v.Members() {
			if !slices.Contains(marker.Survivors, m.ID) {
				marker.Lost[m.ID] = m.Incarnation
				res.Lost = append(res.Lost, m.ID)
			}
		}
		return nil
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(advertise)) // never used to talk: Raft needs one to encode peers
	defer trans.Close()
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(o.NodeID)
	conf.Logger = hc
	err = raft.RecoverCluster(conf, fsm, stores.Log, stores.Stable, stores.Snapshots, trans, raft.Configuration{Servers: servers})
	if fsm.err != nil {
		return res, fsm.err
	}
	if err != nil {
		return res, fmt.Errorf("%w: recover the Raft state in %s: %w (fix the cause and run the recovery again)", ErrDataDir, dir, err)
	}

	res.ClusterID = marker.ClusterID
	res.LastIndex = max(sum.LastIndex, sum.SnapshotIndex)
	for _, s := range servers {
		res.Servers = append(res.Servers, RecoveredServer{ID: string(s.ID), Address: string(s.Address)})
	}
	marker.RecoveredAt, marker.LastIndex = time.Now().UTC(), res.LastIndex
	if err := writeRecoveryMarker(dir, marker); err != nil {
		return res, fmt.Errorf("%w: the Raft state was recovered, but the list of lost members could not be written (run the recovery again): %w", ErrDataDir, err)
	}
	logger.Info("quorum-loss recovery done: start the node to lead the new configuration", "recovery", res.String())
	return res, nil
}

// checkedFSM runs check before the snapshot raft.RecoverCluster takes of
// the replayed state; a failed check fails the snapshot, before any write.
type checkedFSM struct {
	*raftfsm.FSM
	check func() error
	err   error // what check returned (raft flattens it into a string)
}

func (f *checkedFSM) Snapshot() (raft.FSMSnapshot, error) {
	if f.err = f.check(); f.err != nil {
		return nil, f.err
	}
	return f.FSM.Snapshot()
}

// writeRecoveryMarker writes the marker atomically (no marker when nothing
// is lost, and none left from an earlier recovery).
func writeRecoveryMarker(dir string, m recoveryMarker) error {
	if len(m.Lost) == 0 {
		return removeRecoveryMarker(dir)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return nodefile.WriteFileAtomic(dir, recoveryMarkerName, data)
}

// loadRecovery reads the marker a recovery left in the data directory (nil
// without one). A marker in a directory without Raft state is stale (the
// state was moved away since): it is removed, never applied to whatever
// cluster the node joins now.
func (ck *ClusterKit) loadRecovery(hasState bool) (*actors.Recovery, error) {
	dir := ck.opts.DataDir
	if dir == "" {
		return nil, nil
	}
	path := filepath.Join(dir, recoveryMarkerName)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrDataDir, err)
	case !hasState:
		ck.log.Warn("removing a quorum-recovery marker left without Raft state", "path", path)
		return nil, removeRecoveryMarker(dir)
	}
	var m recoveryMarker
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s is corrupt: %w (run the recovery again, or remove it to skip the removal of the lost members)", ErrDataDir, path, err)
	}
	if m.NodeID != ck.opts.NodeID {
		return nil, fmt.Errorf("%w: %s was written for node %q, this is %q", ErrDataDir, path, m.NodeID, ck.opts.NodeID)
	}
	ck.log.Warn("quorum-loss recovery pending: once leader, this node removes the lost members", "lost", m.Lost, "survivors", m.Survivors,
		"recovered_at", m.RecoveredAt)
	return &actors.Recovery{ClusterID: m.ClusterID, Survivors: m.Survivors, Lost: m.Lost, Done: func() error {
		return removeRecoveryMarker(dir)
	}}, nil
}

// removeRecoveryMarker deletes the marker durably (no error if absent).
func removeRecoveryMarker(dir string) error {
	if err := os.Remove(filepath.Join(dir, recoveryMarkerName)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return nodefile.SyncDir(dir)
}
