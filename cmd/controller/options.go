package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/plan"
)

// options are berth's command-line flags.
type options struct {
	kubeconfig string
	// namespace is the flag as given: empty for all namespaces, or a comma-separated list (parseNamespaces).
	namespace     string
	workers       int
	kubeAPIQPS    float64
	kubeAPIBurst  int
	backoffBase   time.Duration
	backoffMax    time.Duration
	resyncPeriod  time.Duration
	clusterDomain string
	drainTimeout  time.Duration

	// routeKind is --route-kind: routeKindAuto, or a kind of plan.
	routeKind string
	// gateway is --gateway as given: empty, or NAMESPACE/NAME (parseGateway).
	gateway      string
	ingressClass string

	correctionLimit   int
	correctionWindow  time.Duration
	correctionBackoff time.Duration

	leaderElect bool
	sharding    bool
	// shardSelector is --shard-selector: shardSelectorAuto, shardSelectorLabel or shardSelectorServer.
	shardSelector           string
	leaderElectionNamespace string
	leaderElectionID        string
	leaseDuration           time.Duration
	renewDeadline           time.Duration
	retryPeriod             time.Duration

	metricsBindAddress     string
	metricsPerApp          bool
	healthProbeBindAddress string
	profiling              bool

	logging *logsapi.LoggingConfiguration

	// printVersion makes berth print its version and exit.
	printVersion bool
}

func defaultOptions() options {
	return options{
		workers:                 10,
		kubeAPIQPS:              50,
		kubeAPIBurst:            100,
		backoffBase:             5 * time.Millisecond,
		backoffMax:              5 * time.Minute,
		resyncPeriod:            10 * time.Minute,
		clusterDomain:           "cluster.local",
		drainTimeout:            30 * time.Second,
		routeKind:               routeKindAuto,
		shardSelector:           shardSelectorAuto,
		correctionLimit:         controller.DefaultCorrectionLimit,
		correctionWindow:        controller.DefaultCorrectionWindow,
		correctionBackoff:       controller.DefaultCorrectionBackoff,
		leaderElectionNamespace: "berth-system",
		leaderElectionID:        "berth-controller",
		leaseDuration:           15 * time.Second,
		renewDeadline:           10 * time.Second,
		retryPeriod:             2 * time.Second,
		metricsBindAddress:      ":8080",
		healthProbeBindAddress:  ":8081",
		logging:                 logsapi.NewLoggingConfiguration(),
	}
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig,
		"Path to a kubeconfig file. Defaults to $KUBECONFIG; when both are empty, the in-cluster configuration is used.")
	fs.StringVar(&o.namespace, "namespace", o.namespace,
		"Namespaces whose Apps berth manages, separated by commas (a,b,c); empty means all namespaces. With a "+
			"list, berth needs a Role in each namespace and no ClusterRole.")
	fs.IntVar(&o.workers, "workers", o.workers, "Number of Apps synced at the same time.")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", o.kubeAPIQPS, "Steady rate of requests per second to the API server.")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", o.kubeAPIBurst, "Burst of requests allowed above --kube-api-qps.")
	fs.DurationVar(&o.backoffBase, "backoff-base", o.backoffBase,
		"First retry delay of an App whose sync failed; it doubles with each further failure.")
	fs.DurationVar(&o.backoffMax, "backoff-max", o.backoffMax, "Longest retry delay of an App whose sync keeps failing.")
	fs.DurationVar(&o.resyncPeriod, "resync-period", o.resyncPeriod,
		"How often every App is synced even when nothing changed; 0 disables.")
	fs.StringVar(&o.clusterDomain, "cluster-domain", o.clusterDomain, "DNS domain of the cluster, used in App status.url.")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", o.drainTimeout,
		"On shutdown, how long syncs under way may take to finish before they are cancelled.")
	fs.StringVar(&o.routeKind, "route-kind", o.routeKind,
		"The kind of object berth makes for an App's spec.route: HTTPRoute (Gateway API), Ingress, or auto: "+
			"HTTPRoute when the cluster serves Gateway API's HTTPRoutes when berth starts, Ingress otherwise.")
	fs.StringVar(&o.gateway, "gateway", o.gateway,
		"NAMESPACE/NAME of the Gateway that HTTPRoutes attach to when the App names none (spec.route.gateway).")
	fs.StringVar(&o.ingressClass, "ingress-class", o.ingressClass,
		"IngressClass of the Ingresses berth makes; empty for the cluster's default class.")
	fs.IntVar(&o.correctionLimit, "correction-limit", o.correctionLimit,
		"How many times within --correction-window berth puts back a field of an App's Deployment or Service that "+
			"someone else keeps changing, before it stops and reports the App Degraded (reason FieldContested).")
	fs.DurationVar(&o.correctionWindow, "correction-window", o.correctionWindow,
		"The window of --correction-limit, and how long berth then leaves the field alone (doubling while the "+
			"fight goes on), unless the App changes.")
	fs.DurationVar(&o.correctionBackoff, "correction-backoff", o.correctionBackoff,
		"Delay between berth's first and second correction of the same field; it doubles with each further one.")

	fs.BoolVar(&o.leaderElect, "leader-elect", o.leaderElect,
		"Elect a leader through a Lease before syncing, so that only one of several replicas works at a time.")
	fs.BoolVar(&o.sharding, "sharding", o.sharding,
		"Share the Apps between the replicas: each syncs the Apps of its buckets, which the leader assigns to "+
			"the live replicas through Leases in --leader-election-namespace. Needs --leader-elect.")
	fs.StringVar(&o.shardSelector, "shard-selector", o.shardSelector,
		"With --sharding, how a member selects the Apps of its buckets: server (the API server's shard selector "+
			"over the App's UID, which needs its feature gate ShardedListAndWatch), label (the bucket label the "+
			"leader sets on each App), or auto: server when the API server applies shard selectors when berth "+
			"starts, label otherwise.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", o.leaderElectionNamespace,
		"Namespace of the leader-election Lease.")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", o.leaderElectionID, "Name of the leader-election Lease.")
	fs.DurationVar(&o.leaseDuration, "leader-election-lease-duration", o.leaseDuration,
		"How long standbys wait after the leader's last renewal before taking the lease.")
	fs.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", o.renewDeadline,
		"How long the leader retries renewing the lease before it gives up leadership (and exits).")
	fs.DurationVar(&o.retryPeriod, "leader-election-retry-period", o.retryPeriod,
		"How often candidates try to acquire, and the leader to renew, the lease.")

	fs.StringVar(&o.metricsBindAddress, "metrics-bind-address", o.metricsBindAddress,
		"Address of the Prometheus /metrics endpoint; 0 disables it.")
	fs.BoolVar(&o.metricsPerApp, "metrics-per-app", o.metricsPerApp,
		"Also export berth_app_condition from the replica that leads: three series per App (its conditions, with status and reason).")
	fs.StringVar(&o.healthProbeBindAddress, "health-probe-bind-address", o.healthProbeBindAddress,
		"Address of the /healthz and /readyz endpoints; 0 disables them.")
	fs.BoolVar(&o.profiling, "profiling", o.profiling,
		"Serve Go's pprof profiles under /debug/pprof/ on the metrics address.")

	logsapi.AddGoFlags(o.logging, fs)
	fs.BoolVar(&o.printVersion, "version", o.printVersion, "Print berth's version and commit, and exit.")
}

func (o *options) validate() error {
	var errs []error
	if _, err := parseNamespaces(o.namespace); err != nil {
		errs = append(errs, err)
	}
	if o.workers < 1 {
		errs = append(errs, errors.New("--workers must be at least 1"))
	}
	if o.kubeAPIQPS <= 0 || o.kubeAPIBurst < 1 {
		errs = append(errs, errors.New("--kube-api-qps must be above 0 and --kube-api-burst at least 1"))
	}
	if o.backoffBase <= 0 || o.backoffMax < o.backoffBase {
		errs = append(errs, errors.New("--backoff-base must be above 0 and --backoff-max at least --backoff-base"))
	}
	if o.resyncPeriod < 0 || o.drainTimeout <= 0 {
		errs = append(errs, errors.New("--resync-period must not be negative and --drain-timeout must be above 0"))
	}
	if o.correctionLimit < 1 || o.correctionWindow <= 0 || o.correctionBackoff <= 0 {
		errs = append(errs, errors.New("--correction-limit must be at least 1, and --correction-window and "+
			"--correction-backoff above 0"))
	}
	if o.leaderElect {
		if o.leaderElectionNamespace == "" || o.leaderElectionID == "" {
			errs = append(errs, errors.New("--leader-election-namespace and --leader-election-id must not be empty"))
		}
		// client-go's rules, said in flag names; and berth's own: a leader stops working at the renew deadline
		// after its last renewal, which must come before any other replica can take the Lease (leader.go).
		switch {
		case o.retryPeriod <= 0 || o.renewDeadline <= o.retryPeriod || o.leaseDuration <= o.renewDeadline:
			errs = append(errs, errors.New("leader election needs 0 < --leader-election-retry-period < "+
				"--leader-election-renew-deadline < --leader-election-lease-duration"))
		case o.renewDeadline+leaseMargin > o.leaseDuration:
			errs = append(errs, fmt.Errorf("--leader-election-renew-deadline (%s) must be at least %s shorter "+
				"than --leader-election-lease-duration (%s): a leader works until the renew deadline after its "+
				"last renewal, and another may lead once the lease duration has passed", o.renewDeadline,
				leaseMargin, o.leaseDuration))
		}
	}
	if o.sharding && !o.leaderElect {
		errs = append(errs, errNoSharding)
	}
	switch o.shardSelector {
	case shardSelectorAuto, shardSelectorLabel, shardSelectorServer:
	default:
		errs = append(errs, fmt.Errorf("--shard-selector=%q: must be auto, label or server", o.shardSelector))
	}
	switch o.routeKind {
	case routeKindAuto, plan.RouteKindHTTPRoute, plan.RouteKindIngress:
	default:
		errs = append(errs, fmt.Errorf("--route-kind=%q: must be auto, %s or %s", o.routeKind,
			plan.RouteKindHTTPRoute, plan.RouteKindIngress))
	}
	if _, _, err := parseGateway(o.gateway); err != nil {
		errs = append(errs, err)
	}
	if o.ingressClass != "" {
		if problems := validation.IsDNS1123Subdomain(o.ingressClass); len(problems) > 0 {
			errs = append(errs, fmt.Errorf("--ingress-class=%q: %s", o.ingressClass, strings.Join(problems, "; ")))
		}
	}
	if o.profiling && disabled(o.metricsBindAddress) {
		errs = append(errs, errors.New("--profiling needs --metrics-bind-address"))
	}
	if err := logsapi.Validate(o.logging, nil, nil).ToAggregate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// disabled tells whether a bind address flag turns its server off.
func disabled(address string) bool {
	return address == "" || address == "0"
}

// routeKindAuto is the --route-kind that lets berth choose (see resolveRouteKind).
const routeKindAuto = "auto"

// parseGateway reads --gateway: empty, or the namespace and name of a Gateway.
func parseGateway(flag string) (namespace, name string, err error) {
	if flag == "" {
		return "", "", nil
	}
	namespace, name, ok := strings.Cut(flag, "/")
	if !ok || len(validation.IsDNS1123Label(namespace)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", fmt.Errorf("--gateway=%q: must be NAMESPACE/NAME of a Gateway", flag)
	}
	return namespace, name, nil
}

// parseNamespaces reads --namespace: nil for all namespaces, or the namespaces of the list, each a namespace
// name (a DNS-1123 label) and given once. Spaces around a name are ignored.
func parseNamespaces(flag string) ([]string, error) {
	if strings.TrimSpace(flag) == "" {
		return nil, nil
	}
	var namespaces []string
	seen := map[string]bool{}
	for i, name := range strings.Split(flag, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			return nil, fmt.Errorf("--namespace=%q: name %d of the list is empty", flag, i+1)
		case seen[name]:
			return nil, fmt.Errorf("--namespace=%q: namespace %q is listed twice", flag, name)
		}
		if problems := validation.IsDNS1123Label(name); len(problems) > 0 {
			return nil, fmt.Errorf("--namespace=%q: %q is not a namespace name: %s", flag, name,
				strings.Join(problems, "; "))
		}
		seen[name] = true
		namespaces = append(namespaces, name)
	}
	return namespaces, nil
}

// The values of --shard-selector.
const (
	shardSelectorAuto   = "auto"
	shardSelectorLabel  = "label"
	shardSelectorServer = "server"
)
