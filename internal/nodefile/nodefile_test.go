package nodefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenKeepsIdentityAndChecksOwner(t *testing.T) {
	dir := t.TempDir()
	f1, err := Open(dir, "node-1")
	if err != nil || f1 != (File{NodeID: "node-1"}) {
		t.Fatalf("first Open = %+v, %v", f1, err)
	}
	f1.ClusterID, f1.Incarnation = "0123456789abcdef0123456789abcdef", 42
	if err := Write(dir, f1); err != nil {
		t.Fatal(err)
	}
	f2, err := Open(dir, "node-1")
	if err != nil || f2 != f1 {
		t.Fatalf("second Open = %+v, %v (opening must not change the identity)", f2, err)
	}
	if _, err := Open(dir, "node-2"); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("Open with another ID: %v, want ErrWrongNode", err)
	}
	if err := os.WriteFile(filepath.Join(dir, Name), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "node-1"); err == nil {
		t.Fatal("Open accepted a corrupt file")
	}
}
