package clusterkit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestStopDoesNotRecreateDataDir: a node whose data directory was removed
// under it stops cleanly without creating the directory again, although it
// is far enough behind its last snapshot for Stop to take one.
func TestStopDoesNotRecreateDataDir(t *testing.T) {
	leakCheck(t)
	dir := filepath.Join(t.TempDir(), "node-1")
	o := fastOptions(t, "node-1")
	o.DataDir = dir
	ck := startNode(t, o)
	for i := range stopSnapshotBehind + 10 {
		if err := ck.SetCustomData(fmt.Sprintf("k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := ck.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		left, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		t.Fatalf("Stop recreated the removed data directory (stat: %v; holds %v)", err, left)
	}
}
