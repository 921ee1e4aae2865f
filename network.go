package clusterkit

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// Network is how a node listens and dials: all of its traffic (Raft, HTTP,
// node-to-node requests) goes through it. TCPNetwork is the default; the
// test harness substitutes an in-memory network that can partition, drop,
// delay and cut links.
type Network interface {
	// Listen listens on addr (host:port).
	Listen(addr string) (net.Listener, error)
	// DialContext connects to addr (host:port).
	DialContext(ctx context.Context, addr string) (net.Conn, error)
}

// TCPNetwork is the real network.
type TCPNetwork struct {
	Dialer net.Dialer
}

// Listen listens on TCP.
func (n *TCPNetwork) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// DialContext dials TCP.
func (n *TCPNetwork) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	return n.Dialer.DialContext(ctx, "tcp", addr)
}

// dial connects to another node's port, over TLS when the node has a
// TLSConfig (the same config verifies the peer; ServerName defaults to the
// dialed host).
func (ck *ClusterKit) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := ck.network.DialContext(ctx, addr)
	if err != nil || ck.opts.TLSConfig == nil {
		return conn, err
	}
	cfg := ck.opts.TLSConfig.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	if verify := cfg.VerifyConnection; verify != nil {
		// Go leaves ConnectionState.ServerName empty when the name is an IP
		// (no SNI is sent): a verifier of its own (one that reloads its CA
		// bundle, say) gets the dialed name to check the certificate against.
		name := cfg.ServerName
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if cs.ServerName == "" {
				cs.ServerName = name
			}
			return verify(cs)
		}
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// warnIfExposed warns when the node serves a non-loopback address without
// a token: anyone who reaches the port could then change the cluster.
func (ck *ClusterKit) warnIfExposed() {
	if exposedWithoutToken(ck.ln.Addr(), ck.primaryToken()) {
		ck.log.Warn("serving without AuthToken on a non-loopback address: anyone who can reach it can join nodes, remove nodes and change the cluster; set AuthToken (and TLSConfig) in production",
			"addr", ck.ln.Addr().String())
	}
}

// exposedWithoutToken reports whether addr (a listener's) is reachable from
// other machines while no token protects it. TCP listeners report an IP;
// other networks (the in-memory one) report names and are never exposed.
func exposedWithoutToken(addr net.Addr, token string) bool {
	if token != "" {
		return false
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && !ip.IsLoopback()
}

// advertiseAddr derives what peers dial: the explicit address, else
// HTTPAddr's host when it names one, else this machine's private IP, with
// the port actually bound.
func advertiseAddr(explicit, httpAddr string, bound net.Addr) string {
	if explicit != "" {
		return explicit
	}
	host, _, _ := net.SplitHostPort(httpAddr)
	_, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return net.JoinHostPort(host, port)
	}
	return net.JoinHostPort(privateIP(), port)
}

func privateIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	var fallback string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		if ipn.IP.IsPrivate() {
			return ipn.IP.String()
		}
		if fallback == "" {
			fallback = ipn.IP.String()
		}
	}
	if fallback != "" {
		return fallback
	}
	return "127.0.0.1"
}
