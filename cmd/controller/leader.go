package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// errLostLease is returned when this replica stopped leading other than by a graceful shutdown.
var errLostLease = errors.New("lost the leader-election lease")

// Why a leader stops working, other than a graceful shutdown: the cause of errLostLease.
var (
	// errLeaseNotOurs: the Lease shows another holder, or none. A Lease without a holder is free: a standby may
	// take it at its next try, without waiting for it to expire.
	errLeaseNotOurs = errors.New("the Lease no longer names this replica")
	// errRenewalOverdue: berth's own clock found the last renewal older than the renew deadline.
	errRenewalOverdue = errors.New("the Lease was not renewed within the renew deadline")
	// errElectorStopped: client-go's elector stopped leading (it gave up renewing).
	errElectorStopped = errors.New("the leader elector stopped")
)

// releaseTimeout bounds the release of the Lease at the end. A graceful shutdown must fit in the Pod's
// termination grace period after the drain, and a release that cannot be made only delays the next leader by
// the lease duration.
const releaseTimeout = 5 * time.Second

// runAsLeader campaigns for the Lease and runs the controller while this process holds it. It returns nil after a
// graceful shutdown (ctx done), and errLostLease when it stopped leading for any other reason: the process then
// exits non-zero, its Pod restarts, and it campaigns again from a clean state.
//
// Whatever stops the work ends the campaign too: a replica never goes on holding the Lease without working.
// The work stops
//   - on a graceful shutdown (ctx done), after a drain of the syncs under way;
//   - at once, when the Lease shows another holder or none (the watch of the Lease tells within milliseconds);
//   - at once, when berth's own clock finds that the last renewal that succeeded was sent longer than the renew
//     deadline ago. A standby takes the Lease only once it has seen it unchanged for the lease duration, so no
//     other replica can lead before the last renewal plus the lease duration: stopping at the renew deadline,
//     shorter by at least leaseMargin (options.validate), leaves no moment with two leaders, whatever client-go's
//     elector does meanwhile (it gives up only after the retry period and the renew deadline, and its context
//     ends later still);
//   - when client-go's elector stops leading.
//
// The Lease is released at the end, so that the next leader starts at once, but only when it still names this
// replica when read again (release): client-go's own release (ReleaseOnCancel) writes over whatever the Lease
// holds, and after a takeover it would blank the new leader's record.
func runAsLeader(ctx context.Context, opts options, client kubernetes.Interface, lease *leaseWatch,
	health *leaderHealth, watchdog *leaderelection.HealthzAdaptor,
	runController func(ctx context.Context, stop <-chan struct{}) error) error {
	logger := klog.FromContext(ctx)
	identity := lease.identity

	// The election, and the watch of the Lease, outlive ctx, so that the Lease is held until the controller has
	// drained.
	electionCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	lease.start(electionCtx)

	renewals := newRenewalClock(&resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: opts.leaderElectionNamespace, Name: opts.leaderElectionID},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}, clock.RealClock{})
	var leading atomic.Bool
	workErr := make(chan error, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          renewals,
		LeaseDuration: opts.leaseDuration,
		RenewDeadline: opts.renewDeadline,
		RetryPeriod:   opts.retryPeriod,
		WatchDog:      watchdog,
		Name:          opts.leaderElectionID,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaderCtx context.Context) {
				leading.Store(true)
				logger.Info("Became the leader", "identity", identity)
				err := lead(leaderCtx, ctx.Done(), lease, renewals, opts.renewDeadline, health, runController)
				stopElection()
				workErr <- err
			},
			OnStoppedLeading: func() {
				if leading.Load() {
					logger.Info("Stopped leading", "identity", identity)
				}
			},
			OnNewLeader: func(current string) {
				if current != identity && current != "" {
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
	// The elector has returned, so none of its requests is under way: the release cannot cross a renewal.
	err = <-workErr
	releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	switch released, releaseErr := release(releaseCtx, client.CoordinationV1(), opts.leaderElectionNamespace,
		opts.leaderElectionID, identity); {
	case releaseErr != nil:
		logger.Info("Could not release the Lease; the next leader takes it once it expires", "err", releaseErr)
	case released:
		logger.Info("Released the Lease", "identity", identity)
	}
	return err
}

// lead runs the controller while this replica leads, until one of the causes that runAsLeader lists stops it. It
// returns nil after a graceful shutdown (stop closed, the syncs drained) and errLostLease otherwise.
func lead(leaderCtx context.Context, stop <-chan struct{}, lease *leaseWatch, renewals *renewalClock,
	renewDeadline time.Duration, health *leaderHealth,
	runController func(ctx context.Context, stop <-chan struct{}) error) error {
	logger := klog.FromContext(leaderCtx)
	workCtx, stopWork := context.WithCancelCause(leaderCtx)
	defer stopWork(nil)
	lose := func(cause error) {
		// The probes fail from now on: this replica holds, or may hold, the Lease and does no work.
		health.stopped(cause)
		if workCtx.Err() == nil {
			logger.Info("Stopping work at once", "reason", cause.Error(), "identity", lease.identity)
		}
		stopWork(cause)
	}
	// The elector's context ends when it gives up; not after a graceful shutdown, which returns first.
	defer context.AfterFunc(leaderCtx, func() { lose(errElectorStopped) })()
	go func() {
		select {
		case <-lease.taken:
			lose(errLeaseNotOurs)
		case <-workCtx.Done():
		}
	}()
	go renewals.expire(workCtx, renewDeadline, func() { lose(errRenewalOverdue) })

	// A leader that cannot see its Lease could not tell that it was taken.
	if !cache.WaitForNamedCacheSyncWithContext(workCtx, lease.hasSynced) {
		return fmt.Errorf("%w: the watch of the Lease did not sync: %w", errLostLease, context.Cause(workCtx))
	}
	err := runController(workCtx, stop)
	if workCtx.Err() != nil {
		return fmt.Errorf("%w: %w", errLostLease, context.Cause(workCtx))
	}
	return err
}
