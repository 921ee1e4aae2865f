package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// plainClient is what server routing serves: an HTTP client that knows
// the nodes' kv addresses and nothing of the cluster. It sends each
// request to the next node in turn, and to the one after when a node
// refuses the connection (as a load balancer does); it retries nothing
// else.
type plainClient struct {
	http  *http.Client
	addrs func() []string
	next  atomic.Uint64
}

func (p *plainClient) Close() { p.http.CloseIdleConnections() }

func (p *plainClient) do(ctx context.Context, method, key string, body []byte) ([]byte, error) {
	addrs := p.addrs()
	start := p.next.Add(1)
	var last error
	for i := range len(addrs) {
		addr := addrs[(int(start)+i)%len(addrs)]
		var rd io.Reader
		if body != nil {
			rd = strings.NewReader(string(body))
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		req, err := http.NewRequestWithContext(rctx, method, "http://"+addr+"/kv/"+key, rd)
		if err != nil {
			cancel()
			return nil, err
		}
		resp, err := p.http.Do(req)
		if err != nil {
			cancel()
			last = err
			if isDial(err) {
				continue
			}
			return nil, err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		switch {
		case err != nil:
			return nil, err
		case resp.StatusCode == http.StatusOK:
			return data, nil
		case resp.StatusCode == http.StatusNotFound:
			return nil, ErrNotFound
		default:
			return nil, fmt.Errorf("%s: %s: %s", addr, resp.Status, strings.TrimSpace(string(data)))
		}
	}
	return nil, fmt.Errorf("no node accepted the connection: %w", last)
}

func (p *plainClient) Put(ctx context.Context, key string, value []byte) error {
	_, err := p.do(ctx, http.MethodPut, key, value)
	return err
}

func (p *plainClient) Get(ctx context.Context, key string) ([]byte, error) {
	return p.do(ctx, http.MethodGet, key, nil)
}
