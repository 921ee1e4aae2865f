// Package memnet is an in-memory network for tests of distributed code.
//
// Every node gets a *Host, which has the Listen/DialContext pair the
// production code uses for TCP, so tests can run a whole cluster in one
// process and inject faults without root: partitions (symmetric and one-way),
// connection resets, delays, cutting a node off, healing.
//
// Connections are full-duplex byte streams with TCP-like behaviour: bytes are
// never lost or reordered on a healthy link, Read returns what is available,
// EOF follows the peer's Close once drained, deadlines produce timeout errors
// (os.ErrDeadlineExceeded), and a closed conn reports net.ErrClosed. Faults
// that real networks turn into "lost packets" become what TCP turns them
// into: held-back bytes (partitions) or broken connections (drops,
// isolation).
//
// The package starts no goroutines of its own: every wait happens in the
// caller's goroutine, bounded by a deadline, a context, or a state change.
package memnet

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// networkName is what Addr.Network() reports, so addresses are never confused
// with real TCP ones.
const networkName = "memnet"

// Port ranges: listeners on port 0 get ports from firstListenPort upwards;
// the local side of dialed conns gets ports from firstEphemeralPort upwards
// (like a kernel's ephemeral range, kept apart so they never look like
// listening ports).
const (
	firstListenPort    = 10000
	firstEphemeralPort = 40000
	maxPort            = 65535
)

// Stats are counters for assertions in tests ("did the fault actually bite?").
type Stats struct {
	Dials          int64 // DialContext calls
	DialsFailed    int64 // DialContext calls that returned an error
	Conns          int   // connections with at least one end still open
	Resets         int64 // connections broken by a fault (drop, isolation, listener closed with the conn unaccepted)
	BytesDelivered int64 // bytes returned by Read, over all conns
}

// Network is one simulated network: the hosts, their listeners, their
// connections and the faults currently in force. All methods are safe for
// concurrent use.
type Network struct {
	mu sync.Mutex
	// rng makes every random decision (dial drops, write resets, jitter), so
	// a seed reproduces them; guarded by mu.
	rng       *rand.Rand
	hosts     map[string]*Host
	listeners map[addr]*listener
	links     map[*link]struct{}
	// changed is closed and replaced on every fault change, waking every
	// blocked reader and dialer so they re-evaluate their path.
	changed chan struct{}

	groups   map[string]int // partition: host → group; nil means no partition
	oneWay   map[[2]string]bool
	isolated map[string]bool
	dropRate float64
	delay    time.Duration
	jitter   time.Duration

	dials, dialsFailed, resets int64
	bytesDelivered             atomic.Int64
}

// New returns a healthy network. The seed drives every random decision
// (dial drops, write resets, jitter) so a failing test can be replayed.
func New(seed int64) *Network {
	return &Network{
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x6d656d6e6574)),
		hosts:     make(map[string]*Host),
		listeners: make(map[addr]*listener),
		links:     make(map[*link]struct{}),
		changed:   make(chan struct{}),
		oneWay:    make(map[[2]string]bool),
		isolated:  make(map[string]bool),
	}
}

// Host returns the host called name, creating it on first use, so every
// component of a node can ask for its host independently. The name is the
// host part of its addresses ("n1" in "n1:7000").
func (n *Network) Host(name string) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.hosts[name]
	if !ok {
		h = &Host{n: n, name: name, nextListen: firstListenPort, nextEphemeral: firstEphemeralPort}
		n.hosts[name] = h
	}
	return h
}

// Partition splits the hosts into groups that cannot talk to each other,
// like a real partition: dials across hang until their context ends, and
// bytes on existing crossing connections are held back (TCP keeps
// retransmitting) and delivered in order after Heal. Hosts not named in any
// group form one more group together. Replaces any previous partition; other
// faults stay.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = make(map[string]int)
	for i, g := range groups {
		for _, h := range g {
			n.groups[h] = i
		}
	}
	n.bumpLocked()
}

// PartitionOneWay black-holes only the direction from → to: bytes written by
// a from host to a to host are held back while the other direction flows.
// New dials between them hang either way, since a handshake needs both
// directions. Adds to the current faults.
func (n *Network) PartitionOneWay(from, to []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, f := range from {
		for _, t := range to {
			if f != t {
				n.oneWay[[2]string{f, t}] = true
			}
		}
	}
	n.bumpLocked()
}

// SetDropRate sets the probability p (clamped to [0, 1]) that a new dial
// fails at once with "connection reset", and p/10 that a Write resets its
// connection (both ends then see errors). A byte stream cannot lose bytes
// silently, so dropped messages become broken connections, as with TCP.
func (n *Network) SetDropRate(p float64) {
	if !(p > 0) { // also catches NaN
		p = 0
	}
	if p > 1 {
		p = 1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropRate = p
	n.bumpLocked()
}

// SetDelay makes every write (and close) deliverable d + uniform[0, jitter)
// after it happens. Order within a connection is kept, as TCP keeps it.
// Applies to writes made from now on.
func (n *Network) SetDelay(d, jitter time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delay = max(d, 0)
	n.jitter = max(jitter, 0)
	n.bumpLocked()
}

// Isolate cuts host off like an unplugged cable that still yields ICMP
// errors: its existing connections are reset at once, and dials from or to
// it fail immediately rather than hang. This is how tests kill a node
// abruptly in-process.
func (n *Network) Isolate(host string) {
	n.mu.Lock()
	n.isolated[host] = true
	var victims []*link
	for l := range n.links {
		if l.a.local.host == host || l.b.local.host == host {
			victims = append(victims, l)
		}
	}
	n.bumpLocked()
	n.mu.Unlock()
	for _, l := range victims {
		l.reset()
	}
}

// Reconnect undoes Isolate for host (its old connections stay broken).
func (n *Network) Reconnect(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.isolated, host)
	n.bumpLocked()
}

// Heal removes every fault: partitions, one-way cuts, drop rate, delay and
// isolation. Held-back bytes become deliverable, in order.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = nil
	clear(n.oneWay)
	clear(n.isolated)
	n.dropRate = 0
	n.delay, n.jitter = 0, 0
	n.bumpLocked()
}

// Stats returns a snapshot of the counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Stats{
		Dials:          n.dials,
		DialsFailed:    n.dialsFailed,
		Conns:          len(n.links),
		Resets:         n.resets,
		BytesDelivered: n.bytesDelivered.Load(),
	}
}

// bumpLocked wakes everyone waiting for a fault change. Caller holds n.mu.
func (n *Network) bumpLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// blockedLocked reports whether bytes from → to are currently black-holed.
// Caller holds n.mu.
func (n *Network) blockedLocked(from, to string) bool {
	if from == to {
		return false
	}
	if n.groups != nil {
		gf, ok := n.groups[from]
		if !ok {
			gf = -1
		}
		gt, ok := n.groups[to]
		if !ok {
			gt = -1
		}
		if gf != gt {
			return true
		}
	}
	return n.oneWay[[2]string{from, to}]
}

// path returns whether from → to is black-holed and the channel that is
// closed when that may change. Taken before a half-pipe's lock so the two
// mutexes never nest; a change in between closes the returned channel.
func (n *Network) path(from, to string) (bool, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blockedLocked(from, to), n.changed
}

// delayLocked draws the delivery delay for one write. Caller holds n.mu.
func (n *Network) delayLocked() time.Duration {
	d := n.delay
	if n.jitter > 0 {
		d += time.Duration(n.rng.Int64N(int64(n.jitter)))
	}
	return d
}

// writeFate decides, under the network lock, whether a write resets its
// connection and how late it is delivered.
func (n *Network) writeFate() (reset bool, delay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dropRate > 0 && n.rng.Float64() < n.dropRate/10 {
		return true, 0
	}
	return false, n.delayLocked()
}

// Host is one machine on the network. It implements the Listen/DialContext
// interface a node uses for all its traffic.
type Host struct {
	n    *Network
	name string
	// guarded by n.mu
	nextListen    int
	nextEphemeral int
}

// Name returns the host name, the host part of its addresses.
func (h *Host) Name() string { return h.name }

// isSelf reports whether host, the host part of an address, means h: its
// name, or a wildcard/loopback spelling as real code uses.
func (h *Host) isSelf(host string) bool {
	switch host {
	case h.name, "", "0.0.0.0", "127.0.0.1", "::", "::1", "localhost":
		return true
	}
	return false
}

// Listen binds addr ("host:port"; host is h's name, empty, "0.0.0.0" or
// "127.0.0.1"; port 0 picks a free port from 10000 up). A bound address fails
// with EADDRINUSE until its listener is closed, like TCP.
func (h *Host) Listen(address string) (net.Listener, error) {
	n := h.n
	fail := func(err error) (net.Listener, error) {
		return nil, &net.OpError{Op: "listen", Net: networkName, Err: err}
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return fail(err)
	}
	if !h.isSelf(host) {
		return fail(syscall.EADDRNOTAVAIL)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return fail(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == 0 {
		port = h.freeListenPortLocked()
		if port == 0 {
			return fail(syscall.EADDRINUSE)
		}
	}
	a := addr{host: h.name, port: port}
	if _, busy := n.listeners[a]; busy {
		return nil, &net.OpError{Op: "listen", Net: networkName, Addr: a, Err: syscall.EADDRINUSE}
	}
	l := &listener{n: n, addr: a, notify: make(chan struct{}), done: make(chan struct{})}
	n.listeners[a] = l
	return l, nil
}

// freeListenPortLocked finds an unbound port for Listen(":0"), or 0 if the
// host has none left. Caller holds n.mu.
func (h *Host) freeListenPortLocked() int {
	for range maxPort - firstListenPort + 1 {
		p := h.nextListen
		h.nextListen++
		if h.nextListen > maxPort {
			h.nextListen = firstListenPort
		}
		if _, busy := h.n.listeners[addr{host: h.name, port: p}]; !busy {
			return p
		}
	}
	return 0
}

// DialContext connects to addr ("host:port"). With no listener there it fails
// at once (connection refused), unless the path is black-holed by a
// partition, in which case it hangs until ctx is done, as a SYN into a
// partition would, and then reports a timeout. Errors are *net.OpError
// wrapping syscall.ECONNREFUSED (no listener), syscall.ECONNRESET (dropped,
// see SetDropRate) or syscall.EHOSTUNREACH (Isolate), so errors.Is works as
// with TCP.
func (h *Host) DialContext(ctx context.Context, address string) (net.Conn, error) {
	n := h.n
	n.mu.Lock()
	n.dials++
	dropped := n.dropRate > 0 && n.rng.Float64() < n.dropRate
	n.mu.Unlock()

	var raddr net.Addr
	fail := func(err error) (net.Conn, error) {
		n.mu.Lock()
		n.dialsFailed++
		n.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: networkName, Addr: raddr, Err: err}
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return fail(err)
	}
	if h.isSelf(host) {
		host = h.name
	}
	port, err := parsePort(portStr)
	if err != nil {
		return fail(err)
	}
	to := addr{host: host, port: port}
	raddr = to
	if err := ctx.Err(); err != nil {
		return fail(dialCtxErr(err))
	}

	for {
		n.mu.Lock()
		switch {
		case n.isolated[h.name] || n.isolated[host]:
			n.mu.Unlock()
			return fail(syscall.EHOSTUNREACH)
		case dropped:
			n.mu.Unlock()
			return fail(syscall.ECONNRESET)
		case n.blockedLocked(h.name, host) || n.blockedLocked(host, h.name):
			changed := n.changed
			n.mu.Unlock()
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return fail(dialCtxErr(ctx.Err()))
			}
		}
		l := n.listeners[to]
		if l == nil {
			n.mu.Unlock()
			return fail(syscall.ECONNREFUSED)
		}
		from := addr{host: h.name, port: h.nextEphemeral}
		h.nextEphemeral++
		if h.nextEphemeral > maxPort {
			h.nextEphemeral = firstEphemeralPort
		}
		lk := newLink(n, from, to)
		if !l.enqueue(lk.b) { // closed after Close dropped it from the map: impossible, but be safe
			n.mu.Unlock()
			return fail(syscall.ECONNREFUSED)
		}
		n.links[lk] = struct{}{}
		n.mu.Unlock()
		return lk.a, nil
	}
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > maxPort {
		return 0, &net.AddrError{Err: "invalid port", Addr: s}
	}
	return p, nil
}

// dialTimeoutError is what a dial hung in a partition returns when its
// context expires: a timeout in every sense callers test for
// (net.Error.Timeout, os.ErrDeadlineExceeded, context.DeadlineExceeded).
type dialTimeoutError struct{}

func (dialTimeoutError) Error() string   { return "i/o timeout" }
func (dialTimeoutError) Timeout() bool   { return true }
func (dialTimeoutError) Temporary() bool { return true }
func (dialTimeoutError) Unwrap() []error {
	return []error{os.ErrDeadlineExceeded, context.DeadlineExceeded}
}

func dialCtxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return dialTimeoutError{}
	}
	return err
}

// addr is a memnet address: Network() "memnet", String() "host:port".
type addr struct {
	host string
	port int
}

func (a addr) Network() string { return networkName }
func (a addr) String() string  { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// listener is a bound address with a queue of connected, unaccepted conns
// (the backlog).
type listener struct {
	n    *Network
	addr addr

	mu     sync.Mutex
	queue  []*conn
	notify chan struct{} // closed and replaced when the queue grows
	closed bool
	done   chan struct{} // closed by Close
}

// enqueue adds an established conn to the backlog; false if closed.
func (l *listener) enqueue(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.queue = append(l.queue, c)
	close(l.notify)
	l.notify = make(chan struct{})
	return true
}

// Accept waits for a conn or Close.
func (l *listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: networkName, Addr: l.addr, Err: net.ErrClosed}
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return c, nil
		}
		notify := l.notify
		l.mu.Unlock()
		select {
		case <-notify:
		case <-l.done:
		}
	}
}

// Close unbinds the address (so it can be bound again) and resets conns that
// were never accepted, as a kernel does with its backlog.
func (l *listener) Close() error {
	l.n.mu.Lock()
	if l.n.listeners[l.addr] == l {
		delete(l.n.listeners, l.addr)
	}
	l.mu.Lock()
	already := l.closed
	pending := l.queue
	l.queue = nil
	if !already {
		l.closed = true
		close(l.done)
	}
	l.mu.Unlock()
	l.n.mu.Unlock()
	if already {
		return &net.OpError{Op: "close", Net: networkName, Addr: l.addr, Err: net.ErrClosed}
	}
	for _, c := range pending {
		c.link.reset()
	}
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }

// link is one connection: two endpoints and a half-pipe per direction.
type link struct {
	n        *Network
	a, b     *conn // a: dialer's end, b: acceptor's end
	openEnds int   // guarded by n.mu
}

func newLink(n *Network, from, to addr) *link {
	ab := newHalfPipe(from.host, to.host)
	ba := newHalfPipe(to.host, from.host)
	l := &link{n: n, openEnds: 2}
	l.a = &conn{n: n, link: l, local: from, remote: to, rd: ba, wr: ab}
	l.b = &conn{n: n, link: l, local: to, remote: from, rd: ab, wr: ba}
	return l
}

// reset breaks the connection like a RST: both ends' reads and writes fail,
// undelivered bytes are discarded.
func (l *link) reset() {
	n := l.n
	n.mu.Lock()
	_, live := n.links[l]
	if live {
		delete(n.links, l)
		n.resets++
	}
	n.mu.Unlock()
	if !live {
		return
	}
	for _, p := range []*halfPipe{l.a.wr, l.b.wr} {
		p.mu.Lock()
		p.reset = true
		p.chunks = nil
		p.signalLocked()
		p.mu.Unlock()
	}
}

// endClosed records that one end was closed; the link stops counting as
// open when both are.
func (l *link) endClosed() {
	n := l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, live := n.links[l]; live {
		l.openEnds--
		if l.openEnds <= 0 {
			delete(n.links, l)
		}
	}
}

// chunk is one write (or the FIN if eof), deliverable from at on.
type chunk struct {
	data []byte
	at   time.Time
	eof  bool
}

// halfPipe carries one direction of a conn, from host `from` to host `to`.
type halfPipe struct {
	from, to string

	mu     sync.Mutex
	chunks []chunk
	last   time.Time     // latest deliverable time queued, to keep order under jitter
	notify chan struct{} // closed and replaced on every change

	readerClosed  bool // the reading end was closed
	writeClosed   bool // FIN queued (Close or CloseWrite)
	reset         bool // connection reset
	readDeadline  time.Time
	writeDeadline time.Time
}

func newHalfPipe(from, to string) *halfPipe {
	return &halfPipe{from: from, to: to, notify: make(chan struct{})}
}

func (p *halfPipe) signalLocked() {
	close(p.notify)
	p.notify = make(chan struct{})
}

// conn is one end of a link.
type conn struct {
	n             *Network
	link          *link
	local, remote addr
	rd, wr        *halfPipe // rd: peer → us, wr: us → peer
	closed        atomic.Bool
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: networkName, Source: c.local, Addr: c.remote, Err: err}
}

// Read returns the bytes that are deliverable now (up to len(b)), waiting
// for some if there are none: for new bytes, for held-back or delayed bytes
// to become deliverable, for the read deadline, for Close or a reset.
func (c *conn) Read(b []byte) (int, error) {
	p := c.rd
	for {
		blocked, changed := c.n.path(p.from, p.to)
		p.mu.Lock()
		if c.closed.Load() || p.readerClosed {
			p.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		if p.reset {
			p.mu.Unlock()
			return 0, c.opErr("read", syscall.ECONNRESET)
		}
		now := time.Now()
		deadline := p.readDeadline
		if !deadline.IsZero() && !now.Before(deadline) {
			p.mu.Unlock()
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(b) == 0 {
			p.mu.Unlock()
			return 0, nil
		}
		var next time.Time // when the first queued chunk becomes deliverable
		if !blocked && len(p.chunks) > 0 {
			got := 0
			for got < len(b) && len(p.chunks) > 0 {
				ch := &p.chunks[0]
				if ch.at.After(now) {
					break
				}
				if ch.eof {
					if got == 0 {
						p.mu.Unlock()
						return 0, io.EOF
					}
					break
				}
				k := copy(b[got:], ch.data)
				got += k
				ch.data = ch.data[k:]
				if len(ch.data) == 0 {
					p.chunks[0] = chunk{}
					p.chunks = p.chunks[1:]
				}
			}
			if got > 0 {
				p.mu.Unlock()
				c.n.bytesDelivered.Add(int64(got))
				return got, nil
			}
			next = p.chunks[0].at
		}
		notify := p.notify
		p.mu.Unlock()
		wait(notify, changed, next, deadline)
	}
}

// wait blocks until notify or changed is closed, or until the earlier
// non-zero one of the two times.
func wait(notify, changed <-chan struct{}, t1, t2 time.Time) {
	wake := t1
	if wake.IsZero() || (!t2.IsZero() && t2.Before(wake)) {
		wake = t2
	}
	var timeout <-chan time.Time
	if !wake.IsZero() {
		t := time.NewTimer(time.Until(wake))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-notify:
	case <-changed:
	case <-timeout:
	}
}

// Write queues a copy of b for the peer; it never blocks (buffering is
// unbounded). Under SetDropRate it may instead reset the connection.
func (c *conn) Write(b []byte) (int, error) {
	p := c.wr
	if err := c.writable(time.Now()); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	reset, delay := c.n.writeFate()
	if reset {
		c.link.reset()
		return 0, c.opErr("write", syscall.ECONNRESET)
	}
	data := append([]byte(nil), b...)
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := c.writableLocked(now); err != nil {
		return 0, err
	}
	p.pushLocked(chunk{data: data}, now.Add(delay))
	return len(b), nil
}

func (c *conn) writable(now time.Time) error {
	c.wr.mu.Lock()
	defer c.wr.mu.Unlock()
	return c.writableLocked(now)
}

// writableLocked reports why a write cannot proceed, if it cannot. Caller
// holds c.wr.mu.
func (c *conn) writableLocked(now time.Time) error {
	p := c.wr
	switch {
	case c.closed.Load():
		return c.opErr("write", net.ErrClosed)
	case !p.writeDeadline.IsZero() && !now.Before(p.writeDeadline):
		return c.opErr("write", os.ErrDeadlineExceeded)
	case p.reset:
		return c.opErr("write", syscall.ECONNRESET)
	case p.writeClosed, p.readerClosed:
		return c.opErr("write", syscall.EPIPE)
	}
	return nil
}

// pushLocked queues ch, deliverable at `at` but never before what is queued
// already, so order is kept. Caller holds p.mu.
func (p *halfPipe) pushLocked(ch chunk, at time.Time) {
	if at.Before(p.last) {
		at = p.last
	}
	p.last = at
	ch.at = at
	p.chunks = append(p.chunks, ch)
	p.signalLocked()
}

// Close closes this end: its own reads and writes fail with net.ErrClosed,
// the peer reads what was written and then EOF.
func (c *conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", net.ErrClosed)
	}
	c.rd.mu.Lock()
	c.rd.readerClosed = true
	c.rd.chunks = nil
	c.rd.signalLocked()
	c.rd.mu.Unlock()
	c.sendFIN()
	c.link.endClosed()
	return nil
}

// CloseWrite half-closes the conn (the peer reads EOF, this end can still
// read), as *net.TCPConn does; net/http's server uses it when available.
func (c *conn) CloseWrite() error {
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	c.sendFIN()
	return nil
}

// sendFIN queues EOF after everything written, subject to the same delay.
func (c *conn) sendFIN() {
	c.n.mu.Lock()
	delay := c.n.delayLocked()
	c.n.mu.Unlock()
	now := time.Now()
	p := c.wr
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writeClosed || p.reset {
		p.writeClosed = true
		return
	}
	p.writeClosed = true
	p.pushLocked(chunk{eof: true}, now.Add(delay))
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline also wakes a blocked Read so that a deadline in the past
// aborts it, which net/http relies on.
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rd.mu.Lock()
	c.rd.readDeadline = t
	c.rd.signalLocked()
	c.rd.mu.Unlock()
	return nil
}

// SetWriteDeadline sets when writes start failing with a timeout. Writes
// never block, so only a deadline already passed matters.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.wr.mu.Lock()
	c.wr.writeDeadline = t
	c.wr.mu.Unlock()
	return nil
}

var (
	_ net.Conn     = (*conn)(nil)
	_ net.Listener = (*listener)(nil)
	_ net.Addr     = addr{}
)
