package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/actors/actortest"
)

// recoverCmd runs `node recover args...` and returns its exit code, stdout
// and stderr.
func recoverCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary(t), append([]string{"recover"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("node recover: %v", err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// Quorum loss, for good: of three voters, two are killed and their data
// directories deleted. The survivor cannot commit; `node recover` on its
// directory makes it the only voter with all its data; restarted, it leads
// alone, removes the two lost members (removed_by_admin, not failure
// detection: its removal grace is far longer than the test), and a new node
// joins, becomes a voter and reads every value.
func TestQuorumLossRecovery(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()}
	keep := []string{"-health-removal-grace", "5m", "-voter-stabilization", "300ms"}
	first := launch(t, "node-1", freeAddr(t), durableArgs(dirs[0], keep...)...)
	procs := []*proc{first,
		launch(t, "node-2", freeAddr(t), durableArgs(dirs[1], append(keep, "-join", first.addr)...)...),
		launch(t, "node-3", freeAddr(t), durableArgs(dirs[2], append(keep, "-join", first.addr)...)...),
	}
	waitMembers(t, procs, "node-1", "node-2", "node-3")
	waitVoters(t, procs, "node-1", "node-2", "node-3")
	data := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("key-%02d", i), fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i))
		putCustom(t, procs[i%3].addr, k, v)
		data[k] = v
	}
	// Recovery keeps what the survivor's log holds: wait until it has it all.
	actortest.Eventually(t, 10*time.Second, "node-1 to apply every write", func() bool {
		for k, v := range data {
			if got, err := getCustom(first.addr, k, false); err != nil || got != v {
				return false
			}
		}
		return true
	})

	for _, p := range procs[1:] {
		p.kill9(t)
	}
	for _, d := range dirs[1:3] {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	actortest.Eventually(t, 10*time.Second, "node-1 to know no leader", func() bool {
		code, body, err := readyOf(first.addr)
		return err == nil && code == http.StatusServiceUnavailable && slices.Contains(body.Reasons, "no known leader")
	})
	req, _ := http.NewRequest("PUT", "http://"+first.addr+"/custom-data/during-outage", strings.NewReader("x"))
	if resp, err := httpClient.Do(req); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("a write committed without a quorum: %s", body)
		}
	}

	// Refused while the node runs (its port is taken), and nothing changes.
	code, out, errOut := recoverCmd(t, "-id", "node-1", "-data-dir", dirs[0], "-http", first.addr)
	if code == 0 || !strings.Contains(errOut, "still running") || out != "" {
		t.Fatalf("recover on a running node: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	first.kill9(t)
	code, out, errOut = recoverCmd(t, "-id", "node-1", "-data-dir", dirs[0], "-http", first.addr)
	if code != 0 {
		t.Fatalf("recover: exit %d: %s", code, errOut)
	}
	want := "recovered node=node-1 cluster="
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], want) ||
		!strings.Contains(lines[0], " servers=node-1@"+first.addr+" ") || !strings.Contains(lines[0], " lost=node-2,node-3") ||
		!strings.Contains(lines[0], " last_index=") {
		t.Fatalf("recover printed %q", out)
	}
	marker := filepath.Join(dirs[0], "recovery.json")
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no marker after the recovery: %v", err)
	}

	again := launch(t, "node-1", first.addr, durableArgs(dirs[0], keep...)...) // no -join
	actortest.Eventually(t, 20*time.Second, "node-1 alone, leader and ready", func() bool {
		ms, err := membersOf(again.addr)
		if err != nil || len(ms) != 1 || ms[0].ID != "node-1" {
			return false
		}
		code, body, err := readyOf(again.addr)
		return err == nil && code == http.StatusOK && body.Leader == "node-1"
	})
	leaves := map[string]string{}
	poll(10*time.Second, func() bool {
		for _, e := range again.events("node_leave") {
			leaves[e.NodeLeave.Node.ID] = e.NodeLeave.Reason
		}
		return len(leaves) >= 2
	})
	if len(leaves) != 2 || leaves["node-2"] != "removed_by_admin" || leaves["node-3"] != "removed_by_admin" {
		again.mu.Lock()
		t.Logf("events: %s", strings.Join(again.seen, "\n"))
		again.mu.Unlock()
		t.Fatalf("NodeLeave events on node-1: %v", leaves)
	}
	actortest.Eventually(t, 10*time.Second, "the marker deleted", func() bool {
		_, err := os.Stat(marker)
		return errors.Is(err, fs.ErrNotExist)
	})

	fourth := launch(t, "node-4", freeAddr(t), durableArgs(dirs[3], append(keep, "-join", again.addr)...)...)
	both := []*proc{again, fourth}
	waitMembers(t, both, "node-1", "node-4")
	waitVoters(t, both, "node-1", "node-4")
	for k, v := range data {
		if got, err := getCustom(fourth.addr, k, true); err != nil || got != v {
			t.Fatalf("node-4: %s = %q (%v), want %q", k, got, err, v)
		}
	}
}
