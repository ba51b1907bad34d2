package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

func newTestQueue(t *testing.T) (*Controller, func() []cache.ObjectName) {
	priorities := newPriorityQueue()
	c := &Controller{
		priorities: priorities,
		queue:      newQueue(priorities, NewRateLimiter(time.Millisecond, time.Millisecond, 100, 100)),
	}
	t.Cleanup(c.queue.ShutDown)
	// drain takes every key queued now, in the order workers would get them.
	drain := func() []cache.ObjectName {
		var got []cache.ObjectName
		for c.queue.Len() > 0 {
			key, _ := c.queue.Get()
			c.queue.Done(key)
			got = append(got, key)
		}
		return got
	}
	return c, drain
}

func key(name string) cache.ObjectName { return cache.NewObjectName("shop", name) }

func TestChangesAreServedBeforeResyncs(t *testing.T) {
	c, drain := newTestQueue(t)
	for _, name := range []string{"a", "b", "c"} {
		c.enqueue(key(name), priorityResync)
	}
	c.enqueue(key("new"), priorityChange)
	c.enqueue(key("d"), priorityResync)
	c.enqueue(key("changed"), priorityChange)

	assert.Equal(t, []cache.ObjectName{key("new"), key("changed"), key("a"), key("b"), key("c"), key("d")}, drain())
}

func TestAChangeMovesAQueuedResyncUp(t *testing.T) {
	c, drain := newTestQueue(t)
	c.enqueue(key("a"), priorityResync)
	c.enqueue(key("b"), priorityResync)
	c.enqueue(key("b"), priorityChange)
	c.enqueue(key("a"), priorityResync)

	assert.Equal(t, []cache.ObjectName{key("b"), key("a")}, drain(), "b moved up, and is served once")
	assert.Equal(t, 0, c.priorities.Len())

	// b queued as a resync again, after its move: the stale place it left behind does not serve it twice.
	c.enqueue(key("c"), priorityResync)
	c.enqueue(key("b"), priorityResync)
	assert.Equal(t, []cache.ObjectName{key("c"), key("b")}, drain())
}

func TestAResyncDoesNotMoveAQueuedChangeDown(t *testing.T) {
	c, drain := newTestQueue(t)
	c.enqueue(key("a"), priorityResync)
	c.enqueue(key("b"), priorityChange)
	c.enqueue(key("b"), priorityResync)

	assert.Equal(t, []cache.ObjectName{key("b"), key("a")}, drain())
}

func TestAKeyAddedWhileSyncedKeepsTheHighestPriority(t *testing.T) {
	c, drain := newTestQueue(t)
	c.enqueue(key("a"), priorityResync)
	c.enqueue(key("b"), priorityResync)
	syncing, _ := c.queue.Get() // a
	// While a syncs, it is added again, first as a resync and then as a change: it comes back as a change.
	c.enqueue(syncing, priorityResync)
	c.enqueue(syncing, priorityChange)
	c.queue.Done(syncing)

	assert.Equal(t, []cache.ObjectName{key("a"), key("b")}, drain())
}

func TestRetriesComeBackAsChanges(t *testing.T) {
	c, drain := newTestQueue(t)
	c.enqueue(key("a"), priorityResync)
	c.queue.AddRateLimited(key("retried"))
	assert.Eventually(t, func() bool { return c.queue.Len() == 2 }, 5*time.Second, time.Millisecond)

	assert.Equal(t, []cache.ObjectName{key("retried"), key("a")}, drain())
}

func TestRequestedPrioritiesAreNotKept(t *testing.T) {
	c, drain := newTestQueue(t)
	c.enqueue(key("a"), priorityChange)
	c.enqueue(key("a"), priorityResync)
	c.enqueue(key("b"), priorityResync)
	c.enqueue(key("b"), priorityChange)
	drain()
	assert.Empty(t, c.priorities.requested, "every request was taken by a push or a touch")
}

func TestAChangeOfAnOwnedObjectIsSyncedAfterADelayBehindChanges(t *testing.T) {
	c, drain := newTestQueue(t)
	c.ownedChangeDelay = 200 * time.Millisecond
	c.enqueue(key("a"), priorityOwnedChange)
	c.enqueue(key("a"), priorityOwnedChange)
	assert.Equal(t, 0, c.queue.Len(), "not at once")
	assert.Eventually(t, func() bool { return c.queue.Len() == 1 }, 5*time.Second, 10*time.Millisecond)
	c.enqueue(key("b"), priorityResync)
	c.enqueue(key("c"), priorityChange)
	assert.Equal(t, []cache.ObjectName{key("c"), key("a"), key("b")}, drain(), "once, behind the change")
}

// TestADelayedOwnedChangeKeepsItsPriority: a change of an owned object enters the queue after a delay, behind the
// changes. Another add of the same key in between (served at once) must not take that priority away from it:
// the delayed add still comes behind the changes and the resyncs queued before it.
func TestADelayedOwnedChangeKeepsItsPriority(t *testing.T) {
	for _, between := range []priority{priorityChange, priorityResync} {
		c, drain := newTestQueue(t)
		c.ownedChangeDelay = 200 * time.Millisecond
		c.enqueue(key("a"), priorityOwnedChange)
		c.enqueue(key("a"), between)
		require.Equal(t, []cache.ObjectName{key("a")}, drain(), "the add in between is served at once")

		c.enqueue(key("resynced"), priorityResync)
		require.Eventually(t, func() bool { return c.queue.Len() == 2 }, 5*time.Second, 10*time.Millisecond,
			"the delayed add of a arrives")
		c.enqueue(key("changed"), priorityChange)

		assert.Equal(t, []cache.ObjectName{key("changed"), key("resynced"), key("a")}, drain(),
			"with priority %d in between, the delayed add of a comes last", between)
	}
}

// TestARetryOfAKeyUnderWayComesBackAsAChange: a key that is synced is added again as a resync, and its sync fails.
// The retry, whose delay ends while the key is still under way, is a change: the key comes back before the
// resyncs, not with the priority of the resync.
func TestARetryOfAKeyUnderWayComesBackAsAChange(t *testing.T) {
	c, drain := newTestQueue(t)
	c.enqueue(key("a"), priorityChange)
	syncing, _ := c.queue.Get()
	c.enqueue(key("resynced"), priorityResync)
	c.enqueue(syncing, priorityResync)
	c.queue.AddRateLimited(syncing)
	assert.Eventually(t, func() bool {
		c.priorities.mu.Lock()
		defer c.priorities.mu.Unlock()
		return c.priorities.requested[syncing] == priorityChange
	}, 5*time.Second, time.Millisecond, "the retry's delay is over, and it asked for a change")
	c.queue.Done(syncing)

	assert.Equal(t, []cache.ObjectName{key("a"), key("resynced")}, drain())
}

// TestAnAppCreatedAtTheStartIsSyncedBeforeTheInitialList: on a start, the informers' initial list queues every
// App there is; an App a user creates then is news, and is synced first, not behind all of them.
func TestAnAppCreatedAtTheStartIsSyncedBeforeTheInitialList(t *testing.T) {
	named := func(name string) *berthv1alpha1.App {
		return plantest.NewApp(func(a *berthv1alpha1.App) { a.Name, a.UID = name, types.UID("uid-"+name) })
	}
	f := newNamespacesFixture(t, []string{"shop"}, named("listed-1"), named("listed-2"), named("listed-3"))
	f.start(t)
	require.True(t, cache.WaitForCacheSync(f.ctx.Done(), f.controller.HasSynced))
	require.Equal(t, 3, f.controller.queue.Len(), "the initial list queued every App")

	_, err := f.berthClient.BerthV1alpha1().Apps("shop").Create(f.ctx, named("created"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.controller.queue.Len() == 4 }, 5*time.Second, time.Millisecond,
		"the created App is queued")
	var order []string
	for f.controller.queue.Len() > 0 {
		key, _ := f.controller.queue.Get()
		f.controller.queue.Done(key)
		order = append(order, key.Name)
	}
	require.Len(t, order, 4)
	assert.Equal(t, "created", order[0], "the created App first: %v", order)
	assert.ElementsMatch(t, []string{"listed-1", "listed-2", "listed-3"}, order[1:])
}
