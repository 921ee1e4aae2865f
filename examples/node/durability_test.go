package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"

	"github.com/clusterkit/clusterkit/actors/actortest"
)

// Durability with real processes and kill -9: a node restarted on its data
// directory, the whole cluster killed and restarted, a node down while the
// cluster changed. Events are never delivered twice across restarts.

// seqs returns the seq ("index.sub") of every event p printed.
func (p *proc) seqs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, line := range p.seen {
		_, js, _ := strings.Cut(strings.TrimPrefix(line, "event "), " ")
		var e client.Event
		if json.Unmarshal([]byte(js), &e) == nil {
			out = append(out, e.Seq)
		}
	}
	return out
}

// noneTwice fails if a seq appears in two runs of the same node (or twice in one).
func noneTwice(t *testing.T, runs ...*proc) {
	t.Helper()
	seen := map[string]int{}
	for i, r := range runs {
		for _, s := range r.seqs() {
			if prev, ok := seen[s]; ok {
				t.Fatalf("%s: event %s delivered in run %d and again in run %d", r.id, s, prev+1, i+1)
			}
			seen[s] = i
		}
	}
}

func durableArgs(dir string, extra ...string) []string {
	return append(append(slices.Clone(fastArgs), "-data-dir", dir), extra...)
}

func putCustom(t *testing.T, addr, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := gateway(addr).PutCustomData(ctx, key, []byte(value)); err != nil {
		t.Fatalf("PUT %s on %s: %v", key, addr, err)
	}
}

// getCustom reads key on addr ("" when missing); consistent reads go
// through the leader.
func getCustom(addr, key string, consistent bool) (string, error) {
	ctx, cancel := ctx5()
	defer cancel()
	v, err := gateway(addr).CustomData(ctx, key, consistent)
	var e *client.Error
	switch {
	case errors.As(err, &e) && e.Code == "key_not_found":
		return "", nil
	case err != nil:
		return "", err
	}
	return string(v.Value), nil
}

func owners(doc clusterDoc) map[string]string {
	out := map[string]string{}
	for id, p := range doc.Cluster.PartitionMap.Partitions {
		out[id] = p.PrimaryNode + "|" + strings.Join(p.ReplicaNodes, ",")
	}
	return out
}

// A node killed with kill -9 and restarted on its data directory resumes its
// membership without a join address, gets NodeRejoin and the partitions to
// reload, keeps the custom data, and delivers no event twice.
func TestRestartOnDataDirAfterKill9(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	keep := []string{"-health-removal-grace", "30s"} // a quick restart, not a removal
	first := launch(t, "node-1", freeAddr(t), durableArgs(dirs[0], keep...)...)
	procs := []*proc{first,
		launch(t, "node-2", freeAddr(t), durableArgs(dirs[1], append(keep, "-join", first.addr)...)...),
		launch(t, "node-3", freeAddr(t), durableArgs(dirs[2], append(keep, "-join", first.addr)...)...),
	}
	waitMembers(t, procs, "node-1", "node-2", "node-3")
	putCustom(t, procs[1].addr, "flags", "on")
	victim := procs[2]
	actortest.Eventually(t, 10*time.Second, "node-3 to deliver the custom-data event", func() bool {
		return len(victim.events("custom_data_change")) == 1
	})

	victim.kill9(t)
	down := time.Now()
	again := launch(t, "node-3", victim.addr, durableArgs(dirs[2], keep...)...) // no -join
	procs[2] = again
	waitMembers(t, procs, "node-1", "node-2", "node-3")
	actortest.Eventually(t, 10*time.Second, "node-3's NodeRejoin", func() bool { return len(again.events("node_rejoin")) == 1 })
	rejoin := again.events("node_rejoin")[0].NodeRejoin
	offline := msDuration(rejoin.OfflineDurationMs)
	if rejoin.Node.ID != "node-3" || offline <= 0 || offline > time.Since(down)+2*time.Second {
		t.Fatalf("NodeRejoin %+v (down %v ago)", rejoin, time.Since(down))
	}
	actortest.Eventually(t, 10*time.Second, "node-3 to reload every partition", func() bool {
		mine := 0
		for _, e := range again.events("partition_change") {
			if to := e.PartitionChange.CopyToNode; to != nil && to.ID == "node-3" {
				mine++
			}
		}
		return mine == 64 // RF 3 on 3 nodes: it holds them all
	})
	if v, err := getCustom(again.addr, "flags", false); err != nil || v != "on" {
		t.Fatalf("custom data after the restart: %q %v", v, err)
	}
	if n := len(again.events("node_join")); n != 0 {
		t.Fatalf("the restarted node delivered %d NodeJoin events of the past", n)
	}
	noneTwice(t, victim, again)
}

// The whole cluster killed with kill -9 and restarted comes back with one
// leader, the same members, the same table and the same custom data.
func TestWholeClusterKill9AndRestart(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	keep := []string{"-health-removal-grace", "30s"}
	first := launch(t, "node-1", freeAddr(t), durableArgs(dirs[0], keep...)...)
	procs := []*proc{first,
		launch(t, "node-2", freeAddr(t), durableArgs(dirs[1], append(keep, "-join", first.addr)...)...),
		launch(t, "node-3", freeAddr(t), durableArgs(dirs[2], append(keep, "-join", first.addr)...)...),
	}
	before := waitMembers(t, procs, "node-1", "node-2", "node-3")
	data := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("key-%02d", i), strings.Repeat(strconv.Itoa(i), i+1)
		putCustom(t, procs[i%3].addr, k, v)
		data[k] = v
	}
	for _, p := range procs {
		actortest.Eventually(t, 10*time.Second, p.id+" to deliver every custom-data event", func() bool {
			return len(p.events("custom_data_change")) == len(data)
		})
	}
	for _, p := range procs {
		p.kill9(t)
	}

	start := time.Now()
	restarted := make([]*proc, 3)
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { restarted[i] = launch(t, p.id, p.addr, durableArgs(dirs[i], keep...)...) })
	}
	wg.Wait()
	after := waitMembers(t, restarted, "node-1", "node-2", "node-3")
	t.Logf("whole cluster kill -9 → restarted, one leader, table agreed: %v", time.Since(start).Round(time.Millisecond))
	leaders := map[string]bool{}
	for _, p := range restarted {
		ctx, cancel := ctx5()
		l, err := gateway(p.addr).ConsensusLeader(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		leaders[l.LeaderID] = true
	}
	if len(leaders) != 1 || leaders[""] {
		t.Fatalf("leaders after the restart: %v", leaders)
	}
	if a, b := owners(before), owners(after); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("table changed across the restart:\nbefore %v\nafter  %v", a, b)
	}
	for _, p := range restarted {
		for k, v := range data {
			if got, err := getCustom(p.addr, k, true); err != nil || got != v {
				t.Fatalf("%s: %s = %q (%v), want %q", p.id, k, got, err, v)
			}
		}
	}
	for i := range procs {
		noneTwice(t, procs[i], restarted[i])
		if n := len(restarted[i].events("custom_data_change")); n != 0 {
			t.Fatalf("%s delivered %d custom-data events of the past again", procs[i].id, n)
		}
	}
}

// A node down (and removed) while the table and the custom data changed
// comes back: NodeRejoin with its offline time, the partitions it must
// load, the new custom data, and none of its old events again.
func TestNodeDownWhileTheClusterChanges(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()}
	first := launch(t, "node-1", freeAddr(t), durableArgs(dirs[0])...)
	procs := []*proc{first}
	for i := 2; i <= 4; i++ {
		procs = append(procs, launch(t, fmt.Sprintf("node-%d", i), freeAddr(t), durableArgs(dirs[i-1], "-join", first.addr)...))
	}
	waitMembers(t, procs, "node-1", "node-2", "node-3", "node-4")
	victim := procs[3]
	victim.kill9(t)
	down := time.Now()
	waitMembers(t, procs[:3], "node-1", "node-2", "node-3") // detected, removed, rebalanced
	putCustom(t, procs[0].addr, "while-away", "news")
	big := bytes.Repeat([]byte("x"), 64<<10)
	putCustom(t, procs[1].addr, "blob", string(big))

	again := launch(t, "node-4", victim.addr, durableArgs(dirs[3], "-join", first.addr)...)
	all := []*proc{procs[0], procs[1], procs[2], again}
	waitMembers(t, all, "node-1", "node-2", "node-3", "node-4")
	actortest.Eventually(t, 10*time.Second, "node-4's NodeRejoin", func() bool { return len(again.events("node_rejoin")) == 1 })
	offline := msDuration(again.events("node_rejoin")[0].NodeRejoin.OfflineDurationMs)
	if offline < 300*time.Millisecond || offline > time.Since(down)+2*time.Second {
		t.Fatalf("offline %v, it was down for about %v", offline, time.Since(down))
	}
	actortest.Eventually(t, 10*time.Second, "partitions to load on node-4", func() bool {
		for _, e := range again.events("partition_change") {
			if to := e.PartitionChange.CopyToNode; to != nil && to.ID == "node-4" {
				return true
			}
		}
		return false
	})
	for k, want := range map[string]string{"while-away": "news", "blob": string(big)} {
		if got, err := getCustom(again.addr, k, false); err != nil || got != want {
			t.Fatalf("node-4: %s = %d bytes (%v)", k, len(got), err)
		}
	}
	noneTwice(t, victim, again)
}
