package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A damaged or foreign data directory gives a clear error at Start: never a
// node that hangs, a panic, or a silently fresh cluster.
func TestDamagedDataDir(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, dir string, o *Options)
		want    error
		message string
	}{
		{"truncated log", func(t *testing.T, dir string, _ *Options) {
			for _, seg := range glob(t, dir, "raft", "wal", "*.wal") {
				if err := os.Truncate(seg, 1000); err != nil {
					t.Fatal(err)
				}
			}
		}, ErrDataDir, "unreadable"},
		{"garbage in the log", func(t *testing.T, dir string, _ *Options) {
			for _, seg := range glob(t, dir, "raft", "wal", "*.wal") {
				f, err := os.OpenFile(seg, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = f.WriteAt(make([]byte, 8192), 256)
				f.Close()
			}
		}, ErrDataDir, "unreadable"},
		{"garbage snapshots", func(t *testing.T, dir string, _ *Options) {
			for _, s := range glob(t, dir, "raft", "snapshots", "*", "state.bin") {
				if err := os.WriteFile(s, []byte("garbage"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}, ErrDataDir, "no snapshot is readable"},
		{"garbage log metadata", func(t *testing.T, dir string, _ *Options) {
			if err := os.WriteFile(filepath.Join(dir, "raft", "wal", "wal-meta.db"), []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrDataDir, "wal-meta.db"},
		{"empty log metadata", func(t *testing.T, dir string, _ *Options) {
			if err := os.WriteFile(filepath.Join(dir, "raft", "wal", "wal-meta.db"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrDataDir, "wal-meta.db is empty"},
		{"garbage node file", func(t *testing.T, dir string, _ *Options) {
			if err := os.WriteFile(filepath.Join(dir, "node.json"), []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrDataDir, "corrupt"},
		{"another cluster", func(t *testing.T, _ string, o *Options) { o.ClusterName = "other" }, ErrDataDir, `holds cluster "clusterkit"`},
		{"another node", func(t *testing.T, _ string, o *Options) { o.NodeID = "node-2" }, ErrDataDir, "another node"},
		{"other partition count", func(t *testing.T, _ string, o *Options) { o.PartitionCount = 128 }, ErrConfigMismatch, "PartitionCount is 128 but the cluster has 64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := fastOptions(t, "node-1")
			o.DataDir = dir
			o.Raft.SnapshotThreshold = 40
			o.Raft.SnapshotInterval = 20 * time.Millisecond
			ck, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := ck.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ck.Stop(context.Background()) })
			// Writes until two snapshots exist: a fixed count may all land
			// between two snapshot checks on a fast machine.
			i := 0
			waitFor(t, 20*time.Second, "two snapshots", func() bool {
				for range 50 {
					if _, err := ck.SetCustomData(context.Background(), fmt.Sprintf("k%04d", i), []byte("v")); err != nil {
						t.Fatal(err)
					}
					i++
				}
				return len(glob(t, dir, "raft", "snapshots", "*", "state.bin")) == 2
			})
			if err := ck.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir, &o)
			o.StartTimeout = 10 * time.Second
			again, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = again.Start(context.Background())
			if err == nil {
				_ = again.Stop(context.Background())
				t.Fatalf("started on a damaged data directory (%d keys)", len(again.ListCustomDataKeys()))
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) || errors.Is(err, ErrStartTimeout) {
				t.Fatalf("Start: %v; want %v mentioning %q", err, tc.want, tc.message)
			}
			t.Logf("%s after %v: %v", tc.name, time.Since(start).Round(time.Millisecond), err)
		})
	}
}

func glob(t *testing.T, parts ...string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
