// Package mux shares one listening address between Raft and HTTP: it reads
// the first byte of every accepted connection and hands Raft connections
// (which start with RaftByte) to one listener and everything else (HTTP
// requests start with an ASCII method name, TLS with 0x16) to another.
package mux

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// RaftByte opens every Raft connection. It is not printable ASCII and not a
// TLS record type, so it never collides with HTTP or HTTPS.
const RaftByte byte = 0xC1

// peekTimeout bounds how long a connection may stay silent before its first
// byte; a client that connects and says nothing cannot hold a goroutine.
const peekTimeout = 10 * time.Second

// Mux demultiplexes one listener.
type Mux struct {
	ln   net.Listener
	log  *slog.Logger
	raft *subListener
	http *subListener
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu      sync.Mutex
	peeking map[net.Conn]struct{} // connections whose first byte is awaited
}

// New starts demultiplexing ln. Close stops it and closes ln.
func New(ln net.Listener, logger *slog.Logger) *Mux {
	m := &Mux{ln: ln, log: logger, done: make(chan struct{}), peeking: map[net.Conn]struct{}{}}
	m.raft = &subListener{m: m, ch: make(chan net.Conn), closed: make(chan struct{})}
	m.http = &subListener{m: m, ch: make(chan net.Conn), closed: make(chan struct{})}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

// Raft returns the listener of Raft connections (the RaftByte is consumed).
func (m *Mux) Raft() net.Listener { return m.raft }

// HTTP returns the listener of every other connection (nothing consumed).
func (m *Mux) HTTP() net.Listener { return m.http }

// Addr is the shared address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Close stops accepting, closes both sub-listeners and waits for the
// goroutines. Connections already handed out are the receivers' to close.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.ln.Close()
		m.mu.Lock()
		for c := range m.peeking {
			_ = c.Close() // unblocks its route goroutine
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
	return err
}

func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	var backoff time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			m.log.Error("accept failed; no more connections on this address", "error", err)
			return
		}
		backoff = 0
		m.wg.Add(1)
		go m.route(conn)
	}
}

// route reads the first byte off the accept loop, so a slow client delays
// only itself.
func (m *Mux) route(conn net.Conn) {
	defer m.wg.Done()
	m.mu.Lock()
	select {
	case <-m.done:
		m.mu.Unlock()
		_ = conn.Close()
		return
	default:
	}
	m.peeking[conn] = struct{}{}
	m.mu.Unlock()
	_ = conn.SetReadDeadline(time.Now().Add(peekTimeout))
	br := bufio.NewReaderSize(conn, 16)
	first, err := br.Peek(1)
	m.mu.Lock()
	delete(m.peeking, conn)
	m.mu.Unlock()
	if err != nil {
		_ = conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	target := m.http
	var c net.Conn = &peekedConn{Conn: conn, r: br}
	if first[0] == RaftByte {
		_, _ = br.Discard(1)
		target = m.raft
	}
	select {
	case target.ch <- c:
	case <-target.closed:
		_ = conn.Close()
	case <-m.done:
		_ = conn.Close()
	}
}

// peekedConn replays the peeked bytes before reading from the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

type subListener struct {
	m      *Mux
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}

// Close stops this side only (new connections for it are closed); the shared
// socket stays open until the Mux is closed, so HTTP can shut down while Raft
// still runs and the other way round.
func (l *subListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.m.ln.Addr() }
