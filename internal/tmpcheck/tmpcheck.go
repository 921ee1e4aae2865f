// Package tmpcheck makes a test binary fail when its tests leave anything in
// the temporary directory: a node whose files outlive its test (a cleanup
// that ran in the wrong order, a Stop that recreated a removed data
// directory) fills shared machines unnoticed otherwise.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { tmpcheck.Main(m) }
package tmpcheck

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
)

// Runner is what Main runs: *testing.M.
type Runner interface{ Run() int }

// maxListed bounds the report: the first entries are enough to find the
// culprit, and a leak in every test would otherwise print thousands.
const maxListed = 50

// Main points TMPDIR (and so os.TempDir, t.TempDir and os.MkdirTemp) at a
// fresh directory, runs the tests, runs cleanup (for what TestMain itself
// created there, such as a built binary), and exits. The exit code is
// non-zero when the tests failed or when anything is left in the directory;
// the leftovers are listed on stderr, then removed.
func Main(m Runner, cleanup ...func()) {
	os.Exit(Run(m, os.Stderr, cleanup...))
}

// Run is Main without the exit: it returns the exit code and reports
// leftovers to w.
func Run(m Runner, w io.Writer, cleanup ...func()) int {
	outer := os.TempDir()
	dir, err := os.MkdirTemp("", "clusterkit-tmpcheck-")
	if err != nil {
		fmt.Fprintf(w, "tmpcheck: %v\n", err)
		return 1
	}
	artifacts.Store(&outer)
	defer artifacts.Store(nil)
	prev, had := os.LookupEnv("TMPDIR")
	// Child processes (go build, the example binaries) inherit it too.
	_ = os.Setenv("TMPDIR", dir)
	code := m.Run()
	for _, f := range cleanup {
		f()
	}
	if had {
		_ = os.Setenv("TMPDIR", prev)
	} else {
		_ = os.Unsetenv("TMPDIR")
	}
	left, err := Leftovers(dir)
	if err != nil {
		fmt.Fprintf(w, "tmpcheck: %v\n", err)
		code = max(code, 1)
	}
	if len(left) > 0 {
		fmt.Fprintf(w, "tmpcheck: the tests left %d entries in the temporary directory %s:\n", len(left), dir)
		for i, l := range left {
			if i == maxListed {
				fmt.Fprintf(w, "  ... and %d more\n", len(left)-maxListed)
				break
			}
			fmt.Fprintf(w, "  %s\n", l)
		}
		fmt.Fprintln(w, "tmpcheck: FAIL (every test must remove what it creates; stop nodes before their directories are removed)")
		code = max(code, 1)
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(w, "tmpcheck: remove %s: %v\n", dir, err)
		code = max(code, 1)
	}
	return code
}

// artifacts is the temporary directory as it was before Run changed it.
var artifacts atomic.Pointer[string]

// ArtifactDir returns a directory outside the checked one, for files a
// failing test keeps on purpose for a human to look at (a visualization of a
// history): they survive the run and are not reported as leftovers.
func ArtifactDir() string {
	if d := artifacts.Load(); d != nil {
		return *d
	}
	return os.TempDir()
}

// Leftovers describes what is under dir: one line per top-level entry (a
// test's t.TempDir parent is named after the test), with the number of
// files under it and the first of them, sorted.
func Leftovers(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, e.Name())
			continue
		}
		var files []string
		err := filepath.WalkDir(filepath.Join(dir, e.Name()), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(dir, path)
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			return out, err
		}
		switch len(files) {
		case 0:
			out = append(out, e.Name()+"/ (empty directories only)")
		default:
			sort.Strings(files)
			out = append(out, fmt.Sprintf("%s/ (%d files, first %s)", e.Name(), len(files), files[0]))
		}
	}
	return out, nil
}
