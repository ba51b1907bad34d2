package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/plan"
)

// check reads the namespace from the API server and lists what keeps it from being converged, one line per
// problem; none means that berth has done all it should and nothing it should not:
//   - every App's status describes its current generation (observedGeneration, and that of its conditions), and
//     tells the truth about its Deployment: Available as the Deployment says, replicas and ready replicas as the
//     Deployment counts them, Progressing false once the rollout is complete, not Degraded;
//   - every App controls exactly one Deployment, named after it, with its image, replicas and port; and one
//     Service, named after it, with its port, if and only if it has a port;
//   - the Deployment's controller has seen its current spec, and, when available is set, reports it available
//     (kwok's Pods run). Its rollout need not be over, nor, without available, its Pods ready: that is the work
//     of kube-controller-manager, kube-scheduler and kwok, which berth only reports. (kwok v0.8.0 does not retry
//     a Pod's stage whose write failed: a Pod it was making ready when etcd went away stays Pending.);
//   - nothing berth labels as its own (Deployments, Services, and the ReplicaSets made from berth's Pod
//     template) lacks a live owner: no orphan;
//   - no object has both an Apply entry and an Update entry of berth's field manager: berth hands the fields of
//     its create to its apply before it first changes an object (see pkg/controller/ownership.go), so an object
//     with both is co-owned by a create-time entry that a later apply cannot take fields away from;
//   - no object that no App controls holds a field of berth's: berth touched nothing foreign.
func check(ctx context.Context, namespace string, available bool) ([]string, error) {
	apps, err := berthClient.BerthV1alpha1().Apps(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	deployments, err := kubeClient.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	services, err := kubeClient.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	replicaSets, err := kubeClient.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}

	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	liveApps := map[types.UID]bool{}
	for _, app := range apps.Items {
		liveApps[app.UID] = true
	}
	// What each App controls, by the App's UID; and the objects' own checks.
	deploymentsOf := map[types.UID][]*appsv1.Deployment{}
	for i := range deployments.Items {
		d := &deployments.Items[i]
		if owner := checkObject(d, "Deployment", liveApps, add); owner != "" {
			deploymentsOf[owner] = append(deploymentsOf[owner], d)
		}
	}
	servicesOf := map[types.UID][]*corev1.Service{}
	for i := range services.Items {
		s := &services.Items[i]
		if owner := checkObject(s, "Service", liveApps, add); owner != "" {
			servicesOf[owner] = append(servicesOf[owner], s)
		}
	}
	liveDeployments := map[types.UID]bool{}
	for _, d := range deployments.Items {
		liveDeployments[d.UID] = true
	}
	for _, rs := range replicaSets.Items {
		if rs.Labels[plan.LabelManagedBy] != plan.ManagedByBerth {
			continue
		}
		if ref := metav1.GetControllerOf(&rs); ref == nil || ref.Kind != "Deployment" || !liveDeployments[ref.UID] {
			add("ReplicaSet %s is berth's (by its label) but no live Deployment controls it: an orphan", rs.Name)
		}
	}

	for i := range apps.Items {
		app := &apps.Items[i]
		checkApp(app, deploymentsOf[app.UID], servicesOf[app.UID], available, add)
	}
	slices.Sort(problems)
	return problems, nil
}

// checkObject checks a Deployment or Service: it is not co-owned, not an orphan, and not foreign with berth's
// fields. It returns the UID of the live App that controls it, or "" when none does.
func checkObject(obj metav1.Object, kind string, liveApps map[types.UID]bool, add func(string, ...any)) types.UID {
	var apply, update, berthFields bool
	for _, entry := range obj.GetManagedFields() {
		if entry.Manager != controller.FieldManager {
			continue
		}
		berthFields = true
		if entry.Subresource == "" {
			apply = apply || entry.Operation == metav1.ManagedFieldsOperationApply
			update = update || entry.Operation == metav1.ManagedFieldsOperationUpdate
		}
	}
	if apply && update {
		add("%s %s is co-owned: berth holds both an Apply and an Update (create-time) entry in its managedFields",
			kind, obj.GetName())
	}
	ref := metav1.GetControllerOf(obj)
	controlledByApp := ref != nil && ref.Kind == "App" &&
		strings.HasPrefix(ref.APIVersion, berthv1alpha1.GroupVersion.Group+"/")
	switch {
	case controlledByApp && liveApps[ref.UID]:
		return ref.UID
	case controlledByApp || obj.GetLabels()[plan.LabelManagedBy] == plan.ManagedByBerth:
		add("%s %s is berth's but no live App controls it: an orphan", kind, obj.GetName())
	case berthFields:
		add("%s %s is not berth's, yet berth's field manager holds fields of it", kind, obj.GetName())
	}
	return ""
}

// checkApp checks one App against what it controls.
func checkApp(app *berthv1alpha1.App, deployments []*appsv1.Deployment, services []*corev1.Service,
	available bool, add func(string, ...any)) {
	name := app.Name
	if app.Status.ObservedGeneration != app.Generation {
		add("App %s: status.observedGeneration %d, generation %d", name, app.Status.ObservedGeneration, app.Generation)
	}
	for _, c := range app.Status.Conditions {
		if c.ObservedGeneration != app.Generation {
			add("App %s: condition %s describes generation %d, not %d", name, c.Type, c.ObservedGeneration, app.Generation)
		}
	}

	switch {
	case app.Spec.Port != nil && len(services) != 1:
		add("App %s has a port and controls %d Services, want 1", name, len(services))
	case app.Spec.Port == nil && len(services) != 0:
		add("App %s has no port and controls %d Services, want 0", name, len(services))
	case len(services) == 1:
		s := services[0]
		if s.Name != name {
			add("App %s controls Service %s, of another name", name, s.Name)
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != *app.Spec.Port {
			add("App %s: Service ports %v, want port %d", name, s.Spec.Ports, *app.Spec.Port)
		}
	}

	if len(deployments) != 1 {
		add("App %s controls %d Deployments, want 1", name, len(deployments))
		return
	}
	d := deployments[0]
	if d.Name != name {
		add("App %s controls Deployment %s, of another name", name, d.Name)
	}
	replicas := ptr.Deref(app.Spec.Replicas, 1)
	if got := ptr.Deref(d.Spec.Replicas, 1); got != replicas {
		add("App %s: Deployment replicas %d, want %d", name, got, replicas)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		add("App %s: Deployment has %d containers, want 1", name, len(d.Spec.Template.Spec.Containers))
		return
	}
	container := d.Spec.Template.Spec.Containers[0]
	if container.Image != app.Spec.Image {
		add("App %s: Deployment image %s, want %s", name, container.Image, app.Spec.Image)
	}
	switch {
	case app.Spec.Port == nil && len(container.Ports) != 0:
		add("App %s has no port, its Deployment's container has ports %v", name, container.Ports)
	case app.Spec.Port != nil && (len(container.Ports) != 1 || container.Ports[0].ContainerPort != *app.Spec.Port):
		add("App %s: container ports %v, want port %d", name, container.Ports, *app.Spec.Port)
	}

	// The Deployment's status describes its spec, so that the App's status can be held to it.
	if d.Status.ObservedGeneration != d.Generation {
		add("App %s: Deployment's status describes generation %d of %d", name, d.Status.ObservedGeneration,
			d.Generation)
	}
	rolledOut := d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == replicas &&
		d.Status.Replicas == replicas && d.Status.AvailableReplicas == replicas
	deploymentAvailable := corev1.ConditionUnknown
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			deploymentAvailable = c.Status
		}
	}
	if available && deploymentAvailable != corev1.ConditionTrue {
		add("App %s: Deployment Available=%s", name, deploymentAvailable)
	}
	if got := conditionStatus(app, berthv1alpha1.ConditionAvailable); got != string(deploymentAvailable) {
		add("App %s: Available=%s, its Deployment's Available=%s", name, got, deploymentAvailable)
	}
	if got := conditionStatus(app, berthv1alpha1.ConditionProgressing); rolledOut && got != string(metav1.ConditionFalse) {
		add("App %s: Progressing=%s, its Deployment has rolled out", name, got)
	}
	if got := conditionStatus(app, berthv1alpha1.ConditionDegraded); got != string(metav1.ConditionFalse) {
		add("App %s: Degraded=%s, want False", name, got)
	}
	if app.Status.Replicas != d.Status.Replicas || app.Status.ReadyReplicas != d.Status.ReadyReplicas {
		add("App %s: status replicas %d, ready %d; its Deployment's %d, ready %d", name, app.Status.Replicas,
			app.Status.ReadyReplicas, d.Status.Replicas, d.Status.ReadyReplicas)
	}
}

// conditionStatus is the status of the App's condition of type conditionType, "(none)" when it has none.
func conditionStatus(app *berthv1alpha1.App, conditionType string) string {
	if c := meta.FindStatusCondition(app.Status.Conditions, conditionType); c != nil {
		return string(c.Status)
	}
	return "(none)"
}

// waitConverged polls check (with available as check takes it) until it finds nothing wrong, and returns how long
// that took. It fails the test at once when alive returns an error (a berth that should run has exited), and
// after -chaos.timeout with what is still wrong, App by App.
func waitConverged(t *testing.T, namespace string, available bool, alive func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(*timeout)
	for {
		if err := alive(); err != nil {
			t.Fatalf("waiting for the Apps of %s to converge: %v", namespace, err)
		}
		problems, err := check(t.Context(), namespace, available)
		if err == nil && len(problems) == 0 {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("the Apps of %s have not converged after %s: %v", namespace, *timeout, err)
			}
			shown := problems
			if len(shown) > 60 {
				shown = shown[:60]
			}
			t.Fatalf("the Apps of %s have not converged after %s; %d problems, the first %d:\n%s\n%s", namespace,
				*timeout, len(problems), len(shown), strings.Join(shown, "\n"), podsNotReady(namespace))
		}
		sleep(t, time.Second)
	}
}

// podsNotReady describes the Pods of namespace that are not Ready, for a test that failed: a rollout that does
// not end may be stuck on a Pod that was not scheduled (kube-scheduler) or not started (kwok).
func podsNotReady(namespace string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := kubeClient.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("(listing the Pods: %v)", err)
	}
	var lines []string
	for _, pod := range pods.Items {
		ready := false
		for _, c := range pod.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if !ready {
			lines = append(lines, fmt.Sprintf("Pod %s not Ready: phase %s, node %q, created %s, conditions %v",
				pod.Name, pod.Status.Phase, pod.Spec.NodeName, pod.CreationTimestamp.Format(time.RFC3339),
				pod.Status.Conditions))
		}
	}
	return fmt.Sprintf("%d of %d Pods not Ready:\n%s", len(lines), len(pods.Items), strings.Join(lines, "\n"))
}
