package nodefile

import (
	"os"
	"syscall"
)

// datasync flushes f's data (not its metadata, which an in-place write of
// an existing range does not change).
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
