package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	berthlisters "github.com/berthdev/berth/pkg/generated/listers/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/metrics"
	"github.com/berthdev/berth/pkg/shard"
	"github.com/berthdev/berth/pkg/version"
)

// runSharded runs this replica as a member that shares the Apps with the others (--sharding), and, while it
// holds the leader-election Lease, as the assigner of the buckets to the members. Each member syncs the Apps of
// its buckets, with informers that select them and their objects alone.
func runSharded(ctx context.Context, opts options, config *rest.Config, identity string,
	berthClient versioned.Interface, namespaces []string, shardMetrics *metrics.Shard,
	build func(*shard.Set, bool) (controller.Informers, *controller.Controller, error)) error {
	logger := klog.FromContext(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	leaderClient, err := newLeaderElectionClient(config)
	if err != nil {
		return err
	}
	lease, err := newLeaseWatch(leaderClient, opts, identity)
	if err != nil {
		return err
	}
	leases := newShardLeases(leaderClient, opts.leaderElectionNamespace, opts.leaderElectionID)
	leaseClient := leaderClient.CoordinationV1().Leases(opts.leaderElectionNamespace)

	current := &currentWork{}
	newWork := func(buckets shard.Set) (work, error) {
		serverShards, err := askServerShards(ctx, opts, berthClient, namespaces)
		if err != nil {
			return nil, err
		}
		informers, ctrl, err := build(&buckets, serverShards)
		if err != nil {
			return nil, err
		}
		w := &bucketWork{informers: informers, ctrl: ctrl, workers: opts.workers, current: current}
		current.set(w)
		return w, nil
	}
	metrics.NewAppConditions(current, opts.metricsPerApp, current.running, legacyregistry.CustomMustRegister)
	m, err := newMember(identity, leaseClient, leases, opts, newWork, shardMetrics.SetBuckets)
	if err != nil {
		return err
	}
	// The assigner's label writes tell themselves apart from the member's syncs in the API server's audit log.
	assignerConfig := rest.CopyConfig(config)
	assignerConfig.UserAgent += "/assigner"
	assignerClient, err := metadata.NewForConfig(assignerConfig)
	if err != nil {
		return fmt.Errorf("creating the assigner's metadata client: %w", err)
	}
	labeler, err := newLabeler(assignerClient, namespaces, opts.backoffBase, opts.backoffMax)
	if err != nil {
		return err
	}
	assign, err := newAssigner(leaseClient, leases, opts, labeler,
		assignerMetrics{setMembers: shardMetrics.SetMembers, setUnassigned: shardMetrics.SetUnassigned})
	if err != nil {
		return err
	}

	watchdog := leaderelection.NewLeaderHealthzAdaptor(opts.renewDeadline)
	health := &leaderHealth{}
	ready := func() error {
		if !lease.hasSynced() || !leases.hasSynced() {
			return errors.New("the watch of the Leases has not synced yet")
		}
		return current.notSynced()
	}
	stopServers, err := startServers(ctx, opts, ready, watchdog, health)
	if err != nil {
		return err
	}
	defer stopServers()
	leasesCtx, stopLeases := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLeases()
	leases.start(leasesCtx)

	info := version.Get()
	logger.Info("Starting berth as a member of a shared set", "version", info.Version, "commit", info.Commit,
		"namespace", opts.namespace, "workers", opts.workers, "identity", identity, "host", config.Host)
	var wg sync.WaitGroup
	memberErr := make(chan error, 1)
	wg.Go(func() {
		err := m.run(ctx)
		memberErr <- err
		if err != nil {
			cancel() // a member that lost its Lease ends the process, its assigner too
		}
	})
	leaderErr := runAsLeader(ctx, opts, leaderClient, lease, health, watchdog, assign.run)
	cancel()
	wg.Wait()
	return errors.Join(<-memberErr, leaderErr)
}

// askServerShards decides how the member selects the Apps of its buckets: by the API server's shard selector
// when the server applies it, or by their bucket label. With --shard-selector=auto it asks the server each time
// the member's buckets change (controller.ServerFiltersShards); a server that cannot tell yet (no App exists)
// gets the label, and so does a question that fails. Either way, the member's syncs leave alone any App of
// another bucket that the informers send.
func askServerShards(ctx context.Context, opts options, client versioned.Interface, namespaces []string) (bool, error) {
	switch opts.shardSelector {
	case shardSelectorLabel:
		return false, nil
	case shardSelectorServer:
		return true, nil
	}
	namespace := ""
	if len(namespaces) > 0 {
		namespace = namespaces[0]
	}
	logger := klog.FromContext(ctx)
	// Bounded: the member applies no table while it waits, and renews its Lease all the same.
	askCtx, cancel := context.WithTimeout(ctx, opts.renewDeadline)
	defer cancel()
	filters, known, err := controller.ServerFiltersShards(askCtx, client, namespace)
	if err != nil {
		// The label works on any API server: the question is asked again at the next change of buckets.
		logger.Info("Cannot ask the API server whether it applies shard selectors: the member's Apps are "+
			"selected by their bucket label", "err", err)
		return false, nil
	}
	switch {
	case filters:
		logger.Info("The API server applies shard selectors: the member's Apps are selected by the hash of their UID")
	case known:
		logger.Info("The API server ignores shard selectors (its feature gate ShardedListAndWatch is off): the " +
			"member's Apps are selected by their bucket label")
	default:
		logger.Info("No App tells yet whether the API server applies shard selectors: the member's Apps are " +
			"selected by their bucket label")
	}
	return filters, nil
}

// bucketWork is the work of a member's buckets: its informers and a controller over them.
type bucketWork struct {
	informers controller.Informers
	ctrl      *controller.Controller
	workers   int
	current   *currentWork
}

func (w *bucketWork) run(ctx context.Context, stop <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	w.informers.Start(ctx)
	defer func() {
		cancel()
		w.informers.Shutdown()
		w.current.clear(w)
	}()
	return w.ctrl.Run(ctx, stop, w.workers)
}

// currentWork is the member's work of the moment, for what asks of it from outside the member: the probes and
// the metrics of the Apps. It reads as an App lister of the work's Apps (none between two works).
type currentWork struct {
	mu sync.Mutex
	w  *bucketWork
}

func (c *currentWork) set(w *bucketWork) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w = w
}

// clear forgets w if it is still the current work.
func (c *currentWork) clear(w *bucketWork) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w == w {
		c.w = nil
	}
}

func (c *currentWork) get() *bucketWork {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w
}

func (c *currentWork) running() bool {
	w := c.get()
	return w != nil && w.ctrl.Running()
}

func (c *currentWork) notSynced() error {
	if w := c.get(); w != nil {
		return cachesNotSynced(w.ctrl.NotSynced())
	}
	return nil
}

// List lists the current work's Apps.
func (c *currentWork) List(selector labels.Selector) ([]*berthv1alpha1.App, error) {
	if w := c.get(); w != nil {
		return w.informers.AppLister().List(selector)
	}
	return nil, nil
}

// Apps lists and gets the current work's Apps of namespace.
func (c *currentWork) Apps(namespace string) berthlisters.AppNamespaceLister {
	if w := c.get(); w != nil {
		return w.informers.AppLister().Apps(namespace)
	}
	return berthlisters.NewAppLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})).Apps(namespace)
}

var _ berthlisters.AppLister = &currentWork{}

var errNoSharding = errors.New("--sharding needs --leader-elect")
