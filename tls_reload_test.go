package clusterkit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterkit/clusterkit/internal/testcert"
	"github.com/clusterkit/clusterkit/internal/tlsfiles"
)

// nodeTLS is one node's TLS files.
type nodeTLS struct {
	cert, key, ca string
	files         *tlsfiles.Files
}

func writeTLS(t *testing.T, n *nodeTLS, certPEM, keyPEM, caPEM []byte) {
	t.Helper()
	testcert.WriteFile(t, n.cert, certPEM)
	testcert.WriteFile(t, n.key, keyPEM)
	testcert.WriteFile(t, n.ca, caPEM)
}

// TLS files reloaded under a running cluster: a renewed certificate is
// served to the next connection, then a whole CA rotation (both CAs
// trusted everywhere, a node moved to a certificate of the new CA, a new
// node of the new CA joining through it) goes through without a restart.
// A reload of a certificate without its key keeps the certificate in place.
func TestTLSReloadUnderRunningCluster(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	ca1, ca2 := testcert.NewCA(t, "old CA"), testcert.NewCA(t, "new CA")
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
		c, k := ca1.Leaf(t, int64(10+i), "127.0.0.1")
		writeTLS(t, tlsOf[i], c, k, ca1.PEM)
		load(i)
	}
	nodes := startCluster(t, 3, func(i int, o *Options) {
		o.TLSConfig = tlsOf[i].files.Config()
		o.AuthToken = testToken
	}, nil)
	if got := testcert.ServedSerial(nodes[0].advertise, ca1.PEM); got != 11 {
		t.Fatalf("node-1 serves serial %d, want 11", got)
	}

	// A renewed certificate (same CA): the next connection gets it.
	c, k := ca1.Leaf(t, 21, "127.0.0.1")
	writeTLS(t, tlsOf[1], c, k, ca1.PEM)
	reload(1)
	if got := testcert.ServedSerial(nodes[0].advertise, ca1.PEM); got != 21 {
		t.Fatalf("after the reload node-1 serves serial %d, want 21", got)
	}
	// A certificate written without its key: refused, the old one stays.
	c3, _ := ca1.Leaf(t, 31, "127.0.0.1")
	if err := os.WriteFile(tlsOf[1].cert, c3, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsOf[1].files.Reload(); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Fatalf("reload of a certificate with the wrong key = %v, want a key mismatch error", err)
	}
	if got := testcert.ServedSerial(nodes[0].advertise, ca1.PEM); got != 21 {
		t.Fatalf("after a refused reload node-1 serves serial %d, want 21", got)
	}
	writeTLS(t, tlsOf[1], c, k, ca1.PEM)

	// CA rotation, step 1: every node trusts both CAs.
	both := append(append([]byte{}, ca1.PEM...), ca2.PEM...)
	for i := 1; i <= 3; i++ {
		cert, _ := os.ReadFile(tlsOf[i].cert)
		key, _ := os.ReadFile(tlsOf[i].key)
		writeTLS(t, tlsOf[i], cert, key, both)
		reload(i)
	}
	// Step 2: node-2 moves to a certificate of the new CA.
	c, k = ca2.Leaf(t, 42, "127.0.0.1")
	writeTLS(t, tlsOf[2], c, k, both)
	reload(2)
	if got := testcert.ServedSerial(nodes[1].advertise, ca2.PEM); got != 42 {
		t.Fatalf("node-2 serves serial %d, want 42 of the new CA", got)
	}
	// A node of the new CA joins through node-2: its join, Raft both ways
	// and the probes are new connections, verified against the new bundle.
	c, k = ca2.Leaf(t, 44, "127.0.0.1")
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
