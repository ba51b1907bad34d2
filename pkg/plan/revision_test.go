package plan

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// atRevision is the tests' Deployment of 3 replicas at revision with image, rolled out or not.
func atRevision(revision, image string, rolledOut bool) *appsv1.Deployment {
	return plantest.DeploymentStatus(func(d *appsv1.Deployment) {
		d.Generation, d.Status.ObservedGeneration = 2, 2
		d.Annotations = map[string]string{AnnotationDeploymentRevision: revision}
		d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: image}}
		if !rolledOut {
			d.Status.UpdatedReplicas, d.Status.Replicas = 1, 4
		}
	})
}

func TestStatusTellsTheRevision(t *testing.T) {
	earlier, now := metav1.NewTime(time.Unix(1000, 0)), metav1.NewTime(time.Unix(2000, 0))
	was := func(revision, available int64, images ...string) berthv1alpha1.AppStatus {
		return berthv1alpha1.AppStatus{Revision: revision, RevisionSince: &earlier, Images: images,
			AvailableRevision: available}
	}
	tests := []struct {
		name       string
		before     berthv1alpha1.AppStatus
		deployment *appsv1.Deployment
		want       berthv1alpha1.AppStatus
	}{
		{"no Deployment yet", berthv1alpha1.AppStatus{}, nil, berthv1alpha1.AppStatus{}},
		{"the first revision, rolled out", berthv1alpha1.AppStatus{}, atRevision("1", "web:1", true),
			berthv1alpha1.AppStatus{Revision: 1, RevisionSince: &now, Images: []string{"web:1"}, AvailableRevision: 1,
				AvailableSince: &now}},
		{"the same revision: since stays", was(1, 1, "web:1"), atRevision("1", "web:1", true), was(1, 1, "web:1")},
		{"a new revision rolling out", was(1, 1, "web:1"), atRevision("2", "web:2", false),
			berthv1alpha1.AppStatus{Revision: 2, RevisionSince: &now, Images: []string{"web:2"}, AvailableRevision: 1}},
		{"the new revision rolled out: the one before is kept, its window starts", was(2, 1, "web:2"),
			atRevision("2", "web:2", true),
			berthv1alpha1.AppStatus{Revision: 2, RevisionSince: &earlier, Images: []string{"web:2"},
				AvailableRevision: 2, AvailableSince: &now, PreviousAvailableRevision: 1}},
		{"the available revision still rolled out: its window's start stays",
			berthv1alpha1.AppStatus{Revision: 2, RevisionSince: &earlier, Images: []string{"web:2"},
				AvailableRevision: 2, AvailableSince: &earlier, PreviousAvailableRevision: 1},
			atRevision("2", "web:2", true),
			berthv1alpha1.AppStatus{Revision: 2, RevisionSince: &earlier, Images: []string{"web:2"},
				AvailableRevision: 2, AvailableSince: &earlier, PreviousAvailableRevision: 1}},
		{"a template the deployment controller has not seen: the status waits", was(1, 1, "web:1"),
			plantest.DeploymentStatus(func(d *appsv1.Deployment) {
				d.Generation, d.Status.ObservedGeneration = 3, 2
				d.Annotations = map[string]string{AnnotationDeploymentRevision: "1"}
				d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: "web:3"}}
			}), was(1, 1, "web:1")},
		{"no revision annotation yet", was(1, 1, "web:1"), atRevision("", "web:2", false), was(1, 1, "web:1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := plantest.NewApp(func(a *berthv1alpha1.App) { a.Status = tt.before })
			var got berthv1alpha1.AppStatus
			setRevision(&got, app, tt.deployment, now)
			assert.Equal(t, tt.want, got)
		})
	}
}
