package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

func withRoute(r berthv1alpha1.Route) func(*berthv1alpha1.App) {
	return func(a *berthv1alpha1.App) { a.Spec.Route = &r }
}

// twoPorts is an App whose metrics port is internal and whose API is exposed on 80.
func twoPorts(a *berthv1alpha1.App) {
	a.Spec.Ports = []berthv1alpha1.Port{
		{Name: "metrics", Port: 9090, Internal: true},
		{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		{Name: "api", Port: 8080, ServicePort: ptr.To[int32](80)},
	}
}

var gatewayOptions = RouteOptions{Kind: RouteKindHTTPRoute, GatewayNamespace: "infra", GatewayName: "public"}

func TestDesiredHTTPRoute(t *testing.T) {
	assert.Nil(t, HTTPRoute(plantest.NewApp(plantest.WithPort(8080)), gatewayOptions), "no route asked for")
	assert.Nil(t, HTTPRoute(plantest.NewApp(plantest.WithPort(8080), withRoute(berthv1alpha1.Route{Host: "a.example.com"})),
		RouteOptions{Kind: RouteKindHTTPRoute}), "no Gateway to attach to")

	app := plantest.NewApp(twoPorts, withRoute(berthv1alpha1.Route{Host: "api.example.com", Path: "/v1"}))
	var r gatewayv1.HTTPRoute
	require.NoError(t, toTyped(HTTPRoute(app, gatewayOptions), &r))
	require.Len(t, r.Spec.ParentRefs, 1)
	parent := r.Spec.ParentRefs[0]
	assert.Equal(t, "public", string(parent.Name))
	assert.Equal(t, "infra", string(*parent.Namespace), "berth's --gateway")
	assert.Equal(t, "Gateway", string(*parent.Kind))
	assert.Equal(t, []gatewayv1.Hostname{"api.example.com"}, r.Spec.Hostnames)
	require.Len(t, r.Spec.Rules, 1)
	rule := r.Spec.Rules[0]
	require.Len(t, rule.Matches, 1)
	assert.Equal(t, "/v1", *rule.Matches[0].Path.Value)
	assert.Equal(t, gatewayv1.PathMatchPathPrefix, *rule.Matches[0].Path.Type)
	require.Len(t, rule.BackendRefs, 1)
	backend := rule.BackendRefs[0]
	assert.Equal(t, "web", string(backend.Name), "the App's Service")
	assert.Equal(t, gatewayv1.PortNumber(80), *backend.Port, "the Service's port of the first exposed TCP port")
	assert.Equal(t, ObjectLabels(app), r.Labels)
	require.Len(t, r.OwnerReferences, 1)

	r = gatewayv1.HTTPRoute{}
	own := plantest.NewApp(twoPorts, withRoute(berthv1alpha1.Route{Host: "a.example.com",
		Gateway: &berthv1alpha1.GatewayReference{Name: "private", SectionName: "https"}}))
	require.NoError(t, toTyped(HTTPRoute(own, gatewayOptions), &r))
	assert.Equal(t, "private", string(r.Spec.ParentRefs[0].Name), "the App's Gateway before berth's")
	assert.Equal(t, "shop", string(*r.Spec.ParentRefs[0].Namespace), "in the App's namespace by default")
	assert.Equal(t, "https", string(*r.Spec.ParentRefs[0].SectionName))
	assert.Equal(t, "/", *r.Spec.Rules[0].Matches[0].Path.Value, "every path by default")
}

func TestDesiredIngress(t *testing.T) {
	assert.Nil(t, Ingress(plantest.NewApp(plantest.WithPort(8080)), RouteOptions{Kind: RouteKindIngress}))

	app := plantest.NewApp(twoPorts, withRoute(berthv1alpha1.Route{Host: "api.example.com", Path: "/v1",
		TLSSecretName: "api-tls"}))
	var ing networkingv1.Ingress
	require.NoError(t, toTyped(Ingress(app, RouteOptions{Kind: RouteKindIngress, IngressClassName: "nginx"}), &ing))
	assert.Equal(t, ptr.To("nginx"), ing.Spec.IngressClassName)
	require.Len(t, ing.Spec.Rules, 1)
	assert.Equal(t, "api.example.com", ing.Spec.Rules[0].Host)
	path := ing.Spec.Rules[0].HTTP.Paths[0]
	assert.Equal(t, "/v1", path.Path)
	assert.Equal(t, ptr.To(networkingv1.PathTypePrefix), path.PathType)
	assert.Equal(t, "web", path.Backend.Service.Name)
	assert.Equal(t, "api", path.Backend.Service.Port.Name)
	assert.Equal(t, []networkingv1.IngressTLS{{Hosts: []string{"api.example.com"}, SecretName: "api-tls"}}, ing.Spec.TLS)

	ing = networkingv1.Ingress{}
	require.NoError(t, toTyped(Ingress(plantest.NewApp(plantest.WithPort(8080),
		withRoute(berthv1alpha1.Route{Host: "a.example.com"})), RouteOptions{Kind: RouteKindIngress}), &ing))
	assert.Nil(t, ing.Spec.IngressClassName, "the cluster's default class")
	assert.Empty(t, ing.Spec.TLS)
	assert.Equal(t, "http", ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name, "spec.port's name")
}

func TestRouteProblem(t *testing.T) {
	routed := plantest.NewApp(plantest.WithPort(8080), withRoute(berthv1alpha1.Route{Host: "a.example.com"}))
	reason, _ := RouteProblem(plantest.NewApp(), RouteOptions{Kind: RouteKindHTTPRoute}, false)
	assert.Empty(t, reason, "no route, no problem")
	reason, message := RouteProblem(routed, gatewayOptions, false)
	assert.Equal(t, ReasonRouteKindNotInstalled, reason)
	assert.Contains(t, message, "HTTPRoute")
	assert.Contains(t, message, "--route-kind=Ingress")
	reason, message = RouteProblem(routed, RouteOptions{Kind: RouteKindHTTPRoute}, true)
	assert.Equal(t, ReasonNoGateway, reason)
	assert.Contains(t, message, "--gateway")
	reason, _ = RouteProblem(routed, gatewayOptions, true)
	assert.Empty(t, reason)
	reason, _ = RouteProblem(routed, RouteOptions{Kind: RouteKindIngress}, true)
	assert.Empty(t, reason, "an Ingress needs no Gateway")
}

func TestStatusURLOfARoutedApp(t *testing.T) {
	app := plantest.NewApp(plantest.WithPort(8080), withRoute(berthv1alpha1.Route{Host: "a.example.com", Path: "/v1"}))
	status := Status(app, Observed{}, "cluster.local", metav1.Now())
	assert.Equal(t, "http://web.shop.svc.cluster.local:8080", status.URL, "until the route exists, the Service's")
	status = Status(app, Observed{Routed: true}, "cluster.local", metav1.Now())
	assert.Equal(t, "http://a.example.com/v1", status.URL)
	app.Spec.Route.TLSSecretName, app.Spec.Route.Path = "tls", ""
	status = Status(app, Observed{Routed: true}, "cluster.local", metav1.Now())
	assert.Equal(t, "https://a.example.com", status.URL)

	status = Status(app, Observed{RouteProblem: Problem{ReasonNoGateway, "no gateway"}}, "cluster.local", metav1.Now())
	degraded := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	assert.Equal(t, ReasonNoGateway, degraded.Reason)
	assert.Equal(t, metav1.ConditionTrue, degraded.Status)
}
