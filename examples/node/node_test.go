package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestThreeProcesses builds the binary and runs a real three-process cluster
// on loopback: formation through the HTTP API, then a clean SIGTERM stop.
func TestThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := filepath.Join(t.TempDir(), "node")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	addrs := make([]string, 3)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
	}
	var procs []*exec.Cmd
	for i, addr := range addrs {
		args := []string{"-id", fmt.Sprintf("node-%d", i+1), "-http", addr, "-services", fmt.Sprintf("kv=:%d", 9000+i),
			"-raft-heartbeat-timeout", "100ms", "-raft-election-timeout", "100ms", "-rebalance-delay", "20ms", "-log-level", "warn"}
		if i > 0 {
			args = append(args, "-join", addrs[0])
		}
		cmd := exec.Command(bin, args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ready := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "ready ") {
					ready <- sc.Text()
				}
			}
		}()
		select {
		case line := <-ready:
			if !strings.Contains(line, "node=node-"+fmt.Sprint(i+1)) {
				t.Fatalf("ready line %q", line)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("node-%d not ready", i+1)
		}
		procs = append(procs, cmd)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var doc struct {
			Cluster struct {
				Nodes []struct {
					ID       string            `json:"id"`
					Services map[string]string `json:"services"`
				} `json:"nodes"`
			} `json:"cluster"`
		}
		resp, err := client.Get("http://" + addrs[2] + "/cluster")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if len(doc.Cluster.Nodes) == 3 && doc.Cluster.Nodes[0].Services["kv"] == ":9000" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/cluster on node-3 never showed three nodes: %+v %v", doc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// SIGTERM stops a process cleanly (exit status 0).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- procs[i].Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("node-%d exited with %v", i+1, err)
			}
		case <-ctx.Done():
			t.Fatalf("node-%d did not stop", i+1)
		}
	}
}
