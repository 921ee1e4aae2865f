package messages

// Hand-written accessors of the generated PartitionAssignment: its Syncing
// and SyncingSince lists are empty when every owner is ready (the compact
// form of older entries and snapshots), so every reader needs the same
// bounds check.

// LoadEpoch returns owner i's load epoch: the epoch of the load it has not
// acknowledged yet, 0 when it is ready.
func (x *PartitionAssignment) LoadEpoch(i int) uint64 {
	if s := x.GetSyncing(); i >= 0 && i < len(s) {
		return s[i]
	}
	return 0
}

// LoadSince returns when owner i's load started (Unix nanoseconds of the
// entry that added it), 0 when it is ready.
func (x *PartitionAssignment) LoadSince(i int) int64 {
	if s := x.GetSyncingSince(); i >= 0 && i < len(s) {
		return s[i]
	}
	return 0
}
