package clusterkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/clusterkit/clusterkit/internal/nodefile"
	"github.com/clusterkit/clusterkit/raftfsm"
)

// digest maps every file under dir to a hash of its content ("" for a
// directory that does not exist).
func digest(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out = append(out, path+"/")
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out = append(out, path+" "+hex.EncodeToString(sum[:8]))
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}

// RecoverCluster refuses bad input with a clear error and changes nothing.
func TestRecoverClusterRefusals(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	o := fastOptions(t, "node-1")
	o.HTTPAddr, o.DataDir = freeAddr(t), dir
	ck := startNode(t, o)
	if _, err := ck.SetCustomData(context.Background(), "kept", []byte("yes")); err != nil {
		t.Fatal(err)
	}
	if err := ck.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := digest(t, dir)

	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name      string
		change    func(o *Options)
		survivors map[string]string
		want      error
		message   string
	}{
		{"no data directory", func(o *Options) { o.DataDir = "" }, nil, ErrInvalidOptions, "DataDir is required"},
		{"port 0", func(o *Options) { o.HTTPAddr = "127.0.0.1:0" }, nil, ErrInvalidOptions, "not 0"},
		{"empty data directory", func(o *Options) { o.DataDir = empty }, nil, ErrDataDir, "no Raft log"},
		{"missing data directory", func(o *Options) { o.DataDir = missing }, nil, ErrDataDir, "no Raft log"},
		{"another node's directory", func(o *Options) { o.NodeID = "node-2" }, nil, nodefile.ErrWrongNode, `written by node "node-1", this is "node-2"`},
		{"survivor not a member", nil, map[string]string{"node-9": "127.0.0.1:1"}, ErrInvalidOptions, `survivor "node-9" is not a member of cluster`},
		{"invalid survivor", nil, map[string]string{"bad id": "nowhere"}, ErrInvalidOptions, `survivor "bad id"`},
		{"survivor at this node's address", nil, map[string]string{"node-2": o.HTTPAddr}, ErrInvalidOptions, "has this node's address"},
		{"this node at another address", nil, map[string]string{"node-1": "127.0.0.1:1"}, ErrInvalidOptions, "its advertise address is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro := o
			if tc.change != nil {
				tc.change(&ro)
			}
			_, err := RecoverCluster(ro, tc.survivors)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("got %v, want %v with %q", err, tc.want, tc.message)
			}
			if got := digest(t, dir); got != before {
				t.Fatalf("the data directory changed:\nbefore\n%s\nafter\n%s", before, got)
			}
			if got := digest(t, empty); got != empty+"/" {
				t.Fatalf("the empty directory changed: %s", got)
			}
			if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the missing directory was created: %v", err)
			}
		})
	}

	// A directory with a Raft log but no state (the node never got one).
	bare := t.TempDir()
	bo := fastOptions(t, "node-1")
	bo.HTTPAddr, bo.DataDir = freeAddr(t), bare
	stores, err := raftfsm.OpenStores(bare, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := stores.Close(); err != nil {
		t.Fatal(err)
	}
	if err := nodefile.Write(bare, nodefile.File{NodeID: "node-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := RecoverCluster(bo, nil); !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), "no Raft state") {
		t.Fatalf("a directory without Raft state: %v", err)
	}

	// An empty log metadata file (raft-wal would panic on it).
	if err := os.Truncate(filepath.Join(bare, "raft", "wal", "wal-meta.db"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := RecoverCluster(bo, nil); !errors.Is(err, raftfsm.ErrDamaged) {
		t.Fatalf("an empty wal-meta.db: %v", err)
	}

	// The node running on its directory: its port is taken.
	again := startNode(t, o)
	if _, err := RecoverCluster(o, nil); !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("recovering a running node: %v", err)
	}
	if v, _, err := again.GetCustomData("kept"); err != nil || string(v) != "yes" {
		t.Fatalf("after the refusals: %q %v", v, err)
	}
	if _, err := os.Stat(filepath.Join(dir, recoveryMarkerName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused recovery left a marker: %v", err)
	}
}

// Three voters, two of them gone for good: the survivor, recovered, leads
// alone with its data, removes the lost members (removed_by_admin) and
// deletes its marker; a stale copy of the marker never removes a new life
// of a lost node ID.
func TestRecoverClusterInProcess(t *testing.T) {
	leakCheck(t)
	opts := func(id, dir string) Options {
		o := fastOptions(t, id)
		o.HTTPAddr, o.DataDir = freeAddr(t), dir
		// Failure detection must not be what removes the lost members.
		o.HealthCheck = HealthCheckConfig{RemovalGrace: time.Minute}
		return o
	}
	o1 := opts("node-1", t.TempDir())
	n1 := startNode(t, o1)
	var nodes []*ClusterKit
	nodes = append(nodes, n1)
	for _, id := range []string{"node-2", "node-3"} {
		o := opts(id, t.TempDir())
		o.JoinAddrs = []string{o1.HTTPAddr}
		nodes = append(nodes, startNode(t, o))
	}
	waitVoters(t, nodes, 3)
	for i := range 10 {
		if _, err := nodes[i%3].SetCustomData(context.Background(), fmt.Sprintf("k%d", i), []byte(fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "node-1 to apply every write", func() bool { return len(n1.ListCustomDataKeys()) == 10 })
	for _, n := range []*ClusterKit{nodes[2], nodes[1], n1} {
		if err := n.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	res, err := RecoverCluster(o1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Lost, []string{"node-2", "node-3"}) || len(res.Servers) != 1 ||
		res.Servers[0] != (RecoveredServer{ID: "node-1", Address: o1.HTTPAddr}) || res.LastIndex == 0 || res.ClusterID == "" {
		t.Fatalf("recovery %+v", res)
	}
	marker, err := os.ReadFile(filepath.Join(o1.DataDir, recoveryMarkerName))
	if err != nil {
		t.Fatal(err)
	}

	n1 = startNode(t, o1)
	waitFor(t, 20*time.Second, "the lost members removed", func() bool {
		members := n1.fsm.View().Members()
		return len(members) == 1 && members[0].ID == "node-1"
	})
	waitFor(t, 10*time.Second, "the marker deleted", func() bool {
		_, err := os.Stat(filepath.Join(o1.DataDir, recoveryMarkerName))
		return errors.Is(err, fs.ErrNotExist)
	})
	for _, id := range []string{"node-2", "node-3"} {
		d, ok := n1.fsm.View().Departed(id)
		if !ok || d.Reason != "removed_by_admin" || d.RemovedBy != "node-1" {
			t.Fatalf("%s: departure %+v %v", id, d, ok)
		}
	}
	for i := range 10 {
		if v, _, err := n1.GetCustomData(fmt.Sprintf("k%d", i)); err != nil || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("k%d = %q %v", i, v, err)
		}
	}

	// node-2 comes back as a new life (an empty directory), then node-1
	// restarts with the stale marker: node-2 stays.
	o2 := opts("node-2", t.TempDir())
	o2.JoinAddrs = []string{o1.HTTPAddr}
	n2 := startNode(t, o2)
	waitVoters(t, []*ClusterKit{n1, n2}, 2)
	if err := n1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o1.DataDir, recoveryMarkerName), marker, 0o600); err != nil {
		t.Fatal(err)
	}
	n1 = startNode(t, o1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitFor(t, 20*time.Second, "node-1 to lead", func() bool {
		if n1.HealthCheck().Leader == "node-1" {
			return true
		}
		_, _ = n1.TransferLeadership(ctx, "node-1")
		return false
	})
	waitFor(t, 10*time.Second, "the stale marker deleted", func() bool {
		_, err := os.Stat(filepath.Join(o1.DataDir, recoveryMarkerName))
		return errors.Is(err, fs.ErrNotExist)
	})
	if _, ok := n1.fsm.View().Member("node-2"); !ok {
		t.Fatal("the stale marker removed node-2's new life")
	}
}
