// Package crashnet is a TCP network for one in-process node that can be made
// to vanish at once, as if its process had been killed: Crash closes every
// listener and connection the node has and refuses new ones. The peers see
// what they would see after kill -9 (connections reset, dials refused), while
// the crashed node's goroutines run on until its owner calls Stop.
//
// The demo and the benchmark program use it to kill nodes that share one
// process; tests of the library itself use internal/memnet instead.
package crashnet

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrCrashed is returned by Listen and DialContext after Crash.
var ErrCrashed = errors.New("crashnet: node crashed")

// Network carries one node's traffic over real TCP (it satisfies
// clusterkit.Network). The zero value is ready to use.
type Network struct {
	Dialer net.Dialer

	mu        sync.Mutex
	crashed   bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
}

// Listen listens on TCP and tracks the listener and what it accepts.
func (n *Network) Listen(addr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.crashed {
		return nil, ErrCrashed
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if n.listeners == nil {
		n.listeners = map[net.Listener]struct{}{}
	}
	n.listeners[ln] = struct{}{}
	return &listener{Listener: ln, n: n}, nil
}

// DialContext dials TCP and tracks the connection.
func (n *Network) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	if n.Crashed() {
		return nil, ErrCrashed
	}
	c, err := n.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return n.track(c)
}

// Crash closes every listener and connection and refuses new ones. It is
// idempotent.
func (n *Network) Crash() {
	n.mu.Lock()
	n.crashed = true
	lns, conns := n.listeners, n.conns
	n.listeners, n.conns = nil, nil
	n.mu.Unlock()
	for ln := range lns {
		_ = ln.Close()
	}
	for c := range conns {
		// A reset, not a FIN: the peer learns at once, as after kill -9.
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// Crashed reports whether Crash was called.
func (n *Network) Crashed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.crashed
}

// track registers c, or closes it if the node crashed meanwhile.
func (n *Network) track(c net.Conn) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.crashed {
		_ = c.Close()
		return nil, ErrCrashed
	}
	if n.conns == nil {
		n.conns = map[net.Conn]struct{}{}
	}
	n.conns[c] = struct{}{}
	return &conn{Conn: c, n: n}, nil
}

func (n *Network) forget(c net.Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

type listener struct {
	net.Listener
	n *Network
}

func (l *listener) Close() error {
	l.n.mu.Lock()
	delete(l.n.listeners, l.Listener)
	l.n.mu.Unlock()
	return l.Listener.Close()
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, err := l.n.track(c)
	if err != nil {
		return nil, net.ErrClosed
	}
	return tc, nil
}

type conn struct {
	net.Conn
	n    *Network
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.n.forget(c.Conn) })
	return c.Conn.Close()
}
