package clusterkit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestValidateRaftConfig: Validate refuses what hashicorp/raft would refuse
// at Start, and reports it together with every other problem.
func TestValidateRaftConfig(t *testing.T) {
	o := Options{NodeID: "bad id", HTTPAddr: ":8080"}
	o.Raft.HeartbeatTimeout = 200 * time.Millisecond
	o.Raft.ElectionTimeout = 100 * time.Millisecond // raft: must be >= heartbeat
	err := o.Validate()
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Validate = %v, want ErrInvalidOptions", err)
	}
	for _, want := range []string{"NodeID", "ElectionTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to name %s", err, want)
		}
	}
	for name, mod := range map[string]func(*Options){
		"election below heartbeat": func(o *Options) {
			o.Raft.HeartbeatTimeout, o.Raft.ElectionTimeout = 200*time.Millisecond, 100*time.Millisecond
		},
		"commit timeout too low":    func(o *Options) { o.Raft.CommitTimeout = time.Microsecond },
		"snapshot interval too low": func(o *Options) { o.Raft.SnapshotInterval = time.Millisecond },
	} {
		o := Options{NodeID: "n1", HTTPAddr: ":8080"}
		mod(&o)
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: Validate = %v, want ErrInvalidOptions", name, err)
		}
		if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: New = %v, want ErrInvalidOptions", name, err)
		}
	}
	// What Validate accepts, Raft accepts: the defaults and a tuned set.
	for _, r := range []RaftTimings{{}, DefaultRaftTimings(), {HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond}} {
		o := Options{NodeID: "n1", HTTPAddr: ":8080", Raft: r}
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", r, err)
		}
	}
}
