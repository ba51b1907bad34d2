package plan

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// Flags of FuzzComputeStatus's flags argument.
const (
	fuzzHasDeployment = 1 << iota
	fuzzStatusHasPort
	fuzzHasPod
	fuzzPodDeleted
	fuzzInitContainer
	fuzzHasOldConditions
	fuzzContested
	// fuzzCrashed gives the Pod's container a restart count and a last exit (code, reason and time from other
	// arguments), as a crash-looping container has.
	fuzzCrashed
)

// conditionStatuses are what a fuzzed uint8 picks from: a Deployment's condition absent or in one of its statuses.
var conditionStatuses = []corev1.ConditionStatus{"", corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}

// refusalReasons are what a fuzzed uint8 picks a refusal's reason from; "" is no refusal.
var refusalReasons = []string{"", ReasonQuotaExceeded, ReasonForbidden, ReasonRejected}

// FuzzComputeStatus gives Status random observations: a Deployment (counts, generations and conditions with
// any reason and message), a Pod waiting for any reason (and restarted, with any last exit), a conflict, an object left by a deleted App, a refused
// write, a field contested by another writer, and conditions the App had before. Whatever it sees, Status must not panic, must report exactly
// the three conditions berth owns, each once and for the App's generation, as observedGeneration is, leave other
// conditions as they were, and write conditions that the API server accepts (metav1 validation, which the CRD's
// schema repeats): a status it refuses would never be written, and the App would go on showing an old one.
func FuzzComputeStatus(f *testing.F) {
	f.Add(int64(1), int32(3), uint8(fuzzHasDeployment), int64(2), int64(2), int32(3), int32(3), int32(3), int32(3),
		uint8(1), uint8(1), uint8(0), "NewReplicaSetAvailable", "", "", "", "", "", "", uint8(0), "")
	// A contested image, as a mutating admission policy makes it.
	f.Add(int64(2), int32(1), uint8(fuzzHasDeployment|fuzzContested), int64(3), int64(3), int32(1), int32(1),
		int32(1), int32(1), uint8(1), uint8(2), uint8(0), "NewReplicaSetAvailable", "a mutating admission webhook or policy, on berth's own write",
		`spec.template.spec.containers[name="app"].image`, "", "", "", "", uint8(0), "")
	f.Fuzz(func(t *testing.T, generation int64, replicas int32, flags uint8, dGeneration, dObserved int64,
		dReplicas, dReady, dAvailable, dUpdated int32, available, progressing, replicaFailure uint8,
		progressingReason, failureReason, failureMessage, podName, waitingReason, conflict, waitingFor string,
		refusedReason uint8, refusedMessage string) {
		if generation < 0 {
			return // the API server's generations start at 1 and only grow
		}
		app := plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Generation = generation
			a.Spec.Replicas = ptr.To(replicas)
			if flags&fuzzStatusHasPort != 0 {
				a.Spec.Port = ptr.To[int32](8080)
			}
		})
		foreign := metav1.Condition{Type: "example.com/Audited", Status: metav1.ConditionTrue, Reason: "Audited",
			LastTransitionTime: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
		if flags&fuzzHasOldConditions != 0 {
			app.Status.Conditions = []metav1.Condition{
				{Type: berthv1alpha1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: ReasonCrashLoopBackOff,
					ObservedGeneration: generation, LastTransitionTime: foreign.LastTransitionTime},
				foreign,
			}
		}

		now := metav1.NewTime(time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
		obs := Observed{Conflict: conflict, WaitingFor: waitingFor}
		if flags&fuzzHasDeployment != 0 {
			obs.Deployment = &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: dGeneration},
				Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
				Status: appsv1.DeploymentStatus{ObservedGeneration: dObserved, Replicas: dReplicas,
					ReadyReplicas: dReady, AvailableReplicas: dAvailable, UpdatedReplicas: dUpdated},
			}
			for _, c := range []struct {
				conditionType   appsv1.DeploymentConditionType
				status          uint8
				reason, message string
			}{
				{appsv1.DeploymentAvailable, available, "MinimumReplicasAvailable", ""},
				{appsv1.DeploymentProgressing, progressing, progressingReason, ""},
				{appsv1.DeploymentReplicaFailure, replicaFailure, failureReason, failureMessage},
			} {
				if s := conditionStatuses[int(c.status)%len(conditionStatuses)]; s != "" {
					obs.Deployment.Status.Conditions = append(obs.Deployment.Status.Conditions, appsv1.DeploymentCondition{
						Type: c.conditionType, Status: s, Reason: c.reason, Message: c.message})
				}
			}
		}
		if flags&fuzzHasPod != 0 {
			pod := plantest.WaitingPod(podName, waitingReason)
			if flags&fuzzCrashed != 0 {
				// The exit's reason is the runtime's words: any text. Its time is within or out of the window.
				cs := &pod.Status.ContainerStatuses[0]
				cs.RestartCount = dReplicas
				cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: dReady,
					Reason: failureReason, FinishedAt: metav1.NewTime(now.Add(-time.Duration(dGeneration) * time.Second))}
			}
			if flags&fuzzInitContainer != 0 {
				pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses = pod.Status.ContainerStatuses, nil
			}
			if flags&fuzzPodDeleted != 0 {
				pod.DeletionTimestamp = ptr.To(metav1.Now())
			}
			obs.Pods = append(obs.Pods, pod, plantest.WaitingPod(podName+"-2", "CrashLoopBackOff"))
		}
		if reason := refusalReasons[int(refusedReason)%len(refusalReasons)]; reason != "" {
			obs.Refused = &Refusal{Reason: reason, Message: refusedMessage}
		}
		if flags&fuzzContested != 0 {
			// Fields and managers are named by others: any text, in a message as the controller words it.
			obs.Contested = fmt.Sprintf("berth stopped correcting Deployment %q for %s, or until the App changes: %s "+
				"changed by %s again after each of berth's last %d corrections", "web", time.Duration(dGeneration),
				failureMessage, failureReason, replicas)
		}

		status := Status(app, obs, "cluster.local", now)

		if status.ObservedGeneration != generation {
			t.Errorf("observedGeneration %d, want the App's %d", status.ObservedGeneration, generation)
		}
		seen := map[string]int{}
		for _, c := range status.Conditions {
			seen[c.Type]++
			if !IsBerthCondition(c.Type) {
				if flags&fuzzHasOldConditions == 0 || c != foreign {
					t.Errorf("a condition berth does not own changed or appeared: %+v", c)
				}
				continue
			}
			if c.ObservedGeneration != generation {
				t.Errorf("%s describes generation %d, want %d", c.Type, c.ObservedGeneration, generation)
			}
		}
		for _, conditionType := range []string{berthv1alpha1.ConditionAvailable, berthv1alpha1.ConditionProgressing,
			berthv1alpha1.ConditionDegraded} {
			if seen[conditionType] != 1 {
				t.Errorf("%d %s conditions, want 1: %+v", seen[conditionType], conditionType, status.Conditions)
			}
		}
		if want := 3 + boolToInt(flags&fuzzHasOldConditions != 0); len(status.Conditions) != want {
			t.Errorf("%d conditions, want %d: %+v", len(status.Conditions), want, status.Conditions)
		}
		if errs := metav1validation.ValidateConditions(status.Conditions, field.NewPath("status", "conditions")); len(errs) > 0 {
			t.Errorf("the API server would refuse this status: %v", truncated(errs.ToAggregate().Error()))
		}
	})
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// truncated keeps a failure's message readable when the fuzzer made a long string.
func truncated(s string) string {
	const limit = 2000
	if len(s) <= limit {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:limit], len(s))
}
