package nodefile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProgressKeepsTheNewestValidRecord(t *testing.T) {
	dir := t.TempDir()
	pf, rec, err := OpenProgress(dir)
	if err != nil || rec != (Progress{}) {
		t.Fatalf("new file: %+v %v", rec, err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := pf.Write(Progress{Index: i, Sub: uint32(i), AliveUnixNano: int64(i * 10)}); err != nil {
			t.Fatal(err)
		}
	}
	pf.Close()
	pf, rec, err = OpenProgress(dir)
	if err != nil || rec != (Progress{Index: 5, Sub: 5, AliveUnixNano: 50}) {
		t.Fatalf("reopened: %+v %v", rec, err)
	}
	// The next write goes to the older slot, then a torn write there leaves
	// the newest record intact.
	if err := pf.Write(Progress{Index: 6}); err != nil {
		t.Fatal(err)
	}
	pf.Close()
	path := filepath.Join(dir, ProgressName)
	data, _ := os.ReadFile(path)
	// Writes alternate: 1, 3, 5 went to slot 0 and 2, 4, 6 to slot 1.
	data[slotSize+14] ^= 0xff // corrupt slot 1 (record 6)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	pf, rec, err = OpenProgress(dir)
	if err != nil || rec.Index != 5 {
		t.Fatalf("after a torn write of the newest slot: %+v %v", rec, err)
	}
	// The newest write wins even with a lower seq (a clean stop records
	// what was really delivered).
	if err := pf.Write(Progress{Index: 3}); err != nil {
		t.Fatal(err)
	}
	pf.Close()
	if _, rec, _ = OpenProgress(dir); rec.Index != 3 {
		t.Fatalf("a lower seq written last: %+v", rec)
	}
}
