package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"

	"github.com/clusterkit/clusterkit/actors/actortest"
	"github.com/clusterkit/clusterkit/internal/proctest"
	"github.com/clusterkit/clusterkit/internal/tmpcheck"
)

// These tests run the node binary as real processes on loopback, so that
// failures are real: SIGTERM, kill -9, kill -STOP.

var nodeBin = proctest.Binary{Pkg: "."}

// TestMain removes the binary built for the tests, then fails the run if a
// test left anything else in the temporary directory.
func TestMain(m *testing.M) { tmpcheck.Main(m, nodeBin.Remove) }

func binary(t *testing.T) string { return nodeBin.Path(t) }

// proc is one node process and what it printed.
type proc struct {
	id   string
	addr string
	cmd  *exec.Cmd
	mu   sync.Mutex
	seen []string // "event <kind> <json>" lines
	done chan struct{}
	// running is the process as proctest started it.
	running *proctest.Proc
}

// events returns the events of kind (client.KindNodeJoin, ...) that p
// printed, decoded with the gateway's event type.
func (p *proc) events(kind string) []client.Event {
	var out []client.Event
	for _, e := range p.allEvents() {
		if e.Kind == kind {
			out = append(out, e.Event)
		}
	}
	return out
}

func freeAddr(t *testing.T) string { return proctest.FreeAddr(t) }

// fastArgs: quick Raft and failure detection (budget about 0.75 s).
var fastArgs = []string{"-raft-heartbeat-timeout", "150ms", "-raft-election-timeout", "150ms", "-rebalance-delay", "20ms",
	"-health-interval", "100ms", "-health-timeout", "150ms", "-health-failure-threshold", "3", "-health-removal-grace", "300ms",
	"-log-level", "error", "-events"}

func startProcs(t *testing.T, n int, extra ...string) []*proc {
	var procs []*proc
	for i := range n {
		args := append([]string{"-services", fmt.Sprintf("kv=:%d", 9000+i)}, extra...)
		if i > 0 {
			args = append(args, "-join", procs[0].addr)
		}
		procs = append(procs, launch(t, fmt.Sprintf("node-%d", i+1), freeAddr(t), args...))
	}
	return procs
}

// launch starts one node process and waits until it prints "ready". The
// test's cleanup kills it (kill -9) if it still runs.
func launch(t *testing.T, id, addr string, args ...string) *proc {
	t.Helper()
	p := &proc{id: id, addr: addr}
	cmd := exec.Command(binary(t), append([]string{"-id", id, "-http", addr}, args...)...)
	cmd.Stderr = os.Stderr
	running := proctest.Start(t, id, cmd, func(line string) bool { return strings.Contains(line, "node="+id) }, func(line string) {
		if strings.HasPrefix(line, "event ") {
			p.mu.Lock()
			p.seen = append(p.seen, line)
			p.mu.Unlock()
		}
	})
	p.cmd, p.done, p.running = cmd, running.Done, running
	return p
}

// kill9 kills p with SIGKILL and waits for its output to end.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	p.running.Kill9(t, p.id)
}

type clusterDoc = *client.ClusterResponse

var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// gateway is the typed client of the node at addr (the tests' token, if any,
// is sent on every request).
func gateway(addr string) *client.Client {
	c, err := client.New("http://"+addr, client.WithHTTPClient(httpClient), client.WithToken(os.Getenv("AUTH_TOKEN")))
	if err != nil {
		panic(err) // addr comes from the test itself
	}
	return c
}

func cluster(addr string) (clusterDoc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return gateway(addr).Cluster(ctx)
}

// waitMembers waits until every listed process reports exactly these members
// in a fully placed table.
func waitMembers(t *testing.T, procs []*proc, ids ...string) clusterDoc {
	t.Helper()
	var last clusterDoc
	actortest.Eventually(t, 20*time.Second, fmt.Sprintf("members %v on every node", ids), func() bool {
		var version uint64
		for k, p := range procs {
			doc, err := cluster(p.addr)
			if err != nil || len(doc.Cluster.Nodes) != len(ids) {
				return false
			}
			for _, n := range doc.Cluster.Nodes {
				if !slices.Contains(ids, n.ID) {
					return false
				}
			}
			held := map[string]bool{}
			for _, part := range doc.Cluster.PartitionMap.Partitions {
				held[part.PrimaryNode] = true
				for _, r := range part.ReplicaNodes {
					held[r] = true
				}
			}
			if len(held) != len(ids) {
				return false
			}
			if k == 0 {
				version = doc.Cluster.TableVersion
			} else if doc.Cluster.TableVersion != version {
				return false
			}
			last = doc
		}
		return true
	})
	return last
}

// TestThreeProcesses: formation through the HTTP API, service discovery,
// then a clean SIGTERM stop (exit status 0).
func TestThreeProcesses(t *testing.T) {
	procs := startProcs(t, 3, "-raft-heartbeat-timeout", "100ms", "-raft-election-timeout", "100ms", "-rebalance-delay", "20ms", "-log-level", "warn")
	doc := waitMembers(t, procs, "node-1", "node-2", "node-3")
	for _, n := range doc.Cluster.Nodes {
		if n.Services["kv"] == "" {
			t.Fatalf("no kv service for %s", n.ID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-procs[i].done:
			if code := procs[i].cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("%s exited with %d", procs[i].id, code)
			}
		case <-ctx.Done():
			t.Fatalf("%s did not stop", procs[i].id)
		}
	}
}

// TestKillAndPauseProcesses: a process paused (kill -STOP) for less than the
// detection budget is not removed; a process killed with kill -9 is, and
// every survivor gets NodeLeave (health_check_failure) naming the partitions
// it held, then a table without it.
func TestKillAndPauseProcesses(t *testing.T) {
	procs := startProcs(t, 4, fastArgs...)
	before := waitMembers(t, procs, "node-1", "node-2", "node-3", "node-4")

	// Pause node-3 for about half the budget (0.75 s).
	paused := procs[2]
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond)
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Wait a whole budget and more: nobody may have been removed.
	time.Sleep(1500 * time.Millisecond)
	for _, p := range procs {
		for _, e := range p.events("node_leave") {
			t.Fatalf("%s saw a NodeLeave after a short pause: %v", p.id, e)
		}
	}
	waitMembers(t, procs, "node-1", "node-2", "node-3", "node-4")

	// kill -9 node-4.
	victim := procs[3]
	var owned, replica []string
	for id, part := range before.Cluster.PartitionMap.Partitions {
		if part.PrimaryNode == victim.id {
			owned = append(owned, id)
		} else if slices.Contains(part.ReplicaNodes, victim.id) {
			replica = append(replica, id)
		}
	}
	killed := time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	survivors := procs[:3]
	for _, p := range survivors {
		actortest.Eventually(t, 10*time.Second, p.id+" to see node-4 leave", func() bool { return len(p.events("node_leave")) > 0 })
	}
	t.Logf("kill -9 to NodeLeave on every survivor: %v", time.Since(killed).Round(time.Millisecond))
	for _, p := range survivors {
		e := p.events("node_leave")[0].NodeLeave
		if e.Node.ID != victim.id || e.Reason != "health_check_failure" {
			t.Fatalf("%s: NodeLeave %+v", p.id, e)
		}
		if got := e.PartitionsOwned; !sameSet(got, owned) {
			t.Fatalf("%s: NodeLeave partitions_owned %v, node-4 was primary of %v", p.id, got, owned)
		}
		if got := e.PartitionsReplica; !sameSet(got, replica) {
			t.Fatalf("%s: NodeLeave partitions_replica %v, node-4 was replica of %v", p.id, got, replica)
		}
	}
	after := waitMembers(t, survivors, "node-1", "node-2", "node-3")
	for id, part := range after.Cluster.PartitionMap.Partitions {
		if part.PrimaryNode == victim.id || slices.Contains(part.ReplicaNodes, victim.id) {
			t.Fatalf("%s still names the dead node", id)
		}
	}
}

func strs(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, x := range a {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
