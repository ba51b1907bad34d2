package controller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Each set of informers (one namespace of a list, or all namespaces) syncs on its own: the Apps of a namespace
// are synced once the caches of that namespace have synced, whatever the other namespaces do. A namespace berth
// cannot list (its RoleBinding missing, the namespace deleted, a typo in --namespace) holds up its own Apps
// alone; it is reported (a log line, berth_namespace_synced, and readiness that names it), and its Apps are
// synced once the informers list it, which they try again and again with backoff: no restart is needed.

// namespaceCaches is whether the caches of one set of informers have synced, and if not, why not.
type namespaceCaches struct {
	// namespace is the set's namespace: metav1.NamespaceAll for the set of all namespaces.
	namespace string
	// synced are the HasSynced of the set's informers' handlers: true once the informer has listed, and the
	// handler has been handed every object of that list.
	synced []cache.InformerSynced
	// ready is set by Run once synced: the namespace's Apps may be synced.
	ready atomic.Bool

	mu      sync.Mutex
	lastErr error // the last error of a list or watch of one of the set's informers
}

// NamespaceNotSynced is a namespace whose caches have not synced, and the last error of its informers' lists
// and watches (nil when none failed: it has not listed yet).
type NamespaceNotSynced struct {
	Namespace string
	Err       error
}

// watchErrorHandler records the errors of an informer's list and watch, for the namespace's report, and logs
// them as client-go does. While the namespace has not synced, an error is why: it is logged with the namespace.
func (n *namespaceCaches) watchErrorHandler(resource string) cache.WatchErrorHandlerWithContext {
	return func(ctx context.Context, r *cache.Reflector, err error) {
		n.mu.Lock()
		n.lastErr = fmt.Errorf("%s: %w", resource, err)
		n.mu.Unlock()
		if !allSynced(n.synced) {
			klog.FromContext(ctx).Error(err, "Cannot list the namespace's objects: its Apps wait until berth can",
				"namespace", n.namespace, "resource", resource)
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	}
}

// HasSynced tells whether the caches of every namespace have synced, which readiness reports: a standby replica
// is ready to take over once they have. NotSynced says which have not.
func (c *Controller) HasSynced() bool {
	return len(c.NotSynced()) == 0
}

// NotSynced lists the namespaces whose caches have not synced, in the order of the sets of informers.
func (c *Controller) NotSynced() []NamespaceNotSynced {
	var waiting []NamespaceNotSynced
	for _, n := range c.namespaces {
		if allSynced(n.synced) {
			continue
		}
		n.mu.Lock()
		waiting = append(waiting, NamespaceNotSynced{Namespace: n.namespace, Err: n.lastErr})
		n.mu.Unlock()
	}
	return waiting
}

func allSynced(synced []cache.InformerSynced) bool {
	for _, s := range synced {
		if !s() {
			return false
		}
	}
	return true
}

// namespaceReady tells whether the caches of namespace's set have synced: until they have, what berth would read
// of an App of the namespace is incomplete.
func (c *Controller) namespaceReady(namespace string) bool {
	for _, n := range c.namespaces {
		if n.namespace == namespace || n.namespace == metav1.NamespaceAll {
			return n.ready.Load()
		}
	}
	return false
}

// waitForNamespace waits until the caches of n have synced, or ctx is done. Then the namespace is ready, and
// every App of it is queued: a worker may have taken and dropped their keys while it was not.
func (c *Controller) waitForNamespace(ctx context.Context, n *namespaceCaches) {
	logger := klog.FromContext(ctx)
	c.metrics.SetNamespaceSynced(n.namespace, false)
	if !cache.WaitForCacheSync(ctx.Done(), n.synced...) {
		return
	}
	n.ready.Store(true)
	c.metrics.SetNamespaceSynced(n.namespace, true)
	// Of all namespaces, for the set of all namespaces.
	apps, err := c.appLister.Apps(n.namespace).List(labels.Everything())
	if err != nil {
		logger.Error(err, "Listing the Apps of a namespace from the cache", "namespace", n.namespace)
		return
	}
	logger.Info("Caches synced", "namespace", n.namespace, "apps", len(apps))
	for _, app := range apps {
		c.enqueue(cache.MetaObjectToName(app), priorityResync)
	}
}
