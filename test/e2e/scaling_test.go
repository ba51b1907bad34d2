package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/test/framework"
)

// TestDisruptionBudget: an App of 3 replicas has a PodDisruptionBudget that lets a drain take one Pod at a time
// and never waits for a Pod that is not ready; the App's own maxUnavailable replaces the default; at 1 replica
// the budget is deleted, and turning it off deletes it too.
func TestDisruptionBudget(t *testing.T) {
	t.Parallel()
	ns := newLabelledNamespace(t, podSecurity("restricted"))
	apply(t, ns, appManifest("web", goodImage, 3, 8080))
	app := waitAvailable(t, ns, "web", 3)

	budget := waitBudget(t, ns, func(b *policyv1.PodDisruptionBudget) error {
		if b.Spec.MaxUnavailable == nil || *b.Spec.MaxUnavailable != intstr.FromInt32(1) {
			return fmt.Errorf("maxUnavailable %v, want 1", b.Spec.MaxUnavailable)
		}
		return nil
	})
	assert.True(t, controlledBy(budget, app), "the budget is the App's")
	assert.Equal(t, ptr.To(policyv1.AlwaysAllow), budget.Spec.UnhealthyPodEvictionPolicy,
		"a broken App never blocks a drain")
	assert.Equal(t, map[string]string{"app.kubernetes.io/instance": "web", "app.kubernetes.io/managed-by": "berth"},
		budget.Spec.Selector.MatchLabels, "the selector of the App's Pods")
	eventually(t, "the disruption controller to count the App's 3 healthy Pods", func(ctx context.Context) error {
		b, err := kubeClient.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if b.Status.CurrentHealthy != 3 || b.Status.DisruptionsAllowed != 1 {
			return fmt.Errorf("currentHealthy %d, disruptionsAllowed %d", b.Status.CurrentHealthy,
				b.Status.DisruptionsAllowed)
		}
		return nil
	})

	apply(t, ns, appManifest("web", goodImage, 3, 8080)+"  disruptionBudget:\n    maxUnavailable: 2\n")
	waitBudget(t, ns, func(b *policyv1.PodDisruptionBudget) error {
		if b.Spec.MaxUnavailable == nil || *b.Spec.MaxUnavailable != intstr.FromInt32(2) {
			return fmt.Errorf("maxUnavailable %v, want 2", b.Spec.MaxUnavailable)
		}
		return nil
	})

	kubectl(t, "scale", "app/web", "--replicas=1", "--namespace="+ns)
	waitNoBudget(t, ns, "at 1 replica")
	// The first deletion of the App's objects: its Event says which, and why.
	waitEvent(t, ns, "web", "Normal", "Deleted")

	apply(t, ns, appManifest("web", goodImage, 2, 8080))
	waitBudget(t, ns, func(*policyv1.PodDisruptionBudget) error { return nil })
	apply(t, ns, appManifest("web", goodImage, 2, 8080)+"  disruptionBudget:\n    disabled: true\n")
	waitNoBudget(t, ns, "turned off")
}

// TestAutoscaling: an autoscaled App has a HorizontalPodAutoscaler, and berth and the autoscaler do not fight
// over the replicas. Turning autoscaling on keeps the Pods the App has; kube-controller-manager's autoscaler
// scales the Deployment (to the minimum, which it does without metrics), and after that the API server's audit
// log shows no write of berth's to the Deployment or the autoscaler; the status and `kubectl get -o wide` show the
// counts; `kubectl scale` is refused, saying what to change; turning autoscaling off deletes the autoscaler and
// gives the replicas back to the App.
func TestAutoscaling(t *testing.T) {
	t.Parallel()
	ns := newLabelledNamespace(t, podSecurity("restricted"))
	manifest := func(replicas int, autoscaling string) string {
		return appManifest("web", goodImage, replicas, 8080) +
			"  resources:\n    requests:\n      cpu: 50m\n" + autoscaling
	}
	apply(t, ns, manifest(3, ""))
	waitAvailable(t, ns, "web", 3)

	// On, with a minimum below the 3 Pods the App has: they stay (no metrics, so no scaling down).
	apply(t, ns, manifest(3, "  autoscaling:\n    minReplicas: 2\n    maxReplicas: 6\n    cpuUtilization: 50\n"))
	eventually(t, "the App's HorizontalPodAutoscaler", func(ctx context.Context) error {
		h, err := kubeClient.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 6 {
			return fmt.Errorf("min %v, max %d", h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		return nil
	})
	app := waitAvailable(t, ns, "web", 3)
	d, err := kubeClient.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(3), *d.Spec.Replicas, "turning autoscaling on keeps the App's Pods")
	assert.Equal(t, int32(3), app.Status.DesiredReplicas)
	var handedOver bool
	for _, entry := range d.ManagedFields {
		handedOver = handedOver || entry.Manager == "berth-replicas-handover"
	}
	assert.True(t, handedOver, "berth handed the replicas over: %v", managers(d.ManagedFields))

	out, err := cluster.Kubectl(t.Context(), "scale", "app/web", "--replicas=5", "--namespace="+ns)
	require.Error(t, err, "kubectl scale of an autoscaled App: %s", out)
	assert.Contains(t, err.Error(), "spec.replicas cannot change while the App is autoscaled")

	// A minimum above the 3 Pods: the autoscaler scales the Deployment to it.
	raised := time.Now()
	apply(t, ns, manifest(3, "  autoscaling:\n    minReplicas: 4\n    maxReplicas: 6\n    cpuUtilization: 50\n"))
	var scaled framework.AuditEvent
	eventually(t, "the autoscaler to scale the Deployment to 4", func(ctx context.Context) error {
		writes, err := cluster.Writes(raised, func(e framework.AuditEvent) bool {
			return e.ObjectRef.Namespace == ns && e.ObjectRef.Resource == "deployments" &&
				e.ObjectRef.Subresource == "scale" && strings.Contains(e.User.Username, "horizontal-pod-autoscaler")
		})
		if err != nil {
			return err
		}
		if len(writes) == 0 {
			return fmt.Errorf("no scale of Deployment %s/web by the autoscaler in the audit log", ns)
		}
		scaled = writes[len(writes)-1]
		return nil
	})
	app = waitAvailable(t, ns, "web", 4)
	assert.Equal(t, int32(4), app.Status.DesiredReplicas, "the status tells what the autoscaler wants")
	assert.Equal(t, "4/4", app.Status.Ready)
	wide := kubectl(t, "get", "app", "web", "--namespace="+ns, "-o", "wide")
	assert.Regexp(t, `(?m)^NAME\s+IMAGE\s+READY\s+AVAILABLE\s+AGE\s+DEGRADED\s+CURRENT\s+DESIRED\s`, wide)
	assert.Regexp(t, `(?m)^web\s+\S+\s+4/4\s+True\s+\S+\s+AsExpected\s+4\s+4\s`, wide)

	// Long enough for the events of the scale (the Deployment's, its Pods') to reach berth and be synced.
	time.Sleep(5 * time.Second)
	fights, err := cluster.Writes(scaled.StageTimestamp, func(e framework.AuditEvent) bool {
		return e.ByBerth() && e.ObjectRef.Namespace == ns &&
			(e.ObjectRef.Resource == "deployments" || e.ObjectRef.Resource == "horizontalpodautoscalers")
	})
	require.NoError(t, err)
	assert.Empty(t, fights, "berth wrote the Deployment or the autoscaler after the autoscaler scaled (%s)", scaled)

	// Off: the autoscaler goes, and the App's replicas are the Deployment's again.
	apply(t, ns, manifest(2, ""))
	eventually(t, "the HorizontalPodAutoscaler to be deleted", func(ctx context.Context) error {
		_, err := kubeClient.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("it is still there: %v", err)
	})
	waitAvailable(t, ns, "web", 2)
}

// waitBudget waits until the App web of namespace has a PodDisruptionBudget that check accepts, and returns it.
func waitBudget(t *testing.T, namespace string, check func(*policyv1.PodDisruptionBudget) error) *policyv1.PodDisruptionBudget {
	t.Helper()
	var budget *policyv1.PodDisruptionBudget
	eventually(t, "the App's PodDisruptionBudget", func(ctx context.Context) error {
		var err error
		if budget, err = kubeClient.PolicyV1().PodDisruptionBudgets(namespace).Get(ctx, "web", metav1.GetOptions{}); err != nil {
			return err
		}
		return check(budget)
	})
	return budget
}

// waitNoBudget waits until the App web of namespace has no PodDisruptionBudget.
func waitNoBudget(t *testing.T, namespace, why string) {
	t.Helper()
	eventually(t, "the PodDisruptionBudget to be deleted ("+why+")", func(ctx context.Context) error {
		_, err := kubeClient.PolicyV1().PodDisruptionBudgets(namespace).Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("it is still there: %v", err)
	})
}

// waitEvent waits for an Event of berth's about the App.
func waitEvent(t *testing.T, namespace, app, eventType, reason string) {
	t.Helper()
	eventually(t, fmt.Sprintf("a %s Event %s about App %s", eventType, reason, app), func(ctx context.Context) error {
		return hasEvent(ctx, namespace, app, eventType, reason)
	})
}

func managers(entries []metav1.ManagedFieldsEntry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, e.Manager)
	}
	return names
}
