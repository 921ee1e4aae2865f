// Package rpc carries node-to-node requests (join, forwarded proposals,
// rebalance requests, liveness pings) as protobuf bodies of HTTP POSTs on the
// node's one port.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/messages"
)

// Routes and wire constants.
const (
	PathJoin    = "/internal/v1/join"
	PathPropose = "/internal/v1/propose"
	// PathProposeBatch carries several forwarded proposals in one request.
	PathProposeBatch = "/internal/v1/propose-batch"
	PathRebalance    = "/internal/v1/rebalance"
	PathPing         = "/internal/v1/ping"
	// PathMemberStatus asks what a member knows of one node's membership.
	PathMemberStatus = "/internal/v1/member-status"
	// PathTransferLeadership carries a forwarded leadership transfer.
	PathTransferLeadership = "/internal/v1/transfer-leadership"
	ContentType            = "application/x-protobuf"
	// ClusterHeader carries the caller's cluster ID (once it knows it): a
	// node of another cluster refuses the request (409 cluster_mismatch).
	ClusterHeader = "Clusterkit-Cluster-Id"
	// MaxBody bounds request and response bodies: a 1 MiB custom-data value
	// plus its envelope.
	MaxBody = 2 << 20
)

// ErrNotSent wraps failures to connect: the request never left this node,
// so the peer did not act on it.
var ErrNotSent = errors.New("request not sent")

// ErrRemote is wrapped by errors the remote node answered with (as opposed
// to transport failures).
var ErrRemote = errors.New("remote node refused the request")

// RemoteError is a non-200 answer.
type RemoteError struct {
	Addr, Path string
	Status     int
	Code       string
	Message    string
	// ClusterID is the answering node's cluster (sent with a cluster_mismatch).
	ClusterID string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%s%s answered %d %s (%s)", e.Addr, e.Path, e.Status, e.Message, e.Code)
}

// Unwrap makes errors.Is(err, ErrRemote) true.
func (e *RemoteError) Unwrap() error { return ErrRemote }

// Client calls other nodes.
type Client struct {
	http      *http.Client
	token     func() string
	clusterID func() string
}

// Dialer opens connections (the node's Network).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// NewClient returns a client that dials with dial, authenticates with the
// token returned by token on each call (when not empty; token may be nil:
// a reloaded token file applies to the next call) and sends the cluster ID clusterID returns (when not
// empty; clusterID may be nil).
func NewClient(dial Dialer, token func() string, clusterID func() string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
			}
			return conn, nil
		},
		// Forwarded writes from many goroutines go to one leader: keep
		// enough connections alive that they are reused, not redialled.
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{http: &http.Client{Transport: tr}, token: token, clusterID: clusterID}
}

// StaticToken is a token function for NewClient that always returns token.
func StaticToken(token string) func() string { return func() string { return token } }

// Close drops idle connections (their goroutines end).
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Call POSTs req to addr+path and decodes the answer into resp.
func (c *Client) Call(ctx context.Context, addr, path string, req, resp proto.Message) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", ContentType)
	if c.token != nil {
		if t := c.token(); t != "" {
			hr.Header.Set("Authorization", "Bearer "+t)
		}
	}
	if c.clusterID != nil {
		if id := c.clusterID(); id != "" {
			hr.Header.Set(ClusterHeader, id)
		}
	}
	res, err := c.http.Do(hr)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("read answer of %s%s: %w", addr, path, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct{ Error, Code string }
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &RemoteError{Addr: addr, Path: path, Status: res.StatusCode, Code: e.Code, Message: e.Error, ClusterID: res.Header.Get(ClusterHeader)}
	}
	if len(data) > MaxBody {
		return fmt.Errorf("answer of %s%s larger than %d bytes", addr, path, MaxBody)
	}
	return proto.Unmarshal(data, resp)
}

// Join asks addr to admit a node.
func (c *Client) Join(ctx context.Context, addr string, req *messages.JoinRequest) (*messages.JoinResponse, error) {
	resp := &messages.JoinResponse{}
	return resp, c.Call(ctx, addr, PathJoin, req, resp)
}

// Propose asks addr (the leader) to commit a command.
func (c *Client) Propose(ctx context.Context, addr string, req *messages.Propose) (*messages.ProposeResult, error) {
	resp := &messages.ProposeResult{}
	return resp, c.Call(ctx, addr, PathPropose, req, resp)
}

// ProposeBatch asks addr (the leader) to commit several commands; the
// answer has one result per command, in order.
func (c *Client) ProposeBatch(ctx context.Context, addr string, req *messages.ProposeBatch) (*messages.ProposeBatchResult, error) {
	resp := &messages.ProposeBatchResult{}
	return resp, c.Call(ctx, addr, PathProposeBatch, req, resp)
}

// Rebalance asks addr (the leader) for a rebalance.
func (c *Client) Rebalance(ctx context.Context, addr string, req *messages.RebalanceRequest) (*messages.ProposeResult, error) {
	resp := &messages.ProposeResult{}
	return resp, c.Call(ctx, addr, PathRebalance, req, resp)
}

// Ping asks addr who it is and how far its Raft log is.
func (c *Client) Ping(ctx context.Context, addr string, req *messages.PingRequest) (*messages.PingResponse, error) {
	resp := &messages.PingResponse{}
	return resp, c.Call(ctx, addr, PathPing, req, resp)
}

// MemberStatus asks addr what it has committed about node req.Id.
func (c *Client) MemberStatus(ctx context.Context, addr string, req *messages.MemberStatusRequest) (*messages.MemberStatusResponse, error) {
	resp := &messages.MemberStatusResponse{}
	return resp, c.Call(ctx, addr, PathMemberStatus, req, resp)
}

// TransferLeadership asks addr (the leader) to hand leadership over.
func (c *Client) TransferLeadership(ctx context.Context, addr string, req *messages.TransferLeadershipRequest) (*messages.TransferLeadershipResponse, error) {
	resp := &messages.TransferLeadershipResponse{}
	return resp, c.Call(ctx, addr, PathTransferLeadership, req, resp)
}

// Decode reads a protobuf request body (bounded by MaxBody).
func Decode(r *http.Request, m proto.Message) error {
	if ct := r.Header.Get("Content-Type"); ct != ContentType {
		return fmt.Errorf("content type %q, want %s", ct, ContentType)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return err
	}
	if len(data) > MaxBody {
		return fmt.Errorf("body larger than %d bytes", MaxBody)
	}
	return proto.Unmarshal(data, m)
}
