package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

var routed = func(a *berthv1alpha1.App) {
	a.Spec.Replicas = ptr.To[int32](1)
	a.Spec.Route = &berthv1alpha1.Route{Host: "a.example.com"}
}

// TestAnAppWhoseRouteKindIsNotInstalledIsDegraded: the cluster does not serve HTTPRoutes, which berth is told to
// make; the App says so, and the sync succeeds (no retry: only berth's restart, once they are installed, helps).
func TestAnAppWhoseRouteKindIsNotInstalledIsDegraded(t *testing.T) {
	f := newFixtureWithOptions(t, Options{Route: plan.RouteOptions{Kind: plan.RouteKindHTTPRoute, GatewayName: "g",
		GatewayNamespace: "infra"}}, plantest.NewApp(plantest.WithPort(8080), routed))

	require.NoError(t, f.sync(), "nothing to retry")

	assert.Equal(t, []action{createDeployment, createService, applyAppStatus}, f.writes())
	degraded := meta.FindStatusCondition(f.appliedStatus().Conditions, berthv1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	assert.Equal(t, plan.ReasonRouteKindNotInstalled, degraded.Reason)
	assert.Contains(t, degraded.Message, "HTTPRoute")
	assert.Equal(t, "http://web.shop.svc.cluster.local:8080", f.appliedStatus().URL, "no route, so the Service's")
}

// TestAnAppWithARouteHasAnIngress: with --route-kind=Ingress, the App's route is an Ingress, made with the other
// objects; once it exists, the status gives the external URL; without the route, it is deleted.
func TestAnAppWithARouteHasAnIngress(t *testing.T) {
	opts := Options{Route: plan.RouteOptions{Kind: plan.RouteKindIngress}}
	f := newFixtureWithOptions(t, opts, plantest.NewApp(plantest.WithPort(8080), routed))

	require.NoError(t, f.sync())

	createIngress := action{"create", "ingresses", "", "web"}
	assert.Equal(t, []action{createDeployment, createService, createIngress, applyAppStatus}, f.writes())
	assert.Equal(t, "http://a.example.com", f.appliedStatus().URL)
	ingress, err := f.kubeClient.NetworkingV1().Ingresses("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, isControlledBy(ingress, plantest.NewApp()))
	assert.Equal(t, "a.example.com", ingress.Spec.Rules[0].Host)
}
