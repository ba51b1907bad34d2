package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

func TestTrimManagedFieldsKeepsOnlyBerths(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl-edit"}, {Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply},
		{Manager: "kube-controller-manager"},
	}}}
	out, err := TrimManagedFields(d)
	require.NoError(t, err)
	assert.Equal(t, []metav1.ManagedFieldsEntry{{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply}},
		out.(*appsv1.Deployment).ManagedFields)

	foreign := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "helm"}}}}
	out, err = TrimManagedFields(foreign)
	require.NoError(t, err)
	assert.Empty(t, out.(*appsv1.Deployment).ManagedFields)

	tombstone := cache.DeletedFinalStateUnknown{Key: "shop/web"}
	out, err = trimOwned(tombstone)
	require.NoError(t, err)
	assert.Equal(t, tombstone, out, "what is not an object passes through")
}

func TestTrimPodKeepsWhatStatusReads(t *testing.T) {
	deleted := metav1.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop", UID: "uid-pod", ResourceVersion: "7",
			Labels:            map[string]string{LabelInstance: "web"},
			Annotations:       map[string]string{"big": "annotation"},
			DeletionTimestamp: &deleted,
			ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			PodIP: "10.0.0.1",
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", Image: "nginx", ImageID: "sha256:abc", RestartCount: 3,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason: "CrashLoopBackOff", Message: "back-off 5m0s restarting failed container"}},
			}},
		},
	}
	out, err := trimOwned(pod)
	require.NoError(t, err)
	assert.Equal(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop", UID: "uid-pod", ResourceVersion: "7",
			Labels:            map[string]string{LabelInstance: "web"},
			DeletionTimestamp: &deleted,
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", RestartCount: 3,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			}},
		},
	}, out)
	_, _, failing := podFailure([]*corev1.Pod{out.(*corev1.Pod)}, time.Now())
	assert.False(t, failing, "a Pod being deleted is not counted")
	out.(*corev1.Pod).DeletionTimestamp = nil
	reason, _, failing := podFailure([]*corev1.Pod{out.(*corev1.Pod)}, time.Now())
	assert.True(t, failing)
	assert.Equal(t, ReasonCrashLoopBackOff, reason, "the trimmed Pod still tells why it fails")
}

// TestTrimPodKeepsTheLastExit: a crash-looping container spends most of its restarts running or just exited, not
// waiting; what tells that it still fails (its restart count and last exit) must survive the trim, and what
// changes at every restart without telling anything (the kubelet's back-off message, start times) need not.
func TestTrimPodKeepsTheLastExit(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	last := &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", Message: "out of memory",
		Signal: 9, ContainerID: "containerd://1", StartedAt: metav1.NewTime(now.Add(-time.Minute)),
		FinishedAt: metav1.NewTime(now.Add(-30 * time.Second))}
	pod := crashingPod("web-a", 6, runningSince(now.Add(-5*time.Second)), last)
	pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "nginx"}}
	pod.Status.ContainerStatuses[0].Image = "nginx"

	out, err := trimOwned(pod)
	require.NoError(t, err)
	trimmed := out.(*corev1.Pod)
	assert.Equal(t, []corev1.ContainerStatus{{
		Name: "app", RestartCount: 6,
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: "OOMKilled", FinishedAt: last.FinishedAt}},
	}}, trimmed.Status.ContainerStatuses)

	s := computeStatus(newApp(), observation{deployment: deploymentStatus(), pods: []*corev1.Pod{trimmed}},
		"cluster.local", metav1.NewTime(now))
	degraded := meta.FindStatusCondition(s.Conditions, berthv1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	assert.Equal(t, cond{metav1.ConditionTrue, ReasonCrashLoopBackOff}, cond{degraded.Status, degraded.Reason})
	assert.Equal(t, `Pod web-a: container "app" is in CrashLoopBackOff after 4+ restarts; last exit code 137, reason OOMKilled`,
		degraded.Message, "the trimmed Pod still tells how its container last ended")
}

func TestPodsAreIndexedByApp(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{LabelInstance: "web"}}}
	keys, err := indexPodByApp(pod)
	require.NoError(t, err)
	assert.Equal(t, []string{"shop/web"}, keys)

	keys, err = indexPodByApp(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}})
	require.NoError(t, err)
	assert.Empty(t, keys, "a Pod without the instance label belongs to no App")

	_, err = indexPodByApp("not a Pod")
	assert.Error(t, err)
}

func TestOwnedListOptionsSelectsBerthsObjects(t *testing.T) {
	var opts metav1.ListOptions
	OwnedListOptions(&opts)
	assert.Equal(t, "app.kubernetes.io/managed-by=berth", opts.LabelSelector)
}

func TestTrimAppDropsManagedFieldsAndKubectlsCopy(t *testing.T) {
	app := newApp()
	app.Annotations = map[string]string{lastAppliedAnnotation: `{"kind":"App",...}`, "team": "shop"}
	app.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl-client-side-apply"}, {Manager: FieldManager}}
	out, err := trimApp(app)
	require.NoError(t, err)
	trimmed := out.(*berthv1alpha1.App)
	assert.Equal(t, map[string]string{"team": "shop"}, trimmed.Annotations)
	assert.Empty(t, trimmed.ManagedFields)
}
