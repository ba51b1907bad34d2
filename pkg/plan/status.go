package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// Reasons of the App's conditions.
const (
	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonDeploymentPending          = "DeploymentPending"
	ReasonCreating                   = "Creating"
	ReasonRollingOut                 = "RollingOut"
	ReasonRolloutComplete            = "RolloutComplete"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonAsExpected                 = "AsExpected"
	ReasonResourceConflict           = "ResourceConflict"
	ReasonCrashLoopBackOff           = "CrashLoopBackOff"
	ReasonImagePullBackOff           = "ImagePullBackOff"
	// ReasonCreateContainerConfigError: the kubelet cannot make the container's configuration, most often a
	// Secret or ConfigMap (or a key of one) that the App requires and that does not exist. The message gives the
	// kubelet's words, which name it, e.g. `secret "db" not found`.
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	// ReasonWaitingForGarbageCollection: an object of the App's name is left by a deleted App of that name.
	ReasonWaitingForGarbageCollection = "WaitingForGarbageCollection"
	// ReasonReplicaFailure is the Degraded reason when the Deployment reports that Pods cannot be created and
	// gives no reason of its own (it usually gives FailedCreate, which is then used).
	ReasonReplicaFailure = "ReplicaFailure"
	// The reasons of a write of an owned object that the API server refused (the controller's refusalReason).
	ReasonQuotaExceeded = "QuotaExceeded"
	ReasonForbidden     = "Forbidden"
	ReasonRejected      = "Rejected"
	// ReasonFieldContested: someone else keeps changing fields berth sets in an owned object, and berth has
	// stopped correcting them for a while (the controller's contest.go).
	ReasonFieldContested = "FieldContested"
)

// podFailureReasons maps the waiting reasons of a container that will not get better by itself to the reason
// the App's Degraded condition reports. The kubelet alternates ErrImagePull and ImagePullBackOff; reporting both
// as one reason keeps the condition, and so the App's status, from changing with every pull attempt.
var podFailureReasons = map[string]string{
	"CrashLoopBackOff":           ReasonCrashLoopBackOff,
	"ImagePullBackOff":           ReasonImagePullBackOff,
	"ErrImagePull":               ReasonImagePullBackOff,
	"InvalidImageName":           "InvalidImageName",
	"CreateContainerConfigError": ReasonCreateContainerConfigError,
	"CreateContainerError":       "CreateContainerError",
}

// Observed is what one sync saw of the objects an App depends on: with the App, all that its status is made of.
type Observed struct {
	// Deployment is the App's own Deployment, nil when it does not exist (yet).
	Deployment *appsv1.Deployment
	// Pods are the App's Pods.
	Pods []*corev1.Pod
	// Conflict names an object that has the App's name but belongs to someone else, e.g. `Deployment "web"`.
	Conflict string
	// WaitingFor names an object of the App's name left by a deleted App of that name, which the garbage
	// collector is about to delete.
	WaitingFor string
	// Refused is the first write of an owned object that the API server refused in this sync, if any.
	Refused *Refusal
	// Contested tells of a fight over fields of an owned object that berth has given up for now, when there is
	// one: the message of the Degraded condition.
	Contested string
	// Routed tells that the App's route (HTTPRoute or Ingress) exists.
	Routed bool
	// RouteProblem is why berth cannot make the route the App asks for (see RouteProblem); zero when it can.
	RouteProblem Problem
	// MissingConfig are the Secrets and ConfigMaps that the App's Pods require and that do not exist.
	MissingConfig []ConfigRef
	// RolledBack says what berth's rollback of the App's Pod template did (RollbackMessage), while the App asks
	// for the template that failed; empty otherwise.
	RolledBack string
}

// Problem is the reason and message of a Degraded condition.
type Problem struct {
	Reason, Message string
}

// Refusal is a write of an owned object that the API server refused, for a reason the App's user must see.
type Refusal struct {
	Reason  string // ReasonQuotaExceeded, ReasonForbidden or ReasonRejected
	Message string
}

// IsBerthCondition tells whether berth sets conditions of this type: it writes only these, and leaves the others
// in the status to the controllers that set them.
func IsBerthCondition(conditionType string) bool {
	switch conditionType {
	case berthv1alpha1.ConditionAvailable, berthv1alpha1.ConditionProgressing, berthv1alpha1.ConditionDegraded:
		return true
	}
	return false
}

// Status is the status the App should have given what was observed. It starts from the App's current
// conditions so that a condition's lastTransitionTime changes only when its status does; now is the time given
// to the conditions that do change.
func Status(app *berthv1alpha1.App, obs Observed, clusterDomain string, now metav1.Time) berthv1alpha1.AppStatus {
	status := berthv1alpha1.AppStatus{
		ObservedGeneration: app.Generation,
		Selector:           selectorString(app),
		Conditions:         slices.Clone(app.Status.Conditions),
	}
	desired := currentDesiredReplicas(app, obs.Deployment)
	status.DesiredReplicas = desired
	if d := obs.Deployment; d != nil {
		status.Replicas = d.Status.Replicas
		status.ReadyReplicas = d.Status.ReadyReplicas
		status.AvailableReplicas = d.Status.AvailableReplicas
		status.UpdatedReplicas = d.Status.UpdatedReplicas
	}
	status.Ready = fmt.Sprintf("%d/%d", status.ReadyReplicas, desired)
	setRevision(&status, app, obs.Deployment, now)
	status.URL = url(app, clusterDomain)
	if obs.Routed && app.Spec.Route != nil {
		status.URL = routeURL(app.Spec.Route)
	}

	for _, c := range []metav1.Condition{
		availableCondition(obs),
		progressingCondition(obs, desired),
		degradedCondition(obs, now.Time),
	} {
		c.ObservedGeneration = app.Generation
		c.LastTransitionTime = now
		c.Message = conditionMessage(c.Message)
		meta.SetStatusCondition(&status.Conditions, c)
	}
	return status
}

func availableCondition(obs Observed) metav1.Condition {
	c := metav1.Condition{Type: berthv1alpha1.ConditionAvailable, Status: metav1.ConditionFalse}
	switch {
	case obs.Conflict != "":
		c.Reason, c.Message = ReasonResourceConflict, obs.Conflict+" belongs to someone else"
	case obs.WaitingFor != "":
		c.Reason, c.Message = ReasonWaitingForGarbageCollection, waitingMessage(obs.WaitingFor)
	case obs.Deployment == nil && obs.Refused != nil:
		c.Reason, c.Message = obs.Refused.Reason, obs.Refused.Message
	case obs.Deployment == nil:
		c.Reason, c.Message = ReasonDeploymentPending, "the Deployment does not exist yet"
	default:
		dc := deploymentCondition(obs.Deployment, appsv1.DeploymentAvailable)
		switch {
		case dc == nil:
			c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonDeploymentPending,
				"the Deployment has not reported availability yet"
		case dc.Status == corev1.ConditionTrue:
			c.Status, c.Reason = metav1.ConditionTrue, ReasonMinimumReplicasAvailable
			c.Message = fmt.Sprintf("%d of %d Pods available", obs.Deployment.Status.AvailableReplicas,
				replicasOf(obs.Deployment))
		default:
			c.Reason = ReasonMinimumReplicasUnavailable
			c.Message = fmt.Sprintf("%d of %d Pods available", obs.Deployment.Status.AvailableReplicas,
				replicasOf(obs.Deployment))
		}
	}
	return c
}

func progressingCondition(obs Observed, desired int32) metav1.Condition {
	c := metav1.Condition{Type: berthv1alpha1.ConditionProgressing, Status: metav1.ConditionFalse}
	d := obs.Deployment
	switch {
	case obs.Conflict != "":
		c.Reason, c.Message = ReasonResourceConflict, obs.Conflict+" belongs to someone else"
	case obs.WaitingFor != "":
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonWaitingForGarbageCollection,
			waitingMessage(obs.WaitingFor)
	case d == nil && obs.Refused != nil:
		c.Reason, c.Message = obs.Refused.Reason, obs.Refused.Message
	case d == nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonCreating, "creating the Deployment"
	case isProgressDeadlineExceeded(d):
		c.Reason = ReasonProgressDeadlineExceeded
		c.Message = fmt.Sprintf("the rollout made no progress within %ds", progressDeadline(d))
	case d.Status.ObservedGeneration < d.Generation ||
		d.Status.UpdatedReplicas < desired ||
		d.Status.Replicas > d.Status.UpdatedReplicas ||
		d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonRollingOut
		c.Message = fmt.Sprintf("%d of %d Pods updated, %d available", d.Status.UpdatedReplicas, desired,
			d.Status.AvailableReplicas)
	default:
		c.Reason, c.Message = ReasonRolloutComplete, fmt.Sprintf("%d of %d Pods updated", d.Status.UpdatedReplicas, desired)
	}
	return c
}

func degradedCondition(obs Observed, now time.Time) metav1.Condition {
	c := metav1.Condition{Type: berthv1alpha1.ConditionDegraded, Status: metav1.ConditionTrue}
	if obs.Conflict != "" {
		c.Reason = ReasonResourceConflict
		c.Message = obs.Conflict + " exists and is not controlled by this App; berth will not modify it. " +
			"Delete or rename it, or rename the App."
		return c
	}
	if obs.Refused != nil {
		c.Reason, c.Message = obs.Refused.Reason, obs.Refused.Message
		return c
	}
	if obs.Contested != "" {
		c.Reason, c.Message = ReasonFieldContested, obs.Contested
		return c
	}
	if obs.RolledBack != "" {
		// Whatever the Pods do now, that the App does not run what it asks for is what its user must know first.
		c.Reason, c.Message = ReasonRolledBack, obs.RolledBack
		return c
	}
	if rf := replicaFailure(obs.Deployment); rf != nil {
		// Pods cannot be created (a quota, a LimitRange, Pod Security): the ReplicaSet's message says why.
		c.Reason, c.Message = rf.Reason, rf.Message
		if !isConditionReason(c.Reason) {
			// Anyone who may write a Deployment's status may write any reason there.
			c.Reason = ReasonReplicaFailure
		}
		return c
	}
	if reason, message, ok := PodFailure(obs.Pods, now); ok {
		c.Reason, c.Message = reason, message
		return c
	}
	if len(obs.MissingConfig) > 0 {
		// Pods that mount a missing object wait in ContainerCreating, which tells nothing.
		c.Reason, c.Message = ReasonMissingReference, MissingMessage(obs.MissingConfig)
		return c
	}
	if obs.Deployment != nil && isProgressDeadlineExceeded(obs.Deployment) {
		c.Reason = ReasonProgressDeadlineExceeded
		c.Message = fmt.Sprintf("the rollout made no progress within %ds", progressDeadline(obs.Deployment))
		return c
	}
	if obs.RouteProblem.Reason != "" {
		c.Reason, c.Message = obs.RouteProblem.Reason, obs.RouteProblem.Message
		return c
	}
	c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonAsExpected, "no failing Pods"
	return c
}

// CrashLoopWindow is how long after a container's last exit the kubelet still counts it as crash-looping: it
// forgets a container's restart back-off only when the container exits more than 10 minutes after its previous
// exit (k8s.io/kubernetes pkg/kubelet/kubelet.go, the HasExpiredFunc of crashLoopBackOff). Until then a container
// that runs again, or has just exited, is between two back-offs of one crash loop: reading only the waiting reason
// would have the App recover at every restart and fail again at the next exit, two status writes and two Events
// a restart.
const CrashLoopWindow = 10 * time.Minute

// waitingMessage describes an object left by a deleted App of the App's name.
func waitingMessage(object string) string {
	return object + " belongs to a deleted App of the same name; waiting for the garbage collector to delete it"
}

// replicaFailure is the Deployment's ReplicaFailure condition while it is true, or nil.
func replicaFailure(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	if d == nil {
		return nil
	}
	c := deploymentCondition(d, appsv1.DeploymentReplicaFailure)
	if c == nil || c.Status != corev1.ConditionTrue {
		return nil
	}
	return c
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func isProgressDeadlineExceeded(d *appsv1.Deployment) bool {
	c := deploymentCondition(d, appsv1.DeploymentProgressing)
	return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded"
}

func progressDeadline(d *appsv1.Deployment) int32 {
	if d.Spec.ProgressDeadlineSeconds == nil {
		return 600
	}
	return *d.Spec.ProgressDeadlineSeconds
}

// maxConditionMessage is the longest message of a condition that the API server stores. Some messages come
// from others (the API server's refusal of a write, with a webhook's or a policy's words in it; a Deployment's
// ReplicaFailure condition): one longer than this would have the whole status refused, and the App would go on
// showing an old one.
const maxConditionMessage = 32 * 1024

// conditionMessage is message as the API server stores it: valid UTF-8 and at most maxConditionMessage bytes,
// cut at a character boundary.
func conditionMessage(message string) string {
	message = strings.ToValidUTF8(message, "\uFFFD")
	if len(message) <= maxConditionMessage {
		return message
	}
	const cut = " ... (cut)"
	end := maxConditionMessage - len(cut)
	for end > 0 && !utf8.RuneStart(message[end]) {
		end--
	}
	return message[:end] + cut
}

// isConditionReason tells whether the API server takes reason as a condition's reason.
func isConditionReason(reason string) bool {
	return reason != "" && len(reason) <= 1024 && len(metav1validation.IsValidConditionReason(reason)) == 0
}

func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}
