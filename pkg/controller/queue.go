package controller

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// New Apps first: the queue's storage serves the keys of real changes before the keys that only the informers'
// initial list or a resync brought. On a start, or after a leader handover, with 10,000 Apps, the initial list
// queues every one of them; without priorities, an App a user creates then waits behind all of them.
//
// client-go's workqueue keeps its own bookkeeping (a key is queued at most once, never synced by two workers at
// a time, retried with backoff) and lets the order of its keys be chosen by a Queue of one's own: that is
// priorityQueue. Every add of a key carries its priority (priorityQueue.add), and the adds are made one at a
// time, so that the Push or Touch an add causes takes the priority of that very add; a key added again with a
// higher priority while it waits moves up. Keys that come back from the workqueue's own delay (a retry) have the
// priority of a real change. A change of an owned object waits out its delay apart (priorityQueue.addAfter), and
// is added with its priority only then.

// newQueue builds berth's workqueue, named QueueName for its metrics, on priorities, with limiter's retry policy.
func newQueue(priorities *priorityQueue,
	limiter workqueue.TypedRateLimiter[cache.ObjectName]) workqueue.TypedRateLimitingInterface[cache.ObjectName] {
	queue := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[cache.ObjectName]{
		Name:  QueueName,
		Queue: priorities,
	})
	priorities.queue = queue
	delaying := workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[cache.ObjectName]{
		Name:  QueueName,
		Queue: addsAsChanges{TypedInterface: queue, priorities: priorities},
	})
	return workqueue.NewTypedRateLimitingQueueWithConfig(limiter,
		workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: QueueName, DelayingQueue: delaying})
}

// addsAsChanges is the workqueue as its delaying and rate-limiting layers see it: their adds say no priority (a
// retry whose delay is over), and are changes. Made one at a time with the others, such an add cannot take the
// priority that another add recorded.
type addsAsChanges struct {
	workqueue.TypedInterface[cache.ObjectName]
	priorities *priorityQueue
}

func (a addsAsChanges) Add(key cache.ObjectName) {
	a.priorities.add(key, priorityChange)
}

// priority is the priority of a key in the queue.
type priority int

const (
	// priorityChange is that of a key whose App changed, or an object the App owns was created or deleted.
	priorityChange priority = iota
	// priorityOwnedChange is that of a key one of whose objects was added or changed (a Deployment's status, a
	// Pod): the key is added after a delay (Options.OwnedChangeDelay), and then behind the changes, with the
	// resyncs.
	// What the cluster did with an App waits for what users asked of theirs: on a start with thousands of
	// Apps, the status of an App created first is written again once the others are created, not in between
	// (when its Pods are likely to run, and one write says so).
	priorityOwnedChange
	// priorityResync is that of a key from an informer's initial list or a periodic resync: nothing is known
	// to have changed, and it is served after every change.
	priorityResync
)

// priorityQueue is the storage of berth's workqueue: two FIFOs, changes before resyncs. It implements
// workqueue.Queue; the workqueue calls Push, Touch, Len and Pop under its own lock, and the controller adds keys
// through add and addAfter, from the informers' goroutines.
type priorityQueue struct {
	// queue is the workqueue that this is the storage of.
	queue workqueue.TypedInterface[cache.ObjectName]
	// adding makes the adds one at a time: each records its priority, then adds.
	adding sync.Mutex

	mu sync.Mutex
	// requested is the priority of the adds of a key that the workqueue has not pushed or touched yet (a key
	// under way is pushed when it is done); the highest one wins.
	requested map[cache.ObjectName]priority
	// delayed holds the keys that addAfter will add, with their priority.
	delayed map[cache.ObjectName]priority
	changes []cache.ObjectName
	// resyncs may hold places that keys left when they moved up to changes: a place counts only while
	// queuedAsResync holds its key with the place's number.
	resyncs        []resyncPlace
	queuedAsResync map[cache.ObjectName]uint64
	lastPlace      uint64
}

// resyncPlace is a key's place in the FIFO of resyncs.
type resyncPlace struct {
	key    cache.ObjectName
	number uint64
}

var _ workqueue.Queue[cache.ObjectName] = &priorityQueue{}

func newPriorityQueue() *priorityQueue {
	return &priorityQueue{
		requested:      map[cache.ObjectName]priority{},
		delayed:        map[cache.ObjectName]priority{},
		queuedAsResync: map[cache.ObjectName]uint64{},
	}
}

// add adds key to the workqueue with priority p.
func (q *priorityQueue) add(key cache.ObjectName, p priority) {
	q.adding.Lock()
	defer q.adding.Unlock()
	q.request(key, p)
	q.queue.Add(key)
}

// addAfter adds key with priority p once delay has passed. A key that waits already is not added twice: the add
// under way takes the higher priority of the two. The workqueue's own AddAfter cannot be used: it adds without a
// priority, and a priority recorded now would be taken by another add of the key in between.
func (q *priorityQueue) addAfter(key cache.ObjectName, p priority, delay time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if earlier, waiting := q.delayed[key]; waiting {
		q.delayed[key] = min(earlier, p)
		return
	}
	q.delayed[key] = p
	time.AfterFunc(delay, func() {
		q.mu.Lock()
		p := q.delayed[key]
		delete(q.delayed, key)
		q.mu.Unlock()
		q.add(key, p)
	})
}

// request records the priority of the add of key that follows. The caller holds q.adding.
func (q *priorityQueue) request(key cache.ObjectName, p priority) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if earlier, ok := q.requested[key]; !ok || p < earlier {
		q.requested[key] = p
	}
}

// takeRequested returns, and forgets, the priority requested for key. The caller holds q.mu.
func (q *priorityQueue) takeRequested(key cache.ObjectName) priority {
	p, ok := q.requested[key]
	if !ok {
		return priorityChange
	}
	delete(q.requested, key)
	return p
}

// Push adds a key that is not queued yet.
func (q *priorityQueue) Push(key cache.ObjectName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.takeRequested(key) == priorityResync {
		q.lastPlace++
		q.resyncs = append(q.resyncs, resyncPlace{key: key, number: q.lastPlace})
		q.queuedAsResync[key] = q.lastPlace
		return
	}
	q.changes = append(q.changes, key)
}

// Touch is an add of a key that is queued already: a change moves a key queued as a resync up.
func (q *priorityQueue) Touch(key cache.ObjectName) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.takeRequested(key)
	if _, queuedAsResync := q.queuedAsResync[key]; queuedAsResync && p == priorityChange {
		delete(q.queuedAsResync, key)
		q.changes = append(q.changes, key)
	}
}

// Len is the number of keys queued.
func (q *priorityQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.changes) + len(q.queuedAsResync)
}

// Pop takes the oldest change, or else the oldest resync. The workqueue calls it only when Len is above 0.
func (q *priorityQueue) Pop() cache.ObjectName {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.changes) > 0 {
		return pop(&q.changes)
	}
	for {
		place := pop(&q.resyncs)
		if number, ok := q.queuedAsResync[place.key]; ok && number == place.number {
			delete(q.queuedAsResync, place.key)
			return place.key
		}
	}
}

func pop[T any](fifo *[]T) T {
	item := (*fifo)[0]
	// Clear the slot: the backing array outlives the slice's start.
	var zero T
	(*fifo)[0] = zero
	*fifo = (*fifo)[1:]
	return item
}
