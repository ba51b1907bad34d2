package plan

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

func TestRollbackCandidate(t *testing.T) {
	now := time.Unix(10_000, 0)
	withStatus := func(available, previous int64, since time.Time) func(*berthv1alpha1.App) {
		return func(a *berthv1alpha1.App) {
			a.Status.AvailableRevision, a.Status.PreviousAvailableRevision = available, previous
			a.Status.AvailableSince = ptr.To(metav1.NewTime(since))
		}
	}
	off := func(a *berthv1alpha1.App) {
		a.Spec.Rollout = &berthv1alpha1.Rollout{Rollback: &berthv1alpha1.Rollback{Disabled: true}}
	}
	window := func(seconds int32) func(*berthv1alpha1.App) {
		return func(a *berthv1alpha1.App) {
			a.Spec.Rollout = &berthv1alpha1.Rollout{Rollback: &berthv1alpha1.Rollback{VerifySeconds: &seconds}}
		}
	}
	tests := []struct {
		name       string
		app        *berthv1alpha1.App
		deployment *appsv1.Deployment
		want       RollbackTarget
		wantOK     bool
	}{
		{"a new revision rolling out goes back to the available one",
			plantest.NewApp(withStatus(1, 0, now.Add(-time.Hour))), atRevision("2", "web:2", false),
			RollbackTarget{Failed: 2, To: 1}, true},
		{"a new App's first revision has nothing to go back to",
			plantest.NewApp(withStatus(0, 0, now)), atRevision("1", "web:1", false), RollbackTarget{}, false},
		{"rollback turned off", plantest.NewApp(withStatus(1, 0, now.Add(-time.Hour)), off),
			atRevision("2", "web:2", false), RollbackTarget{}, false},
		{"the available revision, within its window, goes back to the one before",
			plantest.NewApp(withStatus(2, 1, now.Add(-4*time.Minute))), atRevision("2", "web:2", true),
			RollbackTarget{Failed: 2, To: 1, Live: true}, true},
		{"the available revision, past its window, is not rolled back",
			plantest.NewApp(withStatus(2, 1, now.Add(-6*time.Minute))), atRevision("2", "web:2", true),
			RollbackTarget{}, false},
		{"a window of the App's own", plantest.NewApp(withStatus(2, 1, now.Add(-30*time.Minute)), window(3600)),
			atRevision("2", "web:2", true), RollbackTarget{Failed: 2, To: 1, Live: true}, true},
		{"a window of 0: only revisions that never rolled out",
			plantest.NewApp(withStatus(2, 1, now), window(0)), atRevision("2", "web:2", true),
			RollbackTarget{}, false},
		{"a template the deployment controller has not seen yet",
			plantest.NewApp(withStatus(1, 0, now.Add(-time.Hour))),
			plantest.DeploymentStatus(func(d *appsv1.Deployment) {
				d.Generation, d.Status.ObservedGeneration = 3, 2
				d.Annotations = map[string]string{AnnotationDeploymentRevision: "2"}
			}), RollbackTarget{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RollbackCandidate(tt.app, tt.deployment, now)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestRevisionFailure covers each way a revision's Pods can fail, and each failure that is not the revision's
// own and must not roll it back.
func TestRevisionFailure(t *testing.T) {
	now := time.Unix(10_000, 0)
	rollingOut := atRevision("2", "web:2", false)
	pastDeadline := plantest.DeploymentStatus(func(d *appsv1.Deployment) {
		d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing,
			Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}
	})
	quota := plantest.DeploymentStatus(func(d *appsv1.Deployment) {
		d.Status.Conditions = []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"},
			{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
				Message: `pods "web-2" is forbidden: exceeded quota: pods`},
		}
	})
	pending := func(name string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
	}
	runningNotReady := func(name string) *corev1.Pod {
		p := pending(name, corev1.PodRunning)
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: plantest.RunningSince(now.Add(-time.Hour))}}
		return p
	}
	crashing := func(name string, restarts int32) *corev1.Pod {
		exit := now.Add(-time.Second)
		return plantest.CrashingPod(name, restarts, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CrashLoopBackOff"}}, plantest.ExitedAt(1, "Error", exit))
	}
	oomKilled := plantest.CrashingPod("web-b", 3, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
		Reason: "CrashLoopBackOff"}}, plantest.ExitedAt(137, "OOMKilled", now.Add(-time.Second)))
	// Evicted while its image was being pulled: the kubelet leaves the container's last waiting reason. The Pod
	// has ended, and its replacement (web-f) waits for a node.
	evicted := plantest.WaitingPod("web-e", "ImagePullBackOff")
	evicted.Status.Phase, evicted.Status.Reason = corev1.PodFailed, "Evicted"
	configError := plantest.WaitingPod("web-c", "CreateContainerConfigError")
	configError.Status.ContainerStatuses[0].State.Waiting.Message = `secret "db" not found`
	tests := []struct {
		name       string
		deployment *appsv1.Deployment
		pods       []*corev1.Pod
		want       string
		wantFailed bool
	}{
		{"an image that cannot be pulled", rollingOut,
			[]*corev1.Pod{plantest.WaitingPod("web-a", "ImagePullBackOff")}, "ImagePullBackOff, in 1 of 1 Pods", true},
		{"a missing Secret", rollingOut, []*corev1.Pod{configError},
			`CreateContainerConfigError: secret "db" not found, in 1 of 1 Pods`, true},
		{"a crash loop, restarted twice, in 2 of 3 Pods", rollingOut,
			[]*corev1.Pod{crashing("web-a", 2), crashing("web-b", 5), runningNotReady("web-c")},
			"CrashLoopBackOff, exit code 1, in 2 of 3 Pods", true},
		{"out of memory", rollingOut, []*corev1.Pod{oomKilled}, "CrashLoopBackOff, exit code 137 (OOMKilled), in 1 of 1 Pods", true},
		{"a container restarted once is given another try", rollingOut, []*corev1.Pod{crashing("web-a", 1)}, "", false},
		{"never ready within the progress deadline", pastDeadline,
			[]*corev1.Pod{runningNotReady("web-a"), runningNotReady("web-b")},
			"not ready within the progress deadline of 600s, in 2 of 2 Pods", true},
		{"not ready, but the deadline has not passed: slow is not failed", rollingOut,
			[]*corev1.Pod{runningNotReady("web-a")}, "", false},
		{"a quota refuses the revision's Pods", quota, []*corev1.Pod{runningNotReady("web-a")}, "", false},
		{"Pods waiting for a node past the deadline", pastDeadline,
			[]*corev1.Pod{pending("web-a", corev1.PodPending)}, "", false},
		{"a Pod evicted from a drained node", rollingOut, []*corev1.Pod{evicted, pending("web-f", corev1.PodPending)},
			"", false},
		{"an ended Pod is not among those counted", rollingOut,
			[]*corev1.Pod{evicted, plantest.WaitingPod("web-g", "ImagePullBackOff")}, "ImagePullBackOff, in 1 of 1 Pods", true},
		{"a Pod being deleted", rollingOut, []*corev1.Pod{func() *corev1.Pod {
			p := plantest.WaitingPod("web-a", "ImagePullBackOff")
			p.DeletionTimestamp = ptr.To(metav1.NewTime(now))
			return p
		}()}, "", false},
		{"no Pods", pastDeadline, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, failed := RevisionFailure(tt.deployment, tt.pods, now)
			assert.Equal(t, tt.wantFailed, failed)
			assert.Equal(t, tt.want, got)
			if tt.wantFailed {
				assert.True(t, MayHaveFailed(tt.deployment, tt.pods, now), "MayHaveFailed must not miss a failure")
			}
		})
	}
	t.Run("an ended Pod costs no list of ReplicaSets", func(t *testing.T) {
		assert.False(t, MayHaveFailed(rollingOut, []*corev1.Pod{evicted}, now))
	})
}

// TestRollBackIsKeptWhileTheAppAsksForTheFailedTemplate: the Deployment that RollBack makes carries the earlier
// template and the record of the rollback; the same App then reads it back as rolled back (and the sync applies
// the same Deployment again), and a change of the App's template ends it.
func TestRollBackIsKeptWhileTheAppAsksForTheFailedTemplate(t *testing.T) {
	app := plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Image = "web:2" })
	good := Deployment(plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Image = "web:1" }))
	var goodTemplate corev1.PodTemplateSpec
	require.NoError(t, toTyped(good.Spec.Template, &goodTemplate))
	goodTemplate.Labels[LabelPodTemplateHash] = "5d8f9c"

	target := RollbackTarget{Failed: 2, To: 1}
	message := RollbackMessage(target, atRevision("2", "web:2", false), goodTemplate, "ImagePullBackOff, in 1 of 1 Pods")
	assert.Equal(t, "revision 2 (web:2) failed: ImagePullBackOff, in 1 of 1 Pods; rolled back to revision 1 (web:1)", message)
	rolledBack, err := RollBack(Deployment(app), goodTemplate, message)
	require.NoError(t, err)
	assert.Equal(t, "web:1", *rolledBack.Spec.Template.Spec.Containers[0].Image)
	assert.NotContains(t, rolledBack.Spec.Template.Labels, LabelPodTemplateHash, "the ReplicaSet's label is not the template's")
	assert.Equal(t, message, rolledBack.Annotations[AnnotationRolledBack])
	assert.Equal(t, int32(3), *rolledBack.Spec.Replicas, "all but the template is as the App says")

	// The Deployment as the API server then holds it.
	var live appsv1.Deployment
	require.NoError(t, toTyped(rolledBack, &live))
	got, ok, err := RolledBack(Deployment(app), &live)
	require.NoError(t, err)
	assert.True(t, ok, "the App still asks for the template that failed")
	assert.Equal(t, message, got)
	again, err := RollBack(Deployment(app), live.Spec.Template, got)
	require.NoError(t, err)
	assert.Equal(t, rolledBack, again, "kept, the rollback is the same Deployment: no write")

	changed := plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Image = "web:3" })
	_, ok, err = RolledBack(Deployment(changed), &live)
	require.NoError(t, err)
	assert.False(t, ok, "a new template ends the rollback")
	scaled := plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Image = "web:2"; a.Spec.Replicas = ptr.To[int32](5) })
	_, ok, err = RolledBack(Deployment(scaled), &live)
	require.NoError(t, err)
	assert.True(t, ok, "scaling the App does not try the failed template again")
}
