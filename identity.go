package clusterkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/nodefile"
	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// membershipRejoining is the membership state of a node that found out it was
// removed and is rejoining as a new life (it reports not ready, reason
// "removed", meanwhile).
const membershipRejoining = "rejoining"

// membership is this node's own membership as every surface reports it
// (GET /ready, /health/detailed, metrics): the state actor's record, with
// the committed view ahead of it (a registration applied but not yet seen
// by the actor is already "member", with its incarnation).
func (ck *ClusterKit) membership() actors.Membership {
	m := ck.life.Status()
	switch m.State {
	case actors.MemberRemoved, actors.MemberFenced, actors.MemberRefused:
		return m
	}
	v := ck.fsm.View()
	if ck.registered(v) {
		n, _ := v.Member(ck.opts.NodeID)
		return actors.Membership{State: actors.MemberActive, Incarnation: n.Incarnation}
	}
	if ck.life.Admitted() != 0 {
		return actors.Membership{State: membershipRejoining}
	}
	return actors.Membership{State: actors.MemberJoining}
}

// maxPingWait bounds how long a ping with a wait index may wait for the log.
const maxPingWait = 30 * time.Second

// ping answers who this node is (its life's nonce and incarnation, its
// cluster) and how far its Raft log is: autopilot's server stats, and with
// waitIndex admission's proof that this node takes the log.
func (ck *ClusterKit) ping(ctx context.Context, waitIndex uint64) *messages.PingResponse {
	resp := &messages.PingResponse{NodeId: ck.opts.NodeID, ClusterName: ck.opts.ClusterName, ClusterId: ck.ClusterID(),
		Nonce: ck.life.Nonce(), Incarnation: ck.membership().Incarnation, LastContactNanos: -1}
	r := ck.raft
	if r == nil {
		return resp
	}
	if waitIndex > 0 && r.LastIndex() < waitIndex {
		ctx, cancel := context.WithTimeout(ctx, maxPingWait)
		defer cancel()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for r.LastIndex() < waitIndex {
			select {
			case <-ctx.Done():
				return ck.raftProgress(resp)
			case <-tick.C:
			}
		}
	}
	return ck.raftProgress(resp)
}

// raftProgress fills resp with this node's Raft state.
func (ck *ClusterKit) raftProgress(resp *messages.PingResponse) *messages.PingResponse {
	r := ck.raft
	st := r.Stats()
	resp.RaftState = r.State().String()
	resp.LastIndex = r.LastIndex()
	resp.LastTerm, _ = strconv.ParseUint(st["last_log_term"], 10, 64)
	switch last := r.LastContact(); {
	case r.State().String() == "Leader":
		resp.LastContactNanos = 0
	case !last.IsZero():
		resp.LastContactNanos = int64(time.Since(last))
	}
	return resp
}

// memberStatus says what this node has committed about node id: how a node
// that no leader talks to finds out it was removed or replaced.
func (ck *ClusterKit) memberStatus(id string) *messages.MemberStatusResponse {
	v := ck.fsm.View()
	resp := &messages.MemberStatusResponse{ClusterId: v.ClusterID(), NodeId: ck.opts.NodeID, AppliedIndex: ck.fsm.AppliedIndex()}
	if r := ck.raft; r != nil {
		addr, lid := r.LeaderWithID()
		resp.LeaderId, resp.LeaderAddress = string(lid), string(addr)
	}
	if m, ok := v.Member(id); ok {
		nonce, _ := v.Nonce(id)
		resp.Member = &messages.Member{Id: m.ID, Name: m.Name, Address: m.IP, Incarnation: m.Incarnation, Nonce: nonce, Voter: m.Voter}
	} else if d, ok := v.Departed(id); ok {
		resp.Departed = d.Record()
	}
	return resp
}

// seeds are the join addresses, without this node's own address.
func (ck *ClusterKit) seeds() []string {
	var out []string
	for _, a := range ck.opts.JoinAddrs {
		if a != "" && a != ck.advertise && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// knownPeers are the addresses of the other servers in r's persisted
// configuration, without those already in seeds.
func knownPeers(r *raft.Raft, self, advertise string, seeds []string) []string {
	f := r.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		addr := string(s.Address)
		if string(s.ID) != self && addr != advertise && addr != "" && !slices.Contains(seeds, addr) && !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return out
}

// loadIdentity reads the node file and the delivery progress of the data
// directory (nothing without one). The incarnation is not chosen here: the
// cluster assigns one to every life when it admits it.
func (ck *ClusterKit) loadIdentity() error {
	if ck.opts.DataDir == "" {
		return nil
	}
	if err := os.MkdirAll(ck.opts.DataDir, 0o750); err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	f, err := nodefile.Open(ck.opts.DataDir, ck.opts.NodeID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	pf, rec, err := nodefile.OpenProgress(ck.opts.DataDir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	ck.progress = pf
	ck.identity = f
	ck.lastAlive = max(f.LastAliveUnixNano, rec.AliveUnixNano)
	// node.json held the delivery record before the progress file did.
	ck.delivered = actors.Seq{Index: rec.Index, Sub: rec.Sub}
	if old := (actors.Seq{Index: f.LastDeliveredIndex, Sub: f.LastDeliveredSub}); ck.delivered.Less(old) {
		ck.delivered = old
	}
	ck.lastSeq.Seq = ck.delivered
	return nil
}

// ClusterID returns the ID of the cluster this node belongs to: the
// committed one, or the one its data directory recorded ("" for a node that
// has not joined yet).
func (ck *ClusterKit) ClusterID() string {
	if id := ck.fsm.View().ClusterID(); id != "" {
		return id
	}
	ck.identityMu.Lock()
	defer ck.identityMu.Unlock()
	return ck.identity.ClusterID
}

// lastIncarnation is the incarnation this node was last admitted with, in
// this process or (from the node file) in the previous one.
func (ck *ClusterKit) lastIncarnation() uint64 {
	if inc := ck.life.Admitted(); inc != 0 {
		return inc
	}
	ck.identityMu.Lock()
	defer ck.identityMu.Unlock()
	return ck.identity.Incarnation
}

// membershipChanged is told (by the state actor) every change of this
// node's own membership. Admission is recorded in the node file: the
// cluster ID, so the directory never serves another cluster, and the
// incarnation, so a stale copy of this process can be fenced.
func (ck *ClusterKit) membershipChanged(m actors.Membership) {
	if m.State != actors.MemberActive || ck.opts.DataDir == "" {
		return
	}
	id := ck.fsm.View().ClusterID()
	ck.identityMu.Lock()
	f := ck.identity
	if f.Incarnation == m.Incarnation && (id == "" || f.ClusterID == id) {
		ck.identityMu.Unlock()
		return
	}
	f.Incarnation = m.Incarnation
	if id != "" {
		f.ClusterID = id
	}
	ck.identity = f
	ck.identityMu.Unlock()
	// A small atomic rename, a few times per process life at most.
	if err := nodefile.Write(ck.opts.DataDir, f); err != nil {
		ck.log.Error("cannot record the node's identity in its data directory", "error", err)
	}
}

// checkSeedsCluster refuses to start a node whose data directory belongs to
// another cluster than the one its join addresses lead to. It asks the join
// addresses (in parallel, briefly): one that answers for this node's cluster
// settles it; if only other clusters answer, Start fails naming both IDs. A
// node whose seeds are all down starts as before.
func (ck *ClusterKit) checkSeedsCluster(ctx context.Context) error {
	ours := ck.ClusterID()
	seeds := ck.seeds()
	if ours == "" || len(seeds) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, seedCheckTimeout)
	defer cancel()
	type answer struct {
		addr, cluster string
	}
	answers := make(chan answer, len(seeds))
	for _, addr := range seeds {
		go func() {
			pong, err := ck.peers.Ping(ctx, addr, &messages.PingRequest{})
			var remote *rpc.RemoteError
			switch {
			case err == nil:
				answers <- answer{addr, pong.GetClusterId()}
			case errors.As(err, &remote) && remote.Code == "cluster_mismatch":
				answers <- answer{addr, remote.ClusterID}
			default:
				answers <- answer{addr, ""}
			}
		}()
	}
	var foreign []answer
	for range seeds {
		a := <-answers
		switch a.cluster {
		case ours:
			return nil
		case "":
		default:
			foreign = append(foreign, a)
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the data directory %s belongs to cluster %s, but the join address %s leads to cluster %s: a node never moves between clusters (start it with an empty data directory to join that cluster)",
		ErrClusterMismatch, ck.opts.DataDir, ours, foreign[0].addr, foreign[0].cluster)
}

// seedCheckTimeout bounds checkSeedsCluster.
const seedCheckTimeout = time.Second

// checkDataDir refuses persisted state that is damaged or belongs to another
// cluster, before raft opens it: a clear error instead of a hang, a panic or
// a silently different cluster.
func (ck *ClusterKit) checkDataDir(stores *raftfsm.Stores) error {
	o := ck.opts
	start := time.Now()
	sum, err := raftfsm.CheckStores(stores)
	if err != nil {
		return fmt.Errorf("%w: %s: %w (restore it from a backup, or move it away to start this node afresh and let it rejoin)", ErrDataDir, o.DataDir, err)
	}
	ck.log.Debug("data directory checked", "snapshot_index", sum.SnapshotIndex, "first_index", sum.FirstIndex,
		"last_index", sum.LastIndex, "took", time.Since(start).Round(time.Microsecond))
	if c := sum.Config; c != nil {
		ck.identityMu.Lock()
		recorded := ck.identity.ClusterID
		if recorded == "" {
			ck.identity.ClusterID = c.GetClusterId() // written by an older version: adopt it
		}
		ck.identityMu.Unlock()
		if id := c.GetClusterId(); recorded != "" && id != "" && id != recorded {
			return fmt.Errorf("%w: %s holds the Raft state of cluster %s but its node file says cluster %s: the directory mixes two clusters' files",
				ErrClusterMismatch, o.DataDir, id, recorded)
		}
		if c.GetClusterName() != o.ClusterName {
			return fmt.Errorf("%w: %s holds cluster %q, this node is configured for %q", ErrDataDir, o.DataDir, c.GetClusterName(), o.ClusterName)
		}
		if o.PartitionCount != 0 && uint32(o.PartitionCount) != c.GetPartitionCount() {
			return fmt.Errorf("%w: PartitionCount is %d but the cluster has %d (in %s)", ErrConfigMismatch, o.PartitionCount, c.GetPartitionCount(), o.DataDir)
		}
		if o.ReplicationFactor != 0 && uint32(o.ReplicationFactor) != c.GetReplicationFactor() {
			return fmt.Errorf("%w: ReplicationFactor is %d but the cluster has %d (in %s)", ErrConfigMismatch, o.ReplicationFactor, c.GetReplicationFactor(), o.DataDir)
		}
	}
	return nil
}

// newClusterID mints a cluster ID: 128 random bits, as 32 hex digits.
func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
