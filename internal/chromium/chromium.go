// Package chromium finds and configures the headless Chromium that the
// dashboard's browser tests and the benchmark program drive with chromedp.
package chromium

import (
	"os"
	"os/exec"
	"slices"

	"github.com/chromedp/chromedp"
)

// EnvPath names the variable that points at a Chromium binary; without it
// Path looks for the usual names on PATH (Debian's package is "chromium").
const EnvPath = "CLUSTERKIT_CHROMIUM"

// EnvRequire, when set, turns a missing Chromium into a failure instead of a
// skip: .ci/run installs Chromium and sets it, so that the browser tests can
// never be skipped silently in CI.
const EnvRequire = "CLUSTERKIT_REQUIRE_BROWSER"

// Path is the Chromium binary to run, "" when there is none.
func Path() string {
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Options are the allocator options of a headless browser at path with a
// window of width × height, its profile in userDataDir and its temporary
// files in tmpDir (Chromium leaves a singleton directory in TMPDIR).
func Options(path, userDataDir, tmpDir string, width, height int) []chromedp.ExecAllocatorOption {
	return append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(userDataDir),
		chromedp.Env("TMPDIR="+tmpDir),
		chromedp.WindowSize(width, height),
	)
}
