package controller

import (
	"testing"
	"time"

	"github.com/berthdev/berth/pkg/plan/plantest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSyncNoticesTheEndOfACrashLoopByItself: a container that crashed and runs again is still crash-looping until
// the kubelet's back-off window after its last exit has passed. When it has, the App recovers although nothing in
// the cluster changed, so the sync must bring the App back by itself then: a resync would not help, since a sync
// that finds the App's objects at the versions it converged on does not compute the status again.
func TestSyncNoticesTheEndOfACrashLoopByItself(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp())
	// The container runs since its last exit, which leaves the kubelet's window a moment from now.
	lastExit := time.Now().Add(-plantest.CrashLoopWindow + 300*time.Millisecond)
	f := newFixture(t, app, budgetOf(t, app), d, plantest.CrashingPod("web-1", 3, plantest.RunningSince(lastExit), plantest.ExitedAt(1, "Error", lastExit)))

	require.NoError(t, f.sync())
	require.Equal(t, []action{applyAppStatus}, f.writes(), "the App is Degraded while its container runs")
	assert.Equal(t, []string{`Warning CrashLoopBackOff Pod web-1: container "app" is in CrashLoopBackOff after 2+ restarts; last exit code 1, reason Error`},
		f.events())
	app = app.DeepCopy()
	app.Status = f.appliedStatus()
	require.NoError(t, f.indexerFor(app).Update(app))
	f.kubeClient.ClearActions()
	f.berthClient.ClearActions()

	require.Eventually(t, func() bool { return f.controller.queue.Len() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the App comes back to the queue when the window ends")
	key, _ := f.controller.queue.Get()
	f.controller.queue.Done(key)
	require.NoError(t, f.controller.syncApp(f.ctx, key))
	assert.Equal(t, []action{applyAppStatus}, f.writes())
	assert.Equal(t, []string{"Normal Recovered The App is no longer degraded"}, f.events())
}
