package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/test/framework"
)

// nextImage is a second image that runs, for rolling forward.
const nextImage = "nginxinc/nginx-unprivileged:1.28"

// quietWindow is how long after a rollback berth's writes are counted: the rollback, the App's status as the Pods
// come back, and nothing else.
const quietWindow = 2 * time.Minute

// waitRolledBack waits until the App web of namespace says it was rolled back (Degraded, RolledBack), and returns it.
func waitRolledBack(t *testing.T, namespace string) *berthv1alpha1.App {
	t.Helper()
	var app *berthv1alpha1.App
	eventually(t, "App web to be rolled back", func(ctx context.Context) error {
		var err error
		if app, err = getApp(ctx, namespace, "web"); err != nil {
			return err
		}
		return hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonRolledBack)
	})
	return app
}

// deploymentImage is the image of the Pod template of Deployment web.
func deploymentImage(t *testing.T, namespace string) string {
	t.Helper()
	return waitDeployment(t, namespace, "web").Spec.Template.Spec.Containers[0].Image
}

// TestAFailingRevisionIsRolledBack: good -> an image that cannot be pulled, with kubectl. berth puts the
// Deployment back on the good revision's template with one write; the App says RolledBack, naming the failed
// image, in its status and in one Warning Event; its spec is left as the user applied it (kubectl diff sees
// nothing), and berth then writes nothing but the App's status for two minutes. Another good image then rolls
// forward.
func TestAFailingRevisionIsRolledBack(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	apply(t, ns, appManifest("web", goodImage, 2, 0))
	waitRevision(t, ns, 1, 1)
	// A second revision first: the Deployment, created by berth, is then berth's to apply (ownership.go), and its
	// next change is one write.
	apply(t, ns, appManifest("web", nextImage, 2, 0))
	waitRevision(t, ns, 2, 2)

	broken := appManifest("web", imagePullsFailed, 2, 0)
	before := time.Now()
	apply(t, ns, broken)
	app := waitRolledBack(t, ns)
	degraded := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
	assert.Equal(t, "revision 3 ("+imagePullsFailed+") failed: ImagePullBackOff, in 1 of 1 Pods; rolled back to revision 2 ("+
		nextImage+")", degraded.Message)
	assert.Equal(t, nextImage, deploymentImage(t, ns), "the Deployment runs the good revision's template again")
	assert.Equal(t, imagePullsFailed, app.Spec.Image, "the App's spec is the user's")
	diff, err := cluster.KubectlCommand(t.Context(), "diff", "--namespace="+ns, "-f", "-")
	require.NoError(t, err)
	diff.Stdin = strings.NewReader(broken)
	out, err := diff.CombinedOutput()
	assert.NoError(t, err, "kubectl diff of the applied manifest sees no change (exit code 0): %s", out)

	app = waitRevision(t, ns, 4, 4)
	assert.Equal(t, []string{nextImage}, app.Status.Images, "revision 4 is revision 2's template, back")
	require.NoError(t, hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonRolledBack),
		"the App goes on saying it was rolled back while it asks for the failed image")

	// Quiet: the rollback, then only the status.
	time.Sleep(time.Until(before.Add(quietWindow)))
	writes, err := cluster.Writes(before, func(e framework.AuditEvent) bool {
		return e.ByBerth() && e.ObjectRef.Namespace == ns
	})
	require.NoError(t, err)
	var deploymentWrites, statusWrites int
	var others []string
	for _, w := range writes {
		switch {
		case w.ObjectRef.Resource == "deployments":
			deploymentWrites++
		case w.ObjectRef.Resource == "apps" && w.ObjectRef.Subresource == "status":
			statusWrites++
		default:
			others = append(others, w.String())
		}
	}
	t.Logf("berth's writes in the %s after the broken image was applied: %d of the Deployment, %d of the App's status",
		quietWindow, deploymentWrites, statusWrites)
	assert.Equal(t, 2, deploymentWrites, "the apply of the broken revision, and the rollback: %v", writes)
	assert.LessOrEqual(t, statusWrites, 8, "the status, as the rollout and the rollback go: %v", writes)
	assert.Empty(t, others, "no other write")
	assert.Equal(t, 1, appEventCounts(t, ns, "web")["Warning RolledBack"], "one Warning Event RolledBack")

	// Forward: an image that runs ends the rollback (revision 1's template, which comes back as revision 5).
	apply(t, ns, appManifest("web", goodImage, 2, 0))
	app = waitRevision(t, ns, 5, 5)
	assert.Equal(t, []string{goodImage}, app.Status.Images)
	assert.Equal(t, goodImage, deploymentImage(t, ns))
	eventually(t, "App web no longer degraded", func(ctx context.Context) error {
		app, err := getApp(ctx, ns, "web")
		if err != nil {
			return err
		}
		return hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, plan.ReasonAsExpected)
	})
}

// TestARevisionThatNeverBecomesReadyIsRolledBack: Pods that run and are never ready (kwok's pod-never-ready) fail
// no container; the progress deadline of the App tells, and berth then rolls back.
func TestARevisionThatNeverBecomesReadyIsRolledBack(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	deadline := "  rollout: {progressDeadlineSeconds: 10, maxUnavailable: 0}\n"
	apply(t, ns, appManifest("web", goodImage, 2, 0)+deadline)
	waitRevision(t, ns, 1, 1)

	apply(t, ns, appManifest("web", neverReadyImage, 2, 0)+deadline)
	app := waitRolledBack(t, ns)
	degraded := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
	assert.Equal(t, "revision 2 ("+neverReadyImage+") failed: not ready within the progress deadline of 10s, in 1 of 1 Pods; "+
		"rolled back to revision 1 ("+goodImage+")", degraded.Message)
	assert.Equal(t, goodImage, deploymentImage(t, ns))
	waitRevision(t, ns, 3, 3)
}

// TestRollbackTurnedOffOnlyReports: with spec.rollout.rollback.disabled, a revision that misses its deadline is
// reported, and stays: the old Pods serve, the new one runs unready.
func TestRollbackTurnedOffOnlyReports(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	rollout := "  rollout: {progressDeadlineSeconds: 10, maxUnavailable: 0, rollback: {disabled: true}}\n"
	apply(t, ns, appManifest("web", goodImage, 2, 0)+rollout)
	waitRevision(t, ns, 1, 1)

	apply(t, ns, appManifest("web", neverReadyImage, 2, 0)+rollout)
	eventually(t, "App web to miss the progress deadline of its second revision", func(ctx context.Context) error {
		app, err := getApp(ctx, ns, "web")
		if err != nil {
			return err
		}
		return hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonProgressDeadlineExceeded)
	})
	app := waitRevision(t, ns, 2, 1)
	assert.Equal(t, []string{neverReadyImage}, app.Status.Images)
	assert.Equal(t, neverReadyImage, deploymentImage(t, ns), "not rolled back")
	pods, err := appPods(t.Context(), app)
	require.NoError(t, err)
	var running, ready int
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning {
			running++
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.Ready {
				ready++
			}
		}
	}
	assert.Equal(t, 3, running, "the two Pods of revision 1 and the new one, which runs")
	assert.Equal(t, 2, ready, "revision 1's Pods still serve (maxUnavailable 0)")
}

// TestFailuresThatAreNotTheRevisionsDoNotRollBack: a quota that refuses the new revision's Pods until past the
// deadline, Pods evicted (as a node drain evicts them) within the verification window, and a revision that is
// slow but rolls out within its deadline: none is the revision's fault, and none rolls back.
func TestFailuresThatAreNotTheRevisionsDoNotRollBack(t *testing.T) {
	t.Parallel()
	t.Run("a quota refuses the new Pods", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		deadline := "  rollout: {progressDeadlineSeconds: 10, maxUnavailable: 0}\n"
		apply(t, ns, appManifest("web", goodImage, 2, 0)+deadline)
		waitRevision(t, ns, 1, 1)
		_, err := kubeClient.CoreV1().ResourceQuotas(ns).Create(t.Context(), &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "pods"},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, "the quota to count the Pods", func(ctx context.Context) error {
			q, err := kubeClient.CoreV1().ResourceQuotas(ns).Get(ctx, "pods", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if used := q.Status.Used[corev1.ResourcePods]; used.Value() != 2 {
				return fmt.Errorf("the quota counts %s Pods", used.String())
			}
			return nil
		})

		apply(t, ns, appManifest("web", nextImage, 2, 0)+deadline)
		eventually(t, "Deployment web to miss its progress deadline", func(ctx context.Context) error {
			d, err := kubeClient.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range d.Status.Conditions {
				if c.Type == "Progressing" && c.Reason == "ProgressDeadlineExceeded" {
					return nil
				}
			}
			return fmt.Errorf("conditions %+v", d.Status.Conditions)
		})
		// A sync after the deadline has seen it.
		time.Sleep(3 * time.Second)
		app, err := getApp(t.Context(), ns, "web")
		require.NoError(t, err)
		degraded := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
		require.NotNil(t, degraded)
		assert.NotEqual(t, plan.ReasonRolledBack, degraded.Reason, "%s", degraded.Message)
		assert.Contains(t, degraded.Message, "exceeded quota", "the App says why its Pods are missing")
		assert.Equal(t, nextImage, deploymentImage(t, ns), "not rolled back")
	})

	t.Run("Pods evicted within the verification window", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		apply(t, ns, appManifest("web", goodImage, 2, 0))
		waitRevision(t, ns, 1, 1)
		apply(t, ns, appManifest("web", nextImage, 2, 0))
		app := waitRevision(t, ns, 2, 2)
		pods, err := appPods(t.Context(), app)
		require.NoError(t, err)
		require.NotEmpty(t, pods)
		// As kubectl drain does: each Pod evicted, retried while the App's disruption budget refuses it.
		for _, p := range pods {
			eventually(t, "the eviction of Pod "+p.Name, func(ctx context.Context) error {
				return kubeClient.CoreV1().Pods(ns).EvictV1(ctx, &policyv1.Eviction{
					ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns}})
			})
		}
		waitAvailable(t, ns, "web", 2)
		app = waitRevision(t, ns, 2, 2)
		assert.NoError(t, hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, plan.ReasonAsExpected))
		assert.Equal(t, nextImage, deploymentImage(t, ns))
	})

	t.Run("a slow revision within its deadline", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		slow := "  rollout: {progressDeadlineSeconds: 30, minReadySeconds: 8, maxUnavailable: 0}\n"
		apply(t, ns, appManifest("web", goodImage, 2, 0)+slow)
		waitRevision(t, ns, 1, 1)
		apply(t, ns, appManifest("web", nextImage, 2, 0)+slow)
		app := waitRevision(t, ns, 2, 2)
		assert.NoError(t, hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, plan.ReasonAsExpected))
		assert.Equal(t, 0, appEventCounts(t, ns, "web")["Warning RolledBack"])
	})
}

// crashLaterImage runs and is ready for 15 s, then crash-loops (kwok's pod-crash-later): a revision that goes live
// and then fails.
const crashLaterImage = "crash-later.invalid/web:1"

// TestARevisionThatFailsAfterGoingLive: a revision that rolled out and then crash-loops is rolled back within its
// verification window, and only reported after it.
func TestARevisionThatFailsAfterGoingLive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		verifySeconds int
		rolledBack    bool
	}{
		{"within the verification window, rolled back", 120, true},
		{"past the verification window, reported", 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			rollout := fmt.Sprintf("  rollout: {rollback: {verifySeconds: %d}}\n", tc.verifySeconds)
			apply(t, ns, appManifest("web", goodImage, 2, 0)+rollout)
			waitRevision(t, ns, 1, 1)
			apply(t, ns, appManifest("web", crashLaterImage, 2, 0)+rollout)
			waitRevision(t, ns, 2, 2)

			if tc.rolledBack {
				app := waitRolledBack(t, ns)
				degraded := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
				assert.Contains(t, degraded.Message, "revision 2 ("+crashLaterImage+") failed after it rolled out: "+
					"CrashLoopBackOff, exit code 1, in ")
				assert.Contains(t, degraded.Message, "; rolled back to revision 1 ("+goodImage+")")
				assert.Equal(t, goodImage, deploymentImage(t, ns))
				waitRevision(t, ns, 3, 3)
				return
			}
			eventually(t, "a Pod of App web restarted 3 times", func(ctx context.Context) error {
				app, err := getApp(ctx, ns, "web")
				if err != nil {
					return err
				}
				pods, err := appPods(ctx, app)
				if err != nil {
					return err
				}
				for _, p := range pods {
					for _, c := range p.Status.ContainerStatuses {
						if c.RestartCount >= 3 {
							return nil
						}
					}
				}
				return fmt.Errorf("no Pod restarted 3 times yet")
			})
			app, err := getApp(t.Context(), ns, "web")
			require.NoError(t, err)
			assert.NoError(t, hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonCrashLoopBackOff))
			assert.Equal(t, crashLaterImage, deploymentImage(t, ns), "not rolled back")
		})
	}
}
