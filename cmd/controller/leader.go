package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// errLostLease is returned when another replica took the lease while this one was leading.
var errLostLease = errors.New("lost the leader-election lease")

// runAsLeader campaigns for the Lease and runs the controller while this process holds it.
//
// On shutdown (ctx done) the order matters: the controller stops taking keys and drains its syncs first, and only
// then is the Lease released, so that the next leader never works beside this one; releasing it (rather than
// letting it expire) lets that leader start at once.
//
// Losing the Lease stops the controller at once, without a drain: another replica may lead already. It is lost
// when a renewal fails for the renew deadline (client-go then cancels the leader's context), or as soon as the
// Lease shows another holder (a watch of the Lease tells, well before the next renewal would). runAsLeader then
// returns errLostLease: the process exits, and its restart campaigns again from a clean state.
func runAsLeader(ctx context.Context, opts options, client kubernetes.Interface, lease *leaseWatch,
	watchdog *leaderelection.HealthzAdaptor, runController func(ctx context.Context, stop <-chan struct{}) error) error {
	logger := klog.FromContext(ctx)
	identity := lease.identity

	// The election, and the watch of the Lease, outlive ctx, so that the Lease is held until the controller has
	// drained.
	electionCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	lease.start(electionCtx)

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
				// Work until the Lease is lost, or shut down gracefully when ctx is done.
				workCtx, stopWork := context.WithCancel(leaderCtx)
				defer stopWork()
				go func() {
					select {
					case <-lease.taken:
						logger.Info("The Lease shows another holder: stopping work at once", "identity", identity)
						stopWork()
					case <-workCtx.Done():
					}
				}()
				// A leader that cannot see its Lease could not tell that it was taken.
				if !cache.WaitForNamedCacheSyncWithContext(workCtx, lease.hasSynced) {
					controllerErr <- errors.New("the watch of the leader-election Lease did not sync")
					return
				}
				controllerErr <- runController(workCtx, ctx.Done())
				if workCtx.Err() == nil {
					// A graceful shutdown, now drained: release the Lease. Not after losing it: the release
					// would clear the new holder's record.
					stopElection()
				}
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

// leaseWatch watches the leader-election Lease and closes taken when the Lease shows another holder than
// identity after it showed identity: this replica led, and another took over. Events come in the Lease's order,
// so an older record of the previous holder, seen after this replica acquired the Lease, cannot be mistaken for a
// takeover.
type leaseWatch struct {
	identity string
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	taken    chan struct{}

	held, lost bool // used by the informer's one handler goroutine only
}

// newLeaseWatch prepares the watch of the Lease for identity; start starts it. It lists and watches the Lease by
// name (a field selector on metadata.name), which the Role of artifacts/deploy allows for that name alone.
func newLeaseWatch(client kubernetes.Interface, opts options, identity string) (*leaseWatch, error) {
	w := &leaseWatch{identity: identity, taken: make(chan struct{})}
	w.factory = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(opts.leaderElectionNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", opts.leaderElectionID).String()
		}))
	w.informer = w.factory.Coordination().V1().Leases().Informer()
	if _, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.observe,
		UpdateFunc: func(_, newObj any) { w.observe(newObj) },
	}); err != nil {
		return nil, fmt.Errorf("watching the leader-election Lease: %w", err)
	}
	return w, nil
}

func (w *leaseWatch) observe(obj any) {
	lease, ok := obj.(*coordinationv1.Lease)
	if !ok || w.lost {
		return
	}
	switch holder := ptr.Deref(lease.Spec.HolderIdentity, ""); {
	case holder == w.identity:
		w.held = true
	case w.held:
		w.lost = true
		close(w.taken)
	}
}

// start runs the watch until ctx is done.
func (w *leaseWatch) start(ctx context.Context) { w.factory.Start(ctx.Done()) }

// hasSynced tells whether the watch has listed the Lease: until it has, it could not see it taken.
func (w *leaseWatch) hasSynced() bool { return w.informer.HasSynced() }

// leaderIdentity names this process in the Lease: the host name (the Pod's name, in a cluster) and a unique
// suffix, so that a restarted process with the same host name is not mistaken for the old one.
func leaderIdentity() (string, error) {
	hostname, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("reading the host name for the leader-election identity: %w", err)
	}
	return hostname + "_" + string(uuid.NewUUID()), nil
}
