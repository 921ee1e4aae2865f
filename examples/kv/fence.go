package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/clusterkit/clusterkit/messages"
)

// The async fence. Under async replication a primary's last writes may
// still be queued when the table makes another owner primary (a join moves
// it, or a planned stop hands it over). Delivered after the new primary's
// first writes, such a write would merge by its version alone, and with
// the old primary's clock ahead of the new one's it would win over newer
// writes: acknowledged writes lost while both nodes are up. So a new
// primary serves its partition only once its predecessor has delivered
// what it queued for it (POST /internal/partitions/{id}/deliver): its
// versions are then above every write the old primary acknowledged, as a
// hybrid logical clock has seen them all. A predecessor that is gone
// (removed, or refusing connections) has nothing left to deliver: its
// queue died with it, the loss window async replication accepts.

// fenceWait bounds the wait for a predecessor; past it the new primary
// serves anyway (logged): a stuck node must not keep a partition down.
const fenceWait = 5 * time.Second

// fenceLifted: the predecessor of a partition delivered its queue, or
// cannot (gone, or fenceWait passed).
type fenceLifted struct {
	part   string
	fence  uint64
	from   string
	waited time.Duration
	err    error
}

// deliverBarrier: a round trip through the store actor, so that every
// write it took with a table older than the caller's is queued already.
type deliverBarrier struct{}

// fenceIfPromoted starts the fence of partition id when e makes this node
// its primary and the previous primary is still a member.
func (s *store) fenceIfPromoted(ctx actor.Context, e *messages.PartitionChange) {
	if s.repl == nil || e.GetRole() != "primary" || e.GetOldPrimary() == "" || e.GetOldPrimary() == s.self {
		return
	}
	d := s.parts[e.GetPartitionId()]
	if d == nil {
		return
	}
	from := e.GetOldPrimary()
	addr := memberKV(s.ck, from)
	if addr == "" {
		return // removed: its queue is gone
	}
	s.gen++
	d.fence = s.gen
	s.log.Debug("new primary: waiting for the previous primary's queued writes", "partition", e.GetPartitionId(), "from", from)
	go s.awaitPredecessor(ctx.ActorSystem(), ctx.Self(), e.GetPartitionId(), d.fence, e.GetEpoch(), source{id: from, kv: addr})
}

// awaitPredecessor asks from to deliver its queue for part to this node,
// retrying with backoff within fenceWait, and tells the actor when it did,
// or cannot.
func (s *store) awaitPredecessor(system *actor.ActorSystem, self *actor.PID, part string, fence, epoch uint64, from source) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, fenceWait)
	defer cancel()
	u := fmt.Sprintf("http://%s/internal/partitions/%s/deliver?to=%s&epoch=%d", from.kv, url.PathEscape(part), url.QueryEscape(s.self), epoch)
	backoff := 20 * time.Millisecond
	err := s.askDelivery(ctx, u)
	for err != nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
			backoff = min(2*backoff, 250*time.Millisecond)
			err = s.askDelivery(ctx, u)
		}
	}
	if s.ctx.Err() != nil {
		return
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", from.id, err)
	}
	system.Root.Send(self, &fenceLifted{part: part, fence: fence, from: from.id, waited: time.Since(start), err: err})
}

// askDelivery makes one deliver request: nil once the predecessor
// delivered, or when it is down (its queue is gone with it).
func (s *store) askDelivery(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	switch {
	case isDial(err):
		return nil
	case err != nil:
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// lift ends a fence, unless a newer one replaced it.
func (s *store) lift(m *fenceLifted) {
	d := s.parts[m.part]
	if d == nil || d.fence != m.fence {
		return
	}
	d.fence = 0
	if m.err != nil {
		s.log.Warn("new primary: serving without the previous primary's queued writes (their order against new writes is not guaranteed)",
			"partition", m.part, "from", m.from, "waited", m.waited.Round(time.Millisecond), "error", m.err)
		return
	}
	s.log.Debug("new primary: previous primary's queue delivered", "partition", m.part, "from", m.from, "waited", m.waited.Round(time.Millisecond))
}

// toldPrimary reports whether an async primary may serve part: its
// PartitionChange said it is the primary (the table can name it a moment
// before the event arrives, and the event starts the fence) and no fence
// is up. If the table names it and no event comes within fenceWait, it
// serves anyway (logged), so that a lost event cannot keep a partition down.
func (s *store) toldPrimary(part string, d *partitionData) bool {
	if d.fence != 0 {
		return false
	}
	if d.role == "primary" {
		return true
	}
	if d.unknownSince.IsZero() {
		d.unknownSince = time.Now()
		return false
	}
	if time.Since(d.unknownSince) < fenceWait {
		return false
	}
	s.log.Warn("primary without a PartitionChange saying so: serving anyway", "partition", part, "waited", time.Since(d.unknownSince).Round(time.Millisecond))
	d.role, d.unknownSince = "primary", time.Time{}
	return true
}

// errFenced is the refusal of a new primary waiting for its predecessor.
func (s *store) errFenced(part string) *apiError {
	return &apiError{Status: http.StatusServiceUnavailable, Code: "catching_up", Partition: part,
		Message: fmt.Sprintf("%s is the new primary of %s and waits for the previous primary's queued writes; retry", s.self, part)}
}

// handleDeliver: a new primary asks this node, its partition's previous
// primary, to deliver the writes it queued for it. Once this node's table
// reached the new primary's epoch it takes no more writes for the
// partition; the barrier through the store actor flushes any it took
// before; then the queue to the new primary drains of the partition.
func (s *server) handleDeliver(w http.ResponseWriter, r *http.Request) {
	id, to := r.PathValue("id"), r.URL.Query().Get("to")
	epoch, err := strconv.ParseUint(r.URL.Query().Get("epoch"), 10, 64)
	if err != nil || epoch == 0 || to == "" {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_request", Partition: id,
			Message: fmt.Sprintf("deliver: want the new primary's node id (to) and its partition epoch (epoch, > 0); got to=%q epoch=%q",
				to, r.URL.Query().Get("epoch"))})
		return
	}
	if s.st.repl == nil {
		writeJSON(w, http.StatusOK, map[string]any{"partition": id, "to": to})
		return
	}
	if !s.waitEpoch(r.Context(), id, epoch) {
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "behind", Partition: id, Epoch: epoch,
			Message: fmt.Sprintf("%s has not applied epoch %d of %s yet", s.st.self, epoch, id)})
		return
	}
	if _, aerr := s.ask(&deliverBarrier{}); aerr != nil {
		writeError(w, aerr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), fenceWait)
	defer cancel()
	if err := s.st.repl.flushPartition(ctx, to, id); err != nil {
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "busy", Partition: id, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"partition": id, "to": to})
}
