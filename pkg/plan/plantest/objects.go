// Package plantest builds the objects that the unit tests of berth's plan and controller packages start from: an
// App as the API server hands it over, its Deployment with a status, and its Pods as a kubelet reports them.
package plantest

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// CrashLoopWindow is how long after a container's last exit the kubelet still backs off its restarts (see
// plan.CrashLoopWindow); the tests say it in their own words, so that a change of the constant is seen.
const CrashLoopWindow = 10 * time.Minute

// podLabels are the labels of the Pods of NewApp's App, as berth's Deployment gives them.
func podLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "web",
		"app.kubernetes.io/instance":   "web",
		"app.kubernetes.io/managed-by": "berth",
	}
}

// NewApp is an App as the API server would hand it over: named web in namespace shop, with a UID and generation.
func NewApp(mutate ...func(*berthv1alpha1.App)) *berthv1alpha1.App {
	app := &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid-web", Generation: 1},
		Spec:       berthv1alpha1.AppSpec{Image: "nginx:1.27", Replicas: ptr.To[int32](3)},
	}
	for _, m := range mutate {
		m(app)
	}
	return app
}

// WithPort gives the App a port, and so a Service.
func WithPort(port int32) func(*berthv1alpha1.App) {
	return func(a *berthv1alpha1.App) { a.Spec.Port = ptr.To(port) }
}

// DeploymentStatus is a Deployment of the App's name with the given status; spec.replicas is 3, as in NewApp.
func DeploymentStatus(mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 2, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, UpdatedReplicas: 3,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
			},
		},
	}
	for _, m := range mutate {
		m(d)
	}
	return d
}

// WaitingPod is a Pod of the App whose container "app" waits for the given reason.
func WaitingPod(name, reason string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: podLabels()},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
		}}},
	}
}

// CrashingPod is a Pod of the App whose container "app" the kubelet reports in state, with restarts restarts and
// its last exit in lastState (nil before the first exit): how a kubelet shows a crash loop at one moment.
func CrashingPod(name string, restarts int32, state corev1.ContainerState, last *corev1.ContainerStateTerminated) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: podLabels()},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", RestartCount: restarts, State: state,
		}}},
	}
	if last != nil {
		pod.Status.ContainerStatuses[0].LastTerminationState.Terminated = last
	}
	return pod
}

// ExitedAt is a container's end as the kubelet reports it.
func ExitedAt(code int32, reason string, at time.Time) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: metav1.NewTime(at.Add(-time.Second)),
		FinishedAt: metav1.NewTime(at)}
}

// RunningSince is the state of a container that has run since since.
func RunningSince(since time.Time) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(since)}}
}
