package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthdev/berth/test/framework"
)

// TestInvalidAppsAreRejected sends Apps as a user would write them (JSON, so that wrong types can be sent too)
// and checks that the API server refuses each with a message naming the field at fault.
// invalidApp is an App the API server must refuse, and what its message must say.
type invalidApp struct {
	name      string
	appName   string
	spec      string
	wantField string // the field the message must name
	wantText  string // more of the message, where the field alone says too little
}

func TestInvalidAppsAreRejected(t *testing.T) {
	e := newEnv(t)
	tests := []invalidApp{
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
		{"name with capitals", "Web", `{"image": "nginx"}`, "metadata.name", ""},

		// References to Secrets and ConfigMaps, files, commands, identity (issue 17, items 1-3).
		{"env with a value and a reference", "", `{"image": "nginx", "env": [{"name": "A", "value": "x", "secretKeyRef": {"name": "db", "key": "k"}}]}`,
			"spec.env[0]", "at most one of value, secretKeyRef and configMapKeyRef"},
		{"env with two references", "", `{"image": "nginx", "env": [{"name": "A", "secretKeyRef": {"name": "db", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}]}`,
			"spec.env[0]", "at most one of value, secretKeyRef and configMapKeyRef"},
		{"secret key reference without a key", "", `{"image": "nginx", "env": [{"name": "A", "secretKeyRef": {"name": "db"}}]}`,
			"spec.env[0].secretKeyRef.key", "Required value"},
		{"secret name not a DNS subdomain", "", `{"image": "nginx", "env": [{"name": "A", "secretKeyRef": {"name": "DB", "key": "k"}}]}`,
			"spec.env[0].secretKeyRef.name", ""},
		{"config map key with a slash", "", `{"image": "nginx", "env": [{"name": "A", "configMapKeyRef": {"name": "c", "key": "a/b"}}]}`,
			"spec.env[0].configMapKeyRef.key", ""},
		{"key starting with '..'", "", `{"image": "nginx", "env": [{"name": "A", "configMapKeyRef": {"name": "c", "key": "..data"}}]}`,
			"spec.env[0].configMapKeyRef.key", "must not be '.' or start with '..'"},
		{"envFrom with neither", "", `{"image": "nginx", "envFrom": [{"prefix": "A_"}]}`,
			"spec.envFrom[0]", "exactly one of secretRef and configMapRef"},
		{"envFrom with both", "", `{"image": "nginx", "envFrom": [{"secretRef": {"name": "a"}, "configMapRef": {"name": "b"}}]}`,
			"spec.envFrom[0]", "exactly one of secretRef and configMapRef"},
		{"envFrom prefix not a variable name", "", `{"image": "nginx", "envFrom": [{"secretRef": {"name": "a"}, "prefix": "1="}]}`,
			"spec.envFrom[0].prefix", ""},
		{"files path relative", "", `{"image": "nginx", "files": [{"path": "etc/tls", "secret": {"name": "tls"}}]}`,
			"spec.files[0].path", "must be an absolute path"},
		{"files path with '..'", "", `{"image": "nginx", "files": [{"path": "/etc/../root", "secret": {"name": "tls"}}]}`,
			"spec.files[0].path", "must not contain '..'"},
		{"files path repeated", "", `{"image": "nginx", "files": [{"path": "/etc/a", "secret": {"name": "a"}}, {"path": "/etc/a", "configMap": {"name": "b"}}]}`,
			"spec.files[1]", "Duplicate value"},
		{"files without a source", "", `{"image": "nginx", "files": [{"path": "/etc/a"}]}`,
			"spec.files[0]", "exactly one of secret and configMap"},
		{"files mode over 0777", "", `{"image": "nginx", "files": [{"path": "/etc/a", "secret": {"name": "a", "mode": 512}}]}`,
			"spec.files[0].secret.mode", "less than or equal to 511"},
		{"file item path absolute", "", `{"image": "nginx", "files": [{"path": "/etc/a", "configMap": {"name": "a", "items": [{"key": "k", "path": "/k"}]}}]}`,
			"spec.files[0].configMap.items[0].path", "must be a relative path"},
		{"file item path starting with '..'", "", `{"image": "nginx", "files": [{"path": "/etc/a", "configMap": {"name": "a", "items": [{"key": "k", "path": "..k"}]}}]}`,
			"spec.files[0].configMap.items[0].path", "start with '..'"},
		{"command too long", "", fmt.Sprintf(`{"image": "nginx", "command": [%q]}`, strings.Repeat("c", 4097)),
			"spec.command[0]", "Too long"},
		{"args not strings", "", `{"image": "nginx", "args": [1]}`, "spec.args[0]", "string"},
		{"pull secret repeated", "", `{"image": "nginx", "imagePullSecrets": ["a", "a"]}`,
			"spec.imagePullSecrets[1]", "Duplicate value"},
		{"pull secret not a name", "", `{"image": "nginx", "imagePullSecrets": ["Registry Creds"]}`,
			"spec.imagePullSecrets[0]", ""},
		{"service account not a name", "", `{"image": "nginx", "serviceAccountName": "Web_SA"}`,
			"spec.serviceAccountName", ""},
		{"user 0 without runAsRoot", "", `{"image": "nginx", "runAs": {"user": 0}}`,
			"spec.runAs.user", "0 is root"},
		{"user negative", "", `{"image": "nginx", "runAs": {"user": -1}}`,
			"spec.runAs.user", "greater than or equal to 0"},
		{"fsGroup too large", "", `{"image": "nginx", "runAs": {"fsGroup": 2147483648}}`,
			"spec.runAs.fsGroup", "less than or equal to 2147483647"},

		// Several ports and full probes (issue 17, items 4-5).
		{"port and ports", "", `{"image": "nginx", "port": 80, "ports": [{"name": "api", "port": 8080}]}`,
			"spec.ports", "use spec.port or spec.ports, not both"},
		{"port name without a letter", "", `{"image": "nginx", "ports": [{"name": "8080", "port": 8080}]}`,
			"spec.ports[0].name", "must contain a letter"},
		{"port name too long", "", `{"image": "nginx", "ports": [{"name": "a-very-long-name", "port": 8080}]}`,
			"spec.ports[0].name", "Too long"},
		{"port names repeated", "", `{"image": "nginx", "ports": [{"name": "api", "port": 8080}, {"name": "api", "port": 8081}]}`,
			"spec.ports[1]", "Duplicate value"},
		{"port number repeated", "", `{"image": "nginx", "ports": [{"name": "api", "port": 8080}, {"name": "web", "port": 8080}]}`,
			"spec.ports", "once per protocol"},
		{"service port repeated", "", `{"image": "nginx", "ports": [{"name": "api", "port": 8080, "servicePort": 80}, {"name": "web", "port": 80}]}`,
			"spec.ports", "same servicePort and protocol"},
		{"port protocol unknown", "", `{"image": "nginx", "ports": [{"name": "api", "port": 8080, "protocol": "QUIC"}]}`,
			"spec.ports[0].protocol", "Unsupported value"},
		{"health check and probes", "", `{"image": "nginx", "port": 80, "healthCheck": {"path": "/"}, "probes": {"readiness": {"tcp": {}}}}`,
			"spec.probes", "use spec.healthCheck or spec.probes, not both"},
		{"probe with two handlers", "", `{"image": "nginx", "port": 80, "probes": {"readiness": {"tcp": {}, "exec": {"command": ["true"]}}}}`,
			"spec.probes.readiness", "exactly one of http, tcp, grpc and exec"},
		{"probe with no handler", "", `{"image": "nginx", "probes": {"liveness": {"periodSeconds": 5}}}`,
			"spec.probes.liveness", "exactly one of http, tcp, grpc and exec"},
		{"probe of a port that does not exist", "", `{"image": "nginx", "ports": [{"name": "api", "port": 8080}], "probes": {"readiness": {"http": {"path": "/", "port": "admin"}}}}`,
			"spec.probes.readiness.http", "must name a port of spec.ports"},
		{"probe without a port in an App without one", "", `{"image": "nginx", "probes": {"startup": {"tcp": {}}}}`,
			"spec.probes.startup.tcp", "the App needs a port"},
		{"liveness success threshold over 1", "", `{"image": "nginx", "probes": {"liveness": {"exec": {"command": ["true"]}, "successThreshold": 2}}}`,
			"spec.probes.liveness.successThreshold", "must be 1"},
		{"probe timeout zero", "", `{"image": "nginx", "probes": {"readiness": {"exec": {"command": ["true"]}, "timeoutSeconds": 0}}}`,
			"spec.probes.readiness.timeoutSeconds", "greater than or equal to 1"},
		{"exec probe without a command", "", `{"image": "nginx", "probes": {"readiness": {"exec": {"command": []}}}}`,
			"spec.probes.readiness.exec.command", ""},
		{"grpc probe port zero", "", `{"image": "nginx", "probes": {"readiness": {"grpc": {"port": 0}}}}`,
			"spec.probes.readiness.grpc.port", "greater than or equal to 1"},

		// Shutdown, rollouts and placement (issue 17, items 6-8).
		{"pre-stop sleep as long as the grace period", "", `{"image": "nginx", "shutdown": {"preStopSleepSeconds": 30}}`,
			"spec.shutdown.preStopSleepSeconds", "must be less than gracePeriodSeconds"},
		{"pre-stop sleep zero", "", `{"image": "nginx", "shutdown": {"preStopSleepSeconds": 0}}`,
			"spec.shutdown.preStopSleepSeconds", "greater than or equal to 1"},
		{"rollout that cannot progress", "", `{"image": "nginx", "rollout": {"maxSurge": 0, "maxUnavailable": "0%"}}`,
			"spec.rollout", "must not both be 0"},
		{"max surge not a number or percentage", "", `{"image": "nginx", "rollout": {"maxSurge": "lots"}}`,
			"spec.rollout.maxSurge", "a number of Pods or a percentage"},
		{"max unavailable negative", "", `{"image": "nginx", "rollout": {"maxUnavailable": -1}}`,
			"spec.rollout.maxUnavailable", "a number of Pods or a percentage"},
		{"max unavailable over 100%", "", `{"image": "nginx", "rollout": {"maxUnavailable": "150%"}}`,
			"spec.rollout.maxUnavailable", "up to 100%"},
		{"progress deadline within min ready", "", `{"image": "nginx", "rollout": {"minReadySeconds": 60, "progressDeadlineSeconds": 60}}`,
			"spec.rollout.progressDeadlineSeconds", "greater than minReadySeconds"},
		{"node selector key not a label key", "", `{"image": "nginx", "nodeSelector": {"arch?": "arm64"}}`,
			"spec.nodeSelector", "a key must be a label key"},
		{"node selector value not a label value", "", `{"image": "nginx", "nodeSelector": {"kubernetes.io/arch": "arm 64"}}`,
			"spec.nodeSelector.kubernetes.io/arch", ""},
		{"toleration Exists with a value", "", `{"image": "nginx", "tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]}`,
			"spec.tolerations[0]", "value must be empty when operator is Exists"},
		{"toleration of every taint with Equal", "", `{"image": "nginx", "tolerations": [{"effect": "NoSchedule"}]}`,
			"spec.tolerations[0]", "needs operator Exists"},
		{"toleration effect unknown", "", `{"image": "nginx", "tolerations": [{"key": "a", "effect": "NoRun"}]}`,
			"spec.tolerations[0].effect", "Unsupported value"},
		{"toleration seconds without NoExecute", "", `{"image": "nginx", "tolerations": [{"key": "a", "tolerationSeconds": 5}]}`,
			"spec.tolerations[0]", "needs effect NoExecute"},
		{"spread rule unknown", "", `{"image": "nginx", "spread": {"whenUnsatisfiable": "Never"}}`,
			"spec.spread.whenUnsatisfiable", "Unsupported value"},
		{"spread skew zero", "", `{"image": "nginx", "spread": {"maxSkew": 0}}`,
			"spec.spread.maxSkew", "greater than or equal to 1"},
		{"spread key not a label key", "", `{"image": "nginx", "spread": {"topologyKeys": ["zone?"]}}`,
			"spec.spread.topologyKeys[0]", ""},

		// Wrong types and empty objects.
		{"spec null", "", `null`, "spec", "Required value"},
		{"image null", "", `{"image": null}`, "spec.image", "Required value"},
		{"image not a string", "", `{"image": 5}`, "spec.image", "string"},
		{"replicas a fraction", "", `{"image": "nginx", "replicas": 1.5}`, "spec.replicas", "integer"},
		{"port a string", "", `{"image": "nginx", "port": "80"}`, "spec.port", "integer"},
		{"runAsRoot not a boolean", "", `{"image": "nginx", "runAsRoot": "yes"}`, "spec.runAsRoot", "boolean"},
		{"env a string", "", `{"image": "nginx", "env": "MODE=prod"}`, "spec.env", "array"},
		{"env value not a string", "", `{"image": "nginx", "env": [{"name": "A", "value": 1}]}`, "spec.env[0].value", "string"},
		{"requests a list", "", `{"image": "nginx", "resources": {"requests": ["cpu"]}}`, "spec.resources.requests", "object"},
		{"health check delay not a number", "", `{"image": "nginx", "port": 80, "healthCheck": {"path": "/", "initialDelaySeconds": "10s"}}`,
			"spec.healthCheck.initialDelaySeconds", "integer"},

		// Values out of range, and huge ones.
		{"image too long", "", fmt.Sprintf(`{"image": "registry.example.com/%s"}`, strings.Repeat("x", 1010)),
			"spec.image", "Too long"},
		{"health check delay negative", "", `{"image": "nginx", "port": 80, "healthCheck": {"path": "/", "initialDelaySeconds": -5}}`,
			"spec.healthCheck.initialDelaySeconds", "greater than or equal to 0"},
		{"health check delay absurd", "", `{"image": "nginx", "port": 80, "healthCheck": {"path": "/", "initialDelaySeconds": 86400}}`,
			"spec.healthCheck.initialDelaySeconds", "less than or equal to 3600"},
		{"health check period absurd", "", `{"image": "nginx", "port": 80, "healthCheck": {"path": "/", "periodSeconds": 2147483647}}`,
			"spec.healthCheck.periodSeconds", "less than or equal to 3600"},
		{"health check path too long", "", fmt.Sprintf(`{"image": "nginx", "port": 80, "healthCheck": {"path": "/%s"}}`,
			strings.Repeat("p", 2048)), "spec.healthCheck.path", "Too long"},
		{"env value too long", "", fmt.Sprintf(`{"image": "nginx", "env": [{"name": "A", "value": %q}]}`,
			strings.Repeat("v", 32769)), "spec.env[0].value", "Too long"},
		{"too many env entries", "", fmt.Sprintf(`{"image": "nginx", "env": [%s]}`, envEntries(257, 0)),
			"spec.env", "Too many"},
		{"env values over 1 MiB in all", "", fmt.Sprintf(`{"image": "nginx", "env": [%s]}`, envEntries(40, 30000)),
			"spec.env", "at most 1 MiB"},

		// Env names the Pod API refuses (since Kubernetes 1.34 it takes any printable ASCII character but '=').
		{"env name with '='", "", `{"image": "nginx", "env": [{"name": "A=B"}]}`, "spec.env[0].name", ""},
		{"env name not ASCII", "", `{"image": "nginx", "env": [{"name": "ÉTAT"}]}`, "spec.env[0].name", ""},
		{"env name too long", "", fmt.Sprintf(`{"image": "nginx", "env": [{"name": %q}]}`, strings.Repeat("N", 257)),
			"spec.env[0].name", "Too long"},

		// Resource names and quantities the Pod API refuses.
		{"resource name not standard", "", `{"image": "nginx", "resources": {"requests": {"gpu": "1"}}}`,
			"spec.resources.requests", "a resource name must be"},
		{"resource name of a quota", "", `{"image": "nginx", "resources": {"limits": {"requests.cpu": "1"}}}`,
			"spec.resources.limits", "a resource name must be"},
		{"resource name with a quota prefix", "", `{"image": "nginx", "resources": {"limits": {"requests.example.com/gpu": "1"}}}`,
			"spec.resources.limits", "a resource name must be"},
		{"resource name with a bad character", "", `{"image": "nginx", "resources": {"requests": {"example.com/gpu!": "1"}}}`,
			"spec.resources.requests", "a resource name must be"},
		{"resource name with an upper-case domain", "", `{"image": "nginx", "resources": {"requests": {"Example.com/gpu": "1"}}}`,
			"spec.resources.requests", "a resource name must be"},
		{"resource name too long after the domain", "", fmt.Sprintf(`{"image": "nginx", "resources": {"requests": {"example.com/%s": "1"}}}`,
			strings.Repeat("g", 64)), "spec.resources.requests", "a resource name must be"},
		{"hugepages without a page size", "", `{"image": "nginx", "resources": {"requests": {"hugepages-huge": "1"}}}`,
			"spec.resources.requests", "a resource name must be"},
		{"request negative", "", `{"image": "nginx", "resources": {"requests": {"cpu": "-100m"}}}`,
			"spec.resources.requests.cpu", "should match"},
		{"limit negative", "", `{"image": "nginx", "resources": {"limits": {"memory": -1}}}`,
			"spec.resources.limits", "must not be negative"},
		// Quantities that apimachinery's resource.ParseQuantity, which berth's client decodes Apps with, refuses
		// (an exponent with a fraction) or hangs over (an exponent of 2^31), as does CEL's quantity(): refused
		// before anything parses them (see hack/update-codegen.sh).
		{"quantity with a huge exponent", "", `{"image": "nginx", "resources": {"requests": {"example.com/gpu": "1e2147483648"}}}`,
			"spec.resources.requests", "should match"},
		{"cpu with a huge exponent beside a limit", "", `{"image": "nginx", "resources": {"requests": {"cpu": "1e2147483648"}, "limits": {"cpu": "1"}}}`,
			"spec.resources.requests.cpu", "should match"},
		{"quantity with a fractional exponent", "", `{"image": "nginx", "resources": {"requests": {"memory": "1e1.5"}}}`,
			"spec.resources.requests.memory", "should match"},
		{"quantity too long", "", fmt.Sprintf(`{"image": "nginx", "resources": {"limits": {"memory": "%s"}}}`, strings.Repeat("9", 65)),
			"spec.resources.limits.memory", "Too long"},
		{"quantity with a unit typo", "", `{"image": "nginx", "resources": {"requests": {"memory": "64MB"}}}`,
			"spec.resources.requests.memory", ""},

		// Unknown fields deeper down (kubectl sends fieldValidation=Strict; see also TestKubectlNamesTheUnknownField).
		{"unknown field in an env entry", "", `{"image": "nginx", "env": [{"name": "A", "valueFrom": {}}]}`,
			"spec.env[0].valueFrom", "unknown field"},
		{"unknown field in the health check", "", `{"image": "nginx", "port": 80, "healthCheck": {"path": "/", "timeoutSeconds": 1}}`,
			"spec.healthCheck.timeoutSeconds", "unknown field"},
	}
	tests = append(tests, invalidScalingAndRoute...)
	require.GreaterOrEqual(t, len(tests), 30)
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

// TestAppOverTheRequestLimitIsRefused: a body over the API server's limit (3 MiB) is refused before it is decoded,
// so the message cannot name a field; it says what the limit is.
func TestAppOverTheRequestLimitIsRefused(t *testing.T) {
	e := newEnv(t)
	body := fmt.Sprintf(`{"apiVersion": "berth.dev/v1alpha1", "kind": "App", "metadata": {"name": "huge"}, `+
		`"spec": {"image": "nginx", "env": [%s]}}`, envEntries(128, 32768))
	require.Greater(t, len(body), 3<<20)
	err := e.berth.BerthV1alpha1().RESTClient().Post().
		Namespace(e.namespace).Resource("apps").
		Body([]byte(body)).
		Do(e.ctx).Error()
	require.Error(t, err)
	assert.True(t, apierrors.IsRequestEntityTooLargeError(err), "got %v", err)
	assert.Contains(t, err.Error(), "limit is 3145728")
}

// TestKubectlNamesTheUnknownField applies an App with a misspelt field as a user does, with kubectl's strict
// validation, and checks that kubectl fails and names the field.
func TestKubectlNamesTheUnknownField(t *testing.T) {
	e := newEnv(t)
	kubectl, err := framework.Binary("kubectl")
	require.NoError(t, err)
	dir := t.TempDir()
	file := filepath.Join(dir, "app.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: berth.dev/v1alpha1
kind: App
metadata:
  name: web
spec:
  image: nginx:1.27
  replicas: 2
  env:
  - name: MODE
    valeu: prod
`), 0o600))

	cmd := exec.CommandContext(e.ctx, kubectl, "--kubeconfig="+controlPlane.Kubeconfig, "--namespace="+e.namespace,
		"apply", "--validate=strict", "-f", file)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+filepath.Join(dir, "kube-cache"))
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "kubectl accepted the App: %s", out)
	assert.Contains(t, string(out), `unknown field "spec.env[0].valeu"`)
	_, err = e.berth.BerthV1alpha1().Apps(e.namespace).Get(e.ctx, "web", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the App must not exist: %v", err)
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
		// Names as the Pod API takes them: hugepages, extended resources, native ones of a kubernetes.io domain.
		`{"image": "nginx", "resources": {"requests": {"memory": "1Gi", "ephemeral-storage": "1Gi", "hugepages-2Mi": "4Mi", "example.com/gpu": 1},
			"limits": {"hugepages-2Mi": "4Mi", "example.com/gpu": 1, "sub.example.com/some_thing.v2": "0"}}}`,
		`{"image": "nginx", "resources": {"requests": {"kubernetes.io/batch-cpu": "500"}}}`,
		// The longest name and value, and names that are only dots.
		fmt.Sprintf(`{"image": "nginx", "env": [{"name": "."}, {"name": ".."}, {"name": %q, "value": %q}]}`,
			strings.Repeat("N", 256), strings.Repeat("v", 32768)),
		fmt.Sprintf(`{"image": "nginx", "env": [%s]}`, envEntries(256, 4000)),
		// A real service's references and identity, each in its fullest form.
		`{"image": "registry.example.com/shop/api:2.0", "port": 8080,
			"command": ["/bin/api"], "args": ["--port=$(PORT)", ""],
			"env": [{"name": "PORT", "value": "8080"},
				{"name": "DB_PASSWORD", "secretKeyRef": {"name": "db", "key": "password"}},
				{"name": "LEVEL", "configMapKeyRef": {"name": "settings.v2", "key": "log.level", "optional": true}}],
			"envFrom": [{"secretRef": {"name": "db"}, "prefix": "DB_"}, {"configMapRef": {"name": "settings", "optional": true}}],
			"files": [{"path": "/etc/api/tls", "secret": {"name": "tls", "mode": 288, "items": [{"key": "tls.crt", "path": "certs/cert.pem"}, {"key": "tls.key"}]}},
				{"path": "/etc/api/conf", "configMap": {"name": "api-conf", "optional": true}}],
			"imagePullSecrets": ["registry", "mirror.example.com"], "serviceAccountName": "api",
			"automountServiceAccountToken": true, "runAs": {"user": 1000, "group": 1000, "fsGroup": 2000}}`,
		`{"image": "nginx", "runAsRoot": true, "runAs": {"user": 0, "group": 0, "fsGroup": 0}}`,
		`{"image": "nginx", "shutdown": {"preStopSleepSeconds": 10, "gracePeriodSeconds": 45},
			"rollout": {"maxSurge": "100%", "maxUnavailable": 0, "minReadySeconds": 5, "progressDeadlineSeconds": 120},
			"nodeSelector": {"kubernetes.io/arch": "arm64", "example.com/pool": ""},
			"tolerations": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"},
				{"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}],
			"spread": {"topologyKeys": ["kubernetes.io/hostname"], "maxSkew": 2, "whenUnsatisfiable": "DoNotSchedule"}}`,
		`{"image": "nginx", "shutdown": {"preStopSleepSeconds": 29}, "rollout": {"maxSurge": 1}, "spread": {"disabled": true}}`,
		`{"image": "nginx", "ports": [{"name": "api", "port": 8080, "servicePort": 80}, {"name": "metrics", "port": 9090, "internal": true},
			{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53}],
			"healthCheck": {"path": "/healthz"}}`,
		`{"image": "nginx", "ports": [{"name": "api", "port": 8080}, {"name": "admin", "port": 8081}],
			"probes": {"readiness": {"http": {"path": "/ready"}, "periodSeconds": 5, "timeoutSeconds": 2, "successThreshold": 2, "failureThreshold": 4},
				"liveness": {"tcp": {"port": "admin"}, "successThreshold": 1},
				"startup": {"grpc": {"port": 8081, "service": "api.v1"}, "failureThreshold": 30}}}`,
		`{"image": "nginx", "port": 8080, "probes": {"readiness": {"http": {"path": "/", "port": "http"}}, "liveness": {"exec": {"command": ["/bin/check"]}}}}`,
		`{"image": "nginx", "replicas": 3, "disruptionBudget": {"maxUnavailable": "34%"}, "port": 8080,
			"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
			"autoscaling": {"minReplicas": 3, "maxReplicas": 10, "cpuUtilization": 70, "memoryUtilization": 90},
			"route": {"host": "api.example.com", "path": "/v1/", "port": "http", "tlsSecretName": "api-tls",
				"gateway": {"name": "public", "namespace": "infra", "sectionName": "https"}}}`,
		`{"image": "nginx", "disruptionBudget": {"disabled": true}, "resources": {"requests": {"memory": "1Gi"}},
			"autoscaling": {"maxReplicas": 1, "memoryUtilization": 1},
			"ports": [{"name": "metrics", "port": 9090, "internal": true}, {"name": "api", "port": 8080}], "route": {"host": "a.example.com"}}`,
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

// envEntries is n env entries of JSON, each with a value of size bytes.
func envEntries(n, size int) string {
	entries := make([]string, n)
	for i := range entries {
		entries[i] = fmt.Sprintf(`{"name": "VAR_%d", "value": %q}`, i, strings.Repeat("v", size))
	}
	return strings.Join(entries, ", ")
}
