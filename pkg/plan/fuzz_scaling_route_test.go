package plan

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// FuzzDesiredState's lines of the disruption budget, autoscaling and the route (fuzzMore reads the others):
//
//	budget off | budget N | budget P%
//	autoscale MIN|- MAX CPU|- MEMORY|-
//	route HOST PATH|- PORT|- TLS|- [GATEWAY NAMESPACE|- SECTION|-]
func fuzzMoreScalingAndRoute(app *berthv1alpha1.App, field string, args []string) (known, ok bool) {
	optional := func(word string) *int32 {
		if word == "-" {
			return nil
		}
		n, err := strconv.ParseInt(word, 10, 32)
		if err != nil {
			ok = false
			return nil
		}
		return ptr.To(int32(n))
	}
	word := func(w string) string {
		if w == "-" {
			return ""
		}
		return w
	}
	ok = true
	switch {
	case field == "budget" && len(args) == 1:
		app.Spec.DisruptionBudget = &berthv1alpha1.DisruptionBudget{}
		if args[0] == "off" {
			app.Spec.DisruptionBudget.Disabled = true
		} else {
			app.Spec.DisruptionBudget.MaxUnavailable = ptr.To(intstr.Parse(args[0]))
		}
	case field == "autoscale" && len(args) == 4:
		a := &berthv1alpha1.Autoscaling{MinReplicas: optional(args[0]), CPUUtilization: optional(args[2]),
			MemoryUtilization: optional(args[3])}
		if most := optional(args[1]); most != nil {
			a.MaxReplicas = *most
		}
		app.Spec.Autoscaling = a
	case field == "route" && (len(args) == 4 || len(args) == 7):
		r := &berthv1alpha1.Route{Host: args[0], Path: word(args[1]), Port: word(args[2]), TLSSecretName: word(args[3])}
		if len(args) == 7 {
			r.Gateway = &berthv1alpha1.GatewayReference{Name: args[4], Namespace: word(args[5]),
				SectionName: word(args[6])}
		}
		app.Spec.Route = r
	default:
		return false, true
	}
	return true, ok
}

var (
	dnsSubdomainPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dnsLabelPattern     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	routePathPattern    = regexp.MustCompile(`^/[-A-Za-z0-9._~!$&'()*+,;=:@%/]*$`)
	budgetPercent       = regexp.MustCompile(`^(100|[1-9][0-9]?)%$`)
)

// admissibleScalingAndRoute mirrors the CRD's rules of the disruption budget, autoscaling and the route.
func admissibleScalingAndRoute(s berthv1alpha1.AppSpec) []string {
	var errs []string
	refuse := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if b := s.DisruptionBudget; b != nil && b.MaxUnavailable != nil {
		if v := b.MaxUnavailable; (v.Type == intstr.Int && v.IntVal < 1) || (v.Type == intstr.String && !budgetPercent.MatchString(v.StrVal)) {
			refuse("spec.disruptionBudget.maxUnavailable")
		}
	}
	if a := s.Autoscaling; a != nil {
		if a.MaxReplicas < 1 || a.MaxReplicas > 10000 {
			refuse("spec.autoscaling.maxReplicas")
		}
		if m := a.MinReplicas; m != nil && (*m < 1 || *m > 10000 || *m > a.MaxReplicas) {
			refuse("spec.autoscaling.minReplicas")
		}
		if a.CPUUtilization == nil && a.MemoryUtilization == nil {
			refuse("spec.autoscaling: nothing to scale on")
		}
		for name, u := range map[corev1.ResourceName]*int32{corev1.ResourceCPU: a.CPUUtilization, corev1.ResourceMemory: a.MemoryUtilization} {
			if u == nil {
				continue
			}
			if *u < 1 || *u > 1000 {
				refuse("spec.autoscaling: utilization of %s", name)
			}
			if _, ok := requestsOf(s.Resources)[name]; !ok {
				refuse("spec.autoscaling: no request of %s", name)
			}
		}
	}
	if r := s.Route; r != nil {
		if len(r.Host) < 1 || len(r.Host) > 253 || !dnsSubdomainPattern.MatchString(r.Host) {
			refuse("spec.route.host")
		}
		if r.Path != "" && (len(r.Path) > 1024 || !routePathPattern.MatchString(r.Path)) {
			refuse("spec.route.path")
		}
		if len(r.Port) > 15 {
			refuse("spec.route.port")
		}
		if r.TLSSecretName != "" && (len(r.TLSSecretName) > 253 || !dnsSubdomainPattern.MatchString(r.TLSSecretName)) {
			refuse("spec.route.tlsSecretName")
		}
		if g := r.Gateway; g != nil {
			if len(g.Name) < 1 || len(g.Name) > 253 || !dnsSubdomainPattern.MatchString(g.Name) {
				refuse("spec.route.gateway.name")
			}
			if g.Namespace != "" && (len(g.Namespace) > 63 || !dnsLabelPattern.MatchString(g.Namespace)) {
				refuse("spec.route.gateway.namespace")
			}
			if g.SectionName != "" && (len(g.SectionName) > 253 || !dnsSubdomainPattern.MatchString(g.SectionName)) {
				refuse("spec.route.gateway.sectionName")
			}
		}
		if s.Port == nil && s.Ports == nil {
			refuse("spec.route requires a port")
		}
		exposedTCP := func(name string) bool {
			if s.Ports == nil {
				return s.Port != nil && (name == "" || name == portName)
			}
			for _, p := range s.Ports {
				if !p.Internal && protocolOf(p) == corev1.ProtocolTCP && (name == "" || p.Name == name) {
					return true
				}
			}
			return false
		}
		if !exposedTCP(r.Port) {
			refuse("spec.route.port: no such exposed TCP port")
		}
	}
	return errs
}

// requestsOf is the App's requests, none when it has no resources.
func requestsOf(r *berthv1alpha1.Resources) corev1.ResourceList {
	if r == nil {
		return nil
	}
	return r.Requests
}

// checkScalingAndRoute checks the PodDisruptionBudget, HorizontalPodAutoscaler, HTTPRoute and Ingress of an
// admitted App: they exist exactly when the App asks for them, their JSON is stable through the typed objects,
// and they pass the validation functions that apimachinery exports.
func checkScalingAndRoute(t *testing.T, app *berthv1alpha1.App) {
	if budget := PodDisruptionBudget(app); budget != nil {
		var b policyv1.PodDisruptionBudget
		checkJSONRoundTrip(t, budget, &b, &policyv1.PodDisruptionBudget{}, &policyv1ac.PodDisruptionBudgetApplyConfiguration{})
		errs := validateMeta(b.Name, b.Labels)
		errs = append(errs, metav1validation.ValidateLabelSelector(b.Spec.Selector,
			metav1validation.LabelSelectorValidationOptions{}, field.NewPath("spec", "selector"))...)
		if v := b.Spec.MaxUnavailable; v == nil || (v.Type == intstr.Int && v.IntVal < 1) {
			errs = append(errs, field.Invalid(field.NewPath("spec", "maxUnavailable"), v, "must let a drain evict"))
		}
		if len(errs) > 0 {
			t.Errorf("the PodDisruptionBudget of %s is invalid: %v", describeApp(app), errs)
		}
	} else if app.Spec.DisruptionBudget == nil || !app.Spec.DisruptionBudget.Disabled {
		if most := mostReplicas(app); most >= 2 {
			t.Errorf("an App of up to %d replicas has no disruption budget: %s", most, describeApp(app))
		}
	}

	if autoscaler := HorizontalPodAutoscaler(app); autoscaler != nil {
		var h autoscalingv2.HorizontalPodAutoscaler
		checkJSONRoundTrip(t, autoscaler, &h, &autoscalingv2.HorizontalPodAutoscaler{},
			&autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration{})
		errs := validateMeta(h.Name, h.Labels)
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			errs = append(errs, field.Invalid(field.NewPath("spec", "minReplicas"), h.Spec.MinReplicas, "out of range"))
		}
		if len(h.Spec.Metrics) == 0 {
			errs = append(errs, field.Required(field.NewPath("spec", "metrics"), "nothing to scale on"))
		}
		if len(errs) > 0 {
			t.Errorf("the HorizontalPodAutoscaler of %s is invalid: %v", describeApp(app), errs)
		}
		if Deployment(app).Spec.Replicas != nil {
			t.Errorf("berth sets the replicas of autoscaled %s", describeApp(app))
		}
	} else if app.Spec.Autoscaling != nil {
		t.Errorf("an autoscaled App has no autoscaler: %s", describeApp(app))
	}

	if app.Spec.Route == nil {
		return
	}
	options := RouteOptions{GatewayNamespace: "infra", GatewayName: "public", IngressClassName: "public"}
	route := HTTPRoute(app, options)
	if route == nil {
		t.Fatalf("an admitted App with a route has no HTTPRoute: %s", describeApp(app))
	}
	var r gatewayv1.HTTPRoute
	checkJSONRoundTrip(t, route, &r, &gatewayv1.HTTPRoute{}, &gatewayv1ac.HTTPRouteApplyConfiguration{})
	errs := validateMeta(r.Name, r.Labels)
	for i, host := range r.Spec.Hostnames {
		for _, problem := range validation.IsDNS1123Subdomain(string(host)) {
			errs = append(errs, field.Invalid(field.NewPath("spec", "hostnames").Index(i), host, problem))
		}
	}
	if len(errs) > 0 {
		t.Errorf("the HTTPRoute of %s is invalid: %v", describeApp(app), errs)
	}
	ingress := Ingress(app, options)
	if ingress == nil {
		t.Fatalf("an admitted App with a route has no Ingress: %s", describeApp(app))
	}
	var ing networkingv1.Ingress
	checkJSONRoundTrip(t, ingress, &ing, &networkingv1.Ingress{}, &networkingv1ac.IngressApplyConfiguration{})
	errs = validateMeta(ing.Name, ing.Labels)
	for _, problem := range validation.IsDNS1123Subdomain(ing.Spec.Rules[0].Host) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "rules").Index(0).Child("host"), ing.Spec.Rules[0].Host, problem))
	}
	backend := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	for _, problem := range validation.IsValidPortName(backend.Port.Name) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "rules").Index(0).Child("backend"), backend.Port.Name, problem))
	}
	if len(errs) > 0 {
		t.Errorf("the Ingress of %s is invalid: %v", describeApp(app), errs)
	}
}

// mostReplicas is the most Pods the App may run.
func mostReplicas(app *berthv1alpha1.App) int32 {
	if a := app.Spec.Autoscaling; a != nil {
		return a.MaxReplicas
	}
	return desiredReplicas(app)
}

// validateMeta validates an object's name and labels as the API server does.
func validateMeta(name string, labels map[string]string) field.ErrorList {
	var errs field.ErrorList
	for _, problem := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), name, problem))
	}
	errs = append(errs, metav1validation.ValidateLabels(labels, field.NewPath("metadata", "labels"))...)
	return errs
}
