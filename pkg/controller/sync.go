package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthv1alpha1ac "github.com/berthdev/berth/pkg/generated/applyconfiguration/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/shard"
)

// FieldManager is the name under which berth owns fields, in server-side apply and in managedFields.
const FieldManager = "berth"

// errUnsatisfiable marks an App that berth cannot run as it is: retrying will not help until the App or the
// object in its way changes, and either change brings the App back to the queue.
var errUnsatisfiable = errors.New("the App cannot be satisfied")

// errCacheBehind marks a sync that did nothing because the cache has not seen berth's last write of the App or
// its objects yet: the event of that write brings the App back.
var errCacheBehind = errors.New("the cache has not seen berth's last write yet")

// syncApp makes the world match one App: it reads the App and what it owns from the informers' caches, writes
// only what differs, and then records what it saw in the App's status.
// observation is what one sync saw of the objects an App depends on, which its status is made of (plan.Observed),
// and what the sync did that decides what comes next.
type observation struct {
	plan.Observed
	// wrote tells that the sync wrote an object the App owns.
	wrote bool
	// retry, when not zero, is when the App must be synced again although nothing it reads changes: a
	// correction that waits, or the end of a hold.
	retry time.Duration
	// deployment is the Deployment the sync applies (desiredDeployment).
	deployment *appsv1ac.DeploymentApplyConfiguration
	// configVersions are the versions of the Secrets and ConfigMaps the App's Pods read (plan.ConfigVersions).
	configVersions string
	// rollbackErr is why the sync could not tell whether the App's revision must be rolled back.
	rollbackErr error
}

// retryAfter asks for the App to be synced again after d, or sooner if another part of the sync asked so.
func (obs *observation) retryAfter(d time.Duration) {
	if d > 0 && (obs.retry == 0 || d < obs.retry) {
		obs.retry = d
	}
}

func (c *Controller) syncApp(ctx context.Context, key cache.ObjectName) error {
	app, err := c.appLister.Apps(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		// The garbage collector deletes what the App owned.
		c.expectations.forget(key)
		c.converged.forget(key)
		c.corrections.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if app.DeletionTimestamp != nil {
		return nil
	}
	if c.buckets != nil && !c.buckets.Has(shard.BucketOf(app.UID)) {
		// Its bucket is a function of its UID, and only that bucket's owner writes it.
		klog.FromContext(ctx).Info("Leaving alone an App of another member's bucket: its label was changed, "+
			"or the API server ignored the shard selector", "app", klog.KObj(app), "bucket", shard.BucketOf(app.UID))
		return nil
	}
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("app", klog.KObj(app)))
	owned, err := c.ownedVersions(key)
	if err != nil {
		return err
	}
	if !c.cacheCaughtUp(key, app, owned) {
		klog.FromContext(ctx).V(4).Info("The cache has not seen berth's last write yet; waiting for it")
		return errCacheBehind
	}
	pods, err := c.appPods(key)
	if err != nil {
		return err
	}
	configVersions, missingConfig, err := c.configVersions(app)
	if err != nil {
		return err
	}
	read := c.converged.versionsOf(app, owned, pods, configVersions)
	if c.converged.is(key, read) {
		return nil
	}
	// Remembered again below only if this sync, too, finds the App converged.
	c.converged.forget(key)

	obs := observation{Observed: plan.Observed{Pods: pods, MissingConfig: missingConfig},
		configVersions: configVersions}
	// A crash loop can end with no change in the cluster: the App recovers when the window of its last exit
	// passes.
	obs.retryAfter(plan.CrashLoopRecheck(pods, time.Now()))
	if obs.deployment, err = c.desiredDeployment(ctx, app, &obs); err != nil {
		return err
	}
	if c.buckets != nil {
		// The Pods, too, carry the bucket, so that the member's Pod informer selects them.
		obs.deployment.Spec.Template.WithLabels(map[string]string{shard.Label: shard.LabelValue(shard.BucketOf(app.UID))})
	}
	for i, k := range c.owned {
		if i > 0 && obs.Deployment == nil {
			// The other kinds wait for the Deployment (see newOwnedKinds).
			break
		}
		if err := k.sync(ctx, c, app, &obs); err != nil {
			return err
		}
	}

	wroteStatus, err := c.updateStatus(ctx, app, obs)
	if err != nil {
		return err
	}
	if obs.retry > 0 {
		c.queue.AddAfter(key, obs.retry)
	}
	switch {
	case obs.Conflict != "":
		return fmt.Errorf("%w: %s is not controlled by it", errUnsatisfiable, obs.Conflict)
	case obs.Refused != nil:
		return fmt.Errorf("%w: %s", errRefused, obs.Refused.Message)
	case obs.rollbackErr != nil:
		return obs.rollbackErr
	case !obs.wrote && !wroteStatus && obs.WaitingFor == "" && obs.retry == 0:
		// After a write, what was read is out of date: the events of berth's writes bring the App back.
		c.converged.set(key, read)
	}
	return nil
}

// appPods reads the App's Pods from the cache's index.
func (c *Controller) appPods(key cache.ObjectName) ([]*corev1.Pod, error) {
	objs, err := c.podIndexers.in(key.Namespace).ByIndex(podsByApp, key.String())
	if err != nil {
		return nil, err
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		if pod, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, pod)
		}
	}
	return pods, nil
}

// ownedVersion is the version of the App's object of one kind in the cache.
type ownedVersion struct {
	version string // "" when the cache holds none
	exists  bool
}

// maxOwnedKinds bounds the kinds an App may own, so that what a sync reads of them fits in arrays: no allocation
// on the path of a converged App's sync, the most common sync there is.
const maxOwnedKinds = 8

// ownedVersions are the versions of the App's objects of each kind, in the order of c.owned.
type ownedVersions [maxOwnedKinds]ownedVersion

// ownedVersions reads from the caches the versions of the App's objects, of each kind it may own.
func (c *Controller) ownedVersions(key cache.ObjectName) (ownedVersions, error) {
	var versions ownedVersions
	for i, k := range c.owned {
		version, exists, err := k.cachedVersion(key)
		if err != nil {
			return versions, err
		}
		versions[i] = ownedVersion{version: version, exists: exists}
	}
	return versions, nil
}

// cacheCaughtUp tells whether the caches show berth's last writes of the App's status and of its objects of
// each kind, whose versions the cache shows (owned, in the order of c.owned).
func (c *Controller) cacheCaughtUp(key cache.ObjectName, app *berthv1alpha1.App, owned ownedVersions) bool {
	if !c.expectations.caughtUp("apps", key, true, app.ResourceVersion) {
		return false
	}
	for i, k := range c.owned {
		if !c.expectations.caughtUp(k.resourceName(), key, owned[i].exists, owned[i].version) {
			return false
		}
	}
	return true
}

// updateStatus writes the App's status when it differs from what the App already says, and emits an Event when
// the App becomes degraded or recovers.
func (c *Controller) updateStatus(ctx context.Context, app *berthv1alpha1.App, obs observation) (wrote bool, err error) {
	status := plan.Status(app, obs.Observed, c.clusterDomain, metav1.Now())
	if equality.Semantic.DeepEqual(app.Status, status) {
		return false, nil
	}
	updated, err := c.berthClient.BerthV1alpha1().Apps(app.Namespace).ApplyStatus(ctx,
		statusApplyConfiguration(app, status), metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("writing status: %w", err)
	}
	c.expectations.wrote("apps", cache.MetaObjectToName(app), updated.ResourceVersion)
	klog.FromContext(ctx).V(2).Info("Updated status", "ready", status.Ready)
	c.recordDegradedTransition(app, status, obs.Refused != nil)
	return true, nil
}

// recordDegradedTransition emits one Event when the Degraded condition changes: a Warning when the App becomes
// degraded (or degraded for another reason), a Normal Event when it recovers. A refused write (refused) is a
// Warning also when only the message changed: another refusal, of the same reason (fix one invalid field, hit
// the next), is news to the App's user. A retry refused in the same words changes nothing, and is no Event.
func (c *Controller) recordDegradedTransition(app *berthv1alpha1.App, status berthv1alpha1.AppStatus, refused bool) {
	before := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
	after := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
	if after == nil {
		return
	}
	if before != nil && before.Status == after.Status && before.Reason == after.Reason &&
		(!refused || before.Message == after.Message) {
		return
	}
	switch {
	case after.Status == metav1.ConditionTrue:
		c.recorder.Eventf(app, corev1.EventTypeWarning, after.Reason, "%s", after.Message)
	case before != nil && before.Status == metav1.ConditionTrue:
		c.recorder.Eventf(app, corev1.EventTypeNormal, "Recovered", "The App is no longer degraded")
	}
}

// statusApplyConfiguration is the App's status as berth owns it: every field, and of the conditions only berth's
// three, so that a condition another controller adds stays that controller's alone. The UID makes the write fail
// rather than land on a new App that took the name of a deleted one.
func statusApplyConfiguration(app *berthv1alpha1.App, status berthv1alpha1.AppStatus) *berthv1alpha1ac.AppApplyConfiguration {
	s := berthv1alpha1ac.AppStatus().
		WithObservedGeneration(status.ObservedGeneration).
		WithReplicas(status.Replicas).
		WithReadyReplicas(status.ReadyReplicas).
		WithAvailableReplicas(status.AvailableReplicas).
		WithUpdatedReplicas(status.UpdatedReplicas).
		WithDesiredReplicas(status.DesiredReplicas).
		WithRevision(status.Revision).
		WithImages(status.Images...).
		WithAvailableRevision(status.AvailableRevision).
		WithPreviousAvailableRevision(status.PreviousAvailableRevision).
		WithReady(status.Ready).
		WithSelector(status.Selector)
	if status.URL != "" {
		s.WithURL(status.URL)
	}
	if status.RevisionSince != nil {
		s.WithRevisionSince(*status.RevisionSince)
	}
	if status.AvailableSince != nil {
		s.WithAvailableSince(*status.AvailableSince)
	}
	for _, c := range status.Conditions {
		if !plan.IsBerthCondition(c.Type) {
			continue
		}
		s.WithConditions(metav1ac.Condition().
			WithType(c.Type).
			WithStatus(c.Status).
			WithObservedGeneration(c.ObservedGeneration).
			WithLastTransitionTime(c.LastTransitionTime).
			WithReason(c.Reason).
			WithMessage(c.Message))
	}
	return berthv1alpha1ac.App(app.Name, app.Namespace).WithUID(app.UID).WithStatus(s)
}
