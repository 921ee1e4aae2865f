package actors

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// Only refusals that happen before an entry enters the log may be retried:
// the rest must surface as ErrOutcomeUnknown, or a retry could apply a
// command twice.
func TestProposeOutcomes(t *testing.T) {
	for _, tc := range []struct {
		err       error
		code      string
		retrySafe bool
	}{
		{raft.ErrNotLeader, CodeNotLeader, true},
		{raft.ErrLeadershipTransferInProgress, CodeNotLeader, true},
		{raft.ErrLeadershipLost, CodeUnknown, false},
		{raft.ErrRaftShutdown, CodeShutdown, false},
		{raft.ErrEnqueueTimeout, CodeTimeout, false},
	} {
		res := resultOf(0, tc.err)
		if res.GetCode() != tc.code {
			t.Errorf("%v: code %q, want %q", tc.err, res.GetCode(), tc.code)
		}
		if got := errors.Is(ResultError(res), raft.ErrNotLeader); got != tc.retrySafe {
			t.Errorf("%v: reported as retry-safe %v", tc.err, got)
		}
	}
	if err := ResultError(resultOf(0, raft.ErrLeadershipLost)); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("leadership lost: %v, want ErrOutcomeUnknown", err)
	}
}
