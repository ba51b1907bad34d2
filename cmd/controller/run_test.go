package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	k8smetrics "k8s.io/component-base/metrics"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/pkg/metrics"
	"github.com/berthdev/berth/pkg/plan"
)

// clientServingApps is a fake client whose discovery serves the apps resource of berth's group, once it has
// answered as many questions as failures with err.
func clientServingApps(failures int, err error) *fake.Clientset {
	client := fake.NewClientset()
	client.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: berthv1alpha1.GroupVersion.String(),
		APIResources: []metav1.APIResource{{Name: "apps", Kind: "App", Namespaced: true}},
	}}
	client.PrependReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failures > 0 {
			failures--
			return true, nil, err
		}
		return false, nil, nil
	})
	return client
}

func TestCheckCRDInstalledWaitsForTheAPIServer(t *testing.T) {
	// A failure that may pass is asked again: berth started while the API server is away waits for it.
	client := clientServingApps(2, apierrors.NewInternalError(assert.AnError))
	require.NoError(t, checkCRDInstalled(t.Context(), client.Discovery()))
	assert.Len(t, client.Actions(), 3, "asked until the API server answered")
}

func TestCheckCRDInstalledFailsWhenTheCRDIsMissing(t *testing.T) {
	client := fake.NewClientset() // its discovery serves no berth.dev
	err := checkCRDInstalled(t.Context(), client.Discovery())
	require.ErrorContains(t, err, "the App CRD is not installed")
	assert.Len(t, client.Actions(), 1, "a missing CRD is not asked about again")
}

func TestCheckCRDInstalledStopsWithItsContext(t *testing.T) {
	client := clientServingApps(1000, apierrors.NewServiceUnavailable("restarting"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err := checkCRDInstalled(ctx, client.Discovery())
	require.Error(t, err)
	assert.True(t, apierrors.IsServiceUnavailable(err), "the last error is returned: %v", err)
}

func TestResolveRouteKind(t *testing.T) {
	withGateway := fake.NewClientset()
	withGateway.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: gatewayv1.GroupVersion.String(),
		APIResources: []metav1.APIResource{{Name: "httproutes", Kind: "HTTPRoute", Namespaced: true}},
	}}
	withoutGateway := fake.NewClientset()
	tests := []struct {
		name          string
		client        *fake.Clientset
		flag          string
		wantKind      string
		wantInstalled bool
	}{
		{"auto, with Gateway API", withGateway, routeKindAuto, plan.RouteKindHTTPRoute, true},
		{"auto, without", withoutGateway, routeKindAuto, plan.RouteKindIngress, true},
		{"HTTPRoute, with Gateway API", withGateway, plan.RouteKindHTTPRoute, plan.RouteKindHTTPRoute, true},
		{"HTTPRoute, without: reported on the Apps", withoutGateway, plan.RouteKindHTTPRoute, plan.RouteKindHTTPRoute, false},
		{"Ingress, with Gateway API", withGateway, plan.RouteKindIngress, plan.RouteKindIngress, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, installed, err := resolveRouteKind(t.Context(), tt.client.Discovery(), tt.flag)
			require.NoError(t, err)
			assert.Equal(t, tt.wantKind, kind)
			assert.Equal(t, tt.wantInstalled, installed)
		})
	}
}

// TestBerthsClientsShareOneTokenBucket: berth's Kubernetes and berth clientsets are built from one rest.Config.
// Unless that config carries a RateLimiter, each clientset builds a token bucket of its own, and berth sends up
// to twice --kube-api-qps.
func TestBerthsClientsShareOneTokenBucket(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	opts := defaultOptions()
	opts.kubeconfig = kubeconfig
	opts.kubeAPIQPS, opts.kubeAPIBurst = 7, 9
	config, err := restConfig(opts, metrics.NewAPIRequests(k8smetrics.NewKubeRegistry().MustRegister))
	require.NoError(t, err)
	require.NotNil(t, config.RateLimiter, "the config carries the token bucket")
	assert.Equal(t, float32(7), config.RateLimiter.QPS())

	kubeClient, err := kubernetes.NewForConfig(config)
	require.NoError(t, err)
	berthClient, err := versioned.NewForConfig(config)
	require.NoError(t, err)
	gatewayClient, err := gatewayversioned.NewForConfig(config)
	require.NoError(t, err)
	for name, client := range map[string]rest.Interface{
		"apps/v1": kubeClient.AppsV1().RESTClient(), "core/v1": kubeClient.CoreV1().RESTClient(),
		"berth.dev/v1alpha1":           berthClient.BerthV1alpha1().RESTClient(),
		"gateway.networking.k8s.io/v1": gatewayClient.GatewayV1().RESTClient(),
	} {
		assert.Same(t, config.RateLimiter, client.GetRateLimiter(), "the %s client takes its tokens from it", name)
	}
}
