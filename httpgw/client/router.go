package client

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Partition maps key to its partition number with this configuration: the
// same function every node uses (GET /locate), so a client can route keys
// without asking.
func (h *HashConfig) Partition(key string) (int, error) {
	if h == nil {
		return 0, errors.New("no hash configuration (the cluster is not bootstrapped)")
	}
	modulo := h.Modulo
	if modulo == 0 {
		modulo = h.PartitionCount // an earlier node's document
	}
	if modulo <= 0 || modulo > 1<<32-1 {
		return 0, fmt.Errorf("hash configuration: modulo %d out of range", modulo)
	}
	switch {
	case h.Algorithm == AlgorithmMD5 && (h.Encoding == "" || h.Encoding == EncodingBigEndianUint32):
		sum := md5.Sum([]byte(key))
		return int(binary.BigEndian.Uint32(sum[:4]) % uint32(modulo)), nil
	case h.Algorithm == AlgorithmXXH64 && (h.Encoding == "" || h.Encoding == EncodingUint64):
		return int(xxhash.Sum64String(key) % uint64(modulo)), nil
	}
	return 0, fmt.Errorf("hash configuration: unsupported algorithm %q with encoding %q", h.Algorithm, h.Encoding)
}

// PartitionID formats partition number n with this configuration's format
// ("partition-<n>").
func (h *HashConfig) PartitionID(n int) string {
	format := h.Format
	if format == "" {
		format = h.PartitionIDFormat
	}
	if format == "partition-%d" || format == "" {
		return "partition-" + strconv.Itoa(n) // the only format nodes use; no fmt on the hot path
	}
	return fmt.Sprintf(format, n)
}

// Router defaults.
const (
	defaultRefresh = time.Second
	// watchMinBackoff and watchMaxBackoff bound the wait before the Router
	// opens a new event stream after one failed for good (Watch itself
	// already retries a dropped connection).
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 30 * time.Second
	// catchUpTries bounds the refreshes that chase an event's index the
	// answer does not reach yet; the poll covers what they miss.
	catchUpTries = 5
)

// tableKinds are the events after which the partition map or the members
// (their addresses and services) may differ: each makes the Router refresh.
var tableKinds = []string{KindPartitionChange, KindRebalanceComplete, KindNodeJoin, KindNodeRejoin, KindNodeLeave}

// RouterOption configures a Router.
type RouterOption func(*Router)

// WithRefreshInterval sets how often the Router polls GET /cluster (with its
// ETag, so an unchanged cluster costs a 304). The event stream makes the
// Router refresh as soon as the table changes, so the poll only bounds how
// stale it gets while the stream is down. Default 1 s; at least 10 ms.
func WithRefreshInterval(d time.Duration) RouterOption {
	return func(r *Router) { r.interval = max(d, 10*time.Millisecond) }
}

// Router keeps a copy of the partition map current and answers Locate from
// it, without a request per key. In the background, until Close or until
// the context given to NewRouter ends, it follows GET /events and refreshes
// GET /cluster as soon as an event says the table or the members changed;
// it also polls GET /cluster with the ETag, which keeps it current while the
// stream is down (a proxy that does not pass server-sent events, say).
type Router struct {
	c        *Client
	interval time.Duration
	table    atomic.Pointer[routingTable]
	lastErr  atomic.Pointer[error]
	// kick asks the refresh loop for a refresh now; its one slot coalesces
	// the burst of events a rebalance makes into one or two requests.
	kick chan struct{}
	// wantIndex is the highest Raft index of an event seen: an answer below
	// it is older than that event.
	wantIndex atomic.Uint64

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// routingTable is one immutable snapshot of the cluster for lookups.
type routingTable struct {
	doc   *ClusterResponse
	hash  *HashConfig
	parts []*Partition     // by number
	nodes map[string]*Node // by ID
}

func newRoutingTable(doc *ClusterResponse) (*routingTable, error) {
	if doc == nil || doc.Cluster == nil {
		return nil, errors.New("GET /cluster: no cluster document")
	}
	h := doc.HashConfig
	if h == nil {
		h = doc.Cluster.HashConfig
	}
	if h == nil {
		return nil, errors.New("GET /cluster: no hash_config (the cluster is not bootstrapped)")
	}
	n := h.Modulo
	if n == 0 {
		n = h.PartitionCount
	}
	if n <= 0 || n > 1<<20 {
		return nil, fmt.Errorf("GET /cluster: hash_config modulo %d out of range", n)
	}
	t := &routingTable{doc: doc, hash: h, parts: make([]*Partition, n), nodes: make(map[string]*Node, len(doc.Cluster.Nodes))}
	for i := range doc.Cluster.Nodes {
		t.nodes[doc.Cluster.Nodes[i].ID] = &doc.Cluster.Nodes[i]
	}
	if doc.Cluster.PartitionMap != nil {
		for id, p := range doc.Cluster.PartitionMap.Partitions {
			num, ok := strings.CutPrefix(id, "partition-")
			k, err := strconv.Atoi(num)
			if !ok || err != nil || k < 0 || k >= n || p == nil {
				return nil, fmt.Errorf("GET /cluster: unexpected partition %q", id)
			}
			t.parts[k] = p
		}
	}
	return t, nil
}

// NewRouter fetches the cluster once (so Locate works as soon as it returns)
// and keeps it current in the background. It fails when the first fetch
// fails or the cluster has no partition table yet.
func NewRouter(ctx context.Context, c *Client, opts ...RouterOption) (*Router, error) {
	if c == nil {
		return nil, errors.New("client: NewRouter needs a client")
	}
	r := &Router{c: c, interval: defaultRefresh, kick: make(chan struct{}, 1)}
	for _, o := range opts {
		o(r)
	}
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	if r.table.Load().doc.Cluster.TableVersion == 0 {
		return nil, errors.New("client: the cluster has no partition table yet")
	}
	runCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.wg.Add(2)
	go r.refreshLoop(runCtx)
	go r.watchLoop(runCtx)
	return r, nil
}

// refreshLoop refreshes on every tick of the poll and whenever the event
// stream asks, until ctx ends.
func (r *Router) refreshLoop(ctx context.Context) {
	defer r.wg.Done()
	poll := time.NewTicker(r.interval)
	defer poll.Stop()
	// catchUp retries a refresh whose answer is older than an event seen
	// (a node may stream an event a moment before its document shows it).
	catchUp := time.NewTimer(time.Hour)
	catchUp.Stop()
	defer catchUp.Stop()
	tries := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-r.kick:
			tries = 0
		case <-catchUp.C:
		}
		// A poll interval of an hour must not mean an hour-long request.
		reqCtx, cancel := context.WithTimeout(ctx, min(max(r.interval, 5*time.Second), 30*time.Second))
		err := r.Refresh(reqCtx)
		cancel()
		if err != nil {
			r.lastErr.Store(&err)
		} else {
			r.lastErr.Store(nil)
		}
		if want := r.wantIndex.Load(); r.table.Load().doc.Cluster.Version < want && tries < catchUpTries {
			tries++
			catchUp.Reset(time.Duration(tries) * 50 * time.Millisecond)
		}
	}
}

// watchLoop follows the table's events and kicks a refresh for each. Watch
// resumes a dropped connection itself; when it gives up (the gateway
// refused the stream, or no longer holds the events to resume from), the
// poll alone keeps the Router current until a new stream opens, after a
// backoff. It returns when ctx ends.
func (r *Router) watchLoop(ctx context.Context) {
	defer r.wg.Done()
	backoff, live := watchMinBackoff, false
	for {
		// From the version the Router holds: every change after it comes
		// down the stream, none is lost between the fetch and the stream.
		// After a 410 the node cannot resume from there: follow it live
		// (the refresh kicked below resyncs).
		since := strconv.FormatUint(r.table.Load().doc.Cluster.Version, 10)
		if live {
			since = ""
		}
		opts := WatchOptions{Since: since, Kinds: tableKinds, MaxRetries: -1, MaxBackoff: min(max(r.interval, time.Second), defaultMaxBackoff)}
		var err error
		for ev, e := range r.c.Watch(ctx, opts) {
			if e != nil {
				err = e
				break
			}
			backoff = watchMinBackoff
			if ev.Index > r.wantIndex.Load() {
				r.wantIndex.Store(ev.Index) // only this goroutine stores
			}
			r.kickRefresh()
		}
		if ctx.Err() != nil {
			return
		}
		var gwErr *Error
		live = errors.As(err, &gwErr) && gwErr.Status == http.StatusGone
		r.kickRefresh() // resync now: changes may have been missed
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// kickRefresh asks the refresh loop for a refresh, without blocking: one
// pending request stands for any number.
func (r *Router) kickRefresh() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Refresh fetches GET /cluster now (the background refresh does the same).
func (r *Router) Refresh(ctx context.Context) error {
	doc, err := r.c.Cluster(ctx)
	if err != nil {
		return err
	}
	if cur := r.table.Load(); cur != nil && cur.doc == doc {
		return nil // 304: unchanged
	}
	t, err := newRoutingTable(doc)
	if err != nil {
		return err
	}
	// Refreshes may overlap (the background ones, the caller's): an answer
	// older than the table held must not replace it. Another cluster at
	// the same address starts its versions over, so it always does.
	for {
		cur := r.table.Load()
		if cur != nil && cur.doc.Cluster.ClusterID == doc.Cluster.ClusterID && doc.Cluster.Version < cur.doc.Cluster.Version {
			return nil
		}
		if r.table.CompareAndSwap(cur, t) {
			return nil
		}
	}
}

// Err is the error of the last background refresh, nil when it succeeded:
// Locate keeps answering from the last good table meanwhile.
func (r *Router) Err() error {
	if p := r.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Cluster is the cluster document the Router routes with (read-only).
func (r *Router) Cluster() *ClusterResponse { return r.table.Load().doc }

// Locate maps key to its partition and owners, from the Router's copy of the
// table: the same answer as GET /locate?key= on a node at the same version.
func (r *Router) Locate(key string) (*PartitionDetail, error) {
	if key == "" {
		return nil, errors.New("client: Locate needs a key")
	}
	t := r.table.Load()
	n, err := t.hash.Partition(key)
	if err != nil {
		return nil, err
	}
	d := &PartitionDetail{Key: key, Partition: t.hash.PartitionID(n), Number: n, Replicas: []Node{}, TableVersion: t.doc.Cluster.TableVersion}
	p := t.parts[n]
	if p == nil {
		return d, nil // not in this document: no owners
	}
	d.Epoch = p.Epoch
	if node, ok := t.nodes[p.PrimaryNode]; ok {
		d.Primary = node
	}
	for _, id := range p.ReplicaNodes {
		if node, ok := t.nodes[id]; ok {
			d.Replicas = append(d.Replicas, *node)
		}
	}
	return d, nil
}

// Close stops the background refresh and the event stream, and waits for
// them (bounded by the requests in flight, which Close cancels).
func (r *Router) Close() {
	r.once.Do(func() {
		r.cancel()
		r.wg.Wait()
	})
}
