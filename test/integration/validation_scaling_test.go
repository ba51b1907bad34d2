package integration

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// invalidScalingAndRoute are the invalid uses of the disruption budget, autoscaling and the route (issue 17,
// items 9-11), for TestInvalidAppsAreRejected.
var invalidScalingAndRoute = []invalidApp{
	{"budget of 0 Pods", "", `{"image": "nginx", "disruptionBudget": {"maxUnavailable": 0}}`,
		"spec.disruptionBudget.maxUnavailable", "would block every node drain"},
	{"budget of 0%", "", `{"image": "nginx", "disruptionBudget": {"maxUnavailable": "0%"}}`,
		"spec.disruptionBudget.maxUnavailable", "would block every node drain"},
	{"budget not a percentage", "", `{"image": "nginx", "disruptionBudget": {"maxUnavailable": "half"}}`,
		"spec.disruptionBudget.maxUnavailable", "at least 1 Pod or 1%"},
	{"autoscaling without a maximum", "", `{"image": "nginx", "resources": {"requests": {"cpu": "100m"}}, "autoscaling": {"cpuUtilization": 80}}`,
		"spec.autoscaling.maxReplicas", "Required value"},
	{"autoscaling minimum above maximum", "", `{"image": "nginx", "resources": {"requests": {"cpu": "100m"}}, "autoscaling": {"minReplicas": 5, "maxReplicas": 3, "cpuUtilization": 80}}`,
		"spec.autoscaling.minReplicas", "must not be greater than maxReplicas"},
	{"autoscaling on nothing", "", `{"image": "nginx", "autoscaling": {"maxReplicas": 3}}`,
		"spec.autoscaling", "needs cpuUtilization, memoryUtilization or both"},
	{"autoscaling on CPU without a CPU request", "", `{"image": "nginx", "autoscaling": {"maxReplicas": 3, "cpuUtilization": 80}}`,
		"spec.autoscaling.cpuUtilization", "needs spec.resources.requests.cpu"},
	{"autoscaling on memory without a memory request", "", `{"image": "nginx", "resources": {"requests": {"cpu": "1"}}, "autoscaling": {"maxReplicas": 3, "memoryUtilization": 80}}`,
		"spec.autoscaling.memoryUtilization", "needs spec.resources.requests.memory"},
	{"autoscaling utilization zero", "", `{"image": "nginx", "resources": {"requests": {"cpu": "1"}}, "autoscaling": {"maxReplicas": 3, "cpuUtilization": 0}}`,
		"spec.autoscaling.cpuUtilization", "greater than or equal to 1"},
	{"route without a port", "", `{"image": "nginx", "route": {"host": "api.example.com"}}`,
		"spec.route", "requires spec.port or spec.ports"},
	{"route without a host", "", `{"image": "nginx", "port": 8080, "route": {}}`,
		"spec.route.host", "Required value"},
	{"route host not a DNS name", "", `{"image": "nginx", "port": 8080, "route": {"host": "API.example.com"}}`,
		"spec.route.host", "should match"},
	{"route path relative", "", `{"image": "nginx", "port": 8080, "route": {"host": "api.example.com", "path": "api"}}`,
		"spec.route.path", "should match"},
	{"route to an internal port", "", `{"image": "nginx", "ports": [{"name": "api", "port": 8080}, {"name": "metrics", "port": 9090, "internal": true}], "route": {"host": "a.example.com", "port": "metrics"}}`,
		"spec.route.port", "must name a TCP port of spec.ports that is not internal"},
	{"route to a UDP port", "", `{"image": "nginx", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}], "route": {"host": "a.example.com", "port": "dns"}}`,
		"spec.route.port", "must name a TCP port"},
	{"route to no TCP port", "", `{"image": "nginx", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}], "route": {"host": "a.example.com"}}`,
		"spec.route", "needs a TCP port of spec.ports"},
	{"route to a port of another name", "", `{"image": "nginx", "port": 8080, "route": {"host": "a.example.com", "port": "api"}}`,
		"spec.route.port", "or be http, with spec.port"},
	{"route gateway without a name", "", `{"image": "nginx", "port": 8080, "route": {"host": "a.example.com", "gateway": {"namespace": "infra"}}}`,
		"spec.route.gateway.name", "Required value"},
}

// TestScalingAnAutoscaledAppIsRefused: the autoscaler sets an autoscaled App's number of Pods, so `kubectl scale`
// (the scale subresource) and a change of spec.replicas are refused with a message that says what to change.
func TestScalingAnAutoscaledAppIsRefused(t *testing.T) {
	e := newEnv(t)
	apps := e.berth.BerthV1alpha1().Apps(e.namespace)
	body := `{"apiVersion": "berth.dev/v1alpha1", "kind": "App", "metadata": {"name": "scaled"}, "spec": {"image": "nginx",
		"resources": {"requests": {"cpu": "100m"}}, "autoscaling": {"minReplicas": 2, "maxReplicas": 5, "cpuUtilization": 80}}}`
	require.NoError(t, e.berth.BerthV1alpha1().RESTClient().Post().Namespace(e.namespace).Resource("apps").
		Body([]byte(body)).Do(e.ctx).Error())

	scale, err := apps.GetScale(e.ctx, "scaled", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(1), scale.Spec.Replicas, "spec.replicas defaults to 1, unused")
	scale.Spec.Replicas = 4
	_, err = apps.UpdateScale(e.ctx, "scaled", scale, metav1.UpdateOptions{})
	require.Error(t, err, "kubectl scale of an autoscaled App")
	assert.Contains(t, err.Error(), "spec.replicas cannot change while the App is autoscaled")
	assert.Contains(t, err.Error(), "change spec.autoscaling.minReplicas or maxReplicas instead")

	// Turning autoscaling off and changing replicas in one change is allowed; so is scaling afterwards.
	_, err = apps.Patch(e.ctx, "scaled", types.MergePatchType,
		[]byte(`{"spec": {"autoscaling": null, "replicas": 3}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	scale, err = apps.GetScale(e.ctx, "scaled", metav1.GetOptions{})
	require.NoError(t, err)
	scale.Spec.Replicas = 4
	_, err = apps.UpdateScale(e.ctx, "scaled", scale, metav1.UpdateOptions{})
	assert.NoError(t, err, "an App that is not autoscaled scales")
}
