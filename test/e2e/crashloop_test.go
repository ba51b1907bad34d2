package e2e

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// oomKilledImage is an image whose container kwok's crash-loop Stages end with code 137, reason OOMKilled, as a
// kubelet reports a container that the kernel killed for going over its memory limit.
const oomKilledImage = "crash-loop.invalid/oom-killed:1"

// restartsWatched is how many restarts TestCrashLoopDoesNotFlap watches: the restart counts pass through three
// or four buckets (powers of two) on the way.
const restartsWatched = 6

// TestCrashLoopDoesNotFlap runs Apps whose container crash-loops as on a kubelet (kwok's pod-crash-loop Stages:
// running, exited, waiting in CrashLoopBackOff, running again, restartCount growing) and watches each App and its
// Pod through several restarts. The App must stay Degraded with reason CrashLoopBackOff all along, its status be
// written at most once per restart-count bucket, no Recovered Event be emitted, and the message say how the
// container last ended.
func TestCrashLoopDoesNotFlap(t *testing.T) {
	for _, tc := range []struct {
		image    string
		exitCode int32
		reason   string
	}{
		{crashLoopImage, 1, "Error"},
		{oomKilledImage, 137, "OOMKilled"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			apply(t, ns, appManifest("crashing", tc.image, 1, 0))
			var app *berthv1alpha1.App
			eventually(t, "App crashing to be Degraded with reason CrashLoopBackOff", func(ctx context.Context) error {
				var err error
				if app, err = getApp(ctx, ns, "crashing"); err != nil {
					return err
				}
				return degradedNamingAPod(ctx, app, "CrashLoopBackOff")
			})

			seen := watchCrashLoop(t, app, restartsWatched)
			events := appEventCounts(t, ns, "crashing")
			writesByBucket := map[string]int{}
			var notDegraded []string
			for _, version := range seen.versions {
				degraded := meta.FindStatusCondition(version.Status.Conditions, berthv1alpha1.ConditionDegraded)
				if degraded == nil || degraded.Status != metav1.ConditionTrue || degraded.Reason != "CrashLoopBackOff" {
					notDegraded = append(notDegraded, fmt.Sprintf("%+v", degraded))
					continue
				}
				writesByBucket[restartBucketOf(degraded.Message)]++
			}
			t.Logf("restartCount %d -> %d in %s; container states seen %v; last exits seen %v",
				seen.firstRestarts, seen.lastRestarts, seen.took.Round(time.Second), slices.Sorted(maps.Keys(seen.states)),
				slices.Sorted(maps.Keys(seen.lastExits)))
			t.Logf("the kubelet's messages while the container waited: %q", seen.backOffs)
			t.Logf("the container's last status: restartCount %d, state %s, lastState %s", seen.last.RestartCount,
				containerState(seen.last.State), containerState(seen.last.LastTerminationState))
			t.Logf("%d App status writes: %d not Degraded/CrashLoopBackOff, the others by the restart bucket of "+
				"their message %v; Events about the App (counted) %v", len(seen.versions), len(notDegraded),
				writesByBucket, events)

			// The precondition: the Pod went through restarts as on a kubelet.
			require.GreaterOrEqual(t, seen.lastRestarts-seen.firstRestarts, int32(restartsWatched), "the container restarted")
			for _, state := range []string{"running", "terminated", "waiting CrashLoopBackOff"} {
				require.True(t, seen.states[state], "the container was seen %s", state)
			}
			require.True(t, seen.lastExits[fmt.Sprintf("%d %s", tc.exitCode, tc.reason)],
				"lastState.terminated held the exit code and reason")

			assert.Empty(t, notDegraded, "the App stays Degraded with reason CrashLoopBackOff")
			for bucket, writes := range writesByBucket {
				assert.LessOrEqual(t, writes, 1, "status writes for restart bucket %q", bucket)
			}
			assert.Zero(t, events[corev1.EventTypeNormal+" Recovered"], "no Recovered Event while the crash loop lasts")
			assert.Equal(t, 1, events[corev1.EventTypeWarning+" CrashLoopBackOff"], "one Warning for the crash loop")

			last, err := getApp(t.Context(), ns, "crashing")
			require.NoError(t, err)
			require.NoError(t, degradedNamingAPod(t.Context(), last, "CrashLoopBackOff"))
			assert.Contains(t, meta.FindStatusCondition(last.Status.Conditions, berthv1alpha1.ConditionDegraded).Message,
				fmt.Sprintf("last exit code %d, reason %s", tc.exitCode, tc.reason))
		})
	}
}

// crashLoopSeen is what watchCrashLoop saw.
type crashLoopSeen struct {
	firstRestarts, lastRestarts int32
	// states are the states the container was seen in: running, terminated, "waiting REASON".
	states map[string]bool
	// backOffs are the kubelet's messages of the container's back-offs, in order: they change at every restart.
	backOffs []string
	// lastExits are the exits seen in the container's lastState.terminated, as "CODE REASON".
	lastExits map[string]bool
	// last is the container's last status seen.
	last corev1.ContainerStatus
	// versions are the versions of the App written while it watched, in order.
	versions []*berthv1alpha1.App
	took     time.Duration
}

// watchCrashLoop watches the App, from the version given, and its only Pod until the Pod's container has
// restarted restarts more times.
func watchCrashLoop(t *testing.T, app *berthv1alpha1.App, restarts int32) crashLoopSeen {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	pods, err := kubeClient.CoreV1().Pods(app.Namespace).List(ctx, metav1.ListOptions{LabelSelector: app.Status.Selector})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	podWatch, err := kubeClient.CoreV1().Pods(app.Namespace).Watch(ctx, metav1.ListOptions{
		LabelSelector: app.Status.Selector, ResourceVersion: pods.ResourceVersion})
	require.NoError(t, err)
	defer podWatch.Stop()
	appWatch, err := berthClient.BerthV1alpha1().Apps(app.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", app.Name).String(), ResourceVersion: app.ResourceVersion})
	require.NoError(t, err)
	defer appWatch.Stop()

	seen := crashLoopSeen{states: map[string]bool{}, lastExits: map[string]bool{}}
	start := time.Now()
	observe := func(pod *corev1.Pod) {
		for _, cs := range pod.Status.ContainerStatuses {
			seen.last = cs
			seen.lastRestarts = cs.RestartCount
			switch {
			case cs.State.Running != nil:
				seen.states["running"] = true
			case cs.State.Terminated != nil:
				seen.states["terminated"] = true
			case cs.State.Waiting != nil:
				seen.states["waiting "+cs.State.Waiting.Reason] = true
				if m := cs.State.Waiting.Message; len(seen.backOffs) == 0 || seen.backOffs[len(seen.backOffs)-1] != m {
					seen.backOffs = append(seen.backOffs, m)
				}
			}
			if last := cs.LastTerminationState.Terminated; last != nil {
				seen.lastExits[fmt.Sprintf("%d %s", last.ExitCode, last.Reason)] = true
			}
		}
	}
	observe(&pods.Items[0])
	seen.firstRestarts = seen.lastRestarts
	for seen.lastRestarts-seen.firstRestarts < restarts {
		select {
		case e, ok := <-podWatch.ResultChan():
			require.True(t, ok, "the watch of the Pod ended")
			require.NotEqual(t, watch.Error, e.Type, "the watch of the Pod: %v", e.Object)
			if pod, ok := e.Object.(*corev1.Pod); ok && e.Type == watch.Modified {
				observe(pod)
			}
		case e, ok := <-appWatch.ResultChan():
			require.True(t, ok, "the watch of the App ended")
			require.NotEqual(t, watch.Error, e.Type, "the watch of the App: %v", e.Object)
			if written, ok := e.Object.(*berthv1alpha1.App); ok && e.Type == watch.Modified {
				seen.versions = append(seen.versions, written)
			}
		case <-ctx.Done():
			t.Fatalf("the container restarted %d times in %s, want %d", seen.lastRestarts-seen.firstRestarts,
				timeout, restarts)
		}
	}
	seen.took = time.Since(start)
	return seen
}

// containerState says what a container's state is, for a test's log.
func containerState(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().Format(time.TimeOnly)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated at %s, exit code %d, reason %s", s.Terminated.FinishedAt.UTC().Format(time.TimeOnly),
			s.Terminated.ExitCode, s.Terminated.Reason)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting, reason %s (%q)", s.Waiting.Reason, s.Waiting.Message)
	}
	return "none"
}

// restartBucketPattern finds the restart count in the message of a crash loop ("after 4+ restarts").
var restartBucketPattern = regexp.MustCompile(`after (\d+)\+? restarts?`)

// restartBucketOf is the restart-count bucket that a Degraded message names, "0" when it names none (the first
// exit).
func restartBucketOf(message string) string {
	if m := restartBucketPattern.FindStringSubmatch(message); m != nil {
		return m[1]
	}
	return "0"
}

// appEventCounts counts the core/v1 Events about the App by "TYPE REASON": an Event repeated word for word is
// one Event whose count grows, so the counts are summed, not the Events.
func appEventCounts(t *testing.T, namespace, app string) map[string]int {
	t.Helper()
	events, err := kubeClient.CoreV1().Events(namespace).List(t.Context(), metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.kind": "App", "involvedObject.name": app}.String()})
	require.NoError(t, err)
	counts := map[string]int{}
	for _, e := range events.Items {
		counts[e.Type+" "+e.Reason] += int(max(e.Count, 1))
	}
	return counts
}
