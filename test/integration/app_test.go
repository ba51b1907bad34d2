package integration

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/plan"
)

func app(name string, mutate ...func(*berthv1alpha1.App)) *berthv1alpha1.App {
	a := &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: berthv1alpha1.AppSpec{
			Image: "nginx:1.27",
			Port:  ptr.To[int32](8080),
			Env:   []berthv1alpha1.EnvVar{{Name: "MODE", Value: "prod"}},
		},
	}
	for _, m := range mutate {
		m(a)
	}
	return a
}

func (e *env) createApp(a *berthv1alpha1.App) *berthv1alpha1.App {
	e.t.Helper()
	created, err := e.berth.BerthV1alpha1().Apps(e.namespace).Create(e.ctx, a, metav1.CreateOptions{})
	require.NoError(e.t, err)
	return created
}

func (e *env) getApp(name string) *berthv1alpha1.App {
	e.t.Helper()
	a, err := e.berth.BerthV1alpha1().Apps(e.namespace).Get(e.ctx, name, metav1.GetOptions{})
	require.NoError(e.t, err)
	return a
}

func (e *env) getDeployment(name string) (*appsv1.Deployment, error) {
	return e.kube.AppsV1().Deployments(e.namespace).Get(e.ctx, name, metav1.GetOptions{})
}

// waitConverged waits until berth has synced the App's current generation and made its Deployment as the App says.
func (e *env) waitConverged(name string) (*berthv1alpha1.App, *appsv1.Deployment) {
	e.t.Helper()
	var a *berthv1alpha1.App
	var d *appsv1.Deployment
	e.eventually("App "+name+" to converge", func(ctx context.Context) (bool, error) {
		var err error
		a, err = e.berth.BerthV1alpha1().Apps(e.namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		d, err = e.getDeployment(name)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return a.Status.ObservedGeneration == a.Generation && writtenByBerth(d) &&
			d.Spec.Template.Spec.Containers[0].Image == a.Spec.Image &&
			*d.Spec.Replicas == *a.Spec.Replicas, nil
	})
	return a, d
}

// writtenByBerth tells whether berth owns fields of obj, as their creator or through server-side apply.
func writtenByBerth(obj metav1.Object) bool {
	for _, e := range obj.GetManagedFields() {
		if e.Manager == controller.FieldManager {
			return true
		}
	}
	return false
}

// appliedByBerth tells whether berth owns fields of obj through server-side apply.
func appliedByBerth(obj metav1.Object) bool {
	for _, e := range obj.GetManagedFields() {
		if e.Manager == controller.FieldManager && e.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func TestCreateMakesDeploymentServiceAndStatus(t *testing.T) {
	e := newEnv(t)
	e.startController()
	created := e.createApp(app("web"))

	a, d := e.waitConverged("web")

	assert.Equal(t, int32(1), *a.Spec.Replicas, "the CRD defaults replicas to 1")
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "nginx:1.27", c.Image)
	assert.Equal(t, []corev1.EnvVar{{Name: "MODE", Value: "prod"}}, c.Env)
	assert.Equal(t, int32(8080), c.Ports[0].ContainerPort)
	assert.Equal(t, "berth", d.Labels["app.kubernetes.io/managed-by"])
	ref := metav1.GetControllerOf(d)
	require.NotNil(t, ref)
	assert.Equal(t, created.UID, ref.UID)

	s, err := e.kube.CoreV1().Services(e.namespace).Get(e.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(8080), s.Spec.Ports[0].Port)
	assert.Equal(t, map[string]string{"app.kubernetes.io/instance": "web", "app.kubernetes.io/managed-by": "berth"},
		s.Spec.Selector)
	assert.Equal(t, created.UID, metav1.GetControllerOf(s).UID)

	assert.Equal(t, "app.kubernetes.io/instance=web,app.kubernetes.io/managed-by=berth", a.Status.Selector)
	assert.Equal(t, fmt.Sprintf("http://web.%s.svc.cluster.local:8080", e.namespace), a.Status.URL)
	assert.Equal(t, "0/1", a.Status.Ready, "no kube-controller-manager here: no Pods")
	for _, conditionType := range []string{berthv1alpha1.ConditionAvailable, berthv1alpha1.ConditionProgressing,
		berthv1alpha1.ConditionDegraded} {
		c := meta.FindStatusCondition(a.Status.Conditions, conditionType)
		require.NotNil(t, c, conditionType)
		assert.Equal(t, a.Generation, c.ObservedGeneration)
	}
	assert.True(t, meta.IsStatusConditionFalse(a.Status.Conditions, berthv1alpha1.ConditionDegraded))
	assert.True(t, appliedByBerth(a), "status is written with server-side apply")
}

func TestScaleSubresource(t *testing.T) {
	e := newEnv(t)
	e.startController()
	e.createApp(app("web"))
	e.waitConverged("web")

	scale, err := e.berth.BerthV1alpha1().Apps(e.namespace).GetScale(e.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(1), scale.Spec.Replicas)
	assert.Equal(t, "app.kubernetes.io/instance=web,app.kubernetes.io/managed-by=berth", scale.Status.Selector)

	scale.Spec.Replicas = 5
	_, err = e.berth.BerthV1alpha1().Apps(e.namespace).UpdateScale(e.ctx, "web", scale, metav1.UpdateOptions{})
	require.NoError(t, err)

	a, d := e.waitConverged("web")
	assert.Equal(t, int32(5), *a.Spec.Replicas)
	assert.Equal(t, int32(5), *d.Spec.Replicas)
}

func TestDriftIsCorrectedAndOtherManagersFieldsSurvive(t *testing.T) {
	e := newEnv(t)
	e.startController()
	e.createApp(app("web"))
	_, d := e.waitConverged("web")

	// Someone edits the Deployment by hand, as `kubectl edit` would: a wrong image and replica count, and an
	// annotation of their own.
	d.Spec.Template.Spec.Containers[0].Image = "evil:latest"
	d.Spec.Replicas = ptr.To[int32](9)
	d.Annotations = map[string]string{"example.com/team": "shop"}
	_, err := e.kube.AppsV1().Deployments(e.namespace).Update(e.ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)

	e.eventually("berth to undo the drift", func(context.Context) (bool, error) {
		d, err := e.getDeployment("web")
		if err != nil {
			return false, err
		}
		return d.Spec.Template.Spec.Containers[0].Image == "nginx:1.27" && *d.Spec.Replicas == 1, nil
	})
	d, err = e.getDeployment("web")
	require.NoError(t, err)
	assert.Equal(t, "shop", d.Annotations["example.com/team"], "the other manager's annotation survives")
}

func TestForeignObjectsAreNeverModified(t *testing.T) {
	e := newEnv(t)
	e.startController()
	foreign, err := e.kube.AppsV1().Deployments(e.namespace).Create(e.ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"owner": "someone-else"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"owner": "someone-else"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"owner": "someone-else"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "theirs", Image: "theirs:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	created := e.createApp(app("web"))

	e.eventually("the App to report the conflict", func(ctx context.Context) (bool, error) {
		a := e.getApp("web")
		c := meta.FindStatusCondition(a.Status.Conditions, berthv1alpha1.ConditionDegraded)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == plan.ReasonResourceConflict, nil
	})
	a := e.getApp("web")
	assert.Contains(t, meta.FindStatusCondition(a.Status.Conditions, berthv1alpha1.ConditionDegraded).Message,
		`Deployment "web" exists and is not controlled by this App`)
	e.eventually("a Warning Event about the conflict", func(ctx context.Context) (bool, error) {
		events, err := e.kube.EventsV1().Events(e.namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range events.Items {
			if ev.Regarding.UID == created.UID && ev.Type == corev1.EventTypeWarning &&
				ev.Reason == plan.ReasonResourceConflict && ev.ReportingController == "berth" {
				return true, nil
			}
		}
		return false, nil
	})
	// The Service of the App's name is not in the way: berth makes no Service while its Deployment is blocked.
	now, err := e.getDeployment("web")
	require.NoError(t, err)
	assert.Equal(t, foreign.ResourceVersion, now.ResourceVersion, "the foreign Deployment was never written")
	assert.Empty(t, now.OwnerReferences)

	// Once the foreign Deployment is gone, the App proceeds without any change of its own.
	require.NoError(t, e.kube.AppsV1().Deployments(e.namespace).Delete(e.ctx, "web", metav1.DeleteOptions{}))
	e.eventually("berth to create its own Deployment", func(ctx context.Context) (bool, error) {
		d, err := e.getDeployment("web")
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		ref := metav1.GetControllerOf(d)
		return ref != nil && ref.UID == created.UID, nil
	})
	e.eventually("the conflict to clear", func(ctx context.Context) (bool, error) {
		return meta.IsStatusConditionFalse(e.getApp("web").Status.Conditions, berthv1alpha1.ConditionDegraded), nil
	})
}

func TestForeignServiceIsNeverModified(t *testing.T) {
	e := newEnv(t)
	e.startController()
	foreign, err := e.kube.CoreV1().Services(e.namespace).Create(e.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 9999}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	e.createApp(app("web"))

	e.eventually("the App to report the conflict", func(ctx context.Context) (bool, error) {
		c := meta.FindStatusCondition(e.getApp("web").Status.Conditions, berthv1alpha1.ConditionDegraded)
		return c != nil && c.Reason == plan.ReasonResourceConflict, nil
	})
	s, err := e.kube.CoreV1().Services(e.namespace).Get(e.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, foreign.ResourceVersion, s.ResourceVersion, "the foreign Service was never written")
}

func TestImageChangeUpdatesDeployment(t *testing.T) {
	e := newEnv(t)
	e.startController()
	e.createApp(app("web"))
	a, _ := e.waitConverged("web")

	a.Spec.Image = "nginx:1.28"
	_, err := e.berth.BerthV1alpha1().Apps(e.namespace).Update(e.ctx, a, metav1.UpdateOptions{})
	require.NoError(t, err)

	_, d := e.waitConverged("web")
	assert.Equal(t, "nginx:1.28", d.Spec.Template.Spec.Containers[0].Image)
}

func TestPortRemovedDeletesService(t *testing.T) {
	e := newEnv(t)
	e.startController()
	e.createApp(app("web"))
	a, _ := e.waitConverged("web")
	_, err := e.kube.CoreV1().Services(e.namespace).Get(e.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)

	// A JSON merge patch with null removes the field (an Update would keep it, as omitempty drops nil).
	_, err = e.berth.BerthV1alpha1().Apps(e.namespace).Patch(e.ctx, a.Name, types.MergePatchType,
		[]byte(`{"spec":{"port":null}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	e.eventually("the Service to be deleted", func(ctx context.Context) (bool, error) {
		_, err := e.kube.CoreV1().Services(e.namespace).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	a, d := e.waitConverged("web")
	assert.Empty(t, d.Spec.Template.Spec.Containers[0].Ports, "the container port goes too: %+v", d.ManagedFields)
	assert.Empty(t, a.Status.URL)
}

func TestRestartedControllerMakesNoWritesForConvergedApps(t *testing.T) {
	e := newEnv(t)
	first := e.startController()
	const apps = 5
	for i := range apps {
		e.createApp(app(fmt.Sprintf("web-%d", i)))
	}
	for i := range apps {
		e.waitConverged(fmt.Sprintf("web-%d", i))
	}
	first.stop()
	require.Positive(t, first.writes.n.Load(), "the first controller did the work")

	second := e.startController()
	// Its caches have synced before its workers start, with every App queued once: its first syncs are one per
	// App, each of which compares the App with its objects.
	e.eventually("the restarted controller to sync every App", func(context.Context) (bool, error) {
		return second.syncs.count(controller.ResultSuccess) >= apps, nil
	})
	second.stop() // which writes the Events recorded so far
	assert.Empty(t, second.writes.list(), "a converged App needs no write, not even an Event")
}

// TestCreatingAnAppWritesEachThingOnce counts berth's writes for one new App. The sync that berth's own writes
// trigger must not act on a cache that has not seen them (a second create, a second status with a new
// transition time): each object is created once and the status written once. The watch of Deployments is held
// back from berth's create until berth has synced the App again (brought by its status write), so that this
// sync reads a cache without the Deployment.
func TestCreatingAnAppWritesEachThingOnce(t *testing.T) {
	e := newEnv(t)
	var started atomic.Pointer[running]
	deployments := "/apis/apps/v1/namespaces/" + e.namespace + "/deployments"
	held := holdWatch(deployments, func(req *http.Request) bool {
		return req.Method == http.MethodPost && req.URL.Path == deployments
	}, e.untilSynced(&started, 2))
	r := e.startController(held.hook)
	started.Store(r)
	e.createApp(app("web"))
	e.waitConverged("web")
	e.eventually("the event of berth's create, held back until berth synced the App again",
		func(context.Context) (bool, error) { return held.released.Load() > 0, nil })
	// The second sync found the cache behind and comes back; a third reads the cache with every write of berth's
	// in it, and compares the App with what berth created.
	e.eventually("berth to sync the App with its writes in the cache", func(context.Context) (bool, error) {
		return r.syncs.total() >= 3, nil
	})
	r.stop() // which writes the Events recorded so far

	counts := map[string]int{}
	for _, w := range r.writes.list() {
		counts[w]++
	}
	ns := e.namespace
	want := map[string]int{
		// One write per object: created as the App wants it, and not applied after (see ownership.go).
		"POST /apis/apps/v1/namespaces/" + ns + "/deployments":                 1,
		"POST /api/v1/namespaces/" + ns + "/services":                          1,
		"PATCH /apis/berth.dev/v1alpha1/namespaces/" + ns + "/apps/web/status": 1,
		// Created Deployment, Created Service.
		"POST /api/v1/namespaces/" + ns + "/events": 2,
	}
	assert.Equal(t, want, counts, "all writes: %v", r.writes.list())
}

// berth creates an object with one write, and its fields are then owned by berth's create (an Update entry), not
// by an apply. The first change must not leave behind what the App no longer asks for.
func TestChangingWhatBerthCreatedLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	e.startController()
	e.createApp(app("web", func(a *berthv1alpha1.App) {
		a.Spec.Env = append(a.Spec.Env, berthv1alpha1.EnvVar{Name: "DEBUG", Value: "1"})
		a.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: "/healthz"}
	}))
	a, created := e.waitConverged("web")
	require.Contains(t, created.Annotations, controller.AnnotationCreatedFrom, "still as berth created it")
	require.False(t, appliedByBerth(created))

	a.Spec.Env = a.Spec.Env[:1]
	a.Spec.HealthCheck = nil
	_, err := e.berth.BerthV1alpha1().Apps(e.namespace).Update(e.ctx, a, metav1.UpdateOptions{})
	require.NoError(t, err)

	var d *appsv1.Deployment
	e.eventually("the Deployment to lose what the App no longer sets", func(ctx context.Context) (bool, error) {
		var err error
		d, err = e.getDeployment("web")
		if err != nil {
			return false, err
		}
		return len(d.Spec.Template.Spec.Containers[0].Env) == 1, nil
	})
	assert.Equal(t, []corev1.EnvVar{{Name: "MODE", Value: "prod"}}, d.Spec.Template.Spec.Containers[0].Env)
	assert.Nil(t, d.Spec.Template.Spec.Containers[0].ReadinessProbe)
	assert.NotContains(t, d.Annotations, controller.AnnotationCreatedFrom)
	for _, entry := range d.ManagedFields {
		if entry.Manager == controller.FieldManager {
			assert.Equal(t, metav1.ManagedFieldsOperationApply, entry.Operation, "berth's create entry is gone")
		}
	}
}
