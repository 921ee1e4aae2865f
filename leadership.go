package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// Leadership transfer failure codes (TransferLeadershipResponse.Code).
const (
	transferNotLeader     = "not_leader"
	transferUnavailable   = "unavailable"
	transferInvalidTarget = "invalid_target"
	transferNoOtherVoter  = "no_other_voter"
	transferFailed        = "transfer_failed"
	transferTimeout       = "timeout"
)

// TransferLeadership hands Raft leadership to the voter target ("" lets Raft
// pick the most up-to-date voter) and returns the new leader's ID once the
// old leader has heard from it. Any node may call it: a follower forwards the
// request to the leader. Use it before maintenance on the leader's machine:
// a planned hand-over costs milliseconds, a crash an election timeout. It
// fails with ErrInvalidTarget when target is not another voter (or there is
// none), and with an error wrapping ctx.Err() when ctx ends first.
func (ck *ClusterKit) TransferLeadership(ctx context.Context, target string) (string, error) {
	if !ck.running.Load() {
		return "", ErrNotStarted
	}
	resp := ck.transferLeadership(ctx, &messages.TransferLeadershipRequest{TargetId: target})
	if resp.GetCode() == "" {
		return resp.GetLeaderId(), nil
	}
	if err := ctx.Err(); err != nil {
		// The caller's context ended: that, not the transfer's own
		// timeout, is why it gave up (the transfer may still complete).
		return resp.GetLeaderId(), fmt.Errorf("%w: %s", err, resp.GetError())
	}
	var base error
	switch resp.GetCode() {
	case transferNotLeader, transferUnavailable:
		base = ErrNotLeader
	case transferInvalidTarget, transferNoOtherVoter:
		base = ErrInvalidTarget
	case transferTimeout:
		base = ErrTimeout
	default:
		base = errors.New("clusterkit: leadership transfer failed")
	}
	return resp.GetLeaderId(), fmt.Errorf("%w: %s", base, resp.GetError())
}

// transferLeadership runs the transfer on the leader, or forwards it there
// once (a forwarded request is never forwarded again).
func (ck *ClusterKit) transferLeadership(ctx context.Context, req *messages.TransferLeadershipRequest) *messages.TransferLeadershipResponse {
	fail := func(code, format string, args ...any) *messages.TransferLeadershipResponse {
		return &messages.TransferLeadershipResponse{Code: code, Error: fmt.Sprintf(format, args...)}
	}
	r := ck.raft
	if r == nil {
		return fail(transferUnavailable, "node is not running")
	}
	if r.State() != raft.Leader {
		addr, id := r.LeaderWithID()
		if req.GetForwarded() || id == "" {
			return fail(transferNotLeader, "this node is not the leader and knows no leader")
		}
		fwd := proto.Clone(req).(*messages.TransferLeadershipRequest)
		fwd.Forwarded = true
		ctx, cancel := context.WithTimeout(ctx, 2*ck.opts.Raft.ElectionTimeout+rpcTimeout)
		defer cancel()
		resp, err := ck.peers.TransferLeadership(ctx, string(addr), fwd)
		if err != nil {
			return fail(transferUnavailable, "forward to leader %s: %v", id, err)
		}
		return resp
	}

	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return fail(transferFailed, "read raft configuration: %v", err)
	}
	var target *raft.Server
	others := 0
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter && string(srv.ID) != ck.opts.NodeID {
			others++
		}
		if string(srv.ID) == req.GetTargetId() {
			target = &srv
		}
	}
	switch {
	case req.GetTargetId() == ck.opts.NodeID:
		// Already there: nothing to do, and not an error.
		return &messages.TransferLeadershipResponse{LeaderId: ck.opts.NodeID}
	case req.GetTargetId() != "" && (target == nil || target.Suffrage != raft.Voter):
		return fail(transferInvalidTarget, "%q is not a voter of this cluster", req.GetTargetId())
	case others == 0:
		return fail(transferNoOtherVoter, "no other voter to hand leadership to")
	}

	start := time.Now()
	var fut raft.Future
	if target != nil {
		fut = r.LeadershipTransferToServer(target.ID, target.Address)
	} else {
		fut = r.LeadershipTransfer()
	}
	if err := fut.Error(); err != nil {
		return fail(transferFailed, "%v", err)
	}
	// The transfer ends when this node steps down; wait until it hears from
	// the new leader, so the caller knows the cluster has one.
	deadline := time.NewTimer(2 * ck.opts.Raft.ElectionTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if _, id := r.LeaderWithID(); id != "" && string(id) != ck.opts.NodeID {
			ck.log.Info("leadership transferred", "peer", string(id), "took", time.Since(start).Round(time.Microsecond))
			return &messages.TransferLeadershipResponse{LeaderId: string(id)}
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return fail(transferTimeout, "leadership handed over but no new leader heard from within %s", 2*ck.opts.Raft.ElectionTimeout)
		case <-ctx.Done():
			return fail(transferTimeout, "%v", ctx.Err())
		}
	}
}
