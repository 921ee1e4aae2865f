package clusterkit

import (
	"context"
	"time"

	"github.com/clusterkit/clusterkit/actors"
	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// gatewayBackend adapts a node to httpgw.Backend without widening the public API.
type gatewayBackend struct{ ck *ClusterKit }

var _ httpgw.Backend = gatewayBackend{}

func (g gatewayBackend) NodeID() string      { return g.ck.opts.NodeID }
func (g gatewayBackend) View() *raftfsm.View { return g.ck.fsm.View() }
func (g gatewayBackend) Detailed() any       { return g.ck.HealthCheck() }
func (g gatewayBackend) AuthToken() string   { return g.ck.opts.AuthToken }

func (g gatewayBackend) Status() httpgw.Status {
	rs := g.ck.raftStatus()
	return httpgw.Status{Running: g.ck.running.Load(), Leader: rs.LeaderID}
}

func (g gatewayBackend) CountRequest(failed bool) {
	g.ck.httpRequests.Add(1)
	if failed {
		g.ck.httpErrors.Add(1)
	}
}

// ask sends msg to the state actor and waits for its answer (an HTTP
// handler's goroutine may wait; actors never do).
func (g gatewayBackend) ask(ctx context.Context, msg any, timeout time.Duration) (any, error) {
	state := g.ck.stateActor()
	if state == nil {
		return nil, ErrNotStarted
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	return g.ck.system.Root.RequestFuture(state, msg, timeout).Result()
}

func (g gatewayBackend) Join(ctx context.Context, req *messages.JoinRequest) *messages.JoinResponse {
	res, err := g.ask(ctx, &actors.JoinFromPeer{Req: req}, 2*DefaultApplyTimeout)
	if r, ok := res.(*messages.JoinResponse); ok && err == nil {
		return r
	}
	return &messages.JoinResponse{Code: actors.JoinNotLeader, Error: errText(err, "no answer")}
}

func (g gatewayBackend) Propose(ctx context.Context, req *messages.Propose) *messages.ProposeResult {
	res, err := g.ask(ctx, req, DefaultApplyTimeout)
	if r, ok := res.(*messages.ProposeResult); ok && err == nil {
		return r
	}
	return &messages.ProposeResult{Code: actors.CodeTimeout, Error: errText(err, "no answer")}
}

func (g gatewayBackend) Rebalance(ctx context.Context, req *messages.RebalanceRequest) *messages.ProposeResult {
	res, err := g.ask(ctx, req, DefaultApplyTimeout)
	if r, ok := res.(*messages.ProposeResult); ok && err == nil {
		return r
	}
	return &messages.ProposeResult{Code: actors.CodeTimeout, Error: errText(err, "no answer")}
}

func (g gatewayBackend) Ping() *messages.PingResponse {
	return &messages.PingResponse{NodeId: g.ck.opts.NodeID, Incarnation: g.ck.incarnation, ClusterName: g.ck.opts.ClusterName}
}

func errText(err error, fallback string) string {
	if err != nil {
		return err.Error()
	}
	return fallback
}
