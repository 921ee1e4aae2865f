package nodefile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// ProgressName is the file holding the delivery progress.
const ProgressName = "progress.dat"

// Progress is the record written before each group of events is delivered:
// the last delivered event seq and when the node was last alive.
type Progress struct {
	Index         uint64
	Sub           uint32
	AliveUnixNano int64
}

// The file has two fixed slots written alternately in place, each with a
// checksum: a torn write damages at most the slot being written, and the
// other still holds the previous record. Overwriting in place changes no
// metadata, so fdatasync costs one small write (a rename and a directory
// fsync per event would stall the Raft log's own fsyncs).
// Each slot also carries a generation: the newest write wins even when it
// lowers the seq (a clean stop records what was really delivered).
const (
	slotSize      = 40
	progressMagic = 0x434b5052 // "CKPR"
)

// ProgressFile writes Progress records durably.
type ProgressFile struct {
	f    *os.File
	next int    // slot to write next
	gen  uint64 // generation of the last record written or read
}

// OpenProgress opens (creating) dir's progress file and returns the newest
// valid record in it (zero if none).
func OpenProgress(dir string) (*ProgressFile, Progress, error) {
	path := filepath.Join(dir, ProgressName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, Progress{}, err
	}
	buf := make([]byte, 2*slotSize)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, Progress{}, fmt.Errorf("read %s: %w", path, err)
	}
	// A short (new) file leaves zero slots, which do not decode.
	var (
		best    Progress
		bestGen uint64
	)
	newest := -1
	for slot := range 2 {
		if rec, gen, ok := decodeSlot(buf[slot*slotSize : (slot+1)*slotSize]); ok && (newest < 0 || gen > bestGen) {
			best, bestGen, newest = rec, gen, slot
		}
	}
	return &ProgressFile{f: f, next: (newest + 1) % 2, gen: bestGen}, best, nil
}

// Write records p durably (write in place, then fdatasync).
func (pf *ProgressFile) Write(p Progress) error {
	var b [slotSize]byte
	binary.LittleEndian.PutUint32(b[0:], progressMagic)
	binary.LittleEndian.PutUint64(b[4:], pf.gen+1)
	binary.LittleEndian.PutUint64(b[12:], p.Index)
	binary.LittleEndian.PutUint32(b[20:], p.Sub)
	binary.LittleEndian.PutUint64(b[24:], uint64(p.AliveUnixNano))
	binary.LittleEndian.PutUint32(b[32:], crc32.ChecksumIEEE(b[:32]))
	if _, err := pf.f.WriteAt(b[:], int64(pf.next*slotSize)); err != nil {
		return err
	}
	if err := datasync(pf.f); err != nil {
		return err
	}
	pf.gen++
	pf.next = 1 - pf.next
	return nil
}

// Close closes the file.
func (pf *ProgressFile) Close() error { return pf.f.Close() }

func decodeSlot(b []byte) (Progress, uint64, bool) {
	if len(b) < slotSize || binary.LittleEndian.Uint32(b[0:]) != progressMagic ||
		binary.LittleEndian.Uint32(b[32:]) != crc32.ChecksumIEEE(b[:32]) {
		return Progress{}, 0, false
	}
	return Progress{
		Index:         binary.LittleEndian.Uint64(b[12:]),
		Sub:           binary.LittleEndian.Uint32(b[20:]),
		AliveUnixNano: int64(binary.LittleEndian.Uint64(b[24:])),
	}, binary.LittleEndian.Uint64(b[4:]), true
}
