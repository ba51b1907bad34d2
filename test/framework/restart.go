package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Restart restarts one component of the cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// or kwok) with hack/cluster-restart.sh: SIGTERM, or SIGKILL when kill is set, then the same command line again;
// it returns once the component is healthy (etcd answers /health, kube-apiserver /readyz). The cluster keeps its
// data. The script's output is returned, and included in the error.
func (c *Cluster) Restart(ctx context.Context, component string, kill bool) (string, error) {
	args := []string{component}
	if kill {
		args = append([]string{"--kill"}, args...)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(RepoRoot(), "hack", "cluster-restart.sh"), args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("hack/cluster-restart.sh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
