package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/test/framework"
)

// Images that kwok's Stages in hack/kube/kwok-config.yaml make fail; any other image "runs".
const (
	goodImage        = "nginxinc/nginx-unprivileged:1.27" // as in artifacts/examples: its user is not root
	crashLoopImage   = "crash-loop.invalid/web:1"
	imagePullsFailed = "pull-fails.invalid/web:1"
	// neverReadyImage runs and never becomes ready, as a container whose readiness probe never passes.
	neverReadyImage = "never-ready.invalid/web:1"
	// runsAsRootImage is an image whose user is root: it runs, unless its container must run as non-root
	// (runAsNonRoot, and no runAsUser to run it as instead), which the kubelet refuses with
	// CreateContainerConfigError.
	runsAsRootImage = "runs-as-root.invalid/web:1"
)

// appManifest is an App as a user writes it.
func appManifest(name, image string, replicas int, port int) string {
	m := fmt.Sprintf("apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata:\n  name: %s\nspec:\n  image: %s\n  replicas: %d\n",
		name, image, replicas)
	if port != 0 {
		m += fmt.Sprintf("  port: %d\n", port)
	}
	return m
}

// exampleApp is the App of artifacts/examples/web.yaml moved to namespace (the file also creates a Namespace,
// which is left out).
func exampleApp(t *testing.T, namespace string) string {
	t.Helper()
	return example(t, "web.yaml", namespace)
}

// example is what a file of artifacts/examples creates, moved to namespace: every object but the Namespace.
func example(t *testing.T, file, namespace string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "artifacts", "examples", file))
	require.NoError(t, err)
	var docs []string
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(doc), &obj))
		if obj["kind"] == "Namespace" {
			continue
		}
		obj["metadata"].(map[string]any)["namespace"] = namespace
		out, err := yaml.Marshal(obj)
		require.NoError(t, err)
		docs = append(docs, string(out))
	}
	require.NotEmpty(t, docs, "artifacts/examples/%s creates nothing but a Namespace", file)
	return strings.Join(docs, "---\n")
}

func getApp(ctx context.Context, namespace, name string) (*berthv1alpha1.App, error) {
	return berthClient.BerthV1alpha1().Apps(namespace).Get(ctx, name, metav1.GetOptions{})
}

// hasCondition returns nil when the App's status describes its current generation and has the condition with
// that status and reason, and otherwise an error that says what the App has instead.
func hasCondition(app *berthv1alpha1.App, conditionType string, status metav1.ConditionStatus, reason string) error {
	if app.Status.ObservedGeneration != app.Generation {
		return fmt.Errorf("App %s: status.observedGeneration %d, generation %d", app.Name,
			app.Status.ObservedGeneration, app.Generation)
	}
	c := meta.FindStatusCondition(app.Status.Conditions, conditionType)
	if c == nil {
		return fmt.Errorf("App %s has no %s condition: %+v", app.Name, conditionType, app.Status.Conditions)
	}
	if c.Status != status || c.Reason != reason {
		return fmt.Errorf("App %s: %s is %s/%s (%q), want %s/%s", app.Name, conditionType, c.Status, c.Reason,
			c.Message, status, reason)
	}
	return nil
}

// degradedNamingAPod returns nil when the App is Degraded for reason and the message names one of its Pods, so
// that the user knows where to look.
func degradedNamingAPod(ctx context.Context, app *berthv1alpha1.App, reason string) error {
	if err := hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, reason); err != nil {
		return err
	}
	pods, err := appPods(ctx, app)
	if err != nil {
		return err
	}
	message := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded).Message
	for _, p := range pods {
		if strings.Contains(message, p.Name) {
			return nil
		}
	}
	return fmt.Errorf("the Degraded message %q names none of the App's %d Pods", message, len(pods))
}

// waitAvailable waits until the App is Available, not Degraded, with replicas Pods ready, and returns it.
func waitAvailable(t *testing.T, namespace, name string, replicas int32) *berthv1alpha1.App {
	t.Helper()
	var app *berthv1alpha1.App
	eventually(t, fmt.Sprintf("App %s to be available with %d ready Pods", name, replicas), func(ctx context.Context) error {
		var err error
		if app, err = getApp(ctx, namespace, name); err != nil {
			return err
		}
		if err := hasCondition(app, berthv1alpha1.ConditionAvailable, metav1.ConditionTrue, "MinimumReplicasAvailable"); err != nil {
			return err
		}
		if err := hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, "AsExpected"); err != nil {
			return err
		}
		if app.Status.Replicas != replicas || app.Status.ReadyReplicas != replicas {
			return fmt.Errorf("App %s: status.replicas %d, readyReplicas %d, want %d", name, app.Status.Replicas,
				app.Status.ReadyReplicas, replicas)
		}
		return nil
	})
	return app
}

// appPods lists the App's Pods with the selector its status publishes.
func appPods(ctx context.Context, app *berthv1alpha1.App) ([]corev1.Pod, error) {
	if app.Status.Selector == "" {
		return nil, fmt.Errorf("App %s has no status.selector", app.Name)
	}
	pods, err := kubeClient.CoreV1().Pods(app.Namespace).List(ctx, metav1.ListOptions{LabelSelector: app.Status.Selector})
	if err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// waitPodsRunning waits until the App has exactly n Pods, all Running and Ready on kwok's fake nodes.
func waitPodsRunning(t *testing.T, app *berthv1alpha1.App, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d Pods of App %s to run on kwok nodes", n, app.Name), func(ctx context.Context) error {
		pods, err := appPods(ctx, app)
		if err != nil {
			return err
		}
		return runningOnKwok(ctx, pods, n)
	})
}

// runningOnKwok returns nil when there are exactly n Pods, all Running and Ready on kwok's fake nodes.
func runningOnKwok(ctx context.Context, pods []corev1.Pod, n int) error {
	var live []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != n {
		return fmt.Errorf("%d Pods, want %d", len(live), n)
	}
	for _, p := range live {
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if p.Status.Phase != corev1.PodRunning || !ready {
			return fmt.Errorf("Pod %s is %s, ready %v", p.Name, p.Status.Phase, ready)
		}
		node, err := kubeClient.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("Pod %s: its node %q: %w", p.Name, p.Spec.NodeName, err)
		}
		if node.Annotations["kwok.x-k8s.io/node"] != "fake" {
			return fmt.Errorf("Pod %s runs on node %s, which kwok does not manage", p.Name, node.Name)
		}
	}
	return nil
}

// controlledBy tells whether the App is obj's controller.
func controlledBy(obj metav1.Object, app *berthv1alpha1.App) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == app.UID && ref.Kind == "App" && strings.HasPrefix(ref.APIVersion, "berth.dev/")
}

// TestExampleAppBecomesAvailable applies the example App and expects its Pods to run on the kwok nodes, behind a
// Service, with the status kubectl shows.
func TestExampleAppBecomesAvailable(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, exampleApp(t, ns))

	app := waitAvailable(t, ns, "web", 3)
	waitPodsRunning(t, app, 3)

	d, err := kubeClient.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, controlledBy(d, app), "the App controls Deployment web: %v", d.OwnerReferences)
	assert.Equal(t, goodImage, d.Spec.Template.Spec.Containers[0].Image)
	s, err := kubeClient.CoreV1().Services(ns).Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, controlledBy(s, app), "the App controls Service web: %v", s.OwnerReferences)
	assert.Equal(t, fmt.Sprintf("http://web.%s.svc.cluster.local:8080", ns), app.Status.URL)
	assert.Equal(t, "3/3", app.Status.Ready)

	out := kubectl(t, "get", "apps.berth.dev", "web", "--namespace="+ns)
	assert.Regexp(t, `(?m)^web\s+nginxinc/nginx-unprivileged:1\.27\s+3/3\s+True\s`, out,
		"the columns of `kubectl get apps.berth.dev`")
}

// TestKubectlScale scales an App with `kubectl scale app/NAME`, through the scale subresource.
func TestKubectlScale(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, appManifest("scaled", goodImage, 2, 0))
	waitAvailable(t, ns, "scaled", 2)

	out := kubectl(t, "scale", "app/scaled", "--replicas=5", "--namespace="+ns)
	assert.Contains(t, out, "app.berth.dev/scaled scaled", "app/NAME is berth's App, not something of the apps group")

	app := waitAvailable(t, ns, "scaled", 5)
	assert.Equal(t, int32(5), *app.Spec.Replicas)
	d, err := kubeClient.AppsV1().Deployments(ns).Get(t.Context(), "scaled", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(5), *d.Spec.Replicas)
	waitPodsRunning(t, app, 5)
}

// TestKubectlWait waits for an App with `kubectl wait --for=condition=Available`.
func TestKubectlWait(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, appManifest("waited", goodImage, 2, 8080))

	kubectl(t, "wait", "--for=condition=Available", "app.berth.dev/waited", "--namespace="+ns, "--timeout="+timeout.String())
	kubectl(t, "wait", "--for=condition=Degraded=false", "app/waited", "--namespace="+ns, "--timeout="+timeout.String())

	app, err := getApp(t.Context(), ns, "waited")
	require.NoError(t, err)
	assert.NoError(t, hasCondition(app, berthv1alpha1.ConditionAvailable, metav1.ConditionTrue, "MinimumReplicasAvailable"))
	assert.Equal(t, int32(2), app.Status.AvailableReplicas)
}

// TestDeleteAppDeletesWhatItOwns deletes an App with kubectl and expects the garbage collector to delete its
// Deployment, Service, ReplicaSet and Pods.
func TestDeleteAppDeletesWhatItOwns(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, appManifest("doomed", goodImage, 2, 8080))
	app := waitAvailable(t, ns, "doomed", 2)
	_, err := kubeClient.CoreV1().Services(ns).Get(t.Context(), "doomed", metav1.GetOptions{})
	require.NoError(t, err)

	kubectl(t, "delete", "app.berth.dev/doomed", "--namespace="+ns)

	// In the first half minute after the CRD is installed this takes up to 30 s: the garbage collector learns of
	// new resources (here the owner's, Apps) at its periodic discovery resync.
	eventually(t, "the Deployment, Service, ReplicaSets and Pods of App doomed to be deleted", func(ctx context.Context) error {
		if _, err := kubeClient.AppsV1().Deployments(ns).Get(ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Deployment doomed: %v", errOrExists(err))
		}
		if _, err := kubeClient.CoreV1().Services(ns).Get(ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Service doomed: %v", errOrExists(err))
		}
		replicaSets, err := kubeClient.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: app.Status.Selector})
		if err != nil {
			return err
		}
		if n := len(replicaSets.Items); n != 0 {
			return fmt.Errorf("%d ReplicaSets left", n)
		}
		pods, err := appPods(ctx, app)
		if err != nil {
			return err
		}
		if n := len(pods); n != 0 {
			return fmt.Errorf("%d Pods left", n)
		}
		return nil
	})
}

func errOrExists(err error) error {
	if err == nil {
		return fmt.Errorf("still exists")
	}
	return err
}

// TestFailingPodsDegradeTheApp runs Apps whose Pods fail as kwok's failure Stages make them, expects the App to
// report it in its Degraded condition, and to recover once the image is fixed.
func TestFailingPodsDegradeTheApp(t *testing.T) {
	for _, tc := range []struct {
		image, reason string
	}{
		{crashLoopImage, "CrashLoopBackOff"},
		{imagePullsFailed, "ImagePullBackOff"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			ns := newNamespace(t)
			apply(t, ns, appManifest("failing", tc.image, 2, 0))

			eventually(t, "App failing to be Degraded with reason "+tc.reason, func(ctx context.Context) error {
				app, err := getApp(ctx, ns, "failing")
				if err != nil {
					return err
				}
				if err := hasCondition(app, berthv1alpha1.ConditionAvailable, metav1.ConditionFalse, "MinimumReplicasUnavailable"); err != nil {
					return err
				}
				return degradedNamingAPod(ctx, app, tc.reason)
			})
			eventually(t, "a Warning Event "+tc.reason+" about App failing", func(ctx context.Context) error {
				return hasEvent(ctx, ns, "failing", corev1.EventTypeWarning, tc.reason)
			})

			kubectl(t, "patch", "app.berth.dev/failing", "--namespace="+ns, "--type=merge",
				"--patch", `{"spec":{"image":"`+goodImage+`"}}`)
			waitAvailable(t, ns, "failing", 2)
			eventually(t, "a Normal Event Recovered about App failing", func(ctx context.Context) error {
				return hasEvent(ctx, ns, "failing", corev1.EventTypeNormal, "Recovered")
			})
		})
	}
}

// TestForeignDeploymentIsAConflict creates a Deployment with kubectl, then an App of the same name: berth must
// report the conflict and leave the Deployment alone, and take the name over once the Deployment is gone.
func TestForeignDeploymentIsAConflict(t *testing.T) {
	ns := newNamespace(t)
	kubectl(t, "create", "deployment", "taken", "--image=registry.k8s.io/pause:3.10", "--replicas=2", "--namespace="+ns)
	// Wait until kube-controller-manager is done with it, so that any later write is someone else's.
	var foreign *appsv1.Deployment
	eventually(t, "Deployment taken to settle", func(ctx context.Context) error {
		var err error
		if foreign, err = kubeClient.AppsV1().Deployments(ns).Get(ctx, "taken", metav1.GetOptions{}); err != nil {
			return err
		}
		return deploymentSettled(foreign)
	})

	apply(t, ns, appManifest("taken", goodImage, 1, 0))
	eventually(t, "App taken to be Degraded with reason ResourceConflict", func(ctx context.Context) error {
		app, err := getApp(ctx, ns, "taken")
		if err != nil {
			return err
		}
		if err := hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, "ResourceConflict"); err != nil {
			return err
		}
		if message := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded).Message; !strings.Contains(message, `Deployment "taken"`) {
			return fmt.Errorf("the Degraded message %q does not name the Deployment", message)
		}
		return nil
	})
	eventually(t, "a Warning Event ResourceConflict about App taken", func(ctx context.Context) error {
		return hasEvent(ctx, ns, "taken", corev1.EventTypeWarning, "ResourceConflict")
	})
	out := kubectl(t, "get", "events", "--namespace="+ns, "--field-selector=reason=ResourceConflict,involvedObject.kind=App")
	assert.Contains(t, out, "app/taken", "`kubectl get events` shows the conflict")

	after, err := kubeClient.AppsV1().Deployments(ns).Get(t.Context(), "taken", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, foreign.ResourceVersion, after.ResourceVersion, "the foreign Deployment is not written to")
	assert.Empty(t, after.OwnerReferences)
	for _, entry := range after.ManagedFields {
		assert.NotEqual(t, "berth", entry.Manager, "berth owns no field of the foreign Deployment")
	}

	kubectl(t, "delete", "deployment/taken", "--namespace="+ns)
	app := waitAvailable(t, ns, "taken", 1)
	d, err := kubeClient.AppsV1().Deployments(ns).Get(t.Context(), "taken", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, controlledBy(d, app), "once the foreign Deployment is gone, the App's own takes its name")
}

// deploymentSettled returns nil when the Deployment controller has nothing left to write to the Deployment.
func deploymentSettled(d *appsv1.Deployment) error {
	s := d.Status
	if s.ObservedGeneration != d.Generation || s.Replicas != *d.Spec.Replicas || s.UpdatedReplicas != s.Replicas ||
		s.ReadyReplicas != s.Replicas || s.AvailableReplicas != s.Replicas {
		return fmt.Errorf("Deployment %s is not settled: %+v", d.Name, s)
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "NewReplicaSetAvailable" {
			return nil
		}
	}
	return fmt.Errorf("Deployment %s has not completed its rollout: %+v", d.Name, s.Conditions)
}

// hasEvent returns nil when an Event of that type and reason is about the App (events.k8s.io/v1: regarding).
func hasEvent(ctx context.Context, namespace, app, eventType, reason string) error {
	events, err := kubeClient.EventsV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var seen []string
	for _, e := range events.Items {
		if e.Regarding.Kind != "App" || e.Regarding.Name != app {
			continue
		}
		if e.Type == eventType && e.Reason == reason {
			return nil
		}
		seen = append(seen, e.Type+"/"+e.Reason)
	}
	return fmt.Errorf("no %s Event %s about App %s; its Events: %v", eventType, reason, app, seen)
}

// TestPortRemovedDeletesTheService drops an App's port with kubectl: berth deletes its Service, and the
// container loses the port.
func TestPortRemovedDeletesTheService(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, appManifest("portless", goodImage, 1, 8080))
	waitAvailable(t, ns, "portless", 1)
	_, err := kubeClient.CoreV1().Services(ns).Get(t.Context(), "portless", metav1.GetOptions{})
	require.NoError(t, err)

	kubectl(t, "patch", "app.berth.dev/portless", "--namespace="+ns, "--type=json",
		`--patch=[{"op": "remove", "path": "/spec/port"}]`)

	eventually(t, "the Service to be deleted", func(ctx context.Context) error {
		_, err := kubeClient.CoreV1().Services(ns).Get(ctx, "portless", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errOrExists(err)
	})
	eventually(t, "the container to lose its port", func(ctx context.Context) error {
		d, err := kubeClient.AppsV1().Deployments(ns).Get(ctx, "portless", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if ports := d.Spec.Template.Spec.Containers[0].Ports; len(ports) > 0 {
			return fmt.Errorf("container ports: %v", ports)
		}
		return nil
	})
	eventually(t, "an Event about the deleted Service", func(ctx context.Context) error {
		return hasEvent(ctx, ns, "portless", corev1.EventTypeNormal, "Deleted")
	})
}
