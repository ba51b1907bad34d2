// Package production tests berth as a platform team installs and runs it: the manifests of artifacts/deploy
// against the real API server and its admission, the least privilege of their RBAC, leader election between
// replicas of the image's binary (make image), and its metrics and probes.
//
// It starts a local cluster of its own (hack/cluster-up.sh) and, unlike the App suite of test/e2e, no berth for
// all tests: each test starts the berth processes it needs, with a ServiceAccount's token (TokenRequest API) in a
// kubeconfig, and stops them when it ends. Run it with `go test ./test/e2e/production/` (see test/e2e for the
// cluster's binaries); the handover times of TestLeaderElection are in `go test -v`'s output.
package production

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/test/framework"
)

// timeout bounds the waits for what must happen: generous, since the machine may be shared and slow.
const timeout = 2 * time.Minute

var (
	cluster       *framework.Cluster
	binary        string // berth, taken out of its image (framework.ImageBerth)
	logDir        string // berth's logs, in the cluster's folder
	kubeClient    kubernetes.Interface
	berthClient   versioned.Interface
	gatewayClient gatewayversioned.Interface

	// recordInputs makes go test rerun the suite when berth's sources or the cluster's files change.
	recordInputs sync.Once
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts the cluster, finds berth and installs the CRD, runs the tests and stops the cluster on every return
// path (and if the process dies instead, the cluster's guard does).
func run(m *testing.M) (code int) {
	start := time.Now()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e/production: "+format+"\n", args...)
		return 1
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
	// With Gateway API installed, berth makes the Apps' routes as HTTPRoutes unless told otherwise.
	if err := framework.InstallGatewayAPI(ctx, cluster.Config); err != nil {
		return fail("installing Gateway API's CRDs: %v", err)
	}
	kubeClient = kubernetes.NewForConfigOrDie(cluster.Config)
	berthClient = versioned.NewForConfigOrDie(cluster.Config)
	gatewayClient = gatewayversioned.NewForConfigOrDie(cluster.Config)
	fmt.Fprintf(os.Stderr, "e2e/production: local cluster up, berth of the image found, CRDs installed in %s (%s)\n",
		time.Since(start).Round(time.Millisecond), cluster.Dir)
	return m.Run()
}

// kubectl runs kubectl against the cluster as an administrator, failing the test with its output when it fails.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cluster.Kubectl(t.Context(), args...)
	require.NoError(t, err)
	return out
}

// deployDir is artifacts/deploy, or one of its folders.
func deployDir(elem ...string) string {
	return filepath.Join(append([]string{framework.RepoRoot(), "artifacts", "deploy"}, elem...)...)
}

// applyShippedManifests installs artifacts/deploy for real, as an administrator does.
func applyShippedManifests(t *testing.T) {
	t.Helper()
	kubectl(t, "apply", "--kustomize="+deployDir())
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
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newNamespace creates a namespace for the test, deleted (without waiting) when the test ends, and waits for its
// default ServiceAccount, without which Pods are refused.
func newNamespace(t *testing.T, prefix string, labels map[string]string) string {
	t.Helper()
	recordInputs.Do(func() { require.NoError(t, framework.RecordInputs()) })
	ns, err := kubeClient.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = kubeClient.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	eventually(t, "the default ServiceAccount of namespace "+ns.Name, timeout, func(ctx context.Context) error {
		_, err := kubeClient.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return ns.Name
}

// tokenKubeconfig writes a kubeconfig holding a fresh token of the ServiceAccount namespace/name, and returns
// its path.
func tokenKubeconfig(t *testing.T, namespace, name string) string {
	t.Helper()
	token, err := cluster.ServiceAccountToken(t.Context(), namespace, name, time.Hour)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, cluster.WriteKubeconfig(path, token))
	return path
}

// replica is one berth process started by a test, with its metrics and probe endpoints.
type replica struct {
	*framework.Process
	metricsURL string // .../metrics
	probeURL   string // http://127.0.0.1:PORT, for /healthz and /readyz
	// quiet: the test prints the log itself when it must, rather than when it fails.
	quiet bool
}

// startReplica runs berth with kubeconfig (and no other credentials) and args, logging to a file named after the
// test and name, on free ports for metrics and probes. When the test ends the process is stopped (SIGTERM, then
// SIGKILL), and its log is printed if the test failed.
func startReplica(t *testing.T, name, kubeconfig string, args ...string) *replica {
	t.Helper()
	ports, err := framework.FreePorts(2)
	require.NoError(t, err)
	r := &replica{
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
		probeURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
	}
	args = append([]string{
		"--kubeconfig=" + kubeconfig, "-v=2",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]),
	}, args...)
	logName := uniqueLogName(t.Name() + "_" + name)
	r.Process, err = framework.StartCommand(logDir, logName, exec.Command(binary, args...))
	require.NoError(t, err)
	r.Name = name
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() && !r.quiet {
			t.Logf("log of berth %s (%s):\n%s", name, r.LogPath, r.Log())
		}
	})
	return r
}

// uniqueLogName is name, made fit for a file name, and made unique among the logs of logDir.
func uniqueLogName(name string) string {
	name = regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(name, "_")
	logNamesMu.Lock()
	defer logNamesMu.Unlock()
	unique := name
	for i := 2; logNames[unique]; i++ {
		unique = fmt.Sprintf("%s-%d", name, i)
	}
	logNames[unique] = true
	return unique
}

var (
	logNamesMu sync.Mutex
	logNames   = map[string]bool{}
)

// probe returns the status code of GET path on the replica's probe server (0 when it does not answer).
func (r *replica) probe(ctx context.Context, path string) int {
	code, _ := r.probeBody(ctx, path)
	return code
}

// probeBody returns the status code and body of GET path on the replica's probe server (0 when it does not
// answer).
func (r *replica) probeBody(ctx context.Context, path string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.probeURL+path, nil)
	if err != nil {
		return 0, ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ""
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, string(body)
}

// waitReady waits until the replica answers /readyz with 200: its caches have synced.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	eventually(t, "berth "+r.Name+" to be ready", timeout, func(ctx context.Context) error {
		if r.Exited() {
			t.Fatalf("berth %s exited with code %d; its log ends with:\n%s", r.Name, r.ExitCode(), r.LogTail(30))
		}
		if code := r.probe(ctx, "/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz answers %d", code)
		}
		return nil
	})
}

// metrics scrapes the replica's /metrics.
func (r *replica) metrics(ctx context.Context) (framework.Metrics, error) {
	return framework.ScrapeMetrics(ctx, r.metricsURL)
}

// leading tells whether the replica's metrics say it holds the Lease named lease.
func (r *replica) leading(ctx context.Context, lease string) bool {
	m, err := r.metrics(ctx)
	return err == nil && m.Sum("leader_election_master_status", map[string]string{"name": lease}) == 1
}

// reconciles is the replica's count of syncs, all results together.
func (r *replica) reconciles(t *testing.T) float64 {
	t.Helper()
	m, err := r.metrics(t.Context())
	require.NoError(t, err)
	return m.Sum("berth_reconcile_total", nil)
}

// newApp creates an App with one replica and a port, as a user would.
func newApp(ctx context.Context, namespace, name string) error {
	_, err := berthClient.BerthV1alpha1().Apps(namespace).Create(ctx, &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       berthv1alpha1.AppSpec{Image: "nginxinc/nginx-unprivileged:1.27", Replicas: ptr.To[int32](1), Port: ptr.To[int32](8080)},
	}, metav1.CreateOptions{})
	return err
}

// newAppOfEveryKind creates an App that owns an object of every kind berth makes: a Deployment, a Service, a
// PodDisruptionBudget and a HorizontalPodAutoscaler (autoscaled up to 2 Pods), and a route (an HTTPRoute, or an
// Ingress with --route-kind=Ingress; its Gateway need not exist).
func newAppOfEveryKind(ctx context.Context, namespace, name string) error {
	_, err := berthClient.BerthV1alpha1().Apps(namespace).Create(ctx, &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: berthv1alpha1.AppSpec{Image: "nginxinc/nginx-unprivileged:1.27", Replicas: ptr.To[int32](1),
			Port:        ptr.To[int32](8080),
			Autoscaling: &berthv1alpha1.Autoscaling{MaxReplicas: 2, CPUUtilization: ptr.To[int32](80)},
			Resources: &berthv1alpha1.Resources{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("10m")}},
			Route: &berthv1alpha1.Route{Host: name + ".example.com",
				Gateway: &berthv1alpha1.GatewayReference{Name: "public"}},
		},
	}, metav1.CreateOptions{})
	return err
}

// converged returns nil when berth has done all it does for the App: its Deployment and Service exist and the App
// controls them, as it does the PodDisruptionBudget, HorizontalPodAutoscaler and route it asks for, its status describes its current generation with Available=True, and berth recorded an Event
// about it. Otherwise the error says what is missing.
func converged(ctx context.Context, namespace, name string) error {
	app, err := berthClient.BerthV1alpha1().Apps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	d, err := kubeClient.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !controlledBy(d, app) {
		return fmt.Errorf("Deployment %s is not controlled by App %s: %v", name, name, d.OwnerReferences)
	}
	s, err := kubeClient.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !controlledBy(s, app) {
		return fmt.Errorf("Service %s is not controlled by App %s: %v", name, name, s.OwnerReferences)
	}
	if err := ownsWhatItAsks(ctx, app); err != nil {
		return err
	}
	if app.Status.ObservedGeneration != app.Generation {
		return fmt.Errorf("App %s: status.observedGeneration %d, generation %d", name, app.Status.ObservedGeneration,
			app.Generation)
	}
	if !meta.IsStatusConditionTrue(app.Status.Conditions, berthv1alpha1.ConditionAvailable) {
		return fmt.Errorf("App %s is not Available: %+v", name, app.Status.Conditions)
	}
	events, err := kubeClient.EventsV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, e := range events.Items {
		if e.ReportingController == "berth" && e.Regarding.Kind == "App" && e.Regarding.Name == name {
			return nil
		}
	}
	return fmt.Errorf("no Event of berth about App %s", name)
}

// ownsWhatItAsks returns nil when the App controls the PodDisruptionBudget, HorizontalPodAutoscaler and route
// (HTTPRoute or Ingress) that it asks for.
func ownsWhatItAsks(ctx context.Context, app *berthv1alpha1.App) error {
	namespace, name := app.Namespace, app.Name
	if plan.PodDisruptionBudget(app) != nil {
		b, err := kubeClient.PolicyV1().PodDisruptionBudgets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !controlledBy(b, app) {
			return fmt.Errorf("PodDisruptionBudget %s is not controlled by App %s: %v", name, name, b.OwnerReferences)
		}
	}
	if app.Spec.Autoscaling != nil {
		h, err := kubeClient.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !controlledBy(h, app) {
			return fmt.Errorf("HorizontalPodAutoscaler %s is not controlled by App %s: %v", name, name, h.OwnerReferences)
		}
	}
	if app.Spec.Route != nil {
		var route metav1.Object
		if r, err := gatewayClient.GatewayV1().HTTPRoutes(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			route = r
		} else if i, err := kubeClient.NetworkingV1().Ingresses(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			route = i
		} else {
			return fmt.Errorf("App %s has neither an HTTPRoute nor an Ingress: %w", name, err)
		}
		if !controlledBy(route, app) {
			return fmt.Errorf("the route of App %s is not controlled by it: %v", name, route.GetOwnerReferences())
		}
	}
	return nil
}

// controlledBy tells whether the App is obj's controller.
func controlledBy(obj metav1.Object, app *berthv1alpha1.App) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == app.UID && ref.Kind == "App" && strings.HasPrefix(ref.APIVersion, "berth.dev/")
}

// waitConverged waits until every App named converges.
func waitConverged(t *testing.T, namespace string, names ...string) {
	t.Helper()
	for _, name := range names {
		eventually(t, "App "+namespace+"/"+name+" to converge", timeout, func(ctx context.Context) error {
			return converged(ctx, namespace, name)
		})
	}
}
