package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// What berth knows of its leader-election Lease besides what client-go's elector does: a watch of it, a clock of
// its renewals, a release that cannot clear another replica's record, and what the probes say of a leader that
// stopped working.

// leaseMargin is how much shorter than the lease duration the renew deadline must be (options.validate): berth
// stops working at the renew deadline after its last renewal, and a write sent just before that may still be on
// its way to the API server.
const leaseMargin = time.Second

// leaseWatch watches the leader-election Lease and closes taken when the Lease shows another holder than
// identity, or none, after it showed identity: this replica led, and the Lease is now another's, or free for any
// standby to take. Events come in the Lease's order, so an older record of the previous holder, seen after this
// replica acquired the Lease, cannot be mistaken for a takeover.
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

// renewalClock is the elector's lock of the Lease, with a clock of berth's own: it records when the last write
// that made or kept this replica the holder (an acquisition or a renewal) was sent, by this process's monotonic
// clock. The write landed after it was sent, and a standby's count of the lease duration starts when it sees the
// write: no other replica can hold the Lease before that time plus the lease duration.
type renewalClock struct {
	resourcelock.Interface
	clock clock.Clock

	mu   sync.Mutex
	last time.Time
	// renewed wakes expire after each renewal.
	renewed chan struct{}
}

func newRenewalClock(lock resourcelock.Interface, clock clock.Clock) *renewalClock {
	return &renewalClock{Interface: lock, clock: clock, renewed: make(chan struct{}, 1)}
}

// Create creates the Lease, as the elector does for a Lease that does not exist yet.
func (r *renewalClock) Create(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	return r.record(record, func() error { return r.Interface.Create(ctx, record) })
}

// Update writes the Lease: a renewal, an acquisition or a release.
func (r *renewalClock) Update(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	return r.record(record, func() error { return r.Interface.Update(ctx, record) })
}

// record makes the write, and records when it was sent if it succeeded and names this replica.
func (r *renewalClock) record(record resourcelock.LeaderElectionRecord, write func() error) error {
	sent := r.clock.Now()
	if err := write(); err != nil {
		return err
	}
	if record.HolderIdentity != r.Identity() {
		return nil
	}
	r.mu.Lock()
	if sent.After(r.last) {
		r.last = sent
	}
	r.mu.Unlock()
	select {
	case r.renewed <- struct{}{}:
	default:
	}
	return nil
}

// lastRenewal is when the last write that made or kept this replica the holder was sent; zero if none was.
func (r *renewalClock) lastRenewal() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// expire calls expired once the last renewal was sent longer than deadline ago, unless ctx is done first. With
// no renewal at all, it calls it at once.
func (r *renewalClock) expire(ctx context.Context, deadline time.Duration, expired func()) {
	for {
		wait := r.lastRenewal().Add(deadline).Sub(r.clock.Now())
		if wait <= 0 {
			expired()
			return
		}
		timer := r.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.renewed:
			timer.Stop()
		case <-timer.C():
		}
	}
}

// release hands the Lease on, as client-go's release does (no holder, a lease of one second: standbys take it at
// their next try), but only when the Lease, read now, still names identity; the write carries the
// resourceVersion of that read, so it fails rather than clear a record that another replica wrote since. It
// tells whether it released the Lease.
func release(ctx context.Context, client coordinationv1client.LeasesGetter, namespace, name, identity string) (bool, error) {
	lease, err := client.Leases(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("reading the Lease: %w", err)
	}
	if ptr.Deref(lease.Spec.HolderIdentity, "") != identity {
		klog.FromContext(ctx).V(2).Info("Not releasing the Lease: it names another holder, or none",
			"holder", ptr.Deref(lease.Spec.HolderIdentity, ""))
		return false, nil
	}
	now := metav1.NowMicro()
	lease.Spec.HolderIdentity = nil
	lease.Spec.LeaseDurationSeconds = ptr.To[int32](1)
	lease.Spec.AcquireTime = &now
	lease.Spec.RenewTime = &now
	if _, err := client.Leases(namespace).Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("releasing the Lease: %w", err)
	}
	return true, nil
}

// leaderHealth is what the probes say of leadership: a replica that stopped working as the leader other than by
// a graceful shutdown is neither healthy nor ready, for the moments until it exits (the release of the Lease
// included), so that nothing counts on it.
type leaderHealth struct {
	cause atomic.Pointer[error]
}

// stopped records why the leader stopped working; the first cause is kept.
func (h *leaderHealth) stopped(cause error) {
	h.cause.CompareAndSwap(nil, &cause)
}

// check returns why the leader stopped working, or nil while it has not.
func (h *leaderHealth) check() error {
	if h == nil {
		return nil
	}
	if cause := h.cause.Load(); cause != nil {
		return fmt.Errorf("the leader stopped working: %w", *cause)
	}
	return nil
}
