package raftfsm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/clusterkit/clusterkit/internal/auth"
	"github.com/clusterkit/clusterkit/internal/mux"
	"github.com/clusterkit/clusterkit/messages"
)

// DialFunc opens a connection to addr (the node's Network).
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// StreamLayer carries Raft over the node's shared port. A Raft connection
// starts with mux.RaftByte and a hello (2-byte big-endian length, then a
// messages.StreamHello: token, cluster ID, node ID, incarnation); the
// accepting side answers with a StreamHelloAck in the same framing, and
// raft's own protocol follows only once the hello is accepted. A wrong
// token, another cluster's ID or a stale incarnation is refused before raft
// sees a byte, and the dialer is told why.
type StreamLayer struct {
	ln   net.Listener
	dial DialFunc
	hs   Handshake
	log  *slog.Logger

	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // accepted, still open: closed by Close
	logged map[string]bool       // refusals already logged (peer + code)
}

// Handshake is what the stream layer knows of its node.
type Handshake struct {
	// Tokens is the node's current token set (nil or a nil result: none).
	// A peer's hello must carry one of its admin tokens; this node's hellos
	// carry its primary token. Read per connection: a reloaded token file
	// applies to the next connection.
	Tokens func() *auth.Tokens
	// Local returns this node's identity for its hellos: its cluster ID
	// ("" while unknown), its node ID and its last incarnation (0 = none).
	Local func() (clusterID, nodeID string, incarnation uint64)
	// Check judges an accepted hello beyond the token: "" accepts, otherwise
	// a refusal code and reason (see CheckHello). Nil accepts all.
	Check func(h *messages.StreamHello) (code, reason string)
	// Refused, when set, is told that a peer refused this node's hello.
	Refused func(addr string, ack *messages.StreamHelloAck)
}

// Refusal codes of StreamHelloAck.
const (
	helloUnauthorized    = "unauthorized"
	helloClusterMismatch = "cluster_mismatch"
	HelloStale           = "stale_incarnation"
)

// handshakeError is a Raft connection the peer refused.
type handshakeError struct {
	Addr, Code, Reason string
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("raft connection to %s refused (%s): %s", e.Addr, e.Code, e.Reason)
}

// Unwrap makes a cluster mismatch errors.Is(ErrClusterMismatch).
func (e *handshakeError) Unwrap() error {
	if e.Code == helloClusterMismatch {
		return ErrClusterMismatch
	}
	return nil
}

// Quiet tells the log adapter that this failure was logged once already:
// raft's own per-retry error lines about it are debug.
func (e *handshakeError) Quiet() bool { return true }

// CheckHello is the acceptance rule for a Raft connection, given this node's
// cluster ID (ours: from the view or, before it is restored, the node file)
// and its view v: a dialer of another cluster, or a process of this node ID
// older than a life the cluster has admitted since, is refused. Both rules
// only read what the state certainly has: a view that is behind can accept a
// stale dialer (Raft's own term checks still apply) but never refuses a good
// one.
func CheckHello(v *View, ours string, h *messages.StreamHello) (code, reason string) {
	if theirs := h.GetClusterId(); ours != "" && theirs != "" && ours != theirs {
		return helloClusterMismatch, fmt.Sprintf("this node belongs to cluster %s, the dialer (node %q) to cluster %s", ours, h.GetNodeId(), theirs)
	}
	if inc := h.GetIncarnation(); inc != 0 {
		if m, ok := v.Member(h.GetNodeId()); ok && m.Incarnation > inc {
			return HelloStale, fmt.Sprintf("node %q is incarnation %d now (at %s); the dialer is the older incarnation %d", h.GetNodeId(), m.Incarnation, m.IP, inc)
		}
		if d, ok := v.Departed(h.GetNodeId()); ok && d.Incarnation > inc {
			return HelloStale, fmt.Sprintf("node %q had incarnation %d since; the dialer is the older incarnation %d", h.GetNodeId(), d.Incarnation, inc)
		}
	}
	return "", ""
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// preambleTimeout bounds how long an accepted Raft connection may take to
// present its hello.
const preambleTimeout = 5 * time.Second

// maxLoggedRefusals bounds the memory of logged refusals.
const maxLoggedRefusals = 1024

// NewStreamLayer serves raft on ln (the mux's Raft listener) and dials with dial.
func NewStreamLayer(ln net.Listener, dial DialFunc, hs Handshake, logger *slog.Logger) *StreamLayer {
	if hs.Local == nil {
		hs.Local = func() (string, string, uint64) { return "", "", 0 }
	}
	s := &StreamLayer{ln: ln, dial: dial, hs: hs, log: logger, ch: make(chan net.Conn), done: make(chan struct{}),
		conns: map[net.Conn]struct{}{}, logged: map[string]bool{}}
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

// firstTime reports whether key is logged for the first time.
func (s *StreamLayer) firstTime(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logged[key] {
		return false
	}
	if len(s.logged) >= maxLoggedRefusals {
		clear(s.logged)
	}
	s.logged[key] = true
	return true
}

// writeFrame writes a 2-byte length and m.
func writeFrame(c net.Conn, prefix []byte, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if len(data) > 0xffff {
		return errors.New("raft hello longer than 65535 bytes (is the cluster token that long?)")
	}
	buf := make([]byte, 0, len(prefix)+2+len(data))
	buf = append(buf, prefix...)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(data)))
	_, err = c.Write(append(buf, data...))
	return err
}

// readFrame reads a 2-byte length and m.
func readFrame(c net.Conn, m proto.Message) error {
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return err
	}
	data := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(c, data); err != nil {
		return err
	}
	return proto.Unmarshal(data, m)
}

func (s *StreamLayer) tokens() *auth.Tokens {
	if s.hs.Tokens == nil {
		return nil
	}
	return s.hs.Tokens()
}

// tokenOK: one of this node's admin tokens, or none when it has none (a
// token sent to a node without one is a misconfiguration, refused).
func (s *StreamLayer) tokenOK(presented []byte) bool {
	t := s.tokens()
	if !t.Enabled() {
		return len(presented) == 0
	}
	return t.Check(presented) == auth.Admin
}

// check verifies the hello off the accept loop, so a slow peer delays only itself.
func (s *StreamLayer) check(c net.Conn) {
	defer s.wg.Done()
	_ = c.SetDeadline(time.Now().Add(preambleTimeout))
	hello := &messages.StreamHello{}
	if err := readFrame(c, hello); err != nil {
		_ = c.Close()
		return
	}
	clusterID, _, _ := s.hs.Local()
	ack := &messages.StreamHelloAck{ClusterId: clusterID}
	if !s.tokenOK(hello.GetToken()) {
		ack.Code, ack.Reason = helloUnauthorized, "wrong cluster token"
	} else if s.hs.Check != nil {
		ack.Code, ack.Reason = s.hs.Check(hello)
	}
	if ack.Code != "" {
		if s.firstTime("in " + hello.GetNodeId() + " " + ack.Code) {
			s.log.Warn("raft connection refused", "remote", c.RemoteAddr().String(), "peer", hello.GetNodeId(), "code", ack.Code, "reason", ack.Reason)
		}
		_ = writeFrame(c, nil, ack)
		_ = c.Close()
		return
	}
	if err := writeFrame(c, nil, ack); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
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

// Dial opens a Raft connection to address: hello, then the peer's answer.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := s.dial(ctx, string(address))
	if err != nil {
		return nil, err
	}
	clusterID, nodeID, incarnation := s.hs.Local()
	hello := &messages.StreamHello{Token: []byte(s.tokens().Primary()), ClusterId: clusterID, NodeId: nodeID, Incarnation: incarnation}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := writeFrame(c, []byte{mux.RaftByte}, hello); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft hello to %s: %w", address, err)
	}
	ack := &messages.StreamHelloAck{}
	if err := readFrame(c, ack); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raft hello to %s: no answer: %w", address, err)
	}
	if ack.GetCode() != "" {
		_ = c.Close()
		if s.firstTime("out " + string(address) + " " + ack.GetCode()) {
			s.log.Warn("a peer refused this node's raft connection", "addr", string(address), "code", ack.GetCode(), "reason", ack.GetReason())
		}
		if s.hs.Refused != nil {
			s.hs.Refused(string(address), ack)
		}
		return nil, &handshakeError{Addr: string(address), Code: ack.GetCode(), Reason: ack.GetReason()}
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
