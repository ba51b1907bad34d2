package production

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/test/framework"
)

// TestManifestsAreAcceptedByTheAPIServer applies the kustomizations of artifacts/deploy with a server-side dry
// run, so that the API server validates and admits every object without keeping it, and checks that the Pods of
// the Deployment are admitted where the restricted Pod Security Standard is enforced, and that a Pod that breaks
// it is not.
func TestManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	for _, dir := range []string{deployDir(), deployDir("namespaced")} {
		rel, err := filepath.Rel(framework.RepoRoot(), dir)
		require.NoError(t, err)
		t.Run(rel, func(t *testing.T) {
			objects := kustomize(t, dir)
			// A dry run creates nothing, so the namespaces that the objects go in must exist already: the
			// Namespaces that the kustomization itself declares are applied for real first.
			var namespaces []string
			for _, o := range objects {
				if o.gvk.Kind == "Namespace" {
					namespaces = append(namespaces, o.yaml)
				}
			}
			require.NotEmpty(t, namespaces, "%s declares its namespaces", rel)
			file := filepath.Join(t.TempDir(), "namespaces.yaml")
			require.NoError(t, os.WriteFile(file, []byte(strings.Join(namespaces, "\n---\n")), 0o644))
			kubectl(t, "apply", "--filename="+file)

			out := kubectl(t, "apply", "--dry-run=server", "--kustomize="+dir)
			for _, o := range objects {
				assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(o.kubectlName())+` (created|configured|unchanged) \(server dry run\)$`,
					out, "kubectl apply --dry-run=server -k %s", rel)
			}
		})
	}

	// The shipped Deployment, applied for real: its Pods are admitted in berth-system, which enforces the
	// restricted standard, and kwok "runs" them (they do not run berth: this cluster has no kubelet).
	applyShippedManifests(t)
	eventually(t, "the 2 Pods of Deployment berth-system/berth to be ready", timeout, func(ctx context.Context) error {
		d, err := kubeClient.AppsV1().Deployments("berth-system").Get(ctx, "berth", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.ReadyReplicas != 2 {
			return fmt.Errorf("%d ready replicas: %+v", d.Status.ReadyReplicas, d.Status.Conditions)
		}
		return nil
	})

	template := shippedDeployment(t).Spec.Template
	restricted := newNamespace(t, "restricted", map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	})
	_, err := kubeClient.CoreV1().ServiceAccounts(restricted).Create(t.Context(), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: template.Spec.ServiceAccountName},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	t.Run("a Pod of the Deployment's template is admitted under the restricted standard", func(t *testing.T) {
		_, err := kubeClient.CoreV1().Pods(restricted).Create(t.Context(), podOf(template), metav1.CreateOptions{})
		require.NoError(t, err)
	})
	// The negative controls: the namespaces do enforce the standard.
	for _, variant := range []struct {
		name   string
		change func(*corev1.Pod)
		field  string // that the refusal names
	}{
		{"without runAsNonRoot", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsNonRoot = nil }, "runAsNonRoot"},
		{"with allowPrivilegeEscalation", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
		}, "allowPrivilegeEscalation"},
	} {
		for _, ns := range []struct{ name, where string }{
			{restricted, "a namespace enforcing restricted"},
			{"berth-system", "berth-system"},
		} {
			t.Run(fmt.Sprintf("a Pod %s is refused in %s", variant.name, ns.where), func(t *testing.T) {
				pod := podOf(template)
				variant.change(pod)
				_, err := kubeClient.CoreV1().Pods(ns.name).Create(t.Context(), pod, metav1.CreateOptions{})
				require.Error(t, err, "the Pod breaks the restricted standard")
				assert.True(t, apierrors.IsForbidden(err), "refused by admission: %v", err)
				assert.ErrorContains(t, err, `violates PodSecurity "restricted:latest"`)
				assert.ErrorContains(t, err, variant.field)
			})
		}
	}
}

// kustomized is one object of a kustomization's output.
type kustomized struct {
	gvk  schema.GroupVersionKind
	name string
	yaml string
}

// kubectlName is how kubectl apply names the object in what it prints: kind.group/name.
func (o kustomized) kubectlName() string {
	kind := strings.ToLower(o.gvk.Kind)
	if o.gvk.Group != "" {
		kind += "." + o.gvk.Group
	}
	return kind + "/" + o.name
}

// kustomize renders a kustomization with `kubectl kustomize`.
func kustomize(t *testing.T, dir string) []kustomized {
	t.Helper()
	var objects []kustomized
	for _, doc := range strings.Split(kubectl(t, "kustomize", dir), "\n---\n") {
		var o struct {
			metav1.TypeMeta   `json:",inline"`
			metav1.ObjectMeta `json:"metadata"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o))
		require.NotEmpty(t, o.Kind, "an object of %s: %s", dir, doc)
		objects = append(objects, kustomized{gvk: o.GroupVersionKind(), name: o.Name, yaml: doc})
	}
	return objects
}

// shippedDeployment is the Deployment of artifacts/deploy, as kustomize renders it.
func shippedDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	for _, o := range kustomize(t, deployDir()) {
		if o.gvk.Kind == "Deployment" {
			var d appsv1.Deployment
			require.NoError(t, yaml.UnmarshalStrict([]byte(o.yaml), &d))
			return &d
		}
	}
	t.Fatal("artifacts/deploy has no Deployment")
	return nil
}

// podOf is a Pod of the template, with labels of its own so that no ReplicaSet adopts it.
func podOf(template corev1.PodTemplateSpec) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: *template.ObjectMeta.DeepCopy(), Spec: *template.Spec.DeepCopy()}
	pod.GenerateName = "berth-template-"
	pod.Labels = map[string]string{"app.kubernetes.io/name": "berth-admission-test"}
	return pod
}
