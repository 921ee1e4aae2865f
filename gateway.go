package clusterkit

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/actors"
	"github.com/clusterkit/clusterkit/internal/eventlog"
	"github.com/clusterkit/clusterkit/messages"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// gatewayBackend adapts a node to httpgw.Backend without widening the public API.
type gatewayBackend struct{ ck *ClusterKit }

var _ httpgw.Backend = gatewayBackend{}

func (g gatewayBackend) NodeID() string      { return g.ck.opts.NodeID }
func (g gatewayBackend) View() *raftfsm.View { return g.ck.fsm.View() }

func (g gatewayBackend) ClusterID() string { return g.ck.ClusterID() }

func (g gatewayBackend) Status() httpgw.Status {
	rs := g.ck.raftStatus()
	st := httpgw.Status{Running: g.ck.running.Load(), State: g.ck.lifecycle(), Leader: rs.LeaderID,
		FailureTolerance: g.ck.failureTolerance(g.ck.fsm.View(), rs)}
	m := g.ck.membership()
	st.Membership = m.State
	switch m.State {
	case actors.MemberRemoved, actors.MemberFenced, actors.MemberRefused:
		st.Removal = &httpgw.Removal{Reason: m.Reason, RemovedBy: m.RemovedBy, Index: m.Index}
	case membershipRejoining:
		st.Membership = actors.MemberRemoved
		st.Removal = &httpgw.Removal{Reason: "rejoining as a new life", Rejoining: true}
	}
	return st
}

func (g gatewayBackend) CountRequest(route string, status int) {
	g.ck.httpRequests.Add(1)
	if status >= 400 {
		g.ck.httpErrors.Add(1)
	}
	g.ck.httpRequestsVec.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

func (g gatewayBackend) Metrics() prometheus.Gatherer { return g.ck.registry }
func (g gatewayBackend) Events() *eventlog.Log        { return g.ck.eventLog.Load() }

func (g gatewayBackend) Consensus() httpgw.Consensus { return g.ck.raftStatus() }

// Detailed is GET /health/detailed in its wire type. The facade's type and
// the wire type have the same fields, so a conversion (which the compiler
// refuses the day they differ) keeps them in step.
func (g gatewayBackend) Detailed() *client.DetailedHealth {
	h := client.DetailedHealth(*g.ck.HealthCheck())
	h.VoterIDs, h.NonVoterIDs, h.UnhealthyNodeIDs = nonNil(h.VoterIDs), nonNil(h.NonVoterIDs), nonNil(h.UnhealthyNodeIDs)
	return &h
}

// MetricsJSON is GET /metrics?format=json in its wire type (a conversion, as
// for Detailed).
func (g gatewayBackend) MetricsJSON() *client.Metrics {
	m := client.Metrics(*g.ck.GetMetrics())
	return &m
}

// nonNil keeps a JSON list a list: a nil slice would encode as null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (g gatewayBackend) RebalanceNow(ctx context.Context) error {
	return httpError(g.ck.RebalancePartitions(ctx))
}

func (g gatewayBackend) PlanRebalance() (*client.RebalancePlan, error) {
	p, err := g.ck.PlanRebalance()
	if err != nil {
		return nil, httpError(err)
	}
	out := &client.RebalancePlan{Partitions: make([]client.PlannedPartition, 0, len(p.Partitions)),
		Moves: p.Moves, PrimaryChanges: p.PrimaryChanges, Pending: p.Pending}
	for _, pp := range p.Partitions {
		out.Partitions = append(out.Partitions, client.PlannedPartition(pp))
	}
	return out, nil
}

func (g gatewayBackend) RemoveNode(ctx context.Context, id string) error {
	return httpError(g.ck.RemoveNode(ctx, id))
}

func (g gatewayBackend) SetDrain(ctx context.Context, id string, drain bool) error {
	return httpError(g.ck.setDrain(ctx, id, drain))
}

func (g gatewayBackend) SetRebalancePaused(ctx context.Context, paused bool) error {
	return httpError(g.ck.setPaused(ctx, paused))
}

// Leave commits the removal, then stops the node in the background: Stop
// shuts the HTTP server down, which waits for this very handler.
func (g gatewayBackend) Leave(ctx context.Context) error {
	if err := g.ck.leave(ctx); err != nil {
		return httpError(err)
	}
	go func() {
		if err := g.ck.Stop(context.Background()); err != nil {
			g.ck.log.Warn("stop after leave", "error", err)
		}
	}()
	return nil
}

func (g gatewayBackend) TransferLeadership(ctx context.Context, req *messages.TransferLeadershipRequest) *messages.TransferLeadershipResponse {
	return g.ck.transferLeadership(ctx, req)
}

func (g gatewayBackend) CustomData(key string) ([]byte, uint64, error) {
	v, version, err := g.ck.GetCustomData(key)
	return v, version, httpError(err)
}
func (g gatewayBackend) CustomDataKeys() []string { return g.ck.ListCustomDataKeys() }

func (g gatewayBackend) CustomDataLinearizable(ctx context.Context, key string) ([]byte, uint64, error) {
	v, version, err := g.ck.GetCustomDataLinearizable(ctx, key)
	return v, version, httpError(err)
}

func (g gatewayBackend) SetCustomData(ctx context.Context, key string, value []byte, cas bool, expected uint64) (uint64, error) {
	var (
		version uint64
		err     error
	)
	if cas {
		version, err = g.ck.CompareAndSetCustomData(ctx, key, expected, value)
	} else {
		version, err = g.ck.SetCustomData(ctx, key, value)
	}
	return version, httpError(err)
}

func (g gatewayBackend) DeleteCustomData(ctx context.Context, key string) (uint64, error) {
	index, err := g.ck.DeleteCustomData(ctx, key)
	return index, httpError(err)
}

// httpError gives a facade error the HTTP status a client should see.
func httpError(err error) error {
	if err == nil {
		return nil
	}
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, ErrNotStarted), errors.Is(err, ErrStopped), errors.Is(err, raft.ErrRaftShutdown):
		status, code = http.StatusServiceUnavailable, "stopped"
	case errors.Is(err, ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		status, code = http.StatusServiceUnavailable, "not_leader"
	case errors.Is(err, ErrOutcomeUnknown):
		status, code = http.StatusServiceUnavailable, "outcome_unknown"
	case errors.Is(err, ErrForwardRefused):
		status, code = http.StatusBadGateway, "forward_refused"
	case errors.Is(err, ErrTimeout), errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusServiceUnavailable, "timeout"
	case errors.Is(err, context.Canceled):
		status, code = http.StatusServiceUnavailable, "cancelled"
	case errors.Is(err, ErrNotReady):
		status, code = http.StatusServiceUnavailable, "not_ready"
	case errors.Is(err, ErrUnknownNode):
		status, code = http.StatusNotFound, "unknown_node"
	case errors.Is(err, ErrKeyNotFound):
		status, code = http.StatusNotFound, "key_not_found"
	case errors.Is(err, ErrInvalidOptions), errors.Is(err, ErrInvalidTarget):
		status, code = http.StatusBadRequest, "bad_request"
	case errors.Is(err, ErrInvalidKey):
		status, code = http.StatusBadRequest, "invalid_key"
	case errors.Is(err, ErrStaleTable):
		status, code = http.StatusConflict, "conflict"
	case errors.Is(err, ErrNoHolder):
		status, code = http.StatusConflict, "no_holder"
	case errors.Is(err, ErrVersionMismatch):
		status, code = http.StatusPreconditionFailed, "version_mismatch"
	case errors.Is(err, ErrValueTooLarge):
		status, code = http.StatusRequestEntityTooLarge, "value_too_large"
	}
	return &httpgw.StatusError{Status: status, Code: code, Err: err}
}

// ask sends msg to the state actor and waits for its answer (an HTTP
// handler's goroutine may wait; actors never do). The client going away
// ends the wait.
func (g gatewayBackend) ask(ctx context.Context, msg any, timeout time.Duration) (any, error) {
	state := g.ck.stateActor()
	if state == nil {
		return nil, ErrNotStarted
	}
	return g.ck.ask(ctx, state, msg, timeout)
}

func (g gatewayBackend) Join(ctx context.Context, req *messages.JoinRequest) *messages.JoinResponse {
	res, err := g.ask(ctx, &actors.JoinFromPeer{Req: req}, 2*DefaultApplyTimeout)
	if r, ok := res.(*messages.JoinResponse); ok && err == nil {
		return r
	}
	return &messages.JoinResponse{Code: actors.JoinFailed, Error: "no answer from the cluster in time: " + errText(err, "no answer")}
}

func (g gatewayBackend) Propose(ctx context.Context, req *messages.Propose) *messages.ProposeResult {
	res, err := g.ask(ctx, req, DefaultApplyTimeout)
	if r, ok := res.(*messages.ProposeResult); ok && err == nil {
		return r
	}
	return &messages.ProposeResult{Code: actors.CodeTimeout, Error: errText(err, "no answer")}
}

// ProposeBatch hands every proposal to the state actor at once (each is
// forwarded: it is never forwarded again) and waits for all the results.
func (g gatewayBackend) ProposeBatch(ctx context.Context, req *messages.ProposeBatch) *messages.ProposeBatchResult {
	ps := req.GetProposals()
	out := &messages.ProposeBatchResult{Results: make([]*messages.ProposeResult, len(ps))}
	state := g.ck.stateActor()
	if state == nil {
		for i := range ps {
			out.Results[i] = &messages.ProposeResult{Code: actors.CodeNotLeader, Error: ErrNotStarted.Error()}
		}
		return out
	}
	// Futures, not ask: one registry entry each and no actor to spawn. A
	// future ends by DefaultApplyTimeout at the latest.
	futures := make([]actor.Future, len(ps))
	for i, p := range ps {
		p.Forwarded = true
		futures[i] = g.ck.system.Root.RequestFuture(state, p, DefaultApplyTimeout)
	}
	for i, f := range futures {
		res, err := f.Result()
		if r, ok := res.(*messages.ProposeResult); ok && err == nil {
			out.Results[i] = r
			continue
		}
		out.Results[i] = &messages.ProposeResult{Code: actors.CodeTimeout, Error: errText(err, "no answer")}
	}
	return out
}

func (g gatewayBackend) Rebalance(ctx context.Context, req *messages.RebalanceRequest) *messages.ProposeResult {
	res, err := g.ask(ctx, req, DefaultApplyTimeout)
	if r, ok := res.(*messages.ProposeResult); ok && err == nil {
		return r
	}
	return &messages.ProposeResult{Code: actors.CodeTimeout, Error: errText(err, "no answer")}
}

func (g gatewayBackend) Ping(ctx context.Context, req *messages.PingRequest) *messages.PingResponse {
	return g.ck.ping(ctx, req.GetWaitIndex())
}

func (g gatewayBackend) MemberStatus(req *messages.MemberStatusRequest) *messages.MemberStatusResponse {
	return g.ck.memberStatus(req.GetId())
}

func errText(err error, fallback string) string {
	if err != nil {
		return err.Error()
	}
	return fallback
}
