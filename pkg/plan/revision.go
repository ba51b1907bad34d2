package plan

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// AnnotationDeploymentRevision is where the deployment controller writes a Deployment's revision: the number of
// its newest ReplicaSet, which grows with every change of the Pod template.
const AnnotationDeploymentRevision = "deployment.kubernetes.io/revision"

// deploymentRevision is the Deployment's revision, once the deployment controller has seen its latest
// generation: before, the annotation may still name the revision of the template before the change.
func deploymentRevision(d *appsv1.Deployment) (int64, bool) {
	if d == nil || d.Status.ObservedGeneration < d.Generation {
		return 0, false
	}
	revision, err := strconv.ParseInt(d.Annotations[AnnotationDeploymentRevision], 10, 64)
	return revision, err == nil && revision > 0
}

// rolledOut tells whether the Deployment's rollout has completed: every Pod runs its newest template and is
// available.
func rolledOut(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation &&
		d.Status.UpdatedReplicas == replicasOf(d) &&
		d.Status.Replicas == d.Status.UpdatedReplicas &&
		d.Status.AvailableReplicas == d.Status.UpdatedReplicas
}

// setRevision fills the revision fields of status: the revision of the App's Deployment with its images, since
// when the App has had it (now, when it is new), and the last revision that rolled out, since when, and the one
// that had rolled out before it. Until the Deployment reports a revision for its latest template, the App's
// status keeps what it said.
func setRevision(status *berthv1alpha1.AppStatus, app *berthv1alpha1.App, d *appsv1.Deployment, now metav1.Time) {
	before := app.Status
	status.Revision, status.RevisionSince, status.Images = before.Revision, before.RevisionSince, before.Images
	status.AvailableRevision, status.AvailableSince = before.AvailableRevision, before.AvailableSince
	status.PreviousAvailableRevision = before.PreviousAvailableRevision
	revision, ok := deploymentRevision(d)
	if !ok {
		return
	}
	if revision != before.Revision || before.RevisionSince == nil {
		status.Revision, status.RevisionSince = revision, &now
	}
	status.Images = nil
	for _, c := range d.Spec.Template.Spec.Containers {
		status.Images = append(status.Images, c.Image)
	}
	if rolledOut(d) && revision != before.AvailableRevision {
		status.AvailableRevision, status.AvailableSince = revision, &now
		if before.AvailableRevision != 0 {
			status.PreviousAvailableRevision = before.AvailableRevision
		}
	}
}
