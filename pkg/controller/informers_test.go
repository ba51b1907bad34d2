package controller

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthfake "github.com/berthdev/berth/pkg/generated/clientset/versioned/fake"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
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
			Labels:            map[string]string{plan.LabelInstance: "web"},
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
			Labels:            map[string]string{plan.LabelInstance: "web"},
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
	_, _, failing := plan.PodFailure([]*corev1.Pod{out.(*corev1.Pod)}, time.Now())
	assert.False(t, failing, "a Pod being deleted is not counted")
	out.(*corev1.Pod).DeletionTimestamp = nil
	reason, _, failing := plan.PodFailure([]*corev1.Pod{out.(*corev1.Pod)}, time.Now())
	assert.True(t, failing)
	assert.Equal(t, plan.ReasonCrashLoopBackOff, reason, "the trimmed Pod still tells why it fails")
}

// TestTrimPodKeepsTheMessageOfAConfigErrorOnly: a config error's message names the Secret or ConfigMap the App
// waits for, and the App's status repeats it; other waiting messages change at every retry and are dropped.
func TestTrimPodKeepsTheMessageOfAConfigErrorOnly(t *testing.T) {
	pod := plantest.WaitingPod("web-a", "CreateContainerConfigError")
	pod.Status.ContainerStatuses[0].State.Waiting.Message = `couldn't find key password in Secret shop/db`
	backingOff := plantest.WaitingPod("web-b", "ImagePullBackOff")
	backingOff.Status.ContainerStatuses[0].State.Waiting.Message = `Back-off pulling image "nginx:1.27"`

	out, err := trimOwned(pod)
	require.NoError(t, err)
	assert.Equal(t, `couldn't find key password in Secret shop/db`,
		out.(*corev1.Pod).Status.ContainerStatuses[0].State.Waiting.Message)
	out, err = trimOwned(backingOff)
	require.NoError(t, err)
	assert.Empty(t, out.(*corev1.Pod).Status.ContainerStatuses[0].State.Waiting.Message)
}

// TestTrimPodKeepsTheLastExit: a crash-looping container spends most of its restarts running or just exited, not
// waiting; what tells that it still fails (its restart count and last exit) must survive the trim, and what
// changes at every restart without telling anything (the kubelet's back-off message, start times) need not.
func TestTrimPodKeepsTheLastExit(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	last := &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", Message: "out of memory",
		Signal: 9, ContainerID: "containerd://1", StartedAt: metav1.NewTime(now.Add(-time.Minute)),
		FinishedAt: metav1.NewTime(now.Add(-30 * time.Second))}
	pod := plantest.CrashingPod("web-a", 6, plantest.RunningSince(now.Add(-5*time.Second)), last)
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

	s := plan.Status(plantest.NewApp(), plan.Observed{Deployment: plantest.DeploymentStatus(), Pods: []*corev1.Pod{trimmed}},
		"cluster.local", metav1.NewTime(now))
	degraded := meta.FindStatusCondition(s.Conditions, berthv1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	assert.Equal(t, metav1.ConditionTrue, degraded.Status)
	assert.Equal(t, plan.ReasonCrashLoopBackOff, degraded.Reason)
	assert.Equal(t, `Pod web-a: container "app" is in CrashLoopBackOff after 4+ restarts; last exit code 137, reason OOMKilled`,
		degraded.Message, "the trimmed Pod still tells how its container last ended")
}

func TestPodsAreIndexedByApp(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Labels: map[string]string{plan.LabelInstance: "web"}}}
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
	app := plantest.NewApp()
	app.Annotations = map[string]string{lastAppliedAnnotation: `{"kind":"App",...}`, "team": "shop"}
	app.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl-client-side-apply"}, {Manager: FieldManager}}
	out, err := trimApp(app)
	require.NoError(t, err)
	trimmed := out.(*berthv1alpha1.App)
	assert.Equal(t, map[string]string{"team": "shop"}, trimmed.Annotations)
	assert.Empty(t, trimmed.ManagedFields)
}

// TestInformersCacheOnlyWhatBerthReads starts the informers of NewInformers on a namespace that holds berth's
// objects and others': their caches hold berth's Deployment, Service and Pod only, and of those, and of the App,
// only what berth reads.
func TestInformersCacheOnlyWhatBerthReads(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	others := []metav1.ManagedFieldsEntry{{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate}}
	berths := metav1.ObjectMeta{Namespace: "shop", Name: "web", Labels: plan.ObjectLabels(plantest.NewApp()),
		ManagedFields: append([]metav1.ManagedFieldsEntry{{Manager: FieldManager,
			Operation: metav1.ManagedFieldsOperationApply}}, others...)}
	theirs := metav1.ObjectMeta{Namespace: "shop", Name: "theirs", Labels: map[string]string{"team": "shop"}}
	app := plantest.NewApp()
	app.ManagedFields = others
	app.Annotations = map[string]string{lastAppliedAnnotation: `{"kind":"App"}`}
	kubeClient := kubefake.NewClientset(
		&appsv1.Deployment{ObjectMeta: berths}, &appsv1.Deployment{ObjectMeta: theirs},
		&corev1.Service{ObjectMeta: berths}, &corev1.Service{ObjectMeta: theirs},
		&corev1.Pod{ObjectMeta: berths, Spec: corev1.PodSpec{NodeName: "node-1"}}, &corev1.Pod{ObjectMeta: theirs},
		&policyv1.PodDisruptionBudget{ObjectMeta: berths}, &policyv1.PodDisruptionBudget{ObjectMeta: theirs},
		&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: berths},
		&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: theirs})
	informers := NewInformers(kubeClient, berthfake.NewSimpleClientset(app), InformerOptions{})
	set := informers.sets()[0]
	caches := maps.Clone(set.owned)
	caches["pods"] = set.pods.Informer()
	apps := set.apps.Informer()
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		informers.Shutdown()
	}()
	informers.Start(ctx)
	synced := []cache.InformerSynced{apps.HasSynced}
	for _, informer := range caches {
		synced = append(synced, informer.HasSynced)
	}
	require.True(t, cache.WaitForCacheSync(ctx.Done(), synced...))

	for kind, informer := range caches {
		assert.Equal(t, []string{"shop/web"}, informer.GetStore().ListKeys(), "%s: berth's only", kind)
		obj, _, err := informer.GetStore().GetByKey("shop/web")
		require.NoError(t, err)
		object, err := meta.Accessor(obj)
		require.NoError(t, err)
		if kind == "pods" {
			assert.Empty(t, obj.(*corev1.Pod).Spec.NodeName, "a Pod is trimmed to what status reads")
			assert.Empty(t, object.GetManagedFields(), "a Pod keeps no managedFields")
			continue
		}
		assert.Equal(t, berths.ManagedFields[:1], object.GetManagedFields(), "%s: berth's managedFields only", kind)
	}
	cached, _, err := apps.GetStore().GetByKey("shop/web")
	require.NoError(t, err)
	assert.Empty(t, cached.(*berthv1alpha1.App).ManagedFields, "an App keeps no managedFields")
	assert.NotContains(t, cached.(*berthv1alpha1.App).Annotations, lastAppliedAnnotation)
}
