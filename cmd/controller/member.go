package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/pkg/shard"
)

// errMemberLost is returned when this member stopped working other than by a graceful shutdown: its Lease was
// not renewed within the renew deadline, or was deleted. The process exits and comes back as a new member.
var errMemberLost = errors.New("lost the member's Lease")

// errWorkStuck is returned when the work of the member's buckets did not end within the drain timeout and
// workStopGrace after it. Such a member can neither acknowledge the table (its syncs may still write) nor go on
// renewing a Lease that holds every move back: the process exits, its syncs with it, and its Lease expires.
var errWorkStuck = errors.New("the work of the member's buckets did not stop")

// workStopGrace is how long the work of the member's buckets may take to end once its syncs are cancelled.
const workStopGrace = 10 * time.Second

// work is what syncs one member's share of the Apps: informers selecting the buckets' objects, and a controller
// over them. A member's work is a function of its buckets: when the table changes them, the work is stopped
// (its syncs drained) and another started.
type work interface {
	// run syncs Apps until stop is closed (a drain) or ctx is done (at once), and returns once no sync is under
	// way.
	run(ctx context.Context, stop <-chan struct{}) error
}

// member is this replica as one of the members that share the Apps (--sharding). It holds a Lease of its own,
// renewed every retry period, and applies each table the assigner writes: it stops the syncs of the buckets the
// table takes from it, says in its Lease which generation it has applied, and then starts on what it was given.
type member struct {
	identity  string
	leaseName string
	client    coordinationv1client.LeaseInterface
	leases    *shardLeases
	opts      options
	// newWork makes the work of a set of buckets.
	newWork func(shard.Set) (work, error)
	// changed wakes run when the Leases change.
	changed chan struct{}
	// metrics reports the buckets this member holds.
	setBuckets func(int)
	// stopGrace is workStopGrace, and dumpStacks logs every goroutine's stack, for whoever finds out why a work
	// did not stop.
	stopGrace  time.Duration
	dumpStacks func(logger klog.Logger)

	mu      sync.Mutex
	lease   *coordinationv1.Lease // as the last write left it
	applied int64
	// renewed is when the last write of the Lease that succeeded was sent, by the monotonic clock.
	renewed time.Time
}

func newMember(identity string, client coordinationv1client.LeaseInterface, leases *shardLeases, opts options,
	newWork func(shard.Set) (work, error), setBuckets func(int)) (*member, error) {
	m := &member{identity: identity, leaseName: leases.memberLeaseName(identity), client: client, leases: leases,
		opts: opts, newWork: newWork, changed: make(chan struct{}, 1), setBuckets: setBuckets,
		stopGrace: workStopGrace, dumpStacks: logStacks}
	if err := leases.onChange(m.wake); err != nil {
		return nil, fmt.Errorf("watching the Leases of sharding: %w", err)
	}
	return m, nil
}

func (m *member) wake() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// running is the work of the buckets the member applied, while it runs.
type running struct {
	buckets shard.Set
	stop    chan struct{}
	cancel  context.CancelFunc
	done    chan error
}

// run is the member's life: it joins (creates its Lease), applies every table until ctx is done or its Lease is
// lost, and leaves (drains its work, deletes its Lease, so that its buckets move at once rather than at the
// Lease's expiry). It returns nil after a graceful shutdown, errWorkStuck when a work did not stop, and
// errMemberLost otherwise.
func (m *member) run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithValues("member", m.identity)
	ctx = klog.NewContext(ctx, logger)
	if err := m.join(ctx); err != nil {
		return err
	}
	// The member's own context ends at its renew deadline: after it, another member may own its buckets.
	memberCtx, lose := context.WithCancelCause(context.WithoutCancel(ctx))
	var renewals sync.WaitGroup
	renewals.Go(func() { m.renew(memberCtx, lose) })
	// Whatever ends the member ends its renewals first: waiting for them alone would wait forever.
	defer func() {
		lose(nil)
		renewals.Wait()
	}()

	if !cache.WaitForNamedCacheSyncWithContext(memberCtx, m.leases.hasSynced) {
		return fmt.Errorf("%w: the watch of the Leases did not sync: %w", errMemberLost, context.Cause(memberCtx))
	}
	// held are the buckets of the table the member applied last, and current their work, while it runs.
	var held shard.Set
	var current *running
	applied := false // whether the member has applied a table yet
	// stopWork ends the current work: drained, or at once. It gives up after the drain timeout and
	// workStopGrace, with errWorkStuck.
	stopWork := func(drain bool) error {
		if current == nil {
			return nil
		}
		limit := m.stopGrace
		if drain {
			close(current.stop)
			limit += m.opts.drainTimeout
		} else {
			current.cancel()
		}
		timer := time.NewTimer(limit)
		defer timer.Stop()
		select {
		case err := <-current.done:
			if err != nil {
				logger.Error(err, "The work of the buckets ended with an error", "buckets", current.buckets.String())
			}
		case <-timer.C:
			current.cancel()
			err := fmt.Errorf("%w within %s; buckets %s", errWorkStuck, limit, current.buckets.String())
			logger.Error(err, "Exiting: the buckets move once the member's Lease expires")
			m.dumpStacks(logger)
			return err
		}
		current.cancel()
		current = nil
		return nil
	}
	tick := time.NewTicker(m.opts.retryPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			logger.Info("Leaving: draining the syncs under way")
			if err := stopWork(true); err != nil {
				return err // the Lease stays: syncs may write until the process exits
			}
			lose(nil)
			renewals.Wait()
			m.leave(ctx)
			return nil
		case <-memberCtx.Done():
			lost := fmt.Errorf("%w: %w", errMemberLost, context.Cause(memberCtx))
			return errors.Join(lost, stopWork(false))
		case <-m.changed:
		case <-tick.C:
		}
		table, lease, err := m.leases.table()
		if err != nil {
			logger.Error(err, "Cannot read the table of the buckets' owners")
			continue
		}
		if lease == nil || applied && table.Generation <= m.appliedGeneration() {
			continue // no table yet, or none newer: the cache may be behind what this member applied
		}
		applied = true
		if mine := table.Of(m.identity); mine != held {
			if current != nil {
				logger.Info("Stopping the work of the buckets held, to apply the table", "generation", table.Generation)
			}
			if err := stopWork(true); err != nil {
				return err
			}
			held = mine
			if mine.Len() > 0 {
				w, err := m.newWork(mine)
				if err != nil {
					return err
				}
				current = m.start(memberCtx, w, mine)
			}
			logger.Info("Applied the assignment", "generation", table.Generation, "buckets", mine.Len(),
				"ranges", mine.String())
			m.setBuckets(mine.Len())
		}
		if table.Generation != m.appliedGeneration() {
			m.setApplied(table.Generation)
			// Acknowledged at once: the assigner waits for it to go on.
			if err := m.write(memberCtx); err != nil {
				logger.Info("Cannot acknowledge the table yet; the next renewal does", "err", err)
			}
		}
	}
}

// logStacks logs the stack of every goroutine of the process.
func logStacks(logger klog.Logger) {
	buf := make([]byte, 4<<20)
	logger.Info("The goroutines of the process", "stacks", string(buf[:runtime.Stack(buf, true)]))
}

// start runs w for buckets under ctx.
func (m *member) start(ctx context.Context, w work, buckets shard.Set) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{buckets: buckets, stop: make(chan struct{}), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.run(ctx, r.stop) }()
	return r
}

func (m *member) appliedGeneration() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

func (m *member) setApplied(g int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied = g
}

// join creates the member's Lease, retrying until it is made or ctx is done.
func (m *member) join(ctx context.Context) error {
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: m.leaseName, Namespace: m.leases.namespace,
			Labels:      map[string]string{labelSharding: m.leases.id, labelRole: roleMember},
			Annotations: map[string]string{annotationApplied: "0"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(m.identity), AcquireTime: &now, RenewTime: &now,
			LeaseDurationSeconds: ptr.To(int32(m.opts.leaseDuration.Seconds()))},
	}
	for {
		sent := time.Now()
		created, err := m.client.Create(ctx, lease, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// An earlier create may have landed although its answer was lost.
			if current, getErr := m.client.Get(ctx, m.leaseName, metav1.GetOptions{}); getErr == nil &&
				holder(current) == m.identity {
				created, err = current, nil
			}
		}
		if err == nil {
			m.mu.Lock()
			m.lease, m.renewed = created, sent
			m.mu.Unlock()
			klog.FromContext(ctx).Info("Joined the members", "lease", klog.KObj(created))
			return nil
		}
		klog.FromContext(ctx).Info("Cannot create the member's Lease yet", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("creating the member's Lease: %w", err)
		case <-time.After(m.opts.retryPeriod):
		}
	}
}

// renew writes the Lease every retry period, and ends the member (lose) when the last write that succeeded was
// sent longer than the renew deadline ago, or the Lease is gone: the assigner counts the member as live until
// the lease duration after it last saw the Lease change, which is later.
func (m *member) renew(ctx context.Context, lose context.CancelCauseFunc) {
	tick := time.NewTicker(m.opts.retryPeriod)
	defer tick.Stop()
	for {
		m.mu.Lock()
		deadline := m.renewed.Add(m.opts.renewDeadline)
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(deadline)):
			lose(errRenewalOverdue)
			return
		case <-tick.C:
		}
		err := m.write(ctx)
		if apierrors.IsNotFound(err) {
			lose(fmt.Errorf("the member's Lease was deleted: %w", err))
			return
		}
		if err != nil {
			klog.FromContext(ctx).Info("Cannot renew the member's Lease; retrying", "err", err)
		}
	}
}

// write renews the Lease, with the generation applied. A conflict means that an earlier write landed although
// its answer was lost (a timeout): the Lease is read again and, if it is still this member's, written on top.
func (m *member) write(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	writeCtx, cancel := context.WithTimeout(ctx, m.opts.renewDeadline)
	defer cancel()
	err := m.update(writeCtx)
	if !apierrors.IsConflict(err) {
		return err
	}
	current, err := m.client.Get(writeCtx, m.leaseName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if holder(current) != m.identity {
		return fmt.Errorf("the member's Lease names %q", holder(current))
	}
	m.lease = current
	return m.update(writeCtx)
}

// update writes m.lease with the renewal and the generation applied; m.mu is held.
func (m *member) update(ctx context.Context) error {
	lease := m.lease.DeepCopy()
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[annotationApplied] = strconv.FormatInt(m.applied, 10)
	now := metav1.NewMicroTime(time.Now())
	lease.Spec.RenewTime = &now
	sent := time.Now()
	updated, err := m.client.Update(ctx, lease, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	m.lease, m.renewed = updated, sent
	return nil
}

// leave deletes the member's Lease, if it is still the one this member wrote.
func (m *member) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	m.mu.Lock()
	rv := m.lease.ResourceVersion
	m.mu.Unlock()
	err := m.client.Delete(ctx, m.leaseName, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Info("Could not delete the member's Lease; its buckets move once it expires", "err", err)
		return
	}
	klog.FromContext(ctx).Info("Left the members")
}
