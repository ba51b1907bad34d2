// Package chaos tests that berth can be trusted when things go wrong: it converges whatever happens to it or
// around it, never damages what it does not own, and never turns a fault into a storm of requests. Each scenario
// runs the image's binary (make image) against the full local cluster of hack/cluster-up.sh and brings the
// trouble itself:
//   - TestCrashes and TestLeaderCrashes SIGKILL berth at random moments while Apps are created and changed;
//   - TestControlPlaneRestarts restarts kube-apiserver, then etcd, under a running berth;
//   - TestInjectedFaults puts a fault-injecting proxy between berth and the API server.
//
// The assertions are outcomes only: every App converges (see check), nothing is duplicated, orphaned, co-owned
// or foreign-touched, no status is stale, the request rate stays bounded. The figures (how many Apps, kills and
// faults, how long convergence took, requests per second) are logged with t.Logf and, all together, printed at
// the end of the run (`go test -v`, as `make chaos` runs it).
//
// berth runs with the token of the shipped ServiceAccount berth-system/berth (artifacts/deploy, applied by
// TestMain), so with the shipped RBAC only, each test in a namespace of its own (--namespace). The flags -chaos.*
// size the scenarios: their defaults suit `make test`; `make chaos` runs them bigger and longer. Run it with
// `go test ./test/chaos/` (about 3 minutes on 2 cores); BERTH_KEEP_TEST_DIRS=1 keeps the cluster's folder with
// every berth log.
package chaos

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/test/framework"
)

// The scale of the scenarios. The defaults keep the package at a few minutes on 2 cores, for `make test`.
var (
	appCount    = flag.Int("chaos.apps", 200, "Apps created in each crash scenario")
	kills       = flag.Int("chaos.kills", 5, "SIGKILLs of berth in TestCrashes")
	leaderKills = flag.Int("chaos.leader-kills", 2, "SIGKILLs of the leading replica in TestLeaderCrashes")
	faultApps   = flag.Int("chaos.fault-apps", 100, "Apps created in each run of TestInjectedFaults")
	faultRate   = flag.Float64("chaos.fault-rate", 0.2, "share of berth's requests that fail in TestInjectedFaults")
	writerTime  = flag.Duration("chaos.writer-time", 3*time.Second,
		"how long Apps go on being created and changed after a restarted component is back, in TestControlPlaneRestarts")
	seedFlag = flag.Uint64("chaos.seed", 0, "seed of every random choice; 0 takes one from the clock (it is logged)")
	timeout  = flag.Duration("chaos.timeout", 4*time.Minute,
		"how long the Apps may take to converge once the trouble is over: generous, the machine may be shared and slow")
)

// berth runs as the ServiceAccount of artifacts/deploy, with the Lease of its leader election.
const (
	berthNamespace      = "berth-system"
	berthServiceAccount = "berth"
	leaseName           = "berth-controller"
)

var (
	cluster     *framework.Cluster
	binary      string // berth, taken out of its image (framework.ImageBerth)
	logDir      string // berth's logs, in the cluster's folder
	kubeClient  kubernetes.Interface
	berthClient versioned.Interface
	// token is a token of berth's ServiceAccount; kubeconfig reaches the API server directly with it.
	token      string
	kubeconfig string
	seed       uint64

	// recordInputs makes go test rerun the package when berth's sources or the cluster's files change.
	recordInputs sync.Once

	figuresMu sync.Mutex
	figures   []string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts the cluster, finds berth, installs artifacts/deploy, runs the tests and stops the cluster on every
// return path (and if the process dies instead, the cluster's guard does).
func run(m *testing.M) (code int) {
	start := time.Now()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "chaos: "+format+"\n", args...)
		return 1
	}
	flag.Parse()
	seed = *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	fmt.Fprintf(os.Stderr, "chaos: seed %d (rerun with -chaos.seed=%d)\n", seed, seed)

	// Room for every Pod of the scenarios at once (kwok's nodes take 110 Pods each): the namespaces of the tests
	// that are done are deleted without waiting, so their Pods may linger while the next test runs.
	pods := (2**appCount + 2**faultApps + 200) * 3 / 2
	if err := os.Setenv("BERTH_NODES", strconv.Itoa(3+pods/100)); err != nil {
		return fail("%v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	suite, err := framework.StartSuite(ctx)
	if err != nil {
		return fail("%v", err)
	}
	cluster, binary, logDir = suite.Cluster, suite.Binary, suite.Dir
	defer func() {
		if err := cluster.Stop(); err != nil {
			code = fail("stopping the local cluster: %v", err)
		}
	}()
	kubeClient = kubernetes.NewForConfigOrDie(cluster.Config)
	berthClient = versioned.NewForConfigOrDie(cluster.Config)

	// The shipped ServiceAccount, RBAC and Lease Role. Their Deployment's Pods "run" on kwok's nodes without
	// running berth: the berths of these tests are the processes the tests start.
	deploy := filepath.Join(framework.RepoRoot(), "artifacts", "deploy")
	if _, err := cluster.Kubectl(ctx, "apply", "--kustomize="+deploy); err != nil {
		return fail("applying artifacts/deploy: %v", err)
	}
	if token, err = cluster.ServiceAccountToken(ctx, berthNamespace, berthServiceAccount, 2*time.Hour); err != nil {
		return fail("%v", err)
	}
	kubeconfig = filepath.Join(logDir, "berth.kubeconfig")
	if err := cluster.WriteKubeconfig(kubeconfig, token); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "chaos: cluster up, berth of the image found, artifacts/deploy applied in %s (%s)\n",
		time.Since(start).Round(time.Millisecond), cluster.Dir)

	code = m.Run()
	figuresMu.Lock()
	defer figuresMu.Unlock()
	fmt.Printf("chaos: figures (seed %d):\n", seed)
	for _, f := range figures {
		fmt.Println("  " + f)
	}
	return code
}

// figure logs a measured figure and keeps it for the summary that TestMain prints.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	line := t.Name() + ": " + fmt.Sprintf(format, args...)
	t.Log(line)
	figuresMu.Lock()
	defer figuresMu.Unlock()
	figures = append(figures, line)
}

// newRandom is a source of random choices for one test, seeded from the run's seed and the test's name, so that
// a test makes the same choices with the same seed whichever tests run before it.
func newRandom(t *testing.T) *rand.Rand {
	var h uint64
	for _, c := range t.Name() {
		h = h*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, h))
}

// randomDuration is a duration from 0 up to max, chosen by random.
func randomDuration(random *rand.Rand, max time.Duration) time.Duration {
	return time.Duration(random.Int64N(int64(max)))
}

// sleep waits for d, or fails the test if it ends first.
func sleep(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	case <-time.After(d):
	}
}

// eventually polls check every 200 ms until it returns nil, failing the test with check's last error after within.
func eventually(t *testing.T, what string, within time.Duration, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not so after %s: %v", what, within, err)
		}
		sleep(t, 200*time.Millisecond)
	}
}

// newNamespace creates a namespace for the test, deleted (without waiting) when the test ends, and waits for its
// default ServiceAccount, without which Pods are refused.
func newNamespace(t *testing.T) string {
	t.Helper()
	recordInputs.Do(func() { require.NoError(t, framework.RecordInputs()) })
	ns, err := kubeClient.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "chaos-"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = kubeClient.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	eventually(t, "the default ServiceAccount of namespace "+ns.Name, time.Minute, func(ctx context.Context) error {
		_, err := kubeClient.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return ns.Name
}

// berth is one berth process started by a test.
type berth struct {
	*framework.Process
	probeURL   string // http://127.0.0.1:PORT, for /readyz
	metricsURL string // .../metrics
}

// startBerth runs berth with a kubeconfig (and no other credentials) on the Apps of namespace alone, with args,
// logging to a file named after the test and name, its metrics and probes on free ports. When the test ends the
// process is stopped (SIGTERM, then SIGKILL), and the end of its log is printed if the test failed.
func startBerth(t *testing.T, name, kubeconfig, namespace string, args ...string) *berth {
	t.Helper()
	ports, err := framework.FreePorts(2)
	require.NoError(t, err)
	b := &berth{
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
		probeURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
	}
	args = append([]string{
		"--kubeconfig=" + kubeconfig, "--namespace=" + namespace, "-v=2",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]),
	}, args...)
	b.Process, err = framework.StartCommand(logDir, logName(t.Name()+"_"+name), exec.Command(binary, args...))
	require.NoError(t, err)
	b.Name = name
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("the end of berth %s's log (%s):\n%s", name, b.LogPath, b.LogTail(60))
		}
	})
	return b
}

// logName is name made fit for a file name.
func logName(name string) string {
	return regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(name, "_")
}

// kill SIGKILLs the process and waits until it is gone.
func (b *berth) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, b.Signal(syscall.SIGKILL))
	select {
	case <-b.Done():
	case <-time.After(time.Minute):
		t.Fatalf("berth %s is still running a minute after SIGKILL", b.Name)
	}
}

// alive returns an error if the process has exited.
func (b *berth) alive() error {
	if b.Exited() {
		return fmt.Errorf("berth %s exited with code %d; its log ends with:\n%s", b.Name, b.ExitCode(), b.LogTail(30))
	}
	return nil
}

// waitReady waits until berth answers /readyz with 200: its caches have synced.
func (b *berth) waitReady(t *testing.T) {
	t.Helper()
	eventually(t, "berth "+b.Name+" to be ready", 2*time.Minute, func(ctx context.Context) error {
		if err := b.alive(); err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.probeURL+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz answers %s", resp.Status)
		}
		return nil
	})
}

// metrics scrapes berth's /metrics.
func (b *berth) metrics(ctx context.Context) (framework.Metrics, error) {
	return framework.ScrapeMetrics(ctx, b.metricsURL)
}

// atWork tells whether berth had work at hand, by its queue's metrics: keys waiting, or a sync under way. The
// kills of the crash scenarios are meant to land in the middle of work; they report how many did.
func (b *berth) atWork(ctx context.Context) bool {
	m, err := b.metrics(ctx)
	if err != nil {
		return false
	}
	queue := map[string]string{"name": "app"}
	return m.Sum("workqueue_depth", queue) > 0 || m.Sum("workqueue_longest_running_processor_seconds", queue) > 0
}

// campaignLine is berth's log line when it starts campaigning for the Lease, with its identity.
var campaignLine = regexp.MustCompile(`"Campaigning for leadership".*identity="([^"]+)"`)

// identity is the identity under which berth campaigns for the Lease, read from its log; "" before it has
// logged it.
func (b *berth) identity() string {
	if m := campaignLine.FindStringSubmatch(b.Log()); m != nil {
		return m[1]
	}
	return ""
}

// leaderArgs are the leader-election flags of the shipped Deployment (see framework.ShippedLeaderElectionArgs).
func leaderArgs(t *testing.T) []string {
	t.Helper()
	args, err := framework.ShippedLeaderElectionArgs()
	require.NoError(t, err)
	return args
}

// deleteLease deletes berth's Lease, which a berth killed by an earlier test may still hold: the berths of this
// test need not wait for it to expire.
func deleteLease(t *testing.T) {
	t.Helper()
	err := kubeClient.CoordinationV1().Leases(berthNamespace).Delete(t.Context(), leaseName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		require.NoError(t, err)
	}
}

// leaseHolder is the identity that holds berth's Lease, or "" when there is none.
func leaseHolder(ctx context.Context) (string, error) {
	lease, err := kubeClient.CoordinationV1().Leases(berthNamespace).Get(ctx, leaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}
