package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/pkg/metrics"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/shard"
	"github.com/berthdev/berth/pkg/version"
)

// run connects to the cluster, wires the controller, serves metrics and probes, and runs the controller (as the
// leader, with --leader-elect) until ctx is done.
func run(ctx context.Context, opts options) error {
	logger := klog.FromContext(ctx)
	// Cancelled when run returns for any reason, such as a lost lease, so that everything started here stops.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	requests := metrics.NewAPIRequests(legacyregistry.MustRegister)
	config, err := restConfig(opts, requests)
	if err != nil {
		return err
	}
	var identity string
	if opts.leaderElect {
		if identity, err = leaderIdentity(); err != nil {
			return err
		}
	}
	if opts.sharding {
		// Each member's requests tell which member sent them, in the API server's audit log and its metrics.
		config.UserAgent += "/" + identity
	}
	kubeClient, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	berthClient, err := versioned.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("creating the berth client: %w", err)
	}
	if err := checkCRDInstalled(ctx, kubeClient.Discovery()); err != nil {
		return err
	}
	routeKind, routeKindInstalled, err := resolveRouteKind(ctx, kubeClient.Discovery(), opts.routeKind)
	if err != nil {
		return err
	}
	gatewayClient, err := gatewayversioned.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("creating the Gateway API client: %w", err)
	}
	gatewayNamespace, gatewayName, err := parseGateway(opts.gateway)
	if err != nil {
		return err
	}

	// Events go through a client with a rate limit of its own: an App's Events must not delay the writes of its
	// objects and status, or another App's.
	eventsConfig := rest.CopyConfig(config)
	eventsConfig.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(eventsConfig.QPS, eventsConfig.Burst)
	eventsClient, err := kubernetes.NewForConfig(eventsConfig)
	if err != nil {
		return fmt.Errorf("creating the client for Events: %w", err)
	}
	recorder, stopEvents, err := controller.NewEventRecorder(ctx, eventsClient)
	if err != nil {
		return err
	}
	defer stopEvents()

	namespaces, err := parseNamespaces(opts.namespace)
	if err != nil {
		return err
	}
	// Secrets and ConfigMaps are watched through their metadata alone: their data never reaches berth.
	metadataClient, err := metadata.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("creating the metadata client: %w", err)
	}
	informerOpts := controller.InformerOptions{Namespaces: namespaces, Resync: opts.resyncPeriod,
		GatewayClient: gatewayClient, MetadataClient: metadataClient}
	if routeKindInstalled {
		informerOpts.RouteKind = routeKind
	} else {
		logger.Info("The cluster does not serve the kind of route berth makes: Apps with spec.route are Degraded "+
			"until it does and berth restarts", "routeKind", routeKind)
	}
	reconcileMetrics := metrics.NewReconcile(legacyregistry.MustRegister)
	// Served without --sharding too, at 0, so that the dashboard and the alerts tell the two modes apart.
	shardMetrics := metrics.NewShard(legacyregistry.MustRegister)
	controllerOpts := controller.Options{
		BackoffBase:   opts.backoffBase,
		BackoffMax:    opts.backoffMax,
		ClusterDomain: opts.clusterDomain,
		Route: plan.RouteOptions{Kind: routeKind, GatewayNamespace: gatewayNamespace, GatewayName: gatewayName,
			IngressClassName: opts.ingressClass},
		GatewayClient: gatewayClient,
		DrainTimeout:  opts.drainTimeout,

		CorrectionLimit:   opts.correctionLimit,
		CorrectionWindow:  opts.correctionWindow,
		CorrectionBackoff: opts.correctionBackoff,
	}
	// build makes the informers and the controller of the Apps of buckets, or of every App when it is nil; with
	// serverShards, the API server selects the Apps of the buckets.
	build := func(buckets *shard.Set, serverShards bool) (controller.Informers, *controller.Controller, error) {
		informerOpts, controllerOpts := informerOpts, controllerOpts
		informerOpts.Buckets, controllerOpts.Buckets = buckets, buckets
		informerOpts.ServerShards = serverShards
		informers := controller.NewInformers(kubeClient, berthClient, informerOpts)
		ctrl, err := controller.NewFromInformers(ctx, kubeClient, berthClient, informers, recorder,
			reconcileMetrics, controllerOpts)
		return informers, ctrl, err
	}
	if opts.sharding {
		return runSharded(ctx, opts, config, identity, berthClient, namespaces, shardMetrics, build)
	}
	informers, ctrl, err := build(nil, false)
	if err != nil {
		return err
	}
	metrics.NewAppConditions(informers.AppLister(), opts.metricsPerApp, ctrl.Running,
		legacyregistry.CustomMustRegister)

	// The watchdog fails /healthz when this replica leads but has not renewed its lease in time, and health fails
	// both probes once the leader has stopped working. Readiness waits for the watch of the Lease too: a replica
	// that cannot see its Lease must not lead.
	var watchdog *leaderelection.HealthzAdaptor
	var health *leaderHealth
	var lease *leaseWatch
	var leaderClient kubernetes.Interface
	ready := func() error { return cachesNotSynced(ctrl.NotSynced()) }
	if opts.leaderElect {
		watchdog = leaderelection.NewLeaderHealthzAdaptor(opts.renewDeadline)
		health = &leaderHealth{}
		if leaderClient, err = newLeaderElectionClient(config); err != nil {
			return err
		}
		if lease, err = newLeaseWatch(leaderClient, opts, identity); err != nil {
			return err
		}
		ready = func() error {
			if !lease.hasSynced() {
				return errors.New("the watch of the leader-election Lease has not synced yet")
			}
			return cachesNotSynced(ctrl.NotSynced())
		}
	}
	stopServers, err := startServers(ctx, opts, ready, watchdog, health)
	if err != nil {
		return err
	}
	defer stopServers()

	// Informers start before leadership, so that a standby has warm caches when it takes over.
	informers.Start(ctx)
	defer func() {
		cancel()
		informers.Shutdown()
	}()

	info := version.Get()
	logger.Info("Starting berth", "version", info.Version, "commit", info.Commit, "go", info.GoVersion,
		"namespace", opts.namespace, "workers", opts.workers, "routeKind", routeKind, "host", config.Host, "leaderElect", opts.leaderElect)
	runController := func(ctx context.Context, stop <-chan struct{}) error { return ctrl.Run(ctx, stop, opts.workers) }
	if !opts.leaderElect {
		// Nothing but a shutdown ends the work of a lone replica, and a shutdown drains it.
		return runController(context.WithoutCancel(ctx), ctx.Done())
	}
	return runAsLeader(ctx, opts, leaderClient, lease, health, watchdog, runController)
}

// Leader election's own client limit: a renewal is one or two requests per retry period, and the watch of the
// Lease one more now and then.
const (
	leaderElectionQPS   = 5
	leaderElectionBurst = 10
)

// newLeaderElectionClient is the client of leader election, as kube-controller-manager has one: with a rate
// limit of its own, so that a renewal of the Lease never waits behind the syncs' requests, however many are
// queued for the limit of --kube-api-qps, and a user agent of its own, so that the API server's logs and
// priority and fairness can tell its requests apart.
func newLeaderElectionClient(config *rest.Config) (kubernetes.Interface, error) {
	leaderConfig := rest.CopyConfig(config)
	leaderConfig.QPS, leaderConfig.Burst = leaderElectionQPS, leaderElectionBurst
	leaderConfig.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(leaderConfig.QPS, leaderConfig.Burst)
	leaderConfig.UserAgent = config.UserAgent + "/leader-election"
	client, err := kubernetes.NewForConfig(leaderConfig)
	if err != nil {
		return nil, fmt.Errorf("creating the client for leader election: %w", err)
	}
	return client, nil
}

// restConfig loads --kubeconfig (or $KUBECONFIG), or else the in-cluster configuration, and applies the client
// rate limit of the flags: one token bucket, shared by every client made from the config (each clientset would
// otherwise build its own, and berth would send twice the rate the flags say). Every request is counted in
// requests.
func restConfig(opts options, requests *metrics.APIRequests) (*rest.Config, error) {
	var config *rest.Config
	var err error
	switch {
	case opts.kubeconfig != "":
		config, err = clientcmd.BuildConfigFromFlags("", opts.kubeconfig)
	case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "":
		// $KUBECONFIG may list several files, as kubectl reads it.
		config, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	default:
		config, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading the cluster configuration (set --kubeconfig or KUBECONFIG when running "+
			"outside a cluster): %w", err)
	}
	config.QPS = float32(opts.kubeAPIQPS)
	config.Burst = opts.kubeAPIBurst
	config.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(config.QPS, config.Burst)
	config.UserAgent = "berth"
	config.Wrap(requests.Wrap)
	return config, nil
}

// checkCRDInstalled fails with a readable message when the API server does not serve Apps, rather than letting
// the informers log list errors forever.
func checkCRDInstalled(ctx context.Context, client discovery.DiscoveryInterface) error {
	gv := berthv1alpha1.GroupVersion.String()
	served, err := serves(ctx, client, gv, "apps")
	switch {
	case err != nil:
		return err
	case !served:
		return fmt.Errorf("the API server does not serve %s apps: the App CRD is not installed; "+
			"install it with `kubectl apply -k artifacts/crds`", gv)
	}
	return nil
}

// resolveRouteKind decides of which kind berth makes the Apps' routes (--route-kind), and whether the cluster
// serves that kind, which is asked once: a kind installed later needs berth's restart.
func resolveRouteKind(ctx context.Context, client discovery.DiscoveryInterface, flag string) (kind string,
	installed bool, err error) {
	gateway, err := serves(ctx, client, gatewayv1.GroupVersion.String(), "httproutes")
	if err != nil {
		return "", false, err
	}
	switch flag {
	case plan.RouteKindHTTPRoute:
		return plan.RouteKindHTTPRoute, gateway, nil
	case plan.RouteKindIngress:
		return plan.RouteKindIngress, true, nil
	}
	if gateway {
		return plan.RouteKindHTTPRoute, true, nil
	}
	return plan.RouteKindIngress, true, nil
}

// serves tells whether the API server serves resource in the group version gv. An error of the question (the
// API server restarting, failing a request, throttling) is logged and the question asked again, ever less often,
// until ctx is done: a berth started while the API server is away waits for it, rather than exit and be restarted
// with a growing back-off.
func serves(ctx context.Context, client discovery.DiscoveryInterface, gv, resource string) (bool, error) {
	retry := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 10, Cap: 10 * time.Second}
	for {
		resources, err := client.ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err == nil {
			for _, r := range resources.APIResources {
				if r.Name == resource {
					return true, nil
				}
			}
			return false, nil
		}
		delay := retry.Step()
		klog.FromContext(ctx).Info("Cannot ask the API server what it serves yet; asking again",
			"groupVersion", gv, "err", err, "after", delay)
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("asking the API server whether it serves %s %s: %w", gv, resource, err)
		case <-time.After(delay):
		}
	}
}
