package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
)

// TestRouteAsHTTPRoute: the suite's cluster serves Gateway API, so an App's route is an HTTPRoute. Without a
// Gateway (berth here has no --gateway) the App says so; with one, the HTTPRoute sends the host and path to the
// port the route names, on its Service port, and the status gives the external URL; without the route, the
// HTTPRoute goes.
func TestRouteAsHTTPRoute(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	app := appManifest("api", goodImage, 1, 0) + `  ports:
  - {name: metrics, port: 9090, internal: true}
  - {name: api, port: 8080, servicePort: 80}
`
	apply(t, ns, app+"  route: {host: api.example.com, path: /v1}\n")
	eventually(t, "App api to say it has no Gateway", func(ctx context.Context) error {
		a, err := getApp(ctx, ns, "api")
		if err != nil {
			return err
		}
		return hasCondition(a, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonNoGateway)
	})

	apply(t, ns, app+"  route: {host: api.example.com, path: /v1, tlsSecretName: api-tls, gateway: {name: public, namespace: infra, sectionName: https}}\n")
	var route *gatewayv1.HTTPRoute
	eventually(t, "the App's HTTPRoute", func(ctx context.Context) error {
		var err error
		route, err = gatewayClient.GatewayV1().HTTPRoutes(ns).Get(ctx, "api", metav1.GetOptions{})
		return err
	})
	a := waitAvailable(t, ns, "api", 1)
	assert.True(t, controlledBy(route, a))
	assert.Equal(t, []gatewayv1.Hostname{"api.example.com"}, route.Spec.Hostnames)
	assert.Equal(t, []gatewayv1.ParentReference{{Group: ptr.To(gatewayv1.Group(gatewayv1.GroupName)),
		Kind: ptr.To(gatewayv1.Kind("Gateway")), Namespace: ptr.To(gatewayv1.Namespace("infra")), Name: "public",
		SectionName: ptr.To(gatewayv1.SectionName("https"))}}, route.Spec.ParentRefs)
	require.Len(t, route.Spec.Rules, 1)
	assert.Equal(t, "/v1", *route.Spec.Rules[0].Matches[0].Path.Value)
	backend := route.Spec.Rules[0].BackendRefs[0]
	assert.Equal(t, gatewayv1.ObjectName("api"), backend.Name)
	assert.Equal(t, ptr.To(gatewayv1.PortNumber(80)), backend.Port, "the Service port of api")
	assert.Equal(t, "https://api.example.com/v1", a.Status.URL)

	apply(t, ns, app)
	eventually(t, "the HTTPRoute to go", func(ctx context.Context) error {
		_, err := gatewayClient.GatewayV1().HTTPRoutes(ns).Get(ctx, "api", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
	eventually(t, "the URL to be the Service's again", func(ctx context.Context) error {
		a, err := getApp(ctx, ns, "api")
		if err != nil {
			return err
		}
		if want := fmt.Sprintf("http://api.%s.svc.cluster.local:80", ns); a.Status.URL != want {
			return fmt.Errorf("status.url %q, want %q", a.Status.URL, want)
		}
		return nil
	})
}
