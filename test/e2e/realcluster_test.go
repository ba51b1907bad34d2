package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// The tests of this file put berth where production clusters put it: behind a ResourceQuota, and in namespaces
// where Pod Security admission enforces a standard.

// podSecurity labels a namespace so that Pod Security admission enforces level (restricted, baseline) there, at
// the cluster's own version of the standard.
func podSecurity(level string) map[string]string {
	return map[string]string{
		"pod-security.kubernetes.io/enforce":         level,
		"pod-security.kubernetes.io/enforce-version": "latest",
	}
}

// TestPodsThatAreNeverCreatedDegradeTheApp runs an App whose Pods a ResourceQuota refuses: the Deployment exists
// but its ReplicaSet cannot create a single Pod, and the App must say so at once, with the ReplicaSet's message,
// rather than wait for the progress deadline. Once the quota is gone, the App runs.
func TestPodsThatAreNeverCreatedDegradeTheApp(t *testing.T) {
	ns := newNamespace(t)
	_, err := kubeClient.CoreV1().ResourceQuotas(ns).Create(t.Context(), &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// Until kube-controller-manager has counted the quota's usage, admission refuses Pods with "status unknown for
	// quota" rather than "exceeded quota", the refusal that users meet.
	eventually(t, "kube-controller-manager to fill in the status of ResourceQuota no-pods", func(ctx context.Context) error {
		q, err := kubeClient.CoreV1().ResourceQuotas(ns).Get(ctx, "no-pods", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := q.Status.Hard[corev1.ResourcePods]; !ok {
			return fmt.Errorf("status.hard is %v", q.Status.Hard)
		}
		return nil
	})

	apply(t, ns, appManifest("unadmitted", goodImage, 2, 0))

	eventually(t, "App unadmitted to be Degraded with reason FailedCreate and the ReplicaSet's message", func(ctx context.Context) error {
		app, err := getApp(ctx, ns, "unadmitted")
		if err != nil {
			return err
		}
		if err := hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, "FailedCreate"); err != nil {
			return err
		}
		message := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded).Message
		if !strings.Contains(message, "exceeded quota") {
			return fmt.Errorf("the Degraded message %q does not say that the quota is exceeded", message)
		}
		failure, err := replicaFailure(ctx, app)
		if err != nil {
			return err
		}
		if !strings.Contains(message, failure) {
			return fmt.Errorf("the Degraded message %q does not hold the ReplicaSet's %q", message, failure)
		}
		return nil
	})
	eventually(t, "a Warning Event FailedCreate about App unadmitted", func(ctx context.Context) error {
		return hasEvent(ctx, ns, "unadmitted", corev1.EventTypeWarning, "FailedCreate")
	})

	kubectl(t, "delete", "resourcequota/no-pods", "--namespace="+ns)
	app := waitAvailable(t, ns, "unadmitted", 2)
	waitPodsRunning(t, app, 2)
}

// replicaFailure is the message of the ReplicaFailure condition of one of the App's ReplicaSets: why its Pods
// could not be created.
func replicaFailure(ctx context.Context, app *berthv1alpha1.App) (string, error) {
	if app.Status.Selector == "" {
		return "", fmt.Errorf("App %s has no status.selector", app.Name)
	}
	replicaSets, err := kubeClient.AppsV1().ReplicaSets(app.Namespace).List(ctx, metav1.ListOptions{LabelSelector: app.Status.Selector})
	if err != nil {
		return "", err
	}
	for _, rs := range replicaSets.Items {
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
				return c.Message, nil
			}
		}
	}
	return "", fmt.Errorf("no ReplicaSet of App %s has a ReplicaFailure condition", app.Name)
}

// TestRestrictedNamespace runs Apps where Pod Security admission enforces the restricted standard, as many
// production clusters do: berth's Pods must be admitted there as berth makes them, an image that cannot run under
// those settings must degrade the App with the kubelet's reason, and an App may opt out where the namespace
// allows it.
func TestRestrictedNamespace(t *testing.T) {
	t.Run("an App's Pods are admitted and run", func(t *testing.T) {
		ns := newLabelledNamespace(t, podSecurity("restricted"))
		apply(t, ns, appManifest("web", goodImage, 2, 8080))

		d := waitDeployment(t, ns, "web")
		assert.Empty(t, restrictedSettingsMissing(d.Spec.Template.Spec),
			"the Pod template of Deployment web has what the restricted standard (and berth's defaults) want")
		app := waitAvailable(t, ns, "web", 2)
		waitPodsRunning(t, app, 2)
	})

	t.Run("an image that runs as root degrades the App", func(t *testing.T) {
		ns := newLabelledNamespace(t, podSecurity("restricted"))
		apply(t, ns, appManifest("rooted", runsAsRootImage, 2, 0))

		eventually(t, "App rooted to be Degraded with reason CreateContainerConfigError", func(ctx context.Context) error {
			app, err := getApp(ctx, ns, "rooted")
			if err != nil {
				return err
			}
			if err := hasCondition(app, berthv1alpha1.ConditionAvailable, metav1.ConditionFalse, "MinimumReplicasUnavailable"); err != nil {
				return err
			}
			return degradedNamingAPod(ctx, app, "CreateContainerConfigError")
		})
		eventually(t, "a Warning Event CreateContainerConfigError about App rooted", func(ctx context.Context) error {
			return hasEvent(ctx, ns, "rooted", corev1.EventTypeWarning, "CreateContainerConfigError")
		})

		kubectl(t, "patch", "app.berth.dev/rooted", "--namespace="+ns, "--type=merge",
			"--patch", `{"spec":{"image":"`+goodImage+`"}}`)
		waitAvailable(t, ns, "rooted", 2)
	})

	t.Run("spec.runAsRoot opts out where the namespace allows it", func(t *testing.T) {
		ns := newLabelledNamespace(t, podSecurity("baseline"))
		// An image that runs as root, which kwok's "kubelet" starts only when nothing asks for non-root.
		apply(t, ns, appManifest("rooted", runsAsRootImage, 2, 0)+"  runAsRoot: true\n")

		d := waitDeployment(t, ns, "rooted")
		spec := d.Spec.Template.Spec
		for _, c := range spec.Containers {
			assert.False(t, runAsNonRoot(spec.SecurityContext, c.SecurityContext),
				"container %s of an App with runAsRoot is not made to run as non-root: %+v, %+v", c.Name,
				spec.SecurityContext, c.SecurityContext)
			if c.SecurityContext != nil && c.SecurityContext.Capabilities != nil {
				assert.NotContains(t, c.SecurityContext.Capabilities.Drop, corev1.Capability("ALL"),
					"container %s of an App with runAsRoot keeps the capabilities that root is given", c.Name)
			}
		}
		app := waitAvailable(t, ns, "rooted", 2)
		waitPodsRunning(t, app, 2)
	})
}

// TestExampleAppsRunInARestrictedNamespace applies the App of artifacts/examples where the restricted standard is
// enforced: the examples must work as written on such a cluster.
func TestExampleAppsRunInARestrictedNamespace(t *testing.T) {
	ns := newLabelledNamespace(t, podSecurity("restricted"))
	apply(t, ns, exampleApp(t, ns))

	app := waitAvailable(t, ns, "web", 3)
	waitPodsRunning(t, app, 3)
}

// TestKwokRefusesRootImagesThatMustRunAsNonRoot checks the local cluster rather than berth: kwok's Stage
// pod-runs-as-root (hack/kube/kwok-config.yaml) must refuse runsAsRootImage exactly where the kubelet would, and a
// Pod with the settings that restrictedSettingsMissing asks for must pass Pod Security admission of the restricted
// standard, so that the expectations of TestRestrictedNamespace hold on this cluster and its failures say
// something about berth.
func TestKwokRefusesRootImagesThatMustRunAsNonRoot(t *testing.T) {
	plain := newNamespace(t)
	restricted := newLabelledNamespace(t, podSecurity("restricted"))
	restrictedSpec := func(image string) corev1.PodSpec {
		return corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{Name: "app", Image: image, SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}}},
		}
	}
	plainSpec := func(image string, pod *corev1.PodSecurityContext, container *corev1.SecurityContext) corev1.PodSpec {
		return corev1.PodSpec{
			SecurityContext: pod,
			Containers:      []corev1.Container{{Name: "app", Image: image, SecurityContext: container}},
		}
	}
	nonRoot := &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
	cases := []struct {
		namespace, name string
		spec            corev1.PodSpec
		refused         bool
	}{
		{plain, "nonroot-pod", plainSpec(runsAsRootImage, nonRoot, nil), true},
		{plain, "nonroot-container", plainSpec(runsAsRootImage, nil, &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}), true},
		{restricted, "restricted-root-image", restrictedSpec(runsAsRootImage), true},
		{plain, "root-allowed", plainSpec(runsAsRootImage, nil, nil), false},
		{plain, "container-overrides-pod", plainSpec(runsAsRootImage, nonRoot, &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}), false},
		{plain, "runs-as-user", plainSpec(runsAsRootImage, &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000)}, nil), false},
		{plain, "other-image", plainSpec(goodImage, nonRoot, nil), false},
		{restricted, "restricted-other-image", restrictedSpec(goodImage), false},
	}
	require.Empty(t, restrictedSettingsMissing(restrictedSpec(goodImage)), "the restricted Pods here have what the tests want")
	for _, c := range cases {
		_, err := kubeClient.CoreV1().Pods(c.namespace).Create(t.Context(), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: c.name},
			Spec:       c.spec,
		}, metav1.CreateOptions{})
		require.NoError(t, err, "creating Pod %s/%s", c.namespace, c.name)
	}

	// Checked in one look: the Pods that run show that kwok has played its Stages on these Pods, and a refused
	// Pod that pod-ready did not leave alone would be Running by then rather than Pending.
	eventually(t, "kwok to run or refuse each Pod as the kubelet would", func(ctx context.Context) error {
		var errs []error
		for _, c := range cases {
			p, err := kubeClient.CoreV1().Pods(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !c.refused {
				if err := runningOnKwok(ctx, []corev1.Pod{*p}, 1); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			var waiting *corev1.ContainerStateWaiting
			for _, cs := range p.Status.ContainerStatuses {
				waiting = cs.State.Waiting
			}
			prefix := fmt.Sprintf("container has runAsNonRoot and image will run as root (pod: \"%s_%s(", p.Name, p.Namespace)
			switch {
			case p.Status.Phase != corev1.PodPending:
				errs = append(errs, fmt.Errorf("Pod %s is %s, want Pending", p.Name, p.Status.Phase))
			case waiting == nil || waiting.Reason != "CreateContainerConfigError":
				errs = append(errs, fmt.Errorf("Pod %s: container status %+v", p.Name, p.Status.ContainerStatuses))
			case !strings.HasPrefix(waiting.Message, prefix):
				errs = append(errs, fmt.Errorf("Pod %s: waiting message %q", p.Name, waiting.Message))
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					errs = append(errs, fmt.Errorf("Pod %s is Ready", p.Name))
				}
			}
		}
		return errors.Join(errs...)
	})
}

// waitDeployment waits until the App's Deployment exists, and returns it.
func waitDeployment(t *testing.T, namespace, name string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	eventually(t, "Deployment "+name+" to exist", func(ctx context.Context) error {
		var err error
		d, err = kubeClient.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	return d
}

// restrictedSettingsMissing lists what a Pod template lacks of the settings the restricted Pod Security Standard
// requires (runAsNonRoot, no privilege escalation, all capabilities dropped, a seccomp profile), which berth sets
// by default, and of automountServiceAccountToken: false, which berth also sets since an App's Pods do not call
// the API server. A setting may be the Pod's or the container's, as Pod Security admission and the kubelet read
// them.
func restrictedSettingsMissing(spec corev1.PodSpec) []string {
	var missing []string
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		missing = append(missing, "automountServiceAccountToken is not false")
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		if !runAsNonRoot(spec.SecurityContext, sc) {
			missing = append(missing, fmt.Sprintf("container %s: runAsNonRoot is not true", c.Name))
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			missing = append(missing, fmt.Sprintf("container %s: allowPrivilegeEscalation is not false", c.Name))
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			missing = append(missing, fmt.Sprintf("container %s: capabilities.drop lacks ALL", c.Name))
		}
		if p := seccompProfile(spec.SecurityContext, sc); p == nil || p.Type != corev1.SeccompProfileTypeRuntimeDefault {
			missing = append(missing, fmt.Sprintf("container %s: seccompProfile is not RuntimeDefault: %+v", c.Name, p))
		}
	}
	return missing
}

// runAsNonRoot is the container's runAsNonRoot if it sets one, else the Pod's.
func runAsNonRoot(pod *corev1.PodSecurityContext, container *corev1.SecurityContext) bool {
	if container != nil && container.RunAsNonRoot != nil {
		return *container.RunAsNonRoot
	}
	return pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
}

// seccompProfile is the container's seccomp profile if it sets one, else the Pod's.
func seccompProfile(pod *corev1.PodSecurityContext, container *corev1.SecurityContext) *corev1.SeccompProfile {
	if container != nil && container.SeccompProfile != nil {
		return container.SeccompProfile
	}
	if pod != nil {
		return pod.SeccompProfile
	}
	return nil
}
