package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// TestInvalidAppsAreRejected sends Apps as a user would write them (JSON, so that wrong types can be sent too)
// and checks that the API server refuses each with a message naming the field at fault.
func TestInvalidAppsAreRejected(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name      string
		appName   string
		spec      string
		wantField string // the field the message must name
		wantText  string // more of the message, where the field alone says too little
	}{
		{"image missing", "", `{}`, "spec.image", "Required value"},
		{"image empty", "", `{"image": ""}`, "spec.image", ""},
		{"image with a space", "", `{"image": "nginx 1.27"}`, "spec.image", "must not contain whitespace"},
		{"image with a newline", "", `{"image": "nginx\n:1.27"}`, "spec.image", "must not contain whitespace"},
		{"replicas negative", "", `{"image": "nginx", "replicas": -1}`, "spec.replicas", "greater than or equal to 0"},
		{"replicas absurd", "", `{"image": "nginx", "replicas": 1000000}`, "spec.replicas", "less than or equal to 10000"},
		{"replicas not a number", "", `{"image": "nginx", "replicas": "three"}`, "spec.replicas", "integer"},
		{"port zero", "", `{"image": "nginx", "port": 0}`, "spec.port", "greater than or equal to 1"},
		{"port too high", "", `{"image": "nginx", "port": 65536}`, "spec.port", "less than or equal to 65535"},
		{"health check without port", "", `{"image": "nginx", "healthCheck": {"path": "/healthz"}}`,
			"spec.healthCheck", "requires spec.port"},
		{"health check path relative", "", `{"image": "nginx", "port": 80, "healthCheck": {"path": "healthz"}}`,
			"spec.healthCheck.path", "must start with '/'"},
		{"health check path missing", "", `{"image": "nginx", "port": 80, "healthCheck": {}}`,
			"spec.healthCheck.path", "Required value"},
		{"health check period zero", "", `{"image": "nginx", "port": 80, "healthCheck": {"path": "/", "periodSeconds": 0}}`,
			"spec.healthCheck.periodSeconds", "greater than or equal to 1"},
		{"env names repeated", "", `{"image": "nginx", "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}`,
			"spec.env[1]", "Duplicate value"},
		{"env name invalid", "", `{"image": "nginx", "env": [{"name": "1 BAD"}]}`, "spec.env[0].name", ""},
		{"env name missing", "", `{"image": "nginx", "env": [{"value": "x"}]}`, "spec.env[0].name", "Required value"},
		{"limits below requests", "", `{"image": "nginx", "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "100m"}}}`,
			"spec.resources", "limits must not be lower than spec.resources.requests"},
		{"quantity not a quantity", "", `{"image": "nginx", "resources": {"requests": {"cpu": "lots"}}}`,
			"spec.resources.requests.cpu", ""},
		{"unknown field", "", `{"image": "nginx", "imagePullPolicy": "Always"}`, "spec.imagePullPolicy", "unknown field"},
		{"name not a Service name", "1web", `{"image": "nginx"}`, "metadata.name", "valid Service name"},
		{"name too long for a Service", strings.Repeat("a", 64), `{"image": "nginx"}`, "metadata.name", "at most 63"},
	}
	require.GreaterOrEqual(t, len(tests), 15)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.appName
			if name == "" {
				name = fmt.Sprintf("invalid-%d", i)
			}
			body := fmt.Sprintf(`{"apiVersion": "berth.dev/v1alpha1", "kind": "App", "metadata": {"name": %q}, "spec": %s}`,
				name, tt.spec)
			err := e.berth.BerthV1alpha1().RESTClient().Post().
				Namespace(e.namespace).Resource("apps").
				Param("fieldValidation", "Strict"). // as kubectl sends it
				Body([]byte(body)).
				Do(e.ctx).Error()

			require.Error(t, err, "the API server accepted %s", body)
			assert.True(t, apierrors.IsInvalid(err) || apierrors.IsBadRequest(err), "got %v", err)
			assert.Contains(t, err.Error(), tt.wantField)
			assert.Contains(t, err.Error(), tt.wantText)
		})
	}
}

// TestValidAppsAreAccepted guards the rules above against refusing what they should let through.
func TestValidAppsAreAccepted(t *testing.T) {
	e := newEnv(t)
	for i, spec := range []string{
		`{"image": "nginx"}`,
		`{"image": "registry.example.com:5000/shop/web@sha256:0123456789abcdef", "replicas": 0}`,
		`{"image": "nginx", "port": 65535, "healthCheck": {"path": "/healthz", "initialDelaySeconds": 0, "periodSeconds": 5}}`,
		`{"image": "nginx", "env": [{"name": "A"}, {"name": "b.c-d_e", "value": ""}]}`,
		`{"image": "nginx", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}}}`,
		`{"image": "nginx", "resources": {"requests": {"cpu": "0.5"}, "limits": {"cpu": "500m"}}}`,
	} {
		body := fmt.Sprintf(`{"apiVersion": "berth.dev/v1alpha1", "kind": "App", "metadata": {"name": "valid-%d"}, "spec": %s}`,
			i, spec)
		err := e.berth.BerthV1alpha1().RESTClient().Post().
			Namespace(e.namespace).Resource("apps").
			Param("fieldValidation", "Strict").
			Body([]byte(body)).
			Do(e.ctx).Error()
		assert.NoError(t, err, "refused: %s", spec)
	}
}
