package tmpcheck

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type runFunc func() int

func (f runFunc) Run() int { return f() }

func TestMain(m *testing.M) { Main(m) }

// TestRunFailsOnLeftovers: a test that leaves a directory tree in TMPDIR
// turns a passing run into a failing one, and the report names it.
func TestRunFailsOnLeftovers(t *testing.T) {
	outer := os.TempDir()
	var inner string
	var out bytes.Buffer
	code := Run(runFunc(func() int {
		inner = os.TempDir()
		if ArtifactDir() != outer {
			t.Errorf("ArtifactDir() = %q during the run, want the outer %q", ArtifactDir(), outer)
		}
		dir, err := os.MkdirTemp("", "TestLeaky")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "001", "raft", "snapshots"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "001", "raft", "snapshots", "meta.json"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		clean, err := os.MkdirTemp("", "TestClean")
		if err != nil {
			t.Fatal(err)
		}
		_ = os.RemoveAll(clean)
		return 0
	}), &out)
	if code == 0 {
		t.Fatalf("Run returned 0 with a leftover directory; report:\n%s", out.String())
	}
	if inner == outer || filepath.Dir(inner) != filepath.Clean(outer) {
		t.Errorf("the tests ran with TMPDIR %q, want a fresh directory under %q", inner, outer)
	}
	if ArtifactDir() != outer {
		t.Errorf("ArtifactDir() = %q after Run, want %q", ArtifactDir(), outer)
	}
	if os.TempDir() != outer {
		t.Errorf("TMPDIR not restored: %q, want %q", os.TempDir(), outer)
	}
	report := out.String()
	if !strings.Contains(report, "TestLeaky") || !strings.Contains(report, "1 files") || !strings.Contains(report, "meta.json") ||
		strings.Contains(report, "TestClean") {
		t.Errorf("report does not name exactly the leftover:\n%s", report)
	}
	if _, err := os.Stat(inner); !os.IsNotExist(err) {
		t.Errorf("the checked directory %s still exists (err %v)", inner, err)
	}
}

// TestRunKeepsCodeWhenClean: nothing left, nothing reported, the tests' own
// exit code is kept, and cleanup runs before the check.
func TestRunKeepsCodeWhenClean(t *testing.T) {
	for _, want := range []int{0, 1} {
		var out bytes.Buffer
		var built string
		code := Run(runFunc(func() int {
			f, err := os.CreateTemp("", "binary")
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			built = f.Name()
			return want
		}), &out, func() { _ = os.Remove(built) })
		if code != want || out.Len() != 0 {
			t.Errorf("Run = %d with report %q, want %d and no report", code, out.String(), want)
		}
	}
}
