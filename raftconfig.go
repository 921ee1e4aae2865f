package clusterkit

// Raft configuration, and the cluster configuration that a bootstrapping
// node commits and a joining or restarting one must agree with.

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/messages"
)

// raftConfig is this node's Raft configuration.
func (ck *ClusterKit) raftConfig(hc hclog.Logger) *raft.Config { return raftConfigOf(ck.opts, hc) }

// raftConfigOf is the Raft configuration of o (defaults filled in).
func raftConfigOf(o Options, hc hclog.Logger) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(o.NodeID)
	c.Logger = hc
	c.HeartbeatTimeout = o.Raft.HeartbeatTimeout
	c.ElectionTimeout = o.Raft.ElectionTimeout
	c.LeaderLeaseTimeout = o.Raft.LeaderLeaseTimeout
	c.CommitTimeout = o.Raft.CommitTimeout
	c.SnapshotInterval = o.Raft.SnapshotInterval
	c.SnapshotThreshold = o.Raft.SnapshotThreshold
	// Proposals are handed over by one goroutine; a buffered channel lets
	// raft batch them into fewer fsyncs.
	c.BatchApplyCh = true
	// Up to 1024 entries per log write and per AppendEntries (raft's
	// default is 64): under many concurrent writers one fsync commits them
	// all instead of a 64-entry slice of them.
	c.MaxAppendEntries = 1024
	c.NoLegacyTelemetry = true
	// A removed node keeps running (not a member, not ready) instead of
	// shutting raft down under the application's feet.
	c.ShutdownOnRemove = false
	return c
}

// clusterConfig is the configuration this node commits if it bootstraps a
// cluster, with a freshly minted cluster ID.
func (ck *ClusterKit) clusterConfig() *messages.ClusterConfig {
	o := ck.opts
	c := &messages.ClusterConfig{
		ClusterId:         newClusterID(),
		ClusterName:       o.ClusterName,
		PartitionCount:    uint32(o.PartitionCount),
		ReplicationFactor: uint32(o.ReplicationFactor),
		KeyHash:           o.KeyHash.proto(),
		MaxVoters:         uint32(o.MaxVoters),
	}
	if c.PartitionCount == 0 {
		c.PartitionCount = DefaultPartitionCount
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	return c
}

// expectConfig is what this node requires of the cluster's configuration:
// its cluster name, and each bootstrap-only setting it set explicitly (0
// adopts the cluster's value). The leader checks it at admission, this node
// at start (checkConfig): one rule, actors.ConfigMismatch.
func (ck *ClusterKit) expectConfig() *messages.ClusterConfig {
	o := ck.opts
	return &messages.ClusterConfig{ClusterName: o.ClusterName, PartitionCount: uint32(o.PartitionCount),
		ReplicationFactor: uint32(o.ReplicationFactor), KeyHash: o.KeyHash.proto(), ClusterId: ck.ClusterID(),
		MaxVoters: uint32(ck.given.MaxVoters)} // MaxVoters has a default: only the given value counts
}

// checkConfig fails when an explicit option disagrees with the committed configuration.
func (ck *ClusterKit) checkConfig(c *messages.ClusterConfig) error {
	if c == nil {
		return nil
	}
	if err := actors.ConfigMismatch(ck.expectConfig(), c, ck.opts.KeyHash != KeyHashDefault); err != nil {
		return fmt.Errorf("%w: %w (leave the option at 0 to adopt the cluster's value)", ErrConfigMismatch, err)
	}
	return nil
}
