package controller

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

var (
	createAutoscaler = action{"create", "horizontalpodautoscalers", "", "web"}
	autoscaled       = func(a *berthv1alpha1.App) {
		a.Spec.Autoscaling = &berthv1alpha1.Autoscaling{MinReplicas: ptr.To[int32](2), MaxReplicas: 5,
			CPUUtilization: ptr.To[int32](80)}
	}
)

// TestTurningAutoscalingOnKeepsTheReplicas: berth's apply of an autoscaled App's Deployment leaves replicas out,
// which server-side apply would take for their removal; the handover keeps the Deployment's 3 Pods.
func TestTurningAutoscalingOnKeepsTheReplicas(t *testing.T) {
	_, d, _ := converged(t, plantest.NewApp())
	now := plantest.NewApp(autoscaled)
	now.Generation = 2
	f := newFixture(t, now, budgetOf(t, now), d)
	require.True(t, ownsReplicas(t, d), "berth applied the replicas of the App before")

	require.NoError(t, f.sync())

	assert.Equal(t, []action{applyDeployment, applyDeployment, createAutoscaler, applyAppStatus}, f.writes(),
		"the handover, berth's apply, the autoscaler")
	assert.Equal(t, []string{ReplicasFieldManager, FieldManager}, appliedBy(f), "the handover first")
	got, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got.Spec.Replicas, "the replicas stay")
	assert.Equal(t, int32(3), *got.Spec.Replicas, "as they were, until the autoscaler scales")
	assert.False(t, ownsReplicas(t, got), "berth no longer owns them")
	assert.Equal(t, "nginx:1.27", got.Spec.Template.Spec.Containers[0].Image)
}

// TestBerthDoesNotUndoTheAutoscaler: once the autoscaler has scaled the Deployment, a sync of the App writes
// nothing to it.
func TestBerthDoesNotUndoTheAutoscaler(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp(autoscaled))
	require.False(t, ownsReplicas(t, d), "an autoscaled App's Deployment is applied without replicas")
	scaled := updatedByAnotherManager(t, d, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](4) })
	f := newFixture(t, app, budgetOf(t, app), scaled, autoscalerOf(t, app))

	require.NoError(t, f.sync())

	assert.Equal(t, []action{applyAppStatus}, f.writes(), "the autoscaler's 4 Pods are not berth's to change")
	assert.Equal(t, int32(4), f.appliedStatus().DesiredReplicas, "the status tells what the autoscaler wants")
}

// ownsReplicas is berthOwnsReplicas, for tests.
func ownsReplicas(t *testing.T, d *appsv1.Deployment) bool {
	t.Helper()
	owns, err := berthOwnsReplicas(d)
	require.NoError(t, err)
	return owns
}

// appliedBy lists the field managers of the applies of Deployments that the fixture's client received.
func appliedBy(f *fixture) []string {
	var managers []string
	for _, a := range f.kubeClient.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "deployments" {
			managers = append(managers, a.(k8stesting.PatchActionImpl).GetPatchOptions().FieldManager)
		}
	}
	return managers
}

// autoscalerOf is the App's HorizontalPodAutoscaler as berth applied it.
func autoscalerOf(t *testing.T, app *berthv1alpha1.App) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	desired := plan.HorizontalPodAutoscaler(app)
	require.NotNil(t, desired, "the App is not autoscaled")
	desired.WithAnnotations(map[string]string{AnnotationAppliedFrom: hashOf(t, desired)})
	h, err := kubefake.NewClientset().AutoscalingV2().HorizontalPodAutoscalers(app.Namespace).Apply(
		context.Background(), desired, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	require.NoError(t, err)
	return h
}
