package main

import (
	"errors"
	"flag"
	"time"
)

// options are berth's command-line flags.
type options struct {
	kubeconfig    string
	namespace     string
	workers       int
	kubeAPIQPS    float64
	kubeAPIBurst  int
	backoffBase   time.Duration
	backoffMax    time.Duration
	resyncPeriod  time.Duration
	clusterDomain string
	drainTimeout  time.Duration
}

func defaultOptions() options {
	return options{
		workers:       4,
		kubeAPIQPS:    50,
		kubeAPIBurst:  100,
		backoffBase:   5 * time.Millisecond,
		backoffMax:    5 * time.Minute,
		resyncPeriod:  10 * time.Minute,
		clusterDomain: "cluster.local",
		drainTimeout:  30 * time.Second,
	}
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig,
		"Path to a kubeconfig file. Defaults to $KUBECONFIG; when both are empty, the in-cluster configuration is used.")
	fs.StringVar(&o.namespace, "namespace", o.namespace,
		"Namespace whose Apps berth manages. Empty means all namespaces.")
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
}

func (o *options) validate() error {
	var errs []error
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
	return errors.Join(errs...)
}
