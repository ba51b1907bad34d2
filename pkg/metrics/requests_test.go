package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
)

func TestRequestVerbAndResource(t *testing.T) {
	tests := []struct {
		method, url, contentType string
		verb, resource           string
	}{
		{"GET", "/apis/apps/v1/namespaces/shop/deployments/web", "", "get", "deployments"},
		{"GET", "/apis/apps/v1/deployments?labelSelector=a%3Db", "", "list", "deployments"},
		{"GET", "/apis/apps/v1/deployments?watch=true&resourceVersion=5", "", "watch", "deployments"},
		{"GET", "/api/v1/namespaces/shop/pods?watch=1", "", "watch", "pods"},
		{"POST", "/api/v1/namespaces/shop/services", "application/json", "create", "services"},
		{"PATCH", "/apis/berth.dev/v1alpha1/namespaces/shop/apps/web/status", "application/apply-patch+yaml", "apply", "apps/status"},
		{"PATCH", "/apis/apps/v1/namespaces/shop/deployments/web", "application/json-patch+json", "patch", "deployments"},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/berth-system/leases/berth-controller", "application/json", "update", "leases"},
		{"DELETE", "/api/v1/namespaces/shop/services/web", "", "delete", "services"},
		{"DELETE", "/api/v1/namespaces/shop/services", "", "deletecollection", "services"},
		{"POST", "/apis/events.k8s.io/v1/namespaces/shop/events", "application/json", "create", "events"},
		{"GET", "/api/v1/namespaces/shop", "", "get", "namespaces"},
		{"GET", "/api/v1/namespaces", "", "list", "namespaces"},
		{"GET", "/apis/berth.dev/v1alpha1", "", "list", ""},
		{"GET", "/version", "", "list", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.url, nil)
			req.Header.Set("Content-Type", tt.contentType)
			verb, resource := RequestVerbAndResource(req)
			require.Equal(t, tt.verb, verb)
			require.Equal(t, tt.resource, resource)
		})
	}
}

func TestAPIRequestsCountsByVerbResourceAndCode(t *testing.T) {
	registry := metrics.NewKubeRegistry()
	r := NewAPIRequests(registry.MustRegister)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			w.WriteHeader(http.StatusConflict)
		}
	}))
	defer server.Close()
	client := &http.Client{Transport: r.Wrap(http.DefaultTransport)}
	for _, method := range []string{"GET", "GET", "POST"} {
		req, err := http.NewRequest(method, server.URL+"/api/v1/namespaces/shop/services/web", nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	want := `
# HELP berth_api_requests_total [ALPHA] Requests berth sent to the API server, by verb (get, list, watch, create, update, patch, apply, delete, deletecollection), resource (plural, with the subresource after a slash, e.g. apps/status) and HTTP status code ("<error>" when no response came).
# TYPE berth_api_requests_total counter
berth_api_requests_total{code="200",resource="services",verb="get"} 2
berth_api_requests_total{code="409",resource="services",verb="create"} 1
`
	require.NoError(t, testutil.GatherAndCompare(registry, strings.NewReader(want), "berth_api_requests_total"))
}
