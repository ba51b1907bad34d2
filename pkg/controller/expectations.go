package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// expectations remember what berth wrote, so that a sync does not act on a cache that has not yet seen berth's
// own last write. Without them, the sync that the write itself triggers (the App's status changes, the Deployment
// is created) may read the old version from the cache and act on it: create the Deployment a second time (and
// fail with AlreadyExists), or write the status again with a new lastTransitionTime.
//
// For each object berth wrote, they hold the resourceVersions that berth knows to be outdated: the version it
// read before writing, and any it went through on the way (a create is followed by a patch and an apply). While
// the cache shows one of those, or does not show an object berth created, the cache is behind. Any other version,
// including one written by someone else since, means it has caught up. An expectation that the cache does not
// meet within expectationTTL is dropped, so that a lost watch event cannot stall an App for good.
type expectations struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	pending map[expectationKey]*expectation
}

// expectationTTL bounds how long a sync waits for the cache to show berth's last write.
const expectationTTL = time.Minute

type expectationKey struct {
	resource string // "apps", "deployments", "services"
	name     cache.ObjectName
}

type expectation struct {
	outdated  sets.Set[string] // resourceVersions the cache must move past
	mustExist bool             // berth created the object: the cache must show it
	since     time.Time
}

func newExpectations(clock clock.PassiveClock) *expectations {
	return &expectations{clock: clock, pending: map[expectationKey]*expectation{}}
}

// created records that berth created an object: until the cache shows it, the cache is behind.
func (e *expectations) created(resource string, name cache.ObjectName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expectLocked(resource, name).mustExist = true
}

// wrote records that berth wrote over version before of an object and got version after: until the cache shows
// another version than before, it is behind. Successive writes chain: after a create, a patch and an apply, the
// versions of the create and of the patch are both outdated. A write that changed nothing (the same version) is
// not recorded, since the cache will not move.
func (e *expectations) wrote(resource string, name cache.ObjectName, before, after string) {
	if before == after {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	exp := e.expectLocked(resource, name)
	exp.outdated.Insert(before)
	exp.outdated.Delete(after)
}

// deleted records that berth deleted an object of which the cache showed version: until the cache shows it gone
// (or another version of it), the cache is behind.
func (e *expectations) deleted(resource string, name cache.ObjectName, version string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp := e.expectLocked(resource, name)
	exp.mustExist = false
	exp.outdated.Insert(version)
}

// expectLocked returns the expectation of an object, new or renewed; e.mu must be held.
func (e *expectations) expectLocked(resource string, name cache.ObjectName) *expectation {
	key := expectationKey{resource, name}
	exp, ok := e.pending[key]
	if !ok {
		exp = &expectation{outdated: sets.New[string]()}
		e.pending[key] = exp
	}
	exp.since = e.clock.Now()
	return exp
}

// caughtUp tells whether the cache has seen berth's last write of an object, given what it shows now: whether
// the object exists there and at which version. Once it has, the expectation is forgotten.
func (e *expectations) caughtUp(resource string, name cache.ObjectName, exists bool, version string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := expectationKey{resource, name}
	exp, ok := e.pending[key]
	if !ok {
		return true
	}
	behind := (exp.mustExist && !exists) || (exists && exp.outdated.Has(version))
	if behind && e.clock.Since(exp.since) < expectationTTL {
		return false
	}
	delete(e.pending, key)
	return true
}

// forget drops what is remembered of an App's objects, when the App is gone.
func (e *expectations) forget(name cache.ObjectName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, resource := range []string{"apps", "deployments", "services"} {
		delete(e.pending, expectationKey{resource, name})
	}
}
