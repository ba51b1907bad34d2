package integration

// Tests of what an App's status says, and what it costs, when the API server refuses berth's writes.

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
)

// refuseDeployments makes a ValidatingAdmissionPolicy, bound to the test's namespace, refuse every write of a
// Deployment of one operation (CREATE or UPDATE) with messageExpression's message, as a platform team's policy
// added after the App would; it returns once the policy is in force, which probe tells by writing with dry run.
func (e *env) refuseDeployments(operation admissionregistrationv1.OperationType, messageExpression string,
	probe func(ctx context.Context) error) {
	e.t.Helper()
	name := "refuse-" + strings.ToLower(string(operation)) + "-" + e.namespace
	policies := e.kube.AdmissionregistrationV1()
	_, err := policies.ValidatingAdmissionPolicies().Create(e.ctx, &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{operation},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"},
							Resources: []string{"deployments"}},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression:        "false",
				MessageExpression: messageExpression,
				Reason:            ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(e.t, err)
	_, err = policies.ValidatingAdmissionPolicyBindings().Create(e.ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.namespace},
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		_ = policies.ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = policies.ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	e.eventually("the admission policy to be in force", func(ctx context.Context) (bool, error) {
		return apierrors.IsForbidden(probe(ctx)), nil
	})
}

// TestRefusedOwnershipKeepsDescribingTheRunningDeployment: the first change of a Deployment that berth created
// starts with a patch that hands its fields to berth's Apply entry (takeOwnership, ownership.go). An admission
// policy on UPDATE, added after the App ran, refuses that patch. The running Deployment is as it was, and the
// App's status must go on describing it (replicas, Available, the scale subresource), as for a refused apply,
// and say which change was refused.
func TestRefusedOwnershipKeepsDescribingTheRunningDeployment(t *testing.T) {
	e := newEnv(t)
	var ownershipRefused atomic.Int32
	e.startController(func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && req.Method == http.MethodPatch && strings.HasSuffix(req.URL.Path, "/deployments/web") &&
			req.Header.Get("Content-Type") == string(types.JSONPatchType) && resp.StatusCode == http.StatusForbidden {
			ownershipRefused.Add(1)
		}
		return resp, err
	})
	e.createApp(app("web"))
	_, d := e.waitConverged("web")
	require.Contains(t, d.Annotations, controller.AnnotationCreatedFrom, "the Deployment is as berth created it")
	e.runDeployment("web")
	e.waitCondition("web", berthv1alpha1.ConditionAvailable, metav1.ConditionTrue, controller.ReasonMinimumReplicasAvailable)

	// A Deployment of the policy's own, to probe it with: it refuses every update of a Deployment here.
	probe, err := e.kube.AppsV1().Deployments(e.namespace).Create(e.ctx, probeDeployment("example.com/probe:1"),
		metav1.CreateOptions{})
	require.NoError(t, err)
	e.refuseDeployments(admissionregistrationv1.Update, "'Deployments are frozen here'", func(ctx context.Context) error {
		_, err := e.kube.AppsV1().Deployments(e.namespace).Patch(ctx, probe.Name, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"probed":"yes"}}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	})

	_, err = e.berth.BerthV1alpha1().Apps(e.namespace).Patch(e.ctx, "web", types.MergePatchType,
		[]byte(`{"spec":{"image":"nginx:1.28"}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	a := e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, controller.ReasonForbidden)
	require.Positive(t, ownershipRefused.Load(), "the refusal was of berth's ownership patch")
	degraded := condition(t, a, berthv1alpha1.ConditionDegraded).Message
	assert.Contains(t, degraded, `update Deployment "web"`)
	assert.Contains(t, degraded, "Deployments are frozen here", "the policy's message")
	available := condition(t, a, berthv1alpha1.ConditionAvailable)
	assert.Equal(t, metav1.ConditionTrue, available.Status, "the Deployment that runs is still available: %+v", available)
	assert.Equal(t, controller.ReasonMinimumReplicasAvailable, available.Reason)
	assert.NotEqual(t, controller.ReasonForbidden, condition(t, a, berthv1alpha1.ConditionProgressing).Reason,
		"Progressing describes the running Deployment")
	assert.Equal(t, int32(1), a.Status.ReadyReplicas)
	assert.Equal(t, "1/1", a.Status.Ready)
	scale, err := e.berth.BerthV1alpha1().Apps(e.namespace).GetScale(e.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(1), scale.Status.Replicas, "the scale subresource reports the Pods that run")
	d, err = e.getDeployment("web")
	require.NoError(t, err)
	assert.Equal(t, "nginx:1.27", d.Spec.Template.Spec.Containers[0].Image, "the refused change did not land")
}
