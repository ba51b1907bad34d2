package controller

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	"k8s.io/client-go/tools/cache"
)

// An autoscaled App's replicas belong to its HorizontalPodAutoscaler: berth's apply of the Deployment leaves
// spec.replicas out (plan.Deployment), so that neither undoes the other's writes. But server-side apply removes a
// field that its manager stops setting when no other manager owns it, and the Deployment's replicas would fall
// back to 1: an App of 3 Pods that turns autoscaling on would drop to 1 Pod until the autoscaler scales it up
// again. So before that apply, berth hands the field over: it applies the Deployment's current replicas alone,
// as a manager of its own (ReplicasFieldManager), which keeps owning the field once berth's own apply drops it,
// until the autoscaler's first scale takes it. It costs one write, once, when an App becomes autoscaled (or its
// Deployment, created by berth, first changes).

// ReplicasFieldManager is the field manager that holds a Deployment's replicas between berth and the autoscaler.
const ReplicasFieldManager = "berth-replicas-handover"

// releaseReplicas hands live's spec.replicas over (see above) when desired leaves them out and berth's own entry
// in live's managedFields holds them. It returns the Deployment as the handover left it.
func releaseReplicas(ctx context.Context, client appsv1client.DeploymentsGetter, exp *expectations,
	live *appsv1.Deployment, desired *appsv1ac.DeploymentApplyConfiguration) (*appsv1.Deployment, bool, error) {
	if desired.Spec == nil || desired.Spec.Replicas != nil || live.Spec.Replicas == nil {
		return live, false, nil
	}
	owns, err := berthOwnsReplicas(live)
	if err != nil || !owns {
		return live, false, err
	}
	// The resourceVersion makes the apply fail, rather than put back an older count, if the Deployment changed
	// since it was read.
	handover := appsv1ac.Deployment(live.Name, live.Namespace).
		WithResourceVersion(live.ResourceVersion).
		WithSpec(appsv1ac.DeploymentSpec().WithReplicas(*live.Spec.Replicas))
	handed, err := client.Deployments(live.Namespace).Apply(ctx, handover,
		metav1.ApplyOptions{FieldManager: ReplicasFieldManager, Force: true})
	if err != nil {
		return live, false, fmt.Errorf("handing the replicas of Deployment %q to its autoscaler: %w", live.Name, err)
	}
	exp.wrote("deployments", cache.MetaObjectToName(live), handed.ResourceVersion)
	return handed, true, nil
}

// berthOwnsReplicas tells whether one of berth's entries in d's managedFields owns spec.replicas.
func berthOwnsReplicas(d *appsv1.Deployment) (bool, error) {
	for _, entry := range d.ManagedFields {
		if entry.Manager != FieldManager || entry.Subresource != "" || entry.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if err := json.Unmarshal(entry.FieldsV1.GetRawBytes(), &fields); err != nil {
			return false, fmt.Errorf("reading berth's managedFields of Deployment %q: %w", d.Name, err)
		}
		if _, ok := fields.Spec["f:replicas"]; ok {
			return true, nil
		}
	}
	return false, nil
}
