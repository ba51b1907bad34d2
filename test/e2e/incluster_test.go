package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthdev/berth/test/framework"
)

// TestBerthRunsInClusterAsTheShippedServiceAccount checks how TestMain started the berth that every other test
// uses: through rest.InClusterConfig, with the ServiceAccount files where a Pod has them and no kubeconfig.
func TestBerthRunsInClusterAsTheShippedServiceAccount(t *testing.T) {
	require.NoError(t, framework.RecordInputs())
	server, err := url.Parse(cluster.Config.Host)
	require.NoError(t, err)

	// rest.InClusterConfig builds the host from KUBERNETES_SERVICE_HOST and _PORT.
	log := berth.Log()
	assert.Regexp(t, `"Starting berth".* host="`+regexp.QuoteMeta("https://"+server.Host)+`".* leaderElect=true`, log)
	assert.Contains(t, log, "Became the leader")

	cmdline, err := berth.ProcFile("cmdline")
	require.NoError(t, err)
	args := strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00")
	require.NotEmpty(t, args)
	assert.Equal(t, "berth", filepath.Base(args[0]), "the process is berth itself (unshare and sh exec it)")
	for _, arg := range args {
		assert.NotContains(t, arg, "kubeconfig", "berth runs without --kubeconfig: %q", args)
	}

	environ, err := berth.ProcFile("environ")
	require.NoError(t, err)
	env := strings.Split(environ, "\x00")
	for _, kv := range env {
		assert.False(t, strings.HasPrefix(kv, "KUBECONFIG="), "KUBECONFIG is not set for berth: %s", kv)
	}
	assert.Contains(t, env, "KUBERNETES_SERVICE_HOST="+server.Hostname())
	assert.Contains(t, env, "KUBERNETES_SERVICE_PORT="+server.Port())

	// berth's own view of its files system: a mount namespace of its own, with the ServiceAccount's files.
	ours, err := os.Readlink("/proc/self/ns/mnt")
	require.NoError(t, err)
	its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", berth.Pid()))
	require.NoError(t, err)
	assert.NotEqual(t, ours, its, "berth runs in a mount namespace of its own")
	// Seen through /proc/PID/root, an absolute symbolic link (/var/run -> /run) would lead back to our own
	// files: resolve it first.
	varRun, err := filepath.EvalSymlinks("/var/run")
	require.NoError(t, err)
	dir := filepath.Join(varRun, strings.TrimPrefix(framework.ServiceAccountDir, "/var/run"))
	namespace, err := berth.ProcFile("root" + dir + "/namespace")
	require.NoError(t, err)
	assert.Equal(t, berthNamespace, namespace)
	for _, file := range []string{"token", "ca.crt"} {
		content, err := berth.ProcFile("root" + dir + "/" + file)
		require.NoError(t, err)
		assert.NotEmpty(t, content, file)
	}
	_, err = os.Stat(filepath.Join(framework.ServiceAccountDir, "token"))
	assert.True(t, os.IsNotExist(err), "nothing is written to this machine's %s: %v", framework.ServiceAccountDir, err)
}
