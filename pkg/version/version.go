// Package version tells which berth this is: the version and commit it was built from.
//
// `make build` and `make image` set both with the linker, from git:
//
//	-ldflags "-X github.com/berthdev/berth/pkg/version.version=$(git describe --tags --always --dirty)
//	          -X github.com/berthdev/berth/pkg/version.commit=$(git rev-parse HEAD)"
//
// A plain `go build` sets neither: the version is then "devel", and the commit is the one the go command
// stamped into the build info (vcs.revision, when it builds with VCS stamping).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (-X); empty in a plain `go build`.
var (
	version string
	commit  string
)

// Devel is the version of a binary built without the linker flags.
const Devel = "devel"

// Info is what `berth --version` prints and what berth logs when it starts.
type Info struct {
	// Version is `git describe --tags --always --dirty` at build time, or Devel.
	Version string
	// Commit is the full commit hash; "unknown" when nothing says. Built without the linker flags from a work
	// tree with changes, it ends in "-dirty" (with them, Version does).
	Commit string
	// GoVersion is the Go toolchain that built the binary, e.g. go1.26.8.
	GoVersion string
	// Platform is GOOS/GOARCH, e.g. linux/amd64.
	Platform string
}

// Get returns this binary's Info.
func Get() Info {
	buildInfo, _ := debug.ReadBuildInfo()
	return get(version, commit, buildInfo)
}

// get fills in what the linker flags left empty from the build info (nil when the binary has none).
func get(linkedVersion, linkedCommit string, buildInfo *debug.BuildInfo) Info {
	info := Info{
		Version:   linkedVersion,
		Commit:    linkedCommit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info.Version == "" {
		info.Version = Devel
	}
	if info.Commit == "" {
		info.Commit = vcsCommit(buildInfo)
	}
	return info
}

// vcsCommit is the commit that the go command stamped into the build info, or "unknown".
func vcsCommit(buildInfo *debug.BuildInfo) string {
	if buildInfo == nil {
		return "unknown"
	}
	var revision string
	var modified bool
	for _, s := range buildInfo.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case revision == "":
		return "unknown"
	case modified:
		return revision + "-dirty"
	default:
		return revision
	}
}

// String is the line of `berth --version`, e.g.
// "berth v0.1.0-12-gabc1234 (commit abc1234..., go1.26.8 linux/amd64)".
func (i Info) String() string {
	return fmt.Sprintf("berth %s (commit %s, %s %s)", i.Version, i.Commit, i.GoVersion, i.Platform)
}
