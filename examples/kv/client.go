package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// ErrNotFound is returned by Client.Get for a key that has no value.
var ErrNotFound = errors.New("kv: key not found")

// ErrStale is returned by Client.Get when every owner that answered has an
// older version of the key than one this client already read or wrote:
// under async replication, the newer write was acknowledged by a primary
// that crashed before its replicas had it. The client never returns the
// older value in its place (monotonic reads, per client); a new write of
// the key ends it.
var ErrStale = errors.New("kv: the cluster's value is older than one this client already saw")

// staleTries is how many rounds a read retries a primary older than what
// the client saw before it returns ErrStale: right after a hand-over the
// new primary may still be receiving the old one's queued writes.
const staleTries = 4

// maxSeen bounds the keys whose last seen version a Client remembers; past
// it the memory is cleared, and the guarantee restarts from there.
const maxSeen = 1 << 16

// errClosed is returned by the operations of a closed Client.
var errClosed = errors.New("kv client: closed")

// Client is a smart client: it routes every key locally with the Router of
// ClusterKit's typed gateway client (httpgw/client), which holds the
// cluster's hash configuration and partition map from GET /cluster and
// refreshes them as soon as a node's event stream (GET /events) reports a
// new table. It sends writes to the partition's primary and reads to the
// primary, then to the replicas, at the address each node registered as its
// "kv" service. When a node is unreachable or answers that it does not own
// the key (or is still loading it), the client refreshes the table, from
// another ClusterKit node if the one it follows does not answer, and
// retries, with backoff, up to Attempts times and never past the context's
// deadline.
//
// Writes are idempotent (PUT sets the value, DELETE removes it), so retrying
// one whose answer was lost is safe.
type Client struct {
	// Attempts bounds the tries of one operation (default 20: with the
	// backoff, about 8 s, enough to outlast failure detection).
	Attempts int
	// OpTimeout bounds one operation when its context has no deadline (default 10 s).
	OpTimeout time.Duration
	// RequestTimeout bounds one request to one node (default 2 s); a write
	// gets twice as long, since the primary waits for its replicas.
	RequestTimeout time.Duration

	http *http.Client // the kv API
	// gw calls the ClusterKit gateways. No client-wide timeout: it would
	// cut the Router's event stream; every request has a context instead.
	gw *http.Client

	// switching serializes the replacement of the Router, so that failing
	// operations open one new Router, not one each.
	switching sync.Mutex

	retried atomic.Int64 // operations that needed more than one attempt
	stale   atomic.Int64 // reads refused with ErrStale

	seenMu sync.Mutex
	seen   map[string]uint64 // key -> highest version read or written

	mu       sync.Mutex
	gateways []string // seeds first, then every node learnt from /cluster
	router   *follower
	closed   bool
}

// follower is a Router on one gateway, with the end of its lifetime.
type follower struct {
	*client.Router
	at  string
	end context.CancelFunc
}

func (f *follower) close() {
	f.Close()
	f.end()
}

// NewClient returns a client (use it rather than a Client literal) that
// reads the cluster from the given ClusterKit addresses (host:port); it
// learns the others' from the first answer. It contacts none before its
// first operation. Close it when done: its Router refreshes in the
// background.
func NewClient(gateways ...string) *Client {
	return &Client{
		Attempts:       20,
		OpTimeout:      10 * time.Second,
		RequestTimeout: 2 * time.Second,
		http:           &http.Client{},
		gw:             &http.Client{},
		gateways:       slices.Clone(gateways),
	}
}

// Close stops the Router's background refresh and closes idle connections.
// Operations after Close fail.
func (c *Client) Close() {
	// Not under switching: a refresh in flight may take a while; it sees
	// closed when it is done and closes what it opened.
	c.mu.Lock()
	r := c.router
	c.router, c.closed = nil, true
	c.mu.Unlock()
	if r != nil {
		r.close()
	}
	c.http.CloseIdleConnections()
	c.gw.CloseIdleConnections()
}

// Retried returns how many operations needed more than one attempt (a node
// down, not the owner any more, or still loading): what the retries hid.
func (c *Client) Retried() int64 { return c.retried.Load() }

func (c *Client) requestTimeout() time.Duration {
	if c.RequestTimeout > 0 {
		return c.RequestTimeout
	}
	return 2 * time.Second
}

// Stale returns how many reads ended in ErrStale.
func (c *Client) Stale() int64 { return c.stale.Load() }

// floor is the highest version of key this client read or wrote.
func (c *Client) floor(key string) uint64 {
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	return c.seen[key]
}

// saw records that this client read or wrote version v of key.
func (c *Client) saw(key string, v uint64) {
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	if c.seen == nil || len(c.seen) >= maxSeen {
		c.seen = map[string]uint64{}
	}
	c.seen[key] = max(c.seen[key], v)
}

// current is the Router in use (nil before the first refresh).
func (c *Client) current() (*follower, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	return c.router, nil
}

// refresh brings the table up to date through the Router's gateway or,
// when that one does not answer, through a new Router on the first other
// gateway that does.
func (c *Client) refresh(ctx context.Context) error {
	c.switching.Lock()
	defer c.switching.Unlock()
	c.mu.Lock()
	r, gateways, closed := c.router, slices.Clone(c.gateways), c.closed
	c.mu.Unlock()
	if closed {
		return errClosed
	}
	var errs []error
	if r != nil {
		rctx, cancel := context.WithTimeout(ctx, c.requestTimeout())
		err := r.Refresh(rctx)
		cancel()
		if err == nil {
			c.learn(r.Router)
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.at, err))
	}
	for _, g := range gateways {
		if r != nil && g == r.at {
			continue
		}
		nr, err := c.openRouter(ctx, g)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g, err))
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			nr.close()
			return errClosed
		}
		c.router = nr
		c.mu.Unlock()
		if r != nil {
			r.close() // operations still holding it may finish their Locate: it answers after Close
		}
		c.learn(nr.Router)
		return nil
	}
	return fmt.Errorf("kv client: no gateway answered GET /cluster: %w", errors.Join(errs...))
}

// openRouter starts a Router on gateway. ctx bounds its first fetch only:
// the Router then lives until the Client closes or replaces it.
func (c *Client) openRouter(ctx context.Context, gateway string) (*follower, error) {
	ck, err := client.New(gateway, client.WithHTTPClient(c.gw))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout())
	defer cancel()
	life, end := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, end)
	r, err := client.NewRouter(life, ck)
	if !stop() { // ctx ended first, and life with it: the Router stopped
		if r != nil {
			r.Close()
		}
		end()
		return nil, fmt.Errorf("first GET /cluster: %w", ctx.Err())
	}
	if err != nil {
		end()
		return nil, err
	}
	return &follower{Router: r, at: gateway, end: end}, nil
}

// learn adds the members' ClusterKit addresses to the gateways to try.
func (c *Client) learn(r *client.Router) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range r.Cluster().Cluster.Nodes {
		if n.IP != "" && !slices.Contains(c.gateways, n.IP) {
			c.gateways = append(c.gateways, n.IP)
		}
	}
}

// kvOf is node's kv address in the client's table ("" when it has none).
func (c *Client) kvOf(node string) string {
	r, _ := c.current()
	if r == nil {
		return ""
	}
	for _, n := range r.Cluster().Cluster.Nodes {
		if n.ID == node {
			return kvAddr(&n)
		}
	}
	return ""
}

// Get returns key's value, or ErrNotFound, or ErrStale (never a value
// older than one this client already read or wrote).
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	var value []byte
	floor := c.floor(key)
	tries := 0
	err := c.do(ctx, key, func(ctx context.Context, owners []owner) (bool, error) {
		tries++
		// The primary first; under sync replication any loaded replica has
		// every acknowledged write too (see the package documentation), so
		// it may answer instead. Under async one may lag: an answer older
		// than what this client saw is passed over.
		var errs []error
		primaryStale := false
		for i, o := range owners {
			res, err := c.call(ctx, o.id, o.kv, http.MethodGet, key, nil)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			switch res.status {
			case http.StatusOK, http.StatusNotFound:
				if res.version < floor {
					primaryStale = primaryStale || i == 0
					errs = append(errs, fmt.Errorf("%s has version %d, this client saw %d: %w", o.id, res.version, floor, ErrStale))
					continue
				}
				c.saw(key, res.version)
				if res.status == http.StatusNotFound {
					return true, ErrNotFound
				}
				value = res.body
				return true, nil
			}
			errs = append(errs, res.err())
			if !res.retryable() {
				return true, res.err()
			}
		}
		if primaryStale && tries >= staleTries {
			// The primary has every write it acknowledged: the newer one is lost.
			c.stale.Add(1)
			return true, errors.Join(errs...)
		}
		return false, errors.Join(errs...)
	})
	return value, err
}

// Put sets key to value on the primary, which replicates it before answering.
func (c *Client) Put(ctx context.Context, key string, value []byte) error {
	_, err := c.write(ctx, http.MethodPut, key, value)
	return err
}

// Delete removes key (deleting a missing key succeeds).
func (c *Client) Delete(ctx context.Context, key string) error {
	_, err := c.write(ctx, http.MethodDelete, key, nil)
	return err
}

// writeAck is a write's answer and the node (the primary) that gave it.
type writeAck struct {
	Node string
	writeResult
}

// write returns the primary's answer too: the -cluster story shows which
// node took the write and which replicas acknowledged it.
func (c *Client) write(ctx context.Context, method, key string, value []byte) (*writeAck, error) {
	var ack writeAck
	err := c.do(ctx, key, func(ctx context.Context, owners []owner) (bool, error) {
		res, err := c.call(ctx, owners[0].id, owners[0].kv, method, key, value)
		if err != nil {
			return false, err
		}
		if res.status == http.StatusOK {
			ack.Node = res.node
			if err := json.Unmarshal(res.body, &ack.writeResult); err != nil {
				return true, fmt.Errorf("%s: write acknowledged with an unreadable answer: %w", res.node, err)
			}
			c.saw(key, ack.Version)
			return true, nil
		}
		return !res.retryable(), res.err()
	})
	if err != nil {
		return nil, err
	}
	return &ack, nil
}

// owner is one owner of a key's partition: its node ID and kv address.
type owner struct{ id, kv string }

// do runs one attempt per round, refreshing the table before every round
// but the first, until the attempt is final, the attempts are used up or
// ctx ends. The last error says why.
func (c *Client) do(ctx context.Context, key string, attempt func(context.Context, []owner) (bool, error)) error {
	if key == "" {
		return errors.New("kv client: empty key")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		timeout := c.OpTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	backoff := 20 * time.Millisecond
	var last error
	for i := range max(c.Attempts, 1) {
		if i == 1 {
			c.retried.Add(1)
		}
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("kv client: %q: %w (last error: %v)", key, ctx.Err(), last)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 500*time.Millisecond)
		}
		r, err := c.current()
		if err != nil {
			return err
		}
		if r == nil || i > 0 {
			if err := c.refresh(ctx); err != nil {
				if errors.Is(err, errClosed) {
					return err
				}
				last = err
				continue
			}
			if r, err = c.current(); err != nil {
				return err
			}
		}
		owners, err := route(r.Router, key)
		if err != nil {
			last = err
			continue
		}
		done, err := attempt(ctx, owners)
		if done {
			return err
		}
		last = err
	}
	return fmt.Errorf("kv client: %q: gave up after %d attempts: %w", key, max(c.Attempts, 1), last)
}

// result is one answer of a kv node.
type result struct {
	node    string
	status  int
	body    []byte
	apiErr  apiError
	version uint64 // a read's: X-Kv-Version, or a delete's tombstone (0: never written)
}

func (r *result) err() error {
	return fmt.Errorf("%s answered %d %s: %s", r.node, r.status, r.apiErr.Code, r.apiErr.Message)
}

// retryable: the node is not (or no longer, or not yet) the right one, or
// cannot answer for now; another node or a fresher table may succeed.
func (r *result) retryable() bool {
	return r.status == http.StatusMisdirectedRequest || r.status == http.StatusServiceUnavailable || r.status >= 500
}

// call sends one request to node's kv API at addr.
func (c *Client) call(ctx context.Context, node, addr, method, key string, value []byte) (*result, error) {
	if addr == "" {
		return nil, fmt.Errorf("%s has no kv service", node)
	}
	timeout := c.requestTimeout()
	var body io.Reader
	if method != http.MethodGet {
		timeout *= 2
	}
	if value != nil {
		body = bytes.NewReader(value)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/kv/"+url.PathEscape(key), body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", node, addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxValue+1))
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", node, addr, err)
	}
	res := &result{node: node, status: resp.StatusCode, body: data}
	if resp.StatusCode != http.StatusOK {
		if json.Unmarshal(data, &res.apiErr) != nil {
			res.apiErr = apiError{Code: "unknown", Message: string(data)}
		}
		res.version = res.apiErr.Version
	} else if method == http.MethodGet {
		res.version, _ = strconv.ParseUint(resp.Header.Get("X-Kv-Version"), 10, 64)
	}
	return res, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
