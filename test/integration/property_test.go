package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/plan"
)

// generatedApps is how many Apps TestWhatBerthAppliesIsWhatTheAPIServerStores tries.
const generatedApps = 300

// TestWhatBerthAppliesIsWhatTheAPIServerStores is a property test over generated Apps (random_app_test.go): for
// every App, each object berth applies (Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler,
// HTTPRoute or Ingress), once stored by the real API server, read back as berth's fields
// (Extract*, what a sync compares with) equal what berth applied. Where they differ, every sync of that App
// would apply again and announce an update that changes nothing. The applies are dry runs, so that nothing is
// stored and each App is tried on its own. BERTH_PROPERTY_SEED repeats a run.
func TestWhatBerthAppliesIsWhatTheAPIServerStores(t *testing.T) {
	e := newEnv(t)
	seed := uint64(rand.Int64())
	if s := os.Getenv("BERTH_PROPERTY_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (BERTH_PROPERTY_SEED=%d repeats this run)", seed, seed)
	r := rand.New(rand.NewPCG(seed, seed))

	gatewayClient := gatewayversioned.NewForConfigOrDie(controlPlane.Config)
	routeOptions := plan.RouteOptions{GatewayNamespace: "infra", GatewayName: "public", IngressClassName: "nginx"}
	var failures []string
	for i := range generatedApps {
		a := randomApp(r, e.namespace, i)

		kube := e.kube
		// Each object berth applies, in the order of a sync.
		for _, o := range []struct{ kind, diff string }{
			{"Deployment", readBack(t, e.ctx, plan.Deployment(a), kube.AppsV1().Deployments(e.namespace).Apply,
				appsv1ac.ExtractDeployment)},
			{"Service", readBack(t, e.ctx, plan.Service(a), kube.CoreV1().Services(e.namespace).Apply,
				corev1ac.ExtractService)},
			{"PodDisruptionBudget", readBack(t, e.ctx, plan.PodDisruptionBudget(a),
				kube.PolicyV1().PodDisruptionBudgets(e.namespace).Apply, policyv1ac.ExtractPodDisruptionBudget)},
			{"HorizontalPodAutoscaler", readBack(t, e.ctx, plan.HorizontalPodAutoscaler(a),
				kube.AutoscalingV2().HorizontalPodAutoscalers(e.namespace).Apply,
				autoscalingv2ac.ExtractHorizontalPodAutoscaler)},
			{"HTTPRoute", readBack(t, e.ctx, plan.HTTPRoute(a, routeOptions),
				gatewayClient.GatewayV1().HTTPRoutes(e.namespace).Apply, gatewayv1ac.ExtractHTTPRoute)},
			{"Ingress", readBack(t, e.ctx, plan.Ingress(a, routeOptions),
				kube.NetworkingV1().Ingresses(e.namespace).Apply, networkingv1ac.ExtractIngress)},
		} {
			if o.diff != "" {
				failures = append(failures, fmt.Sprintf("%s\n  %s: %s", describe(a.Spec), o.kind, o.diff))
			}
		}
	}
	if len(failures) > 0 {
		shown := failures[:min(len(failures), 3)]
		t.Fatalf("%d of %d generated Apps would be applied again at every sync; the first of them (spec, then "+
			"the fields applied but not read back, or read back but not applied):\n%s", len(failures), generatedApps,
			strings.Join(shown, "\n"))
	}
	t.Logf("%d generated Apps: what berth applies is what it reads back", generatedApps)
}

// readBack applies desired, when the App wants the object (desired is not nil), as berth does but as a dry run,
// and reads back berth's fields of what the API server would store: it returns how they differ from desired
// (jsonDiff), or "" when they do not.
func readBack[T any, A comparable](t *testing.T, ctx context.Context, desired A,
	apply func(context.Context, A, metav1.ApplyOptions) (T, error), extract func(T, string) (A, error)) string {
	t.Helper()
	var none A
	if desired == none {
		return ""
	}
	dryRun := metav1.ApplyOptions{FieldManager: controller.FieldManager, Force: true, DryRun: []string{metav1.DryRunAll}}
	stored, err := apply(ctx, desired, dryRun)
	require.NoError(t, err, "applying %s", describe(desired))
	extracted, err := extract(stored, controller.FieldManager)
	require.NoError(t, err)
	if equality.Semantic.DeepEqual(desired, extracted) {
		return ""
	}
	return jsonDiff(t, desired, extracted)
}

// jsonDiff lists the leaves of applied and read back (as JSON) that differ: path, then the two values. Quantities
// are compared as JSON text here, so "1000m" and "1" differ; the test itself compares them as quantities.
func jsonDiff(t *testing.T, applied, readBack any) string {
	t.Helper()
	var a, b any
	require.NoError(t, json.Unmarshal([]byte(describe(applied)), &a))
	require.NoError(t, json.Unmarshal([]byte(describe(readBack)), &b))
	var diffs []string
	var walk func(path string, x, y any)
	walk = func(path string, x, y any) {
		xm, xok := x.(map[string]any)
		ym, yok := y.(map[string]any)
		if xok && yok {
			keys := map[string]bool{}
			for k := range xm {
				keys[k] = true
			}
			for k := range ym {
				keys[k] = true
			}
			for k := range keys {
				walk(path+"."+k, xm[k], ym[k])
			}
			return
		}
		xl, xok := x.([]any)
		yl, yok := y.([]any)
		if xok && yok && len(xl) == len(yl) {
			for i := range xl {
				walk(fmt.Sprintf("%s[%d]", path, i), xl[i], yl[i])
			}
			return
		}
		if describe(x) != describe(y) {
			diffs = append(diffs, fmt.Sprintf("%s: applied %s, read back %s", path, describe(x), describe(y)))
		}
	}
	walk("", a, b)
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}

func describe(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(data)
}
