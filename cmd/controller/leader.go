package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// errLostLease is returned when another replica took the lease while this one was leading.
var errLostLease = errors.New("lost the leader-election lease")

// runAsLeader campaigns for the Lease and runs the controller while this process holds it.
//
// On shutdown (ctx done) the order matters: the controller stops taking keys and drains its syncs first, and only
// then is the Lease released, so that the next leader never works beside this one; releasing it (rather than
// letting it expire) lets that leader start at once. Losing the Lease stops the controller and returns
// errLostLease: the process exits, and its restart campaigns again from a clean state.
func runAsLeader(ctx context.Context, opts options, client kubernetes.Interface,
	watchdog *leaderelection.HealthzAdaptor, runController func(context.Context) error) error {
	logger := klog.FromContext(ctx)
	identity, err := leaderIdentity()
	if err != nil {
		return err
	}

	// The election outlives ctx, so that the Lease is held until the controller has drained.
	electionCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()

	var leading atomic.Bool
	controllerErr := make(chan error, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: opts.leaderElectionNamespace, Name: opts.leaderElectionID},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		},
		LeaseDuration:   opts.leaseDuration,
		RenewDeadline:   opts.renewDeadline,
		RetryPeriod:     opts.retryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        watchdog,
		Name:            opts.leaderElectionID,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaderCtx context.Context) {
				leading.Store(true)
				logger.Info("Became the leader", "identity", identity)
				// Work until shutdown or until the lease is lost, whichever comes first.
				workCtx, cancelWork := context.WithCancel(leaderCtx)
				defer context.AfterFunc(ctx, cancelWork)()
				controllerErr <- runController(workCtx)
				cancelWork()
				stopElection() // Now that the workers have drained: release the Lease.
			},
			OnStoppedLeading: func() {
				if leading.Load() {
					logger.Info("Stopped leading", "identity", identity)
				}
			},
			OnNewLeader: func(current string) {
				if current != identity {
					logger.Info("Another replica leads; standing by", "leader", current)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("setting up leader election: %w", err)
	}
	if watchdog != nil {
		watchdog.SetLeaderElection(elector)
	}
	// A standby that is asked to stop has nothing to drain: end the campaign at once.
	defer context.AfterFunc(ctx, func() {
		if !leading.Load() {
			stopElection()
		}
	})()

	logger.Info("Campaigning for leadership", "lease", klog.KRef(opts.leaderElectionNamespace, opts.leaderElectionID),
		"identity", identity)
	elector.Run(electionCtx)
	if !leading.Load() {
		return nil
	}
	err = <-controllerErr
	if ctx.Err() == nil {
		return errLostLease
	}
	return err
}

// leaderIdentity names this process in the Lease: the host name (the Pod's name, in a cluster) and a unique
// suffix, so that a restarted process with the same host name is not mistaken for the old one.
func leaderIdentity() (string, error) {
	hostname, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("reading the host name for the leader-election identity: %w", err)
	}
	return hostname + "_" + string(uuid.NewUUID()), nil
}
