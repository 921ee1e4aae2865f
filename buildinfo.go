package clusterkit

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// modulePath is this library's module, looked up in the binary's build
// information to report the version users run.
const modulePath = "github.com/clusterkit/clusterkit"

// BuildInfo says which ClusterKit a binary runs (clusterkit_build_info).
type BuildInfo struct {
	// Version is the module version ("v1.2.3", a pseudo-version, or
	// "(devel)" when built inside this repository).
	Version string
	// Revision is the VCS commit the binary was built from, when known
	// (binaries built in this repository's checkout), else "".
	Revision string
	// GoVersion is the Go release that built the binary.
	GoVersion string
}

var buildInfo = sync.OnceValue(func() BuildInfo {
	bi := BuildInfo{Version: "unknown", GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	if info.Main.Path == modulePath {
		bi.Version = info.Main.Version
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				bi.Revision = s.Value
			}
		}
		return bi
	}
	for _, d := range info.Deps {
		if d.Path == modulePath {
			if d.Replace != nil {
				d = d.Replace
			}
			bi.Version = d.Version
		}
	}
	return bi
})

// Build reports the ClusterKit version this binary runs.
func Build() BuildInfo { return buildInfo() }
