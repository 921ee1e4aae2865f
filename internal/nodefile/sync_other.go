//go:build !linux

package nodefile

import "os"

func datasync(f *os.File) error { return f.Sync() }
