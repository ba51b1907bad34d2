package scale

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/test/framework"
)

const (
	// appsPerNamespace spreads the Apps over about N/100 namespaces.
	appsPerNamespace = 100
	// creators is how many goroutines create objects at once: enough to keep the API server busy on 2 cores.
	creators = 8
	// image is what every App runs; kwok runs no container, but it is the image the README's examples use.
	image = "nginxinc/nginx-unprivileged:1.27"
	// foreignNamespace holds the Deployments that are not berth's.
	foreignNamespace = "foreign"
)

// startCluster starts a fresh local cluster with room for n Pods, and installs the App CRD.
func startCluster(ctx context.Context, n int) (*framework.Cluster, error) {
	cluster, err := framework.StartCluster(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting the local cluster: %w", err)
	}
	err = cluster.ApplyCRDs(ctx)
	if err == nil {
		err = makeRoomForPods(ctx, cluster, n)
	}
	if err != nil {
		if stopErr := cluster.Stop(); stopErr != nil {
			err = fmt.Errorf("%w (and stopping the cluster: %v)", err, stopErr)
		}
		return nil, err
	}
	return cluster, nil
}

// makeRoomForPods raises the Pod capacity of the kwok nodes so that together they hold n Pods and more.
//
// cluster-up.sh's nodes hold 110 Pods each. Adding nodes would also work, but each node costs kwok a lease
// renewal every few seconds, and 10,000 Apps would need 92 of them: raising the capacity of the existing nodes
// costs nothing. The node-initialize Stage of hack/kube/kwok-config.yaml keeps the allocatable and capacity it
// finds in the node's status and the heartbeat Stage does not write them, so a patch of the status stays; the
// scheduler reads it from its Node informer.
func makeRoomForPods(ctx context.Context, cluster *framework.Cluster, n int) error {
	client, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		return err
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
	if err != nil {
		return fmt.Errorf("listing the kwok nodes: %w", err)
	}
	if len(nodes.Items) == 0 {
		return errors.New("the local cluster has no kwok node")
	}
	// Room for the cluster-up check and spread unevenly by the scheduler: 110 more than an even share.
	perNode := (n+len(nodes.Items)-1)/len(nodes.Items) + 110
	patch := fmt.Sprintf(`{"status":{"capacity":{"pods":"%d"},"allocatable":{"pods":"%d"}}}`, perNode, perNode)
	for _, node := range nodes.Items {
		_, err := client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, []byte(patch),
			metav1.PatchOptions{}, "status")
		if err != nil {
			return fmt.Errorf("raising the Pod capacity of node %s: %w", node.Name, err)
		}
	}
	return nil
}

// appKey names App i of a run.
func appKey(i int) (namespace, name string) {
	return fmt.Sprintf("scale-%03d", i/appsPerNamespace), fmt.Sprintf("app-%05d", i)
}

// newApp is an App of 1 replica with a port, as the benchmark creates them; with Secrets (-scale.secrets-per-app),
// it reads a key of the first of its own (appSecret) in an environment variable.
func newApp(namespace, name string) *berthv1alpha1.App {
	app := &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: berthv1alpha1.AppSpec{
			Image:    image,
			Replicas: ptr.To[int32](1),
			Port:     ptr.To[int32](8080),
		},
	}
	if *secretsFlag > 0 {
		app.Spec.Env = []berthv1alpha1.EnvVar{{Name: "PASSWORD",
			SecretKeyRef: &berthv1alpha1.KeyRef{Name: appSecret("db", name, 0), Key: "password"}}}
	}
	return app
}

// appSecret names the j-th Secret of the App name, of a batch (prefix).
func appSecret(prefix, name string, j int) string {
	return fmt.Sprintf("%s-%s-%d", prefix, name, j)
}

// secretData is what each of the benchmark's Secrets holds: 4 KiB, which berth must never cache.
var secretData = bytes.Repeat([]byte("s3cr3t!!"), 512)

// createSecrets creates -scale.secrets-per-app Secrets for each of the n Apps (and, with extra, for the App
// created during the run), in its namespace, named after it (appSecret, of prefix): 4 KiB of data, and the copy
// of the whole Secret that a client-side kubectl apply keeps in an annotation, as Secrets in clusters often have.
func createSecrets(ctx context.Context, kube kubernetes.Interface, prefix string, n int, extra bool) error {
	perApp := *secretsFlag
	apps := n
	if extra {
		apps++
	}
	return parallel(ctx, apps*perApp, func(i int) error {
		namespace, name := appKey(i / perApp)
		if i/perApp == n {
			// The App created during the run (createExtraApp).
			namespace, _ = appKey(0)
			name = "new-app"
		}
		return createSecret(ctx, kube, namespace, appSecret(prefix, name, i%perApp))
	})
}

func createSecret(ctx context.Context, kube kubernetes.Interface, namespace, name string) error {
	lastApplied := fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":%q},"data":{"password":%q}}`,
		name, base64.StdEncoding.EncodeToString(secretData))
	_, err := kube.CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": lastApplied}},
		Data: map[string][]byte{"password": secretData},
	}, metav1.CreateOptions{})
	return err
}

// createApps creates n Apps (and their namespaces) as fast as the API server takes them, and returns them as
// the API server stored them.
func createApps(ctx context.Context, kube kubernetes.Interface, berth versioned.Interface, n int) ([]*berthv1alpha1.App, error) {
	namespaces := (n + appsPerNamespace - 1) / appsPerNamespace
	err := parallel(ctx, namespaces, func(i int) error {
		namespace, _ := appKey(i * appsPerNamespace)
		_, err := kube.CoreV1().Namespaces().Create(ctx,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating the namespaces: %w", err)
	}
	// The Apps' Secrets first (and those of the App created during the run), so that no App finds its missing.
	if err := createSecrets(ctx, kube, "db", n, true); err != nil {
		return nil, fmt.Errorf("creating the Secrets: %w", err)
	}
	apps := make([]*berthv1alpha1.App, n)
	err = parallel(ctx, n, func(i int) error {
		namespace, name := appKey(i)
		app, err := berth.BerthV1alpha1().Apps(namespace).Create(ctx, newApp(namespace, name), metav1.CreateOptions{})
		apps[i] = app
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating the Apps: %w", err)
	}
	return apps, nil
}

// createAppsLogged creates n Apps in the cluster, and logs how long it took.
func createAppsLogged(ctx context.Context, t *testing.T, cluster *framework.Cluster, n int) ([]*berthv1alpha1.App, error) {
	kube, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		return nil, err
	}
	berth, err := versioned.NewForConfig(cluster.Config)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	apps, err := createApps(ctx, kube, berth, n)
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	t.Logf("created %d Apps in %s (%.0f/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	return apps, nil
}

// extraAppDelay is when, after the runner starts, the App is created whose time to converge is measured while
// the others are being worked through.
const extraAppDelay = time.Second

// createExtraApp creates, extraAppDelay after start, one more App, and returns it with the time it was sent.
func createExtraApp(ctx context.Context, cluster *framework.Cluster, start time.Time) (*berthv1alpha1.App, time.Time, error) {
	berth, err := versioned.NewForConfig(cluster.Config)
	if err != nil {
		return nil, time.Time{}, err
	}
	select {
	case <-time.After(time.Until(start.Add(extraAppDelay))):
	case <-ctx.Done():
		return nil, time.Time{}, ctx.Err()
	}
	namespace, _ := appKey(0)
	created := time.Now()
	app, err := berth.BerthV1alpha1().Apps(namespace).Create(ctx, newApp(namespace, "new-app"), metav1.CreateOptions{})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("creating the App during the run: %w", err)
	}
	return app, created, nil
}

// createForeignDeployments creates n Deployments of no replica in a namespace of their own, without berth's
// labels: objects that berth's caches should not hold.
func createForeignDeployments(ctx context.Context, kube kubernetes.Interface, n int) error {
	_, err := kube.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: foreignNamespace}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", foreignNamespace, err)
	}
	return parallel(ctx, n, func(i int) error {
		labels := map[string]string{"app": fmt.Sprintf("foreign-%05d", i)}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: labels["app"], Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](0),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
				},
			},
		}
		_, err := kube.AppsV1().Deployments(foreignNamespace).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
}

// parallel calls do(0) ... do(n-1) from a few goroutines at once and returns the first error; after an error,
// the calls not yet started are skipped.
func parallel(ctx context.Context, n int, do func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(creators, n) {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// waitFor calls done every interval until it returns true or an error, or until timeout.
func waitFor(ctx context.Context, what string, interval, timeout time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: still not the case after %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
