package actors

import (
	"errors"
	"log/slog"

	"github.com/hashicorp/raft"
)

// failureLevel is the level of a line about one of the leader's own
// proposals (or its barrier) that failed with err: INFO when leadership
// moved meanwhile (refused, or in the log with its outcome unknown) or Raft
// is shutting down: the next leader takes the work over, and the
// leadership change has its own lines. WARN otherwise.
func failureLevel(err error) slog.Level {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, ErrOutcomeUnknown) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown) {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
