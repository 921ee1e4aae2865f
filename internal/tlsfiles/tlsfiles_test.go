package tlsfiles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *ca {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{c, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (c *ca) leaf(t *testing.T, serial int64, ip string) (certPEM, keyPEM []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP(ip)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func write(t *testing.T, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
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
	ca1, ca2 := newCA(t), newCA(t)
	certF, keyF, caF := filepath.Join(dir, "c"), filepath.Join(dir, "k"), filepath.Join(dir, "ca")
	c, k := ca1.leaf(t, 11, "127.0.0.1")
	write(t, certF, c)
	write(t, keyF, k)
	write(t, caF, ca1.pem)
	f, err := Load(certF, keyF, caF)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", f.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
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
	addr := ln.Addr().String()
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
	c, k = ca1.leaf(t, 12, "127.0.0.1")
	write(t, certF, c)
	write(t, keyF, k)
	if changed, err := f.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if s, err := handshake(t, addr, f.Config()); err != nil || s != 12 {
		t.Fatalf("after renewal: serial %d, %v", s, err)
	}
	// A certificate of another CA is refused while the bundle lacks it...
	c, k = ca2.leaf(t, 21, "127.0.0.1")
	other := filepath.Join(dir, "o")
	write(t, other+"c", c)
	write(t, other+"k", k)
	write(t, other+"ca", ca2.pem)
	g, err := Load(other+"c", other+"k", other+"ca")
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := tls.Listen("tcp", "127.0.0.1:0", g.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go func() {
		for {
			conn, err := ln2.Accept()
			if err != nil {
				return
			}
			go func() { _ = conn.(*tls.Conn).Handshake(); conn.Close() }()
		}
	}()
	if _, err := handshake(t, ln2.Addr().String(), f.Config()); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("a peer of an unknown CA: %v, want unknown authority", err)
	}
	// ... and accepted once the bundle holds both.
	write(t, caF, append(append([]byte{}, ca1.pem...), ca2.pem...))
	if changed, err := f.Reload(); !changed || err != nil {
		t.Fatalf("reload of the bundle: %v %v", changed, err)
	}
	if s, err := handshake(t, ln2.Addr().String(), f.Config()); err != nil || s != 21 {
		t.Fatalf("a peer of the new CA after the bundle reload: %d, %v", s, err)
	}
	// A certificate for another name is refused.
	c, k = ca1.leaf(t, 13, "127.0.0.9")
	write(t, certF, c)
	write(t, keyF, k)
	if _, err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, addr, f.Config()); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("a certificate for another address: %v, want a name mismatch", err)
	}
	// A key that does not match: refused, the state in place stays.
	c, _ = ca1.leaf(t, 14, "127.0.0.1")
	write(t, certF, c)
	if _, err := f.Reload(); err == nil {
		t.Fatal("a mismatched key pair was loaded")
	}
}
