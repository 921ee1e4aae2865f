package clusterkit

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Errors returned by ClusterKit. Compare with errors.Is; returned errors wrap
// these with detail.
var (
	// ErrInvalidOptions wraps every problem Options validation found.
	ErrInvalidOptions = errors.New("clusterkit: invalid options")
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("clusterkit: already started")
	// ErrStopped is returned by operations after Stop.
	ErrStopped = errors.New("clusterkit: stopped")
	// ErrNotStarted is returned by operations that need a running node.
	ErrNotStarted = errors.New("clusterkit: not started")
	// ErrListen means HTTPAddr could not be bound (for example, the port is busy).
	ErrListen = errors.New("clusterkit: cannot listen")
	// ErrNotReady means no partition table has been committed yet.
	ErrNotReady = errors.New("clusterkit: no partition table yet")
	// ErrStartTimeout means the node did not become ready within StartTimeout.
	ErrStartTimeout = errors.New("clusterkit: start timed out")
	// ErrJoinRefused means the cluster refused this node for a reason retrying
	// cannot fix (invalid ID or address, configuration mismatch, another
	// process with this ID, an address that answers as another node).
	ErrJoinRefused = errors.New("clusterkit: join refused")
	// ErrNotLeader means the operation needs the Raft leader.
	ErrNotLeader = raft.ErrNotLeader
	// ErrNoLeader means no leader is known: nothing can commit now.
	ErrNoLeader = errors.New("clusterkit: no known leader")
	// ErrOutcomeUnknown means a write may or may not have been committed: the
	// leader lost leadership with it in its log, or the connection to the
	// leader failed after the request was sent. Read the state back (or use
	// compare-and-set) before retrying a change that must not happen twice.
	ErrOutcomeUnknown = actors.ErrOutcomeUnknown
	// ErrForwardRefused means the leader refused a write this node
	// forwarded before it reached its log (most often a token it does not
	// accept: a rotation step skipped on some node): nothing was committed.
	ErrForwardRefused = actors.ErrForwardRefused
	// ErrInvalidTarget means TransferLeadership's target is not another
	// voter, or there is no other voter to hand leadership to.
	ErrInvalidTarget = errors.New("clusterkit: invalid leadership target")
	// ErrSlowConsumer ends an Events iteration whose consumer fell more
	// than its buffer behind (the message names the last seq it got).
	ErrSlowConsumer = errors.New("clusterkit: event consumer too slow")
	// ErrTimeout means an operation did not complete in time.
	ErrTimeout = errors.New("clusterkit: timed out")
	// ErrDataDir means the data directory is unusable (another node's, corrupt).
	ErrDataDir = errors.New("clusterkit: unusable data directory")
	// ErrClusterMismatch means the data directory belongs to another cluster
	// than the one the node was asked to join (another cluster ID): the node
	// refuses to start instead of mixing two clusters' state. The message
	// names both cluster IDs.
	ErrClusterMismatch = raftfsm.ErrClusterMismatch
	// ErrConfigMismatch means an explicit option disagrees with the cluster's committed configuration.
	ErrConfigMismatch = raftfsm.ErrConfigMismatch
	// ErrUnknownNode means the node ID is not a member of the cluster.
	ErrUnknownNode = raftfsm.ErrUnknownNode
	// ErrNoHolder refuses a Drain that would leave no member to hold the
	// partitions (every other member drained or of weight 0).
	ErrNoHolder = raftfsm.ErrNoHolder
	// ErrStaleTable means the table changed while a proposal was computed.
	ErrStaleTable = raftfsm.ErrStaleTable
	// ErrVersionMismatch means a compare-and-set saw another version.
	ErrVersionMismatch = raftfsm.ErrVersionMismatch
	// ErrKeyNotFound means a custom-data key does not exist.
	ErrKeyNotFound = raftfsm.ErrKeyNotFound
	// ErrInvalidKey means a custom-data key is empty, longer than 1024 bytes
	// or not UTF-8.
	ErrInvalidKey = raftfsm.ErrInvalidKey
	// ErrValueTooLarge means a custom-data value exceeds 1 MiB.
	ErrValueTooLarge = raftfsm.ErrValueTooLarge
	// ErrNotOwner is returned by MarkReady for a partition this node does
	// not own.
	ErrNotOwner = errors.New("clusterkit: this node does not own the partition")
	// ErrInvalidPartition means a partition ID is not "partition-<n>" with
	// n below the partition count.
	ErrInvalidPartition = errors.New("clusterkit: invalid partition")
	// ErrCallbackStuck is returned by Stop when an event callback did not
	// return within CallbackStopTimeout. The node is stopped all the same;
	// the error names each such callback, how long it had been running and
	// the seq of its event. Go cannot stop the callback: it is abandoned and
	// keeps running until it returns.
	ErrCallbackStuck = errors.New("clusterkit: event callback did not return")
)

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
