package main

import (
	"context"
	"fmt"
	"strconv"
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

// assigner keeps the table of the buckets' owners (shard.Next) for the live members, while this replica leads.
// A member is live until the lease duration has passed since the assigner last saw its Lease change: by the
// assigner's own clock, as a standby counts a leader's Lease, so that the members' clocks do not matter.
type assigner struct {
	leases *shardLeases
	client coordinationv1client.LeaseInterface
	opts   options
	// labeler labels the Apps with their buckets (nil when the members need no label on Apps).
	labeler *labeler
	metrics assignerMetrics
	changed chan struct{}

	// seen is, for each member's Lease, the resourceVersion last seen and when it was first seen.
	seen map[string]seenLease
	// waitedFor is the generation of the table for which the assigner last logged whom it waits for.
	waitedFor int64
	// wroteOver is the resourceVersion of the table's Lease that this assigner's last write replaced: while the
	// cache still shows it, a step would start from the table before the write, and its write could only conflict.
	wroteOver string
}

type seenLease struct {
	resourceVersion string
	at              time.Time
}

type assignerMetrics struct {
	setMembers    func(int)
	setUnassigned func(int)
}

func newAssigner(client coordinationv1client.LeaseInterface, leases *shardLeases, opts options, labeler *labeler,
	metrics assignerMetrics) (*assigner, error) {
	a := &assigner{leases: leases, client: client, opts: opts, labeler: labeler, metrics: metrics,
		changed: make(chan struct{}, 1), seen: map[string]seenLease{}}
	if err := leases.onChange(func() {
		select {
		case a.changed <- struct{}{}:
		default:
		}
	}); err != nil {
		return nil, fmt.Errorf("watching the Leases of sharding: %w", err)
	}
	return a, nil
}

// run assigns until ctx is done or stop is closed. Its signature is the one runAsLeader runs.
func (a *assigner) run(ctx context.Context, stop <-chan struct{}) error {
	logger := klog.FromContext(ctx).WithName("assigner")
	ctx = klog.NewContext(ctx, logger)
	if a.labeler != nil {
		done := make(chan struct{})
		labelCtx, cancel := context.WithCancel(ctx)
		go func() {
			defer close(done)
			a.labeler.run(labelCtx)
		}()
		defer func() {
			cancel()
			<-done
		}()
	}
	if !cache.WaitForNamedCacheSyncWithContext(ctx, a.leases.hasSynced) {
		return context.Cause(ctx)
	}
	logger.Info("Assigning the buckets to the members")
	// Steps come at every change of the Leases, and every retry period to see members expire.
	tick := time.NewTicker(a.opts.retryPeriod / 2)
	defer tick.Stop()
	for {
		if err := a.step(ctx, time.Now()); err != nil {
			logger.Info("The assignment could not step; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-a.changed:
		case <-tick.C:
		}
	}
}

// step moves the table one step towards the ring of the live members, and deletes the Leases of the members
// that expired.
func (a *assigner) step(ctx context.Context, now time.Time) error {
	logger := klog.FromContext(ctx)
	table, tableLease, err := a.leases.table()
	if err != nil {
		return err
	}
	if tableLease == nil {
		return a.createTable(ctx)
	}
	if tableLease.ResourceVersion == a.wroteOver {
		return nil // the cache is behind this assigner's last write; its event brings the next step
	}
	leases, err := a.leases.members()
	if err != nil {
		return err
	}
	live := make([]shard.Member, 0, len(leases))
	current := map[string]bool{}
	for _, lease := range leases {
		current[lease.Name] = true
		seen, ok := a.seen[lease.Name]
		if !ok || seen.resourceVersion != lease.ResourceVersion {
			seen = seenLease{resourceVersion: lease.ResourceVersion, at: now}
			a.seen[lease.Name] = seen
		}
		if now.Sub(seen.at) < a.opts.leaseDuration {
			live = append(live, shard.Member{Name: holder(lease), Applied: applied(lease)})
			continue
		}
		logger.Info("A member's Lease expired; its buckets move", "member", holder(lease), "lease", klog.KObj(lease))
		rv := lease.ResourceVersion
		err := a.client.Delete(ctx, lease.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			logger.Info("Cannot delete the expired Lease", "lease", klog.KObj(lease), "err", err)
		}
	}
	for name := range a.seen {
		if !current[name] {
			delete(a.seen, name)
		}
	}
	a.metrics.setMembers(len(live))
	next, changed := shard.Next(table, live)
	a.metrics.setUnassigned(next.Unassigned().Len())
	if !changed {
		if table.Unassigned().Len() > 0 && a.waitedFor != table.Generation {
			// Once per generation: which members hold the next step back, for whoever wonders why buckets
			// stay unassigned (BerthAppsUnassigned).
			a.waitedFor = table.Generation
			var lagging []string
			for _, m := range live {
				if m.Applied < table.Generation {
					lagging = append(lagging, m.Name)
				}
			}
			logger.Info("Waiting for members to apply the table before giving its unassigned buckets",
				"generation", table.Generation, "unassigned", table.Unassigned().Len(), "members", lagging)
		}
		return nil
	}
	lease := tableLease.DeepCopy()
	lease.Annotations[annotationGeneration] = strconv.FormatInt(next.Generation, 10)
	lease.Annotations[annotationOwners] = next.EncodeOwners()
	if _, err := a.client.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing generation %d of the table: %w", next.Generation, err)
	}
	a.wroteOver = tableLease.ResourceVersion
	logger.Info("Wrote the table of the buckets' owners", "generation", next.Generation, "members", len(live),
		"unassigned", next.Unassigned().Len())
	return nil
}

// createTable creates the table's Lease, with no bucket owned: the next step gives them.
func (a *assigner) createTable(ctx context.Context) error {
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: a.leases.tableName(), Namespace: a.leases.namespace,
			Labels:      map[string]string{labelSharding: a.leases.id, labelRole: roleTable},
			Annotations: map[string]string{annotationGeneration: "0", annotationOwners: ""}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("")},
	}
	_, err := a.client.Create(ctx, lease, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil // the cache is behind
	}
	return err
}
