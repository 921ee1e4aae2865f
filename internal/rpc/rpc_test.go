package rpc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/messages"
)

func dialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// A request that could not be sent is told apart from one whose answer was
// lost: only the first is safe to retry elsewhere.
func TestNotSentOnlyWhenNothingWasSent(t *testing.T) {
	c := NewClient(dialer, nil, nil)
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, closed, &messages.PingRequest{}); !errors.Is(err, ErrNotSent) {
		t.Fatalf("refused connection: %v, want ErrNotSent", err)
	}

	// The server reads the request, then drops the connection.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
	}))
	defer srv.Close()
	_, err = c.Propose(ctx, srv.Listener.Addr().String(), &messages.Propose{})
	if err == nil || errors.Is(err, ErrNotSent) {
		t.Fatalf("answer lost after sending: %v, must not be ErrNotSent", err)
	}
}
