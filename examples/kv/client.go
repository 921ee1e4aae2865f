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
	"sync"
	"time"
)

// ErrNotFound is returned by Client.Get for a key that has no value.
var ErrNotFound = errors.New("kv: key not found")

// Client is a smart client: it reads GET /cluster from any ClusterKit node,
// computes each key's partition itself from hash_config, sends writes to the
// partition's primary and reads from the primary, then from the replicas.
// When a node is unreachable or answers that it does not own the key (or is
// still loading it), the client refreshes its view of /cluster and retries,
// with backoff, up to Attempts times and never past the context's deadline.
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

	http *http.Client

	mu       sync.Mutex
	gateways []string // seeds first, then every node learnt from /cluster
	routing  *Routing
}

// NewClient returns a client (use it rather than a Client literal) that fetches /cluster from the given ClusterKit
// addresses (host:port); it learns the others' from the first answer.
func NewClient(gateways ...string) *Client {
	return &Client{
		Attempts:       20,
		OpTimeout:      10 * time.Second,
		RequestTimeout: 2 * time.Second,
		http:           &http.Client{},
		gateways:       slices.Clone(gateways),
	}
}

func (c *Client) requestTimeout() time.Duration {
	if c.RequestTimeout > 0 {
		return c.RequestTimeout
	}
	return 2 * time.Second
}

// Routing returns the client's current view (nil before the first refresh).
func (c *Client) Routing() *Routing {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routing
}

// Refresh fetches GET /cluster from the first gateway that answers.
func (c *Client) Refresh(ctx context.Context) error {
	c.mu.Lock()
	gateways := slices.Clone(c.gateways)
	c.mu.Unlock()
	var errs []error
	for _, g := range gateways {
		r, err := c.fetchRouting(ctx, g)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.mu.Lock()
		c.routing = r
		for _, id := range sortedKeys(r.Gateways) {
			if addr := r.Gateways[id]; !slices.Contains(c.gateways, addr) {
				c.gateways = append(c.gateways, addr)
			}
		}
		c.mu.Unlock()
		return nil
	}
	return fmt.Errorf("kv client: no gateway answered GET /cluster: %w", errors.Join(errs...))
}

func (c *Client) fetchRouting(ctx context.Context, gateway string) (*Routing, error) {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+gateway+"/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gateway, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: GET /cluster: %s", gateway, resp.Status)
	}
	r, err := ParseRouting(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gateway, err)
	}
	if len(r.Owners) == 0 {
		return nil, fmt.Errorf("%s: no partition table yet", gateway)
	}
	return r, nil
}

// Get returns key's value, or ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	var value []byte
	err := c.do(ctx, key, func(ctx context.Context, owners []string, r *Routing) (bool, error) {
		// The primary first; any loaded replica has every acknowledged write
		// too (see the package documentation), so it may answer instead.
		var errs []error
		for _, node := range owners {
			res, err := c.call(ctx, r, node, http.MethodGet, key, nil)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			switch res.status {
			case http.StatusOK:
				value = res.body
				return true, nil
			case http.StatusNotFound:
				return true, ErrNotFound
			}
			errs = append(errs, res.err())
			if !res.retryable() {
				return true, res.err()
			}
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
	err := c.do(ctx, key, func(ctx context.Context, owners []string, r *Routing) (bool, error) {
		res, err := c.call(ctx, r, owners[0], method, key, value)
		if err != nil {
			return false, err
		}
		if res.status == http.StatusOK {
			ack.Node = res.node
			if err := json.Unmarshal(res.body, &ack.writeResult); err != nil {
				return true, fmt.Errorf("%s: write acknowledged with an unreadable answer: %w", res.node, err)
			}
			return true, nil
		}
		return !res.retryable(), res.err()
	})
	if err != nil {
		return nil, err
	}
	return &ack, nil
}

// do runs one attempt per round, refreshing the view before every round
// but the first, until the attempt is final, the attempts are used up or
// ctx ends. The last error says why.
func (c *Client) do(ctx context.Context, key string, attempt func(context.Context, []string, *Routing) (bool, error)) error {
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
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("kv client: %q: %w (last error: %v)", key, ctx.Err(), last)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 500*time.Millisecond)
		}
		r := c.Routing()
		if r == nil || i > 0 {
			if err := c.Refresh(ctx); err != nil {
				last = err
				continue
			}
			r = c.Routing()
		}
		_, owners, err := r.Locate(key)
		if err != nil {
			last = err
			continue
		}
		done, err := attempt(ctx, owners, r)
		if done {
			return err
		}
		last = err
	}
	return fmt.Errorf("kv client: %q: gave up after %d attempts: %w", key, max(c.Attempts, 1), last)
}

// result is one answer of a kv node.
type result struct {
	node   string
	status int
	body   []byte
	apiErr apiError
}

func (r *result) err() error {
	return fmt.Errorf("%s answered %d %s: %s", r.node, r.status, r.apiErr.Code, r.apiErr.Message)
}

// retryable: the node is not (or no longer, or not yet) the right one, or
// cannot answer for now; another node or a fresher view may succeed.
func (r *result) retryable() bool {
	return r.status == http.StatusMisdirectedRequest || r.status == http.StatusServiceUnavailable || r.status >= 500
}

func (c *Client) call(ctx context.Context, r *Routing, node, method, key string, value []byte) (*result, error) {
	addr := r.KV[node]
	if addr == "" {
		return nil, fmt.Errorf("%s has no kv service in cluster version %d", node, r.Version)
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
