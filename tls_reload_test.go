package clusterkit

import (
	"context"
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

	"github.com/clusterkit/clusterkit/internal/tlsfiles"
)

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a certificate for 127.0.0.1 with serial; PEM cert and key.
func (ca *testCA) leaf(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "clusterkit node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// nodeTLS is one node's TLS files.
type nodeTLS struct {
	cert, key, ca string
	files         *tlsfiles.Files
}

func writeTLS(t *testing.T, n *nodeTLS, certPEM, keyPEM, caPEM []byte) {
	t.Helper()
	for path, data := range map[string][]byte{n.cert: certPEM, n.key: keyPEM, n.ca: caPEM} {
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
}

// servedSerial is the serial of the certificate addr serves to a new
// connection, verified against roots.
func servedSerial(t *testing.T, addr string, roots []byte) int64 {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TLS files reloaded under a running cluster: a renewed certificate is
// served to the next connection, then a whole CA rotation (both CAs
// trusted everywhere, a node moved to a certificate of the new CA, a new
// node of the new CA joining through it) goes through without a restart.
// A reload of a certificate without its key keeps the certificate in place.
func TestTLSReloadUnderRunningCluster(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ca1, ca2 := newTestCA(t, "old CA"), newTestCA(t, "new CA")
	tlsOf := make([]*nodeTLS, 5)
	for i := 1; i <= 4; i++ {
		n := &nodeTLS{cert: filepath.Join(dir, "cert"+string(rune('0'+i))), key: filepath.Join(dir, "key"+string(rune('0'+i))), ca: filepath.Join(dir, "ca"+string(rune('0'+i)))}
		tlsOf[i] = n
	}
	load := func(i int) {
		t.Helper()
		f, err := tlsfiles.Load(tlsOf[i].cert, tlsOf[i].key, tlsOf[i].ca)
		if err != nil {
			t.Fatal(err)
		}
		tlsOf[i].files = f
	}
	reload := func(i int) {
		t.Helper()
		if changed, err := tlsOf[i].files.Reload(); err != nil || !changed {
			t.Fatalf("reload node-%d: changed %v, %v", i, changed, err)
		}
	}
	for i := 1; i <= 3; i++ {
		c, k := ca1.leaf(t, int64(10+i))
		writeTLS(t, tlsOf[i], c, k, ca1.pem)
		load(i)
	}
	nodes := startCluster(t, 3, func(i int, o *Options) {
		o.TLSConfig = tlsOf[i].files.Config()
		o.AuthToken = testToken
	}, nil)
	if got := servedSerial(t, nodes[0].advertise, ca1.pem); got != 11 {
		t.Fatalf("node-1 serves serial %d, want 11", got)
	}

	// A renewed certificate (same CA): the next connection gets it.
	c, k := ca1.leaf(t, 21)
	writeTLS(t, tlsOf[1], c, k, ca1.pem)
	reload(1)
	if got := servedSerial(t, nodes[0].advertise, ca1.pem); got != 21 {
		t.Fatalf("after the reload node-1 serves serial %d, want 21", got)
	}
	// A certificate written without its key: refused, the old one stays.
	c3, _ := ca1.leaf(t, 31)
	if err := os.WriteFile(tlsOf[1].cert, c3, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsOf[1].files.Reload(); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Fatalf("reload of a certificate with the wrong key = %v, want a key mismatch error", err)
	}
	if got := servedSerial(t, nodes[0].advertise, ca1.pem); got != 21 {
		t.Fatalf("after a refused reload node-1 serves serial %d, want 21", got)
	}
	writeTLS(t, tlsOf[1], c, k, ca1.pem)

	// CA rotation, step 1: every node trusts both CAs.
	both := append(append([]byte{}, ca1.pem...), ca2.pem...)
	for i := 1; i <= 3; i++ {
		cert, _ := os.ReadFile(tlsOf[i].cert)
		key, _ := os.ReadFile(tlsOf[i].key)
		writeTLS(t, tlsOf[i], cert, key, both)
		reload(i)
	}
	// Step 2: node-2 moves to a certificate of the new CA.
	c, k = ca2.leaf(t, 42)
	writeTLS(t, tlsOf[2], c, k, both)
	reload(2)
	if got := servedSerial(t, nodes[1].advertise, ca2.pem); got != 42 {
		t.Fatalf("node-2 serves serial %d, want 42 of the new CA", got)
	}
	// A node of the new CA joins through node-2: its join, Raft both ways
	// and the probes are new connections, verified against the new bundle.
	c, k = ca2.leaf(t, 44)
	writeTLS(t, tlsOf[4], c, k, both)
	load(4)
	o := clusterOptions(t, 4, nodes[1].advertise)
	o.TLSConfig, o.AuthToken = tlsOf[4].files.Config(), testToken
	nodes = append(nodes, startNode(t, o))
	waitConverged(t, nodes, 4)
	// Writes through every node still commit (forwarded over TLS).
	for _, n := range nodes {
		if _, err := n.SetCustomData(context.Background(), "tls/"+n.opts.NodeID, []byte("ok")); err != nil {
			t.Fatalf("write through %s after the rotation: %v", n.opts.NodeID, err)
		}
	}
}
