package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// node runs one invocation of the program in this process, as main would
// (a subcommand against a running node).
func node(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	return out.String(), err
}

// nodeJSON runs a subcommand with -o json and decodes its output into v.
func nodeJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := node(t, append(args, "-o", "json")...)
	if err != nil {
		t.Fatalf("node %v: %v", args, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("node %v -o json: %v\n%s", args, err, out)
	}
}

// TestOperatorCommands: every subcommand against a real three-node cluster
// of processes (with a token from a file), in table and JSON form, and
// its errors naming the node asked and its answer.
func TestOperatorCommands(t *testing.T) {
	const secret = "cli-test-token"
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := []string{"node-1", "node-2", "node-3"}
	procs := startProcs(t, 3, append(slices.Clone(fastArgs), "-auth-token-file", tokFile, "-auto-rejoin=false", "-health-removal-grace", "30s")...)
	waitMembers(t, procs, ids...)
	waitVoters(t, procs, ids...)
	addr := procs[1].addr
	leader := func() string {
		var st Status
		nodeJSON(t, &st, "status", "-addr", addr)
		return st.Leader
	}

	// members: one row per node, exactly one leader (the one /status names),
	// the others voters, loads adding up to partitions × RF.
	var rows []MemberRow
	nodeJSON(t, &rows, "members", "-addr", addr)
	if len(rows) != 3 {
		t.Fatalf("members: %d rows, want 3: %+v", len(rows), rows)
	}
	slots, leaders := 0, 0
	for i, r := range rows {
		if r.ID != ids[i] || r.Services["kv"] == "" {
			t.Fatalf("members row %d: %+v", i, r)
		}
		slots += r.Partitions
		switch r.Role {
		case "leader":
			leaders++
			if r.ID != leader() {
				t.Fatalf("members says %s leads, status says %s", r.ID, leader())
			}
		case "voter":
		default:
			t.Fatalf("%s has role %q, want leader or voter", r.ID, r.Role)
		}
	}
	if leaders != 1 || slots != 64*3 {
		t.Fatalf("members: %d leaders, %d slots; want 1 and 192", leaders, slots)
	}
	table, err := node(t, "members", "-addr", addr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "ROLE") {
		t.Fatalf("members table:\n%s", table)
	}
	col := strings.Index(lines[0], "ROLE")
	for _, l := range lines[1:] {
		if role := strings.Fields(l[col:])[0]; role != "leader" && role != "voter" {
			t.Fatalf("the ROLE column is not aligned (%q):\n%s", role, table)
		}
	}

	// status: the Raft view, failure tolerance from the leader's autopilot.
	var st Status
	nodeJSON(t, &st, "status", "-addr", addr)
	if st.Term == 0 || st.CommitIndex == 0 || st.ClusterStatus != "healthy" || st.ToleranceFrom != st.Leader {
		t.Fatalf("status: %+v", st)
	}
	// Autopilot counts a voter once it has been healthy for a while.
	// With RF 2 (or more) on 3 members every partition survives one loss.
	eventually(t, 20*time.Second, "a failure tolerance of 1 voter and 1 node with 3 voters", func() bool {
		nodeJSON(t, &st, "status", "-addr", addr)
		return st.FailureTolerance.Voters == 1 && st.FailureTolerance.Nodes >= 1
	})
	text, err := node(t, "status", "-addr", addr)
	if err != nil || !strings.Contains(text, "Failure tolerance:") || !strings.Contains(text, "Leader:") {
		t.Fatalf("status table: %v\n%s", err, text)
	}

	if updateDocs {
		writeCLISamples(t, addr)
	}

	// partitions -node: exactly what members counted for that node.
	var parts []client.Partition
	nodeJSON(t, &parts, "partitions", "-addr", addr, "-node", "node-2")
	if want := rows[1].Partitions; len(parts) != want {
		t.Fatalf("partitions -node node-2: %d, members says %d", len(parts), want)
	}
	for _, p := range parts {
		if !slices.ContainsFunc(p.Owners, func(o client.PartitionOwner) bool { return o.ID == "node-2" }) {
			t.Fatalf("partitions -node node-2 lists %s owned by %+v", p.ID, p.Owners)
		}
	}

	// locate: the gateway's answer.
	var loc client.PartitionDetail
	nodeJSON(t, &loc, "locate", "user:42", "-addr", addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, err := gateway(addr).Locate(ctx, "user:42")
	if err != nil {
		t.Fatal(err)
	}
	if loc.Number != want.Number || loc.Primary == nil || loc.Primary.ID != want.Primary.ID {
		t.Fatalf("locate: %+v, the gateway says %+v", loc, want)
	}

	// watch: recent history, resumable by seq.
	out, err := node(t, "watch", "-addr", addr, "-since", "oldest", "-n", "3", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		var ev client.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Seq == "" || ev.Kind == "" {
			t.Fatalf("watch line %q: %v", sc.Text(), err)
		}
		seqs = append(seqs, ev.Seq)
	}
	if len(seqs) != 3 {
		t.Fatalf("watch -n 3 printed %d events:\n%s", len(seqs), out)
	}
	out, err = node(t, "watch", "-addr", addr, "-since", seqs[0], "-n", "2", "-o", "json")
	if err != nil || !strings.Contains(out, `"seq":"`+seqs[1]+`"`) || strings.Contains(out, `"seq":"`+seqs[0]+`"`) {
		t.Fatalf("watch -since %s: %v\n%s", seqs[0], err, out)
	}

	// A change without the token: 401, said with the node and the remedy.
	_, err = node(t, "drain", "node-3", "-addr", addr)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "-auth-token-file") {
		t.Fatalf("drain without a token: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("an error shows the token: %v", err)
	}
	t.Setenv("CLUSTERKIT_AUTH_TOKEN_FILE", tokFile)

	// drain, then undrain: node-3 ends with nothing, then gets its share.
	if _, err := node(t, "drain", "node-3", "-addr", addr); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "node-3 to hold nothing", func() bool {
		var ps []client.Partition
		nodeJSON(t, &ps, "partitions", "-addr", addr, "-node", "node-3")
		return len(ps) == 0
	})
	if _, err := node(t, "undrain", "node-3", "-addr", addr); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "node-3 to hold partitions again", func() bool {
		var ps []client.Partition
		nodeJSON(t, &ps, "partitions", "-addr", addr, "-node", "node-3")
		return len(ps) == 64
	})

	// rebalance: pause and resume (maintenance mode), a dry run.
	paused := func() bool {
		doc, err := cluster(addr)
		return err == nil && doc.Cluster.RebalancePaused
	}
	if _, err := node(t, "rebalance", "pause", "-addr", addr); err != nil || !paused() {
		t.Fatalf("rebalance pause: %v, paused %v", err, paused())
	}
	if _, err := node(t, "rebalance", "resume", "-addr", addr); err != nil || paused() {
		t.Fatalf("rebalance resume: %v, paused %v", err, paused())
	}
	var plan client.RebalancePlan
	nodeJSON(t, &plan, "rebalance", "-dry-run", "-addr", addr)
	if _, err := node(t, "rebalance", "bogus", "-addr", addr); !errors.Is(err, errUsage) {
		t.Fatalf("rebalance bogus: %v, want a usage error", err)
	}

	// transfer-leader: to a named voter.
	target := "node-2"
	if leader() == target {
		target = "node-3"
	}
	if out, err := node(t, "transfer-leader", target, "-addr", addr); err != nil || !strings.Contains(out, target) {
		t.Fatalf("transfer-leader %s: %v %s", target, err, out)
	}
	eventually(t, 20*time.Second, target+" to lead", func() bool { return leader() == target })

	// probe: 0 on a ready node; exit 1 with the reason on a dead address.
	if _, err := node(t, "probe", "-addr", addr); err != nil {
		t.Fatalf("probe of a ready node: %v", err)
	}
	dead := freeAddr(t)
	_, err = node(t, "probe", "-addr", dead)
	var ex exitError
	if !errors.As(err, &ex) || ex.code != 1 || !strings.Contains(ex.msg, "cannot reach node "+dead) {
		t.Fatalf("probe of a dead address: %v", err)
	}

	// remove: an unknown ID is said so; a member goes.
	if _, err := node(t, "remove", "nope", "-addr", addr); err == nil || !strings.Contains(err.Error(), "unknown_node") {
		t.Fatalf("remove nope: %v", err)
	}
	victim := "node-3"
	if leader() == victim {
		victim = "node-2"
	}
	if _, err := node(t, "remove", victim, "-addr", procs[0].addr); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, victim+" to be gone", func() bool {
		var rs []MemberRow
		nodeJSON(t, &rs, "members", "-addr", procs[0].addr)
		return len(rs) == 2 && !slices.ContainsFunc(rs, func(r MemberRow) bool { return r.ID == victim })
	})
}

// The program's usage: -h on the node and on every subcommand exits 0 and
// prints on stdout; an unknown subcommand or an unreadable variable exits 2
// and says which.
func TestUsageAndExitCodes(t *testing.T) {
	runBin := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary(t), args...)
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		_ = cmd.Run()
		if cmd.ProcessState == nil {
			t.Fatalf("node %v did not run", args)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}
	helps := [][]string{{"-h"}, {"--help"}, {"help"}, {"serve", "-h"}, {"recover", "-h"}}
	for _, c := range commands() {
		helps = append(helps, []string{c.name, "-h"})
	}
	for _, args := range helps {
		code, out, _ := runBin(nil, args...)
		if code != 0 || !strings.Contains(out, "usage: node") {
			t.Errorf("node %v: exit %d, stdout:\n%s", args, code, out)
		}
	}
	_, out, _ := runBin(nil, "-h")
	for _, c := range commands() {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("node -h does not list %s", c.name)
		}
	}
	if !strings.Contains(out, "CLUSTERKIT_DATA_DIR") {
		t.Errorf("node -h does not name the variables:\n%s", out)
	}
	if code, _, stderr := runBin(nil, "bogus"); code != 2 || !strings.Contains(stderr, `unknown subcommand "bogus"`) {
		t.Errorf("node bogus: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runBin([]string{"CLUSTERKIT_HEALTH_INTERVAL=soon"}, "-id", "x"); code != 2 || !strings.Contains(stderr, `CLUSTERKIT_HEALTH_INTERVAL="soon"`) {
		t.Errorf("an unreadable variable: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runBin(nil, "locate"); code != 2 || !strings.Contains(stderr, "KEY") {
		t.Errorf("locate without a key: exit %d, %s", code, stderr)
	}
}

// updateDocs: CLUSTERKIT_UPDATE_DOCS=1 regenerates what the docs show of
// the program (the dashboard's screenshots in docs/img, the output of
// members and status in docs/operations.md):
//
//	CLUSTERKIT_UPDATE_DOCS=1 go test ./examples/node -run 'TestDashboard$|TestOperatorCommands' -count=1
var updateDocs = os.Getenv("CLUSTERKIT_UPDATE_DOCS") != ""

const (
	samplesBegin = "<!-- begin generated CLI samples: CLUSTERKIT_UPDATE_DOCS=1 go test ./examples/node -run TestOperatorCommands -->\n"
	samplesEnd   = "<!-- end generated CLI samples -->\n"
)

// writeCLISamples puts the output of members and status, asked of the node
// at addr, into docs/operations.md.
func writeCLISamples(t *testing.T, addr string) {
	t.Helper()
	var b strings.Builder
	for _, cmd := range []string{"members", "status"} {
		out, err := node(t, cmd, "-addr", addr)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("```\n$ node " + cmd + " -addr " + addr + "\n" + out + "```\n\n")
	}
	generatedBlock(t, operationsDoc, samplesBegin, samplesEnd, strings.TrimSuffix(b.String(), "\n"))
	t.Logf("wrote the members and status samples into %s", operationsDoc)
}
