package raftfsm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestStableStoreAfterClose: a late term write from raft's transport after
// the node stopped must not fail (raft panics on it).
func TestStableStoreAfterClose(t *testing.T) {
	s, err := OpenStores(t.TempDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stable.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stable.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatalf("write after close: %v", err)
	}
	if err := s.Stable.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatalf("write after close: %v", err)
	}
}

// TestSnapshotDoesNotRecreateDataDir: a snapshot taken after the data
// directory was removed fails instead of creating the directory again.
func TestSnapshotDoesNotRecreateDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	s, err := OpenStores(dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	create := func() (raft.SnapshotSink, error) {
		return s.Snapshots.Create(1, 10, 1, raft.Configuration{}, 1, nil)
	}
	sink, err := create()
	if err != nil {
		t.Fatalf("snapshot with the directory in place: %v", err)
	}
	if err := sink.Cancel(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := create(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("snapshot after the directory was removed: err %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the data directory was recreated (stat: %v)", err)
	}
}
