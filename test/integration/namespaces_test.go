package integration

import (
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// namespacedPath matches the path of a request in a namespace, such as /apis/apps/v1/namespaces/a/deployments,
// with the namespace and the resource.
var namespacedPath = regexp.MustCompile(`^/apis?(?:/[^/]+)?/[^/]+/namespaces/([^/]+)/([^/]+)`)

// TestAListOfNamespacesIsManagedAndNoOther runs berth on two namespaces of three, as --namespace=a,b does: it makes
// the Apps of both, those there before it started and those created while it runs, and leaves the third's
// alone. Every one of its requests is in one of its two namespaces: none to all namespaces, none to the third.
func TestAListOfNamespacesIsManagedAndNoOther(t *testing.T) {
	a, b, c := newEnv(t), newEnv(t), newEnv(t)
	var mu sync.Mutex
	var requests []string                     // "GET /api/v1/namespaces/a/pods?...", for the failure message
	requested := map[string]map[string]bool{} // namespace -> resources read
	var outside []string                      // requests outside a and b
	record := func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		request := req.Method + " " + req.URL.RequestURI()
		mu.Lock()
		requests = append(requests, request)
		m := namespacedPath.FindStringSubmatch(req.URL.Path)
		if m == nil || (m[1] != a.namespace && m[1] != b.namespace) {
			outside = append(outside, request)
		} else if req.Method == http.MethodGet {
			if requested[m[1]] == nil {
				requested[m[1]] = map[string]bool{}
			}
			requested[m[1]][m[2]] = true
		}
		mu.Unlock()
		return next.RoundTrip(req)
	}

	for _, e := range []*env{a, b, c} {
		e.createApp(app("web"))
	}
	a.startControllerIn([]string{a.namespace, b.namespace}, record)
	a.waitConverged("web")
	b.waitConverged("web")
	// An App created while berth runs reaches it through the watch of its namespace.
	b.createApp(app("api"))
	b.waitConverged("api")
	_, err := b.kube.CoreV1().Services(b.namespace).Get(b.ctx, "api", metav1.GetOptions{})
	require.NoError(t, err, "the Service of the App created while berth runs")

	// By now, berth has been told of everything the three namespaces hold.
	web := c.getApp("web")
	assert.Zero(t, web.Status.ObservedGeneration, "the App of the third namespace has no status: %+v", web.Status)
	_, err = c.getDeployment("web")
	assert.True(t, apierrors.IsNotFound(err), "no Deployment in the third namespace: %v", err)
	_, err = c.kube.CoreV1().Services(c.namespace).Get(c.ctx, "web", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "no Service in the third namespace: %v", err)
	events, err := c.kube.EventsV1().Events(c.namespace).List(c.ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, events.Items, "no Event in the third namespace")

	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, outside, "every request of berth is in one of its namespaces; all of them:\n%v", requests)
	for _, namespace := range []string{a.namespace, b.namespace} {
		var resources []string
		for resource := range requested[namespace] {
			resources = append(resources, resource)
		}
		slices.Sort(resources)
		assert.Subset(t, resources, []string{"apps", "deployments", "pods", "services"},
			"what berth lists and watches in namespace %s", namespace)
	}
}
