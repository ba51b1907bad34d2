package plan

import (
	"maps"
	"math/bits"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// cond is the part of a condition that Status decides.
type cond struct {
	status metav1.ConditionStatus
	reason string
}

func TestComputeStatus(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	tests := []struct {
		name                             string
		app                              *berthv1alpha1.App
		obs                              Observed
		wantAvailable, wantProgressing   cond
		wantDegraded                     cond
		wantReady, wantURL               string
		wantDegradedMessage, wantMessage string
	}{{
		name:            "no Deployment yet",
		app:             plantest.NewApp(),
		obs:             Observed{},
		wantAvailable:   cond{metav1.ConditionFalse, ReasonDeploymentPending},
		wantProgressing: cond{metav1.ConditionTrue, ReasonCreating},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "0/3",
	}, {
		name:            "rolled out and available, with a URL",
		app:             plantest.NewApp(plantest.WithPort(8080)),
		obs:             Observed{Deployment: plantest.DeploymentStatus()},
		wantAvailable:   cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing: cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "3/3",
		wantURL:         "http://web.shop.svc.cluster.local:8080",
	}, {
		name: "Deployment has not reported availability yet",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(func(d *appsv1.Deployment) {
			d.Status = appsv1.DeploymentStatus{}
		})},
		wantAvailable:   cond{metav1.ConditionUnknown, ReasonDeploymentPending},
		wantProgressing: cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "0/3",
	}, {
		name: "rolling out: the Deployment controller has not seen the new spec",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(func(d *appsv1.Deployment) {
			d.Generation = 3
		})},
		wantAvailable:   cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing: cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "3/3",
	}, {
		name: "rolling out: old Pods still there",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(func(d *appsv1.Deployment) {
			d.Status.Replicas, d.Status.UpdatedReplicas = 4, 1
		})},
		wantAvailable:   cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing: cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "3/3",
	}, {
		name: "unavailable",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(func(d *appsv1.Deployment) {
			d.Status.ReadyReplicas, d.Status.AvailableReplicas = 0, 0
			d.Status.Conditions[0].Status = corev1.ConditionFalse
		})},
		wantAvailable:   cond{metav1.ConditionFalse, ReasonMinimumReplicasUnavailable},
		wantProgressing: cond{metav1.ConditionTrue, ReasonRollingOut},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "0/3",
	}, {
		name: "progress deadline exceeded",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(func(d *appsv1.Deployment) {
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
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(), Pods: []*corev1.Pod{
			plantest.WaitingPod("web-b", "CrashLoopBackOff"), plantest.WaitingPod("web-a", "ContainerCreating"),
		}},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonCrashLoopBackOff},
		wantReady:           "3/3",
		wantDegradedMessage: `Pod web-b: container "app" is in CrashLoopBackOff`,
	}, {
		name: "ErrImagePull and ImagePullBackOff are one reason; the first Pod by name is named",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(), Pods: []*corev1.Pod{
			plantest.WaitingPod("web-c", "ImagePullBackOff"), plantest.WaitingPod("web-b", "ErrImagePull"),
		}},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonImagePullBackOff},
		wantReady:           "3/3",
		wantDegradedMessage: `Pod web-b: container "app" is in ImagePullBackOff (2 Pods failing)`,
	}, {
		name: "a missing Secret is named in the kubelet's words; a back-off's message is not kept",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(), Pods: []*corev1.Pod{func() *corev1.Pod {
			p := plantest.WaitingPod("web-a", "CreateContainerConfigError")
			p.Status.ContainerStatuses[0].State.Waiting.Message = `secret "db" not found`
			return p
		}(), func() *corev1.Pod {
			p := plantest.WaitingPod("web-b", "ImagePullBackOff")
			p.Status.ContainerStatuses[0].State.Waiting.Message = `Back-off pulling image "nginx:1.27"`
			return p
		}()}},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonCreateContainerConfigError},
		wantReady:           "3/3",
		wantDegradedMessage: `Pod web-a: container "app" is in CreateContainerConfigError: secret "db" not found (2 Pods failing)`,
	}, {
		name: "a terminating failing Pod does not count",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(), Pods: []*corev1.Pod{func() *corev1.Pod {
			p := plantest.WaitingPod("web-a", "CrashLoopBackOff")
			p.DeletionTimestamp = &now
			return p
		}()}},
		wantAvailable:   cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing: cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:    cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:       "3/3",
	}, {
		name:                "a foreign object in the way",
		app:                 plantest.NewApp(),
		obs:                 Observed{Conflict: `Deployment "web"`},
		wantAvailable:       cond{metav1.ConditionFalse, ReasonResourceConflict},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonResourceConflict},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonResourceConflict},
		wantReady:           "0/3",
		wantDegradedMessage: `Deployment "web" exists and is not controlled by this App; berth will not modify it. Delete or rename it, or rename the App.`,
	}, {
		name:                "the API server refused to create the Deployment",
		app:                 plantest.NewApp(),
		obs:                 Observed{Refused: &Refusal{Reason: ReasonQuotaExceeded, Message: "exceeded quota"}},
		wantAvailable:       cond{metav1.ConditionFalse, ReasonQuotaExceeded},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonQuotaExceeded},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonQuotaExceeded},
		wantReady:           "0/3",
		wantDegradedMessage: "exceeded quota",
	}, {
		name: "the API server refused a change: the running Deployment is still described",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(),
			Refused: &Refusal{Reason: ReasonRejected, Message: `the API server refused to change Deployment "web": bad env`}},
		wantAvailable:       cond{metav1.ConditionTrue, ReasonMinimumReplicasAvailable},
		wantProgressing:     cond{metav1.ConditionFalse, ReasonRolloutComplete},
		wantDegraded:        cond{metav1.ConditionTrue, ReasonRejected},
		wantReady:           "3/3",
		wantDegradedMessage: `the API server refused to change Deployment "web": bad env`,
	}, {
		name: "Pods cannot be created",
		app:  plantest.NewApp(),
		obs: Observed{Deployment: plantest.DeploymentStatus(func(d *appsv1.Deployment) {
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
		app:                 plantest.NewApp(),
		obs:                 Observed{WaitingFor: `Deployment "web"`},
		wantAvailable:       cond{metav1.ConditionFalse, ReasonWaitingForGarbageCollection},
		wantProgressing:     cond{metav1.ConditionTrue, ReasonWaitingForGarbageCollection},
		wantDegraded:        cond{metav1.ConditionFalse, ReasonAsExpected},
		wantReady:           "0/3",
		wantDegradedMessage: "no failing Pods",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Status(tt.app, tt.obs, "cluster.local", now)
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
	d := plantest.DeploymentStatus(func(d *appsv1.Deployment) {
		d.Status.Replicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, d.Status.UpdatedReplicas = 4, 3, 2, 1
	})
	s := Status(plantest.NewApp(), Observed{Deployment: d}, "cluster.local", metav1.Now())
	assert.Equal(t, []int32{4, 3, 2, 1}, []int32{s.Replicas, s.ReadyReplicas, s.AvailableReplicas, s.UpdatedReplicas})
	assert.Equal(t, "3/3", s.Ready)
}

func TestComputeStatusKeepsTransitionTimeUntilStatusChanges(t *testing.T) {
	first := metav1.NewTime(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
	later := metav1.NewTime(first.Add(time.Hour))
	app := plantest.NewApp()
	app.Status = Status(app, Observed{Deployment: plantest.DeploymentStatus()}, "cluster.local", first)

	// Same Observed an hour later: nothing changes, so the status is identical and no write is needed.
	again := Status(app, Observed{Deployment: plantest.DeploymentStatus()}, "cluster.local", later)
	assert.Equal(t, app.Status, again)

	// A crash loop flips Degraded: only that condition gets the new time.
	app.Status = again
	degraded := Status(app, Observed{
		Deployment: plantest.DeploymentStatus(),
		Pods:       []*corev1.Pod{plantest.WaitingPod("web-a", "CrashLoopBackOff")},
	}, "cluster.local", later)
	assert.Equal(t, later, meta.FindStatusCondition(degraded.Conditions, berthv1alpha1.ConditionDegraded).LastTransitionTime)
	assert.Equal(t, first, meta.FindStatusCondition(degraded.Conditions, berthv1alpha1.ConditionAvailable).LastTransitionTime)
}

func TestComputeStatusClusterDomain(t *testing.T) {
	s := Status(plantest.NewApp(plantest.WithPort(80)), Observed{}, "example.internal", metav1.Now())
	assert.Equal(t, "http://web.shop.svc.example.internal:80", s.URL)
}

// TestComputeStatusURLOfSeveralPorts: the URL is the Service's first TCP port, on its service port; an App whose
// Service exposes no TCP port has none.
func TestComputeStatusURLOfSeveralPorts(t *testing.T) {
	app := plantest.NewApp(func(a *berthv1alpha1.App) {
		a.Spec.Ports = []berthv1alpha1.Port{
			{Name: "metrics", Port: 9090, Internal: true},
			{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP},
			{Name: "api", Port: 8080, ServicePort: ptr.To[int32](80)},
		}
	})
	assert.Equal(t, "http://web.shop.svc.cluster.local:80", Status(app, Observed{}, "cluster.local", metav1.Now()).URL)
	app.Spec.Ports = app.Spec.Ports[:2]
	assert.Empty(t, Status(app, Observed{}, "cluster.local", metav1.Now()).URL)
}

func TestComputeStatusDoesNotModifyTheApp(t *testing.T) {
	app := plantest.NewApp()
	app.Status.Conditions = []metav1.Condition{{Type: berthv1alpha1.ConditionDegraded, Status: metav1.ConditionTrue,
		Reason: ReasonCrashLoopBackOff}}
	before := app.DeepCopy()
	Status(app, Observed{Deployment: plantest.DeploymentStatus()}, "cluster.local", metav1.Now())
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

func terminatedWith(t *corev1.ContainerStateTerminated) corev1.ContainerState {
	return corev1.ContainerState{Terminated: t}
}

func backingOff() corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
		Message: "back-off 40s restarting failed container=app pod=web-a_shop(uid)"}}
}

// TestComputeStatusThroughAKubeletCrashLoop gives Status each state in which a kubelet shows a
// crash-looping container: it waits in CrashLoopBackOff, runs again, exits, and waits again. The App is Degraded
// all along, not only while the container waits, and the message says how the container last ended.
func TestComputeStatusThroughAKubeletCrashLoop(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	const noFailure = ""
	tests := []struct {
		name        string
		pod         *corev1.Pod
		now         time.Time
		wantMessage string // noFailure: Degraded False
	}{{
		name:        "started, has not exited yet",
		pod:         plantest.CrashingPod("web-a", 0, plantest.RunningSince(t0), nil),
		now:         t0.Add(time.Second),
		wantMessage: noFailure,
	}, {
		name:        "its first exit",
		pod:         plantest.CrashingPod("web-a", 0, terminatedWith(plantest.ExitedAt(1, "Error", t0.Add(time.Second))), nil),
		now:         t0.Add(time.Second),
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff; last exit code 1, reason Error`,
	}, {
		name:        "restarted at once after its first exit, and running",
		pod:         plantest.CrashingPod("web-a", 1, plantest.RunningSince(t0.Add(time.Second)), plantest.ExitedAt(1, "Error", t0.Add(time.Second))),
		now:         t0.Add(2 * time.Second),
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 1 restart; last exit code 1, reason Error`,
	}, {
		name: "exited again",
		pod: plantest.CrashingPod("web-a", 1, terminatedWith(plantest.ExitedAt(1, "Error", t0.Add(2*time.Second))),
			plantest.ExitedAt(1, "Error", t0.Add(time.Second))),
		now:         t0.Add(2 * time.Second),
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 1 restart; last exit code 1, reason Error`,
	}, {
		name:        "waiting out its back-off",
		pod:         plantest.CrashingPod("web-a", 1, backingOff(), plantest.ExitedAt(1, "Error", t0.Add(2*time.Second))),
		now:         t0.Add(5 * time.Second),
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 1 restart; last exit code 1, reason Error`,
	}, {
		name:        "running again after its back-off",
		pod:         plantest.CrashingPod("web-a", 2, plantest.RunningSince(t0.Add(12*time.Second)), plantest.ExitedAt(1, "Error", t0.Add(2*time.Second))),
		now:         t0.Add(13 * time.Second),
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 2+ restarts; last exit code 1, reason Error`,
	}, {
		name:        "killed for using too much memory",
		pod:         plantest.CrashingPod("web-a", 5, backingOff(), plantest.ExitedAt(137, "OOMKilled", t0)),
		now:         t0.Add(time.Minute),
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 4+ restarts; last exit code 137, reason OOMKilled`,
	}, {
		name:        "an exit with code 0 is restarted all the same",
		pod:         plantest.CrashingPod("web-a", 1, plantest.RunningSince(t0), plantest.ExitedAt(0, "Completed", t0)),
		now:         t0.Add(time.Second),
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 1 restart; last exit code 0, reason Completed`,
	}, {
		name:        "its first exit, with code 0: not known to fail until it is restarted",
		pod:         plantest.CrashingPod("web-a", 0, terminatedWith(plantest.ExitedAt(0, "Completed", t0)), nil),
		now:         t0,
		wantMessage: noFailure,
	}, {
		name:        "running just short of the window since its last exit",
		pod:         plantest.CrashingPod("web-a", 9, plantest.RunningSince(t0), plantest.ExitedAt(1, "Error", t0)),
		now:         t0.Add(plantest.CrashLoopWindow - time.Second),
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 8+ restarts; last exit code 1, reason Error`,
	}, {
		name:        "running for the window since its last exit: the kubelet forgot the crash loop, and so does berth",
		pod:         plantest.CrashingPod("web-a", 9, plantest.RunningSince(t0), plantest.ExitedAt(1, "Error", t0)),
		now:         t0.Add(plantest.CrashLoopWindow),
		wantMessage: noFailure,
	}, {
		name: "a Pod that has ended (evicted) is replaced, not restarted",
		pod: func() *corev1.Pod {
			p := plantest.CrashingPod("web-a", 0, terminatedWith(plantest.ExitedAt(137, "Error", t0)), nil)
			p.Status.Phase = corev1.PodFailed
			return p
		}(),
		now:         t0.Add(time.Second),
		wantMessage: noFailure,
	}, {
		name: "an init container that succeeded after a failed attempt is done",
		pod: func() *corev1.Pod {
			p := plantest.CrashingPod("web-a", 0, plantest.RunningSince(t0), nil)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", RestartCount: 1,
				State:                corev1.ContainerState{Terminated: plantest.ExitedAt(0, "Completed", t0)},
				LastTerminationState: corev1.ContainerState{Terminated: plantest.ExitedAt(1, "Error", t0.Add(-time.Second))}}}
			return p
		}(),
		now:         t0.Add(time.Second),
		wantMessage: noFailure,
	}, {
		name: "an init container that keeps failing",
		pod: func() *corev1.Pod {
			p := plantest.CrashingPod("web-a", 0, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}, nil)
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", RestartCount: 3,
				State:                plantest.RunningSince(t0),
				LastTerminationState: corev1.ContainerState{Terminated: plantest.ExitedAt(2, "Error", t0)}}}
			return p
		}(),
		now:         t0.Add(time.Second),
		wantMessage: `Pod web-a: container "init" is in CrashLoopBackOff after 2+ restarts; last exit code 2, reason Error`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Status(plantest.NewApp(), Observed{Deployment: plantest.DeploymentStatus(), Pods: []*corev1.Pod{tt.pod}},
				"cluster.local", metav1.NewTime(tt.now))
			degraded := meta.FindStatusCondition(s.Conditions, berthv1alpha1.ConditionDegraded)
			require.NotNil(t, degraded)
			if tt.wantMessage == noFailure {
				assert.Equal(t, cond{metav1.ConditionFalse, ReasonAsExpected}, cond{degraded.Status, degraded.Reason},
					degraded.Message)
				return
			}
			assert.Equal(t, cond{metav1.ConditionTrue, ReasonCrashLoopBackOff}, cond{degraded.Status, degraded.Reason},
				degraded.Message)
			assert.Equal(t, tt.wantMessage, degraded.Message)
		})
	}
}

// podUpdate is a Pod as one status update of its kubelet left it, and when.
type podUpdate struct {
	at  time.Time
	pod *corev1.Pod
}

// kubeletCrashLoop is what a kubelet reports of a Pod whose container crashes restarts times, update by update:
// each run lasts a second and ends with code and reason; the kubelet restarts the container at once after its
// first exit, and after each later one waits out a back-off of 10 s doubling to 5 minutes (k8s.io/kubernetes
// pkg/kubelet: initialCrashLoopBackOff, MaxContainerBackOff).

func kubeletCrashLoop(name string, start time.Time, restarts int, code int32, reason string) []podUpdate {
	var updates []podUpdate
	now := start
	backOff := 10 * time.Second
	var last *corev1.ContainerStateTerminated
	for restart := int32(0); ; restart++ {
		updates = append(updates, podUpdate{now, plantest.CrashingPod(name, restart, plantest.RunningSince(now), last)})
		now = now.Add(time.Second)
		ended := plantest.ExitedAt(code, reason, now)
		updates = append(updates, podUpdate{now, plantest.CrashingPod(name, restart, terminatedWith(ended), last)})
		last = ended
		if int(restart) == restarts {
			return updates
		}
		if restart > 0 {
			updates = append(updates, podUpdate{now, plantest.CrashingPod(name, restart, backingOff(), last)})
			now = now.Add(backOff)
			backOff = min(2*backOff, 5*time.Minute)
		}
	}
}

// TestCrashLoopWritesStatusOncePerRestartBucket replays Pods crash-looping as a kubelet reports them, 40 restarts
// each (about three hours), and counts what berth would do: a status write whenever Status gives a status
// other than the App's, an Event whenever Degraded changes. The App must stay Degraded with reason
// CrashLoopBackOff from the first exit on, and its status may change at most once per restart-count bucket of the
// Pod the message names.
func TestCrashLoopWritesStatusOncePerRestartBucket(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	const restarts = 40
	// The buckets of 40 restarts: 1, 2, 4, 8, 16, 32.
	buckets := bits.Len(uint(restarts))
	tests := []struct {
		name        string
		pods        [][]podUpdate
		wantWrites  int
		wantMessage string
	}{{
		name: "one Pod",
		pods: [][]podUpdate{kubeletCrashLoop("web-a", t0, restarts, 137, "OOMKilled")},
		// The first exit, then one write per bucket.
		wantWrites:  1 + buckets,
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 32+ restarts; last exit code 137, reason OOMKilled`,
	}, {
		name: "two Pods, out of step",
		pods: [][]podUpdate{
			kubeletCrashLoop("web-a", t0, restarts, 137, "OOMKilled"),
			kubeletCrashLoop("web-b", t0.Add(3*time.Second), restarts, 137, "OOMKilled"),
		},
		// web-a's first exit, web-b's (the message counts the failing Pods), then one write per bucket of web-a's
		// restarts.
		wantWrites:  2 + buckets,
		wantMessage: `Pod web-a: container "app" is in CrashLoopBackOff after 32+ restarts; last exit code 137, reason OOMKilled (2 Pods failing)`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			updates := slices.Concat(tt.pods...)
			slices.SortStableFunc(updates, func(x, y podUpdate) int { return x.at.Compare(y.at) })
			app := plantest.NewApp()
			d := plantest.DeploymentStatus(func(d *appsv1.Deployment) {
				d.Status.ReadyReplicas, d.Status.AvailableReplicas = 0, 0
				d.Status.Conditions[0].Status = corev1.ConditionFalse
			})
			// The App's status from before its Pods started.
			app.Status = Status(app, Observed{Deployment: d}, "cluster.local", metav1.NewTime(t0.Add(-time.Minute)))
			pods := map[string]*corev1.Pod{}
			var writes, warnings, recoveries, restartsSeen int
			var sawOOMKilled bool
			for _, u := range updates {
				pods[u.pod.Name] = u.pod
				cs := u.pod.Status.ContainerStatuses[0]
				restartsSeen = max(restartsSeen, int(cs.RestartCount))
				if l := cs.LastTerminationState.Terminated; l != nil && l.Reason == "OOMKilled" && l.ExitCode == 137 {
					sawOOMKilled = true
				}
				var observed []*corev1.Pod
				for _, name := range slices.Sorted(maps.Keys(pods)) {
					observed = append(observed, pods[name])
				}
				status := Status(app, Observed{Deployment: d, Pods: observed}, "cluster.local", metav1.NewTime(u.at))
				if equality.Semantic.DeepEqual(app.Status, status) {
					continue
				}
				writes++
				before := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
				after := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
				switch {
				case after.Status == metav1.ConditionTrue && (before == nil || before.Status != metav1.ConditionTrue):
					warnings++
				case after.Status != metav1.ConditionTrue && before != nil && before.Status == metav1.ConditionTrue:
					recoveries++
				}
				app.Status = status
			}
			// The precondition: the Pods went through the whole crash loop.
			require.Equal(t, restarts, restartsSeen, "the replay restarts the containers")
			require.True(t, sawOOMKilled, "the replay reports the last exit in lastState")

			t.Logf("%d restarts of %d Pods (%d status updates of theirs): %d status writes, %d Warnings, %d Recovered",
				restarts, len(tt.pods), len(updates), writes, warnings, recoveries)
			assert.Equal(t, 0, recoveries, "the App never recovers while its Pods crash-loop")
			assert.Equal(t, 1, warnings, "one Warning for the whole crash loop")
			assert.LessOrEqual(t, writes, tt.wantWrites, "at most one status write per restart-count bucket")
			degraded := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
			require.NotNil(t, degraded)
			assert.Equal(t, cond{metav1.ConditionTrue, ReasonCrashLoopBackOff}, cond{degraded.Status, degraded.Reason})
			assert.Equal(t, tt.wantMessage, degraded.Message)
		})
	}
}
