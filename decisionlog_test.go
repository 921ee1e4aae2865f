package clusterkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/internal/logging"
)

// TestDecisionLinesCarryTheIndex: every decision the cluster takes is one
// INFO line of the node that took it, with the committed index: the join
// admitted, the promotion, the rebalance's start and end, the removal and
// the leadership change. The other nodes log them at DEBUG only; every line
// is a JSON object with unique keys, and node is the node that logged it.
func TestDecisionLinesCarryTheIndex(t *testing.T) {
	leakCheck(t)
	var mu sync.Mutex
	var buf bytes.Buffer
	checker := &logging.LineChecker{Next: lockedWriter{&mu, &buf}}
	nodes := startCluster(t, 3, func(i int, o *Options) {
		o.PartitionCount = 16
		o.Logger = slog.New(slog.NewJSONHandler(checker, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}, nil)

	type rec struct {
		Level, Msg, Node, Peer string
		Index                  json.Number
	}
	// lines returns the INFO lines with msg, and the number of lines
	// with msg at any level.
	lines := func(msg string) (info []rec, all int) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range bytes.Split(buf.Bytes(), []byte("\n")) {
			var r rec
			if json.Unmarshal(l, &r) != nil || r.Msg != msg {
				continue
			}
			all++
			if r.Level == "INFO" {
				info = append(info, r)
			}
		}
		return info, all
	}
	// expect waits for at least n INFO lines with msg, each with a
	// positive index, and returns them.
	expect := func(msg string, n int) []rec {
		t.Helper()
		var got []rec
		waitFor(t, 30*time.Second, fmt.Sprintf("%d INFO %q lines with an index", n, msg), func() bool {
			got, _ = lines(msg)
			return len(got) >= n
		})
		for _, r := range got {
			if idx, err := r.Index.Int64(); err != nil || idx <= 0 {
				t.Errorf("%q logged by %s without a committed index: %+v", msg, r.Node, r)
			}
		}
		return got
	}

	leader := leaderOf(t, nodes)
	leaderID := leader.GetMyNodeID()
	expect("became leader", 1)
	for _, r := range expect("admitted node", 2) {
		if r.Node != leaderID || r.Peer == "" || r.Peer == r.Node {
			t.Errorf("admitted node: logged by %s about %q, want by the leader %s about the joiner", r.Node, r.Peer, leaderID)
		}
	}
	for _, r := range expect("promoted to voter", 2) {
		if r.Peer == "" || r.Peer == r.Node {
			t.Errorf("promoted to voter: peer %q on %s's line", r.Peer, r.Node)
		}
	}
	expect("rebalance started", 1)
	expect("rebalance complete", 1)

	leaver := othersThan(nodes, leader)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := leaver.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	removed := expect("member removed", 1)
	if r := removed[0]; r.Peer != leaver.GetMyNodeID() || r.Node != leaderID {
		t.Errorf("member removed: logged by %s about %q, want by the leader %s about %s", r.Node, r.Peer, leaderID, leaver.GetMyNodeID())
	}
	// The followers applied the removal too, at DEBUG: one INFO line per
	// decision, however many nodes apply it.
	waitFor(t, 30*time.Second, "the remaining follower to apply the removal", func() bool {
		_, all := lines("member removed")
		return all >= 2
	})
	if info, _ := lines("member removed"); len(info) != 1 {
		t.Errorf("member removed: %d INFO lines, want 1 (the leader's)", len(info))
	}

	other := othersThan(nodes, leader, leaver)[0]
	if _, err := leader.TransferLeadership(ctx, other.GetMyNodeID()); err != nil {
		t.Fatal(err)
	}
	for _, r := range expect("became leader", 2) {
		if r.Node == other.GetMyNodeID() {
			n, problems := checker.Lines()
			if len(problems) > 0 {
				t.Errorf("%d of %d lines are not JSON objects with unique keys:\n%s", len(problems), n, strings.Join(problems, "\n"))
			}
			return
		}
	}
	t.Errorf("no \"became leader\" line from %s after the transfer", other.GetMyNodeID())
}
