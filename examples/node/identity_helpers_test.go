package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// Helpers of the identity tests (identity_test.go): processes whose stderr
// is kept so that tests can count log lines, processes expected to fail,
// and small readers of the HTTP API.

// logBuf is a process's stderr, kept whole.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the lines that contain every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// lnode is a node process with its stderr kept (log lines are counted by
// the tests) and, for a process that may never be ready, a ready channel.
type lnode struct {
	*proc
	log   *logBuf
	ready chan struct{} // closed when it printed its "ready" line
}

// spawn starts a node process without waiting for it to be ready. Its
// stdout events are recorded as launch does; its stderr is kept and printed
// when the test fails. The test's cleanup kills it (kill -9).
func spawn(t *testing.T, id, addr string, args ...string) *lnode {
	t.Helper()
	p := &proc{id: id, addr: addr, done: make(chan struct{})}
	n := &lnode{proc: p, log: &logBuf{}, ready: make(chan struct{})}
	cmd := exec.Command(binary(t), append([]string{"-id", id, "-http", addr}, args...)...)
	cmd.Stderr = n.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot die
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("stderr of %s at %s (%s):\n%s", id, addr, strings.Join(args, " "), tail(n.log.String(), 40))
		}
	})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4<<20), 4<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "ready ") && strings.Contains(line, "node="+id):
				once.Do(func() { close(n.ready) })
			case strings.HasPrefix(line, "event "):
				p.mu.Lock()
				p.seen = append(p.seen, line)
				p.mu.Unlock()
			}
		}
		_ = cmd.Wait()
	}()
	return n
}

// start is spawn, then waits until the process is ready.
func start(t *testing.T, id, addr string, args ...string) *lnode {
	t.Helper()
	n := spawn(t, id, addr, args...)
	n.waitReady(t, 30*time.Second)
	return n
}

func (n *lnode) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-n.ready:
	case <-n.done:
		t.Fatalf("%s exited (%v) before it was ready", n.id, n.cmd.ProcessState)
	case <-time.After(within):
		t.Fatalf("%s not ready after %v", n.id, within)
	}
}

// kill9 kills the process and waits until its output ended.
func (n *lnode) kill9(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10 s after SIGKILL", n.id)
	}
}

func (n *lnode) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", n.id, sig, err)
	}
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("… (%d lines before)", len(all)-lines)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}

// runToExit runs the node program expecting it to exit by itself within
// limit; it returns the exit code, stderr and how long it ran.
func runToExit(t *testing.T, limit time.Duration, args ...string) (code int, stderr string, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	var errBuf bytes.Buffer
	cmd.Stderr, cmd.Stdout = &errBuf, io.Discard
	began := time.Now()
	err := cmd.Run()
	took = time.Since(began)
	if ctx.Err() != nil {
		t.Fatalf("node %v still running after %v (killed); stderr:\n%s", args, limit, tail(errBuf.String(), 40))
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), errBuf.String(), took
}

// event is one printed event, in the order the node printed it: the JSON
// of GET /events, decoded with the gateway's own type.
type event struct{ client.Event }

func (e event) index() uint64 { return e.Index }

// nodeID is the id of the event's node (NodeJoin, NodeRejoin, NodeLeave).
func (e event) nodeID() string {
	var n *client.Node
	switch {
	case e.NodeJoin != nil:
		n = e.NodeJoin.Node
	case e.NodeRejoin != nil:
		n = e.NodeRejoin.Node
	case e.NodeLeave != nil:
		n = e.NodeLeave.Node
	}
	if n == nil {
		return ""
	}
	return n.ID
}

// String is the event as printed, with its lists of partitions shortened
// to their lengths.
func (e event) String() string {
	var m map[string]any
	js, _ := json.Marshal(e.Event)
	_ = json.Unmarshal(js, &m)
	if payload, ok := m[e.Kind].(map[string]any); ok {
		for k, v := range payload {
			if l, ok := v.([]any); ok && strings.HasPrefix(k, "partitions") {
				payload[k] = fmt.Sprintf("[%d partitions]", len(l))
			}
		}
	}
	js, _ = json.Marshal(m)
	return e.Kind + " " + string(js)
}

func (p *proc) allEvents() []event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []event
	for _, line := range p.seen {
		k, js, _ := strings.Cut(strings.TrimPrefix(line, "event "), " ")
		var e client.Event
		if json.Unmarshal([]byte(js), &e) == nil && e.Kind == k {
			out = append(out, event{e})
		}
	}
	return out
}

// msDuration is an event's duration in milliseconds as a time.Duration.
func msDuration(ms float64) time.Duration {
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

// allEventsSince returns the events after the first n.
func (p *proc) allEventsSince(n int) []event {
	all := p.allEvents()
	return all[min(n, len(all)):]
}

// about returns the events of kind whose node is id.
func (p *proc) about(kind, id string) []event {
	var out []event
	for _, e := range p.allEvents() {
		if e.Kind == kind && e.nodeID() == id {
			out = append(out, e)
		}
	}
	return out
}

// ctx5 bounds one request of a helper.
func ctx5() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// raftStats is GET /consensus/stats.
type raftStats = client.ConsensusStats

func consensus(addr string) (*raftStats, error) {
	ctx, cancel := ctx5()
	defer cancel()
	return gateway(addr).ConsensusStats(ctx)
}

// member is a node of GET /nodes.
type member = client.Node

func membersOf(addr string) ([]member, error) {
	ctx, cancel := ctx5()
	defer cancel()
	doc, err := gateway(addr).Nodes(ctx, client.Page{Limit: 1000})
	if err != nil {
		return nil, err
	}
	if doc.Total != len(doc.Nodes) {
		return nil, fmt.Errorf("GET /nodes: %d nodes of %d", len(doc.Nodes), doc.Total)
	}
	return doc.Nodes, nil
}

func memberIDs(ms []member) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// ids of GET /cluster (cluster.cluster_id) and GET /health (cluster_id).
func clusterIDs(addr string) (fromCluster, fromHealth string, err error) {
	ctx, cancel := ctx5()
	defer cancel()
	c, err := gateway(addr).Cluster(ctx)
	if err != nil {
		return "", "", err
	}
	h, err := gateway(addr).Health(ctx)
	if err != nil {
		return "", "", err
	}
	return c.Cluster.ClusterID, h.ClusterID, nil
}

// clusterIDOf returns addr's cluster ID, failing the test unless GET
// /cluster and GET /health agree on a non-empty one.
func clusterIDOf(t *testing.T, addr string) string {
	t.Helper()
	a, b, err := clusterIDs(addr)
	if err != nil {
		t.Fatal(err)
	}
	if a == "" || a != b {
		t.Fatalf("%s: GET /cluster has cluster_id %q, GET /health %q", addr, a, b)
	}
	return a
}

// readyOf is GET /ready: its status and body (a 503 is not an error here).
func readyOf(addr string) (int, *client.Readiness, error) {
	ctx, cancel := ctx5()
	defer cancel()
	d, err := gateway(addr).Ready(ctx)
	var e *client.Error
	switch {
	case d != nil && errors.As(err, &e):
		return e.Status, d, nil
	case err != nil:
		return 0, &client.Readiness{}, err
	}
	return http.StatusOK, d, nil
}

// waitVoters waits until every node's Raft configuration has exactly these
// voters and no non-voter (joiners earn their vote).
func waitVoters[N interface{ address() string }](t *testing.T, nodes []N, ids ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(ids))
	eventually(t, 20*time.Second, fmt.Sprintf("voters %v on every node", want), func() bool {
		for _, n := range nodes {
			s, err := consensus(n.address())
			if err != nil || len(s.NonVoters) != 0 || !slices.Equal(slices.Sorted(slices.Values(s.Voters)), want) {
				return false
			}
		}
		return true
	})
}

func (p *proc) address() string { return p.addr }

// leaderAmong returns the node the others agree leads (every node must
// name the same leader).
func leaderAmong(t *testing.T, nodes []*lnode) *lnode {
	t.Helper()
	var found *lnode
	eventually(t, 15*time.Second, "one leader that every node names", func() bool {
		found = nil
		var name string
		for _, n := range nodes {
			s, err := consensus(n.addr)
			if err != nil || s.LeaderID == "" || (name != "" && s.LeaderID != name) {
				return false
			}
			name = s.LeaderID
		}
		for _, n := range nodes {
			if n.id == name {
				found = n
			}
		}
		return found != nil
	})
	return found
}

// terms returns the Raft term of every node (failing on an error).
func terms(t *testing.T, nodes []*lnode) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, n := range nodes {
		s, err := consensus(n.addr)
		if err != nil {
			t.Fatalf("%s: GET /consensus/stats: %v", n.id, err)
		}
		out[n.id] = s.Term
	}
	return out
}

// put writes key on addr with the token ("" for none); it returns the status and body.
func put(addr, token, key, value string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/custom-data/"+key, strings.NewReader(value))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// eventually polls cond every 50 ms (gentler on a busy box than
// actortest.Eventually's 5 ms: each poll is HTTP requests to processes)
// until it holds, and fails the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// poll reports whether cond held within timeout (checked every 50 ms).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// identityArgs: fastArgs (quick Raft and failure detection, -events), a
// short voter stabilisation, and warnings on stderr (the tests count them).
func identityArgs(extra ...string) []string {
	return append(append(slices.Clone(fastArgs), "-voter-stabilization", "300ms", "-log-level", "warn"), extra...)
}

// form starts a cluster of len(ids) nodes, the first bootstrapping and the
// others joining through it, dirs[i] as their data directories ("" for
// none), and waits until every node has every member and voter.
func form(t *testing.T, ids []string, dirs []string, args ...string) []*lnode {
	t.Helper()
	var nodes []*lnode
	for i, id := range ids {
		a := slices.Clone(args)
		if dirs != nil && dirs[i] != "" {
			a = append(a, "-data-dir", dirs[i])
		}
		if i > 0 {
			a = append(a, "-join", nodes[0].addr)
		}
		nodes = append(nodes, start(t, id, freeAddr(t), a...))
	}
	waitMembersOf(t, nodes, ids...)
	waitVoters(t, nodes, ids...)
	return nodes
}

// waitMembersOf waits until GET /nodes on every node lists exactly ids.
func waitMembersOf(t *testing.T, nodes []*lnode, ids ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(ids))
	eventually(t, 20*time.Second, fmt.Sprintf("members %v on every node", want), func() bool {
		for _, n := range nodes {
			ms, err := membersOf(n.addr)
			if err != nil || !slices.Equal(memberIDs(ms), want) {
				return false
			}
		}
		return true
	})
}
