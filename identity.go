package clusterkit

import (
	"context"
	"strconv"
	"time"

	"github.com/clusterkit/clusterkit/actors"
	"github.com/clusterkit/clusterkit/messages"
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
