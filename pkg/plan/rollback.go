// Rolling back a revision that fails: whether the App's revision may be rolled back and to which revision, whether
// the Pods of a revision fail in a way that is the revision's own, and the Deployment berth applies once it has
// rolled back, which it keeps until the App asks for another Pod template.

package plan

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// Annotations of a Deployment that berth rolled back. They are the rollback's only record: berth keeps the
// Deployment on the template it rolled back to for as long as the App asks for the template that failed, and
// the App's spec is never written, so that whoever wrote it (a person, a GitOps tool) sees no change.
const (
	// AnnotationRolledBackFrom is the fingerprint (TemplateFingerprint) of the Pod template the App asked for
	// when its revision failed.
	AnnotationRolledBackFrom = "berth.dev/rolled-back-from"
	// AnnotationRolledBack says what failed and what runs instead, in the words of the App's Degraded condition.
	AnnotationRolledBack = "berth.dev/rolled-back"
)

// ReasonRolledBack is the Degraded reason of an App whose failing revision berth rolled back.
const ReasonRolledBack = "RolledBack"

// LabelPodTemplateHash is the label by which the deployment controller tells the Pods and ReplicaSet of one
// template from another's; it is not part of the template berth applies.
const LabelPodTemplateHash = appsv1.DefaultDeploymentUniqueLabelKey

// annotationRevisionHistory lists the earlier revisions of a ReplicaSet whose template came back: a rollback
// gives the old ReplicaSet the next revision, and keeps its former ones here.
const annotationRevisionHistory = "deployment.kubernetes.io/revision-history"

// defaultVerifySeconds is the verification window of an App that sets none.
const defaultVerifySeconds = 300

// rollbackRestarts is how many times a container of a new revision must have been restarted for its crash loop
// to roll the revision back. A single exit may be the first Pod meeting a dependency that is still starting; a
// container that exits again after its restart fails in a way its revision brought.
const rollbackRestarts = 2

// RollbackEnabled tells whether berth rolls back the App's failing revisions.
func RollbackEnabled(app *berthv1alpha1.App) bool {
	r := app.Spec.Rollout
	return r == nil || r.Rollback == nil || !r.Rollback.Disabled
}

// verifyWindow is how long after its rollout an available revision that fails is still rolled back.
func verifyWindow(app *berthv1alpha1.App) time.Duration {
	seconds := int32(defaultVerifySeconds)
	if r := app.Spec.Rollout; r != nil && r.Rollback != nil && r.Rollback.VerifySeconds != nil {
		seconds = *r.Rollback.VerifySeconds
	}
	return time.Duration(seconds) * time.Second
}

// RollbackTarget is what a rollback of the App's revision would do.
type RollbackTarget struct {
	// Failed is the revision that would be rolled back: the Deployment's.
	Failed int64
	// To is the revision it would go back to.
	To int64
	// Live tells that Failed had rolled out, and is within its verification window.
	Live bool
}

// RollbackCandidate tells whether the revision of the App's Deployment, d, is one that berth rolls back should
// it fail, and to which revision: a revision that has not rolled out goes back to the available one, and the
// available one, within its verification window, to the one available before it. There is none when rollback is
// off, or when no earlier revision was ever available (a new App). A Deployment that berth has already rolled
// back (RolledBack) is not asked about: it runs an earlier template, kept as it is.
func RollbackCandidate(app *berthv1alpha1.App, d *appsv1.Deployment, now time.Time) (RollbackTarget, bool) {
	if !RollbackEnabled(app) {
		return RollbackTarget{}, false
	}
	revision, ok := deploymentRevision(d)
	if !ok {
		return RollbackTarget{}, false
	}
	s := app.Status
	switch {
	case revision != s.AvailableRevision && s.AvailableRevision != 0:
		return RollbackTarget{Failed: revision, To: s.AvailableRevision, Live: rolledOut(d)}, true
	case revision == s.AvailableRevision && s.PreviousAvailableRevision != 0 && s.AvailableSince != nil &&
		now.Before(s.AvailableSince.Add(verifyWindow(app))):
		return RollbackTarget{Failed: revision, To: s.PreviousAvailableRevision, Live: true}, true
	}
	return RollbackTarget{}, false
}

// MayHaveFailed tells, cheaply, whether the App's Pods show a failure that RevisionFailure could pin on a
// revision: it spares the reads that tell the revisions' Pods apart when nothing fails.
func MayHaveFailed(d *appsv1.Deployment, pods []*corev1.Pod, now time.Time) bool {
	if isProgressDeadlineExceeded(d) && replicaFailure(d) == nil {
		return true
	}
	for _, pod := range pods {
		if !ended(pod) && revisionFailureOf(pod, now).reason != "" {
			return true
		}
	}
	return false
}

// RevisionFailure tells whether the Pods of one revision (pods: those of its ReplicaSet) fail in a way that is the
// revision's own, and says how: a container that cannot pull its image, cannot be created (a missing Secret or
// ConfigMap, a root image that must not run as root), or crash-loops, restarted rollbackRestarts times; or, when
// the Deployment's progress deadline passed, Pods that run and are not ready. What is not the revision's does not
// count: Pods that cannot be created (a quota, an admission policy: the Deployment's ReplicaFailure), Pods that
// wait for a node, Pods evicted, deleted or ended.
func RevisionFailure(d *appsv1.Deployment, pods []*corev1.Pod, now time.Time) (cause string, failed bool) {
	sorted := slices.Clone(pods)
	slices.SortFunc(sorted, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	var total, failing, runningNotReady int
	var first containerFailure
	for _, pod := range sorted {
		if ended(pod) {
			continue
		}
		total++
		f := revisionFailureOf(pod, now)
		switch {
		case f.reason != "":
			failing++
			if failing == 1 {
				first = f
			}
		case pod.Status.Phase == corev1.PodRunning && !podReady(pod):
			runningNotReady++
		}
	}
	switch {
	case failing > 0:
		return fmt.Sprintf("%s, in %d of %d Pods", failureCause(first), failing, total), true
	case runningNotReady > 0 && isProgressDeadlineExceeded(d) && replicaFailure(d) == nil:
		return fmt.Sprintf("not ready within the progress deadline of %ds, in %d of %d Pods",
			progressDeadline(d), runningNotReady, total), true
	}
	return "", false
}

// ended tells whether the Pod is deleted, or has ended (evicted, say): it is not among a revision's Pods, and
// its waiting reasons, frozen when it ended, tell nothing.
func ended(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// revisionFailureOf is the failure of a Pod that has not ended that RevisionFailure counts: a zero reason when
// none.
func revisionFailureOf(pod *corev1.Pod, now time.Time) containerFailure {
	f, ok := stuckContainer(pod, now)
	if ok && (f.reason != ReasonCrashLoopBackOff || f.restarts >= rollbackRestarts) {
		return f
	}
	return containerFailure{}
}

// failureCause says how a container fails, e.g. "CrashLoopBackOff, exit code 1".
func failureCause(f containerFailure) string {
	cause := f.reason
	if f.reason == ReasonCrashLoopBackOff && f.lastExit != nil {
		cause += fmt.Sprintf(", exit code %d", f.lastExit.ExitCode)
		if f.lastExit.Reason != "" && f.lastExit.Reason != "Error" {
			cause += " (" + f.lastExit.Reason + ")"
		}
	}
	if f.detail != "" {
		cause += ": " + f.detail
	}
	return cause
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// IsOfRevision tells whether the ReplicaSet rs has, or once had, the revision.
func IsOfRevision(rs *appsv1.ReplicaSet, revision int64) bool {
	want := strconv.FormatInt(revision, 10)
	if rs.Annotations[AnnotationDeploymentRevision] == want {
		return true
	}
	return slices.Contains(strings.Split(rs.Annotations[annotationRevisionHistory], ","), want)
}

// RollbackMessage says what a rollback did, for the App's Degraded condition: the failed revision, its images
// and why it failed, and the revision (and images) the Pods go back to.
func RollbackMessage(target RollbackTarget, failed *appsv1.Deployment, to corev1.PodTemplateSpec, cause string) string {
	when := "failed"
	if target.Live {
		when = "failed after it rolled out"
	}
	return fmt.Sprintf("revision %d (%s) %s: %s; rolled back to revision %d (%s)",
		target.Failed, strings.Join(imagesOf(failed.Spec.Template), ", "), when, cause,
		target.To, strings.Join(imagesOf(to), ", "))
}

func imagesOf(t corev1.PodTemplateSpec) []string {
	images := make([]string, 0, len(t.Spec.Containers))
	for _, c := range t.Spec.Containers {
		images = append(images, c.Image)
	}
	return images
}

// TemplateFingerprint is a hash of the Pod template of a Deployment berth wants: it tells whether the App still
// asks for the template that berth rolled back.
func TemplateFingerprint(desired *appsv1ac.DeploymentApplyConfiguration) (string, error) {
	var template any
	if desired.Spec != nil {
		template = desired.Spec.Template
	}
	data, err := json.Marshal(template)
	if err != nil {
		return "", fmt.Errorf("encoding the Pod template: %w", err)
	}
	h := fnv.New64a()
	_, _ = h.Write(data)
	return strconv.FormatUint(h.Sum64(), 36), nil
}

// RolledBack tells whether berth rolled back the Deployment live from the template desired asks for, and if so
// what it said of it.
func RolledBack(desired *appsv1ac.DeploymentApplyConfiguration, live *appsv1.Deployment) (message string, ok bool, err error) {
	from, ok := live.Annotations[AnnotationRolledBackFrom]
	if !ok {
		return "", false, nil
	}
	fingerprint, err := TemplateFingerprint(desired)
	if err != nil || fingerprint != from {
		return "", false, err
	}
	return live.Annotations[AnnotationRolledBack], true, nil
}

// RollBack is desired with the Pod template to (a ReplicaSet's, of an earlier revision) in place of the App's,
// and the annotations that record the rollback and why (message). Everything else of desired (replicas, the
// rollout's settings, labels) stays as the App says.
func RollBack(desired *appsv1ac.DeploymentApplyConfiguration, to corev1.PodTemplateSpec, message string) (
	*appsv1ac.DeploymentApplyConfiguration, error) {
	fingerprint, err := TemplateFingerprint(desired)
	if err != nil {
		return nil, err
	}
	to = *to.DeepCopy()
	delete(to.Labels, LabelPodTemplateHash)
	data, err := json.Marshal(to)
	if err != nil {
		return nil, fmt.Errorf("encoding the Pod template of the revision to roll back to: %w", err)
	}
	template := &corev1ac.PodTemplateSpecApplyConfiguration{}
	if err := json.Unmarshal(data, template); err != nil {
		return nil, fmt.Errorf("decoding the Pod template of the revision to roll back to: %w", err)
	}
	desired.Spec.WithTemplate(template)
	desired.WithAnnotations(map[string]string{AnnotationRolledBackFrom: fingerprint, AnnotationRolledBack: message})
	return desired, nil
}
