package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ktypes "k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

var webKey = cache.NewObjectName("shop", "web")

// queued drains the controller's queue without blocking and returns the keys that were in it.
func (f *fixture) queued() []cache.ObjectName {
	var keys []cache.ObjectName
	for f.controller.queue.Len() > 0 {
		key, _ := f.controller.queue.Get()
		keys = append(keys, key)
		f.controller.queue.Done(key)
	}
	return keys
}

func controllerRef(apiVersion, kind, name, uid string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: ktypes.UID(uid),
		Controller: ptr.To(true)}}
}

func TestHandleOwnedObject(t *testing.T) {
	owned := func(name string, refs []metav1.OwnerReference) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", OwnerReferences: refs}}
	}
	tests := []struct {
		name string
		obj  any
		want []cache.ObjectName
	}{{
		name: "controlled by the App",
		obj:  owned("other-name", controllerRef("berth.dev/v1alpha1", "App", "web", "uid-web")),
		want: []cache.ObjectName{webKey},
	}, {
		name: "controlled by the App at another version of the group",
		obj:  owned("other-name", controllerRef("berth.dev/v1", "App", "web", "uid-web")),
		want: []cache.ObjectName{webKey},
	}, {
		name: "wrong API group",
		obj:  owned("other-name", controllerRef("example.com/v1alpha1", "App", "web", "uid-web")),
	}, {
		name: "wrong kind",
		obj:  owned("other-name", controllerRef("berth.dev/v1alpha1", "Job", "web", "uid-web")),
	}, {
		name: "wrong UID: an earlier App of that name",
		obj:  owned("other-name", controllerRef("berth.dev/v1alpha1", "App", "web", "uid-old")),
	}, {
		name: "owner but not controller",
		obj: owned("other-name", []metav1.OwnerReference{{APIVersion: "berth.dev/v1alpha1", Kind: "App",
			Name: "web", UID: "uid-web"}}),
	}, {
		name: "no owner, other name",
		obj:  owned("other-name", nil),
	}, {
		name: "no owner, but the App's name: it is in the App's way",
		obj:  owned("web", nil),
		want: []cache.ObjectName{webKey},
	}, {
		name: "tombstone of a controlled object",
		obj: cache.DeletedFinalStateUnknown{Key: "shop/other-name",
			Obj: owned("other-name", controllerRef("berth.dev/v1alpha1", "App", "web", "uid-web"))},
		want: []cache.ObjectName{webKey},
	}, {
		name: "a tombstone of something else",
		obj:  cache.DeletedFinalStateUnknown{Key: "shop/x", Obj: "not an object"},
	}, {
		name: "not an object",
		obj:  42,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, plantest.NewApp())
			f.controller.handleOwnedObject(tt.obj, priorityChange)
			assert.Equal(t, tt.want, f.queued())
		})
	}
}

func TestHandlePod(t *testing.T) {
	pod := func(labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", Labels: labels}}
	}
	tests := []struct {
		name string
		obj  any
		want []cache.ObjectName
	}{
		{"berth's Pod of the App", pod(plan.ObjectLabels(plantest.NewApp())), []cache.ObjectName{webKey}},
		{"tombstone of berth's Pod", cache.DeletedFinalStateUnknown{Obj: pod(plan.ObjectLabels(plantest.NewApp()))}, []cache.ObjectName{webKey}},
		{"not managed by berth", pod(map[string]string{plan.LabelInstance: "web", plan.LabelManagedBy: "helm"}), nil},
		{"no instance label", pod(map[string]string{plan.LabelManagedBy: "berth"}), nil},
		{"an App that does not exist", pod(map[string]string{plan.LabelInstance: "api", plan.LabelManagedBy: "berth"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, plantest.NewApp())
			f.controller.handlePod(tt.obj, priorityChange)
			assert.Equal(t, tt.want, f.queued())
		})
	}
}

func TestEnqueueApp(t *testing.T) {
	f := newFixture(t)
	f.controller.enqueueApp(plantest.NewApp(), priorityChange)
	f.controller.enqueueApp(cache.DeletedFinalStateUnknown{Obj: plantest.NewApp()}, priorityChange)
	f.controller.enqueueApp("not an App", priorityChange)
	assert.Equal(t, []cache.ObjectName{webKey}, f.queued(), "both adds are one key; junk is ignored")
}

func TestOwnedObjectHandlerSkipsResyncsAndTellsTheInitialList(t *testing.T) {
	var handled []priority
	h := ownedObjectHandler(func(_ any, p priority) { handled = append(handled, p) }, nil)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1"}}
	changed := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "2"}}
	h.OnUpdate(d, d)
	assert.Empty(t, handled, "a resync of an unchanged object is skipped")
	h.OnUpdate(d, changed)
	h.OnAdd(d, false)
	h.OnAdd(d, true)
	h.OnDelete(d)
	assert.Equal(t, []priority{priorityOwnedChange, priorityOwnedChange, priorityResync, priorityChange}, handled)
}

// failCreates makes every Deployment create fail with err until the returned function is called.
func failCreates(f *fixture, err error) (stop func()) {
	var mu sync.Mutex
	failing := true
	f.kubeClient.PrependReactor("create", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		return failing, nil, err
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		failing = false
	}
}

func TestWorkerRetriesTransientErrorsWithGrowingBackoff(t *testing.T) {
	f := newFixture(t, plantest.NewApp())
	stop := failCreates(f, apierrors.NewInternalError(errors.New("boom")))
	q := f.controller.queue
	q.Add(webKey)

	for want := 1; want <= 3; want++ {
		require.True(t, f.controller.processNextWorkItem(f.ctx, nil))
		assert.Equal(t, want, q.NumRequeues(webKey), "each failure counts")
	}
	// The rate limiter's next delay for the key doubles with each failure: 5ms, 10ms, 20ms, now 40ms.
	limiter := NewRateLimiter(5*time.Millisecond, time.Minute, 10, 100)
	var delays []time.Duration
	for range 4 {
		delays = append(delays, limiter.When(webKey))
	}
	assert.Equal(t, []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
		40 * time.Millisecond}, delays)

	stop()
	require.True(t, f.controller.processNextWorkItem(f.ctx, nil), "the key comes back after its backoff")
	assert.Equal(t, 0, q.NumRequeues(webKey), "success forgets the failures")
	assert.Equal(t, 0, q.Len())
}

func TestBackoffIsCapped(t *testing.T) {
	limiter := NewRateLimiter(5*time.Millisecond, 80*time.Millisecond, 10, 100)
	var last time.Duration
	for range 10 {
		last = limiter.When(webKey)
	}
	assert.Equal(t, 80*time.Millisecond, last)
	limiter.Forget(webKey)
	assert.Equal(t, 5*time.Millisecond, limiter.When(webKey))
}

// TestWorkerRetriesConflictsWithBackoff: a conflict is retried promptly (the backoff starts at a few
// milliseconds), but with a backoff all the same, so that a conflict that repeats cannot spin.
func TestWorkerRetriesConflictsWithBackoff(t *testing.T) {
	f := newFixture(t, plantest.NewApp())
	failCreates(f, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
		errors.New("the object has been modified")))
	q := f.controller.queue
	for i := range 3 {
		q.Add(webKey)
		require.True(t, f.controller.processNextWorkItem(f.ctx, nil))
		assert.Equal(t, i+1, q.NumRequeues(webKey), "each conflict in a row backs off further")
	}
}

func TestWorkerChecksUnsatisfiableAppsAgainWithBackoff(t *testing.T) {
	foreign := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	f := newFixture(t, plantest.NewApp())
	require.NoError(t, f.kubeClient.Tracker().Add(foreign))
	q := f.controller.queue
	q.Add(webKey)

	require.True(t, f.controller.processNextWorkItem(f.ctx, nil))

	assert.Equal(t, 1, q.NumRequeues(webKey), "berth does not cache the foreign object: nothing else tells of its change")
}

func TestWorkerRecoversFromPanics(t *testing.T) {
	f := newFixture(t, plantest.NewApp())
	f.kubeClient.PrependReactor("create", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		panic("bug in a sync")
	})
	q := f.controller.queue
	q.Add(webKey)

	require.True(t, f.controller.processNextWorkItem(f.ctx, nil), "the worker survives")

	assert.Equal(t, 1, q.NumRequeues(webKey), "the key is retried with backoff")
	assert.ErrorIs(t, f.controller.syncWithRecover(f.ctx, webKey), errPanic)
}

func TestWorkerStopsWhenQueueShutsDown(t *testing.T) {
	f := newFixture(t)
	f.controller.queue.ShutDown()
	assert.False(t, f.controller.processNextWorkItem(f.ctx, nil))
}

// startInformers runs the fixture's informers, as main does, until the test ends.
func (f *fixture) startInformers() {
	ctx, cancel := context.WithCancel(f.ctx)
	f.kubeFactory.Start(ctx.Done())
	f.berthFactory.Start(ctx.Done())
	f.config.start(ctx)
	f.t.Cleanup(func() {
		cancel()
		f.kubeFactory.Shutdown()
		f.berthFactory.Shutdown()
		f.config.shutdown()
	})
}

func TestHasSynced(t *testing.T) {
	f := newFixture(t)
	assert.False(t, f.controller.HasSynced(), "informers not started")
	f.startInformers()
	require.Eventually(t, f.controller.HasSynced, 10*time.Second, 10*time.Millisecond)
}

func TestWorkerDoesNotRetryInATerminatingNamespace(t *testing.T) {
	f := newFixture(t, plantest.NewApp())
	terminating := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
		errors.New("unable to create new content in namespace shop because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
	failCreates(f, terminating)
	q := f.controller.queue
	q.Add(webKey)

	require.True(t, f.controller.processNextWorkItem(f.ctx, nil))

	assert.Equal(t, 0, q.NumRequeues(webKey))
	assert.Equal(t, 0, q.Len(), "the App goes with its namespace: no retry")
}

func TestOnlyASpecChangeOfAnAppIsNews(t *testing.T) {
	app := plantest.NewApp()
	app.Generation, app.ResourceVersion = 1, "1"
	statusWritten := app.DeepCopy()
	statusWritten.ResourceVersion = "2"
	specChanged := app.DeepCopy()
	specChanged.Generation, specChanged.ResourceVersion = 2, "3"

	assert.Equal(t, priorityResync, priorityOfAppUpdate(app, app), "a resync")
	assert.Equal(t, priorityResync, priorityOfAppUpdate(app, statusWritten), "a status write")
	assert.Equal(t, priorityChange, priorityOfAppUpdate(statusWritten, specChanged), "a change of the spec")
}

// TestAStatusWriteOfAFailingAppWaitsForItsRetry: an App whose sync failed is retried with backoff. A change of
// the App that is not of its spec (berth's own status write, coming back through the watch) must not bring it
// back before that retry; a change of its spec does.
func TestAStatusWriteOfAFailingAppWaitsForItsRetry(t *testing.T) {
	web := plantest.NewApp()
	web.Generation = 1
	other := plantest.NewApp(func(a *berthv1alpha1.App) { a.Name = "other" })
	other.Generation = 1
	f := newFixtureWithOptions(t, Options{BackoffBase: time.Hour, BackoffMax: time.Hour}, web, other)
	f.kubeClient.PrependReactor("create", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName() != "web" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewInternalError(errors.New("etcd is down"))
	})
	f.startInformers()
	q := f.controller.queue
	require.Eventually(t, func() bool { return q.Len() == 2 }, 5*time.Second, time.Millisecond, "the initial list")
	for q.Len() > 0 {
		require.True(t, f.controller.processNextWorkItem(f.ctx, nil))
	}
	require.Equal(t, 1, q.NumRequeues(webKey), "web failed, and is retried in an hour")

	statusWritten := web.DeepCopy()
	statusWritten.Status.Ready = "0/1"
	_, err := f.berthClient.BerthV1alpha1().Apps("shop").UpdateStatus(f.ctx, statusWritten, metav1.UpdateOptions{})
	require.NoError(t, err)
	// A change of another App's spec, after it: the informer hands its events over in order, so once that App
	// is queued, web's status write has been handled too.
	changed := other.DeepCopy()
	changed.Generation = 2
	_, err = f.berthClient.BerthV1alpha1().Apps("shop").Update(f.ctx, changed, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return q.Len() >= 1 }, 5*time.Second, time.Millisecond)

	assert.Equal(t, []cache.ObjectName{cache.NewObjectName("shop", "other")}, f.queued(),
		"web waits for its retry")

	specChanged := statusWritten.DeepCopy()
	specChanged.Generation = 2
	_, err = f.berthClient.BerthV1alpha1().Apps("shop").Update(f.ctx, specChanged, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return q.Len() == 1 }, 5*time.Second, time.Millisecond,
		"a change of web's spec is synced at once")
}

// TestWaitingForTheCacheKeepsTheBackoff: the sync of a failing App finds that the cache has not seen berth's last
// status write yet, and waits for it. The key must keep its backoff: a wait is not a success.
func TestWaitingForTheCacheKeepsTheBackoff(t *testing.T) {
	app := plantest.NewApp()
	app.ResourceVersion = "5"
	f := newFixture(t, app)
	stop := failCreates(f, apierrors.NewInternalError(errors.New("etcd is down")))
	q := f.controller.queue
	q.Add(webKey)
	for range 3 {
		require.True(t, f.controller.processNextWorkItem(f.ctx, nil))
	}
	require.Equal(t, 3, q.NumRequeues(webKey))
	stop()
	// berth wrote the App's status (version 6); the cache still shows version 5.
	f.controller.expectations.wrote("apps", webKey, "6")
	f.kubeClient.ClearActions()
	f.berthClient.ClearActions()

	require.True(t, f.controller.processNextWorkItem(f.ctx, nil), "the key came back after its backoff")

	assert.Empty(t, f.writes(), "the sync waited for the cache")
	assert.False(t, f.controller.expectations.caughtUp("apps", webKey, true, "5"), "and is still waiting")
	assert.Equal(t, 3, q.NumRequeues(webKey), "a wait for the cache keeps the backoff")
	assert.Eventually(t, func() bool { return q.Len() == 1 }, 5*time.Second, 10*time.Millisecond,
		"the key comes back after a second, in case the cache's event is lost")
}
