package httpgw

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/clusterkit/clusterkit/httpgw/client"
	"github.com/clusterkit/clusterkit/internal/placement"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// The operator's placement routes: drain and undrain a member, pause and
// resume rebalancing (maintenance mode).

// drain starts (drain) or ends (undrain) the drain of member {id}. It
// answers once the flag is committed: the hand-offs then run in the
// background, visible in /partitions, the events and the metrics.
func (g *Gateway) drain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, ok := g.b.View().Member(id); !ok {
			g.fail(w, r, http.StatusNotFound, "unknown_node", "no member "+quote(id))
			return
		}
		if !g.noBody(w, r) {
			return
		}
		if err := g.b.SetDrain(r.Context(), id, on); err != nil {
			g.failErr(w, r, err)
			return
		}
		v := g.b.View()
		msg := "undrained; the next rebalance gives it its share again"
		if on {
			msg = fmt.Sprintf("draining; %d partitions to hand over", v.SlotsOf(id))
		}
		g.write(w, r, http.StatusOK, client.ChangeResult{OK: true, NodeID: id, Version: v.Version(), Message: msg})
	}
}

// pause enters (on) or leaves maintenance mode.
func (g *Gateway) pause(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !g.noBody(w, r) {
			return
		}
		if err := g.b.SetRebalancePaused(r.Context(), on); err != nil {
			g.failErr(w, r, err)
			return
		}
		msg := "rebalancing resumed"
		if on {
			msg = "rebalancing paused: membership changes commit, failovers happen, nothing is copied"
		}
		g.write(w, r, http.StatusOK, client.ChangeResult{OK: true, NodeID: g.b.NodeID(), Version: g.b.View().Version(), Message: msg})
	}
}

// viewNotes are the constraint notes of one view.
type viewNotes struct {
	v     *raftfsm.View
	notes []string
}

// constraints returns placement's notes for view v, computed once per view
// (tens of microseconds with zones: too much for every /locate).
func (g *Gateway) constraints(v *raftfsm.View) []string {
	if n := g.notes.Load(); n != nil && n.v == v {
		return n.notes
	}
	cfg := v.Config()
	if cfg == nil {
		return nil
	}
	in := placement.Input{Partitions: v.PartitionCount(), RF: int(cfg.GetReplicationFactor()),
		Zones: map[string]string{}, Weights: map[string]int{}}
	for _, m := range v.Members() {
		in.Members = append(in.Members, m.ID)
		in.Zones[m.ID], in.Weights[m.ID] = m.Zone, m.PlacementWeight()
	}
	notes := placement.Constraints(in)
	g.notes.Store(&viewNotes{v: v, notes: notes})
	return notes
}

// explain lists why partition p's owners are where they are when a
// placement constraint cannot be met: the cluster-wide notes of placement,
// then the owners that share a zone.
func (g *Gateway) explain(v *raftfsm.View, p *raftfsm.Partition) []string {
	out := slices.Clone(g.constraints(v))
	byZone := map[string][]string{}
	var zones []string
	for _, o := range p.Owners {
		n, ok := v.Member(o.ID)
		if !ok || n.Zone == "" {
			continue
		}
		if _, seen := byZone[n.Zone]; !seen {
			zones = append(zones, n.Zone)
		}
		byZone[n.Zone] = append(byZone[n.Zone], o.ID)
	}
	for _, z := range zones {
		if ids := byZone[z]; len(ids) > 1 {
			out = append(out, fmt.Sprintf("owners %v share zone %q", ids, z))
		}
	}
	return out
}
