package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/shard"
)

// The kinds of object an App owns, and the one place that lists them. A kind is:
//   - its informer in a set of factories (ownedInformers), which caches berth's objects of the kind;
//   - an ownedKind: its client, and what the App wants of it, from pkg/plan (newOwnedKinds);
//   - its RBAC rule (artifacts/ and the chart; TestRBACIsLeast checks it).
//
// The rest of the loop treats every kind alike: the same event handler maps a change to its App, a sync waits for
// the cache to show berth's last write of each, remembers the version of each when the App has converged, and
// makes each through syncOwned, in the order of newOwnedKinds.

// ownedSync is an ownedKind with its types hidden, for the parts of the loop that treat every kind alike.
type ownedSync interface {
	// resourceName is the kind's resource, e.g. "deployments": in expectations and the informers' errors.
	resourceName() string
	// cachedVersion is the resourceVersion of the App's object of the kind in the cache, if there is one.
	cachedVersion(key cache.ObjectName) (version string, exists bool, err error)
	// sync makes the App's object of the kind what the App wants, and records what it found in obs.
	sync(ctx context.Context, c *Controller, app *berthv1alpha1.App, obs *observation) error
}

// ownedInformers are the informers of the kinds an App owns, from one namespace's factories, by resource.
// Asking a factory for an informer is what makes it start one: only the kinds berth owns are asked for.
func ownedInformers(n NamespaceInformers) map[string]cache.SharedIndexInformer {
	informers := map[string]cache.SharedIndexInformer{
		"deployments":              n.Owned.Apps().V1().Deployments().Informer(),
		"services":                 n.Owned.Core().V1().Services().Informer(),
		"poddisruptionbudgets":     n.Owned.Policy().V1().PodDisruptionBudgets().Informer(),
		"horizontalpodautoscalers": n.Owned.Autoscaling().V2().HorizontalPodAutoscalers().Informer(),
	}
	switch n.RouteKind {
	case plan.RouteKindHTTPRoute:
		informers["httproutes"] = n.Gateway.Gateway().V1().HTTPRoutes().Informer()
	case plan.RouteKindIngress:
		informers["ingresses"] = n.Owned.Networking().V1().Ingresses().Informer()
	}
	return informers
}

// newOwnedKinds describes the kinds an App owns, read through the sets' informers and written through clients,
// in the order a sync makes them. The Deployment comes first: the others are made once it exists. A Service with
// nothing behind it is of no use, and an object of the App's name that is someone else's is in the way only of
// an App that runs. The Apps' routes are of the kind route says, when the informers serve it.
func newOwnedKinds(sets []informerSet, client kubernetes.Interface, gatewayClient gatewayversioned.Interface,
	route plan.RouteOptions) (
	ownedKind[*appsv1.Deployment, *appsv1ac.DeploymentApplyConfiguration], []ownedSync) {
	deployments := ownedKind[*appsv1.Deployment, *appsv1ac.DeploymentApplyConfiguration]{
		kind:     "Deployment",
		resource: "deployments",
		cached:   cachedFrom[*appsv1.Deployment](sets, appsv1.Resource("deployments")),
		client: func(namespace string) ownedClient[*appsv1.Deployment, *appsv1ac.DeploymentApplyConfiguration] {
			return client.AppsV1().Deployments(namespace)
		},
		extract:   appsv1ac.ExtractDeployment,
		newObject: func() *appsv1.Deployment { return &appsv1.Deployment{} },
		withUID:   func(d *appsv1ac.DeploymentApplyConfiguration, uid types.UID) { d.WithUID(uid) },
		withAnnotation: func(d *appsv1ac.DeploymentApplyConfiguration, key, value string) {
			d.WithAnnotations(map[string]string{key: value})
		},
		withLabel: func(d *appsv1ac.DeploymentApplyConfiguration, key, value string) {
			d.WithLabels(map[string]string{key: value})
		},
		// The sync works out the Deployment before the kinds are made (rollback.go).
		desired: func(_ *berthv1alpha1.App, obs *observation) (*appsv1ac.DeploymentApplyConfiguration, bool) {
			return obs.deployment, true
		},
		observe: func(obs *observation, _ *berthv1alpha1.App, d *appsv1.Deployment) { obs.Deployment = d },
		beforeApply: func(ctx context.Context, c *Controller, live *appsv1.Deployment,
			desired *appsv1ac.DeploymentApplyConfiguration) (*appsv1.Deployment, bool, error) {
			return releaseReplicas(ctx, client.AppsV1(), c.expectations, live, desired)
		},
	}
	services := ownedKind[*corev1.Service, *corev1ac.ServiceApplyConfiguration]{
		kind:     "Service",
		resource: "services",
		cached:   cachedFrom[*corev1.Service](sets, corev1.Resource("services")),
		client: func(namespace string) ownedClient[*corev1.Service, *corev1ac.ServiceApplyConfiguration] {
			return client.CoreV1().Services(namespace)
		},
		extract:   corev1ac.ExtractService,
		newObject: func() *corev1.Service { return &corev1.Service{} },
		withUID:   func(s *corev1ac.ServiceApplyConfiguration, uid types.UID) { s.WithUID(uid) },
		withAnnotation: func(s *corev1ac.ServiceApplyConfiguration, key, value string) {
			s.WithAnnotations(map[string]string{key: value})
		},
		withLabel: func(s *corev1ac.ServiceApplyConfiguration, key, value string) {
			s.WithLabels(map[string]string{key: value})
		},
		desired:  wantedIfNotNil(plan.Service),
		unwanted: "the App has no port",
	}
	budgets := ownedKind[*policyv1.PodDisruptionBudget, *policyv1ac.PodDisruptionBudgetApplyConfiguration]{
		kind:     "PodDisruptionBudget",
		resource: "poddisruptionbudgets",
		cached:   cachedFrom[*policyv1.PodDisruptionBudget](sets, policyv1.Resource("poddisruptionbudgets")),
		client: func(namespace string) ownedClient[*policyv1.PodDisruptionBudget,
			*policyv1ac.PodDisruptionBudgetApplyConfiguration] {
			return client.PolicyV1().PodDisruptionBudgets(namespace)
		},
		extract:   policyv1ac.ExtractPodDisruptionBudget,
		newObject: func() *policyv1.PodDisruptionBudget { return &policyv1.PodDisruptionBudget{} },
		withUID:   func(b *policyv1ac.PodDisruptionBudgetApplyConfiguration, uid types.UID) { b.WithUID(uid) },
		withAnnotation: func(b *policyv1ac.PodDisruptionBudgetApplyConfiguration, key, value string) {
			b.WithAnnotations(map[string]string{key: value})
		},
		withLabel: func(b *policyv1ac.PodDisruptionBudgetApplyConfiguration, key, value string) {
			b.WithLabels(map[string]string{key: value})
		},
		desired:  wantedIfNotNil(plan.PodDisruptionBudget),
		unwanted: "the App runs fewer than 2 Pods, or has turned its disruption budget off",
	}
	autoscalers := ownedKind[*autoscalingv2.HorizontalPodAutoscaler,
		*autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration]{
		kind:     "HorizontalPodAutoscaler",
		resource: "horizontalpodautoscalers",
		cached: cachedFrom[*autoscalingv2.HorizontalPodAutoscaler](sets,
			autoscalingv2.Resource("horizontalpodautoscalers")),
		client: func(namespace string) ownedClient[*autoscalingv2.HorizontalPodAutoscaler,
			*autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration] {
			return client.AutoscalingV2().HorizontalPodAutoscalers(namespace)
		},
		extract:   autoscalingv2ac.ExtractHorizontalPodAutoscaler,
		newObject: func() *autoscalingv2.HorizontalPodAutoscaler { return &autoscalingv2.HorizontalPodAutoscaler{} },
		withUID: func(h *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration, uid types.UID) {
			h.WithUID(uid)
		},
		withAnnotation: func(h *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration, key, value string) {
			h.WithAnnotations(map[string]string{key: value})
		},
		withLabel: func(h *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration, key, value string) {
			h.WithLabels(map[string]string{key: value})
		},
		desired:  wantedIfNotNil(plan.HorizontalPodAutoscaler),
		unwanted: "the App is no longer autoscaled",
	}
	kinds := []ownedSync{deployments, services, budgets, autoscalers}
	// The route comes last, once the Service it sends to exists.
	_, installed := sets[0].owned[routeResource(route.Kind)]
	observeRoute := func(obs *observation, app *berthv1alpha1.App, exists bool) {
		obs.Routed = exists
		obs.RouteProblem.Reason, obs.RouteProblem.Message = plan.RouteProblem(app, route, installed)
	}
	switch {
	case !installed:
		kinds = append(kinds, uninstalledRoute{observe: observeRoute})
	case route.Kind == plan.RouteKindHTTPRoute:
		kinds = append(kinds, ownedKind[*gatewayv1.HTTPRoute, *gatewayv1ac.HTTPRouteApplyConfiguration]{
			kind:     "HTTPRoute",
			resource: "httproutes",
			cached:   cachedFrom[*gatewayv1.HTTPRoute](sets, gatewayv1.Resource("httproutes")),
			client: func(namespace string) ownedClient[*gatewayv1.HTTPRoute, *gatewayv1ac.HTTPRouteApplyConfiguration] {
				return gatewayClient.GatewayV1().HTTPRoutes(namespace)
			},
			extract:   gatewayv1ac.ExtractHTTPRoute,
			newObject: func() *gatewayv1.HTTPRoute { return &gatewayv1.HTTPRoute{} },
			withUID:   func(r *gatewayv1ac.HTTPRouteApplyConfiguration, uid types.UID) { r.WithUID(uid) },
			withAnnotation: func(r *gatewayv1ac.HTTPRouteApplyConfiguration, key, value string) {
				r.WithAnnotations(map[string]string{key: value})
			},
			withLabel: func(r *gatewayv1ac.HTTPRouteApplyConfiguration, key, value string) {
				r.WithLabels(map[string]string{key: value})
			},
			desired: wantedIfNotNil(func(app *berthv1alpha1.App) *gatewayv1ac.HTTPRouteApplyConfiguration {
				return plan.HTTPRoute(app, route)
			}),
			observe: func(obs *observation, app *berthv1alpha1.App, r *gatewayv1.HTTPRoute) {
				observeRoute(obs, app, r != nil)
			},
			unwanted: "the App has no route",
		})
	case route.Kind == plan.RouteKindIngress:
		kinds = append(kinds, ownedKind[*networkingv1.Ingress, *networkingv1ac.IngressApplyConfiguration]{
			kind:     "Ingress",
			resource: "ingresses",
			cached:   cachedFrom[*networkingv1.Ingress](sets, networkingv1.Resource("ingresses")),
			client: func(namespace string) ownedClient[*networkingv1.Ingress, *networkingv1ac.IngressApplyConfiguration] {
				return client.NetworkingV1().Ingresses(namespace)
			},
			extract:   networkingv1ac.ExtractIngress,
			newObject: func() *networkingv1.Ingress { return &networkingv1.Ingress{} },
			withUID:   func(i *networkingv1ac.IngressApplyConfiguration, uid types.UID) { i.WithUID(uid) },
			withAnnotation: func(i *networkingv1ac.IngressApplyConfiguration, key, value string) {
				i.WithAnnotations(map[string]string{key: value})
			},
			withLabel: func(i *networkingv1ac.IngressApplyConfiguration, key, value string) {
				i.WithLabels(map[string]string{key: value})
			},
			desired: wantedIfNotNil(func(app *berthv1alpha1.App) *networkingv1ac.IngressApplyConfiguration {
				return plan.Ingress(app, route)
			}),
			observe: func(obs *observation, app *berthv1alpha1.App, i *networkingv1.Ingress) {
				observeRoute(obs, app, i != nil)
			},
			unwanted: "the App has no route",
		})
	}
	return deployments, kinds
}

// routeResource is the resource of a kind of route.
func routeResource(kind string) string {
	switch kind {
	case plan.RouteKindHTTPRoute:
		return "httproutes"
	case plan.RouteKindIngress:
		return "ingresses"
	}
	return ""
}

// uninstalledRoute stands for the kind of the Apps' routes when the cluster does not serve it: an App that asks
// for a route is Degraded, saying so, and is not retried (the kind's installation needs berth's restart).
type uninstalledRoute struct {
	observe func(obs *observation, app *berthv1alpha1.App, exists bool)
}

func (uninstalledRoute) resourceName() string { return "" }

func (uninstalledRoute) cachedVersion(cache.ObjectName) (string, bool, error) { return "", false, nil }

func (u uninstalledRoute) sync(_ context.Context, _ *Controller, app *berthv1alpha1.App, obs *observation) error {
	u.observe(obs, app, false)
	return nil
}

// wantedIfNotNil turns a function of pkg/plan that returns nil for an object the App does not want into an
// ownedKind's desired.
func wantedIfNotNil[A comparable](desired func(*berthv1alpha1.App) A) func(*berthv1alpha1.App, *observation) (A, bool) {
	return func(app *berthv1alpha1.App, _ *observation) (A, bool) {
		var none A
		d := desired(app)
		return d, d != none
	}
}

// cachedFrom reads objects of one kind from the sets' informers of resource, as a lister would, but tells an
// absent object by found rather than by an error: most Apps own no object of most kinds, and a NotFound error is
// costly to make for a lookup that every sync does, converged or not.
func cachedFrom[T ownedObject](sets []informerSet, resource schema.GroupResource) func(namespace, name string) (T, bool, error) {
	indexers := newByNamespace(sets, func(s informerSet) cache.Indexer {
		return s.owned[resource.Resource].GetIndexer()
	}, newEmptyIndexer())
	return func(namespace, name string) (T, bool, error) {
		var none T
		obj, exists, err := indexers.in(namespace).GetByKey(namespace + "/" + name)
		if err != nil || !exists {
			return none, false, err
		}
		typed, ok := obj.(T)
		if !ok {
			return none, false, fmt.Errorf("the cache of %s holds a %T", resource, obj)
		}
		return typed, true, nil
	}
}

func (k ownedKind[T, A]) resourceName() string { return k.resource }

func (k ownedKind[T, A]) cachedVersion(key cache.ObjectName) (string, bool, error) {
	obj, found, err := k.cached(key.Namespace, key.Name)
	if !found || err != nil {
		return "", false, err
	}
	return obj.GetResourceVersion(), true, nil
}

func (k ownedKind[T, A]) sync(ctx context.Context, c *Controller, app *berthv1alpha1.App, obs *observation) error {
	desired, want := k.desired(app, obs)
	if want && c.buckets != nil {
		k.withLabel(desired, shard.Label, shard.LabelValue(shard.BucketOf(app.UID)))
	}
	obj, err := syncOwned(ctx, c, app, k, desired, want, obs)
	if err != nil {
		return err
	}
	if k.observe != nil {
		k.observe(obs, app, obj)
	}
	return nil
}
