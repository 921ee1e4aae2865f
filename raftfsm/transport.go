package raftfsm

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clusterkit/clusterkit/internal/mux"
)

// DialFunc opens a connection to addr (the node's Network).
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// StreamLayer carries Raft over the node's shared port: a Raft connection is
// mux.RaftByte, a 2-byte big-endian token length and the cluster token, then
// raft's own protocol. Connections with a wrong token are closed before raft
// sees them.
type StreamLayer struct {
	ln    net.Listener
	dial  DialFunc
	token []byte
	log   *slog.Logger

	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // accepted, still open: closed by Close
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// preambleTimeout bounds how long an accepted Raft connection may take to
// present its token.
const preambleTimeout = 5 * time.Second

// NewStreamLayer serves raft on ln (the mux's Raft listener) and dials with dial.
func NewStreamLayer(ln net.Listener, dial DialFunc, token string, logger *slog.Logger) *StreamLayer {
	s := &StreamLayer{ln: ln, dial: dial, token: []byte(token), log: logger, ch: make(chan net.Conn), done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func (s *StreamLayer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // the mux closed
		}
		s.wg.Add(1)
		go s.check(c)
	}
}

// check verifies the token off the accept loop, so a slow peer delays only itself.
func (s *StreamLayer) check(c net.Conn) {
	defer s.wg.Done()
	_ = c.SetReadDeadline(time.Now().Add(preambleTimeout))
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		_ = c.Close()
		return
	}
	got := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(c, got); err != nil {
		_ = c.Close()
		return
	}
	if subtle.ConstantTimeCompare(got, s.token) != 1 {
		s.log.Warn("raft connection refused: wrong cluster token", "remote", c.RemoteAddr().String())
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	tc := &trackedConn{Conn: c, s: s}
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		_ = c.Close()
		return
	default:
	}
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	select {
	case s.ch <- tc:
	case <-s.done:
		_ = tc.Close()
	}
}

// trackedConn leaves the layer's set when closed.
type trackedConn struct {
	net.Conn
	s    *StreamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// Accept returns the next authenticated Raft connection.
func (s *StreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.ch:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the connections it accepted, so raft's
// per-connection handlers end (raft's transport calls it on shutdown).
func (s *StreamLayer) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		close(s.done)
		conns := s.conns
		s.conns = map[net.Conn]struct{}{}
		s.mu.Unlock()
		_ = s.ln.Close()
		for c := range conns {
			_ = c.Close()
		}
	})
	return nil
}

// Wait blocks until the layer's goroutines have ended (after Close and after
// the listener it reads from is closed).
func (s *StreamLayer) Wait() { s.wg.Wait() }

// Addr is the shared listening address.
func (s *StreamLayer) Addr() net.Addr { return s.ln.Addr() }

// Dial opens a Raft connection to address.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.dial(ctx, string(address))
	if err != nil {
		return nil, err
	}
	if len(s.token) > 0xffff {
		_ = c.Close()
		return nil, errors.New("cluster token longer than 65535 bytes")
	}
	pre := make([]byte, 3+len(s.token))
	pre[0] = mux.RaftByte
	binary.BigEndian.PutUint16(pre[1:3], uint16(len(s.token)))
	copy(pre[3:], s.token)
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(pre); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft preamble to %s: %w", address, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}
