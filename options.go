package clusterkit

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// Defaults used when the corresponding option is zero.
const (
	DefaultPartitionCount    = 64
	DefaultReplicationFactor = 3
	DefaultMaxVoters         = 5
	DefaultClusterName       = "clusterkit"
	DefaultRebalanceDelay    = 100 * time.Millisecond
	DefaultStartTimeout      = 30 * time.Second
	DefaultApplyTimeout      = 10 * time.Second
	// DefaultHandoffTimeout bounds one partition copy: long enough for a
	// large partition over a busy network, short enough that a copy stuck
	// on a dead source does not hold a rebalance for ever.
	DefaultHandoffTimeout = 5 * time.Minute
	// DefaultReplicaDelay covers a process restart by a supervisor
	// (systemd, Kubernetes) after failure detection removed the node: it
	// takes its slots back and no other node copies its partitions in the
	// meantime (the returning node reloads them itself).
	DefaultReplicaDelay = 30 * time.Second
	// DefaultMaxMovesPerNode keeps a node serving while it copies: a few
	// partitions at a time in and out of it.
	DefaultMaxMovesPerNode = 4
	// DefaultWeight is a node's weight unless Options.Weight says otherwise.
	DefaultWeight = 1
	// WeightNone as Options.Weight makes a node hold no partition (weight
	// 0 in the cluster): 0 itself is Go's zero value, which means "unset".
	WeightNone = -1
	// DefaultMaxMovesInFlightFraction is Akka Cluster Sharding's
	// rebalance-relative-limit: a tenth of the partitions at once.
	DefaultMaxMovesInFlightFraction = 0.1
	// DefaultMinReadyReplicas: a partition left with one ready copy is
	// re-replicated at once, whatever ReplicaDelay says.
	DefaultMinReadyReplicas = 2
	rpcTimeout              = 5 * time.Second
)

// KeyHash selects the key -> partition function, fixed cluster-wide at bootstrap.
type KeyHash uint8

const (
	// KeyHashDefault uses the cluster's algorithm (MD5 when bootstrapping).
	KeyHashDefault KeyHash = iota
	// KeyHashMD5 is BigEndian.Uint32(md5(key)[0:4]) % PartitionCount, the
	// reference contract ("user:123" -> "partition-48" with 64 partitions).
	KeyHashMD5
	// KeyHashXXH64 is xxhash64(key) % PartitionCount: about 15 times faster.
	KeyHashXXH64
)

// String is the name used by /cluster's hash_config and by flags: "md5",
// "xxh64", or "" for KeyHashDefault.
func (k KeyHash) String() string {
	switch k {
	case KeyHashMD5:
		return "md5"
	case KeyHashXXH64:
		return "xxh64"
	case KeyHashDefault:
		return ""
	}
	return fmt.Sprintf("KeyHash(%d)", uint8(k))
}

// MarshalText returns String, so a KeyHash can be a flag (flag.TextVar) or
// a configuration field.
func (k KeyHash) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses "md5", "xxh64", or "" (the cluster's hash).
func (k *KeyHash) UnmarshalText(b []byte) error {
	switch string(b) {
	case "":
		*k = KeyHashDefault
	case "md5":
		*k = KeyHashMD5
	case "xxh64":
		*k = KeyHashXXH64
	default:
		return fmt.Errorf("key hash %q: want md5 or xxh64", b)
	}
	return nil
}

func (k KeyHash) proto() messages.KeyHash {
	if k == KeyHashXXH64 {
		return messages.KeyHash_KEY_HASH_XXH64
	}
	return messages.KeyHash_KEY_HASH_MD5
}

// HealthCheckConfig configures failure detection (the reference's field
// names). The leader probes every other member for liveness every Interval,
// each probe waiting at most Timeout; after FailureThreshold misses in a row
// the member is marked suspect, and if it stays unreachable for RemovalGrace
// more it is removed ("health_check_failure"). A zero value means the
// defaults, with checking enabled; zero fields take their default.
type HealthCheckConfig struct {
	Interval         time.Duration
	Timeout          time.Duration
	FailureThreshold int
	// RemovalGrace is how long a suspect stays before it is removed.
	RemovalGrace time.Duration
	// Disable turns failure detection off. (There is no Enabled field, as
	// in the earlier library: the zero config means "defaults, on".)
	Disable bool
}

// Budget is the longest a crashed member stays in the cluster: the misses
// that make it suspect, then the removal grace.
func (h HealthCheckConfig) Budget() time.Duration {
	return time.Duration(h.FailureThreshold)*h.Interval + h.Timeout + h.RemovalGrace
}

// AutoRejoin says what a node does when it finds out the cluster removed it
// while it was running (it was paused or cut off for longer than the removal
// grace: no leader talks to a node outside the configuration, so it learns
// it from another member).
type AutoRejoin uint8

const (
	// AutoRejoinOn (the default): after a removal by failure detection the
	// node rejoins as a new life, with a NodeRejoin on every node. A
	// graceful leave and an admin's removal are final for the process.
	AutoRejoinOn AutoRejoin = iota
	// AutoRejoinOff: the node stays out, reports itself not ready (reason
	// "removed") and says so in its log; restart it to rejoin.
	AutoRejoinOff
)

// DefaultVoterStabilization is how long a joining node must be healthy
// (caught up, in recent contact with the leader) before it becomes a voter.
const DefaultVoterStabilization = 2 * time.Second

// RaftTimings tunes Raft. Zero fields take the defaults in DefaultOptions.
type RaftTimings struct {
	// HeartbeatTimeout is how long a follower waits for the leader before
	// it stands for election; ElectionTimeout bounds a candidate's wait
	// and must be at least HeartbeatTimeout (Raft's rule: Validate checks
	// it).
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without hearing
	// from a quorum; it is capped at HeartbeatTimeout (Raft's rule), so
	// shortening the heartbeat shortens it too.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest a commit waits to be batched with others.
	CommitTimeout time.Duration
	// SnapshotInterval and SnapshotThreshold control how often snapshots are taken.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
}

// Options configures a node. Only NodeID and HTTPAddr are required.
type Options struct {
	// NodeID identifies the node: letters, digits, '.', '_', '-'; stable across restarts.
	NodeID string
	// HTTPAddr is the one address the node listens on (Raft and HTTP share it), e.g. ":8080".
	HTTPAddr string
	// NodeName is a human-readable name; defaults to NodeID.
	NodeName string
	// AdvertiseAddr is what peers dial; defaults to HTTPAddr when it has a
	// host, else to this machine's private IP with HTTPAddr's port.
	AdvertiseAddr string
	// JoinAddrs are members to join through (the earlier library's
	// JoinAddr is JoinAddrs with one address): any member works
	// (non-leaders forward to the leader); the node retries with backoff
	// until it is in, ctx ends or StartTimeout passes. A node with no state
	// and no join address bootstraps a new cluster (there is no Bootstrap
	// option: it is never needed).
	JoinAddrs []string

	// ClusterName names the cluster; default "clusterkit".
	ClusterName string
	// PartitionCount and ReplicationFactor are fixed cluster-wide at bootstrap.
	// 0 means "the cluster's value" (64 and 3 when bootstrapping); a non-zero
	// value that disagrees with the committed one fails Start.
	PartitionCount    int
	ReplicationFactor int
	// KeyHash selects the key hash (fixed at bootstrap).
	KeyHash KeyHash
	// MaxVoters caps the Raft voters (default 5); other members are non-voters.
	MaxVoters int
	// VoterStabilization is how long a non-voter must be healthy (its log
	// within reach of the leader's, recent contact with the leader, Raft's
	// heartbeats to it succeeding) before the leader promotes it to voter;
	// a voter unhealthy for twice as long is replaced or demoted. Default
	// DefaultVoterStabilization. Every joiner starts as a non-voter.
	VoterStabilization time.Duration
	// AutoRejoin: what a node does on finding out it was removed.
	AutoRejoin AutoRejoin

	// DataDir holds the Raft log, snapshots and the node file; empty keeps
	// everything in memory.
	DataDir string
	// HealthCheck configures failure detection.
	HealthCheck HealthCheckConfig
	// Services maps service names to addresses, published to every node.
	Services map[string]string
	// Logger receives every log line (ClusterKit, Raft, protoactor). Default:
	// a tint text handler on stderr at Info.
	Logger *slog.Logger
	// ActorSystem hosts the node's actors; default: a new system per node.
	ActorSystem *actor.ActorSystem
	// AuthToken, when set, is the admin token: required by node-to-node
	// and mutating requests and by the Raft stream, and the token this node
	// sends to the others. Every node of a cluster must accept the token
	// every other node sends (AuthTokens makes a rotation possible).
	AuthToken string
	// AuthTokens are more admin tokens this node accepts besides AuthToken,
	// which stays the one it sends. A rotation adds the new token here on
	// every node, then makes it AuthToken everywhere (the old one moving
	// here), then drops the old one: no request fails at any step
	// (docs/operations.md, "Security"). Needs AuthToken.
	AuthTokens []string
	// ReadTokens are tokens for reads only: GET routes, the event stream
	// and the metrics. A read token on a change is refused with 403.
	// Needs AuthToken.
	ReadTokens []string
	// AuthReads requires a token (read or admin) on every route but the
	// probes (/health, /ready) and the dashboard's files, which hold no
	// cluster data. Off by default, so the quick start stays open on
	// loopback; needs a token.
	AuthReads bool
	// AuthTokenFile, when set, holds the tokens in place of AuthToken,
	// AuthTokens and ReadTokens: one per line, "read <token>" for a read
	// token and "<token>" or "admin <token>" for an admin token, the first
	// admin token being the one this node sends; blank lines and # lines
	// are skipped. The node re-reads it when it changes (checked every
	// second) and on ReloadAuth; a file that cannot be read or parsed
	// keeps the tokens in place and is logged. Start fails if it cannot be
	// loaded then.
	AuthTokenFile string
	// HTTPLimits caps what one client can cost the node's port.
	HTTPLimits HTTPLimits
	// TLSConfig, when set, serves the node's port over TLS (HTTP, Raft and
	// node-to-node requests alike) and is used to dial the other nodes, so
	// every node of a cluster needs one: Certificates (or GetCertificate)
	// to serve, RootCAs to verify the others (ServerName defaults to the
	// dialed host). Clients then use https://.
	TLSConfig *tls.Config
	// Network carries all of the node's traffic; default TCP.
	Network Network

	// RebalanceDelay debounces membership changes into one rebalance.
	RebalanceDelay time.Duration

	// Zone is this node's failure domain (a rack, an availability zone):
	// placement puts the owners of a partition in distinct zones when there
	// are enough of them, and spreads the voters over zones, so that losing
	// one zone loses no partition and keeps quorum. "" = no zone.
	Zone string
	// Weight is this node's relative capacity: its share of slots and of
	// primaries is proportional to it (default DefaultWeight). Go's zero
	// value keeps the default; WeightNone (any negative value) makes the
	// node hold nothing: it only routes. Weights above raftfsm.MaxWeight are
	// refused.
	Weight int

	// Handoff declares that the application acknowledges each partition it
	// loads: a new owner on this node is "syncing" (it may not be primary)
	// until a user actor replies PartitionReady to its PartitionChange, an
	// OnPartitionLoad callback returns nil, or MarkReady is called. Without
	// it, a new owner here is "ready" at once (the quick start's behaviour).
	Handoff bool
	// HandoffTimeout bounds one copy (default DefaultHandoffTimeout). A copy
	// that takes longer is cancelled when another owner of the partition is
	// ready (it is tried again after another HandoffTimeout), and forced
	// ready when none is (there is nobody else to copy from). Both are
	// logged, counted and announced by a PartitionChange. Leader setting.
	HandoffTimeout time.Duration
	// ReplicaDelay is how long the slots of a member that failure detection
	// removed stay reserved for it (default DefaultReplicaDelay; negative:
	// re-replicate at once). Its primaries fail over at once; its replicas
	// are re-created elsewhere only after the delay, unless a partition has
	// fewer than MinReadyReplicas ready owners. A member that comes back in
	// time takes its slots back. Leader setting.
	ReplicaDelay time.Duration
	// MinReadyReplicas (default DefaultMinReadyReplicas, capped at the
	// replication factor) is the number of ready owners below which a
	// partition is re-replicated without waiting for ReplicaDelay.
	MinReadyReplicas int
	// MaxMovesPerNode bounds the syncing copies into or out of one node
	// (default DefaultMaxMovesPerNode; negative: no limit). Leader setting.
	MaxMovesPerNode int
	// MaxMovesInFlight and MaxMovesInFlightFraction bound the syncing
	// copies in the whole cluster: the smaller of MaxMovesInFlight and
	// MaxMovesInFlightFraction × PartitionCount (at least 1), as Akka's
	// rebalance limits. 0 leaves MaxMovesInFlight unlimited; the fraction
	// defaults to DefaultMaxMovesInFlightFraction (negative: unlimited).
	MaxMovesInFlight         int
	MaxMovesInFlightFraction float64

	// StartTimeout bounds how long Start waits for the node to be ready.
	StartTimeout time.Duration
	// Raft tunes consensus timings.
	Raft RaftTimings

	// observeApplied, set only by the test harness (internal/testhook),
	// sees every entry the node applies.
	observeApplied func(*raftfsm.Applied)
}

// DefaultOptions returns the options with every default filled in except
// NodeID and HTTPAddr, which the caller must set.
func DefaultOptions() Options {
	return Options{
		ClusterName:        DefaultClusterName,
		MaxVoters:          DefaultMaxVoters,
		VoterStabilization: DefaultVoterStabilization,
		HealthCheck:        DefaultHealthCheck(),
		RebalanceDelay:     DefaultRebalanceDelay,
		HandoffTimeout:     DefaultHandoffTimeout,
		ReplicaDelay:       DefaultReplicaDelay,
		MinReadyReplicas:   DefaultMinReadyReplicas,
		MaxMovesPerNode:    DefaultMaxMovesPerNode,

		MaxMovesInFlightFraction: DefaultMaxMovesInFlightFraction,
		StartTimeout:             DefaultStartTimeout,
		Raft:                     DefaultRaftTimings(),
		HTTPLimits:               DefaultHTTPLimits(),
	}
}

// DefaultHTTPLimits returns the default limits of a node's port: an event
// stream holds a goroutine and a subscriber, so 256 per node and 16 per
// client address (a dashboard or `node watch` holds one); failed logins a
// burst of 10, then 2 a second per address (a mistyped token costs nothing,
// guessing costs half a second a guess).
func DefaultHTTPLimits() HTTPLimits {
	return HTTPLimits{MaxEventStreams: DefaultMaxEventStreams, MaxEventStreamsPerClient: DefaultMaxEventStreamsPerClient,
		AuthFailuresPerSecond: DefaultAuthFailuresPerSecond, AuthFailureBurst: DefaultAuthFailureBurst}
}

// DefaultHealthCheck returns the default failure detection: a crashed member
// is removed, and every survivor told, within about 3 s (Budget: 2.9 s), while a
// member that stops answering for less than about 1.5 s is not even suspect.
func DefaultHealthCheck() HealthCheckConfig {
	return HealthCheckConfig{Interval: 500 * time.Millisecond, Timeout: 400 * time.Millisecond,
		FailureThreshold: 3, RemovalGrace: time.Second}
}

// FastHealthCheck detects a crashed member within about one second, for
// low-latency networks that are not overloaded (probes time out after 150 ms).
func FastHealthCheck() HealthCheckConfig {
	return HealthCheckConfig{Interval: 100 * time.Millisecond, Timeout: 150 * time.Millisecond,
		FailureThreshold: 3, RemovalGrace: 300 * time.Millisecond}
}

// DefaultRaftTimings returns Raft timings for a LAN: fast elections without
// spurious ones on a loaded machine.
func DefaultRaftTimings() RaftTimings {
	return RaftTimings{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		SnapshotInterval:   30 * time.Second,
		SnapshotThreshold:  4096,
	}
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.NodeName == "" {
		o.NodeName = o.NodeID
	}
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	if o.MaxVoters == 0 {
		o.MaxVoters = DefaultMaxVoters
	}
	if o.VoterStabilization == 0 {
		o.VoterStabilization = DefaultVoterStabilization
	}
	switch hc, d := &o.HealthCheck, DefaultHealthCheck(); {
	case *hc == (HealthCheckConfig{}):
		*hc = d
	case hc.Disable:
	default:
		// A partly filled config is a tuned one, not a disabled one: only
		// Disable turns detection off.
		if hc.Interval == 0 {
			hc.Interval = d.Interval
		}
		if hc.Timeout == 0 {
			hc.Timeout = d.Timeout
		}
		if hc.FailureThreshold == 0 {
			hc.FailureThreshold = d.FailureThreshold
		}
		if hc.RemovalGrace == 0 {
			hc.RemovalGrace = d.RemovalGrace
		}
	}
	if o.RebalanceDelay == 0 {
		o.RebalanceDelay = DefaultRebalanceDelay
	}
	if o.HandoffTimeout == 0 {
		o.HandoffTimeout = DefaultHandoffTimeout
	}
	if o.ReplicaDelay == 0 {
		o.ReplicaDelay = DefaultReplicaDelay
	}
	if o.MinReadyReplicas == 0 {
		o.MinReadyReplicas = DefaultMinReadyReplicas
	}
	if o.Weight == 0 {
		o.Weight = DefaultWeight
	}
	if o.MaxMovesPerNode == 0 {
		o.MaxMovesPerNode = DefaultMaxMovesPerNode
	}
	if o.MaxMovesInFlightFraction == 0 {
		o.MaxMovesInFlightFraction = DefaultMaxMovesInFlightFraction
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	d := DefaultRaftTimings()
	r := &o.Raft
	for _, f := range []struct{ v, def *time.Duration }{
		{&r.HeartbeatTimeout, &d.HeartbeatTimeout}, {&r.ElectionTimeout, &d.ElectionTimeout},
		{&r.LeaderLeaseTimeout, &d.LeaderLeaseTimeout}, {&r.CommitTimeout, &d.CommitTimeout},
		{&r.SnapshotInterval, &d.SnapshotInterval},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	l, dl := &o.HTTPLimits, DefaultHTTPLimits()
	if l.MaxEventStreams == 0 {
		l.MaxEventStreams = dl.MaxEventStreams
	}
	if l.MaxEventStreamsPerClient == 0 {
		l.MaxEventStreamsPerClient = dl.MaxEventStreamsPerClient
	}
	if l.AuthFailuresPerSecond == 0 {
		l.AuthFailuresPerSecond = dl.AuthFailuresPerSecond
	}
	if l.AuthFailureBurst == 0 {
		l.AuthFailureBurst = dl.AuthFailureBurst
	}
	if r.SnapshotThreshold == 0 {
		r.SnapshotThreshold = d.SnapshotThreshold
	}
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		// A lease longer than the heartbeat is what DefaultOptions plus a
		// shorter heartbeat gives: Raft requires lease <= heartbeat, so
		// the lease follows the heartbeat (documented on RaftTimings).
		r.LeaderLeaseTimeout = r.HeartbeatTimeout
	}
	return o
}

// Validate reports every problem in o at once (wrapped in ErrInvalidOptions),
// or nil.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if o.NodeID == "" {
		bad("NodeID is required")
	} else if err := raftfsm.ValidateNodeID(o.NodeID); err != nil {
		bad("NodeID: %v", err)
	}
	if len(o.Zone) > raftfsm.MaxZoneLen {
		bad("Zone is %d bytes, at most %d", len(o.Zone), raftfsm.MaxZoneLen)
	} else if strings.ContainsFunc(o.Zone, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		bad("Zone %q has a space or a control character", o.Zone)
	}
	if o.Weight > raftfsm.MaxWeight {
		bad("Weight %d is above %d", o.Weight, raftfsm.MaxWeight)
	}
	if o.HTTPAddr == "" {
		bad("HTTPAddr is required (for example \":8080\")")
	} else if _, port, err := net.SplitHostPort(o.HTTPAddr); err != nil {
		bad("HTTPAddr %q is not host:port: %v", o.HTTPAddr, err)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("HTTPAddr %q has an invalid port", o.HTTPAddr)
	}
	if o.AdvertiseAddr != "" {
		if err := raftfsm.ValidateAddress(o.AdvertiseAddr); err != nil {
			bad("AdvertiseAddr: %v", err)
		}
	}
	for _, a := range o.JoinAddrs {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("join address %q is not host:port: %v", a, err)
		}
	}
	if len(o.NodeName) > 256 {
		bad("NodeName is longer than 256 characters")
	}
	if len(o.ClusterName) > 128 {
		bad("ClusterName is longer than 128 characters")
	}
	if o.PartitionCount < 0 || o.PartitionCount > raftfsm.MaxPartitions {
		bad("PartitionCount %d is outside [1, %d] (0 = default)", o.PartitionCount, raftfsm.MaxPartitions)
	}
	if o.ReplicationFactor < 0 || o.ReplicationFactor > raftfsm.MaxReplicationFactor {
		bad("ReplicationFactor %d is outside [1, %d] (0 = default)", o.ReplicationFactor, raftfsm.MaxReplicationFactor)
	}
	if o.MaxVoters < 0 || o.MaxVoters > raftfsm.MaxVotersLimit {
		bad("MaxVoters %d is outside [1, %d] (0 = default)", o.MaxVoters, raftfsm.MaxVotersLimit)
	}
	if o.KeyHash > KeyHashXXH64 {
		bad("KeyHash %d is unknown", o.KeyHash)
	}
	if o.AutoRejoin > AutoRejoinOff {
		bad("AutoRejoin %d is unknown", o.AutoRejoin)
	}
	if o.VoterStabilization < 0 {
		bad("VoterStabilization must not be negative")
	}
	if hc := o.HealthCheck; !hc.Disable {
		if hc.Interval < 0 {
			bad("HealthCheck.Interval must be positive")
		}
		if hc.Timeout < 0 {
			bad("HealthCheck.Timeout must be positive")
		}
		if hc.FailureThreshold < 0 {
			bad("HealthCheck.FailureThreshold must be at least 1")
		}
		if hc.RemovalGrace < 0 {
			bad("HealthCheck.RemovalGrace must not be negative")
		}
		if hc.Interval > 0 && hc.Interval < 10*time.Millisecond {
			bad("HealthCheck.Interval must be at least 10ms")
		}
	}
	if len(o.Services) > raftfsm.MaxServices {
		bad("at most %d Services", raftfsm.MaxServices)
	}
	for name, addr := range o.Services {
		switch {
		case name == "" || len(name) > 256:
			bad("service name %q must be 1 to 256 characters", name)
		case addr == "" || len(addr) > 256:
			bad("service %q: address must be 1 to 256 characters", name)
		case !strings.Contains(addr, ":"):
			bad("service %q: address %q is not host:port or :port", name, addr)
		}
	}
	if o.MinReadyReplicas < 0 || o.MinReadyReplicas > raftfsm.MaxReplicationFactor {
		bad("MinReadyReplicas %d is outside [0, %d]", o.MinReadyReplicas, raftfsm.MaxReplicationFactor)
	}
	if o.MaxMovesInFlight < 0 {
		bad("MaxMovesInFlight must not be negative (0: no absolute limit)")
	}
	if f := o.MaxMovesInFlightFraction; f > 1 || f != f {
		bad("MaxMovesInFlightFraction %v must be at most 1 (negative: no limit)", f)
	}
	errs = append(errs, o.validateAuth()...)
	if c := o.TLSConfig; c != nil && len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
		bad("TLSConfig has no certificate (set Certificates or GetCertificate)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RebalanceDelay", o.RebalanceDelay}, {"StartTimeout", o.StartTimeout}, {"HandoffTimeout", o.HandoffTimeout},
		{"Raft.HeartbeatTimeout", o.Raft.HeartbeatTimeout}, {"Raft.ElectionTimeout", o.Raft.ElectionTimeout},
		{"Raft.LeaderLeaseTimeout", o.Raft.LeaderLeaseTimeout}, {"Raft.CommitTimeout", o.Raft.CommitTimeout},
		{"Raft.SnapshotInterval", o.Raft.SnapshotInterval},
	} {
		if d.v < 0 {
			bad("%s must not be negative", d.name)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Raft.HeartbeatTimeout", o.Raft.HeartbeatTimeout}, {"Raft.ElectionTimeout", o.Raft.ElectionTimeout}} {
		if d.v > 0 && d.v < 5*time.Millisecond {
			bad("%s must be at least 5ms", d.name)
		}
	}
	// What hashicorp/raft itself checks at Start, on the settings as
	// defaults complete them, so that Start never refuses what Validate
	// accepted. (A missing NodeID is reported above, not again.)
	rc := raftConfigOf(o.withDefaults(), nil)
	rc.LocalID = "validate"
	if err := raft.ValidateConfig(rc); err != nil {
		bad("Raft: %v", err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
}
