package production

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/test/framework"
)

// What the chart (charts/berth) renders differently from artifacts/deploy, on purpose; README.md ("Install in a
// cluster") says why. Anything else that differs fails TestChartRendersArtifactsDeploy.
var (
	// helmLabels are Helm's conventional labels, which the chart adds to the metadata of every object it
	// templates (not to its Pod template, whose labels are the Deployment's selector, nor to the CRD, which Helm
	// installs from crds/ as it is).
	helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version",
		"app.kubernetes.io/managed-by"}
	// namespacesNotInChart are the Namespaces of artifacts/deploy, which the chart does not create: the platform
	// team creates berth's namespace (with the Pod Security labels of artifacts/deploy/base/namespace.yaml) and
	// owns the namespaces of the Apps.
	namespacesNotInChart = map[string][]string{
		"artifacts/deploy":            {"v1 Namespace berth-system"},
		"artifacts/deploy/namespaced": {"v1 Namespace berth-system", "v1 Namespace apps"},
	}
)

// TestChartRendersArtifactsDeploy renders the chart as `helm template` does and compares it, object by object
// and field by field, with `kubectl kustomize` of artifacts/deploy (the chart's default values, every namespace)
// and of artifacts/deploy/namespaced (watchNamespaces=[apps]): the two ways to install berth stay one.
func TestChartRendersArtifactsDeploy(t *testing.T) {
	for _, c := range []struct {
		kustomization string
		values        []string // helm template's flags
	}{
		{"artifacts/deploy", nil},
		{"artifacts/deploy/namespaced", []string{"--set", "watchNamespaces={apps}"}},
	} {
		t.Run(c.kustomization, func(t *testing.T) {
			kustomized := objectsByKey(t, kubectl(t, "kustomize", filepath.Join(framework.RepoRoot(), c.kustomization)))
			charted := objectsByKey(t, helmTemplate(t, c.values...))

			for _, key := range namespacesNotInChart[c.kustomization] {
				require.Contains(t, kustomized, key, "an allowed difference that is no longer one")
				assert.NotContains(t, charted, key, "the chart creates no namespace")
				delete(kustomized, key)
			}
			for key, o := range charted {
				if o.GetKind() == "CustomResourceDefinition" {
					continue
				}
				labels := o.GetLabels()
				for _, label := range helmLabels {
					assert.NotEmpty(t, labels[label], "%s has Helm's label %s", key, label)
					delete(labels, label)
				}
				o.SetLabels(labels)
			}

			assert.ElementsMatch(t, slices.Collect(maps.Keys(kustomized)), slices.Collect(maps.Keys(charted)),
				"the objects of kubectl kustomize %s, and of the chart", c.kustomization)
			for key, want := range kustomized {
				if got, ok := charted[key]; ok {
					assertSameObject(t, key, "kubectl kustomize "+c.kustomization, want, "the chart", got)
				}
			}
		})
	}
}

// TestChartWithTwoNamespaces checks that a list of namespaces gives what one namespace does (which the test
// above compares with artifacts/deploy/namespaced), with a Role and RoleBinding in each and all of them in
// --namespace.
func TestChartWithTwoNamespaces(t *testing.T) {
	want := objectsByKey(t, helmTemplate(t, "--set", "watchNamespaces={apps}"))
	for _, kind := range []string{"Role", "RoleBinding"} {
		o := want["rbac.authorization.k8s.io/v1 "+kind+" apps/berth"]
		require.NotNil(t, o, "the %s of namespace apps", kind)
		o = o.DeepCopy()
		o.SetNamespace("shop")
		want[objectKey(o)] = o
	}
	deployment := want["apps/v1 Deployment berth-system/berth"]
	require.NotNil(t, deployment)
	setArg(t, deployment, "--namespace=apps", "--namespace=apps,shop")

	got := objectsByKey(t, helmTemplate(t, "--set", "watchNamespaces={apps,shop}"))
	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(got)))
	for key, o := range want {
		if g, ok := got[key]; ok {
			assertSameObject(t, key, "watchNamespaces=[apps], with shop added", o, "watchNamespaces=[apps, shop]", g)
		}
	}
}

// TestChartIsAcceptedByTheAPIServer has the API server validate and admit what the chart renders (its CRD
// included) with a server-side dry run, with the default values and with a list of two namespaces. The
// namespaces are created first, as the platform team does (berth-system as artifacts/deploy has it).
func TestChartIsAcceptedByTheAPIServer(t *testing.T) {
	kubectl(t, "apply", "--filename="+deployDir("base", "namespace.yaml"))
	for _, ns := range []string{"apps", "shop"} {
		out := kubectl(t, "create", "namespace", ns, "--dry-run=client", "--output=yaml")
		file := filepath.Join(t.TempDir(), ns+".yaml")
		require.NoError(t, os.WriteFile(file, []byte(out), 0o644))
		kubectl(t, "apply", "--filename="+file)
	}
	for _, c := range []struct {
		name   string
		values []string
	}{
		{"default values", nil},
		{"two namespaces", []string{"--values", "charts/berth/ci/two-namespaces-values.yaml"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rendered := helmTemplate(t, c.values...)
			file := filepath.Join(t.TempDir(), "chart.yaml")
			require.NoError(t, os.WriteFile(file, []byte(rendered), 0o644))
			out := kubectl(t, "apply", "--dry-run=server", "--filename="+file)
			objects := objectsByKey(t, rendered)
			require.NotEmpty(t, objects)
			for _, o := range objects {
				assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(kubectlName(o))+` (created|configured|unchanged) \(server dry run\)$`,
					out, "kubectl apply --dry-run=server of the chart")
			}
		})
	}
}

// TestChartMonitoring checks the Prometheus Operator's objects, which the local cluster cannot dry-run (it has
// not their CRDs): the ServiceMonitor selects the metrics Service and its port, and the PrometheusRule carries the
// rule groups of artifacts/monitoring/rules.yaml. With the default values there are neither.
func TestChartMonitoring(t *testing.T) {
	for _, o := range objectsByKey(t, helmTemplate(t)) {
		assert.NotEqual(t, "monitoring.coreos.com/v1", o.GetAPIVersion(), "off by default: %s", objectKey(o))
	}

	objects := objectsByKey(t, helmTemplate(t, "--values", "charts/berth/ci/monitoring-values.yaml"))
	service := objects["v1 Service berth-system/berth-metrics"]
	monitor := objects["monitoring.coreos.com/v1 ServiceMonitor berth-system/berth"]
	rule := objects["monitoring.coreos.com/v1 PrometheusRule berth-system/berth"]
	require.NotNil(t, service)
	require.NotNil(t, monitor)
	require.NotNil(t, rule)

	t.Run("the ServiceMonitor selects the metrics Service and its port", func(t *testing.T) {
		selector, _, err := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
		require.NoError(t, err)
		require.NotEmpty(t, selector)
		for k, v := range selector {
			assert.Equal(t, v, service.GetLabels()[k], "the Service has the selector's label %s", k)
		}
		endpoints, _, err := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
		require.NoError(t, err)
		require.Len(t, endpoints, 1)
		ports, _, err := unstructured.NestedSlice(service.Object, "spec", "ports")
		require.NoError(t, err)
		var portNames []any
		for _, p := range ports {
			portNames = append(portNames, p.(map[string]any)["name"])
		}
		assert.Contains(t, portNames, endpoints[0].(map[string]any)["port"])
		assert.Equal(t, true, endpoints[0].(map[string]any)["honorLabels"],
			"berth_app_condition's namespace label is the App's, not the target's")
		assert.Equal(t, "prometheus", monitor.GetLabels()["release"], "the labels of the values file")
	})

	t.Run("the PrometheusRule has the groups of artifacts/monitoring/rules.yaml", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "artifacts", "monitoring", "rules.yaml"))
		require.NoError(t, err)
		var file map[string]any
		require.NoError(t, yaml.Unmarshal(data, &file))
		require.NotEmpty(t, file["groups"])
		groups, _, err := unstructured.NestedFieldNoCopy(rule.Object, "spec", "groups")
		require.NoError(t, err)
		assert.Equal(t, canonical(t, file["groups"]), canonical(t, groups))
		assert.Equal(t, "prometheus", rule.GetLabels()["release"], "the labels of the values file")
	})
}

// helmTemplate renders charts/berth as the release "berth" in namespace berth-system, with its CRD, and the
// values given by flags (--set, --values with a path relative to the repository).
func helmTemplate(t *testing.T, values ...string) string {
	t.Helper()
	return helm(t, append([]string{"template", "berth", "charts/berth", "--namespace=berth-system", "--include-crds"},
		values...)...)
}

// helm runs the helm pinned in hack/tools/helm in the repository, and returns what it printed on its standard
// output; the test fails with everything it printed when it fails.
func helm(t *testing.T, args ...string) string {
	t.Helper()
	recordInputs.Do(func() { require.NoError(t, framework.RecordInputs()) })
	helmOnce.Do(func() { helmBinary, helmErr = buildHelm() })
	require.NoError(t, helmErr)
	cmd := exec.CommandContext(t.Context(), helmBinary, args...)
	cmd.Dir = framework.RepoRoot()
	cache := filepath.Join(framework.RepoRoot(), ".cache", "helm")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(cache, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(cache, "config"), "HELM_DATA_HOME="+filepath.Join(cache, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "helm %s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}

var (
	helmOnce   sync.Once
	helmBinary string
	helmErr    error
)

// buildHelm builds the pinned helm into Go's build cache, as `go tool` does, and returns its path (`go tool -n`
// prints the command it would run), so that each helm command does not ask go whether it is up to date.
func buildHelm() (string, error) {
	cmd := exec.Command("go", "tool", "-n", "-modfile=hack/tools/helm/go.mod", "helm")
	cmd.Dir = framework.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return "", fmt.Errorf("go tool -n helm: %w\n%s", err, exitErr.Stderr)
		}
		return "", fmt.Errorf("go tool -n helm: %w", err)
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("go tool -n helm printed %q: %w", path, err)
	}
	return path, nil
}

// objectsByKey parses a stream of YAML documents (kubectl kustomize's, or helm template's) into objects, by
// objectKey; empty documents are skipped.
func objectsByKey(t *testing.T, stream string) map[string]*unstructured.Unstructured {
	t.Helper()
	objects := map[string]*unstructured.Unstructured{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects
		}
		require.NoError(t, err)
		var object map[string]any
		require.NoError(t, yaml.Unmarshal(doc, &object))
		if object == nil {
			continue
		}
		o := &unstructured.Unstructured{Object: object}
		key := objectKey(o)
		require.NotContains(t, objects, key, "the object %s twice", key)
		objects[key] = o
	}
}

// objectKey names an object by API version, kind, namespace and name: "apps/v1 Deployment berth-system/berth".
func objectKey(o *unstructured.Unstructured) string {
	name := o.GetName()
	if ns := o.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return o.GetAPIVersion() + " " + o.GetKind() + " " + name
}

// kubectlName is how kubectl apply names an object in what it prints: kind.group/name.
func kubectlName(o *unstructured.Unstructured) string {
	gvk := o.GroupVersionKind()
	kind := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		kind += "." + gvk.Group
	}
	return kind + "/" + o.GetName()
}

// canonical is a parsed value written as YAML with sorted keys, so that two values compare equal exactly when
// their parsed forms do, and a difference shows as the lines that differ.
func canonical(t *testing.T, v any) string {
	t.Helper()
	if o, ok := v.(*unstructured.Unstructured); ok {
		v = o.Object
	}
	out, err := yaml.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

// assertSameObject fails the test, with the lines that differ, when the two parsed objects differ.
func assertSameObject(t *testing.T, key, wantName string, want *unstructured.Unstructured, gotName string,
	got *unstructured.Unstructured) {
	t.Helper()
	w, g := canonical(t, want), canonical(t, got)
	if w == g {
		return
	}
	diff, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(w), B: difflib.SplitLines(g), FromFile: wantName, ToFile: gotName, Context: 3,
	})
	require.NoError(t, err)
	t.Errorf("%s differs:\n%s", key, diff)
}

// setArg replaces the argument old of the Deployment's first container with new.
func setArg(t *testing.T, deployment *unstructured.Unstructured, old, new string) {
	t.Helper()
	containers, _, err := unstructured.NestedSlice(deployment.Object, "spec", "template", "spec", "containers")
	require.NoError(t, err)
	require.NotEmpty(t, containers)
	args := containers[0].(map[string]any)["args"].([]any)
	i := slices.Index(args, any(old))
	require.NotEqual(t, -1, i, "the Deployment runs berth with %s: %v", old, args)
	args[i] = new
	require.NoError(t, unstructured.SetNestedSlice(deployment.Object, containers, "spec", "template", "spec",
		"containers"))
}
