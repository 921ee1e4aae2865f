package clusterkit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// testTLS returns a server+client config for 127.0.0.1, signed by a fresh CA.
func testTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clusterkit test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "clusterkit node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
		RootCAs:      pool, MinVersion: tls.VersionTLS12,
	}, pool
}

// Three nodes over TLS: Raft, joins, forwarding and probes all go through
// the encrypted port, clients use https, and plain HTTP gets nothing.
func TestTLSCluster(t *testing.T) {
	leakCheck(t)
	cfg, pool := testTLS(t)
	nodes := startCluster(t, 3, func(i int, o *Options) {
		o.TLSConfig = cfg
		o.AuthToken = testToken
	}, nil)
	// A write through a follower is forwarded to the leader over TLS.
	leader := leaderOf(t, nodes)
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	if err := follower.RebalancePartitions(context.Background()); err != nil {
		t.Fatalf("forwarded rebalance over TLS: %v", err)
	}

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	c, err := client.New("https://"+follower.advertise, client.WithHTTPClient(hc), client.WithToken(testToken))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.Cluster(t.Context())
	if err != nil || len(doc.Cluster.Nodes) != 3 {
		t.Fatalf("https /cluster: %+v %v", doc, err)
	}
	// A change over TLS, with the token.
	if r, err := c.Rebalance(t.Context()); err != nil || !r.OK {
		t.Fatalf("https POST /rebalance: %+v %v", r, err)
	}
	plain := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := plain.Get("http://" + follower.advertise + "/cluster"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on a TLS port")
		}
	}
	// A node without the CA cannot join.
	o := clusterOptions(t, 4, leader.advertise)
	o.TLSConfig = &tls.Config{Certificates: cfg.Certificates, MinVersion: tls.VersionTLS12} // no RootCAs: cannot verify the others
	o.AuthToken = testToken
	o.StartTimeout = 2 * time.Second
	ck, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := ck.Start(context.Background()); err == nil {
		_ = ck.Stop(context.Background())
		t.Fatal("a node that cannot verify the cluster's certificate joined")
	}
	if _, ok := leader.fsm.View().Member("node-4"); ok {
		t.Fatal("node-4 became a member")
	}
}

func TestTLSConfigWithoutCertificate(t *testing.T) {
	o := DefaultOptions()
	o.NodeID, o.HTTPAddr = "n1", "127.0.0.1:0"
	o.TLSConfig = &tls.Config{}
	if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("TLSConfig without a certificate: %v", err)
	}
}

func TestExposedWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		want        bool
	}{
		{"127.0.0.1:8080", "", false},
		{"[::1]:8080", "", false},
		{"[::]:8080", "", true},     // all interfaces
		{"0.0.0.0:8080", "", true},  // all interfaces
		{"10.1.2.3:8080", "", true}, // a private address is still reachable
		{"10.1.2.3:8080", "t", false},
		{"node-1:1", "", false}, // the in-memory network's names
	} {
		if got := exposedWithoutToken(fakeAddr(tc.addr), tc.token); got != tc.want {
			t.Errorf("%s token %q: %v, want %v", tc.addr, tc.token, got, tc.want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
