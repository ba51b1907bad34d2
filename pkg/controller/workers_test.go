package controller

import (
	"context"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/berthdev/berth/pkg/plan/plantest"
)

// The tests of Run (workers.go): its workers, its drain on a graceful shutdown, and its stop at once.

func TestRunSyncsAppsAndReturnsAfterCancel(t *testing.T) {
	f := newFixture(t)
	f.startInformers()
	_, err := f.berthClient.BerthV1alpha1().Apps("shop").Create(f.ctx, plantest.NewApp(), metav1.CreateOptions{})
	require.NoError(t, err)

	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- f.controller.Run(f.ctx, stop, 2) }()

	require.Eventually(t, func() bool {
		_, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the App's Deployment is created by a worker")

	close(stop)
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after stop")
	}
	assert.True(t, f.controller.queue.ShuttingDown())
}

// TestRunningWhileTheWorkersRun: Running says whether this replica does the work, which only the leader (or a
// lone replica) does: the per-App metrics are reported from it alone.
func TestRunningWhileTheWorkersRun(t *testing.T) {
	f := newFixture(t)
	f.startInformers()
	assert.False(t, f.controller.Running(), "not before Run")

	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- f.controller.Run(f.ctx, stop, 1) }()
	require.Eventually(t, f.controller.Running, 10*time.Second, 10*time.Millisecond, "once the workers start")

	close(stop)
	require.NoError(t, <-done)
	assert.False(t, f.controller.Running(), "not after Run returned")
}

func TestRunDrainsSyncsUnderWay(t *testing.T) {
	f := newFixture(t, plantest.NewApp())
	entered, release := make(chan struct{}), make(chan struct{})
	var finished bool
	f.kubeClient.PrependReactor("create", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		close(entered)
		<-release
		finished = true
		return false, nil, nil
	})
	f.startInformers()

	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- f.controller.Run(f.ctx, stop, 1) }()
	<-entered
	close(stop)

	select {
	case <-done:
		t.Fatal("Run returned while a sync was under way")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-done)
	assert.True(t, finished, "the sync under way ran to its end")
	_, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	assert.NoError(t, err, "the write of the drained sync landed")
}

// A drained Run leaves no goroutine of its queue behind: the workqueue's delaying layer has a goroutine of its
// own, which ShutDownWithDrain does not stop. A member of a sharded set runs a new controller at each change of
// its buckets.
func TestRunLeavesNoGoroutineOfItsQueueAfterADrain(t *testing.T) {
	before := goroutinesIn("waitingLoop")
	f := newFixture(t)
	require.Equal(t, before+1, goroutinesIn("waitingLoop"), "the fixture's queue has its delaying goroutine")
	f.startInformers()
	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- f.controller.Run(f.ctx, stop, 1) }()
	close(stop)
	require.NoError(t, <-done)
	assert.Eventually(t, func() bool { return goroutinesIn("waitingLoop") == before }, 5*time.Second,
		10*time.Millisecond, "the queue's delaying goroutine has stopped")
}

// goroutinesIn counts the goroutines with a function named fn on their stacks.
func goroutinesIn(fn string) int {
	buf := make([]byte, 8<<20)
	stacks := string(buf[:goruntime.Stack(buf, true)])
	return strings.Count(stacks, "."+fn+"(")
}

func TestRunCancelsSyncsThatOutlastTheDrainTimeout(t *testing.T) {
	f := newFixtureWithOptions(t, Options{DrainTimeout: 50 * time.Millisecond}, plantest.NewApp())
	entered := make(chan struct{})
	var syncErr error
	f.controller.syncHandler = func(ctx context.Context, _ cache.ObjectName) error {
		close(entered)
		<-ctx.Done() // A write that never answers, until its context is cancelled.
		syncErr = ctx.Err()
		return syncErr
	}
	f.startInformers()

	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- f.controller.Run(f.ctx, stop, 1) }()
	<-entered
	close(stop)

	select {
	case err := <-done:
		assert.NoError(t, err)
		assert.ErrorIs(t, syncErr, context.Canceled, "the sync's context was cancelled after the drain timeout")
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain timeout")
	}
}

// TestRunCancelsSyncsAtOnceWhenItsContextEnds: a leader that lost its Lease stops writing at once; the drain is
// for a graceful shutdown only.
func TestRunCancelsSyncsAtOnceWhenItsContextEnds(t *testing.T) {
	f := newFixtureWithOptions(t, Options{DrainTimeout: time.Hour}, plantest.NewApp())
	entered := make(chan struct{})
	var syncErr error
	f.controller.syncHandler = func(ctx context.Context, _ cache.ObjectName) error {
		close(entered)
		<-ctx.Done()
		syncErr = ctx.Err()
		return syncErr
	}
	f.startInformers()

	ctx, lostLease := context.WithCancel(f.ctx)
	done := make(chan error)
	go func() { done <- f.controller.Run(ctx, make(chan struct{}), 1) }()
	<-entered
	lostLease()

	select {
	case err := <-done:
		assert.NoError(t, err)
		assert.ErrorIs(t, syncErr, context.Canceled, "the sync under way was cancelled")
	case <-time.After(10 * time.Second):
		t.Fatal("Run waited for the sync under way")
	}
}
