package raftfsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
)

// Stores are the raft log, stable and snapshot stores of one node.
type Stores struct {
	Log       raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
	close     func() error
}

// snapshotsRetained is how many snapshots a node keeps on disk.
const snapshotsRetained = 2

// OpenStores opens the stores: in memory when dataDir is empty, otherwise a
// raft-wal log and stable store in dataDir/raft/wal and file snapshots in
// dataDir/raft/snapshots.
func OpenStores(dataDir string, logger hclog.Logger) (*Stores, error) {
	if dataDir == "" {
		mem := raft.NewInmemStore()
		return &Stores{Log: mem, Stable: mem, Snapshots: raft.NewInmemSnapshotStore(), close: func() error { return nil }}, nil
	}
	walDir := filepath.Join(dataDir, "raft", "wal")
	if err := os.MkdirAll(walDir, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", walDir, err)
	}
	// raft-wal v0.4.1 panics (a nil pointer in its bolt metadata store) on
	// an empty wal-meta.db, as a crash before its first write can leave it.
	meta := filepath.Join(walDir, "wal-meta.db")
	if fi, err := os.Stat(meta); err == nil && fi.Size() == 0 {
		return nil, fmt.Errorf("%w: open raft log in %s: %s is empty", ErrDamaged, walDir, meta)
	}
	w, err := wal.Open(walDir, wal.WithLogger(logger.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("open raft log in %s: %w", walDir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dataDir, "raft"), snapshotsRetained, logger)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open snapshots in %s: %w", dataDir, err), w.Close())
	}
	stable := &closingStable{StableStore: w}
	guarded := &noRecreate{SnapshotStore: snaps, dir: filepath.Join(dataDir, "raft", "snapshots")}
	return &Stores{Log: w, Stable: stable, Snapshots: guarded, close: func() error {
		stable.mu.Lock() // waits for a write in progress
		stable.closed = true
		stable.mu.Unlock()
		return w.Close()
	}}, nil
}

// closingStable drops writes once the stores are closed. Raft's transport
// handles heartbeats on its own goroutines, and one already past raft's
// shutdown check can still persist a new term after Shutdown returned; raft
// panics if that write fails. Dropping it is safe: the node is stopping and
// the heartbeat's answer is never sent, so nobody relies on the term.
type closingStable struct {
	raft.StableStore
	mu     sync.RWMutex
	closed bool
}

func (s *closingStable) Set(key, val []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.StableStore.Set(key, val)
}

func (s *closingStable) SetUint64(key []byte, val uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.StableStore.SetUint64(key, val)
}

// noRecreate refuses to take a snapshot once the snapshot directory is gone
// (the data directory was removed under the node, typically by a test's
// cleanup): raft's file store would create the whole path again with
// MkdirAll and leave a stray data directory behind. The error wraps
// fs.ErrNotExist.
type noRecreate struct {
	raft.SnapshotStore
	dir string
}

func (s *noRecreate) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	if _, err := os.Stat(s.dir); err != nil {
		return nil, fmt.Errorf("snapshot directory unusable, not recreating it: %w", err)
	}
	return s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
}

// Close releases the stores.
func (s *Stores) Close() error { return s.close() }
