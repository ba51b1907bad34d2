// Package controller is berth's control loop: informers feed a rate-limited queue of App keys, and workers take
// keys from it and make the cluster match each App (see sync.go). What an App wants and what its
// status says are decided by pkg/plan, pure functions kept apart from the loop.
package controller

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	berthlisters "github.com/berthdev/berth/pkg/generated/listers/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/shard"
)

// QueueName names berth's workqueue in its metrics.
const QueueName = "app"

// Options tune the controller; the zero value of a field means its default.
type Options struct {
	// BackoffBase is the first retry delay of a key whose sync failed; it doubles with every further failure.
	BackoffBase time.Duration
	// BackoffMax caps the retry delay of one key.
	BackoffMax time.Duration
	// RetryQPS and RetryBurst bound how fast all failed keys together are retried.
	RetryQPS   float64
	RetryBurst int
	// ClusterDomain is the DNS domain of the cluster, used in the App's status.url.
	ClusterDomain string
	// DrainTimeout bounds how long Run lets in-flight syncs finish once it is asked to stop.
	DrainTimeout time.Duration
	// OwnedChangeDelay is how long a change of an object an App owns (a Deployment's status, a Pod's) waits
	// before the App is synced: the changes of a rollout come in quick succession, and each could change the
	// App's status. Waiting lets one sync, and one status write, report several of them.
	OwnedChangeDelay time.Duration
	// CorrectionLimit, CorrectionWindow and CorrectionBackoff bound berth's corrections of an owned object
	// that someone else keeps changing (contest.go): each correction waits CorrectionBackoff, doubling, after the
	// one before; after CorrectionLimit of them within CorrectionWindow, berth stops for a window or more.
	CorrectionLimit   int
	CorrectionWindow  time.Duration
	CorrectionBackoff time.Duration
	// Route is how the Apps' routes are made: of which kind, to which Gateway or with which IngressClass. The
	// informers (InformerOptions.RouteKind) tell whether the cluster serves the kind.
	Route plan.RouteOptions
	// GatewayClient writes the Apps' HTTPRoutes, when Route.Kind is plan.RouteKindHTTPRoute.
	GatewayClient gatewayversioned.Interface
	// Buckets, when not nil, are the buckets of the Apps this controller syncs, one member's share of them
	// (--sharding); the informers (InformerOptions.Buckets) must select no others.
	Buckets *shard.Set
}

func (o Options) withDefaults() Options {
	if o.BackoffBase <= 0 {
		o.BackoffBase = 5 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.RetryQPS <= 0 {
		o.RetryQPS = 10
	}
	if o.RetryBurst <= 0 {
		o.RetryBurst = 100
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.OwnedChangeDelay == 0 {
		o.OwnedChangeDelay = time.Second
	}
	if o.CorrectionLimit <= 0 {
		o.CorrectionLimit = DefaultCorrectionLimit
	}
	if o.CorrectionWindow <= 0 {
		o.CorrectionWindow = DefaultCorrectionWindow
	}
	if o.CorrectionBackoff <= 0 {
		o.CorrectionBackoff = DefaultCorrectionBackoff
	}
	return o
}

// Controller makes a Deployment and a Service for every App, and reports on them in the App's status.
type Controller struct {
	kubeClient  kubernetes.Interface
	berthClient versioned.Interface

	// The caches, of one namespace, of all, or of several (namespaces.go): each lookup names its namespace.
	appLister berthlisters.AppLister
	// configCaches hold the metadata of the Secrets and ConfigMaps, by kind; nil when berth does not watch them.
	configCaches map[string]byNamespace[cache.Indexer]
	// podIndexers hold berth's Pods, indexed by App (podsByApp).
	podIndexers byNamespace[cache.Indexer]
	// namespaces tell whether the caches of each set of informers have synced (synced.go).
	namespaces []*namespaceCaches

	// owned are the kinds of object an App owns, in the order a sync makes them (kinds.go); deploymentKind is the
	// first of them.
	owned          []ownedSync
	deploymentKind ownedKind[*appsv1.Deployment, *appsv1ac.DeploymentApplyConfiguration]

	// syncHandler syncs one key: syncApp, or a stand-in in tests of the loop.
	syncHandler func(ctx context.Context, key cache.ObjectName) error

	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// priorities orders queue's keys: changes before resyncs (queue.go).
	priorities   *priorityQueue
	expectations *expectations
	// converged remembers the Apps that a sync found converged, and what it read (sync.go).
	converged *convergedApps
	// corrections counts berth's corrections of what others change in the Apps' objects (contest.go).
	corrections *corrections
	recorder    record.EventRecorder
	metrics     Metrics
	// running tells that Run's workers run (see Running).
	running atomic.Bool

	// buckets, when not nil, are the buckets of the Apps this controller may write: an App of another bucket is
	// left alone, whatever its label says, and what berth makes carries the App's bucket label.
	buckets *shard.Set

	clusterDomain    string
	drainTimeout     time.Duration
	ownedChangeDelay time.Duration
}

// NewRateLimiter is berth's retry policy for a key: exponential backoff per key from base to max, and an overall
// token bucket so that many failing keys together cannot flood the API server.
func NewRateLimiter(base, max time.Duration, qps float64, burst int) workqueue.TypedRateLimiter[cache.ObjectName] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](base, max),
		&workqueue.TypedBucketRateLimiter[cache.ObjectName]{Limiter: rate.NewLimiter(rate.Limit(qps), burst)},
	)
}

// newController wires the controller to the informers of every set.
func newController(ctx context.Context, kubeClient kubernetes.Interface, berthClient versioned.Interface,
	sets []informerSet, recorder record.EventRecorder, metrics Metrics, opts Options) (*Controller, error) {
	if err := checkInformerSets(sets); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if metrics == nil {
		metrics = noMetrics{}
	}
	for _, s := range sets {
		if err := s.pods.Informer().AddIndexers(cache.Indexers{podsByApp: indexPodByApp}); err != nil {
			return nil, fmt.Errorf("indexing Pods by App: %w", err)
		}
		if err := s.apps.Informer().AddIndexers(cache.Indexers{appsByConfig: indexAppByConfig}); err != nil {
			return nil, fmt.Errorf("indexing Apps by their Secrets and ConfigMaps: %w", err)
		}
	}
	priorities := newPriorityQueue()
	c := &Controller{
		kubeClient:  kubeClient,
		berthClient: berthClient,
		appLister:   newAppLister(sets),
		podIndexers: newPodIndexers(sets),
		queue: newQueue(priorities,
			NewRateLimiter(opts.BackoffBase, opts.BackoffMax, opts.RetryQPS, opts.RetryBurst)),
		priorities:   priorities,
		expectations: newExpectations(clock.RealClock{}),
		converged:    newConvergedApps(),
		corrections: newCorrections(clock.RealClock{}, opts.CorrectionLimit, opts.CorrectionWindow,
			opts.CorrectionBackoff),
		recorder:         recorder,
		metrics:          metrics,
		buckets:          opts.Buckets,
		clusterDomain:    opts.ClusterDomain,
		drainTimeout:     opts.DrainTimeout,
		ownedChangeDelay: opts.OwnedChangeDelay,
	}

	c.deploymentKind, c.owned = newOwnedKinds(sets, kubeClient, opts.GatewayClient, opts.Route)
	if len(c.owned) > maxOwnedKinds {
		return nil, fmt.Errorf("%d kinds of owned object, more than maxOwnedKinds (%d)", len(c.owned), maxOwnedKinds)
	}
	c.syncHandler = c.syncApp
	appIndexers := newByNamespace(sets, func(s informerSet) cache.Indexer { return s.apps.Informer().GetIndexer() },
		newEmptyIndexer())
	if sets[0].config != nil {
		c.configCaches = map[string]byNamespace[cache.Indexer]{}
		for kind := range sets[0].config {
			c.configCaches[kind] = newByNamespace(sets, func(s informerSet) cache.Indexer {
				return s.config[kind].GetIndexer()
			}, newEmptyIndexer())
		}
	}

	logger := klog.FromContext(ctx)
	appHandler := cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(obj any, isInInitialList bool) { c.enqueueApp(obj, priorityOfAdd(isInInitialList)) },
		UpdateFunc: c.enqueueAppUpdate,
		DeleteFunc: func(obj any) { c.enqueueApp(obj, priorityChange) },
	}
	podHandler := ownedObjectHandler(c.handlePod, nil)
	// The same handlers on the informers of every namespace; the caches of a namespace have synced when all of
	// its informers have, and its errors are recorded for the report of those that have not.
	for _, s := range sets {
		caches := &namespaceCaches{namespace: s.namespace}
		handlers := []informerHandler{
			{"apps", s.apps.Informer(), appHandler},
			{"pods", s.pods.Informer(), podHandler},
		}
		for _, k := range c.owned {
			resource := k.resourceName()
			informer, ok := s.owned[resource]
			if !ok {
				continue // a kind the cluster does not serve (uninstalledRoute)
			}
			handlers = append(handlers, informerHandler{resource, informer,
				ownedObjectHandler(c.handleOwnedObject, c.observeDeletion(resource))})
		}
		for kind, informer := range s.config {
			handlers = append(handlers, informerHandler{configResource(kind), informer, c.configHandler(kind, appIndexers)})
		}
		for _, h := range handlers {
			registration, err := h.informer.AddEventHandlerWithOptions(h.handler,
				cache.HandlerOptions{Logger: &logger})
			if err != nil {
				return nil, fmt.Errorf("adding event handler: %w", err)
			}
			caches.synced = append(caches.synced, registration.HasSynced)
			if err := h.informer.SetWatchErrorHandlerWithContext(caches.watchErrorHandler(h.resource)); err != nil {
				return nil, fmt.Errorf("the informer of %s has started already: %w", h.resource, err)
			}
		}
		c.namespaces = append(c.namespaces, caches)
	}
	return c, nil
}

// informerHandler is an event handler for the informer of one resource.
type informerHandler struct {
	resource string
	informer cache.SharedIndexInformer
	handler  cache.ResourceEventHandler
}
