// Package framework starts the real Kubernetes parts that berth's integration and end-to-end tests run against:
// etcd and kube-apiserver processes built by hack/build-kube.sh, on free ports of 127.0.0.1, with all their state
// in a temporary folder.
package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RepoRoot is the root of the berth repository: the nearest folder at or above the working directory (go test
// runs a test in its package's folder) whose go.mod is berth's module. Not found from this source file's name
// (runtime.Caller): make builds with -trimpath, which makes that name a module path.
func RepoRoot() string {
	start, err := os.Getwd()
	if err != nil {
		panic(fmt.Sprintf("finding the repository's root: %v", err))
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && slices.Contains(strings.Split(string(data), "\n"), "module "+berthModule) {
			return dir
		}
		if dir == filepath.Dir(dir) {
			panic(fmt.Sprintf("no go.mod of module %s at or above %s", berthModule, start))
		}
	}
}

const berthModule = "github.com/berthdev/berth"

// BinDir is where hack/build-kube.sh puts the control plane's binaries: $BERTH_BIN_DIR, or .cache/bin.
func BinDir() string {
	if dir := os.Getenv("BERTH_BIN_DIR"); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), ".cache", "bin")
}

// Binary is the path of one of the control plane's binaries, or an error that says how to build it.
func Binary(name string) (string, error) {
	path := filepath.Join(BinDir(), name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s is missing: build it with `hack/build-kube.sh %s` (make test does): %w", path, name, err)
	}
	return path, nil
}

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Dir holds certificates, data and logs; it is removed by Stop.
	Dir string
	// Kubeconfig is the path of an admin (system:masters) kubeconfig.
	Kubeconfig string
	// Config is the admin client configuration, unthrottled.
	Config *rest.Config

	processes []*Process
}

// StartControlPlane starts etcd and kube-apiserver and waits until the API server is ready.
func StartControlPlane(ctx context.Context) (*ControlPlane, error) {
	dir, err := os.MkdirTemp("", "berth-controlplane-")
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{Dir: dir}
	if err := cp.start(ctx); err != nil {
		cp.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) start(ctx context.Context) error {
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	pkiDir := filepath.Join(cp.Dir, "pki")

	pki, err := Binary("pki")
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, pki, "-dir", pkiDir, "-server", server,
		"-service-ip", "10.96.0.1").CombinedOutput(); err != nil {
		return fmt.Errorf("making certificates: %w: %s", err, out)
	}
	cp.Kubeconfig = filepath.Join(pkiDir, "admin.kubeconfig")

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	etcd, err := StartProcess(cp.Dir, "etcd",
		"--name=berth-test",
		"--data-dir="+filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=berth-test="+peerURL,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	cp.processes = append(cp.processes, etcd)

	apiserver, err := StartProcess(cp.Dir, "kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--advertise-address=127.0.0.1",
		// A loopback advertise address is refused by the default endpoint reconciler.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+filepath.Join(pkiDir, "apiserver.crt"),
		"--tls-private-key-file="+filepath.Join(pkiDir, "apiserver.key"),
		"--client-ca-file="+filepath.Join(pkiDir, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(pkiDir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(pkiDir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--profiling=false",
		// berth's members select their Apps by the API server's shard selector when it applies them (KEP-5866).
		"--feature-gates=ShardedListAndWatch=true",
	)
	if err != nil {
		return err
	}
	cp.processes = append(cp.processes, apiserver)

	config, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", cp.Kubeconfig, err)
	}
	config.QPS, config.Burst = -1, 0 // no client-side throttling in tests
	cp.Config = config

	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true,
		func(ctx context.Context) (bool, error) {
			for _, p := range cp.processes {
				if p.Exited() {
					return false, fmt.Errorf("%s exited; its log ends with:\n%s", p.Name, p.LogTail(30))
				}
			}
			body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil && string(body) == "ok", nil
		})
	if err != nil {
		return fmt.Errorf("waiting for kube-apiserver to be ready: %w", err)
	}
	return nil
}

// Stop stops the processes, newest first, and removes the folder; the logs are kept (and their path printed)
// when BERTH_KEEP_TEST_DIRS is set.
func (cp *ControlPlane) Stop() {
	for i := len(cp.processes) - 1; i >= 0; i-- {
		cp.processes[i].Stop()
	}
	if os.Getenv("BERTH_KEEP_TEST_DIRS") != "" {
		fmt.Fprintf(os.Stderr, "control plane state kept in %s\n", cp.Dir)
		return
	}
	_ = os.RemoveAll(cp.Dir)
}

// FreePorts asks the kernel for n free TCP ports on 127.0.0.1, none of them one that an earlier call of this
// process returned: a port is free here only until the process given it binds it, and two replicas started one
// after the other were given the same port (the second then failed to bind it).
func FreePorts(n int) ([]int, error) {
	givenPorts.mu.Lock()
	defer givenPorts.mu.Unlock()
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		// Held open until the end, so that the kernel gives another port to the next Listen.
		listeners = append(listeners, l)
		port := l.Addr().(*net.TCPAddr).Port
		if givenPorts.ports[port] {
			continue
		}
		givenPorts.ports[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}

// givenPorts are the ports that FreePorts returned in this process.
var givenPorts = struct {
	mu    sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Process is a child process whose output goes to a log file.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// StartProcess runs the binary name from BinDir with args, logging to dir/name.log. The process is killed if
// the test process dies, so that no control plane outlives its tests.
func StartProcess(dir, name string, args ...string) (*Process, error) {
	path, err := Binary(name)
	if err != nil {
		return nil, err
	}
	return StartCommand(dir, name, exec.Command(path, args...))
}

// StartCommand starts cmd as a Process called name, logging to dir/name.log.
func StartCommand(dir, name string, cmd *exec.Cmd) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited tells whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is the process's exit code once it has ended (-1 when killed by a signal).
func (p *Process) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return errors.New(p.Name + " has already exited")
	}
	return p.cmd.Process.Signal(sig)
}

// Stop sends SIGTERM, and SIGKILL if the process has not ended 15 seconds later.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Log is everything the process has written so far.
func (p *Process) Log() string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.LogPath, err)
	}
	return string(data)
}

// LogTail is the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
