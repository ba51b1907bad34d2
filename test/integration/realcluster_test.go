package integration

// Tests of what a real cluster does that a clean local one does not: quotas and admission policies that refuse
// berth's writes, updates the API server rejects, other writers acting in the middle of a sync, conflicts, a
// deleted and recreated App, and other managers' conditions. Where the world must change at one exact point of a
// sync, a hook (see startController) makes it change there, on the real API server.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	berthv1alpha1ac "github.com/berthdev/berth/pkg/generated/applyconfiguration/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
)

// waitCondition waits until the App's status describes its current generation with the condition in that status
// and reason, and returns the App.
func (e *env) waitCondition(name, conditionType string, status metav1.ConditionStatus, reason string) *berthv1alpha1.App {
	e.t.Helper()
	var a *berthv1alpha1.App
	var last string
	err := pollUntil(e.ctx, func(ctx context.Context) (bool, error) {
		var err error
		if a, err = e.berth.BerthV1alpha1().Apps(e.namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(a.Status.Conditions, conditionType)
		if c == nil {
			last = fmt.Sprintf("no %s condition; conditions: %+v", conditionType, a.Status.Conditions)
			return false, nil
		}
		last = fmt.Sprintf("%s is %s/%s (%q), observedGeneration %d of %d", conditionType, c.Status, c.Reason,
			c.Message, a.Status.ObservedGeneration, a.Generation)
		return a.Status.ObservedGeneration == a.Generation && c.Status == status && c.Reason == reason, nil
	})
	require.NoError(e.t, err, "waiting for App %s to be %s=%s with reason %s; last seen: %s", name, conditionType,
		status, reason, last)
	return a
}

func pollUntil(ctx context.Context, condition func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		done, err := condition(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// condition returns the App's condition of that type, failing the test when there is none.
func condition(t *testing.T, a *berthv1alpha1.App, conditionType string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(a.Status.Conditions, conditionType)
	require.NotNil(t, c, "App %s has no %s condition: %+v", a.Name, conditionType, a.Status.Conditions)
	return *c
}

// eventsAbout counts the Events of that type and reason about the App, each as often as it happened. berth's
// Events are core/v1 Events, and the recorder writes a repeat of one as a raise of its count: events.k8s.io/v1
// shows that count only as deprecatedCount, and leaves series empty, so it is read here from the core/v1 Event.
func (e *env) eventsAbout(a *berthv1alpha1.App, eventType, reason string) int {
	e.t.Helper()
	events, err := e.kube.CoreV1().Events(e.namespace).List(e.ctx, metav1.ListOptions{})
	require.NoError(e.t, err)
	n := 0
	for _, ev := range events.Items {
		if ev.InvolvedObject.UID != a.UID || ev.Type != eventType || ev.Reason != reason {
			continue
		}
		// The recorder sets count from the first occurrence on: without it, repeats could not be counted.
		require.Positive(e.t, ev.Count, "Event %s (%s %s) has no count, so its repeats cannot be read", ev.Name,
			ev.Type, ev.Reason)
		n += int(ev.Count)
	}
	return n
}

// retried waits until berth has synced the App (of a controller that runs it alone) times more.
func (e *env) retried(r *running, times int) {
	e.t.Helper()
	before := r.syncs.total()
	e.eventually(fmt.Sprintf("berth to sync the App %d more times", times), func(context.Context) (bool, error) {
		return r.syncs.total() >= before+times, nil
	})
}

// warnedOnce checks, once the App has recovered, that berth wrote one Warning Event of reason about it however
// often it retried: one per change, not per retry. berth's recorder writes Events one at a time, in the order
// they were recorded: once the Event that the App recovered is there, so is every Warning recorded before it.
func (e *env) warnedOnce(a *berthv1alpha1.App, reason string) {
	e.t.Helper()
	e.eventually("the Event that the App recovered", func(context.Context) (bool, error) {
		return e.eventsAbout(a, corev1.EventTypeNormal, "Recovered") > 0, nil
	})
	assert.Equal(e.t, 1, e.eventsAbout(a, corev1.EventTypeWarning, reason), "one Warning Event per change, not per retry")
}

// setQuota makes a ResourceQuota of the namespace hold hard as its limits, in its spec and in its status: there
// is no kube-controller-manager here to fill in the status, without which the quota admission refuses everything.
func (e *env) setQuota(name string, hard corev1.ResourceList) {
	e.t.Helper()
	quotas := e.kube.CoreV1().ResourceQuotas(e.namespace)
	q, err := quotas.Get(e.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		q, err = quotas.Create(e.ctx, &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.ResourceQuotaSpec{Hard: hard},
		}, metav1.CreateOptions{})
		require.NoError(e.t, err)
		q.Status.Used = corev1.ResourceList{}
		for r := range hard {
			q.Status.Used[r] = resource.MustParse("0")
		}
	} else {
		require.NoError(e.t, err)
		q.Spec.Hard = hard
		q, err = quotas.Update(e.ctx, q, metav1.UpdateOptions{})
		require.NoError(e.t, err)
	}
	q.Status.Hard = hard
	_, err = quotas.UpdateStatus(e.ctx, q, metav1.UpdateOptions{})
	require.NoError(e.t, err)
}

// TestQuotaExceededDegradesTheApp: a ResourceQuota that allows no Deployment refuses berth's create with 403.
// The App must say so (Degraded, reason QuotaExceeded, the API server's message), with one Warning Event, and be
// retried with backoff, so that it converges once the quota is raised.
func TestQuotaExceededDegradesTheApp(t *testing.T) {
	e := newEnv(t)
	e.setQuota("no-deployments", corev1.ResourceList{"count/deployments.apps": resource.MustParse("0")})
	r := e.startController()
	e.createApp(app("web"))

	a := e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonQuotaExceeded)
	assert.Contains(t, condition(t, a, berthv1alpha1.ConditionDegraded).Message, "exceeded quota: no-deployments")
	// The refused create is retried with backoff: more syncs come, but no second Warning while nothing changed.
	e.retried(r, 3)

	e.setQuota("no-deployments", corev1.ResourceList{"count/deployments.apps": resource.MustParse("1")})
	e.waitConverged("web")
	e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, plan.ReasonAsExpected)
	e.warnedOnce(a, plan.ReasonQuotaExceeded)
}

// denyImages makes a ValidatingAdmissionPolicy, bound to the test's namespace, refuse Deployments with an image
// from denied.example/, as a platform team's policy would; it returns once the policy is in force.
func (e *env) denyImages() {
	e.t.Helper()
	e.bindValidatingPolicy("deny-images-"+e.namespace, admissionregistrationv1.ValidatingAdmissionPolicySpec{
		FailurePolicy:    ptr.To(admissionregistrationv1.Fail),
		MatchConstraints: deploymentWrites(),
		Validations: []admissionregistrationv1.Validation{{
			Expression: "object.spec.template.spec.containers.all(c, !c.image.startsWith('denied.example/'))",
			Message:    "images from denied.example/ are not allowed here",
			Reason:     ptr.To(metav1.StatusReasonForbidden),
		}},
	})
	// The API server compiles and loads the policy a moment after it is written.
	probe := probeDeployment("denied.example/probe:1")
	e.eventually("the admission policy to be in force", func(ctx context.Context) (bool, error) {
		_, err := e.kube.AppsV1().Deployments(e.namespace).Create(ctx, probe,
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsForbidden(err), nil
	})
}

// bindValidatingPolicy creates the ValidatingAdmissionPolicy name with spec, and its binding (Deny) to the test's
// namespace; both are deleted when the test ends. The API server puts it in force a moment later: the caller
// waits for that.
func (e *env) bindValidatingPolicy(name string, spec admissionregistrationv1.ValidatingAdmissionPolicySpec) {
	e.t.Helper()
	policies := e.kube.AdmissionregistrationV1()
	_, err := policies.ValidatingAdmissionPolicies().Create(e.ctx, &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       spec,
	}, metav1.CreateOptions{})
	require.NoError(e.t, err)
	_, err = policies.ValidatingAdmissionPolicyBindings().Create(e.ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.namespace},
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		_ = policies.ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = policies.ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// TestAdmissionPolicyDenialDegradesTheApp: a ValidatingAdmissionPolicy refuses the App's Deployment. The App must
// say so (Degraded, reason Forbidden, the policy's message) with one Warning Event, and converge once the policy
// goes.
func TestAdmissionPolicyDenialDegradesTheApp(t *testing.T) {
	e := newEnv(t)
	e.denyImages()
	r := e.startController()
	e.createApp(app("web", func(a *berthv1alpha1.App) { a.Spec.Image = "denied.example/web:1" }))

	a := e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonForbidden)
	assert.Contains(t, condition(t, a, berthv1alpha1.ConditionDegraded).Message, "images from denied.example/ are not allowed here")
	e.retried(r, 3)

	require.NoError(t, e.kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(e.ctx,
		"deny-images-"+e.namespace, metav1.DeleteOptions{}))
	e.waitConverged("web")
	e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, plan.ReasonAsExpected)
	e.warnedOnce(a, plan.ReasonForbidden)
}

// runDeployment writes the status kube-controller-manager would give the App's Deployment once all its Pods
// run: there is none here.
func (e *env) runDeployment(name string) {
	e.t.Helper()
	d, err := e.getDeployment(name)
	require.NoError(e.t, err)
	n := *d.Spec.Replicas
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
		},
	}
	_, err = e.kube.AppsV1().Deployments(e.namespace).UpdateStatus(e.ctx, d, metav1.UpdateOptions{})
	require.NoError(e.t, err)
}

// TestRefusedUpdateKeepsDescribingTheRunningDeployment: a change of the App that the Deployment API rejects (422:
// an extended resource requested without a limit) leaves the running Deployment as it was. The App's status must
// go on describing that Deployment (replicas, Available, the scale subresource), and say which change was refused.
func TestRefusedUpdateKeepsDescribingTheRunningDeployment(t *testing.T) {
	e := newEnv(t)
	e.startController()
	e.createApp(app("web"))
	e.waitConverged("web")
	e.runDeployment("web")
	e.waitCondition("web", berthv1alpha1.ConditionAvailable, metav1.ConditionTrue, plan.ReasonMinimumReplicasAvailable)

	_, err := e.berth.BerthV1alpha1().Apps(e.namespace).Patch(e.ctx, "web", types.MergePatchType,
		[]byte(`{"spec":{"resources":{"requests":{"example.com/gpu":"1"}}}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	a := e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonRejected)
	degraded := condition(t, a, berthv1alpha1.ConditionDegraded).Message
	assert.Contains(t, degraded, `Deployment "web"`)
	assert.Contains(t, degraded, "Limit must be set", "the API server's reason is in the message")
	available := condition(t, a, berthv1alpha1.ConditionAvailable)
	assert.Equal(t, metav1.ConditionTrue, available.Status, "the Deployment that runs is still available: %+v", available)
	assert.NotEqual(t, plan.ReasonCreating, condition(t, a, berthv1alpha1.ConditionProgressing).Reason)
	assert.Equal(t, int32(1), a.Status.Replicas)
	assert.Equal(t, int32(1), a.Status.ReadyReplicas)
	assert.Equal(t, "1/1", a.Status.Ready)
	scale, err := e.berth.BerthV1alpha1().Apps(e.namespace).GetScale(e.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(1), scale.Status.Replicas, "the scale subresource reports the Pods that run")
	d, err := e.getDeployment("web")
	require.NoError(t, err)
	assert.Empty(t, d.Spec.Template.Spec.Containers[0].Resources.Requests, "the refused change did not land")
}

// TestRejectedDeploymentDegradesANewApp: the schema leaves the rules of the resources that cannot be overcommitted
// to the Pod API (see Resources in types.go), so an App can be stored whose Deployment the API server refuses
// (422: an extended resource requested without a limit). The new App must say so (Degraded, Available and
// Progressing False, reason Rejected, with the API server's message), with one Warning Event and one status
// write, and berth must retry the create with backoff, not in a loop; once the App is fixed, it converges.
func TestRejectedDeploymentDegradesANewApp(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var creates []time.Time // berth's creates of the Deployment
	r := e.startController(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if req.Method == http.MethodPost && req.URL.Path == "/apis/apps/v1/namespaces/"+e.namespace+"/deployments" {
			mu.Lock()
			creates = append(creates, time.Now())
			mu.Unlock()
		}
		return next.RoundTrip(req)
	})
	e.createApp(app("web", func(a *berthv1alpha1.App) {
		a.Spec.Resources = &berthv1alpha1.Resources{Requests: corev1.ResourceList{"example.com/gpu": resource.MustParse("1")}}
	}))

	a := e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonRejected)
	degraded := condition(t, a, berthv1alpha1.ConditionDegraded).Message
	assert.Contains(t, degraded, `create Deployment "web"`)
	assert.Contains(t, degraded, "Limit must be set", "the API server's reason is in the message")
	for _, conditionType := range []string{berthv1alpha1.ConditionAvailable, berthv1alpha1.ConditionProgressing} {
		c := condition(t, a, conditionType)
		assert.Equal(t, metav1.ConditionFalse, c.Status, "%s: %+v", conditionType, c)
		assert.Equal(t, plan.ReasonRejected, c.Reason, "%s: %+v", conditionType, c)
	}
	_, err := e.getDeployment("web")
	assert.True(t, apierrors.IsNotFound(err), "no Deployment: %v", err)

	// Without backoff, the refused create would be retried as fast as the API server answers.
	const tries = 8
	e.eventually(fmt.Sprintf("berth to try the create %d times", tries), func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(creates) >= tries, nil
	})
	mu.Lock()
	tried := slices.Clone(creates[:tries])
	mu.Unlock()
	backedOff(t, tried)
	statusWrites := 0
	for _, w := range r.writes.list() {
		if w == "PATCH /apis/berth.dev/v1alpha1/namespaces/"+e.namespace+"/apps/web/status" {
			statusWrites++
		}
	}
	assert.Equal(t, 1, statusWrites, "the status says the same at every retry, and is written once")

	_, err = e.berth.BerthV1alpha1().Apps(e.namespace).Patch(e.ctx, "web", types.MergePatchType,
		[]byte(`{"spec":{"resources":{"limits":{"example.com/gpu":"1"}}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.waitConverged("web")
	e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, plan.ReasonAsExpected)
	e.warnedOnce(a, plan.ReasonRejected)
}

// TestAppsWithEmptyValuesAreNotAppliedAgain: an env var without a value and a probe with initialDelaySeconds 0
// are dropped by the API server when stored (omitempty). Once berth has made such an App's Deployment, as created
// and once more as applied after a change of the App, a sync that compares the App with it must write nothing.
// That sync is the first of a controller started afresh: it runs once the caches have synced, it remembers
// nothing of the App, so it compares, and the writes it makes are done when the sync is counted.
func TestAppsWithEmptyValuesAreNotAppliedAgain(t *testing.T) {
	e := newEnv(t)
	withEmptyValues := func(a *berthv1alpha1.App) {
		a.Spec.Env = []berthv1alpha1.EnvVar{{Name: "EMPTY"}, {Name: "MODE", Value: "prod"}}
		a.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: "/healthz", InitialDelaySeconds: ptr.To[int32](0)}
	}
	syncAfresh := func(what string) {
		t.Helper()
		d, err := e.getDeployment("web")
		require.NoError(t, err)
		c := d.Spec.Template.Spec.Containers[0]
		require.Equal(t, corev1.EnvVar{Name: "EMPTY"}, c.Env[0], "the empty value is not stored")
		require.NotNil(t, c.ReadinessProbe)
		require.Zero(t, c.ReadinessProbe.InitialDelaySeconds)

		r := e.startController()
		e.eventually("a controller started afresh to sync the App", func(context.Context) (bool, error) {
			return r.syncs.total() > 0, nil
		})
		r.stop()
		assert.Equal(t, r.syncs.total(), r.syncs.count(controller.ResultSuccess), "the App %s synced", what)
		assert.Empty(t, r.writes.list(), "the App %s needs no write", what)
	}

	first := e.startController()
	e.createApp(app("web", withEmptyValues))
	_, d := e.waitConverged("web")
	first.stop()
	require.Contains(t, d.Annotations, controller.AnnotationCreatedFrom,
		"berth has not written the Deployment again since it created it")
	syncAfresh("as created")

	second := e.startController()
	_, err := e.berth.BerthV1alpha1().Apps(e.namespace).Patch(e.ctx, "web", types.MergePatchType,
		[]byte(`{"spec":{"env":[{"name":"EMPTY"},{"name":"MODE","value":"staging"}]}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.eventually("berth to apply the change", func(context.Context) (bool, error) {
		d, err := e.getDeployment("web")
		if err != nil {
			return false, err
		}
		env := d.Spec.Template.Spec.Containers[0].Env
		return d.Annotations[controller.AnnotationAppliedFrom] != "" && len(env) == 2 && env[1].Value == "staging", nil
	})
	e.waitConverged("web")
	second.stop()
	syncAfresh("as applied")
}

// TestRepairDoesNotTakeOverARecreatedService: berth's cache shows a Service that berth created for an earlier
// state of the App, whose fields it has not yet taken over for server-side apply, so berth reads it afresh from
// the API server to do that (readAgain, owned.go). If a user deleted that Service and created one of their own in
// the meantime, the fresh read is the user's: berth must leave it alone (a conflict), not apply over it.
func TestRepairDoesNotTakeOverARecreatedService(t *testing.T) {
	e := newEnv(t)
	a := e.createApp(app("web"))
	// A Service as berth's create leaves it, for an earlier state of the App (another hash), so that it must
	// change: controlled by the App, labelled as berth's (so in berth's cache), its fields owned by berth's
	// Update entry.
	_, err := e.kube.CoreV1().Services(e.namespace).Create(e.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web",
			Labels: map[string]string{plan.LabelName: "web", plan.LabelInstance: "web",
				plan.LabelManagedBy: plan.ManagedByBerth},
			Annotations: map[string]string{controller.AnnotationCreatedFrom: "an-earlier-state-of-the-app"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "berth.dev/v1alpha1", Kind: "App", Name: "web", UID: a.UID, Controller: ptr.To(true),
			}},
		},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{plan.LabelInstance: "web", plan.LabelManagedBy: "berth"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8081, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{FieldManager: controller.FieldManager})
	require.NoError(t, err)

	// When berth reads the Service afresh, a user has just replaced it with their own.
	services := "/api/v1/namespaces/" + e.namespace + "/services"
	var mu sync.Mutex
	var created bool          // berth tried to create the Service
	var users *corev1.Service // the user's Service, once made
	var readFromTheCache bool // berth's fresh read came before any create of the Service
	e.startController(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if req.Method == http.MethodPost && req.URL.Path == services {
			mu.Lock()
			created = true
			mu.Unlock()
		}
		if req.Method == http.MethodGet && req.URL.Path == services+"/web" {
			mu.Lock()
			if users == nil {
				// Not the read after a create that failed with AlreadyExists: berth found the Service in its
				// cache, and reads it again to repair it.
				readFromTheCache = !created
				var err error
				if users, err = e.replaceService(); err != nil {
					t.Errorf("replacing the Service: %v", err)
				}
			}
			mu.Unlock()
		}
		return next.RoundTrip(req)
	})

	e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonResourceConflict)
	mu.Lock()
	theirs, fromCache := users, readFromTheCache
	mu.Unlock()
	require.NotNil(t, theirs, "berth read the Service afresh")
	require.True(t, fromCache, "berth read the Service afresh to repair the one in its cache, "+
		"not after a create that failed")
	s, err := e.kube.CoreV1().Services(e.namespace).Get(e.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, theirs.UID, s.UID)
	assert.Equal(t, theirs.ResourceVersion, s.ResourceVersion, "the user's Service was never written")
	assert.Empty(t, s.OwnerReferences)
	assert.Equal(t, map[string]string{"team": "theirs"}, s.Spec.Selector)
}

// replaceService deletes the Service web and creates a user's Service of that name, with no owner, and returns it.
func (e *env) replaceService() (*corev1.Service, error) {
	services := e.kube.CoreV1().Services(e.namespace)
	if err := services.Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		return nil, err
	}
	return services.Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"team": "theirs"},
			Ports:    []corev1.ServicePort{{Name: "metrics", Port: 9999}},
		},
	}, metav1.CreateOptions{FieldManager: "someone"})
}

// conflictStatus is the answer of the API server to a write that lost a race: 409 Conflict.
func conflictStatus(req *http.Request) *http.Response {
	body := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
		`"message":"Operation cannot be fulfilled: the object has been modified","reason":"Conflict","code":409}`
	return &http.Response{
		StatusCode: http.StatusConflict,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}
}

// TestConflictsAreRetriedWithBackoff: while every write of the App's Deployment meets a conflict (as when it was
// deleted under berth and the cache has not caught up), berth retries with backoff, not as fast as the client
// allows. A new App's Deployment is created with a POST and not written again: the conflicts meet the first
// change of the App, which berth writes with PATCHes (the ownership patch, then the apply).
func TestConflictsAreRetriedWithBackoff(t *testing.T) {
	e := newEnv(t)
	const conflicting = 8
	var mu sync.Mutex
	var conflicts []time.Time
	deployment := "/apis/apps/v1/namespaces/" + e.namespace + "/deployments/web"
	r := e.startController(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if req.Method != http.MethodPatch || req.URL.Path != deployment {
			return next.RoundTrip(req)
		}
		mu.Lock()
		conflict := len(conflicts) < conflicting
		if conflict {
			conflicts = append(conflicts, time.Now())
		}
		mu.Unlock()
		if conflict {
			return conflictStatus(req), nil
		}
		return next.RoundTrip(req)
	})
	e.createApp(app("web"))
	e.waitConverged("web")
	_, err := e.berth.BerthV1alpha1().Apps(e.namespace).Patch(e.ctx, "web", types.MergePatchType,
		[]byte(`{"spec":{"image":"nginx:1.28"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, d := e.waitConverged("web")
	require.Equal(t, "nginx:1.28", d.Spec.Template.Spec.Containers[0].Image)

	mu.Lock()
	met := slices.Clone(conflicts)
	mu.Unlock()
	require.Len(t, met, conflicting, "every PATCH of the Deployment met a conflict until the hook stopped")
	assert.GreaterOrEqual(t, r.syncs.count(controller.ResultConflict), conflicting,
		"each conflict is counted as one, not as an error")
	backedOff(t, met)
}

// backedOff checks that tries, the times of attempts of one App's sync that failed one after the other, were
// spaced as the backoff of berth's tests says: 10 ms after the first, doubling (startControllerIn). One retry may
// come early, brought by an event, so what is sure is the waits after all tries but the last two. Without backoff,
// the tries come as fast as the API server answers. Up to 8 tries: the waits stay below the cap of 1 s.
func backedOff(t *testing.T, tries []time.Time) {
	t.Helper()
	gaps := make([]time.Duration, 0, len(tries)-1)
	for i := 1; i < len(tries); i++ {
		gaps = append(gaps, tries[i].Sub(tries[i-1]).Round(time.Millisecond))
	}
	span := tries[len(tries)-1].Sub(tries[0])
	t.Logf("%d tries over %s; the retries came after %v", len(tries), span.Round(time.Millisecond), gaps)
	var least time.Duration
	for i := range len(tries) - 2 {
		least += 10 * time.Millisecond << i
	}
	assert.GreaterOrEqual(t, span, least, "retried with growing delays: %v", gaps)
}

// TestDeletedBeforeSeenIsRecreatedPromptly: the Deployment berth created is deleted before any sync has seen it.
// berth waits for its cache to show what it created; the deletion must end that wait, and berth create the
// Deployment again, not stall the App until the wait's expiry (a minute).
func TestDeletedBeforeSeenIsRecreatedPromptly(t *testing.T) {
	e := newEnv(t)
	var deleted sync.Once
	e.startController(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusCreated && req.Method == http.MethodPost &&
			req.URL.Path == "/apis/apps/v1/namespaces/"+e.namespace+"/deployments" {
			deleted.Do(func() {
				require.NoError(t, e.kube.AppsV1().Deployments(e.namespace).Delete(context.Background(), "web",
					metav1.DeleteOptions{}))
			})
		}
		return resp, err
	})
	created := e.createApp(app("web"))
	// Well within the expiry of a minute.
	e.eventually("berth to create the Deployment again", func(ctx context.Context) (bool, error) {
		d, err := e.getDeployment("web")
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return metav1.IsControlledBy(d, created), nil
	})
	e.waitConverged("web")
}

// TestStaleCacheCausesNoSecondStatusWrite: another writer changes the App just before berth writes its status,
// and the watch brings the event of berth's write late (a slow API server): only after berth has synced the App
// again. The cache then shows the other writer's version, which is older than berth's write: a sync that acted on
// it would write the status a second time. berth must wait for the version it wrote.
func TestStaleCacheCausesNoSecondStatusWrite(t *testing.T) {
	e := newEnv(t)
	var annotated sync.Once
	var started atomic.Pointer[running]
	held := holdWatchEvents("/apis/berth.dev/v1alpha1/namespaces/"+e.namespace+"/apps", func(event []byte) bool {
		// The events of berth's status writes: only they show berth's status field manager.
		return bytes.Contains(event, []byte(`"manager":"berth","operation":"Apply","subresource":"status"`))
	}, e.untilSynced(&started, 2))
	r := e.startController(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if req.Method == http.MethodPatch && strings.HasSuffix(req.URL.Path, "/apps/web/status") {
			annotated.Do(func() {
				_, err := e.berth.BerthV1alpha1().Apps(e.namespace).Patch(context.Background(), "web",
					types.MergePatchType, []byte(`{"metadata":{"annotations":{"example.com/team":"shop"}}}`),
					metav1.PatchOptions{})
				if err != nil {
					t.Errorf("annotating the App: %v", err)
				}
			})
		}
		return next.RoundTrip(req)
	}, held.hook)
	started.Store(r)
	e.createApp(app("web"))
	e.waitConverged("web")
	// The second sync, the one that must not write, is over when the event is let go.
	e.eventually("the event of berth's status write, held back until berth synced the App again",
		func(context.Context) (bool, error) { return held.released.Load() > 0, nil })

	var statusWrites []string
	for _, w := range r.writes.list() {
		if strings.HasSuffix(w, "/apps/web/status") {
			statusWrites = append(statusWrites, w)
		}
	}
	assert.Len(t, statusWrites, 1, "the status is written once: %v", r.writes.list())
}

// heldWatchEvents is a hook that holds back watch events (see holdWatchEvents), and counts those it let go.
type heldWatchEvents struct {
	hook     hook
	released atomic.Int32
}

// holdWatchEvents is a hook that holds back each watch event of path (a collection) that held says to, as a
// slow API server would, until release returns. The API server writes one event per line.
func holdWatchEvents(path string, held func(event []byte) bool, release func()) *heldWatchEvents {
	h := &heldWatchEvents{}
	h.hook = func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || req.Method != http.MethodGet || req.URL.Path != path || req.URL.Query().Get("watch") != "true" {
			return resp, err
		}
		events := bufio.NewReader(resp.Body)
		reader, writer := io.Pipe()
		go func() {
			defer func() { _ = resp.Body.Close() }()
			for {
				event, err := events.ReadBytes('\n')
				if held(event) {
					release()
					h.released.Add(1)
				}
				if _, werr := writer.Write(event); werr != nil || err != nil {
					writer.CloseWithError(err)
					return
				}
			}
		}()
		resp.Body = reader
		return resp, nil
	}
	return h
}

// heldWatch is a hook that holds back the watch streams of a collection from the moment a request starts it,
// however they are encoded (see holdWatch), and counts the times it let them go.
type heldWatch struct {
	hook     hook
	holding  atomic.Bool
	releases sync.Mutex // one reader waits for release at a time
	released atomic.Int32
}

// holdWatch is a hook that, from the moment a request that start says to is sent, holds back what the watches
// of path (a collection) bring, as a slow API server would, until release returns.
func holdWatch(path string, start func(req *http.Request) bool, release func()) *heldWatch {
	h := &heldWatch{}
	h.hook = func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if start(req) {
			h.holding.Store(true)
		}
		resp, err := next.RoundTrip(req)
		if err != nil || req.Method != http.MethodGet || req.URL.Path != path || req.URL.Query().Get("watch") != "true" {
			return resp, err
		}
		resp.Body = heldBody{ReadCloser: resp.Body, held: h, release: release}
		return resp, nil
	}
	return h
}

// heldBody is a watch stream that hands over what it read only once its heldWatch holds nothing back.
type heldBody struct {
	io.ReadCloser
	held    *heldWatch
	release func()
}

func (b heldBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.held.holding.Load() {
		b.held.releases.Lock()
		if b.held.holding.Load() {
			b.release()
			b.held.holding.Store(false)
			b.held.released.Add(1)
		}
		b.held.releases.Unlock()
	}
	return n, err
}

// untilSynced is a release for holdWatchEvents and holdWatch: it returns once the controller r points to has finished syncs
// syncs. It gives up after 10 s, failing the test, so that a test whose controller never gets there ends.
func (e *env) untilSynced(r *atomic.Pointer[running], syncs int) func() {
	return func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if c := r.Load(); c != nil && c.syncs.total() >= syncs {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		e.t.Errorf("a watch event was held back for 10 s, waiting for %d syncs", syncs)
	}
}

// TestRecreatedAppWaitsForTheGarbageCollector: an App deleted and created again under the same name finds the
// old App's Deployment and Service until the garbage collector removes them (it does not run here, so the test
// removes them as it would). They are not someone else's: the App must wait for the collector (Progressing,
// WaitingForGarbageCollection), without a conflict or a Warning, and then converge.
func TestRecreatedAppWaitsForTheGarbageCollector(t *testing.T) {
	e := newEnv(t)
	e.startController()
	old := e.createApp(app("web"))
	_, oldDeployment := e.waitConverged("web")
	require.NoError(t, e.berth.BerthV1alpha1().Apps(e.namespace).Delete(e.ctx, "web", metav1.DeleteOptions{}))
	e.eventually("the old App to be gone", func(ctx context.Context) (bool, error) {
		_, err := e.berth.BerthV1alpha1().Apps(e.namespace).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	recreated := e.createApp(app("web"))
	require.NotEqual(t, old.UID, recreated.UID)
	a := e.waitCondition("web", berthv1alpha1.ConditionProgressing, metav1.ConditionTrue, plan.ReasonWaitingForGarbageCollection)
	assert.Equal(t, metav1.ConditionFalse, condition(t, a, berthv1alpha1.ConditionDegraded).Status,
		"the old App's objects are not a conflict: %+v", a.Status.Conditions)
	d, err := e.getDeployment("web")
	require.NoError(t, err)
	assert.Equal(t, oldDeployment.ResourceVersion, d.ResourceVersion, "the old App's Deployment is left to the collector")

	// What the garbage collector does.
	require.NoError(t, e.kube.AppsV1().Deployments(e.namespace).Delete(e.ctx, "web", metav1.DeleteOptions{}))
	require.NoError(t, e.kube.CoreV1().Services(e.namespace).Delete(e.ctx, "web", metav1.DeleteOptions{}))

	_, d = e.waitConverged("web")
	assert.True(t, metav1.IsControlledBy(d, recreated), "the new App's own Deployment")
	// berth writes its Events in the order it records them: once the Event of the new Deployment is there, so is
	// any Warning recorded while the App waited.
	e.eventually("the Event of the new App's Deployment", func(context.Context) (bool, error) {
		return e.eventsAbout(recreated, corev1.EventTypeNormal, "Created") > 0, nil
	})
	assert.Zero(t, e.eventsAbout(recreated, corev1.EventTypeWarning, plan.ReasonResourceConflict), "no Warning")
	// No kube-controller-manager here to roll the Deployment out.
	a = e.waitCondition("web", berthv1alpha1.ConditionProgressing, metav1.ConditionTrue, plan.ReasonRollingOut)
	assert.Equal(t, metav1.ConditionFalse, condition(t, a, berthv1alpha1.ConditionDegraded).Status)
}

// TestOtherManagersConditionsAreLeftAlone: another controller adds a condition of its own to the App's status.
// berth writes only its three conditions, so that the other manager alone owns its condition and can remove it.
func TestOtherManagersConditionsAreLeftAlone(t *testing.T) {
	e := newEnv(t)
	e.startController()
	e.createApp(app("web"))
	e.waitConverged("web")

	apps := e.berth.BerthV1alpha1().Apps(e.namespace)
	other := func(conditions ...*metav1ac.ConditionApplyConfiguration) {
		_, err := apps.ApplyStatus(e.ctx, berthv1alpha1ac.App("web", e.namespace).
			WithStatus(berthv1alpha1ac.AppStatus().WithConditions(conditions...)),
			metav1.ApplyOptions{FieldManager: "other-controller", Force: true})
		require.NoError(t, err)
	}
	other(metav1ac.Condition().WithType("example.com/Audited").WithStatus(metav1.ConditionTrue).
		WithReason("Audited").WithMessage("checked").WithLastTransitionTime(metav1.Now()))

	// A change of the App makes berth write its status again.
	_, err := apps.Patch(e.ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	a, _ := e.waitConverged("web")
	require.NotNil(t, meta.FindStatusCondition(a.Status.Conditions, "example.com/Audited"), "berth kept the other condition")

	// The other manager drops its condition: since it alone owns it, it goes.
	other()
	a = e.getApp("web")
	assert.Nil(t, meta.FindStatusCondition(a.Status.Conditions, "example.com/Audited"),
		"berth does not co-own the other manager's condition: %+v", a.Status.Conditions)
	for _, conditionType := range []string{berthv1alpha1.ConditionAvailable, berthv1alpha1.ConditionProgressing,
		berthv1alpha1.ConditionDegraded} {
		assert.NotNil(t, meta.FindStatusCondition(a.Status.Conditions, conditionType), conditionType)
	}
}

// probeDeployment is a Deployment of one container running image, for a dry-run create that tells whether an
// admission policy is in force yet: the API server loads a policy a moment after it is written.
func probeDeployment(image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"probe": "1"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"probe": "1"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

// deploymentWrites match the creates and updates of Deployments, for an admission policy.
func deploymentWrites() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{
		ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"},
					Resources: []string{"deployments"}},
			},
		}},
	}
}
