package plan

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// defaultMaxUnavailable is how many of an App's Pods a drain may evict at once when the App does not say.
var defaultMaxUnavailable = intstr.FromInt32(1)

// IsAutoscaled tells whether the App's replicas are set by an autoscaler rather than by spec.replicas.
func IsAutoscaled(app *berthv1alpha1.App) bool {
	return app.Spec.Autoscaling != nil
}

// minReplicas is the fewest Pods an autoscaled App runs.
func minReplicas(a *berthv1alpha1.Autoscaling) int32 {
	if a.MinReplicas == nil {
		return 1
	}
	return *a.MinReplicas
}

// PodDisruptionBudget is the budget the App asks for, or nil when it has none: it has turned it off, or it runs
// fewer than 2 Pods (an autoscaled App, fewer than 2 at most), where a budget would protect nothing.
//
// A Pod that is not ready may always be evicted (AlwaysAllow): a budget counts only ready Pods, so that with
// IfHealthyBudget a broken App, none of whose Pods is ready, would block every node drain.
func PodDisruptionBudget(app *berthv1alpha1.App) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	budget := app.Spec.DisruptionBudget
	if budget != nil && budget.Disabled {
		return nil
	}
	most := desiredReplicas(app)
	if a := app.Spec.Autoscaling; a != nil {
		most = a.MaxReplicas
	}
	if most < 2 {
		return nil
	}
	maxUnavailable := defaultMaxUnavailable
	if budget != nil && budget.MaxUnavailable != nil {
		maxUnavailable = *budget.MaxUnavailable
	}
	return policyv1ac.PodDisruptionBudget(app.Name, app.Namespace).
		WithLabels(ObjectLabels(app)).
		WithOwnerReferences(ownerReference(app)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMaxUnavailable(maxUnavailable).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(app))).
			WithUnhealthyPodEvictionPolicy(policyv1.AlwaysAllow))
}

// HorizontalPodAutoscaler is the autoscaler the App asks for, or nil when it is not autoscaled. It scales the
// App's Deployment, whose replicas berth then leaves to it (see Deployment).
func HorizontalPodAutoscaler(app *berthv1alpha1.App) *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration {
	a := app.Spec.Autoscaling
	if a == nil {
		return nil
	}
	spec := autoscalingv2ac.HorizontalPodAutoscalerSpec().
		WithScaleTargetRef(autoscalingv2ac.CrossVersionObjectReference().
			WithAPIVersion(appsv1.SchemeGroupVersion.String()).
			WithKind("Deployment").
			WithName(app.Name)).
		WithMinReplicas(minReplicas(a)).
		WithMaxReplicas(a.MaxReplicas)
	for _, target := range []struct {
		resource    corev1.ResourceName
		utilization *int32
	}{{corev1.ResourceCPU, a.CPUUtilization}, {corev1.ResourceMemory, a.MemoryUtilization}} {
		if target.utilization == nil {
			continue
		}
		spec.WithMetrics(autoscalingv2ac.MetricSpec().
			WithType(autoscalingv2.ResourceMetricSourceType).
			WithResource(autoscalingv2ac.ResourceMetricSource().
				WithName(target.resource).
				WithTarget(autoscalingv2ac.MetricTarget().
					WithType(autoscalingv2.UtilizationMetricType).
					WithAverageUtilization(*target.utilization))))
	}
	return autoscalingv2ac.HorizontalPodAutoscaler(app.Name, app.Namespace).
		WithLabels(ObjectLabels(app)).
		WithOwnerReferences(ownerReference(app)).
		WithSpec(spec)
}

// currentDesiredReplicas is how many Pods the App should have now: spec.replicas, or for an autoscaled App the
// number its autoscaler last set on the Deployment (its minimum before there is one).
func currentDesiredReplicas(app *berthv1alpha1.App, d *appsv1.Deployment) int32 {
	a := app.Spec.Autoscaling
	switch {
	case a == nil:
		return desiredReplicas(app)
	case d != nil:
		return replicasOf(d)
	default:
		return minReplicas(a)
	}
}
