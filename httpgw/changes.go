package httpgw

import (
	"net/http"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/messages"
)

// noBody refuses a body on routes that take none, so a client that thinks it
// sends parameters learns that they are ignored.
func (g *Gateway) noBody(w http.ResponseWriter, r *http.Request) bool {
	data, ok := g.readBody(w, r, maxBody)
	if !ok {
		return false
	}
	if len(data) > 0 && string(data) != "{}" {
		g.fail(w, r, http.StatusBadRequest, "unexpected_body", r.URL.Path+" takes no request body")
		return false
	}
	return true
}

func (g *Gateway) join(w http.ResponseWriter, r *http.Request) {
	req := &messages.JoinRequest{}
	if !g.decode(w, r, req) {
		return
	}
	if r.URL.Path == "/join" && req.GetMember() == nil {
		g.fail(w, r, http.StatusBadRequest, "bad_request", "a join request needs a member")
		return
	}
	resp := g.b.Join(r.Context(), req)
	status := http.StatusOK
	if !resp.GetAccepted() && r.URL.Path == "/join" {
		// The public route reports refusals as HTTP errors: a malformed
		// member is the caller's bad input, no leader is temporary, the
		// rest conflict with the cluster's state.
		switch resp.GetCode() {
		case "invalid_member":
			status = http.StatusBadRequest
		case "not_leader":
			status = http.StatusServiceUnavailable
		default:
			status = http.StatusConflict
		}
	}
	g.answer(w, r, status, resp)
}

// leave removes this node from the cluster; it stops after answering.
func (g *Gateway) leave(w http.ResponseWriter, r *http.Request) {
	if !g.noBody(w, r) {
		return
	}
	if err := g.b.Leave(r.Context()); err != nil {
		g.failErr(w, r, err)
		return
	}
	g.write(w, r, http.StatusOK, client.ChangeResult{OK: true, NodeID: g.b.NodeID(), Version: g.b.View().Version(), Message: "left the cluster; the node is stopping"})
}

// removeNode removes another member for good (admin).
func (g *Gateway) removeNode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == g.b.NodeID() {
		g.fail(w, r, http.StatusBadRequest, "is_self", "this node is "+quote(id)+": use POST /leave to remove it")
		return
	}
	if _, ok := g.b.View().Member(id); !ok {
		g.fail(w, r, http.StatusNotFound, "unknown_node", "no member "+quote(id))
		return
	}
	if !g.noBody(w, r) {
		return
	}
	if err := g.b.RemoveNode(r.Context(), id); err != nil {
		g.failErr(w, r, err)
		return
	}
	g.write(w, r, http.StatusOK, client.ChangeResult{OK: true, NodeID: id, Version: g.b.View().Version(), Message: "removed"})
}

// rebalance commits a new table, or with ?dry_run=true answers the plan of
// the next rebalance and changes nothing.
func (g *Gateway) rebalance(w http.ResponseWriter, r *http.Request) {
	dry := false
	switch d := r.URL.Query().Get("dry_run"); d {
	case "", "false":
	case "true":
		dry = true
	default:
		g.fail(w, r, http.StatusBadRequest, "bad_request", "dry_run must be true or false, got "+quote(d))
		return
	}
	if !g.noBody(w, r) {
		return
	}
	if dry {
		plan, err := g.b.PlanRebalance()
		if err != nil {
			g.failErr(w, r, err)
			return
		}
		g.write(w, r, http.StatusOK, plan)
		return
	}
	if err := g.b.RebalanceNow(r.Context()); err != nil {
		g.failErr(w, r, err)
		return
	}
	v := g.b.View()
	g.write(w, r, http.StatusOK, client.ChangeResult{OK: true, NodeID: g.b.NodeID(), Version: v.Version(), Message: "rebalanced"})
}

func (g *Gateway) transferLeadership(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(r) {
		g.fail(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json (or no body)")
		return
	}
	data, ok := g.readBody(w, r, maxBody)
	if !ok {
		return
	}
	req, err := decodeTransfer(data)
	if err != nil {
		g.fail(w, r, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	resp := g.b.TransferLeadership(r.Context(), &messages.TransferLeadershipRequest{TargetId: req.TargetID})
	if resp.GetCode() != "" {
		g.fail(w, r, transferStatus(resp.GetCode()), resp.GetCode(), resp.GetError())
		return
	}
	g.write(w, r, http.StatusOK, client.TransferResult{Leader: resp.GetLeaderId()})
}

func transferStatus(code string) int {
	switch code {
	case "invalid_target", "no_other_voter":
		return http.StatusBadRequest
	case "not_leader", "unavailable":
		return http.StatusServiceUnavailable
	case "timeout":
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func (g *Gateway) transferFromPeer(w http.ResponseWriter, r *http.Request) {
	req := &messages.TransferLeadershipRequest{}
	if !g.decode(w, r, req) {
		return
	}
	g.answer(w, r, http.StatusOK, g.b.TransferLeadership(r.Context(), req))
}

func (g *Gateway) propose(w http.ResponseWriter, r *http.Request) {
	req := &messages.Propose{}
	if !g.decode(w, r, req) {
		return
	}
	g.answer(w, r, http.StatusOK, g.b.Propose(r.Context(), req))
}

func (g *Gateway) proposeBatch(w http.ResponseWriter, r *http.Request) {
	req := &messages.ProposeBatch{}
	if !g.decode(w, r, req) {
		return
	}
	g.answer(w, r, http.StatusOK, g.b.ProposeBatch(r.Context(), req))
}

func (g *Gateway) rebalanceFromPeer(w http.ResponseWriter, r *http.Request) {
	req := &messages.RebalanceRequest{}
	if !g.decode(w, r, req) {
		return
	}
	g.answer(w, r, http.StatusOK, g.b.Rebalance(r.Context(), req))
}

func (g *Gateway) ping(w http.ResponseWriter, r *http.Request) {
	req := &messages.PingRequest{}
	if r.ContentLength != 0 && !g.decode(w, r, req) {
		return
	}
	g.answer(w, r, http.StatusOK, g.b.Ping(r.Context(), req))
}

func (g *Gateway) memberStatus(w http.ResponseWriter, r *http.Request) {
	req := &messages.MemberStatusRequest{}
	if !g.decode(w, r, req) {
		return
	}
	g.answer(w, r, http.StatusOK, g.b.MemberStatus(req))
}
