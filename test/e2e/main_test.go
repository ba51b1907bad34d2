// Package e2e tests berth as a user runs it: the binary of its image against the full local cluster of
// hack/cluster-up.sh (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with fake nodes), driven
// with kubectl. Assertions read the cluster with client-go. Each test works in a namespace of its own.
//
// berth runs as it runs in a Pod of artifacts/deploy, which TestMain applies: with a token of the shipped
// ServiceAccount berth-system/berth (TokenRequest API), so with the shipped RBAC only; through the in-cluster
// configuration (token and CA in /var/run/secrets/kubernetes.io/serviceaccount of a private mount namespace,
// KUBERNETES_SERVICE_HOST and _PORT set, no kubeconfig); with leader election in berth-system. So every scenario
// here also proves that RBAC allows what it needs. This needs unshare (util-linux); as a user other than root,
// also unprivileged user namespaces.
//
// Run it with `make image && go test ./test/e2e/` (about 45 s on 2 cores). The control plane's binaries come
// from .cache/bin; when one is missing, cluster-up.sh builds them with hack/build-kube.sh first, which takes about
// 10 minutes with a cold Go build cache: give that first run `-timeout=30m`. berth is the binary of the image
// that `make image` built (.cache/image/from-image/berth: TestBerthIsTheImagesBinary checks it), or
// $BERTH_BINARY. BERTH_KEEP_TEST_DIRS=1 keeps the cluster's folder, with the components' logs and berth's.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/test/framework"
)

// timeout bounds every wait of the tests: generous, since the machine may be shared and slow.
const timeout = 2 * time.Minute

// berth runs as the ServiceAccount of artifacts/deploy.
const (
	berthNamespace      = "berth-system"
	berthServiceAccount = "berth"
)

var (
	cluster       *framework.Cluster
	berth         *framework.Process
	kubeClient    kubernetes.Interface
	berthClient   versioned.Interface
	gatewayClient gatewayversioned.Interface

	// recordInputs makes go test rerun the suite when berth's sources or the cluster's files change.
	recordInputs sync.Once
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts the cluster and berth, runs the tests and stops both; every return path stops the cluster (and
// if the process dies instead, the cluster's guard does).
func run(m *testing.M) (code int) {
	start := time.Now()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
		return 1
	}
	// Long enough for hack/build-kube.sh on a cold cache; go test's -timeout is the real bound.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	suite, err := framework.StartSuite(ctx)
	if err != nil {
		return fail("%v", err)
	}
	cluster = suite.Cluster
	defer func() {
		if err := cluster.Stop(); err != nil {
			code = fail("stopping the local cluster: %v", err)
		}
	}()
	binary, dir := suite.Binary, suite.Dir

	// The shipped manifests, as a cluster administrator installs them: the CRD, namespace berth-system, the
	// ServiceAccount, the ClusterRole and the Lease Role with their bindings. Their Deployment's Pods "run" on
	// kwok's nodes without running berth: the berth of these tests is the process started below, with that
	// ServiceAccount's token and nothing more.
	if _, err := cluster.Kubectl(ctx, "apply", "--kustomize="+filepath.Join(framework.RepoRoot(), "artifacts", "deploy")); err != nil {
		return fail("applying artifacts/deploy: %v", err)
	}
	kubeClient = kubernetes.NewForConfigOrDie(cluster.Config)
	berthClient = versioned.NewForConfigOrDie(cluster.Config)
	gatewayClient = gatewayversioned.NewForConfigOrDie(cluster.Config)
	// Gateway API is installed before berth starts, which then makes the Apps' routes as HTTPRoutes
	// (--route-kind=auto); the Ingresses are tested in test/e2e/production.
	if err := framework.InstallGatewayAPI(ctx, cluster.Config); err != nil {
		return fail("installing Gateway API's CRDs: %v", err)
	}

	token, err := cluster.ServiceAccountToken(ctx, berthNamespace, berthServiceAccount, 2*time.Hour)
	if err != nil {
		return fail("%v", err)
	}
	ports, err := framework.FreePorts(2)
	if err != nil {
		return fail("%v", err)
	}
	metricsAddress := fmt.Sprintf("127.0.0.1:%d", ports[0])
	probeAddress := fmt.Sprintf("127.0.0.1:%d", ports[1])
	// As in a Pod of artifacts/deploy: in-cluster configuration, leader election in berth-system.
	berth, err = cluster.StartBerthInCluster(binary, dir, "berth", token, berthNamespace, "-v=2", "--leader-elect",
		"--leader-election-namespace="+berthNamespace,
		"--metrics-bind-address="+metricsAddress, "--health-probe-bind-address="+probeAddress)
	if err != nil {
		return fail("%v", err)
	}
	defer func() {
		if err := stopBerth(); err != nil {
			code = fail("%v", err)
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "e2e: berth's log (%s):\n%s\n", berth.LogPath, berth.Log())
		}
	}()
	if err := waitReady(ctx, "http://"+probeAddress+"/readyz"); err != nil {
		return fail("%v", err)
	}
	if err := waitLogged(ctx, "Became the leader"); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: cluster up, artifacts/deploy applied, berth of the image ready and leading, "+
		"%s after the start\n", time.Since(start).Round(time.Millisecond))

	code = m.Run()
	// The shipped RBAC allows everything the scenarios made berth do.
	if denials := framework.PermissionDenials(berth.Log()); len(denials) > 0 {
		return fail("berth was refused permission: the RBAC of artifacts/deploy lacks a rule:\n%s",
			strings.Join(denials, "\n"))
	}
	return code
}

// waitReady waits until berth answers its readiness probe, as the kubelet would check it.
func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if berth.Exited() {
			return fmt.Errorf("berth exited with code %d before it was ready", berth.ExitCode())
		}
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("berth is not ready after %s: %s", timeout, last)
}

// waitLogged waits until berth's log holds text.
func waitLogged(ctx context.Context, text string) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(berth.Log(), text) {
		if berth.Exited() {
			return fmt.Errorf("berth exited with code %d before it logged %q", berth.ExitCode(), text)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("berth has not logged %q after %s", text, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// stopBerth stops berth as Kubernetes does, with SIGTERM, and expects a clean exit.
func stopBerth() error {
	if berth.Exited() {
		return fmt.Errorf("berth exited during the tests, with code %d", berth.ExitCode())
	}
	if err := berth.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-berth.Done():
	case <-time.After(time.Minute):
		berth.Stop()
		return errors.New("berth did not exit within a minute of SIGTERM")
	}
	if code := berth.ExitCode(); code != 0 {
		return fmt.Errorf("berth exited with code %d after SIGTERM, want 0", code)
	}
	return nil
}

// kubectl runs kubectl against the cluster as a user would, failing the test with its output when it fails.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cluster.Kubectl(t.Context(), args...)
	require.NoError(t, err)
	return out
}

// apply writes manifest to a file and applies it with `kubectl apply -f` in namespace.
func apply(t *testing.T, namespace, manifest string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "manifest.yaml")
	require.NoError(t, os.WriteFile(file, []byte(manifest), 0o644))
	kubectl(t, "apply", "--namespace="+namespace, "-f", file)
}

// eventually polls check until it returns nil, failing the test with check's last error after timeout. It fails
// at once if berth is no longer running.
func eventually(t *testing.T, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if berth.Exited() {
			t.Fatalf("waiting for %s: berth exited (code %d); its log ends with:\n%s", what, berth.ExitCode(),
				berth.LogTail(40))
		}
		err := check(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not so after %s: %v", what, timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// newNamespace creates a namespace for the test and waits for its default ServiceAccount, without which Pods are
// refused. When the test fails, it logs what the namespace holds and berth's log lines about it.
func newNamespace(t *testing.T) string {
	t.Helper()
	return newLabelledNamespace(t, nil)
}

// newLabelledNamespace is newNamespace with labels, such as those that make Pod Security admission enforce a
// standard there.
func newLabelledNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	recordInputs.Do(func() { require.NoError(t, framework.RecordInputs()) })
	ns, err := kubeClient.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-", Labels: labels},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			logNamespace(t, ns.Name)
		}
		// The cluster goes away with the suite: do not wait for the namespace to be emptied.
		_ = kubeClient.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	eventually(t, "the default ServiceAccount of namespace "+ns.Name, func(ctx context.Context) error {
		_, err := kubeClient.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	return ns.Name
}

// logNamespace logs what a failed test left in its namespace, and berth's log lines that name the namespace.
func logNamespace(t *testing.T, namespace string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"get", "apps.berth.dev,deployments,replicasets,pods,services", "-o", "wide"},
		{"get", "apps.berth.dev", "-o", "yaml"},
		{"get", "events", "--sort-by=.lastTimestamp"},
	} {
		out, err := cluster.Kubectl(ctx, append([]string{"--namespace=" + namespace}, args...)...)
		if err != nil {
			out = err.Error()
		}
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	var lines []string
	for _, line := range strings.Split(berth.Log(), "\n") {
		if strings.Contains(line, namespace) {
			lines = append(lines, line)
		}
	}
	t.Logf("berth's log lines about namespace %s (%s):\n%s", namespace, berth.LogPath, strings.Join(lines, "\n"))
}
