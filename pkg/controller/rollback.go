package controller

import (
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/klog/v2"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
)

// A revision that fails is rolled back by berth: the Deployment goes back to the template of the last revision
// that was available, with one write, the apply of the Deployment that every sync makes anyway. The decision is
// pkg/plan's (RollbackCandidate, RevisionFailure); what it needs from the cluster, the ReplicaSets that tell the
// revisions' Pods apart and hold the earlier templates, is read here, and only when a Pod of the App fails.

// desiredDeployment is the Deployment the App's sync applies: the App's (plan.Deployment, with the versions of the
// Secrets and ConfigMaps its Pods read unless the App ignores them), or, when the App's
// revision has failed, the App's with the template of the revision it is rolled back to. A rollback is kept for as
// long as the App asks for the template that failed; obs.RolledBack then says what it did.
func (c *Controller) desiredDeployment(ctx context.Context, app *berthv1alpha1.App, obs *observation) (
	*appsv1ac.DeploymentApplyConfiguration, error) {
	desired := plan.Deployment(app)
	if plan.ConfigChangesRollOut(app) {
		plan.WithConfigVersions(desired, obs.configVersions)
	}
	live, found, err := c.deploymentKind.cached(app.Namespace, app.Name)
	if err != nil || !found || !isControlledBy(live, app) {
		return desired, err
	}
	message, rolledBack, err := plan.RolledBack(desired, live)
	if err != nil {
		return nil, err
	}
	if rolledBack {
		obs.RolledBack = message
		return plan.RollBack(desired, live.Spec.Template, message)
	}
	now := time.Now()
	target, ok := plan.RollbackCandidate(app, live, now)
	if !ok || !plan.MayHaveFailed(live, obs.Pods, now) {
		return desired, nil
	}
	failed, to, err := c.revisionReplicaSets(ctx, app, live, target)
	if err != nil {
		// The rest of the sync goes on, and the status says what fails; the error brings the App back.
		obs.rollbackErr = err
		return desired, nil
	}
	if failed == nil {
		return desired, nil
	}
	cause, ok := plan.RevisionFailure(live, podsOf(obs.Pods, failed), now)
	if !ok {
		return desired, nil
	}
	logger := klog.FromContext(ctx)
	if to == nil {
		logger.Info("A failing revision cannot be rolled back: the ReplicaSet of the revision to go back to is gone",
			"revision", target.Failed, "to", target.To, "cause", cause)
		return desired, nil
	}
	message = plan.RollbackMessage(target, live, to.Spec.Template, cause)
	logger.Info("Rolling back a failing revision", "revision", target.Failed, "to", target.To, "cause", cause)
	obs.RolledBack = message
	return plan.RollBack(desired, to.Spec.Template, message)
}

// revisionReplicaSets reads the ReplicaSets of the App's Deployment d, and returns that of the failing revision
// and that of the revision to go back to (nil when the deployment controller has deleted it, past the
// Deployment's revisionHistoryLimit). berth does not cache ReplicaSets: it needs them only when a Pod of an App
// fails during or after a rollout, and a cache would hold every revision of every App for that.
func (c *Controller) revisionReplicaSets(ctx context.Context, app *berthv1alpha1.App, d *appsv1.Deployment,
	target plan.RollbackTarget) (failed, to *appsv1.ReplicaSet, err error) {
	list, err := c.kubeClient.AppsV1().ReplicaSets(app.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(plan.SelectorLabels(app)).String(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the ReplicaSets of Deployment %q: %w", d.Name, err)
	}
	for i := range list.Items {
		rs := &list.Items[i]
		if ref := metav1.GetControllerOfNoCopy(rs); ref == nil || ref.UID != d.UID {
			continue
		}
		switch {
		case rs.Annotations[plan.AnnotationDeploymentRevision] == strconv.FormatInt(target.Failed, 10):
			failed = rs
		case plan.IsOfRevision(rs, target.To):
			to = rs
		}
	}
	return failed, to, nil
}

// podsOf are those of pods that belong to the ReplicaSet rs.
func podsOf(pods []*corev1.Pod, rs *appsv1.ReplicaSet) []*corev1.Pod {
	hash := rs.Labels[plan.LabelPodTemplateHash]
	var of []*corev1.Pod
	for _, pod := range pods {
		if hash != "" && pod.Labels[plan.LabelPodTemplateHash] == hash {
			of = append(of, pod)
		}
	}
	return of
}
