package clusterkit

import (
	"context"
	"fmt"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Custom data: small replicated key/value data for the application (feature
// flags, configuration, counters). Writes go through Raft from any node
// (followers forward them to the leader) and return once committed. Reads
// are local: a read waits until this node has applied every write
// acknowledged on this node, so the writer reads its own write here, but may
// miss a write committed an instant ago elsewhere; GetCustomDataLinearizable
// reads after everything committed before the call.
//
// Why a write on a follower does not wait for the follower's own apply: the
// follower learns of a commit only from the leader's next append (an entry
// that costs the leader and the follower an fsync each), which doubled a
// lone follower writer's latency. The next read here pays what is left of
// that wait, usually nothing: the append is under way by then.
//
// A key is 1 to 1024 bytes of UTF-8; a value at most 1 MiB. The version of a
// key is the Raft index of its last write (0: no such key), so versions only
// grow and CompareAndSetCustomData can fence writers.

// MaxCustomDataValue is the largest custom-data value (1 MiB).
const MaxCustomDataValue = 1 << 20

// The state machine enforces the same bound.
var _ = [1]struct{}{}[MaxCustomDataValue^raftfsm.MaxCustomDataValue]

// SetCustomData writes key = value on every node and returns the new
// version (the Raft index of the write) once it is committed; the next read
// on this node sees it (see the notes at the top of this file). Every
// change emits a CustomDataChange event. If ctx ends first, SetCustomData
// returns ctx.Err() at once; the write may still commit (read the key back
// to know).
func (ck *ClusterKit) SetCustomData(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := raftfsm.ValidateCustomData(key, value); err != nil {
		return 0, err
	}
	return ck.writeCustomData(ctx, &messages.Command{Op: &messages.Command_SetCustomData{SetCustomData: &messages.SetCustomData{Key: key, Value: value}}})
}

// CompareAndSetCustomData writes key = value only if the key's version is
// still expectedVersion (0: the key must not exist), and returns the new
// version. Otherwise it fails with ErrVersionMismatch and changes nothing.
// Cancellation is as for SetCustomData.
func (ck *ClusterKit) CompareAndSetCustomData(ctx context.Context, key string, expectedVersion uint64, value []byte) (uint64, error) {
	if err := raftfsm.ValidateCustomData(key, value); err != nil {
		return 0, err
	}
	return ck.writeCustomData(ctx, &messages.Command{Op: &messages.Command_CompareAndSetCustomData{CompareAndSetCustomData: &messages.CompareAndSetCustomData{
		Key: key, Value: value, ExpectedVersion: expectedVersion,
	}}})
}

// DeleteCustomData deletes key everywhere (ErrKeyNotFound if it does not
// exist) and returns the Raft index of the deletion once it is committed.
// Cancellation is as for SetCustomData.
func (ck *ClusterKit) DeleteCustomData(ctx context.Context, key string) (uint64, error) {
	if err := raftfsm.ValidateCustomData(key, nil); err != nil {
		return 0, err
	}
	return ck.writeCustomData(ctx, &messages.Command{Op: &messages.Command_DeleteCustomData{DeleteCustomData: &messages.DeleteCustomData{Key: key}}})
}

// writeCustomData proposes cmd and, once it committed, raises the mark that
// this node's reads wait for.
func (ck *ClusterKit) writeCustomData(ctx context.Context, cmd *messages.Command) (uint64, error) {
	if err := ck.usable(); err != nil {
		return 0, err
	}
	index, err := ck.propose(ctx, cmd)
	if err != nil {
		return 0, err
	}
	for {
		m := ck.writeMark.Load()
		if m >= index || ck.writeMark.CompareAndSwap(m, index) {
			return index, nil
		}
	}
}

// readYourWrites waits until this node has applied every custom-data write
// acknowledged on it (usually at once: see the notes at the top of this
// file). It gives up as waitApplied does (DefaultApplyTimeout, the node
// stopping).
func (ck *ClusterKit) readYourWrites() error {
	m := ck.writeMark.Load()
	if m == 0 || ck.fsm.AppliedIndex() >= m {
		return nil
	}
	return ck.waitApplied(context.Background(), m)
}

// GetCustomData returns key's value and version (the Raft index of its last
// write) as this node has applied them: a local read, which includes every
// write acknowledged on this node but may miss one committed an instant ago
// elsewhere (see GetCustomDataLinearizable). In the rare case that this
// node cannot apply its own acknowledged write within DefaultApplyTimeout
// (cut off from the leader), it fails with ErrTimeout rather than return
// a value older than that write.
func (ck *ClusterKit) GetCustomData(key string) ([]byte, uint64, error) {
	if err := ck.readYourWrites(); err != nil {
		return nil, 0, err
	}
	value, version, ok := ck.fsm.CustomData(key)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %q", ErrKeyNotFound, key)
	}
	return value, version, nil
}

// GetCustomDataLinearizable returns key's value and version as of a moment
// after the call started: it commits a barrier through the leader and reads
// once this node has applied it, so it sees every write acknowledged before.
func (ck *ClusterKit) GetCustomDataLinearizable(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := ck.Barrier(ctx); err != nil {
		return nil, 0, err
	}
	return ck.GetCustomData(key)
}

// Barrier returns once this node has applied every entry committed before
// the call (it commits a no-op through the leader and waits for it here).
func (ck *ClusterKit) Barrier(ctx context.Context) error {
	if err := ck.usable(); err != nil {
		return err
	}
	index, err := ck.propose(ctx, &messages.Command{Op: &messages.Command_Noop{Noop: &messages.Noop{}}})
	if err != nil {
		return err
	}
	return ck.waitApplied(ctx, index)
}

// ListCustomDataKeys returns every key, sorted: a local read that includes
// every write acknowledged on this node (it waits for them as GetCustomData
// does, and lists what is applied if that wait gives up).
func (ck *ClusterKit) ListCustomDataKeys() []string {
	_ = ck.readYourWrites() // no error to return: the keys applied so far are the best answer
	return ck.fsm.CustomDataKeys()
}

// usable reports why the node cannot take requests now, if it cannot.
func (ck *ClusterKit) usable() error {
	switch ck.lifecycle() {
	case "running":
		return nil
	case "starting":
		return fmt.Errorf("%w: still starting", ErrNotStarted)
	case "stopped":
		return ErrStopped
	}
	return ErrNotStarted
}
