package controller

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// deploymentStatus is a Deployment of the App's name with the given status; spec.replicas is 3, as in newApp.
func deploymentStatus(mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
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

func waitingPod(name, reason string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: objectLabels(newApp())},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
		}}},
	}
}

// cond is the part of a condition that computeStatus decides.
type cond struct {
	status metav1.ConditionStatus
	reason string
}

func TestComputeStatus(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	tests := []struct {
		name                             string
		app                              *berthv1alpha1.App
		obs                              observation
		wantAvailable, wantProgressing   cond
		wantDegraded                     cond
		wantReady, wantURL               string
		wantDegradedMessage, wantMessage string
	}{{
		name:            "no Deployment yet",
		app:             newApp(),
		obs:             observation{},
		wantAvailable:   cond{metav1.ConditionFalse, ReasonDeploymentPending},
		wantProgressing: cond{metav1.ConditionTrue, ReasonCreating},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "0/3",
	}, {
		name:            "rolled out and available, with a URL",
		app:             newApp(withPort(8080)),
		obs:             observation{deployment: deploymentStatus()},
		wantAvailable:   cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing: cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "3/3",
		wantURL:         "http://web.shop.svc.cluster.local:8080",
	}, {
		name: "Deployment has not reported availability yet",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(func(d *appsv1.Deployment) {
			d.Status = appsv1.DeploymentStatus{}
		})},
		wantAvailable:   cond{metav1.ConditionUnknown, ReasonDeploymentPending},
		wantProgressing: cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "0/3",
	}, {
		name: "rolling out: the Deployment controller has not seen the new spec",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(func(d *appsv1.Deployment) {
			d.Generation = 3
		})},
		wantAvailable:   cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing: cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "3/3",
	}, {
		name: "rolling out: old Pods still there",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(func(d *appsv1.Deployment) {
			d.Status.Replicas, d.Status.UpdatedReplicas = 4, 1
		})},
		wantAvailable:   cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing: cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "3/3",
	}, {
		name: "unavailable",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(func(d *appsv1.Deployment) {
			d.Status.ReadyReplicas, d.Status.AvailableReplicas = 0, 0
			d.Status.Conditions[0].Status = corev1.ConditionFalse
		})},
		wantAvailable:   cond{metav1.ConditionFalse, ReasonMinimumReplicasUnavailable},
		wantProgressing: cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "0/3",
	}, {
		name: "progress deadline exceeded",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(func(d *appsv1.Deployment) {
			d.Status.Conditions[1] = appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing,
				Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}
		})},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonProgressDeadlineExceeded},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonProgressDeadlineExceeded},
		wantReady:           "3/3",
		wantDegradedMessage: "the rollout made no progress within 600s",
	}, {
		name: "a crash-looping Pod is named",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(), pods: []*corev1.Pod{
			waitingPod("web-b", "CrashLoopBackOff"), waitingPod("web-a", "ContainerCreating"),
		}},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonCrashLoopBackOff},
		wantReady:           "3/3",
		wantDegradedMessage: `Pod web-b: container "app" is in CrashLoopBackOff`,
	}, {
		name: "ErrImagePull and ImagePullBackOff are one reason; the first Pod by name is named",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(), pods: []*corev1.Pod{
			waitingPod("web-c", "ImagePullBackOff"), waitingPod("web-b", "ErrImagePull"),
		}},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonImagePullBackOff},
		wantReady:           "3/3",
		wantDegradedMessage: `Pod web-b: container "app" is in ImagePullBackOff (2 Pods failing)`,
	}, {
		name: "a terminating failing Pod does not count",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(), pods: []*corev1.Pod{func() *corev1.Pod {
			p := waitingPod("web-a", "CrashLoopBackOff")
			p.DeletionTimestamp = &now
			return p
		}()}},
		wantAvailable:   cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing: cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "3/3",
	}, {
		name:                "a foreign object in the way",
		app:                 newApp(),
		obs:                 observation{conflict: `Deployment "web"`},
		wantAvailable:       cond{metav1.ConditionFalse, ReasonResourceConflict},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonResourceConflict},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonResourceConflict},
		wantReady:           "0/3",
		wantDegradedMessage: `Deployment "web" exists and is not controlled by this App; berth will not modify it. Delete or rename it, or rename the App.`,
	}, {
		name:                "the API server refused to create the Deployment",
		app:                 newApp(),
		obs:                 observation{refused: &refusal{reason: ReasonQuotaExceeded, message: "exceeded quota"}},
		wantAvailable:       cond{metav1.ConditionFalse, ReasonQuotaExceeded},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonQuotaExceeded},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonQuotaExceeded},
		wantReady:           "0/3",
		wantDegradedMessage: "exceeded quota",
	}, {
		name: "the API server refused a change: the running Deployment is still described",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(),
			refused: &refusal{reason: ReasonRejected, message: `the API server refused to change Deployment "web": bad env`}},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonRejected},
		wantReady:           "3/3",
		wantDegradedMessage: `the API server refused to change Deployment "web": bad env`,
	}, {
		name: "Pods cannot be created",
		app:  newApp(),
		obs: observation{deployment: deploymentStatus(func(d *appsv1.Deployment) {
			d.Status.ReadyReplicas, d.Status.AvailableReplicas = 0, 0
			d.Status.Conditions = append(d.Status.Conditions, appsv1.DeploymentCondition{
				Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
				Message: `pods "web-1" is forbidden: exceeded quota: q`,
			})
		})},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:        cond{metav1.ConditionTrue, "FailedCreate"},
		wantReady:           "0/3",
		wantDegradedMessage: `pods "web-1" is forbidden: exceeded quota: q`,
	}, {
		name:                "an object of a deleted App of the same name",
		app:                 newApp(),
		obs:                 observation{waitingFor: `Deployment "web"`},
		wantAvailable:       cond{metav1.ConditionFalse, ReasonWaitingForGarbageCollection},
		wantProgressing:     cond{metav1.ConditionTrue, ReasonWaitingForGarbageCollection},
		wantDegraded:        cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:           "0/3",
		wantDegradedMessage: "no failing Pods",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := computeStatus(tt.app, tt.obs, "cluster.local", now)
			assert.Equal(t, int64(1), s.ObservedGeneration)
			assert.Equal(t, tt.wantReady, s.Ready)
			assert.Equal(t, tt.wantURL, s.URL)
			assert.Equal(t, "app.kubernetes.io/instance=web,app.kubernetes.io/managed-by=berth", s.Selector)
			require.Len(t, s.Conditions, 3)
			for conditionType, want := range map[string]cond{
				berthv1alpha1.ConditionAvailable:   tt.wantAvailable,
				berthv1alpha1.ConditionProgressing: tt.wantProgressing,
				berthv1alpha1.ConditionDegraded:    tt.wantDegraded,
			} {
				c := meta.FindStatusCondition(s.Conditions, conditionType)
				require.NotNil(t, c, conditionType)
				assert.Equal(t, want, cond{c.Status, c.Reason}, conditionType)
				assert.Equal(t, int64(1), c.ObservedGeneration, conditionType)
				assert.NotEmpty(t, c.Message, conditionType)
			}
			if tt.wantDegradedMessage != "" {
				assert.Equal(t, tt.wantDegradedMessage,
					meta.FindStatusCondition(s.Conditions, berthv1alpha1.ConditionDegraded).Message)
			}
		})
	}
}

func TestComputeStatusCopiesDeploymentCounts(t *testing.T) {
	d := deploymentStatus(func(d *appsv1.Deployment) {
		d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.UpdatedReplicas = 4, 3, 2, 1
	})
	s := computeStatus(newApp(), observation{deployment: d}, "cluster.local", metav1.Now())
	assert.Equal(t, []int32{4, 3, 2, 1}, []int32{s.Replicas, s.ReadyReplicas, s.AvailableReplicas, s.UpdatedReplicas})
	assert.Equal(t, "3/3", s.Ready)
}

func TestComputeStatusKeepsTransitionTimeUntilStatusChanges(t *testing.T) {
	first := metav1.NewTime(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	later := metav1.NewTime(first.Add(time.Hour))
	app := newApp()
	app.Status = computeStatus(app, observation{deployment: deploymentStatus()}, "cluster.local", first)

	// Same observation an hour later: nothing changes, so the status is identical and no write is needed.
	again := computeStatus(app, observation{deployment: deploymentStatus()}, "cluster.local", later)
	assert.Equal(t, app.Status, again)

	// A crash loop flips Degraded: only that condition gets the new time.
	app.Status = again
	degraded := computeStatus(app, observation{
		deployment: deploymentStatus(),
		pods:       []*corev1.Pod{waitingPod("web-a", "CrashLoopBackOff")},
	}, "cluster.local", later)
	assert.Equal(t, later, meta.FindStatusCondition(degraded.Conditions, berthv1alpha1.ConditionDegraded).LastTransitionTime)
	assert.Equal(t, first, meta.FindStatusCondition(degraded.Conditions, berthv1alpha1.ConditionAvailable).LastTransitionTime)
}

func TestComputeStatusClusterDomain(t *testing.T) {
	s := computeStatus(newApp(withPort(80)), observation{}, "example.internal", metav1.Now())
	assert.Equal(t, "http://web.shop.svc.example.internal:80", s.URL)
}

func TestComputeStatusDoesNotModifyTheApp(t *testing.T) {
	app := newApp()
	app.Status.Conditions = []metav1.Condition{{Type: berthv1alpha1.ConditionDegraded, Status: metav1.ConditionTrue,
		Reason: ReasonCrashLoopBackOff}}
	before := app.DeepCopy()
	computeStatus(app, observation{deployment: deploymentStatus()}, "cluster.local", metav1.Now())
	assert.Equal(t, before, app)
}

// TestConditionMessage: a message from others is stored whole when the API server takes it, and otherwise cut to
// its limit at a character boundary.
func TestConditionMessage(t *testing.T) {
	long := strings.Repeat("é", maxConditionMessage) // two bytes each: a cut at a byte count may fall inside one
	tests := []struct {
		name, message string
		wantCut       bool
	}{
		{"short", "refused", false},
		{"at the limit", strings.Repeat("x", maxConditionMessage), false},
		{"one byte over", strings.Repeat("x", maxConditionMessage+1), true},
		{"two-byte characters", long, true},
		{"invalid UTF-8", "a\xffb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := conditionMessage(tt.message)
			assert.LessOrEqual(t, len(got), maxConditionMessage)
			assert.True(t, utf8.ValidString(got))
			assert.Equal(t, tt.wantCut, strings.HasSuffix(got, "(cut)"))
			if !tt.wantCut && utf8.ValidString(tt.message) {
				assert.Equal(t, tt.message, got)
			}
		})
	}
}
