package tlsfiles

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/internal/testcert"
)

// serve accepts TLS connections with cfg until the test ends, completing
// each handshake, and returns the address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = conn.(*tls.Conn).Handshake()
				conn.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake dials the server at addr with the client config (as a node
// does: a clone with the dialed host as ServerName) and returns the
// served serial.
func handshake(t *testing.T, addr string, client *tls.Config) (int64, error) {
	// As ClusterKit's dialer does: the dialed name, also for the verifier.
	cfg := client.Clone()
	cfg.ServerName = "127.0.0.1"
	verify := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if cs.ServerName == "" {
			cs.ServerName = "127.0.0.1"
		}
		return verify(cs)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// A node's config serves its current certificate and verifies peers against
// its current CA bundle, chain and name; both follow Reload.
func TestReloadServesAndVerifies(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := testcert.NewCA(t, "ca1"), testcert.NewCA(t, "ca2")
	certF, keyF, caF := filepath.Join(dir, "c"), filepath.Join(dir, "k"), filepath.Join(dir, "ca")
	c, k := ca1.Leaf(t, 11, "127.0.0.1")
	testcert.WriteFile(t, certF, c)
	testcert.WriteFile(t, keyF, k)
	testcert.WriteFile(t, caF, ca1.PEM)
	f, err := Load(certF, keyF, caF)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, f.Config())
	if s, err := handshake(t, addr, f.Config()); err != nil || s != 11 {
		t.Fatalf("first handshake: serial %d, %v", s, err)
	}
	// Without the dialed name, the verifier refuses rather than accept.
	bare := f.Config()
	bare.ServerName = "127.0.0.1"
	if c, err := tls.Dial("tcp", addr, bare); err == nil {
		c.Close()
		t.Fatal("a handshake without a name for the verifier was accepted")
	}
	// Renewed certificate.
	c, k = ca1.Leaf(t, 12, "127.0.0.1")
	testcert.WriteFile(t, certF, c)
	testcert.WriteFile(t, keyF, k)
	if changed, err := f.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if s, err := handshake(t, addr, f.Config()); err != nil || s != 12 {
		t.Fatalf("after renewal: serial %d, %v", s, err)
	}
	// A certificate of another CA is refused while the bundle lacks it...
	c, k = ca2.Leaf(t, 21, "127.0.0.1")
	other := filepath.Join(dir, "o")
	testcert.WriteFile(t, other+"c", c)
	testcert.WriteFile(t, other+"k", k)
	testcert.WriteFile(t, other+"ca", ca2.PEM)
	g, err := Load(other+"c", other+"k", other+"ca")
	if err != nil {
		t.Fatal(err)
	}
	addr2 := serve(t, g.Config())
	if _, err := handshake(t, addr2, f.Config()); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("a peer of an unknown CA: %v, want unknown authority", err)
	}
	// ... and accepted once the bundle holds both.
	testcert.WriteFile(t, caF, append(append([]byte{}, ca1.PEM...), ca2.PEM...))
	if changed, err := f.Reload(); !changed || err != nil {
		t.Fatalf("reload of the bundle: %v %v", changed, err)
	}
	if s, err := handshake(t, addr2, f.Config()); err != nil || s != 21 {
		t.Fatalf("a peer of the new CA after the bundle reload: %d, %v", s, err)
	}
	// A certificate for another name is refused.
	c, k = ca1.Leaf(t, 13, "127.0.0.9")
	testcert.WriteFile(t, certF, c)
	testcert.WriteFile(t, keyF, k)
	if _, err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, addr, f.Config()); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("a certificate for another address: %v, want a name mismatch", err)
	}
	// A key that does not match: refused, the state in place stays.
	c, _ = ca1.Leaf(t, 14, "127.0.0.1")
	testcert.WriteFile(t, certF, c)
	if _, err := f.Reload(); err == nil {
		t.Fatal("a mismatched key pair was loaded")
	}
}
