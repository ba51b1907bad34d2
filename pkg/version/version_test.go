package version

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGet(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	stamped := func(settings ...debug.BuildSetting) *debug.BuildInfo { return &debug.BuildInfo{Settings: settings} }
	tests := []struct {
		name            string
		version, commit string
		buildInfo       *debug.BuildInfo
		want            Info
	}{
		{
			name:    "linker flags win over the build info",
			version: "v0.1.0-12-gabc1234", commit: "abc1234def",
			buildInfo: stamped(debug.BuildSetting{Key: "vcs.revision", Value: "0000000"}),
			want:      Info{Version: "v0.1.0-12-gabc1234", Commit: "abc1234def"},
		},
		{
			name:      "plain go build with VCS stamping",
			buildInfo: stamped(debug.BuildSetting{Key: "vcs.revision", Value: "abc1234def"}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}),
			want:      Info{Version: Devel, Commit: "abc1234def"},
		},
		{
			name:      "plain go build of a work tree with changes",
			buildInfo: stamped(debug.BuildSetting{Key: "vcs.revision", Value: "abc1234def"}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}),
			want:      Info{Version: Devel, Commit: "abc1234def-dirty"},
		},
		{
			name:      "plain go build without VCS stamping (-buildvcs=false)",
			buildInfo: stamped(debug.BuildSetting{Key: "-trimpath", Value: "true"}),
			want:      Info{Version: Devel, Commit: "unknown"},
		},
		{
			name: "no build info at all",
			want: Info{Version: Devel, Commit: "unknown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.GoVersion, tt.want.Platform = runtime.Version(), platform
			assert.Equal(t, tt.want, get(tt.version, tt.commit, tt.buildInfo))
		})
	}
}

func TestString(t *testing.T) {
	info := Info{Version: "v0.1.0-12-gabc1234", Commit: "abc1234def", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	assert.Equal(t, "berth v0.1.0-12-gabc1234 (commit abc1234def, go1.26.8 linux/amd64)", info.String())
}

// The test binary is built without the linker flags: Get falls back to the build info.
func TestGetWithoutLinkerFlags(t *testing.T) {
	info := Get()
	assert.Equal(t, Devel, info.Version)
	assert.NotEmpty(t, info.Commit)
	assert.Equal(t, runtime.Version(), info.GoVersion)
}
