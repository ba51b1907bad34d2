package integration

// Tests of what an App's status says, and what it costs, when the API server refuses berth's writes: a refusal
// on the way to changing what berth created, and a refusal whose message differs at every attempt.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/plan"
)

// refuseDeployments makes a ValidatingAdmissionPolicy, bound to the test's namespace, refuse every write of a
// Deployment of one operation (CREATE or UPDATE) with messageExpression's message, as a platform team's policy
// added after the App would; it returns once the policy is in force, which probe tells by writing with dry run.
func (e *env) refuseDeployments(operation admissionregistrationv1.OperationType, messageExpression string,
	probe func(ctx context.Context) error) {
	e.t.Helper()
	name := "refuse-" + strings.ToLower(string(operation)) + "-" + e.namespace
	e.bindValidatingPolicy(name, admissionregistrationv1.ValidatingAdmissionPolicySpec{
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
	e.waitCondition("web", berthv1alpha1.ConditionAvailable, metav1.ConditionTrue, plan.ReasonMinimumReplicasAvailable)

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

	a := e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonForbidden)
	require.Positive(t, ownershipRefused.Load(), "the refusal was of berth's ownership patch")
	degraded := condition(t, a, berthv1alpha1.ConditionDegraded).Message
	assert.Contains(t, degraded, `update Deployment "web"`)
	assert.Contains(t, degraded, "Deployments are frozen here", "the policy's message")
	available := condition(t, a, berthv1alpha1.ConditionAvailable)
	assert.Equal(t, metav1.ConditionTrue, available.Status, "the Deployment that runs is still available: %+v", available)
	assert.Equal(t, plan.ReasonMinimumReplicasAvailable, available.Reason)
	assert.NotEqual(t, plan.ReasonForbidden, condition(t, a, berthv1alpha1.ConditionProgressing).Reason,
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

// statusWrite is one write of an App's status that a test saw: when, and what its Degraded condition said.
type statusWrite struct {
	at       time.Time
	degraded string
}

// recordStatusWrites is a hook that records the writes of the status of the App name.
func recordStatusWrites(name string, mu *sync.Mutex, writes *[]statusWrite) hook {
	return func(req *http.Request, next http.RoundTripper) (*http.Response, error) {
		if req.Method != http.MethodPatch || !strings.HasSuffix(req.URL.Path, "/apps/"+name+"/status") || req.Body == nil {
			return next.RoundTrip(req)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var a berthv1alpha1.App
		w := statusWrite{at: time.Now()}
		if json.Unmarshal(body, &a) == nil {
			if c := meta.FindStatusCondition(a.Status.Conditions, berthv1alpha1.ConditionDegraded); c != nil {
				w.degraded = c.Message
			}
		}
		mu.Lock()
		*writes = append(*writes, w)
		mu.Unlock()
		return next.RoundTrip(req)
	}
}

// retriesWithin is how many retries a key's backoff allows within window after its first failure: the first
// after base, each next one after twice the delay before, up to max.
func retriesWithin(base, max, window time.Duration) int {
	n := 0
	elapsed := time.Duration(0)
	for delay := base; ; delay = min(2*delay, max) {
		elapsed += delay
		if elapsed > window {
			return n
		}
		n++
	}
}

// TestARefusalThatReadsDifferentlyEachTimeCostsBoundedWrites: an admission policy refuses the App's Deployment
// with a message that differs at every attempt (the uid the API server gives each create, as a webhook puts a
// request ID in its message). Each attempt changes the App's status, but the status write must not bring the
// App back past its backoff: the App costs one refused create and one status write per retry, the retries
// spaced by the backoff, however the message reads.
func TestARefusalThatReadsDifferentlyEachTimeCostsBoundedWrites(t *testing.T) {
	e := newEnv(t)
	e.refuseDeployments(admissionregistrationv1.Create, "'no new Deployments here (attempt ' + object.metadata.uid + ')'",
		func(ctx context.Context) error {
			_, err := e.kube.AppsV1().Deployments(e.namespace).Create(ctx, probeDeployment("example.com/probe:1"),
				metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		})
	var mu sync.Mutex
	var writes []statusWrite
	r := e.startController(recordStatusWrites("web", &mu, &writes))

	start := time.Now()
	e.createApp(app("web"))
	const window = 6 * time.Second
	time.Sleep(window)

	mu.Lock()
	var inWindow []statusWrite
	for _, w := range writes {
		if w.at.Sub(start) <= window {
			inWindow = append(inWindow, w)
		}
	}
	mu.Unlock()
	messages := map[string]bool{}
	for _, w := range inWindow {
		messages[w.degraded] = true
	}
	creates := 0
	for _, w := range r.writes.list() {
		if w == "POST /apis/apps/v1/namespaces/"+e.namespace+"/deployments" {
			creates++
		}
	}
	t.Logf("in %s: %d status writes, %d distinct Degraded messages, %d refused creates (%d writes in all)",
		window, len(inWindow), len(messages), creates, len(r.writes.list()))
	require.GreaterOrEqual(t, len(messages), 3, "the refusal reads differently at each attempt: %v", messages)
	for message := range messages {
		require.Contains(t, message, "no new Deployments here (attempt ", "each status says why")
	}

	// The controller of these tests backs off from 10 ms, doubling, up to 1 s (startControllerIn). The App is
	// synced when it is created, at each retry, and at most once more, when the event of its first status
	// write comes back before that sync's retry is scheduled; each sync writes the status at most once.
	bound := 2 + retriesWithin(10*time.Millisecond, time.Second, window)
	assert.LessOrEqual(t, len(inWindow), bound, "status writes in %s, at most one per sync the backoff allows", window)
	assert.LessOrEqual(t, creates, bound+1, "refused creates, at most one per sync the backoff allows")
}
