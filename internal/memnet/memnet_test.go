package memnet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/clusterkit/clusterkit/internal/memnet"
)

// netface is the interface nodes use; *Host must satisfy it structurally.
type netface interface {
	Listen(addr string) (net.Listener, error)
	DialContext(ctx context.Context, addr string) (net.Conn, error)
}

var _ netface = (*memnet.Host)(nil)

// pair returns both ends of a fresh conn from host `from` to a listener on
// host `to`; everything is closed at cleanup.
func pair(t *testing.T, n *memnet.Network, from, to string) (client, server net.Conn) {
	t.Helper()
	l, err := n.Host(to).Listen(to + ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	client, err = n.Host(from).DialContext(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func readAll(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf)
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// expectTimeout reads with a short deadline and wants a timeout (no data).
func expectTimeout(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if !isTimeout(err) {
		t.Fatalf("read = %d %q, %v; want timeout", n, buf[:n], err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestEchoAndAddrs(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	if h1, h2 := n.Host("n1"), n.Host("n1"); h1 != h2 || h1.Name() != "n1" {
		t.Fatal("Host is not stable")
	}
	l, err := n.Host("n1").Listen("n1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr().Network() != "memnet" || l.Addr().String() != "n1:7000" {
		t.Fatalf("listener addr %s %s", l.Addr().Network(), l.Addr())
	}
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(c, c) // echo until EOF
		c.Close()
		done <- err
	}()
	c, err := n.Host("n2").DialContext(context.Background(), "n1:7000")
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteAddr().String() != "n1:7000" || c.LocalAddr().Network() != "memnet" {
		t.Fatalf("addrs %s → %s", c.LocalAddr(), c.RemoteAddr())
	}
	if h, _, _ := net.SplitHostPort(c.LocalAddr().String()); h != "n2" {
		t.Fatalf("local addr %s", c.LocalAddr())
	}
	write(t, c, "hello ")
	write(t, c, "world")
	if got := readAll(t, c, 11); got != "hello world" {
		t.Fatalf("echo = %q", got)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after own close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after own close: %v", err)
	}
	s := n.Stats()
	if s.Dials != 1 || s.DialsFailed != 0 || s.Conns != 0 || s.BytesDelivered != 22 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPartialReadsAndEOF(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	c, s := pair(t, n, "a", "b")
	write(t, c, "0123456789")
	c.Close()
	var got []byte
	buf := make([]byte, 3)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		k, err := s.Read(buf)
		if k > 3 {
			t.Fatalf("read %d > len(buf)", k)
		}
		got = append(got, buf[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != "0123456789" {
		t.Fatalf("got %q", got)
	}
	if _, err := s.Read(buf); err != io.EOF {
		t.Fatalf("second EOF read: %v", err)
	}
	// Writing to a conn whose peer is gone fails.
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("write to closed peer succeeded")
	}
}

func TestReadDeadline(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	c, s := pair(t, n, "a", "b")
	start := time.Now()
	s.SetReadDeadline(start.Add(50 * time.Millisecond))
	_, err := s.Read(make([]byte, 1))
	if !isTimeout(err) {
		t.Fatalf("want timeout, got %v", err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("deadline fired early")
	}

	// Moving the deadline into the past aborts a blocked read (net/http does this).
	s.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := s.Read(make([]byte, 1)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	s.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-errc:
		if !isTimeout(err) {
			t.Fatalf("want timeout, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("past deadline did not wake the reader")
	}

	// First-byte peek after a timeout still works, and the conn is usable.
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	write(t, c, "xy")
	one := make([]byte, 1)
	if k, err := s.Read(one); k != 1 || err != nil || one[0] != 'x' {
		t.Fatalf("peek = %d %q %v", k, one, err)
	}
	if got := readAll(t, s, 1); got != "y" {
		t.Fatalf("rest = %q", got)
	}

	// Close wakes a blocked reader with ErrClosed.
	go func() { _, err := s.Read(make([]byte, 1)); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}

	// Past write deadline → timeout.
	c.SetWriteDeadline(time.Unix(1, 0))
	if _, err := c.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("write past deadline: %v", err)
	}
}

func TestListenDialErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	h := n.Host("n1")
	l, err := h.Listen("0.0.0.0:8000")
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr().String() != "n1:8000" {
		t.Fatalf("addr %s", l.Addr())
	}
	if _, err := h.Listen("n1:8000"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("busy listen: %v", err)
	}
	if _, err := h.Listen("other:8001"); err == nil {
		t.Fatal("listen on another host's name succeeded")
	}
	l2, err := h.Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	if l2.Addr().String() != "n1:10000" {
		t.Fatalf("port 0 gave %s", l2.Addr())
	}
	l2.Close()

	// Accept returns ErrClosed after Close; a second Close errors.
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after close: %v", err)
	}
	if err := l.Close(); err == nil {
		t.Fatal("second close succeeded")
	}

	// Refused at once (no listener), even with a ctx that never ends.
	start := time.Now()
	_, err = n.Host("n2").DialContext(context.Background(), "n1:8000")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial with no listener: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("refusal was not immediate")
	}

	// Rebind after close.
	l3, err := h.Listen("127.0.0.1:8000")
	if err != nil {
		t.Fatalf("rebind: %v", err)
	}
	defer l3.Close()
	c, err := n.Host("n2").DialContext(context.Background(), "n1:8000")
	if err != nil {
		t.Fatal(err)
	}
	// Closing the listener with the conn unaccepted resets it.
	l3.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on unaccepted conn after listener close: %v", err)
	}
	c.Close()
	if s := n.Stats(); s.Dials != 2 || s.DialsFailed != 1 || s.Resets != 1 || s.Conns != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestHTTP(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	l, err := n.Host("srv").Listen("srv:80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hi %s via %s", r.URL.Path, r.RemoteAddr)
		}),
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       2 * time.Second,
		WriteTimeout:      2 * time.Second,
		IdleTimeout:       5 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	cli := n.Host("cli")
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return cli.DialContext(ctx, addr)
		},
		MaxIdleConnsPerHost: 2,
	}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for i := range 5 {
		resp, err := hc.Get(fmt.Sprintf("http://srv:80/p%d", i))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("hi /p%d via cli:", i); !bytes.HasPrefix(body, []byte(want)) {
			t.Fatalf("body %q, want prefix %q", body, want)
		}
	}
	if d := n.Stats().Dials; d != 1 {
		t.Fatalf("keep-alive not used: %d dials", d)
	}
	tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
}

func TestPartition(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	c, s := pair(t, n, "n2", "n1") // c on n2, s on n1
	n.Partition([]string{"n1"}, []string{"n2", "n3"})

	// A dial across hangs until its ctx expires, then reports a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	_, err := n.Host("n2").DialContext(ctx, s.LocalAddr().String())
	cancel()
	if !isTimeout(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial across partition: %v", err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("dial across partition did not hang")
	}
	// A cancelled ctx also ends the hang.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := n.Host("n1").DialContext(ctx, c.LocalAddr().String()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled dial: %v", err)
	}

	// Bytes on the existing crossing conn are held back, both ways.
	write(t, c, "hello ")
	write(t, c, "world")
	write(t, s, "back")
	expectTimeout(t, s)
	expectTimeout(t, c)

	// A reader blocked in the partition is woken by Heal and gets it all, in order.
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 11)
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadFull(s, buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf)
	}()
	time.Sleep(20 * time.Millisecond)
	n.Heal()
	if g := <-got; g != "hello world" {
		t.Fatalf("after heal: %q", g)
	}
	if g := readAll(t, c, 4); g != "back" {
		t.Fatalf("after heal, other way: %q", g)
	}
}

func TestPartitionUnnamedHostsGroupTogether(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	c23, s23 := pair(t, n, "n2", "n3")
	c21, _ := pair(t, n, "n2", "n1")
	n.Partition([]string{"n1"}) // n2 and n3 are together
	write(t, c23, "ok")
	if g := readAll(t, s23, 2); g != "ok" {
		t.Fatalf("within group: %q", g)
	}
	write(t, c21, "held")
	expectTimeout(t, c21) // nothing comes back, as n1 is cut off

	// A new Partition replaces the old one.
	n.Partition([]string{"n1", "n2"}, []string{"n3"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := n.Host("n1").Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cc, err := n.Host("n2").DialContext(ctx, l.Addr().String())
	if err != nil {
		t.Fatalf("dial within new group: %v", err)
	}
	cc.Close()
	n.Heal()
}

func TestPartitionOneWay(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	c, s := pair(t, n, "n2", "n1") // c on n2, s on n1
	n.PartitionOneWay([]string{"n1"}, []string{"n2"})

	write(t, s, "n1→n2")
	expectTimeout(t, c)
	write(t, c, "n2→n1")
	if g := readAll(t, s, len("n2→n1")); g != "n2→n1" {
		t.Fatalf("open direction: %q", g)
	}
	for _, d := range [][2]string{{"n1", "n2"}, {"n2", "n1"}} {
		l, err := n.Host(d[1]).Listen(":0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, err = n.Host(d[0]).DialContext(ctx, l.Addr().String())
		cancel()
		l.Close()
		if !isTimeout(err) {
			t.Fatalf("dial %s→%s: %v", d[0], d[1], err)
		}
	}
	n.Heal()
	if g := readAll(t, c, len("n1→n2")); g != "n1→n2" {
		t.Fatalf("after heal: %q", g)
	}
}

func TestIsolate(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	c, s := pair(t, n, "n2", "n1")
	write(t, c, "unread") // discarded by the reset

	errc := make(chan error, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	n.Isolate("n1")
	if err := <-errc; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("blocked read on isolated conn: %v", err)
	}
	if _, err := s.Read(make([]byte, 8)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on isolated host: %v", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write on isolated host: %v", err)
	}

	l, err := n.Host("n1").Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := n.Host("n2").DialContext(ctx, l.Addr().String()); err == nil || isTimeout(err) {
		t.Fatalf("dial to isolated host: %v", err)
	}
	if _, err := n.Host("n1").DialContext(ctx, "n2:1"); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("dial from isolated host: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("dials to/from an isolated host were not immediate")
	}

	n.Reconnect("n1")
	cc, err := n.Host("n2").DialContext(ctx, l.Addr().String())
	if err != nil {
		t.Fatalf("dial after reconnect: %v", err)
	}
	cc.Close()
	if s := n.Stats(); s.Resets != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDropRate(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	l, err := n.Host("n1").Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, s := pair(t, n, "n2", "n1")

	n.SetDropRate(1)
	for range 5 {
		if _, err := n.Host("n2").DialContext(context.Background(), l.Addr().String()); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial at p=1: %v", err)
		}
	}
	// Writes reset the conn with p/10; within 200 writes that happens.
	var werr error
	for range 200 {
		if _, werr = c.Write([]byte("x")); werr != nil {
			break
		}
	}
	if !errors.Is(werr, syscall.ECONNRESET) {
		t.Fatalf("no write reset at p=1: %v", werr)
	}
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("peer of reset conn: %v", err)
	}

	n.SetDropRate(0)
	cc, err := n.Host("n2").DialContext(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatalf("dial at p=0: %v", err)
	}
	cc.Close()
}

func TestDropDeterminism(t *testing.T) {
	defer goleak.VerifyNone(t)
	outcomes := func(seed int64) string {
		n := memnet.New(seed)
		l, err := n.Host("n1").Listen(":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		n.SetDropRate(0.5)
		var b []byte
		for range 64 {
			c, err := n.Host("n2").DialContext(context.Background(), l.Addr().String())
			if err != nil {
				b = append(b, '0')
				continue
			}
			b = append(b, '1')
			c.Close()
		}
		return string(b)
	}
	a, b := outcomes(7), outcomes(7)
	if a != b {
		t.Fatalf("same seed, different outcomes:\n%s\n%s", a, b)
	}
	if !bytes.Contains([]byte(a), []byte("0")) || !bytes.Contains([]byte(a), []byte("1")) {
		t.Fatalf("p=0.5 gave %s", a)
	}
	if outcomes(8) == a {
		t.Fatal("different seeds gave the same 64 outcomes")
	}
}

func TestDelay(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := memnet.New(1)
	c, s := pair(t, n, "n2", "n1")
	const d = 80 * time.Millisecond
	n.SetDelay(d, 40*time.Millisecond)
	start := time.Now()
	for i := range 10 {
		write(t, c, fmt.Sprint(i))
	}
	if g := readAll(t, s, 10); g != "0123456789" {
		t.Fatalf("order under jitter: %q", g)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("delivered after %v, before the %v delay", el, d)
	}
	// EOF is delayed too, behind the data.
	write(t, c, "z")
	c.Close()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, err := io.ReadAll(s)
	if err != nil || string(all) != "z" {
		t.Fatalf("tail = %q, %v", all, err)
	}
	n.Heal()
}
