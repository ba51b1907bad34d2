package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthv1alpha1ac "github.com/berthdev/berth/pkg/generated/applyconfiguration/berth/v1alpha1"
)

// FieldManager is the name under which berth owns fields, in server-side apply and in managedFields.
const FieldManager = "berth"

// errUnsatisfiable marks an App that berth cannot run as it is: retrying will not help until the App or the
// object in its way changes, and either change brings the App back to the queue.
var errUnsatisfiable = errors.New("the App cannot be satisfied")

// syncApp makes the world match one App: it reads the App and what it owns from the informers' caches, writes
// only what differs, and then records what it saw in the App's status.
func (c *Controller) syncApp(ctx context.Context, key cache.ObjectName) error {
	app, err := c.appLister.Apps(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		// The garbage collector deletes what the App owned.
		c.expectations.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if app.DeletionTimestamp != nil {
		return nil
	}
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("app", klog.KObj(app)))
	if !c.cacheCaughtUp(key, app) {
		// The event of berth's own write is on its way and brings the key back; the delay is a fallback.
		klog.FromContext(ctx).V(4).Info("The cache has not seen berth's last write yet; waiting for it")
		c.queue.AddAfter(key, time.Second)
		return nil
	}

	var obs observation
	obs.deployment, err = c.syncDeployment(ctx, app, &obs)
	if err != nil {
		return err
	}
	if obs.conflict == "" && obs.rejected == "" {
		if err := c.syncService(ctx, app, &obs); err != nil {
			return err
		}
	}
	obs.pods, err = c.podLister.Pods(app.Namespace).List(labels.SelectorFromSet(selectorLabels(app)))
	if err != nil {
		return err
	}

	if err := c.updateStatus(ctx, app, obs); err != nil {
		return err
	}
	if obs.conflict != "" {
		return fmt.Errorf("%w: %s is not controlled by it", errUnsatisfiable, obs.conflict)
	}
	if obs.rejected != "" {
		return fmt.Errorf("%w: %s", errUnsatisfiable, obs.rejected)
	}
	return nil
}

// cacheCaughtUp tells whether the caches show berth's last writes of the App's status, Deployment and Service.
func (c *Controller) cacheCaughtUp(key cache.ObjectName, app *berthv1alpha1.App) bool {
	if !c.expectations.caughtUp("apps", key, true, app.ResourceVersion) {
		return false
	}
	d, err := c.deploymentLister.Deployments(key.Namespace).Get(key.Name)
	if !c.expectations.caughtUp("deployments", key, err == nil, versionOf(d, err)) {
		return false
	}
	s, err := c.serviceLister.Services(key.Namespace).Get(key.Name)
	return c.expectations.caughtUp("services", key, err == nil, versionOf(s, err))
}

func versionOf(obj metav1.Object, err error) string {
	if err != nil {
		return ""
	}
	return obj.GetResourceVersion()
}

// syncDeployment creates or corrects the App's Deployment and returns the freshest copy of it that berth has.
// A Deployment of the App's name that the App does not control is left alone and recorded in obs.conflict.
func (c *Controller) syncDeployment(ctx context.Context, app *berthv1alpha1.App, obs *observation) (*appsv1.Deployment, error) {
	key := cache.MetaObjectToName(app)
	deployments := c.kubeClient.AppsV1().Deployments(app.Namespace)
	desired := desiredDeployment(app)
	existing, err := c.deploymentLister.Deployments(app.Namespace).Get(app.Name)
	created := false
	switch {
	case apierrors.IsNotFound(err):
		var d appsv1.Deployment
		if err := convertApplyConfiguration(desired, &d); err != nil {
			return nil, err
		}
		existing, err = deployments.Create(ctx, &d, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil {
			return nil, c.rejectedOr(obs, "Deployment", err)
		}
		c.expectations.created("deployments", key)
		c.recorder.Eventf(app, existing, corev1.EventTypeNormal, "Created", "Create", "Created Deployment %q", existing.Name)
		created = true
		if existing, err = takeOwnership(ctx, existing, deployments.Patch, c.expectations, "deployments"); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case !isControlledBy(existing, app):
		obs.conflict = fmt.Sprintf("Deployment %q", existing.Name)
		return nil, nil
	case ownsByCreate(existing):
		// The ownership patch after the create did not land. The cache lacks the managedFields of other managers
		// that the patch must keep: patch a fresh copy.
		if existing, err = deployments.Get(ctx, existing.Name, metav1.GetOptions{}); err != nil {
			return nil, err
		}
		if existing, err = takeOwnership(ctx, existing, deployments.Patch, c.expectations, "deployments"); err != nil {
			return nil, err
		}
	}

	owned, err := appsv1ac.ExtractDeployment(existing, FieldManager)
	if err != nil {
		return nil, fmt.Errorf("reading berth's fields of Deployment %q: %w", existing.Name, err)
	}
	if equality.Semantic.DeepEqual(desired, owned) {
		return existing, nil
	}
	// The UID makes the apply fail, rather than take over, if the Deployment was replaced since the cache saw it.
	desired.WithUID(existing.UID)
	applied, err := deployments.Apply(ctx, desired, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return nil, c.rejectedOr(obs, "Deployment", err)
	}
	c.expectations.wrote("deployments", key, existing.ResourceVersion, applied.ResourceVersion)
	klog.FromContext(ctx).V(2).Info("Applied Deployment", "deployment", klog.KObj(applied))
	if !created {
		c.recorder.Eventf(app, applied, corev1.EventTypeNormal, "Updated", "Update", "Updated Deployment %q", applied.Name)
	}
	return applied, nil
}

// syncService creates, corrects or deletes the App's Service: it exists exactly while the App has a port.
func (c *Controller) syncService(ctx context.Context, app *berthv1alpha1.App, obs *observation) error {
	key := cache.MetaObjectToName(app)
	services := c.kubeClient.CoreV1().Services(app.Namespace)
	desired := desiredService(app)
	existing, err := c.serviceLister.Services(app.Namespace).Get(app.Name)
	created := false
	switch {
	case apierrors.IsNotFound(err) && desired == nil:
		return nil
	case apierrors.IsNotFound(err):
		var s corev1.Service
		if err := convertApplyConfiguration(desired, &s); err != nil {
			return err
		}
		existing, err = services.Create(ctx, &s, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil {
			return c.rejectedOr(obs, "Service", err)
		}
		c.expectations.created("services", key)
		c.recorder.Eventf(app, existing, corev1.EventTypeNormal, "Created", "Create", "Created Service %q", existing.Name)
		created = true
		if existing, err = takeOwnership(ctx, existing, services.Patch, c.expectations, "services"); err != nil {
			return err
		}
	case err != nil:
		return err
	case !isControlledBy(existing, app):
		if desired != nil {
			obs.conflict = fmt.Sprintf("Service %q", existing.Name)
		}
		return nil
	case desired == nil:
		// The precondition keeps a Service that replaced ours since the cache saw it.
		err := services.Delete(ctx, existing.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &existing.UID},
		})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		// Until the cache sees the deletion, the version it shows is outdated.
		c.expectations.deleted("services", key, existing.ResourceVersion)
		c.recorder.Eventf(app, existing, corev1.EventTypeNormal, "Deleted", "Delete",
			"Deleted Service %q: the App has no port", existing.Name)
		return nil
	case ownsByCreate(existing):
		if existing, err = services.Get(ctx, existing.Name, metav1.GetOptions{}); err != nil {
			return err
		}
		if existing, err = takeOwnership(ctx, existing, services.Patch, c.expectations, "services"); err != nil {
			return err
		}
	}

	owned, err := corev1ac.ExtractService(existing, FieldManager)
	if err != nil {
		return fmt.Errorf("reading berth's fields of Service %q: %w", existing.Name, err)
	}
	if equality.Semantic.DeepEqual(desired, owned) {
		return nil
	}
	desired.WithUID(existing.UID)
	applied, err := services.Apply(ctx, desired, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return c.rejectedOr(obs, "Service", err)
	}
	c.expectations.wrote("services", key, existing.ResourceVersion, applied.ResourceVersion)
	klog.FromContext(ctx).V(2).Info("Applied Service", "service", klog.KObj(applied))
	if !created {
		c.recorder.Eventf(app, applied, corev1.EventTypeNormal, "Updated", "Update", "Updated Service %q", applied.Name)
	}
	return nil
}

// rejectedOr records a write that the API server refused as invalid in obs, since retrying it cannot succeed
// until the App changes; any other error is returned to be retried.
func (c *Controller) rejectedOr(obs *observation, kind string, err error) error {
	if apierrors.IsInvalid(err) {
		obs.rejected = fmt.Sprintf("the API server rejected the %s built from this App: %v", kind, err)
		return nil
	}
	return fmt.Errorf("writing %s: %w", kind, err)
}

// updateStatus writes the App's status when it differs from what the App already says, and emits an Event when
// the App becomes degraded or recovers.
func (c *Controller) updateStatus(ctx context.Context, app *berthv1alpha1.App, obs observation) error {
	status := computeStatus(app, obs, c.clusterDomain, metav1.Now())
	if equality.Semantic.DeepEqual(app.Status, status) {
		return nil
	}
	updated, err := c.berthClient.BerthV1alpha1().Apps(app.Namespace).ApplyStatus(ctx,
		statusApplyConfiguration(app, status), metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	c.expectations.wrote("apps", cache.MetaObjectToName(app), app.ResourceVersion, updated.ResourceVersion)
	klog.FromContext(ctx).V(2).Info("Updated status", "ready", status.Ready)
	c.recordDegradedTransition(app, status)
	return nil
}

// recordDegradedTransition emits one Event when the Degraded condition changes: a Warning when the App becomes
// degraded (or degraded for another reason), a Normal Event when it recovers.
func (c *Controller) recordDegradedTransition(app *berthv1alpha1.App, status berthv1alpha1.AppStatus) {
	before := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
	after := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
	if after == nil || (before != nil && before.Status == after.Status && before.Reason == after.Reason) {
		return
	}
	switch {
	case after.Status == metav1.ConditionTrue:
		c.recorder.Eventf(app, nil, corev1.EventTypeWarning, after.Reason, "Reconcile", "%s", after.Message)
	case before != nil && before.Status == metav1.ConditionTrue:
		c.recorder.Eventf(app, nil, corev1.EventTypeNormal, "Recovered", "Reconcile", "The App is no longer degraded")
	}
}

// statusApplyConfiguration is the App's whole status as berth owns it. The UID makes the write fail rather than
// land on a new App that took the name of a deleted one.
func statusApplyConfiguration(app *berthv1alpha1.App, status berthv1alpha1.AppStatus) *berthv1alpha1ac.AppApplyConfiguration {
	s := berthv1alpha1ac.AppStatus().
		WithObservedGeneration(status.ObservedGeneration).
		WithReplicas(status.Replicas).
		WithReadyReplicas(status.ReadyReplicas).
		WithAvailableReplicas(status.AvailableReplicas).
		WithUpdatedReplicas(status.UpdatedReplicas).
		WithReady(status.Ready).
		WithSelector(status.Selector)
	if status.URL != "" {
		s.WithURL(status.URL)
	}
	for _, c := range status.Conditions {
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
