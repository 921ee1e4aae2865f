// Package tlsfiles is a node's TLS configuration read from PEM files, which
// can be re-read while the node runs: a renewed certificate, or a new CA
// bundle during a CA rotation, applies to the next handshake without a
// restart. Connections already open keep the certificate they started
// with; peers reconnecting get the new one.
package tlsfiles

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Files is a reloadable TLS configuration: a certificate and key to serve
// (and dial) with, and optionally a CA bundle to verify the other nodes
// with (nil: the system roots).
type Files struct {
	certFile, keyFile, caFile string

	cur  atomic.Pointer[loaded]
	mu   sync.Mutex // serializes Reload
	last []byte     // the files' content the current state came from
}

type loaded struct {
	cert  *tls.Certificate
	roots *x509.CertPool // nil: system roots
}

// Load reads the files now. caFile may be empty.
func Load(certFile, keyFile, caFile string) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload re-reads the files. When they cannot be read or do not form a
// valid key pair (for example, a certificate written before its key), the
// state in place stays and the error is returned; changed reports whether
// a new state was loaded.
func (f *Files) Reload() (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var raw [3][]byte
	for i, name := range []string{f.certFile, f.keyFile, f.caFile} {
		if name == "" {
			continue
		}
		if raw[i], err = os.ReadFile(name); err != nil {
			return false, err
		}
	}
	all := bytes.Join(raw[:], []byte{0})
	if f.last != nil && bytes.Equal(all, f.last) {
		return false, nil
	}
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return false, fmt.Errorf("%s / %s: %w", f.certFile, f.keyFile, err)
	}
	l := &loaded{cert: &cert}
	if f.caFile != "" {
		l.roots = x509.NewCertPool()
		if !l.roots.AppendCertsFromPEM(raw[2]) {
			return false, fmt.Errorf("%s: no PEM certificate found", f.caFile)
		}
	}
	f.last = all
	f.cur.Store(l)
	return true, nil
}

// Config is the tls.Config of the node: it serves the current certificate,
// presents it when a peer asks for one, and verifies the peers it dials
// against the current CA bundle and the dialed name. (Go's own check reads
// RootCAs once per Config; it is replaced by the same check against the
// bundle loaded last, in VerifyConnection. Go gives VerifyConnection no
// server name when the dialed name is an IP: the dialer must fill in
// ConnectionState.ServerName, as ClusterKit's does; without a name the
// connection is refused, never accepted unchecked.)
func (f *Files) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return f.cur.Load().cert, nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return f.cur.Load().cert, nil
		},
		InsecureSkipVerify: true, // verified in VerifyConnection, with the current roots
		VerifyConnection:   f.verify,
	}
}

// verify is the standard verification of a server's chain and name,
// against the current roots. On the serving side (no client certificate
// is requested) there is nothing to verify.
func (f *Files) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil // serving: this node asks no client certificate
	}
	opts := x509.VerifyOptions{
		Roots:         f.cur.Load().roots,
		DNSName:       cs.ServerName,
		Intermediates: x509.NewCertPool(),
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if cs.ServerName == "" {
		return errors.New("tls: no server name to verify the peer's certificate against")
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}
