package raftfsm

import (
	"testing"

	"github.com/hashicorp/go-hclog"
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
