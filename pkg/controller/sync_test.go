package controller

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

var (
	createDeployment = action{"create", "deployments", "", "web"}
	applyDeployment  = action{"patch", "deployments", "", "web"}
	createService    = action{"create", "services", "", "web"}
	deleteService    = action{"delete", "services", "", "web"}
	createBudget     = action{"create", "poddisruptionbudgets", "", "web"}
	applyAppStatus   = action{"patch", "apps", "status", "web"}
)

func TestSyncCreatesDeploymentAndService(t *testing.T) {
	f := newFixture(t, plantest.NewApp(plantest.WithPort(8080)))

	require.NoError(t, f.sync())

	// One write per object, and one of the status: see ownership.go. An App of 3 replicas has a disruption
	// budget.
	assert.Equal(t, []action{createDeployment, createService, createBudget, applyAppStatus}, f.writes())
	assert.Equal(t, types.ApplyPatchType, f.patchType("apps", "status"))
	assert.Equal(t, []string{`Normal Created Created Deployment "web"`, `Normal Created Created Service "web"`,
		`Normal Created Created PodDisruptionBudget "web"`}, f.events())

	d, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.27", d.Spec.Template.Spec.Containers[0].Image)
	assert.True(t, isControlledBy(d, plantest.NewApp()), "the Deployment is controlled by the App")
	assert.True(t, ownsByCreate(d), "berth owns the Deployment's fields as their creator")
	hash, err := desiredHash(plan.Deployment(plantest.NewApp(plantest.WithPort(8080))))
	require.NoError(t, err)
	assert.Equal(t, hash, d.Annotations[AnnotationCreatedFrom], "the Deployment tells what it was created from")
	s, err := f.kubeClient.CoreV1().Services("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)

	// The next sync, which the creates trigger, finds them as the App wants them.
	require.NoError(t, f.indexerFor(d).Add(d))
	require.NoError(t, f.indexerFor(s).Add(s))
	f.cacheCreated(&policyv1.PodDisruptionBudget{})
	f.kubeClient.ClearActions()
	f.berthClient.ClearActions()
	f.events()
	require.NoError(t, f.sync())
	assert.Empty(t, f.kubeClient.Actions(), "what berth created is what the App wants")
}

func TestSyncWithoutPortCreatesNoService(t *testing.T) {
	f := newFixture(t, plantest.NewApp())

	require.NoError(t, f.sync())

	assert.Equal(t, []action{createDeployment, createBudget, applyAppStatus}, f.writes())
}

func operations(obj metav1.Object) []metav1.ManagedFieldsOperationType {
	var ops []metav1.ManagedFieldsOperationType
	for _, e := range obj.GetManagedFields() {
		ops = append(ops, e.Operation)
	}
	return ops
}

func TestSyncIsANoOpWhenConverged(t *testing.T) {
	app, d, s := converged(t, plantest.NewApp(plantest.WithPort(8080)))
	f := newFixture(t, app, budgetOf(t, app), d, s)

	require.NoError(t, f.sync())

	assert.Empty(t, f.writes(), "a converged App needs no write")
	assert.Empty(t, f.events(), "a converged App emits no Event")
}

func TestSyncTakesOwnershipBeforeChangingWhatItCreated(t *testing.T) {
	// berth created the Deployment for the App's first image; the App has changed since. Before its apply,
	// berth reads the live object and moves its fields from its Update entry to its Apply entry.
	before := plantest.NewApp()
	f := newFixture(t, before)
	require.NoError(t, f.sync())
	created, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.True(t, ownsByCreate(created))
	require.NoError(t, f.indexerFor(created).Add(created))
	f.cacheCreated(&policyv1.PodDisruptionBudget{})
	changed := plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Image = "nginx:1.28" })
	changed.Generation = 2
	require.NoError(t, f.indexerFor(changed).Update(changed))
	f.kubeClient.ClearActions()

	require.NoError(t, f.sync())

	var verbs []string
	for _, a := range f.kubeClient.Actions() {
		verbs = append(verbs, a.GetVerb())
	}
	assert.Equal(t, []string{"get", "patch", "patch"}, verbs, "a fresh read, the ownership patch, the apply")
	assert.Equal(t, types.JSONPatchType, f.patchType("deployments", ""))
	live, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.28", live.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, []metav1.ManagedFieldsOperationType{metav1.ManagedFieldsOperationApply}, operations(live))
	assert.NotContains(t, live.Annotations, AnnotationCreatedFrom, "no longer as created")
}

func TestObjectsAsCreatedAreComparedByHashAndOwnership(t *testing.T) {
	app := plantest.NewApp(plantest.WithPort(8080))
	f := newFixture(t, app)
	require.NoError(t, f.sync())
	created, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	k := f.controller.deploymentKind

	same, _, err := k.compare(created, plan.Deployment(app), hashOf(t, plan.Deployment(app)))
	require.NoError(t, err)
	assert.True(t, same, "as created")

	withoutPort := plantest.NewApp()
	same, _, err = k.compare(created, plan.Deployment(withoutPort), hashOf(t, plan.Deployment(withoutPort)))
	require.NoError(t, err)
	assert.False(t, same, "the App no longer asks for a port that berth created: only the hash tells")

	taken := created.DeepCopy()
	taken.Spec.Template.Spec.Containers[0].Image = "evil:1"
	taken.ManagedFields = nil // whoever changed the image took it from berth's entry; here, everything
	same, _, err = k.compare(taken, plan.Deployment(app), hashOf(t, plan.Deployment(app)))
	require.NoError(t, err)
	assert.False(t, same, "changed by someone else")
}

func TestSyncCorrectsDrift(t *testing.T) {
	tests := []struct {
		name  string
		drift func(*appsv1.Deployment)
		event string // what the Event says after "Reverted a change of Deployment "web" by "
	}{
		{"image changed by hand", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "evil:1" },
			`"kubectl-edit" (Update): spec.template.spec.containers[name="app"].image`},
		{"replicas changed by hand", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](7) },
			`"kubectl-edit" (Update): spec.replicas`},
		// A removal gives the remover no field, so managedFields do not say who it was.
		{"label removed by hand", func(d *appsv1.Deployment) { delete(d.Labels, plan.LabelName) },
			"an unnamed writer (a removal leaves no field manager): metadata.labels.app.kubernetes.io/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, d, _ := converged(t, plantest.NewApp())
			drifted := updatedByAnotherManager(t, d, tt.drift)
			f := newFixture(t, app, budgetOf(t, app), drifted)

			require.NoError(t, f.sync())

			assert.Equal(t, []action{applyDeployment}, f.writes())
			assert.Equal(t, types.ApplyPatchType, f.patchType("deployments", ""))
			assert.Equal(t, []string{`Warning Reverted Reverted a change of Deployment "web" by ` + tt.event},
				f.events(), "the Event says whose change berth undid")
			got, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, "nginx:1.27", got.Spec.Template.Spec.Containers[0].Image)
			assert.Equal(t, int32(3), *got.Spec.Replicas)
		})
	}
}

// updatedByAnotherManager changes d the way `kubectl edit` would: an update by another field manager, which takes
// over the fields it changes from berth.
func updatedByAnotherManager(t *testing.T, d *appsv1.Deployment, change func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	client := kubefake.NewClientset(d)
	changed := d.DeepCopy()
	change(changed)
	updated, err := client.AppsV1().Deployments(d.Namespace).Update(context.Background(), changed,
		metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)
	return updated
}

func TestSyncLeavesFieldsOfOtherManagersAlone(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp())
	edited := updatedByAnotherManager(t, d, func(d *appsv1.Deployment) {
		d.Annotations = map[string]string{"example.com/owner": "team-a"}
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DEBUG", Value: "1"}}
	})
	f := newFixture(t, app, budgetOf(t, app), edited)

	require.NoError(t, f.sync())

	assert.Empty(t, f.writes(), "berth sets neither annotations nor this env var, so it has nothing to correct")
}

func TestSyncAppliesAChangedApp(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp())
	app.Spec.Image = "nginx:1.28"
	app.Generation = 2
	f := newFixture(t, app, budgetOf(t, app), d)

	require.NoError(t, f.sync())

	assert.Equal(t, []action{applyDeployment, applyAppStatus}, f.writes())
	got, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.28", got.Spec.Template.Spec.Containers[0].Image)
}

func TestSyncDeletesServiceWhenPortIsRemoved(t *testing.T) {
	app, d, s := converged(t, plantest.NewApp(plantest.WithPort(8080)))
	s.UID = "uid-service"
	app.Spec.Port = nil
	app.Generation = 2
	f := newFixture(t, app, budgetOf(t, app), d, s)

	require.NoError(t, f.sync())

	// The container loses its port too.
	assert.Equal(t, []action{applyDeployment, deleteService, applyAppStatus}, f.writes())
	for _, a := range f.kubeClient.Actions() {
		if del, ok := a.(k8stesting.DeleteAction); ok {
			assert.Equal(t, ptr.To(types.UID("uid-service")), del.GetDeleteOptions().Preconditions.UID,
				"the delete is conditional on the Service berth saw")
		}
	}
	assert.Equal(t, []string{`Normal Updated Updated Deployment "web"`,
		`Normal Deleted Deleted Service "web": the App has no port`}, f.events())
}

func TestSyncLeavesForeignObjectsAlone(t *testing.T) {
	foreignDeployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	foreignService := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	otherApps := func() *appsv1.Deployment {
		// Controlled by another App, whose name is not this App's.
		d := foreignDeployment.DeepCopy()
		d.Labels = map[string]string{plan.LabelManagedBy: plan.ManagedByBerth}
		d.OwnerReferences = []metav1.OwnerReference{{APIVersion: "berth.dev/v1alpha1", Kind: "App", Name: "other",
			UID: "uid-other", Controller: ptr.To(true)}}
		return d
	}()
	tests := []struct {
		name        string
		cached      []runtime.Object // in berth's cache: labelled as berth's
		notCached   []runtime.Object // only in the API server: berth finds them when its create fails
		wantWrites  []action
		wantMessage string
	}{{
		name:        "a Deployment nobody controls",
		notCached:   []runtime.Object{foreignDeployment},
		wantWrites:  []action{createDeployment, applyAppStatus},
		wantMessage: `Deployment "web" exists and is not controlled by this App`,
	}, {
		name:        "a Deployment controlled by another App",
		cached:      []runtime.Object{otherApps},
		wantWrites:  []action{applyAppStatus},
		wantMessage: `Deployment "web" exists and is not controlled by this App`,
	}, {
		name:        "a Service nobody controls",
		notCached:   []runtime.Object{foreignService},
		wantWrites:  []action{createDeployment, createService, createBudget, applyAppStatus},
		wantMessage: `Service "web" exists and is not controlled by this App`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, append(tt.cached, plantest.NewApp(plantest.WithPort(8080)))...)
			for _, obj := range tt.notCached {
				require.NoError(t, f.kubeClient.Tracker().Add(obj))
			}

			err := f.sync()

			assert.ErrorIs(t, err, errUnsatisfiable)
			assert.Equal(t, tt.wantWrites, f.writes(), "no write touches the foreign object (a create fails on it)")
			events := f.events()
			require.NotEmpty(t, events)
			assert.Contains(t, events[len(events)-1], "Warning ResourceConflict "+tt.wantMessage)
			status := f.appliedStatus()
			degraded := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
			require.NotNil(t, degraded)
			assert.Equal(t, metav1.ConditionTrue, degraded.Status)
			assert.Equal(t, plan.ReasonResourceConflict, degraded.Reason)
			assert.Contains(t, degraded.Message, tt.wantMessage)
		})
	}
}

func TestSyncConflictEventOnlyOnce(t *testing.T) {
	foreign := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	app := plantest.NewApp()
	app.Status = plan.Status(app, plan.Observed{Conflict: `Deployment "web"`}, "cluster.local", metav1.Now())
	f := newFixture(t, app, foreign)

	assert.ErrorIs(t, f.sync(), errUnsatisfiable)

	assert.Empty(t, f.writes(), "the conflict is already in the status")
	assert.Empty(t, f.events(), "the conflict was already announced")
}

// TestSyncRecordsRefusedWrites: a write of an owned object that the API server refuses (a quota, an admission
// policy or webhook, validation) shows in the App's status and in one Warning Event, and the key is retried
// with backoff (errRefused), since a quota may be raised or a policy changed.
func TestSyncRecordsRefusedWrites(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	tests := []struct {
		name       string
		err        error
		wantReason string
	}{
		{"quota", apierrors.NewForbidden(deployments, "web", errors.New("exceeded quota: q, requested: count/deployments.apps=1")),
			plan.ReasonQuotaExceeded},
		{"admission policy", apierrors.NewForbidden(deployments, "web", errors.New("images from denied.example are not allowed")),
			plan.ReasonForbidden},
		{"validation", apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web",
			field.ErrorList{field.Invalid(field.NewPath("spec", "template"), "x", "bad template")}), plan.ReasonRejected},
		{"bad request", apierrors.NewBadRequest("bad template"), plan.ReasonRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, plantest.NewApp(plantest.WithPort(8080)))
			f.kubeClient.PrependReactor("create", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, tt.err
			})

			err := f.sync()

			assert.ErrorIs(t, err, errRefused)
			degraded := meta.FindStatusCondition(f.appliedStatus().Conditions, berthv1alpha1.ConditionDegraded)
			require.NotNil(t, degraded)
			assert.Equal(t, tt.wantReason, degraded.Reason)
			assert.Contains(t, degraded.Message, `the API server refused to create Deployment "web": `)
			assert.Contains(t, degraded.Message, apiMessage(tt.err))
			assert.Equal(t, []string{"Warning " + tt.wantReason + " " + degraded.Message}, f.events())
		})
	}
}

// TestSyncWarnsOfEachNewRefusal: an App whose create was refused for one reason is fixed, and the next create is
// refused for another, with the same reason (422, Rejected). The new refusal gets its own Warning; a retry that is
// refused in the same words gets none.
func TestSyncWarnsOfEachNewRefusal(t *testing.T) {
	app := plantest.NewApp()
	app.Status = plan.Status(app, plan.Observed{Refused: &plan.Refusal{Reason: plan.ReasonRejected, Message: `the API server refused to create Deployment "web": the first reason`}}, "cluster.local", metav1.Now())
	f := newFixture(t, app)
	refusal := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web",
		field.ErrorList{field.Invalid(field.NewPath("spec", "template"), "x", "the second reason")})
	f.kubeClient.PrependReactor("create", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, refusal
	})

	require.ErrorIs(t, f.sync(), errRefused)

	status := f.appliedStatus()
	degraded := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	require.Equal(t, plan.ReasonRejected, degraded.Reason, "the same reason as before")
	require.Contains(t, degraded.Message, "the second reason", "the status tells of the new refusal")
	assert.Equal(t, []string{"Warning Rejected " + degraded.Message}, f.events(), "one Warning for the new refusal")

	// The retry is refused in the same words: no status write, no Warning.
	retried := app.DeepCopy()
	retried.Status = status
	require.NoError(t, f.indexerFor(retried).Update(retried))
	f.berthClient.ClearActions()
	require.ErrorIs(t, f.sync(), errRefused)
	assert.NotContains(t, f.writes(), applyAppStatus)
	assert.Empty(t, f.events(), "one Warning per refusal, not per retry")
}

func TestSyncDoesNotCallATerminatingNamespaceARefusal(t *testing.T) {
	f := newFixture(t, plantest.NewApp())
	f.kubeClient.PrependReactor("create", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		err := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
			errors.New("unable to create new content in namespace shop because it is being terminated"))
		err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
		return true, nil, err
	})

	err := f.sync()

	assert.True(t, apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause))
	assert.NotErrorIs(t, err, errRefused)
}

// TestSyncKeepsTheDeploymentWhoseChangeWasRefused: the Deployment that runs stays in the observation, so that
// the status goes on describing it.
func TestSyncKeepsTheDeploymentWhoseChangeWasRefused(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp())
	app.Spec.Image = "denied.example/web:2"
	app.Generation = 2
	f := newFixture(t, app, budgetOf(t, app), d)
	f.kubeClient.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
			errors.New("images from denied.example are not allowed"))
	})

	assert.ErrorIs(t, f.sync(), errRefused)

	status := f.appliedStatus()
	assert.Equal(t, int32(3), status.ReadyReplicas, "the running Deployment's Pods")
	assert.True(t, meta.IsStatusConditionTrue(status.Conditions, berthv1alpha1.ConditionAvailable))
	degraded := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	assert.Equal(t, plan.ReasonForbidden, degraded.Reason)
	assert.Contains(t, degraded.Message, `the API server refused to change Deployment "web"`)
}

// TestSyncKeepsTheDeploymentWhoseOwnershipPatchWasRefused: the first change of a Deployment that berth created
// starts with the patch that hands its fields to berth's Apply entry (ownership.go). When that patch is refused,
// the Deployment that runs stays in the observation, as for a refused apply.
func TestSyncKeepsTheDeploymentWhoseOwnershipPatchWasRefused(t *testing.T) {
	f := newFixture(t, plantest.NewApp())
	require.NoError(t, f.sync())
	created, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	created.Status = plantest.DeploymentStatus().Status
	created.Status.ObservedGeneration = created.Generation
	created, err = f.kubeClient.AppsV1().Deployments("shop").UpdateStatus(f.ctx, created, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.True(t, ownsByCreate(created), "as berth created it")
	require.NoError(t, f.indexerFor(created).Add(created))
	f.cacheCreated(&policyv1.PodDisruptionBudget{})
	changed := plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Image = "nginx:1.28" })
	changed.Generation = 2
	require.NoError(t, f.indexerFor(changed).Update(changed))
	var ownershipPatches int
	f.kubeClient.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.PatchAction).GetPatchType() != types.JSONPatchType {
			return false, nil, nil
		}
		ownershipPatches++
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
			errors.New("Deployments are frozen here"))
	})
	f.berthClient.ClearActions()

	assert.ErrorIs(t, f.sync(), errRefused)

	require.Equal(t, 1, ownershipPatches, "the ownership patch was refused")
	status := f.appliedStatus()
	assert.Equal(t, int32(3), status.ReadyReplicas, "the running Deployment's Pods")
	assert.Equal(t, "3/3", status.Ready)
	assert.True(t, meta.IsStatusConditionTrue(status.Conditions, berthv1alpha1.ConditionAvailable))
	degraded := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	assert.Equal(t, plan.ReasonForbidden, degraded.Reason)
	assert.Contains(t, degraded.Message, `the API server refused to update Deployment "web"`)
}

// TestSyncWaitsForTheGarbageCollector: a Deployment of the App's name controlled by a deleted App of the same name
// is the garbage collector's to delete, not someone else's: no conflict, no Warning.
func TestSyncWaitsForTheGarbageCollector(t *testing.T) {
	left := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "berth.dev/v1alpha1", Kind: "App", Name: "web",
			UID: "uid-deleted", Controller: ptr.To(true)}}}}
	f := newFixture(t, plantest.NewApp(plantest.WithPort(8080)), left)

	require.NoError(t, f.sync(), "the left object's deletion brings the App back")

	assert.Equal(t, []action{applyAppStatus}, f.writes(), "nothing is written to the left object")
	assert.Empty(t, f.events(), "no Warning")
	progressing := meta.FindStatusCondition(f.appliedStatus().Conditions, berthv1alpha1.ConditionProgressing)
	require.NotNil(t, progressing)
	assert.Equal(t, plan.ReasonWaitingForGarbageCollection, progressing.Reason)
}

// TestSyncRepairsOnlyTheObjectItCreated: when berth reads afresh an object it created, to finish taking over
// its fields, the fresh object must still be the App's.
func TestSyncRepairsOnlyTheObjectItCreated(t *testing.T) {
	app := plantest.NewApp()
	var created appsv1.Deployment
	require.NoError(t, convertApplyConfiguration(plan.Deployment(app), &created))
	created.UID = "uid-berths"
	created.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate}}
	tests := []struct {
		name    string
		fresh   func(*appsv1.Deployment)
		wantErr error
	}{
		{"replaced by someone else's", func(d *appsv1.Deployment) { d.UID, d.OwnerReferences = "uid-users", nil }, errUnsatisfiable},
		{"its controller reference removed", func(d *appsv1.Deployment) { d.OwnerReferences = nil }, errUnsatisfiable},
		{"replaced by another of the App's", func(d *appsv1.Deployment) { d.UID = "uid-newer" }, errStaleCache},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh := created.DeepCopy()
			tt.fresh(fresh)
			f := newFixture(t, app)
			require.NoError(t, f.indexerFor(&created).Add(created.DeepCopy()))
			f.kubeClient.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, fresh, nil
			})

			assert.ErrorIs(t, f.sync(), tt.wantErr)

			for _, w := range f.writes() {
				assert.NotEqual(t, "deployments", w.resource, "the fresh Deployment is not written: %v", f.writes())
			}
		})
	}
}

func TestSyncReturnsTransientErrors(t *testing.T) {
	f := newFixture(t, plantest.NewApp())
	f.kubeClient.PrependReactor("create", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(errors.New("etcd is down"))
	})

	err := f.sync()

	require.Error(t, err)
	assert.NotErrorIs(t, err, errUnsatisfiable)
	assert.Contains(t, err.Error(), "etcd is down")
}

func TestSyncOfAGoneAppDoesNothing(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.sync())
	assert.Empty(t, f.writes())
}

func TestSyncOfADeletingAppDoesNothing(t *testing.T) {
	app := plantest.NewApp()
	app.DeletionTimestamp = ptr.To(metav1.Now())
	app.Finalizers = []string{"example.com/hold"}
	f := newFixture(t, app)
	require.NoError(t, f.sync())
	assert.Empty(t, f.writes())
}

func TestSyncReportsFailingPods(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp())
	f := newFixture(t, app, budgetOf(t, app), d, plantest.WaitingPod("web-1", "CrashLoopBackOff"))

	require.NoError(t, f.sync())

	assert.Equal(t, []action{applyAppStatus}, f.writes())
	assert.Equal(t, []string{`Warning CrashLoopBackOff Pod web-1: container "app" is in CrashLoopBackOff`}, f.events())
}

func TestSyncAnnouncesRecovery(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp())
	app.Status = plan.Status(app, plan.Observed{Deployment: d, Pods: []*corev1.Pod{plantest.WaitingPod("web-1", "CrashLoopBackOff")}},
		"cluster.local", metav1.Now())
	f := newFixture(t, app, budgetOf(t, app), d)

	require.NoError(t, f.sync())

	assert.Equal(t, []action{applyAppStatus}, f.writes())
	assert.Equal(t, []string{"Normal Recovered The App is no longer degraded"}, f.events())
}

// appliedStatus decodes the status berth applied to the App.
func (f *fixture) appliedStatus() berthv1alpha1.AppStatus {
	f.t.Helper()
	for _, a := range f.berthClient.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetSubresource() == "status" {
			var app berthv1alpha1.App
			require.NoError(f.t, json.Unmarshal(p.GetPatch(), &app))
			return app.Status
		}
	}
	f.t.Fatal("no status was applied")
	return berthv1alpha1.AppStatus{}
}

// TestStatusApplyConfigurationCarriesEveryField: a status field that the apply leaves out is never written, and
// every sync then finds the status different from what it wants, and writes it again.
func TestStatusApplyConfigurationCarriesEveryField(t *testing.T) {
	status := berthv1alpha1.AppStatus{
		ObservedGeneration: 2, Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 1, UpdatedReplicas: 3,
		DesiredReplicas: 4, Ready: "2/4", Selector: "app.kubernetes.io/instance=web", URL: "http://web.shop",
		Revision: 3, RevisionSince: ptr.To(metav1.Unix(2, 0)), Images: []string{"web:3"}, AvailableRevision: 2,
		AvailableSince: ptr.To(metav1.Unix(3, 0)), PreviousAvailableRevision: 1,
		Conditions: []metav1.Condition{{Type: berthv1alpha1.ConditionAvailable, Status: metav1.ConditionTrue,
			ObservedGeneration: 2, LastTransitionTime: metav1.Unix(1, 0), Reason: "Available", Message: "3 of 3"}},
	}
	// Every field of the status is set above, so that a field added to the type and not to the test fails it.
	fields := reflect.ValueOf(status)
	for i := range fields.NumField() {
		require.False(t, fields.Field(i).IsZero(), "the test sets AppStatus.%s", fields.Type().Field(i).Name)
	}

	data, err := json.Marshal(statusApplyConfiguration(plantest.NewApp(), status).Status)
	require.NoError(t, err)
	var applied berthv1alpha1.AppStatus
	require.NoError(t, json.Unmarshal(data, &applied))
	assert.Equal(t, status, applied)
}
