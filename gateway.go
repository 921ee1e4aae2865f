package clusterkit

import (
	"github.com/clusterkit/clusterkit/httpgw"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// gatewayBackend adapts a node to httpgw.Backend without widening the public API.
type gatewayBackend struct{ ck *ClusterKit }

var _ httpgw.Backend = gatewayBackend{}

func (g gatewayBackend) NodeID() string      { return g.ck.opts.NodeID }
func (g gatewayBackend) View() *raftfsm.View { return g.ck.fsm.View() }
func (g gatewayBackend) Detailed() any       { return g.ck.HealthCheck() }

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
