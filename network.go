package clusterkit

import (
	"context"
	"net"
)

// Network is how a node listens and dials: all of its traffic (Raft, HTTP,
// node-to-node requests) goes through it. TCPNetwork is the default; the
// test harness substitutes an in-memory network that can partition, drop,
// delay and cut links.
type Network interface {
	// Listen listens on addr (host:port).
	Listen(addr string) (net.Listener, error)
	// DialContext connects to addr (host:port).
	DialContext(ctx context.Context, addr string) (net.Conn, error)
}

// TCPNetwork is the real network.
type TCPNetwork struct {
	Dialer net.Dialer
}

// Listen listens on TCP.
func (n *TCPNetwork) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// DialContext dials TCP.
func (n *TCPNetwork) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	return n.Dialer.DialContext(ctx, "tcp", addr)
}
