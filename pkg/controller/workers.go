package controller

// The workers: how keys are taken from the queue and synced, retried by the class of their error, and how the
// workers stop, gracefully (a drain) or at once (a lost Lease).

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Run runs workers until stop is closed. Then it stops taking keys, lets the syncs under way finish (for at most
// the drain timeout, after which they are cancelled), and returns once every worker has returned: a graceful
// shutdown. The workers sync the Apps of a namespace once its caches have synced (synced.go), each namespace on
// its own.
//
// Syncs run under ctx. When ctx is done instead, Run cancels the syncs under way at once and returns without a
// drain: a leader that lost its Lease must not write a moment longer, since another replica may lead already.
func (c *Controller) Run(ctx context.Context, stop <-chan struct{}, workers int) error {
	logger := klog.FromContext(ctx)
	// Syncs get a context of their own, so that a graceful shutdown lets them finish their writes instead of
	// breaking them off half-way; the drain timeout, or ctx, cancels it.
	syncCtx, cancelSync := context.WithCancel(ctx)
	defer cancelSync()

	// The waits for the namespaces' caches end with a shutdown, or when Run returns.
	waitCtx, cancelWait := context.WithCancel(syncCtx)
	var waits sync.WaitGroup
	defer func() {
		cancelWait()
		waits.Wait()
	}()
	go func() {
		select {
		case <-stop:
			cancelWait()
		case <-waitCtx.Done():
		}
	}()
	for _, n := range c.namespaces {
		waits.Go(func() { c.waitForNamespace(waitCtx, n) })
	}

	logger.Info("Starting workers", "count", workers)
	c.running.Store(true)
	defer c.running.Store(false)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c.processNextWorkItem(syncCtx, stop) {
			}
		})
	}

	select {
	case <-stop:
		logger.Info("Shutting down: draining the syncs under way", "timeout", c.drainTimeout)
		drained := make(chan struct{})
		go func() {
			c.queue.ShutDownWithDrain()
			close(drained)
		}()
		select {
		case <-drained:
		case <-syncCtx.Done():
			logger.Info("Told to stop at once while draining: the syncs under way are cancelled")
			<-drained
		case <-time.After(c.drainTimeout):
			logger.Info("Drain timed out: cancelling the syncs under way")
			cancelSync()
			<-drained
		}
		// ShutDownWithDrain leaves the goroutine of the queue's delays running.
		c.queue.ShutDown()
	case <-ctx.Done():
		logger.Info("Told to stop at once: cancelling the syncs under way, without a drain")
		c.queue.ShutDown()
	}
	wg.Wait()
	logger.Info("All workers stopped")
	return nil
}

// Running tells whether the workers run: in the replica that leads, or in a replica without leader election,
// from the moment the caches have synced until Run returns.
func (c *Controller) Running() bool {
	return c.running.Load()
}

// processNextWorkItem syncs one key under ctx and decides, by the class of its error, whether and when it comes
// back. It returns false when the worker should stop: the queue is shut down, stop is closed or ctx is done.
func (c *Controller) processNextWorkItem(ctx context.Context, stop <-chan struct{}) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	select {
	case <-stop:
		// Shutting down: leave the keys still queued to the next run (or leader), which syncs every App.
		return false
	default:
	}
	if ctx.Err() != nil {
		return false
	}

	if !c.namespaceReady(key.Namespace) {
		// What berth would read of the App is incomplete. Every App of the namespace is queued again once its
		// caches have synced (waitForNamespace).
		c.queue.Forget(key)
		return true
	}

	logger := klog.FromContext(ctx).WithValues("key", key)
	ctx = klog.NewContext(ctx, logger)
	start := time.Now()
	err := c.syncWithRecover(ctx, key)
	c.handleResult(logger, key, err, time.Since(start))
	return true
}

// handleResult applies the retry policy for one error class.
func (c *Controller) handleResult(logger klog.Logger, key cache.ObjectName, err error, took time.Duration) {
	switch {
	case err == nil:
		c.metrics.ObserveReconcile(ResultSuccess, took)
		c.queue.Forget(key)
	case errors.Is(err, errCacheBehind):
		// The event of berth's own write is on its way and brings the key back; the delay is a fallback, should
		// that event be lost. Not a success: forgetting the key would reset its backoff, and a failing App would
		// be retried at its first pace again after each of its status writes.
		logger.V(4).Info("Waiting for the cache to show berth's last write", "requeues", c.queue.NumRequeues(key))
		c.metrics.ObserveReconcile(ResultSuccess, took)
		c.queue.AddAfter(key, time.Second)
	case apierrors.IsConflict(err) || errors.Is(err, errStaleCache):
		// Someone wrote the object between berth's read and its write, or the cache is behind; it will catch
		// up. Not a failure, but retried with backoff all the same: a conflict that repeats (an object deleted
		// under berth, until the cache sees it) must not spend the client's rate on retries.
		logger.V(4).Info("Conflict, retrying", "err", err, "requeues", c.queue.NumRequeues(key))
		c.metrics.ObserveReconcile(ResultConflict, took)
		c.queue.AddRateLimited(key)
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// The App's namespace is being deleted, and the App with it: nothing more to create there.
		logger.V(2).Info("Namespace is terminating; not retrying", "err", err)
		c.metrics.ObserveReconcile(ResultUnsatisfiable, took)
		c.queue.Forget(key)
	case errors.Is(err, errRefused):
		// A quota, a policy or validation refused a write; the App's status says why. What refused it may
		// change without the App (a quota is raised), so it is retried, with backoff.
		logger.Info("The API server refused a write; retrying with backoff", "err", err,
			"requeues", c.queue.NumRequeues(key))
		c.metrics.ObserveReconcile(ResultRefused, took)
		c.queue.AddRateLimited(key)
	case errors.Is(err, errUnsatisfiable):
		// The App's status says why. A change of the App brings the key back, but the object in its way is not
		// berth's, so not in berth's caches, and nothing tells of its change or deletion: the key is checked
		// again with backoff, at most --backoff-max apart.
		logger.V(2).Info("App cannot be satisfied; checking again with backoff", "reason", err,
			"requeues", c.queue.NumRequeues(key))
		c.metrics.ObserveReconcile(ResultUnsatisfiable, took)
		c.queue.AddRateLimited(key)
	default:
		logger.Error(err, "Sync failed, retrying with backoff", "requeues", c.queue.NumRequeues(key))
		c.metrics.ObserveReconcile(ResultError, took)
		c.queue.AddRateLimited(key)
	}
}

// errPanic marks a sync that panicked.
var errPanic = errors.New("sync panicked")

// syncWithRecover turns a panic in one sync into an error for that key, so that one bad App cannot stop the
// controller, and the key is retried with backoff.
func (c *Controller) syncWithRecover(ctx context.Context, key cache.ObjectName) (err error) {
	defer func() {
		if r := recover(); r != nil {
			klog.FromContext(ctx).Error(nil, "Recovered from a panic in sync", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return c.syncHandler(ctx, key)
}
