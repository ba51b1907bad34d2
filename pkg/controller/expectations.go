package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// expectations remember what berth wrote, so that a sync does not act on a cache that has not yet seen berth's
// own last write. Without them, the sync that the write itself triggers (the App's status changes, the Deployment
// is created) may read the old version from the cache and act on it: create the Deployment a second time (and
// fail with AlreadyExists), or write the status again with a new lastTransitionTime.
//
// For each object berth wrote, they hold the resourceVersion berth's write produced: until the cache shows that
// version or a later one, it is behind. Versions are compared as numbers (resourceversion.CompareResourceVersion),
// so that a version someone else wrote before berth's write, which reaches the cache first, is not taken for
// berth's. For an object berth deleted, they hold the version it deleted: the cache is behind while it shows
// that version or an earlier one. When the cache sees an object deleted after berth's write, the expectation is
// met: nothing later of that object can come. An expectation that the cache does not meet within expectationTTL
// is dropped, so that a lost watch event cannot stall an App for good.
type expectations struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	pending map[expectationKey]*expectation
	// gone remembers, for expectationTTL, the deletions of berth's objects that the cache has seen. The event of
	// a deletion can reach the cache before berth records the write the deletion followed (a create answered
	// late); without this, the expectation of that write would wait for an object that is gone.
	gone      map[expectationKey]deletion
	lastPrune time.Time
}

// deletion is the deletion of an object, as the cache saw it.
type deletion struct {
	version string // the object's last resourceVersion; "" when the cache learned of it by a relist
	seen    time.Time
}

// expectationTTL bounds how long a sync waits for the cache to show berth's last write.
const expectationTTL = time.Minute

type expectationKey struct {
	resource string // "apps", "deployments", "services"
	name     cache.ObjectName
}

type expectation struct {
	// version is the resourceVersion of berth's last write of the object, or the one it deleted.
	version string
	// deleted tells that berth's last write deleted the object: the cache must show it gone, or a later version.
	deleted bool
	since   time.Time
}

func newExpectations(clock clock.PassiveClock) *expectations {
	return &expectations{clock: clock, pending: map[expectationKey]*expectation{}, gone: map[expectationKey]deletion{}}
}

// wrote records that berth created, patched or applied an object and got version: until the cache shows that
// version or a later one, it is behind. Successive writes chain: after a create, a patch and an apply, the
// cache must show the apply.
func (e *expectations) wrote(resource string, name cache.ObjectName, version string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending[expectationKey{resource, name}] = &expectation{version: version, since: e.clock.Now()}
}

// deleted records that berth deleted an object of which the cache showed version: until the cache shows it gone
// (or a later version of it, a new object of the same name), it is behind.
func (e *expectations) deleted(resource string, name cache.ObjectName, version string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending[expectationKey{resource, name}] = &expectation{version: version, deleted: true, since: e.clock.Now()}
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
	if !exp.met(exists, version, e.gone[key]) && e.clock.Since(exp.since) < expectationTTL {
		return false
	}
	delete(e.pending, key)
	return true
}

// met tells whether a cache that shows the object (or not) at version, and that saw the object's deletion gone
// (if any), has seen the write exp waits for.
func (exp *expectation) met(exists bool, version string, gone deletion) bool {
	switch {
	case exp.deleted && !exists:
		return true
	case exp.deleted:
		return compareVersions(version, exp.version) > 0
	case !exists:
		// Written and not yet in the cache, unless it was deleted after berth's write. A deletion learned by a
		// relist has no version: the relist came after the write, or it would have listed the object.
		return !gone.seen.IsZero() && (gone.version == "" || compareVersions(gone.version, exp.version) >= 0)
	default:
		return compareVersions(version, exp.version) >= 0
	}
}

// compareVersions compares two resourceVersions as numbers. Versions that are not numbers (fake clients leave
// them empty) cannot be ordered: they count as equal, so that the object's presence alone decides.
func compareVersions(a, b string) int {
	c, err := resourceversion.CompareResourceVersion(a, b)
	if err != nil {
		return 0
	}
	return c
}

// observeDeletion is told of the deletion of one of berth's objects as the cache sees it, with the last version
// the cache knew of it (final), or with none when the cache learned of it by a relist. A sync that waits for the
// cache to show berth's write of that object then stops waiting if the deletion came after the write (see met);
// the deletion of an older object of the same name, which the cache may report after berth created a new one,
// does not end the wait.
func (e *expectations) observeDeletion(resource string, name cache.ObjectName, version string, final bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	if now.Sub(e.lastPrune) >= expectationTTL {
		for key, d := range e.gone {
			if now.Sub(d.seen) >= expectationTTL {
				delete(e.gone, key)
			}
		}
		e.lastPrune = now
	}
	if !final {
		version = ""
	}
	e.gone[expectationKey{resource, name}] = deletion{version: version, seen: now}
}

// forget drops what is remembered of an App's objects, when the App is gone.
func (e *expectations) forget(name cache.ObjectName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, resource := range []string{"apps", "deployments", "services"} {
		delete(e.pending, expectationKey{resource, name})
		delete(e.gone, expectationKey{resource, name})
	}
}
