package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is a full local cluster started with hack/cluster-up.sh: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok with fake nodes, on free ports, with all its state in a temporary folder.
type Cluster struct {
	// Dir is the cluster's folder (BERTH_CLUSTER_DIR): certificates, etcd data, logs/, PID files. Stop removes it.
	Dir string
	// Kubeconfig is the path of an admin (system:masters) kubeconfig.
	Kubeconfig string
	// Config is the admin client configuration, unthrottled.
	Config *rest.Config
	// KubeCacheDir is kubectl's discovery and HTTP cache (KUBECACHEDIR), inside Dir.
	KubeCacheDir string
	// AuditLog, when not empty, is the API server's audit log of writes (see WithAuditLog and Writes).
	AuditLog string
	// FeatureGates, when not empty, are the API server's --feature-gates (see WithFeatureGates).
	FeatureGates string

	env   []string // the BERTH_* variables that select this cluster, for hack/cluster-*.sh
	guard *exec.Cmd
	// guardPipe is the write end of the guard's stdin: it closes when this process ends, however it ends.
	guardPipe *os.File
}

// guardScript stops the cluster when the test process dies without stopping it (a panic in a test, a timeout,
// os.Exit, Ctrl-C, SIGKILL): cluster-up.sh starts the components with setsid, so they would outlive it. The
// guard runs in a session of its own and waits for EOF on its stdin, a pipe only the test process writes to.
// "cluster-up PID" names the cluster-up.sh under way; "done" means the cluster was stopped normally.
const guardScript = `
up=""
while IFS= read -r line; do
  case "${line}" in
    done) exit 0 ;;
    "cluster-up "*) up="${line#cluster-up }" ;;
  esac
done
echo "berth e2e guard: the test process ended without stopping the cluster in ${BERTH_CLUSTER_DIR}: stopping it"
if [[ -n "${up}" ]] && kill -0 "${up}" 2>/dev/null; then
  # cluster-up.sh stops what it started when it is terminated; let it finish doing so.
  kill -TERM "${up}" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "${up}" 2>/dev/null || break; sleep 0.1; done
fi
"${BERTH_ROOT}/hack/cluster-down.sh"
if [[ -z "${BERTH_KEEP_TEST_DIRS:-}" ]]; then rm -rf "${BERTH_CLUSTER_DIR}"; fi
`

// clusterBinaries are what hack/cluster-up.sh needs in BinDir; when one is missing, it builds them.
var clusterBinaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl", "pki"}

// ClusterOption changes how StartCluster starts a cluster.
type ClusterOption func(*Cluster)

// WithAuditLog has the API server log every write (create, update, patch, delete) but those of Events and
// Leases, so that a test can tell who wrote what from the API server itself (Writes). The bench leaves it out: it
// costs the API server some of the CPU it measures.
func WithAuditLog() ClusterOption {
	return func(c *Cluster) { c.AuditLog = filepath.Join(c.Dir, "audit.log") }
}

// WithFeatureGates starts the API server with --feature-gates=gates, such as "ShardedListAndWatch=true".
func WithFeatureGates(gates string) ClusterOption {
	return func(c *Cluster) { c.FeatureGates = gates }
}

// StartCluster runs hack/cluster-up.sh in a new temporary folder on free ports of 127.0.0.1 and returns once a Pod
// runs on a kwok node. The binaries are built first when one is missing from BinDir. Call Stop when done; if the
// test process ends without calling it, a guard process stops the cluster anyway.
func StartCluster(ctx context.Context, opts ...ClusterOption) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "berth-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir:          dir,
		Kubeconfig:   filepath.Join(dir, "kubeconfig"),
		KubeCacheDir: filepath.Join(dir, "kube-cache"),
	}
	for _, opt := range opts {
		opt(c)
	}
	if err := c.start(ctx); err != nil {
		if stopErr := c.Stop(); stopErr != nil {
			err = fmt.Errorf("%w (and stopping what was started: %v)", err, stopErr)
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	ports, err := FreePorts(6)
	if err != nil {
		return err
	}
	c.env = []string{
		"BERTH_ROOT=" + RepoRoot(),
		"BERTH_CLUSTER_DIR=" + c.Dir,
		"BERTH_BIN_DIR=" + BinDir(),
		"KUBECACHEDIR=" + c.KubeCacheDir,
		"BERTH_APISERVER_PORT=" + strconv.Itoa(ports[0]),
		"BERTH_ETCD_PORT=" + strconv.Itoa(ports[1]),
		"BERTH_ETCD_PEER_PORT=" + strconv.Itoa(ports[2]),
		"BERTH_CONTROLLER_MANAGER_PORT=" + strconv.Itoa(ports[3]),
		"BERTH_SCHEDULER_PORT=" + strconv.Itoa(ports[4]),
		"BERTH_KWOK_PORT=" + strconv.Itoa(ports[5]),
	}
	skipBuild := "1"
	for _, name := range clusterBinaries {
		if _, err := Binary(name); err != nil {
			skipBuild = "0"
		}
	}
	if skipBuild == "0" {
		fmt.Fprintf(os.Stderr, "framework: a binary of the local cluster is missing from %s: hack/cluster-up.sh "+
			"builds them with hack/build-kube.sh (about 10 minutes on 2 cores with a cold Go build cache; its "+
			"output goes to %s)\n", BinDir(), filepath.Join(c.Dir, "cluster-up.log"))
	}
	c.env = append(c.env, "BERTH_SKIP_BUILD="+skipBuild)
	if c.FeatureGates != "" {
		c.env = append(c.env, "BERTH_FEATURE_GATES="+c.FeatureGates)
	}
	if c.AuditLog != "" {
		c.env = append(c.env, "BERTH_AUDIT_LOG="+c.AuditLog)
	}

	if err := c.startGuard(); err != nil {
		return err
	}

	logPath := filepath.Join(c.Dir, "cluster-up.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()
	up := exec.CommandContext(ctx, filepath.Join(RepoRoot(), "hack", "cluster-up.sh"))
	up.Env = append(os.Environ(), c.env...)
	up.Stdout, up.Stderr = logFile, logFile
	// Cancelled, cluster-up.sh stops what it started (its TERM trap) before it exits.
	up.Cancel = func() error { return up.Process.Signal(syscall.SIGTERM) }
	up.WaitDelay = time.Minute
	if err := up.Start(); err != nil {
		return fmt.Errorf("starting hack/cluster-up.sh: %w", err)
	}
	_, _ = fmt.Fprintf(c.guardPipe, "cluster-up %d\n", up.Process.Pid)
	if err := up.Wait(); err != nil {
		return fmt.Errorf("hack/cluster-up.sh: %w; its output ends with:\n%s", err, tail(readFile(logPath), 40))
	}

	config, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", c.Kubeconfig, err)
	}
	config.QPS, config.Burst = -1, 0 // no client-side throttling in tests
	c.Config = config
	return nil
}

func (c *Cluster) startGuard() error {
	r, w, err := os.Pipe() // both ends close-on-exec: no other child inherits the write end
	if err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	logFile, err := os.Create(filepath.Join(c.Dir, "guard.log"))
	if err != nil {
		_ = w.Close()
		return err
	}
	defer func() { _ = logFile.Close() }()
	guard := exec.Command("bash", "-c", guardScript)
	guard.Env = append(os.Environ(), c.env...)
	guard.Stdin, guard.Stdout, guard.Stderr = r, logFile, logFile
	// Its own session: a Ctrl-C that kills the test process must not kill the guard too.
	guard.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := guard.Start(); err != nil {
		_ = w.Close()
		return fmt.Errorf("starting the cluster guard: %w", err)
	}
	c.guard, c.guardPipe = guard, w
	return nil
}

// Stop stops the cluster with hack/cluster-down.sh and removes its folder, unless BERTH_KEEP_TEST_DIRS is set
// (the folder's path is then printed). Calling it again does nothing.
func (c *Cluster) Stop() error {
	if c.guardPipe == nil {
		return c.removeDir()
	}
	var errs []error
	down := exec.Command(filepath.Join(RepoRoot(), "hack", "cluster-down.sh"))
	down.Env = append(os.Environ(), c.env...)
	if out, err := down.CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("hack/cluster-down.sh: %w: %s", err, out))
	}
	if len(errs) == 0 {
		_, _ = c.guardPipe.WriteString("done\n")
	} // else the guard, seeing EOF, tries cluster-down.sh once more
	_ = c.guardPipe.Close()
	c.guardPipe = nil
	if err := waitTimeout(c.guard, time.Minute); err != nil {
		errs = append(errs, fmt.Errorf("the cluster guard: %w", err))
	}
	errs = append(errs, c.removeDir())
	return errors.Join(errs...)
}

func (c *Cluster) removeDir() error {
	if os.Getenv("BERTH_KEEP_TEST_DIRS") != "" {
		fmt.Fprintf(os.Stderr, "cluster state and logs kept in %s\n", c.Dir)
		return nil
	}
	return os.RemoveAll(c.Dir)
}

// LogDir holds the components' logs: etcd.log, kube-apiserver.log, kube-controller-manager.log,
// kube-scheduler.log, kwok.log.
func (c *Cluster) LogDir() string { return filepath.Join(c.Dir, "logs") }

// KubectlCommand is kubectl with args against this cluster, with its cache in the cluster's folder.
func (c *Cluster) KubectlCommand(ctx context.Context, args ...string) (*exec.Cmd, error) {
	kubectl, err := Binary("kubectl")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "KUBECACHEDIR="+c.KubeCacheDir)
	cmd.WaitDelay = 10 * time.Second
	return cmd, nil
}

// Kubectl runs kubectl with args against this cluster and returns its standard output; the error includes the
// command and everything it printed.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd, err := c.KubectlCommand(ctx, args...)
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(),
			stderr.String())
	}
	return stdout.String(), nil
}

// ApplyCRDs installs the CRD of artifacts/crds with `kubectl apply`, as a user does (-k, since the folder is a
// kustomization), and waits until kubectl can list Apps: a CRD that reports Established can still be unknown to
// discovery for a moment.
func (c *Cluster) ApplyCRDs(ctx context.Context) error {
	crds := filepath.Join(RepoRoot(), "artifacts", "crds")
	source := "--filename=" + crds
	if _, err := os.Stat(filepath.Join(crds, "kustomization.yaml")); err == nil {
		source = "--kustomize=" + crds
	}
	if _, err := c.Kubectl(ctx, "apply", source); err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "crd/apps.berth.dev"); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := c.Kubectl(ctx, "get", "apps.berth.dev", "--all-namespaces")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("apps.berth.dev still cannot be listed a minute after the CRD is Established: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// StartBerth runs the berth binary against this cluster with --kubeconfig and args, logging to dir/name.log.
func (c *Cluster) StartBerth(binary, dir, name string, args ...string) (*Process, error) {
	return StartCommand(dir, name, exec.Command(binary, append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...))
}

// BuildBerth builds the berth binary (./cmd/controller) into dir and returns its path; with $BERTH_BINARY set,
// it returns that binary instead. The scale benchmark uses it; the end-to-end suites run the image's binary
// (ImageBerth).
func BuildBerth(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv("BERTH_BINARY"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("BERTH_BINARY: %w", err)
		}
		return bin, nil
	}
	bin := filepath.Join(dir, "berth")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/controller")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/controller: %w\n%s", err, out)
	}
	return bin, nil
}

// RecordInputs stats every file of the repository that the berth binary or the local cluster is built from or
// reads (go.mod, cmd/, pkg/, artifacts/, charts/, hack/, the binaries), so that `go test` reruns a suite that
// runs them when one changes, instead of reporting a cached result: it only knows of the packages the test
// binary imports, and of the files the tests open or stat. Call it from a test: go test does not record what TestMain
// does before m.Run.
func RecordInputs() error {
	root := RepoRoot()
	for _, p := range []string{"go.mod", "go.sum", "cmd", "pkg", "artifacts", "charts", "hack"} {
		err := filepath.WalkDir(filepath.Join(root, p), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			_, err = os.Stat(path)
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, name := range clusterBinaries {
		_, _ = os.Stat(filepath.Join(BinDir(), name))
	}
	_, _ = os.Stat(filepath.Join(ImageDir(), "from-image", "berth"))
	return nil
}

// waitTimeout waits for cmd to end, killing it after timeout.
func waitTimeout(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("still running after %s: killed", timeout)
	}
}

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return string(data)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
