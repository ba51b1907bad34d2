// Why an App's Pods fail: the containers that are stuck (image pulls, bad config) or crash-looping, told in a
// message that changes only when the failure does, so that a crash loop writes the status a few times, not at every
// restart.

package plan

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodFailure finds the App's Pods whose containers are stuck or crash-looping at now, and describes the first of
// them by name. The message holds nothing that changes at every restart (no back-off times, no exact restart
// count, no times of exits), so that a failing App's status is written a few times in a crash loop, not at
// every restart: see restartBucket.
func PodFailure(pods []*corev1.Pod, now time.Time) (reason, message string, failing bool) {
	sorted := slices.Clone(pods)
	slices.SortFunc(sorted, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	var failingPods int
	for _, pod := range sorted {
		if pod.DeletionTimestamp != nil {
			continue
		}
		f, ok := stuckContainer(pod, now)
		if !ok {
			continue
		}
		failingPods++
		if failingPods == 1 {
			reason = f.reason
			message = fmt.Sprintf("Pod %s: container %q is in %s", pod.Name, f.container, f.reason)
			if f.reason == ReasonCrashLoopBackOff {
				message += crashLoopDetails(f.restarts, f.lastExit)
			}
			if f.detail != "" {
				message += ": " + f.detail
			}
		}
	}
	if failingPods == 0 {
		return "", "", false
	}
	if failingPods > 1 {
		message += fmt.Sprintf(" (%d Pods failing)", failingPods)
	}
	return reason, message, true
}

// containerFailure is a container that is stuck or crash-looping.
type containerFailure struct {
	reason, container string
	// detail is the kubelet's message of a config error, which names what is missing.
	detail   string
	restarts int32
	// lastExit is the container's latest exit, nil if it has none.
	lastExit *corev1.ContainerStateTerminated
	// until is when the kubelet forgets the crash loop of a container that fails only by its recent exit (it
	// runs, or has just exited); zero for a container that waits for a reason in podFailureReasons.
	until time.Time
}

// stuckContainer is the first container of the Pod that is stuck or crash-looping at now.
func stuckContainer(pod *corev1.Pod, now time.Time) (containerFailure, bool) {
	for _, c := range containersOf(pod) {
		if f, ok := failureOf(pod, c.status, c.init, now); ok {
			return f, true
		}
	}
	return containerFailure{}, false
}

// podContainer is the status of one of a Pod's containers, and whether it is an init container.
type podContainer struct {
	init   bool
	status corev1.ContainerStatus
}

// containersOf are the statuses of the Pod's init containers, then of its containers.
func containersOf(pod *corev1.Pod) []podContainer {
	containers := make([]podContainer, 0, len(pod.Status.InitContainerStatuses)+len(pod.Status.ContainerStatuses))
	for _, cs := range pod.Status.InitContainerStatuses {
		containers = append(containers, podContainer{init: true, status: cs})
	}
	for _, cs := range pod.Status.ContainerStatuses {
		containers = append(containers, podContainer{status: cs})
	}
	return containers
}

// failureOf tells whether the container is stuck (it waits for a reason of podFailureReasons) or crash-looping
// (it exited within CrashLoopWindow of now and the kubelet restarts it, or already has).
func failureOf(pod *corev1.Pod, cs corev1.ContainerStatus, init bool, now time.Time) (containerFailure, bool) {
	f := containerFailure{container: cs.Name, restarts: cs.RestartCount, lastExit: lastExit(cs)}
	if w := cs.State.Waiting; w != nil {
		if r, stuck := podFailureReasons[w.Reason]; stuck {
			f.reason = r
			if r == ReasonCreateContainerConfigError {
				f.detail = w.Message
			}
			return f, true
		}
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// The Pod has ended (evicted, say): its containers are not restarted, the ReplicaSet replaces the Pod.
		return containerFailure{}, false
	}
	if f.lastExit == nil || f.lastExit.FinishedAt.IsZero() {
		return containerFailure{}, false
	}
	if t := cs.State.Terminated; init && t != nil && t.ExitCode == 0 {
		// An init container that succeeded is done, whatever its earlier attempts did.
		return containerFailure{}, false
	}
	if cs.RestartCount == 0 && f.lastExit.ExitCode == 0 {
		// A first exit with code 0 is a failure only once the kubelet restarts the container: then the
		// restart count says so.
		return containerFailure{}, false
	}
	f.until = f.lastExit.FinishedAt.Add(CrashLoopWindow)
	if !now.Before(f.until) {
		return containerFailure{}, false
	}
	f.reason = ReasonCrashLoopBackOff
	return f, true
}

// lastExit is the container's latest exit: the current state when it has just exited, else the last one.
func lastExit(cs corev1.ContainerStatus) *corev1.ContainerStateTerminated {
	if cs.State.Terminated != nil {
		return cs.State.Terminated
	}
	return cs.LastTerminationState.Terminated
}

// crashLoopDetails is what the message of a crash loop adds: the restart-count bucket and how the container last
// ended (OOMKilled and its exit code 137 are what users most need to see).
func crashLoopDetails(restarts int32, exit *corev1.ContainerStateTerminated) string {
	var details string
	switch b := restartBucket(restarts); {
	case b == 1:
		details = " after 1 restart"
	case b > 1:
		details = fmt.Sprintf(" after %d+ restarts", b)
	}
	if exit != nil {
		details += fmt.Sprintf("; last exit code %d", exit.ExitCode)
		if exit.Reason != "" {
			details += ", reason " + exit.Reason
		}
	}
	return details
}

// restartBucket is the largest power of two not above restarts (0 for none): the message says "after 4+
// restarts" from the 4th restart to the 7th, so the status of a crash loop is written at restarts 1, 2, 4, 8,
// 16..., not at each one. Powers of two follow the kubelet's back-off, which doubles from 10 s to its cap of 5
// minutes: the first buckets fill within minutes, while the App is new and a user is likely watching, and once
// the back-off is capped a bucket takes twice as long as the one before (restart 32 comes after about 2¼ hours,
// 64 after about 5), so a crash loop that lasts costs ever fewer writes: 7 in its first 3 hours, then fewer than
// one an hour.
func restartBucket(restarts int32) int32 {
	if restarts <= 0 {
		return 0
	}
	return 1 << (bits.Len32(uint32(restarts)) - 1)
}

// CrashLoopRecheck is how long until the first of the Pods' crash loops ends by time alone (a container that
// runs again, or has just exited, and whose last exit leaves CrashLoopWindow then); 0 when none will. Nothing in
// the cluster changes at that moment, so the App must be synced again then to recover.
func CrashLoopRecheck(pods []*corev1.Pod, now time.Time) time.Duration {
	var next time.Duration
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		for _, c := range containersOf(pod) {
			f, ok := failureOf(pod, c.status, c.init, now)
			if !ok || f.until.IsZero() {
				continue
			}
			if d := f.until.Sub(now); next == 0 || d < next {
				next = d
			}
		}
	}
	return next
}
