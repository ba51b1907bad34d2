package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

func replicas(n int32) func(*berthv1alpha1.App) {
	return func(a *berthv1alpha1.App) { a.Spec.Replicas = ptr.To(n) }
}

func autoscaling(min, max int32) func(*berthv1alpha1.App) {
	return func(a *berthv1alpha1.App) {
		a.Spec.Autoscaling = &berthv1alpha1.Autoscaling{MinReplicas: ptr.To(min), MaxReplicas: max,
			CPUUtilization: ptr.To[int32](70)}
	}
}

func TestDesiredPodDisruptionBudget(t *testing.T) {
	one, half := intstr.FromInt32(1), intstr.FromString("50%")
	tests := []struct {
		name string
		app  *berthv1alpha1.App
		want *intstr.IntOrString // maxUnavailable; nil for no budget
	}{
		{"3 replicas: 1 Pod at a time", plantest.NewApp(replicas(3)), &one},
		{"2 replicas", plantest.NewApp(replicas(2)), &one},
		{"1 replica: nothing to protect", plantest.NewApp(replicas(1)), nil},
		{"stopped", plantest.NewApp(replicas(0)), nil},
		{"what the App says", plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.DisruptionBudget = &berthv1alpha1.DisruptionBudget{MaxUnavailable: &half}
		}), &half},
		{"turned off", plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.DisruptionBudget = &berthv1alpha1.DisruptionBudget{Disabled: true}
		}), nil},
		{"autoscaled up to 5, from 1", plantest.NewApp(replicas(1), autoscaling(1, 5)), &one},
		{"autoscaled, at most 1", plantest.NewApp(replicas(3), autoscaling(1, 1)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired := PodDisruptionBudget(tt.app)
			if tt.want == nil {
				assert.Nil(t, desired)
				return
			}
			require.NotNil(t, desired)
			var b policyv1.PodDisruptionBudget
			require.NoError(t, toTyped(desired, &b))
			assert.Equal(t, tt.want, b.Spec.MaxUnavailable)
			assert.Nil(t, b.Spec.MinAvailable)
			assert.Equal(t, SelectorLabels(tt.app), b.Spec.Selector.MatchLabels)
			assert.Equal(t, ptr.To(policyv1.AlwaysAllow), b.Spec.UnhealthyPodEvictionPolicy,
				"a broken App never blocks a drain")
			assert.Equal(t, ObjectLabels(tt.app), b.Labels)
			require.Len(t, b.OwnerReferences, 1)
			assert.True(t, *b.OwnerReferences[0].Controller)
		})
	}
}

func TestDesiredHorizontalPodAutoscaler(t *testing.T) {
	assert.Nil(t, HorizontalPodAutoscaler(plantest.NewApp()), "an App that is not autoscaled has none")

	app := plantest.NewApp(func(a *berthv1alpha1.App) {
		a.Spec.Autoscaling = &berthv1alpha1.Autoscaling{MaxReplicas: 10, CPUUtilization: ptr.To[int32](70),
			MemoryUtilization: ptr.To[int32](85)}
	})
	var h autoscalingv2.HorizontalPodAutoscaler
	require.NoError(t, toTyped(HorizontalPodAutoscaler(app), &h))
	assert.Equal(t, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		h.Spec.ScaleTargetRef)
	assert.Equal(t, ptr.To[int32](1), h.Spec.MinReplicas, "the minimum defaults to 1")
	assert.Equal(t, int32(10), h.Spec.MaxReplicas)
	require.Len(t, h.Spec.Metrics, 2)
	for i, want := range []struct {
		resource    string
		utilization int32
	}{{"cpu", 70}, {"memory", 85}} {
		m := h.Spec.Metrics[i]
		assert.Equal(t, autoscalingv2.ResourceMetricSourceType, m.Type)
		assert.Equal(t, want.resource, string(m.Resource.Name))
		assert.Equal(t, autoscalingv2.UtilizationMetricType, m.Resource.Target.Type)
		assert.Equal(t, ptr.To(want.utilization), m.Resource.Target.AverageUtilization)
	}
	assert.Equal(t, ObjectLabels(app), h.Labels)
}

func TestAnAutoscaledDeploymentLeavesTheReplicasToTheAutoscaler(t *testing.T) {
	assert.Equal(t, ptr.To[int32](3), typedDeployment(t, plantest.NewApp(replicas(3))).Spec.Replicas)
	assert.Nil(t, typedDeployment(t, plantest.NewApp(replicas(3), autoscaling(2, 5))).Spec.Replicas,
		"berth does not own the replicas of an autoscaled App")
}

func TestStatusOfAnAutoscaledAppTellsWhatTheAutoscalerWants(t *testing.T) {
	app := plantest.NewApp(replicas(3), autoscaling(2, 5))
	assert.Equal(t, int32(2), currentDesiredReplicas(app, nil), "the minimum, before there is a Deployment")
	d := plantest.DeploymentStatus(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](4) })
	assert.Equal(t, int32(4), currentDesiredReplicas(app, d), "what the autoscaler set")
	assert.Equal(t, int32(3), currentDesiredReplicas(plantest.NewApp(replicas(3)), d), "spec.replicas otherwise")
}
