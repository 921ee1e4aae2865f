package nodefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestBeginIncrementsAndChecksOwner(t *testing.T) {
	dir := t.TempDir()
	f1, err := Begin(dir, "node-1")
	if err != nil || f1.Incarnation != 1 {
		t.Fatalf("first Begin = %+v, %v", f1, err)
	}
	f1.LastAliveUnixNano = 42
	if err := Write(dir, f1); err != nil {
		t.Fatal(err)
	}
	f2, err := Begin(dir, "node-1")
	if err != nil || f2.Incarnation != 2 || f2.LastAliveUnixNano != 42 {
		t.Fatalf("second Begin = %+v, %v", f2, err)
	}
	if _, err := Begin(dir, "node-2"); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("Begin with another ID: %v, want ErrWrongNode", err)
	}
	if err := os.WriteFile(filepath.Join(dir, Name), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Begin(dir, "node-1"); err == nil {
		t.Fatal("Begin accepted a corrupt file")
	}
}
