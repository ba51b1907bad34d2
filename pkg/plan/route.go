package plan

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// The kinds of object a route in can be: berth's --route-kind.
const (
	RouteKindHTTPRoute = "HTTPRoute"
	RouteKindIngress   = "Ingress"
)

// Reasons of the Degraded condition of an App whose route berth cannot make.
const (
	// ReasonRouteKindNotInstalled: the cluster does not serve the kind berth makes routes of (Gateway API's
	// HTTPRoute, when its CRDs are not installed).
	ReasonRouteKindNotInstalled = "RouteKindNotInstalled"
	// ReasonNoGateway: an HTTPRoute must name its Gateway, and neither the App nor berth's --gateway does.
	ReasonNoGateway = "NoGateway"
)

// RouteOptions are how the cluster takes requests in, from berth's flags: the same for every App.
type RouteOptions struct {
	// Kind is RouteKindHTTPRoute or RouteKindIngress.
	Kind string
	// GatewayNamespace and GatewayName name the Gateway that an HTTPRoute attaches to when the App names none.
	GatewayNamespace, GatewayName string
	// IngressClassName is the class of the Ingresses; empty, the cluster's default class.
	IngressClassName string
}

// routePort is the port of the App that its route sends requests to: the one it names, or the first TCP port
// the Service exposes.
func routePort(app *berthv1alpha1.App) (berthv1alpha1.Port, bool) {
	for _, port := range exposedPorts(app) {
		if protocolOf(port) != corev1.ProtocolTCP {
			continue
		}
		if name := app.Spec.Route.Port; name == "" || name == port.Name {
			return port, true
		}
	}
	return berthv1alpha1.Port{}, false
}

func routePath(r *berthv1alpha1.Route) string {
	if r.Path == "" {
		return "/"
	}
	return r.Path
}

// routeURL is where the App is reached through its route.
func routeURL(r *berthv1alpha1.Route) string {
	scheme := "http"
	if r.TLSSecretName != "" {
		scheme = "https"
	}
	path := routePath(r)
	if path == "/" {
		path = ""
	}
	return fmt.Sprintf("%s://%s%s", scheme, r.Host, path)
}

// gateway is the Gateway the App's HTTPRoute attaches to: the App's, or berth's. ok is false when neither names
// one.
func gateway(app *berthv1alpha1.App, opts RouteOptions) (ref berthv1alpha1.GatewayReference, ok bool) {
	if g := app.Spec.Route.Gateway; g != nil {
		ref = *g
		if ref.Namespace == "" {
			ref.Namespace = app.Namespace
		}
		return ref, true
	}
	if opts.GatewayName == "" {
		return ref, false
	}
	return berthv1alpha1.GatewayReference{Name: opts.GatewayName, Namespace: opts.GatewayNamespace}, true
}

// RouteProblem says why berth cannot make the route the App asks for, or is "" when it can (or the App asks for
// none): the reason and message of its Degraded condition. installed tells whether the cluster serves the kind.
func RouteProblem(app *berthv1alpha1.App, opts RouteOptions, installed bool) (reason, message string) {
	if app.Spec.Route == nil {
		return "", ""
	}
	switch {
	case !installed:
		return ReasonRouteKindNotInstalled, fmt.Sprintf("berth makes routes as %s (--route-kind), which this "+
			"cluster does not serve: install Gateway API's CRDs and restart berth, or run it with "+
			"--route-kind=Ingress", opts.Kind)
	case opts.Kind == RouteKindHTTPRoute:
		if _, ok := gateway(app, opts); !ok {
			return ReasonNoGateway, "spec.route.gateway is unset and berth has no --gateway: an HTTPRoute " +
				"must name the Gateway it attaches to"
		}
	}
	return "", ""
}

// HTTPRoute is the Gateway API HTTPRoute the App asks for, or nil when it asks for none or names no Gateway. Every
// field that the CRD would default is set, so that what berth reads back of its own fields is what it applied.
func HTTPRoute(app *berthv1alpha1.App, opts RouteOptions) *gatewayv1ac.HTTPRouteApplyConfiguration {
	r := app.Spec.Route
	if r == nil {
		return nil
	}
	parent, ok := gateway(app, opts)
	port, portOK := routePort(app)
	if !ok || !portOK {
		return nil
	}
	parentRef := gatewayv1ac.ParentReference().
		WithGroup(gatewayv1.GroupName).
		WithKind("Gateway").
		WithNamespace(gatewayv1.Namespace(parent.Namespace)).
		WithName(gatewayv1.ObjectName(parent.Name))
	if parent.SectionName != "" {
		parentRef.WithSectionName(gatewayv1.SectionName(parent.SectionName))
	}
	rule := gatewayv1ac.HTTPRouteRule().
		WithMatches(gatewayv1ac.HTTPRouteMatch().
			WithPath(gatewayv1ac.HTTPPathMatch().
				WithType(gatewayv1.PathMatchPathPrefix).
				WithValue(routePath(r)))).
		WithBackendRefs(gatewayv1ac.HTTPBackendRef().
			WithGroup("").
			WithKind("Service").
			WithName(gatewayv1.ObjectName(app.Name)).
			WithPort(gatewayv1.PortNumber(servicePortOf(port))).
			WithWeight(1))
	return gatewayv1ac.HTTPRoute(app.Name, app.Namespace).
		WithLabels(ObjectLabels(app)).
		WithOwnerReferences(ownerReference(app)).
		WithSpec(gatewayv1ac.HTTPRouteSpec().
			WithParentRefs(parentRef).
			WithHostnames(gatewayv1.Hostname(r.Host)).
			WithRules(rule))
}

// Ingress is the Ingress the App asks for, or nil when it asks for none.
func Ingress(app *berthv1alpha1.App, opts RouteOptions) *networkingv1ac.IngressApplyConfiguration {
	r := app.Spec.Route
	if r == nil {
		return nil
	}
	port, ok := routePort(app)
	if !ok {
		return nil
	}
	spec := networkingv1ac.IngressSpec().
		WithRules(networkingv1ac.IngressRule().
			WithHost(r.Host).
			WithHTTP(networkingv1ac.HTTPIngressRuleValue().
				WithPaths(networkingv1ac.HTTPIngressPath().
					WithPath(routePath(r)).
					WithPathType(networkingv1.PathTypePrefix).
					WithBackend(networkingv1ac.IngressBackend().
						WithService(networkingv1ac.IngressServiceBackend().
							WithName(app.Name).
							WithPort(networkingv1ac.ServiceBackendPort().WithName(port.Name)))))))
	if opts.IngressClassName != "" {
		spec.WithIngressClassName(opts.IngressClassName)
	}
	if r.TLSSecretName != "" {
		spec.WithTLS(networkingv1ac.IngressTLS().WithHosts(r.Host).WithSecretName(r.TLSSecretName))
	}
	return networkingv1ac.Ingress(app.Name, app.Namespace).
		WithLabels(ObjectLabels(app)).
		WithOwnerReferences(ownerReference(app)).
		WithSpec(spec)
}
