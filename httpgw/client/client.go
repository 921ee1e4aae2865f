// Package client is the typed Go client of ClusterKit's HTTP gateway, and the
// one declaration of the gateway's JSON: every request and response body is a
// type of this package, and the gateway (package httpgw) encodes its answers
// with these same types.
//
// It depends only on the standard library and xxhash, so a program that is
// not a ClusterKit node can use it cheaply:
//
//	c, err := client.New("http://10.0.0.5:8080", client.WithToken(token))
//	cl, err := c.Cluster(ctx)                      // GET /cluster, ETag-cached
//	for ev, err := range c.Watch(ctx, client.WatchOptions{}) { ... }  // GET /events, resumed on reconnect
//	r, err := client.NewRouter(ctx, c)             // key -> owners, locally
//	owners, err := r.Locate("user:123")
//
// Every method takes a context first. An answer with a status other than
// 2xx is returned as a *Error (find it with errors.As) that carries the
// status, the gateway's machine-readable code and its message.
//
// The JSON is snake_case throughout; docs/http-api.md and docs/openapi.yaml
// describe it route by route.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxResponse bounds how much of one answer the client reads: the largest
// gateway answers (a /cluster of thousands of partitions, a 1 MiB custom-data
// value) are far below it, and a broken server cannot exhaust memory.
const maxResponse = 64 << 20

// defaultTimeout bounds each request of the default HTTP client; contexts
// may end a request sooner. Changes wait for a commit, so it is longer than
// the gateway's 45 s write deadline for them.
const defaultTimeout = 60 * time.Second

// Error is a non-2xx answer of the gateway. Its JSON form is the gateway's
// error body, {"error": "<message>", "code": "<code>"}.
type Error struct {
	// Status is the HTTP status (not part of the JSON body).
	Status int `json:"-"`
	// Code is machine-readable ("not_found", "unauthorized", ...): branch on it.
	Code string `json:"code"`
	// Message is for people; its text may change.
	Message string `json:"error"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("clusterkit gateway: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("clusterkit gateway: %d %s: %s", e.Status, e.Code, e.Message)
}

// Client calls one node's gateway. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client

	mu          sync.Mutex
	clusterETag string
	cluster     *ClusterResponse
}

// Option configures a Client.
type Option func(*Client) error

// WithToken sends the cluster token (Options.AuthToken of the nodes) as
// "Authorization: Bearer <token>" on every request; the mutating routes
// need it when the cluster has one.
func WithToken(token string) Option {
	return func(c *Client) error {
		if strings.ContainsAny(token, "\r\n") {
			return errors.New("client: the token contains a line break")
		}
		c.token = token
		return nil
	}
}

// WithHTTPClient uses hc for every request (TLS settings, proxies, timeouts).
// The event stream is long-lived: an hc.Timeout would cut it, and Watch then
// reconnects; prefer contexts to bound requests.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("client: WithHTTPClient(nil)")
		}
		c.http = hc
		return nil
	}
}

// New returns a client of the gateway at baseURL ("http://host:port", or
// https when the cluster serves TLS; a bare "host:port" means http).
func New(baseURL string, opts ...Option) (*Client, error) {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: base URL %q: the scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q has no host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q may not have a query or fragment", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	return c, nil
}

// BaseURL is the gateway's URL, as given to New.
func (c *Client) BaseURL() string { return c.base.String() }

// Page selects a window of a paginated route. Zero values take the
// gateway's defaults (offset 0, limit 100; the limit is at most 1000).
type Page struct {
	Offset int
	Limit  int
}

func (p Page) query() url.Values {
	q := url.Values{}
	if p.Offset != 0 {
		q.Set("offset", strconv.Itoa(p.Offset))
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	return q
}

// request is one call to the gateway.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	header http.Header
	body   []byte
	ctype  string
}

// response is an answer that was read completely.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	u := *c.base
	u.RawPath = u.Path + r.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("client: path %q: %w", r.path, err)
	}
	u.Path = p
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// send runs r and reads the whole answer (any status).
func (c *Client) send(ctx context.Context, r request) (*response, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, err)
	}
	if len(data) > maxResponse {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", r.method, r.path, maxResponse)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// errorOf turns a non-2xx answer into an *Error.
func errorOf(resp *response) *Error {
	e := &Error{Status: resp.status}
	if json.Unmarshal(resp.body, e) != nil || (e.Code == "" && e.Message == "") {
		e.Code, e.Message = "", strings.TrimSpace(string(resp.body))
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "..."
		}
	}
	return e
}

// call runs r and decodes a 2xx JSON answer into out (when not nil).
func (c *Client) call(ctx context.Context, r request, out any) (*response, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp.status == http.StatusNotModified {
		return resp, nil
	}
	if resp.status < 200 || resp.status > 299 {
		return resp, errorOf(resp)
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return resp, fmt.Errorf("%s %s: decode the answer: %w", r.method, r.path, err)
		}
	}
	return resp, nil
}

func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	_, err := c.call(ctx, request{method: http.MethodGet, path: path, query: q}, out)
	return err
}

// Health calls GET /health (liveness). A stopped node answers 503: Health
// returns its body and an *Error with status 503 and code "stopped".
func (c *Client) Health(ctx context.Context) (*Health, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/health"})
	if err != nil {
		return nil, err
	}
	var h Health
	if jerr := json.Unmarshal(resp.body, &h); jerr != nil || h.Status == "" {
		return nil, errorOf(resp)
	}
	if resp.status != http.StatusOK {
		return &h, &Error{Status: resp.status, Code: h.Status, Message: "node " + h.NodeID + " is " + h.Status}
	}
	return &h, nil
}

// Ready calls GET /ready (readiness). A node that is not ready answers 503:
// Ready returns its body (Reasons say why) and an *Error with status 503
// and code "not_ready".
func (c *Client) Ready(ctx context.Context) (*Readiness, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/ready"})
	if err != nil {
		return nil, err
	}
	var r Readiness
	if jerr := json.Unmarshal(resp.body, &r); jerr != nil || r.NodeID == "" {
		return nil, errorOf(resp)
	}
	if resp.status != http.StatusOK {
		return &r, &Error{Status: resp.status, Code: "not_ready", Message: strings.Join(r.Reasons, "; ")}
	}
	return &r, nil
}

// DetailedHealth calls GET /health/detailed.
func (c *Client) DetailedHealth(ctx context.Context) (*DetailedHealth, error) {
	var h DetailedHealth
	return &h, c.get(ctx, "/health/detailed", nil, &h)
}

// Cluster calls GET /cluster. It sends the ETag of the last answer it got
// (If-None-Match) and returns that cached answer when the node says 304 Not
// Modified, so polling an unchanged cluster costs no decoding. The value
// returned may be shared with other callers: treat it as read-only.
func (c *Client) Cluster(ctx context.Context) (*ClusterResponse, error) {
	c.mu.Lock()
	etag, cached := c.clusterETag, c.cluster
	c.mu.Unlock()
	r := request{method: http.MethodGet, path: "/cluster"}
	if etag != "" && cached != nil {
		r.header = http.Header{"If-None-Match": {etag}}
	}
	var doc ClusterResponse
	resp, err := c.call(ctx, r, &doc)
	if err != nil {
		return nil, err
	}
	if resp.status == http.StatusNotModified {
		if cached == nil {
			return nil, errors.New("GET /cluster: 304 without a cached answer")
		}
		return cached, nil
	}
	c.mu.Lock()
	c.clusterETag, c.cluster = resp.header.Get("ETag"), &doc
	c.mu.Unlock()
	return &doc, nil
}

// Nodes calls GET /nodes: the members sorted by ID, one page.
func (c *Client) Nodes(ctx context.Context, p Page) (*NodesPage, error) {
	var out NodesPage
	return &out, c.get(ctx, "/nodes", p.query(), &out)
}

// Node calls GET /nodes/{id}; an unknown ID is an *Error with code
// "unknown_node".
func (c *Client) Node(ctx context.Context, id string) (*Node, error) {
	if id == "" {
		return nil, errors.New("client: Node needs an ID")
	}
	var out Node
	return &out, c.get(ctx, "/nodes/"+url.PathEscape(id), nil, &out)
}

// RemoveNode calls DELETE /nodes/{id}: it removes another member for good
// (an admin action; a node removes itself with Leave). It needs the token.
func (c *Client) RemoveNode(ctx context.Context, id string) (*ChangeResult, error) {
	if id == "" {
		return nil, errors.New("client: RemoveNode needs an ID")
	}
	var out ChangeResult
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/nodes/" + url.PathEscape(id)}, &out)
	return &out, err
}

// Partitions calls GET /partitions: one page of the table, in number order.
func (c *Client) Partitions(ctx context.Context, p Page) (*PartitionsPage, error) {
	var out PartitionsPage
	return &out, c.get(ctx, "/partitions", p.query(), &out)
}

// PartitionStats calls GET /partitions/stats.
func (c *Client) PartitionStats(ctx context.Context) (*PartitionStats, error) {
	var out PartitionStats
	return &out, c.get(ctx, "/partitions/stats", nil, &out)
}

// Partition calls GET /partitions/{id} for partition number n.
func (c *Client) Partition(ctx context.Context, n int) (*PartitionDetail, error) {
	if n < 0 {
		return nil, fmt.Errorf("client: partition number %d is negative", n)
	}
	var out PartitionDetail
	return &out, c.get(ctx, "/partitions/partition-"+strconv.Itoa(n), nil, &out)
}

// Locate calls GET /locate?key=: the partition of key and its owners, as the
// node computes them (Router.Locate answers the same without a request).
func (c *Client) Locate(ctx context.Context, key string) (*PartitionDetail, error) {
	if key == "" {
		return nil, errors.New("client: Locate needs a key")
	}
	var out PartitionDetail
	return &out, c.get(ctx, "/locate", url.Values{"key": {key}}, &out)
}

// ConsensusLeader calls GET /consensus/leader; a node that knows no leader
// answers an *Error with code "no_leader".
func (c *Client) ConsensusLeader(ctx context.Context) (*Leader, error) {
	var out Leader
	return &out, c.get(ctx, "/consensus/leader", nil, &out)
}

// ConsensusStats calls GET /consensus/stats.
func (c *Client) ConsensusStats(ctx context.Context) (*ConsensusStats, error) {
	var out ConsensusStats
	return &out, c.get(ctx, "/consensus/stats", nil, &out)
}

// Metrics calls GET /metrics?format=json.
func (c *Client) Metrics(ctx context.Context) (*Metrics, error) {
	var out Metrics
	return &out, c.get(ctx, "/metrics", url.Values{"format": {"json"}}, &out)
}

// PrometheusMetrics calls GET /metrics: the Prometheus text exposition
// format (or OpenMetrics when openMetrics is true), and its content type.
func (c *Client) PrometheusMetrics(ctx context.Context, openMetrics bool) (body []byte, contentType string, err error) {
	r := request{method: http.MethodGet, path: "/metrics"}
	if openMetrics {
		r.header = http.Header{"Accept": {"application/openmetrics-text; version=1.0.0"}}
	}
	resp, err := c.call(ctx, r, nil)
	if err != nil {
		return nil, "", err
	}
	return resp.body, resp.header.Get("Content-Type"), nil
}

// CustomDataKeys calls GET /custom-data: one page of the keys, sorted.
func (c *Client) CustomDataKeys(ctx context.Context, p Page) (*KeysPage, error) {
	var out KeysPage
	return &out, c.get(ctx, "/custom-data", p.query(), &out)
}

// customDataPath escapes key as one path segment (a "/" inside a key is
// escaped too).
func customDataPath(key string) (string, error) {
	if key == "" {
		return "", errors.New("client: custom data needs a key")
	}
	return "/custom-data/" + url.PathEscape(key), nil
}

// CustomData calls GET /custom-data/{key}: the value and its version. With
// consistent, the read is linearizable (a barrier through the leader);
// otherwise the node answers from what it has applied. A missing key is an
// *Error with code "key_not_found".
func (c *Client) CustomData(ctx context.Context, key string, consistent bool) (*Value, error) {
	p, err := customDataPath(key)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if consistent {
		q = url.Values{"consistent": {"true"}}
	}
	resp, err := c.call(ctx, request{method: http.MethodGet, path: p, query: q}, nil)
	if err != nil {
		return nil, err
	}
	v, err := parseETag(resp.header.Get("ETag"))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	return &Value{Value: resp.body, Version: v}, nil
}

// parseETag reads a version ETag, "42" with its quotes.
func parseETag(tag string) (uint64, error) {
	t := strings.TrimPrefix(tag, "W/")
	if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
		return 0, fmt.Errorf("ETag %q is not a quoted version", tag)
	}
	return strconv.ParseUint(t[1:len(t)-1], 10, 64)
}

// WriteOption is a precondition of PutCustomData.
type WriteOption func(http.Header)

// IfVersion writes only when the key is at version (If-Match); otherwise
// the answer is an *Error with status 412 and code "version_mismatch".
func IfVersion(version uint64) WriteOption {
	return func(h http.Header) { h.Set("If-Match", `"`+strconv.FormatUint(version, 10)+`"`) }
}

// IfAbsent writes only when the key does not exist (If-None-Match: *).
func IfAbsent() WriteOption {
	return func(h http.Header) { h.Set("If-None-Match", "*") }
}

// PutCustomData calls PUT /custom-data/{key}: it writes value (at most 1 MiB)
// and returns once the write is committed and applied on the node asked. It
// needs the token.
func (c *Client) PutCustomData(ctx context.Context, key string, value []byte, opts ...WriteOption) (*WriteResult, error) {
	p, err := customDataPath(key)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for _, o := range opts {
		o(h)
	}
	if value == nil {
		value = []byte{}
	}
	var out WriteResult
	_, err = c.call(ctx, request{method: http.MethodPut, path: p, header: h, body: value, ctype: "application/octet-stream"}, &out)
	return &out, err
}

// DeleteCustomData calls DELETE /custom-data/{key}. It needs the token.
func (c *Client) DeleteCustomData(ctx context.Context, key string) (*WriteResult, error) {
	p, err := customDataPath(key)
	if err != nil {
		return nil, err
	}
	var out WriteResult
	_, err = c.call(ctx, request{method: http.MethodDelete, path: p}, &out)
	return &out, err
}

// Join calls POST /join: it admits a running node that is not a member yet
// (ClusterKit nodes join by themselves; this is for operators). It needs the
// token. A refusal is an *Error whose code says why ("invalid_member",
// "unreachable", "duplicate_node", ...).
func (c *Client) Join(ctx context.Context, req *JoinRequest) (*JoinResponse, error) {
	if req == nil || req.Member == nil {
		return nil, errors.New("client: Join needs a member")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out JoinResponse
	_, err = c.call(ctx, request{method: http.MethodPost, path: "/join", body: body, ctype: "application/json"}, &out)
	return &out, err
}

// Leave calls POST /leave: the node asked leaves the cluster, then stops. It
// needs the token.
func (c *Client) Leave(ctx context.Context) (*ChangeResult, error) {
	var out ChangeResult
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/leave"}, &out)
	return &out, err
}

// Rebalance calls POST /rebalance: a new partition table is computed and
// committed now. It needs the token.
func (c *Client) Rebalance(ctx context.Context) (*ChangeResult, error) {
	var out ChangeResult
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/rebalance"}, &out)
	return &out, err
}

// PlanRebalance calls POST /rebalance?dry_run=true: what the next rebalance
// would do, computed by the answering node, changing nothing. It needs the
// token.
func (c *Client) PlanRebalance(ctx context.Context) (*RebalancePlan, error) {
	var out RebalancePlan
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/rebalance", query: url.Values{"dry_run": {"true"}}}, &out)
	return &out, err
}

// TransferLeadership calls POST /leadership/transfer: Raft leadership moves
// to target, or to any other voter when target is "". It needs the token.
func (c *Client) TransferLeadership(ctx context.Context, target string) (*TransferResult, error) {
	r := request{method: http.MethodPost, path: "/leadership/transfer"}
	if target != "" {
		body, err := json.Marshal(TransferRequest{TargetID: target})
		if err != nil {
			return nil, err
		}
		r.body, r.ctype = body, "application/json"
	}
	var out TransferResult
	_, err := c.call(ctx, r, &out)
	return &out, err
}

// Drain calls POST /nodes/{id}/drain: the member hands over everything it
// holds and keeps serving (the answer comes once the flag is committed, not
// once the member is empty: follow /partitions or the events). It needs the
// token.
func (c *Client) Drain(ctx context.Context, id string) (*ChangeResult, error) {
	return c.nodeChange(ctx, id, "drain")
}

// Undrain calls POST /nodes/{id}/undrain: the member gets its share again at
// the next rebalance. It needs the token.
func (c *Client) Undrain(ctx context.Context, id string) (*ChangeResult, error) {
	return c.nodeChange(ctx, id, "undrain")
}

func (c *Client) nodeChange(ctx context.Context, id, verb string) (*ChangeResult, error) {
	if id == "" {
		return nil, errors.New("client: " + verb + " needs a node ID")
	}
	var out ChangeResult
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/nodes/" + url.PathEscape(id) + "/" + verb}, &out)
	return &out, err
}

// PauseRebalancing calls POST /rebalance/pause (maintenance mode: membership
// changes commit, failovers happen, nothing is copied). It needs the token.
func (c *Client) PauseRebalancing(ctx context.Context) (*ChangeResult, error) {
	var out ChangeResult
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/rebalance/pause"}, &out)
	return &out, err
}

// ResumeRebalancing calls POST /rebalance/resume. It needs the token.
func (c *Client) ResumeRebalancing(ctx context.Context) (*ChangeResult, error) {
	var out ChangeResult
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/rebalance/resume"}, &out)
	return &out, err
}
