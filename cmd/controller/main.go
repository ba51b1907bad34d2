// Command controller runs berth: it keeps a Deployment and a Service for every App in the cluster.
//
// Reading order: main parses the flags (options.go), run connects to the cluster and wires the controller
// (run.go), leader election decides when it works (leader.go), servers.go serves metrics and probes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	// Makes --logging-format=json available.
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/klog/v2"

	"github.com/berthdev/berth/pkg/version"
)

func main() {
	opts := defaultOptions()
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	opts.addFlags(fs)
	_ = fs.Parse(os.Args[1:]) // ExitOnError: Parse exits by itself on bad flags.
	if opts.printVersion {
		fmt.Println(version.Get())
		return
	}
	if err := opts.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	if err := logsapi.ValidateAndApply(opts.logging, nil); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(2)
	}
	defer logs.FlushLogs()

	ctx := signalContext()
	if err := run(ctx, opts); err != nil {
		klog.FromContext(ctx).Error(err, "berth stopped")
		logs.FlushLogs()
		os.Exit(1)
	}
}

// signalContext is cancelled at the first SIGINT or SIGTERM, so that berth shuts down gracefully; a second signal
// ends the process at once, for when a graceful shutdown hangs.
func signalContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		klog.Background().Info("Shutting down; a second signal exits at once", "signal", sig.String())
		cancel()
		<-signals
		klog.Background().Info("Second signal: exiting now")
		logs.FlushLogs()
		os.Exit(1)
	}()
	return ctx
}
