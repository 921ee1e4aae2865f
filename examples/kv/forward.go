package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Server routing: a node that cannot serve a request itself (not an owner,
// or not the primary, or still loading the partition) sends it on, as the
// smart client would, and relays the answer.

// forwardedHeader marks a forwarded request with the node that forwarded
// it: its receiver answers itself, never forwards again (no loops; a
// receiver that is not the owner any more answers not_owner, and the
// forwarding node retries with a fresher table).
const forwardedHeader = "X-Kv-Forwarded-By"

// viaHeader names, on a forwarded answer, the node that forwarded it.
const viaHeader = "X-Kv-Via"

// forwardTimeout bounds a forwarded request, its retries included: long
// enough to outlast failure detection and a failover, as the smart
// client's OpTimeout does.
const forwardTimeout = 10 * time.Second

// forwards reports whether a refusal of this node is to be forwarded: under
// server routing, a request from a client (not forwarded already) that
// this node does not serve (not_owner, loading, or not_ready: it has no
// table yet) or could not complete for now (any 503: a replica's newer
// table refused the write, the queue is full, ...). The client is plain:
// the node retries for it, as the smart client would.
func (s *server) forwards(r *http.Request, e *apiError) bool {
	if s.routing != RoutingServer || r.Header.Get(forwardedHeader) != "" {
		return false
	}
	return e.Code == "not_owner" || e.Status == http.StatusServiceUnavailable
}

// forward sends the request for key to the partition's primary (and, for a
// read under sync replication, to its replicas next) and relays the first
// final answer. On not_owner, loading, busy or an unreachable node it
// waits for this node's table to change and retries, with backoff.
func (s *server) forward(w http.ResponseWriter, r *http.Request, key string, value []byte) {
	ctx, cancel := context.WithTimeout(r.Context(), forwardTimeout)
	defer cancel()
	// A stopping node gives up at once: its shutdown waits for handlers.
	defer context.AfterFunc(s.st.ctx, cancel)()
	backoff := 20 * time.Millisecond
	last := "no attempt"
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				attempt = 50
				continue
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 500*time.Millisecond)
		}
		p, err := s.ck.GetPartition(key)
		if err != nil {
			last = err.Error()
			continue
		}
		targets := []string{p.PrimaryNode}
		if r.Method == http.MethodGet && s.replication == ReplicationSync {
			targets = append(targets, p.ReplicaNodes...)
		}
		kv := s.ck.ServiceAddresses("kv")
		for _, node := range targets {
			addr := kv[node]
			if addr == "" {
				last = fmt.Sprintf("%s: no kv service", node)
				continue
			}
			resp, err := s.send(ctx, r.Method, s.kvAddrOf(node, addr), key, value)
			if err != nil {
				last = fmt.Sprintf("%s: %v", node, err)
				continue
			}
			if resp.status == http.StatusMisdirectedRequest || resp.status == http.StatusServiceUnavailable {
				last = fmt.Sprintf("%s: %d %s", node, resp.status, bytes.TrimSpace(resp.body))
				continue
			}
			h := w.Header()
			for k, v := range resp.header {
				if k == "Content-Type" || len(k) > 5 && k[:5] == "X-Kv-" {
					h[k] = v
				}
			}
			h.Set(viaHeader, s.st.self)
			w.WriteHeader(resp.status)
			_, _ = w.Write(resp.body)
			return
		}
	}
	writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "forward_failed",
		Message: fmt.Sprintf("%s could not reach the owner of %q within %v: %s", s.st.self, key, forwardTimeout, last)})
}

// kvAddrOf is node's kv address as this node reaches it.
func (s *server) kvAddrOf(node, addr string) string {
	for _, n := range s.ck.GetCluster().Nodes {
		if n.ID == node {
			return serviceAddr(addr, n.IP)
		}
	}
	return addr
}

// isDial reports whether err is a refused (or impossible) connection: the
// request was not sent.
func isDial(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// forwarded is one answer of the node a request was forwarded to.
type forwarded struct {
	status int
	header http.Header
	body   []byte
}

// send makes one forwarded request (writes get twice as long: the primary
// waits for its replicas).
func (s *server) send(ctx context.Context, method, addr, key string, value []byte) (*forwarded, error) {
	timeout := 2 * time.Second
	var body io.Reader
	if method != http.MethodGet {
		timeout *= 2
		body = bytes.NewReader(value)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/kv/"+url.PathEscape(key), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(forwardedHeader, s.st.self)
	resp, err := s.fwd.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxValue+1))
	if err != nil {
		return nil, err
	}
	return &forwarded{status: resp.StatusCode, header: resp.Header, body: data}, nil
}
