package e2e

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthdev/berth/test/framework"
)

// TestBerthIsTheImagesBinary checks that the berth these tests run is the /berth of the image that `make image`
// built (.cache/image/oci), byte for byte, and that it says the version and commit of the image's labels: the
// end-to-end suites test what would ship, not what `go build` left.
func TestBerthIsTheImagesBinary(t *testing.T) {
	if os.Getenv("BERTH_BINARY") != "" {
		t.Skip("BERTH_BINARY is set: the berth under test is not the image's")
	}
	require.NoError(t, framework.RecordInputs())
	img, err := framework.ReadImage("linux/" + runtime.GOARCH)
	require.NoError(t, err)
	t.Logf("image %s: %v", img.Manifest, img.Labels)
	version, revision := img.Labels["org.opencontainers.image.version"], img.Labels[framework.RevisionLabel]
	require.NotEmpty(t, version)
	require.Regexp(t, `^[0-9a-f]{40}$`, revision)
	assert.Equal(t, "65532:65532", img.User)
	assert.Equal(t, []string{"/berth"}, img.Entrypoint)

	// The running process's executable (through /proc, whatever path started it) is the image's /berth.
	exe := fmt.Sprintf("/proc/%d/exe", berth.Pid())
	sum, err := framework.FileSHA256(exe)
	require.NoError(t, err)
	assert.Equal(t, img.BinarySHA256, sum, "the running berth is not the /berth of image %s", img.Manifest)

	// It says what the image's labels say, when asked and when it starts.
	out, err := exec.CommandContext(t.Context(), exe, "--version").Output()
	require.NoError(t, err)
	want := fmt.Sprintf("berth %s (commit %s, %s linux/%s)\n", version, revision, runtime.Version(), runtime.GOARCH)
	assert.Equal(t, want, string(out))
	assert.Regexp(t, `"Starting berth" version="`+regexp.QuoteMeta(version)+`" commit="`+revision+`"`, berth.Log())

	// Built as the image's binaries are: static, without local paths (with -trimpath the go command leaves the
	// linker flags out of the build info: the commit is in --version's output above).
	info, err := buildinfo.ReadFile(exe)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "0", settings["CGO_ENABLED"])
	assert.Equal(t, "true", settings["-trimpath"])
	assert.Equal(t, "github.com/berthdev/berth", info.Main.Path)
}
