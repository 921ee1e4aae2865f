package crashnet

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestCrash: after Crash the node's accepted and dialed connections are
// closed, its listener stops accepting, and it can neither dial nor listen.
func TestCrash(t *testing.T) {
	var n, peer Network
	ln, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = io.Copy(io.Discard, c) // until Crash closes it
			if err == nil {
				err = io.EOF
			}
		}
		accepted <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, err := peer.DialContext(ctx, ln.Addr().String()) // a peer's connection to the node
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := n.DialContext(ctx, ln.Addr().String()) // the node's own outgoing connection
	if err != nil {
		t.Fatal(err)
	}
	// Both connections are established and tracked before the crash.
	if _, err := in.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}

	n.Crash()
	_ = in.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := in.Read(make([]byte, 1)); err == nil {
		t.Fatal("the peer's connection survived the crash")
	}
	if _, err := out.Write([]byte("x")); err == nil {
		t.Fatal("the node's outgoing connection survived the crash")
	}
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the accepted connection was not closed")
	}
	if _, err := peer.DialContext(ctx, ln.Addr().String()); err == nil {
		t.Fatal("the crashed node still accepts connections")
	}
	if _, err := n.DialContext(ctx, ln.Addr().String()); !errors.Is(err, ErrCrashed) {
		t.Fatalf("dial after crash: %v", err)
	}
	if _, err := n.Listen("127.0.0.1:0"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("listen after crash: %v", err)
	}
	if !n.Crashed() || peer.Crashed() {
		t.Fatal("Crashed() is wrong")
	}
}
