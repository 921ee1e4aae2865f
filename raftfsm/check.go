package raftfsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// ErrDamaged means persisted state cannot be used as it is.
var ErrDamaged = errors.New("damaged raft state")

// StoreSummary is what CheckStores learned about persisted state.
type StoreSummary struct {
	// Config is the committed cluster configuration (nil if none yet).
	Config *messages.ClusterConfig
	// SnapshotIndex is the index of the newest readable snapshot (0: none).
	SnapshotIndex uint64
	// FirstIndex and LastIndex bound the log (0, 0: empty).
	FirstIndex, LastIndex uint64
}

// CheckStores verifies a node's persisted state before Raft opens it, so that
// damage is reported at start instead of showing up as a node that never
// becomes ready, a panic, or a state machine silently missing entries:
//   - the newest snapshot raft would restore must decode (raft falls back to
//     older ones; if none decodes it refuses to start);
//   - the log must continue where that snapshot ends (no missing entries);
//   - every entry raft will replay must be readable.
func CheckStores(s *Stores) (StoreSummary, error) {
	var sum StoreSummary
	metas, err := s.Snapshots.List()
	if err != nil {
		return sum, fmt.Errorf("%w: list snapshots: %v", ErrDamaged, err)
	}
	var snapErrs []error
	for _, meta := range metas {
		st, err := readSnapshot(s.Snapshots, meta.ID)
		if err != nil {
			snapErrs = append(snapErrs, fmt.Errorf("snapshot %s: %w", meta.ID, err))
			continue
		}
		sum.SnapshotIndex, sum.Config = meta.Index, st.GetConfig()
		break
	}
	if len(metas) > 0 && sum.SnapshotIndex == 0 {
		return sum, fmt.Errorf("%w: no snapshot is readable: %w", ErrDamaged, errors.Join(snapErrs...))
	}

	if sum.FirstIndex, err = s.Log.FirstIndex(); err != nil {
		return sum, fmt.Errorf("%w: read the log's first index: %v", ErrDamaged, err)
	}
	if sum.LastIndex, err = s.Log.LastIndex(); err != nil {
		return sum, fmt.Errorf("%w: read the log's last index: %v", ErrDamaged, err)
	}
	switch {
	case sum.LastIndex == 0 || sum.LastIndex == sum.SnapshotIndex:
		return sum, nil // nothing after the snapshot (an installed snapshot empties the log)
	case sum.LastIndex < sum.SnapshotIndex:
		// Raft never leaves a log that ends before its snapshot: the log
		// lost its tail (a truncated file), and the store would refuse
		// every append after it.
		return sum, fmt.Errorf("%w: the log ends at entry %d, before the snapshot at %d: entries after %d are unreadable (truncated log)",
			ErrDamaged, sum.LastIndex, sum.SnapshotIndex, sum.LastIndex)
	}
	from := sum.SnapshotIndex + 1
	if sum.FirstIndex > from {
		return sum, fmt.Errorf("%w: the log starts at entry %d but the newest readable snapshot ends at %d: entries %d to %d are missing",
			ErrDamaged, sum.FirstIndex, sum.SnapshotIndex, from, sum.FirstIndex-1)
	}
	var l raft.Log
	for i := from; i <= sum.LastIndex; i++ {
		if err := s.Log.GetLog(i, &l); err != nil {
			return sum, fmt.Errorf("%w: log entry %d of %d..%d is unreadable: %v", ErrDamaged, i, from, sum.LastIndex, err)
		}
		if sum.Config == nil && l.Type == raft.LogCommand {
			if cmd, _, err := decode(l.Data); err == nil && cmd.GetSetConfig() != nil {
				sum.Config = cmd.GetSetConfig().GetConfig()
			}
		}
	}
	return sum, nil
}

func readSnapshot(store raft.SnapshotStore, id string) (*messages.ClusterState, error) {
	_, rc, err := store.Open(id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(data, snapshotMagic) {
		return nil, errors.New("not a ClusterKit snapshot")
	}
	st := &messages.ClusterState{}
	if err := proto.Unmarshal(data[len(snapshotMagic):], st); err != nil {
		return nil, err
	}
	return st, validateState(st)
}
