package mux

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestRoutesRaftAndHTTP(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := New(ln, slog.New(slog.DiscardHandler))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "http ok") })}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(m.HTTP()) }()

	raftGot := make(chan string, 1)
	go func() {
		c, err := m.Raft().Accept()
		if err != nil {
			raftGot <- "accept error: " + err.Error()
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		_, _ = io.ReadFull(c, buf)
		raftGot <- string(buf)
	}()

	// A silent client must not block routing of the others.
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	rc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Write(append([]byte{RaftByte}, "hello"...)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-raftGot:
		if got != "hello" {
			t.Fatalf("raft side read %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("raft connection not routed")
	}
	rc.Close()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "http ok" {
		t.Fatalf("http body %q", body)
	}

	if err := m.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Fatal(err)
	}
	if _, err := m.Raft().Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
	_ = srv.Close()
	<-served
	silent.Close()
}
