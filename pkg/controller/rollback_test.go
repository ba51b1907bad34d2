package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// rollingOutToBadImage is an App that was available at revision 1 (image web:1) and now asks for web:2, whose
// Deployment is at revision 2 with the ReplicaSets of both revisions; mutate changes the App first.
func rollingOutToBadImage(t *testing.T, mutate ...func(*berthv1alpha1.App)) (*berthv1alpha1.App, *appsv1.Deployment,
	[]runtime.Object) {
	t.Helper()
	good := plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Image = "web:1" })
	app, d, _ := converged(t, plantest.NewApp(append([]func(*berthv1alpha1.App){
		func(a *berthv1alpha1.App) { a.Spec.Image = "web:2"; a.Generation = 2 }}, mutate...)...))
	d.Annotations[plan.AnnotationDeploymentRevision] = "2"
	d.Generation, d.Status.ObservedGeneration = 2, 2
	d.Status.UpdatedReplicas, d.Status.Replicas = 1, 4
	app.Status.Revision, app.Status.AvailableRevision = 2, 1
	app.Status.Images = []string{"web:2"}
	replicaSet := func(revision, hash string, of *berthv1alpha1.App) *appsv1.ReplicaSet {
		template := applied(t, of).Spec.Template
		template.Labels[plan.LabelPodTemplateHash] = hash
		return &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web-" + hash, Namespace: "shop", Labels: template.Labels,
				Annotations:     map[string]string{plan.AnnotationDeploymentRevision: revision},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: d.UID, Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Template: template},
		}
	}
	return app, d, []runtime.Object{replicaSet("1", "aaa", good), replicaSet("2", "bbb", app)}
}

// ofTemplate puts the Pod in the ReplicaSet of the hash.
func ofTemplate(pod *corev1.Pod, hash string) *corev1.Pod {
	pod.Labels[plan.LabelPodTemplateHash] = hash
	pod.Status.Phase = corev1.PodPending
	return pod
}

func appliedDeployment(t *testing.T, f *fixture) *appsv1.Deployment {
	t.Helper()
	for _, a := range f.kubeClient.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetResource().Resource == "deployments" {
			d, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, p.GetName(), metav1.GetOptions{})
			require.NoError(t, err)
			return d
		}
	}
	t.Fatal("no apply of the Deployment")
	return nil
}

// TestAFailingRevisionIsRolledBack: a new revision whose Pod cannot pull its image is rolled back with one write
// of the Deployment, to the template of the available revision; the App says so once (one Warning Event), and
// the next sync, the rollback in the cache, writes nothing and keeps it.
func TestAFailingRevisionIsRolledBack(t *testing.T) {
	app, d, replicaSets := rollingOutToBadImage(t)
	objects := append(replicaSets, app, d, budgetOf(t, app),
		ofTemplate(plantest.WaitingPod("web-bbb-1", "ImagePullBackOff"), "bbb"))
	f := newFixture(t, objects...)

	require.NoError(t, f.sync())
	assert.Equal(t, []action{{"patch", "deployments", "", "web"}, applyAppStatus}, f.writes())
	rolledBack := appliedDeployment(t, f)
	assert.Equal(t, "web:1", rolledBack.Spec.Template.Spec.Containers[0].Image, "the template of revision 1")
	assert.NotContains(t, rolledBack.Spec.Template.Labels, plan.LabelPodTemplateHash)
	const message = "revision 2 (web:2) failed: ImagePullBackOff, in 1 of 1 Pods; rolled back to revision 1 (web:1)"
	assert.Equal(t, message, rolledBack.Annotations[plan.AnnotationRolledBack])
	degraded := degradedOf(f)
	require.NotNil(t, degraded)
	assert.Equal(t, plan.ReasonRolledBack, degraded.Reason)
	assert.Equal(t, message, degraded.Message)
	assert.Equal(t, []string{"Normal Updated Updated Deployment \"web\"", "Warning RolledBack " + message}, f.events())

	// The cache sees the rollback and the status; the deployment controller starts on it.
	app = app.DeepCopy()
	app.Status = f.appliedStatus()
	require.NoError(t, f.indexerFor(app).Update(app))
	rolledBack.Annotations[plan.AnnotationDeploymentRevision] = "3"
	rolledBack.Generation, rolledBack.Status = 3, d.Status
	require.NoError(t, f.indexerFor(rolledBack).Update(rolledBack))
	f.kubeClient.ClearActions()
	f.berthClient.ClearActions()
	require.NoError(t, f.sync())
	assert.Empty(t, f.writes(), "the rollback is kept, and not written again")
	assert.Empty(t, f.events())
}

// TestNoRollback: a failure that is not the revision's, or an App that cannot or must not be rolled back, leaves
// the Deployment as the App asks; the App reports what fails.
func TestNoRollback(t *testing.T) {
	quota := func(d *appsv1.Deployment) {
		d.Status.Conditions = append(d.Status.Conditions,
			appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue,
				Reason: "FailedCreate", Message: `pods "web-bbb-2" is forbidden: exceeded quota: pods`})
		d.Status.Conditions[1] = appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
			Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}
	}
	off := func(a *berthv1alpha1.App) {
		a.Spec.Rollout = &berthv1alpha1.Rollout{Rollback: &berthv1alpha1.Rollback{Disabled: true}}
	}
	tests := []struct {
		name        string
		mutate      func(*berthv1alpha1.App)
		deployment  func(*appsv1.Deployment)
		pod         *corev1.Pod
		dropGood    bool
		wantDegrade string
	}{
		{name: "rollback turned off", mutate: off,
			pod: ofTemplate(plantest.WaitingPod("web-bbb-1", "ImagePullBackOff"), "bbb"), wantDegrade: "ImagePullBackOff"},
		{name: "a Pod of the old revision fails",
			pod: ofTemplate(plantest.WaitingPod("web-aaa-1", "ImagePullBackOff"), "aaa"), wantDegrade: "ImagePullBackOff"},
		{name: "the revision to go back to is gone",
			pod: ofTemplate(plantest.WaitingPod("web-bbb-1", "ImagePullBackOff"), "bbb"), dropGood: true,
			wantDegrade: "ImagePullBackOff"},
		{name: "a quota refuses the new Pods", deployment: quota,
			pod: ofTemplate(plantest.WaitingPod("web-aaa-1", "ContainerCreating"), "aaa"), wantDegrade: "FailedCreate"},
		{name: "a new App's first revision", mutate: func(a *berthv1alpha1.App) { a.Status.AvailableRevision = 0 },
			pod: ofTemplate(plantest.WaitingPod("web-bbb-1", "ImagePullBackOff"), "bbb"), wantDegrade: "ImagePullBackOff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, d, replicaSets := rollingOutToBadImage(t)
			if tt.mutate != nil {
				tt.mutate(app)
			}
			if tt.deployment != nil {
				tt.deployment(d)
			}
			if tt.dropGood {
				replicaSets = replicaSets[1:]
			}
			f := newFixture(t, append(replicaSets, app, d, budgetOf(t, app), tt.pod)...)
			require.NoError(t, f.sync())
			assert.Equal(t, []action{applyAppStatus}, f.writes(), "only the status")
			degraded := degradedOf(f)
			require.NotNil(t, degraded)
			assert.Equal(t, tt.wantDegrade, degraded.Reason)
		})
	}
}

func degradedOf(f *fixture) *metav1.Condition {
	status := f.appliedStatus()
	return apimeta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
}
