package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"

	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/metrics"
)

// startServers starts the metrics and probe servers that the flags ask for, and returns a function that shuts
// them down. /healthz says the process is alive (and, as the leader, renewing its lease and working); /readyz says
// the caches have synced, the process is not shutting down, and as the leader it has not stopped working.
func startServers(ctx context.Context, opts options, cachesSynced func() error,
	watchdog *leaderelection.HealthzAdaptor, leader *leaderHealth) (stop func(), err error) {
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
	}

	if !disabled(opts.metricsBindAddress) {
		s, err := serve(ctx, "metrics", opts.metricsBindAddress, metricsHandler(opts.profiling))
		if err != nil {
			return nil, err
		}
		stops = append(stops, s)
	}
	if !disabled(opts.healthProbeBindAddress) {
		s, err := serve(ctx, "health probes", opts.healthProbeBindAddress, probeHandler(ctx, cachesSynced, watchdog, leader))
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stopAll, nil
}

// metricsHandler serves /metrics, and pprof's profiles when profiling is on.
func metricsHandler(profiling bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler())
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// probeHandler serves /healthz and /readyz. A nil watchdog and leader mean no leader election.
func probeHandler(ctx context.Context, cachesSynced func() error, watchdog *leaderelection.HealthzAdaptor,
	leader *leaderHealth) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := leader.check(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if watchdog != nil {
			if err := watchdog.Check(r); err != nil {
				http.Error(w, "leader election: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch err := leader.check(); {
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case ctx.Err() != nil:
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
		default:
			if err := cachesSynced(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = fmt.Fprintln(w, "ok")
		}
	})
	return mux
}

// cachesNotSynced says which namespaces' caches have not synced, and why: nil when every one has.
func cachesNotSynced(namespaces []controller.NamespaceNotSynced) error {
	if len(namespaces) == 0 {
		return nil
	}
	var waiting []string
	for _, n := range namespaces {
		name := "namespace " + n.Namespace
		if n.Namespace == metav1.NamespaceAll {
			name = "all namespaces"
		}
		if n.Err == nil {
			waiting = append(waiting, name+": not listed yet")
			continue
		}
		waiting = append(waiting, name+": "+n.Err.Error())
	}
	return fmt.Errorf("informer caches not synced yet: %s", strings.Join(waiting, "; "))
}

// serve listens on address at once, so that a port in use is an error at start, and serves handler until stop.
func serve(ctx context.Context, name, address string, handler http.Handler) (stop func(), err error) {
	logger := klog.FromContext(ctx).WithValues("server", name)
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("serving %s on %s: %w", name, address, err)
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Server stopped")
		}
	}()
	logger.Info("Serving", "address", listener.Addr().String())
	return func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
		<-done
	}, nil
}
