package raftfsm

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/messages"
)

// failingLog fails to read one entry, like a damaged segment.
type failingLog struct {
	raft.LogStore
	bad uint64
}

func (l failingLog) GetLog(i uint64, out *raft.Log) error {
	if i == l.bad {
		return errors.New("checksum mismatch")
	}
	return l.LogStore.GetLog(i, out)
}

func TestCheckStores(t *testing.T) {
	cfg := &messages.ClusterConfig{ClusterName: "c1", PartitionCount: 8, ReplicationFactor: 1, MaxVoters: 5}
	setConfig, err := Encode(&messages.Command{Op: &messages.Command_SetConfig{SetConfig: &messages.SetConfig{Config: cfg}}})
	if err != nil {
		t.Fatal(err)
	}
	noop, _ := Encode(&messages.Command{Op: &messages.Command_Noop{Noop: &messages.Noop{}}})
	logWith := func(first, last uint64) *raft.InmemStore {
		s := raft.NewInmemStore()
		for i := first; i <= last; i++ {
			data := noop
			if i == first {
				data = setConfig
			}
			if err := s.StoreLog(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	snapshotAt := func(t *testing.T, index uint64, data []byte) raft.SnapshotStore {
		store, err := raft.NewFileSnapshotStoreWithLogger(t.TempDir(), 2, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sink.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		return store
	}
	f := New("n1", slog.New(slog.DiscardHandler))
	f.config = cfg
	good, err := f.EncodeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		log  raft.LogStore
		snap func(t *testing.T) raft.SnapshotStore
		want string // "" = fine
	}{
		{"log from 1, no snapshot", logWith(1, 50), nil, ""},
		{"snapshot then the log after it", logWith(30, 50), func(t *testing.T) raft.SnapshotStore { return snapshotAt(t, 29, good) }, ""},
		{"log overlapping the snapshot", logWith(10, 50), func(t *testing.T) raft.SnapshotStore { return snapshotAt(t, 29, good) }, ""},
		{"log starting after 1 without a snapshot", logWith(5, 50), nil, "entries 1 to 4 are missing"},
		{"gap after the snapshot", logWith(40, 50), func(t *testing.T) raft.SnapshotStore { return snapshotAt(t, 29, good) }, "entries 30 to 39 are missing"},
		{"log ending before the snapshot", logWith(1, 5), func(t *testing.T) raft.SnapshotStore { return snapshotAt(t, 29, good) }, "truncated log"},
		{"unreadable entry", failingLog{logWith(1, 50), 17}, nil, "log entry 17"},
		{"garbage snapshot", logWith(30, 50), func(t *testing.T) raft.SnapshotStore { return snapshotAt(t, 29, []byte("garbage")) }, "no snapshot is readable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Stores{Log: tc.log, Snapshots: raft.NewInmemSnapshotStore()}
			if tc.snap != nil {
				s.Snapshots = tc.snap(t)
			}
			sum, err := CheckStores(s)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("healthy state refused: %v", err)
			case tc.want != "" && (!errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want ErrDamaged mentioning %q", err, tc.want)
			case tc.want == "" && sum.Config.GetClusterName() != "c1":
				t.Fatalf("config not found: %+v", sum)
			}
		})
	}
}
