package integration

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/plan"
)

// Fights: someone else keeps changing a field berth sets. berth puts it back a bounded number of times, with
// growing delays, then stops and says why in the App's status; it does not turn the fight into a stream of writes.

// imageField is the image of the App's container, as berth names it in Events and conditions.
const imageField = `spec.template.spec.containers[name="app"].image`

// deploymentWrites counts the writes of the App's Deployment (creates, ownership patches, applies) that the API
// server took from berth.
func (e *env) deploymentWrites(r *running, name string) int {
	path := fmt.Sprintf("/apis/apps/v1/namespaces/%s/deployments", e.namespace)
	isDeploymentWrite := func(w string) bool { return strings.HasSuffix(w, path) || strings.HasSuffix(w, path+"/"+name) }
	n := 0
	for _, w := range r.writes.list() {
		if isDeploymentWrite(w) {
			n++
		}
	}
	// A write that met a conflict changed nothing; in these tests another writer races berth on purpose.
	for _, w := range r.writes.listConflicted() {
		if isDeploymentWrite(w) {
			n--
		}
	}
	return n
}

// triggerSync changes the Deployment's status, as kube-controller-manager does all along a rollout: each change
// brings the App back to berth's queue. It returns once berth has synced the App again.
func (e *env) triggerSync(r *running, name string) {
	e.t.Helper()
	before := r.syncs.total()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error { // berth may write the Deployment meanwhile
		d, err := e.getDeployment(name)
		if err != nil {
			return err
		}
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas = d.Status.Replicas%5 + 1 // a change every time
		_, err = e.kube.AppsV1().Deployments(e.namespace).UpdateStatus(e.ctx, d, metav1.UpdateOptions{})
		return err
	})
	require.NoError(e.t, err)
	e.eventually("berth to sync App "+name+" again", func(context.Context) (bool, error) {
		return r.syncs.total() > before, nil
	})
}

// TestAnotherWritersChangesAreUndoneThenLeftAlone: a bot sets the image of the App's Deployment every 50 ms.
// berth puts it back, with growing delays between its corrections, names the bot in its Events, and after
// controller.DefaultCorrectionLimit corrections stops and degrades the App with reason FieldContested, naming the
// field and the bot. A change of the App ends the contest.
func TestAnotherWritersChangesAreUndoneThenLeftAlone(t *testing.T) {
	e := newEnv(t)
	r := e.startController()
	e.createApp(app("web"))
	e.waitConverged("web")

	var botWrites atomic.Int64
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			d, err := e.getDeployment("web")
			if err != nil || strings.HasPrefix(d.Spec.Template.Spec.Containers[0].Image, "bot:") {
				continue
			}
			d.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("bot:%d", i)
			if _, err := e.kube.AppsV1().Deployments(e.namespace).Update(context.Background(), d,
				metav1.UpdateOptions{FieldManager: "image-bot"}); err == nil {
				botWrites.Add(1)
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-stopped
	}()

	var a *berthv1alpha1.App
	err := pollUntil(e.ctx, func(context.Context) (bool, error) {
		a = e.getApp("web")
		c := findCondition(a, berthv1alpha1.ConditionDegraded)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == plan.ReasonFieldContested, nil
	})
	require.NoError(t, err, "the App is not FieldContested; meanwhile the bot changed the image %d times and "+
		"berth wrote the Deployment %d times", botWrites.Load(), e.deploymentWrites(r, "web"))
	close(stop)
	<-stopped
	message := condition(t, a, berthv1alpha1.ConditionDegraded).Message
	assert.Contains(t, message, imageField)
	assert.Contains(t, message, `"image-bot" (Update)`)
	writes := e.deploymentWrites(r, "web")
	t.Logf("the bot changed the image %d times; berth wrote the Deployment %d times (the create included)",
		botWrites.Load(), writes)
	// The create, the patch that hands berth's created fields to its Apply entry, and the corrections.
	assert.LessOrEqual(t, writes, 2+controller.DefaultCorrectionLimit)
	assert.Equal(t, int64(controller.DefaultCorrectionLimit), botWrites.Load()-1,
		"each of berth's corrections was undone by the bot, and the bot's last change stays")
	assert.Positive(t, e.eventsAbout(a, corev1.EventTypeWarning, "Reverted"), "berth says whose change it undoes")
	var events *eventsv1.EventList
	events, err = e.kube.EventsV1().Events(e.namespace).List(e.ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, ev := range events.Items {
		if ev.Reason == "Reverted" {
			assert.Contains(t, ev.Note, `by "image-bot" (Update): `+imageField)
		}
	}

	// Contested, the field is left alone, whatever brings the App back to the queue.
	for range 3 {
		e.triggerSync(r, "web")
	}
	assert.Equal(t, writes, e.deploymentWrites(r, "web"), "no write of a contested Deployment")
	d, err := e.getDeployment("web")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(d.Spec.Template.Spec.Containers[0].Image, "bot:"))

	// A change of the App is berth's to make: the contest is over.
	_, err = e.berth.BerthV1alpha1().Apps(e.namespace).Patch(e.ctx, "web", types.MergePatchType,
		[]byte(`{"spec":{"image":"nginx:1.28"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.waitConverged("web")
	e.waitCondition("web", berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, plan.ReasonAsExpected)
}

// TestAdmissionThatRewritesAFieldIsNotFought: a MutatingAdmissionPolicy rewrites the image of every Deployment
// in the namespace to a mirror's, on berth's own writes. berth must not re-apply its image at every event of the
// Deployment: after its corrections it stops, and degrades the App with reason FieldContested, naming the field
// and admission as what rewrites it.
func TestAdmissionThatRewritesAFieldIsNotFought(t *testing.T) {
	e := newEnv(t)
	e.mirrorImages()
	r := e.startController()
	e.createApp(app("web"))

	var a *berthv1alpha1.App
	for i := 0; ; i++ {
		a = e.getApp("web")
		if cond := findCondition(a, berthv1alpha1.ConditionDegraded); cond != nil &&
			cond.Reason == plan.ReasonFieldContested {
			break
		}
		require.Less(t, i, 4*controller.DefaultCorrectionLimit, "the App is not FieldContested after %d syncs, "+
			"in which berth wrote the Deployment %d times", i, e.deploymentWrites(r, "web"))
		if _, err := e.getDeployment("web"); err == nil {
			e.triggerSync(r, "web")
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	message := condition(t, a, berthv1alpha1.ConditionDegraded).Message
	assert.Contains(t, message, imageField)
	assert.Contains(t, message, "mutating admission")
	writes := e.deploymentWrites(r, "web")
	assert.LessOrEqual(t, writes, 2+controller.DefaultCorrectionLimit)

	for range 3 {
		e.triggerSync(r, "web")
	}
	assert.Equal(t, writes, e.deploymentWrites(r, "web"), "no more writes once contested")
	d, err := e.getDeployment("web")
	require.NoError(t, err)
	assert.Equal(t, "mirror.example.com/nginx:1.27", d.Spec.Template.Spec.Containers[0].Image)
}

// TestAdmissionThatAddsAContainerIsNotFought: a MutatingAdmissionPolicy adds a sidecar container to every
// Deployment, on berth's own writes, as a service mesh's injector does. A container berth does not set is not a
// change of what berth set: berth must leave it, and write the Deployment no more once it has converged, as
// created and as applied, whatever brings the App back to the queue.
func TestAdmissionThatAddsAContainerIsNotFought(t *testing.T) {
	e := newEnv(t)
	e.injectSidecars()
	r := e.startController()
	e.createApp(app("web"))
	e.waitConverged("web")
	for _, change := range []string{"", `{"spec":{"image":"nginx:1.28"}}`} {
		if change != "" { // applied, no longer as created
			_, err := e.berth.BerthV1alpha1().Apps(e.namespace).Patch(e.ctx, "web", types.MergePatchType,
				[]byte(change), metav1.PatchOptions{})
			require.NoError(t, err)
			e.waitConverged("web")
		}
		e.triggerSync(r, "web")
		writes := e.deploymentWrites(r, "web")
		for range 3 {
			e.triggerSync(r, "web")
		}
		assert.Equal(t, writes, e.deploymentWrites(r, "web"), "no write of a Deployment that is as the App says")
		d, err := e.getDeployment("web")
		require.NoError(t, err)
		assert.Len(t, d.Spec.Template.Spec.Containers, 2, "the sidecar stays")
	}
	assert.Equal(t, plan.ReasonAsExpected,
		condition(t, e.getApp("web"), berthv1alpha1.ConditionDegraded).Reason)
}

// TestScalingThroughTheScaleSubresourceIsNotAFight: an autoscaler scales the App through its scale subresource,
// as the HorizontalPodAutoscaler does. berth follows each time, with one write each, and nothing is contested.
func TestScalingThroughTheScaleSubresourceIsNotAFight(t *testing.T) {
	e := newEnv(t)
	r := e.startController()
	e.createApp(app("web"))
	e.waitConverged("web")
	before := e.deploymentWrites(r, "web")

	apps := e.berth.BerthV1alpha1().Apps(e.namespace)
	for replicas := int32(2); replicas <= 6; replicas++ {
		// berth writes the App's status meanwhile, and the autoscaler, like the HorizontalPodAutoscaler, tries again.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			scale, err := apps.GetScale(e.ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			scale.Spec.Replicas = replicas
			_, err = apps.UpdateScale(e.ctx, "web", scale, metav1.UpdateOptions{FieldManager: "horizontal-pod-autoscaler"})
			return err
		})
		require.NoError(t, err)
		e.eventually(fmt.Sprintf("the Deployment to have %d replicas", replicas), func(context.Context) (bool, error) {
			d, err := e.getDeployment("web")
			return err == nil && *d.Spec.Replicas == replicas, err
		})
	}
	a, _ := e.waitConverged("web")
	// One apply per change, and one patch that hands berth's created fields to its Apply entry.
	assert.LessOrEqual(t, e.deploymentWrites(r, "web")-before, 5+1)
	degraded := condition(t, a, berthv1alpha1.ConditionDegraded)
	assert.NotEqual(t, plan.ReasonFieldContested, degraded.Reason)
	assert.Zero(t, e.eventsAbout(a, corev1.EventTypeWarning, "Reverted"), "a change of the App is no one's drift")
}

func findCondition(a *berthv1alpha1.App, conditionType string) *metav1.Condition {
	for i := range a.Status.Conditions {
		if a.Status.Conditions[i].Type == conditionType {
			return &a.Status.Conditions[i]
		}
	}
	return nil
}

// mirrorImages makes a MutatingAdmissionPolicy, bound to the test's namespace, rewrite the image of every
// Deployment to mirror.example.com/IMAGE, as a platform team's policy that pulls through a mirror would; it
// returns once the policy is in force.
func (e *env) mirrorImages() {
	e.t.Helper()
	e.mutateDeployments("mirror-images",
		"!object.spec.template.spec.containers[0].image.startsWith('mirror.example.com/')",
		`[JSONPatch{op: "replace", path: "/spec/template/spec/containers/0/image", `+
			`value: "mirror.example.com/" + object.spec.template.spec.containers[0].image}]`,
		func(d *appsv1.Deployment) bool {
			return d.Spec.Template.Spec.Containers[0].Image == "mirror.example.com/probe:1"
		})
}

// injectSidecars makes a MutatingAdmissionPolicy, bound to the test's namespace, add a container "sidecar" to
// every Deployment's Pods, as a service mesh's injector would; it returns once the policy is in force.
func (e *env) injectSidecars() {
	e.t.Helper()
	e.mutateDeployments("inject-sidecars",
		"!object.spec.template.spec.containers.exists(c, c.name == 'sidecar')",
		`[JSONPatch{op: "add", path: "/spec/template/spec/containers/-", `+
			`value: Object.spec.template.spec.containers{name: "sidecar", image: "sidecar:1"}}]`,
		func(d *appsv1.Deployment) bool { return len(d.Spec.Template.Spec.Containers) == 2 })
}

// mutateDeployments makes a MutatingAdmissionPolicy, bound to the test's namespace, apply the JSON patch that the
// CEL expression patch makes to every Deployment written there for which the CEL expression condition holds. It
// returns once the API server applies the policy, which inForce tells from a Deployment created in a dry run.
func (e *env) mutateDeployments(name, condition, patch string, inForce func(*appsv1.Deployment) bool) {
	e.t.Helper()
	name += "-" + e.namespace
	policies := e.kube.AdmissionregistrationV1()
	_, err := policies.MutatingAdmissionPolicies().Create(e.ctx, &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			FailurePolicy:    ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: deploymentWrites(),
			MatchConditions:  []admissionregistrationv1.MatchCondition{{Name: "not-yet", Expression: condition}},
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeJSONPatch,
				JSONPatch: &admissionregistrationv1.JSONPatch{Expression: patch},
			}},
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}, metav1.CreateOptions{})
	require.NoError(e.t, err)
	_, err = policies.MutatingAdmissionPolicyBindings().Create(e.ctx, &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: name,
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.namespace},
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(e.t, err)
	e.t.Cleanup(func() {
		_ = policies.MutatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = policies.MutatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	probe := probeDeployment("probe:1")
	e.eventually("the mutating admission policy "+name+" to be in force", func(ctx context.Context) (bool, error) {
		d, err := e.kube.AppsV1().Deployments(e.namespace).Create(ctx, probe,
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && inForce(d), nil
	})
}
