package actors

import (
	"context"
	"errors"
	"net/http"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/rpc"
	"github.com/clusterkit/clusterkit/messages"
)

// A follower forwards its writes to the leader. One request per write costs
// an HTTP round trip and its CPU on both nodes: 256 writers on a follower
// made about a third of the leader's rate. The proposals that wait while
// requests are in flight go together in the next one (ProposeBatch), up to
// maxForwardBatch of them and maxForwardBytes; at most maxForwardsInFlight
// requests are in flight, so a lone writer still sends at once.
const (
	maxForwardsInFlight = 4
	maxForwardBatch     = 512
	// maxForwardBytes keeps a batch well under rpc.MaxBody: a proposal
	// larger than it (a custom-data value near 1 MiB) goes alone.
	maxForwardBytes = 1 << 20
)

// pendingForward is a proposal waiting to be forwarded to the leader.
type pendingForward struct {
	cmd     *messages.Command
	replyTo *actor.PID
	size    int
}

// forwardDone tells the state actor that a forwarding request ended.
type forwardDone struct{}

// enqueueForward queues a proposal for the leader and sends what it can.
func (s *stateActor) enqueueForward(cmd *messages.Command, replyTo *actor.PID) {
	s.fwdQueue = append(s.fwdQueue, pendingForward{cmd: cmd, replyTo: replyTo, size: proto.Size(cmd)})
	s.flushForwards()
}

// flushForwards sends the queued proposals while fewer than
// maxForwardsInFlight requests are in flight. A node that leads meanwhile
// proposes them itself.
func (s *stateActor) flushForwards() {
	for len(s.fwdQueue) > 0 {
		if s.leader {
			for _, pf := range s.fwdQueue {
				s.prop.propose(pf.cmd, pf.replyTo)
			}
			s.fwdQueue = nil
			return
		}
		if s.fwdInFlight >= maxForwardsInFlight {
			return
		}
		n, size := 0, 0
		for n < len(s.fwdQueue) && n < maxForwardBatch && (n == 0 || size+s.fwdQueue[n].size <= maxForwardBytes) {
			size += s.fwdQueue[n].size
			n++
		}
		batch := make([]pendingForward, n)
		copy(batch, s.fwdQueue)
		s.fwdQueue = s.fwdQueue[n:]
		if len(s.fwdQueue) == 0 {
			s.fwdQueue = nil // let the backing array go
		}
		s.sendForwards(batch)
	}
}

// sendForwards sends one request with batch to the leader, off the actor,
// and relays each result.
func (s *stateActor) sendForwards(batch []pendingForward) {
	addr := s.leaderAddr()
	if addr == "" || s.cfg.Peers == nil {
		for _, pf := range batch {
			if pf.replyTo != nil {
				s.system.Root.Send(pf.replyTo, &messages.ProposeResult{Code: CodeNotLeader, Error: "not the leader and no leader known"})
			}
		}
		return
	}
	s.fwdInFlight++
	system, self, peers, timeout := s.system, s.self, s.cfg.Peers, s.cfg.rpcTimeout()
	s.goWork(func(actorCtx context.Context) {
		ctx, cancel := context.WithTimeout(actorCtx, timeout)
		defer cancel()
		results := forwardBatch(ctx, peers, addr, batch)
		for i, pf := range batch {
			if pf.replyTo != nil {
				system.Root.Send(pf.replyTo, results[i])
			}
		}
		if actorCtx.Err() == nil { // a stopped actor has nothing left to send
			system.Root.Send(self, &forwardDone{})
		}
	})
}

// forwardBatch sends batch to the leader at addr: alone as a Propose, or
// together as a ProposeBatch. A leader that does not know ProposeBatch (an
// older version, during a rolling upgrade) answers 404: each proposal is
// then sent alone.
func forwardBatch(ctx context.Context, peers Peers, addr string, batch []pendingForward) []*messages.ProposeResult {
	results := make([]*messages.ProposeResult, len(batch))
	if len(batch) > 1 {
		req := &messages.ProposeBatch{Proposals: make([]*messages.Propose, len(batch))}
		for i, pf := range batch {
			req.Proposals[i] = &messages.Propose{Command: pf.cmd, Forwarded: true}
		}
		res, err := peers.ProposeBatch(ctx, addr, req)
		var re *rpc.RemoteError
		switch {
		case err == nil && len(res.GetResults()) == len(batch):
			return res.GetResults()
		case err == nil:
			err = errors.New("the leader answered a batch of the wrong length")
		case errors.As(err, &re) && re.Status == http.StatusNotFound:
			err = nil // an older leader: one at a time below
		}
		if err != nil {
			for i := range results {
				results[i] = forwardFailure(addr, err)
			}
			return results
		}
	}
	for i, pf := range batch {
		res, err := peers.Propose(ctx, addr, &messages.Propose{Command: pf.cmd, Forwarded: true})
		if err != nil {
			res = forwardFailure(addr, err)
		}
		results[i] = res
	}
	return results
}

// forwardFailure is the result of a proposal whose forwarding failed. Only a
// request that never left this node, or one the leader refused before
// reading it (401, 403, 409 cluster_mismatch, 429: the gateway answers
// those before any backend call), is known not to have reached its log.
func forwardFailure(addr string, err error) *messages.ProposeResult {
	code := CodeUnknown
	var re *rpc.RemoteError
	switch {
	case errors.Is(err, rpc.ErrNotSent):
		code = CodeNotLeader
	case errors.As(err, &re) && refusedBeforeLog(re.Status):
		code = CodeRefused
	}
	return &messages.ProposeResult{Code: code, Error: "forward to leader " + addr + ": " + err.Error()}
}

func refusedBeforeLog(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return false
}

// failForwards answers the proposals still queued when the actor stops.
func (s *stateActor) failForwards() {
	for _, pf := range s.fwdQueue {
		if pf.replyTo != nil {
			s.system.Root.Send(pf.replyTo, &messages.ProposeResult{Code: CodeNotLeader, Error: "stopping: not forwarded to the leader"})
		}
	}
	s.fwdQueue = nil
}
