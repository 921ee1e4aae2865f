package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterkit/clusterkit"
)

// maxBatch bounds the writes sent to a replica in one request.
const maxBatch = 256

// replicator sends an async primary's writes to its replicas in the
// background: one FIFO queue and one sender per replica node, so that each
// replica receives the writes in the order the primary applied them.
type replicator struct {
	ck     *clusterkit.ClusterKit
	client *http.Client
	log    *slog.Logger
	limit  int             // writes per queue
	delay  time.Duration   // tests: each batch waits this long before it is sent
	ctx    context.Context // ends when the node stops or crashes: what is queued is lost
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[string]*peerQueue

	delivered, dropped atomic.Int64
	warnDown           throttle
}

// peerQueue is one replica's queue. Only its sender removes from the
// front; the store actor appends.
type peerQueue struct {
	node  string
	items []*replicateRequest
	wake  chan struct{}
}

func newReplicator(ctx context.Context, ck *clusterkit.ClusterKit, client *http.Client, log *slog.Logger, limit int) *replicator {
	if limit <= 0 {
		limit = defaultAsyncQueue
	}
	return &replicator{ck: ck, client: client, log: log, limit: limit, ctx: ctx, queues: map[string]*peerQueue{}}
}

// offer queues msg for every node, or for none and names the node whose
// queue is full. Only the store actor calls it, so the queues hold the
// writes in the order the actor applied them.
func (r *replicator) offer(msg *replicateRequest, nodes []string) (full string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range nodes {
		if q := r.queues[n]; q != nil && len(q.items) >= r.limit {
			return n
		}
	}
	for _, n := range nodes {
		q := r.queues[n]
		if q == nil {
			q = &peerQueue{node: n, wake: make(chan struct{}, 1)}
			r.queues[n] = q
			r.wg.Go(func() { r.run(q) })
		}
		q.items = append(q.items, msg)
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return ""
}

// Pending is what an async primary has acknowledged and not yet delivered:
// the writes in its queues (a write queued for two replicas counts twice)
// and the age of the oldest.
func (r *replicator) pending() (n int, oldest time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, q := range r.queues {
		n += len(q.items)
		if len(q.items) > 0 {
			oldest = max(oldest, now.Sub(q.items[0].queued))
		}
	}
	return n, oldest
}

// flush waits until every queue is empty (a graceful stop loses nothing)
// or ctx ends.
func (r *replicator) flush(ctx context.Context) error {
	return r.await(ctx, func(string, *replicateRequest) bool { return true }, "")
}

// flushPartition waits until the queue to node holds no write of part
// (delivered, or dropped with a replica that is gone), or ctx ends.
func (r *replicator) flushPartition(ctx context.Context, node, part string) error {
	return r.await(ctx, func(to string, m *replicateRequest) bool { return to == node && m.Partition == part },
		fmt.Sprintf(" of %s to %s", part, node))
}

// await polls the queues until none holds a write that counts, or ctx
// ends; what names those writes in the error.
func (r *replicator) await(ctx context.Context, counts func(node string, m *replicateRequest) bool, what string) error {
	left := func() (n int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for node, q := range r.queues {
			for _, m := range q.items {
				if counts(node, m) {
					n++
				}
			}
		}
		return n
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n := left()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d queued writes%s not delivered: %w", n, what, ctx.Err())
		case <-tick.C:
		}
	}
}

// wait returns once every sender has returned (after ctx ended).
func (r *replicator) wait() { r.wg.Wait() }

// run delivers q's writes in order, a batch at a time, until ctx ends.
func (r *replicator) run(q *peerQueue) {
	backoff := 20 * time.Millisecond
	for r.ctx.Err() == nil {
		r.mu.Lock()
		batch := q.items[:min(len(q.items), maxBatch)]
		r.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-r.ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		if r.delay > 0 {
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(r.delay):
			}
		}
		settled, err := r.send(q.node, batch)
		if settled {
			r.mu.Lock()
			q.items = q.items[len(batch):]
			r.mu.Unlock()
			backoff = 20 * time.Millisecond
			continue
		}
		r.log.Debug("async replication: retrying", "replica", q.node, "writes", len(batch), "error", err)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// batchJSON is the body of POST /internal/replicate-batch.
type batchJSON struct {
	Entries []*replicateRequest `json:"entries"`
}

// batchResultJSON is its answer: the writes the replica refused (it no
// longer owns their partition), by index; the others are applied.
type batchResultJSON struct {
	Refused []refusedJSON `json:"refused"`
}

type refusedJSON struct {
	Index int      `json:"index"`
	Error apiError `json:"error"`
}

// send delivers a batch. It is settled when the replica applied it or
// refused it (not an owner any more: the table moved the partition, and its
// new owners copy it), and also when the replica is gone: removed from the
// cluster, or down (connection refused). A replica that is down reloads
// every partition when it rejoins, as under sync replication. Anything else
// (no answer, busy) is retried: the replica may be slow, not gone.
func (r *replicator) send(node string, batch []*replicateRequest) (settled bool, err error) {
	addr := memberKV(r.ck, node)
	if addr == "" {
		r.dropped.Add(int64(len(batch)))
		r.log.Debug("async replication: replica is not a member any more; its queue is dropped", "replica", node, "writes", len(batch))
		return true, nil
	}
	body, err := json.Marshal(batchJSON{Entries: batch})
	if err != nil {
		r.dropped.Add(int64(len(batch)))
		r.log.Error("async replication: cannot encode a batch; dropped", "replica", node, "error", err)
		return true, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/internal/replicate-batch", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	switch {
	case isDial(err):
		r.dropped.Add(int64(len(batch)))
		if r.warnDown.allow(node) {
			r.log.Warn("replica unreachable: async writes to it are dropped (it reloads when it rejoins)", "replica", node, "error", err)
		}
		return true, nil
	case err != nil:
		return false, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s: %s: %s", node, resp.Status, bytes.TrimSpace(data))
	}
	var res batchResultJSON
	if err := json.Unmarshal(data, &res); err != nil {
		return false, fmt.Errorf("%s: batch answer: %w", node, err)
	}
	r.delivered.Add(int64(len(batch) - len(res.Refused)))
	if len(res.Refused) > 0 {
		r.dropped.Add(int64(len(res.Refused)))
		first := res.Refused[0].Error
		r.log.Debug("async replication: the replica refused writes (no longer an owner)", "replica", node,
			"refused", len(res.Refused), "of", len(batch), "first", first.Code+": "+first.Message)
	}
	return true, nil
}

// handleReplicateBatch applies an async primary's batch, in order.
func (s *server) handleReplicateBatch(w http.ResponseWriter, r *http.Request) {
	var b batchJSON
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBatch*2*maxValue)).Decode(&b); err != nil {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf("replicate-batch body: %v", err)})
		return
	}
	if len(b.Entries) > maxBatch {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf("replicate-batch: %d entries, at most %d", len(b.Entries), maxBatch)})
		return
	}
	for i, m := range b.Entries {
		if m == nil || m.Key == "" || m.Entry.Version == 0 {
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: "bad_request",
				Message: fmt.Sprintf("replicate-batch entry %d: key and entry.version are required", i)})
			return
		}
	}
	res, aerr := s.ask(&replicateBatch{entries: b.Entries})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out := batchResultJSON{Refused: []refusedJSON{}}
	for i, e := range res.(*replicateBatchReply).errs {
		if e != nil && e.Status == http.StatusServiceUnavailable {
			// Not ready to judge (no table yet): the primary retries the
			// whole batch; what was applied merges again by version.
			writeError(w, e)
			return
		}
		if e != nil {
			out.Refused = append(out.Refused, refusedJSON{Index: i, Error: *e})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
