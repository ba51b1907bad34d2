// How the App's Pods are replaced, stopped and placed: rollouts, shutdown, node selection and spreading.

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// LabelValue is the value of a label: at most 63 letters, digits, '-', '_' and '.', starting and ending with a
// letter or digit, or empty.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// Shutdown is how a Pod of the App stops.
// +kubebuilder:validation:XValidation:rule="!has(self.preStopSleepSeconds) || self.preStopSleepSeconds < (has(self.gracePeriodSeconds) ? self.gracePeriodSeconds : 30)",message="spec.shutdown.preStopSleepSeconds must be less than gracePeriodSeconds (30 when unset): the pause counts against it",fieldPath=".preStopSleepSeconds"
type Shutdown struct {
	// PreStopSleepSeconds is how long a stopping Pod waits before its container is sent SIGTERM, so that the
	// endpoints of the App's Service (and the load balancers behind them) stop sending it requests first: a
	// rollout then drops none. 5 to 15 seconds suits most clusters. Unset, the container is signalled at once.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	PreStopSleepSeconds *int64 `json:"preStopSleepSeconds,omitempty"`

	// GracePeriodSeconds is how long a stopping Pod may take in all, the pause included, before its container is
	// killed. Defaults to 30.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
}

// Rollout tunes the rollouts of the App's Deployment.
// +kubebuilder:validation:XValidation:rule="!has(self.maxSurge) || !has(self.maxUnavailable) || !((self.maxSurge == 0 || self.maxSurge == '0%') && (self.maxUnavailable == 0 || self.maxUnavailable == '0%'))",message="spec.rollout: maxSurge and maxUnavailable must not both be 0, or no rollout could make progress"
// +kubebuilder:validation:XValidation:rule="!has(self.progressDeadlineSeconds) || self.progressDeadlineSeconds > (has(self.minReadySeconds) ? self.minReadySeconds : 0)",message="spec.rollout.progressDeadlineSeconds must be greater than minReadySeconds",fieldPath=".progressDeadlineSeconds"
type Rollout struct {
	// MaxSurge is how many Pods a rollout may run above the desired number: a number, or a percentage of the
	// replicas rounded up ("25%", the default).
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^[0-9]{1,3}%$')",message="must be a number of Pods or a percentage, e.g. 1 or 25%"
	MaxSurge *intstr.IntOrString `json:"maxSurge,omitempty"`

	// MaxUnavailable is how many of the desired Pods may be unavailable during a rollout: a number, or a
	// percentage of the replicas rounded down ("25%", the default). 0 keeps every Pod serving until its
	// replacement is ready.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",message="must be a number of Pods or a percentage up to 100%, e.g. 0 or 25%"
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`

	// MinReadySeconds is how long a new Pod must be ready, none of its containers crashing, before it counts
	// as available. Defaults to 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	MinReadySeconds *int32 `json:"minReadySeconds,omitempty"`

	// ProgressDeadlineSeconds is how long a rollout may go without progress before the App reports it as
	// Degraded (reason ProgressDeadlineExceeded); the rollout itself goes on. Defaults to 600.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// IgnoreConfigChanges keeps a change of a Secret or ConfigMap that the Pods read (in env, envFrom or files)
	// from rolling the App out. By default berth puts the versions of those objects into the Pod template, so that
	// changing one replaces the Pods, as a change of the App does; the kubelet alone would update mounted files
	// in place and never environment variables.
	// +optional
	IgnoreConfigChanges bool `json:"ignoreConfigChanges,omitempty"`

	// Rollback tunes how berth puts the Pods back on the last revision that was available when a new one fails
	// (its Pods cannot pull their image, cannot start, crash-loop, or never become ready within the progress
	// deadline): on by default.
	// +optional
	Rollback *Rollback `json:"rollback,omitempty"`
}

// Rollback tunes berth's automatic rollback of a failing revision.
type Rollback struct {
	// Disabled turns automatic rollback off: a failing revision is reported (Degraded) and left in place, as a
	// Deployment leaves it.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// VerifySeconds is how long after a revision has rolled out (every Pod available) a failure of its Pods still
	// rolls it back: a revision that goes live and then crash-loops within this window is rolled back; after it,
	// it is only reported. Defaults to 300; 0 rolls back only revisions that never rolled out.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	VerifySeconds *int32 `json:"verifySeconds,omitempty"`
}

// Toleration lets the Pods run on nodes with a matching taint.
// +kubebuilder:validation:XValidation:rule="self.operator != 'Exists' || !has(self.value)",message="value must be empty when operator is Exists"
// +kubebuilder:validation:XValidation:rule="has(self.key) || self.operator == 'Exists'",message="an empty key (every taint) needs operator Exists"
// +kubebuilder:validation:XValidation:rule="!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",message="tolerationSeconds needs effect NoExecute"
type Toleration struct {
	// Key is the taint's key; empty, with operator Exists, tolerates every taint.
	// +optional
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:XValidation:rule="self.indexOf('/') <= 253",message="the prefix must be at most 253 characters"
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	Key string `json:"key,omitempty"`

	// Operator is Equal (the default: the taint's value must be value) or Exists (any value).
	// +optional
	// +kubebuilder:default=Equal
	// +kubebuilder:validation:Enum=Equal;Exists
	Operator corev1.TolerationOperator `json:"operator,omitempty"`

	// Value is the taint's value, with operator Equal.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
	Value string `json:"value,omitempty"`

	// Effect is the taint's effect that is tolerated: NoSchedule, PreferNoSchedule or NoExecute; empty, all.
	// +optional
	// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
	Effect corev1.TaintEffect `json:"effect,omitempty"`

	// TolerationSeconds is how long a Pod stays on a node after a NoExecute taint appears; unset, forever.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=31536000
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

// Spread spreads the App's Pods over topology domains (nodes, zones).
type Spread struct {
	// Disabled turns the spreading off: the scheduler places the Pods by its other rules only.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// TopologyKeys are the node labels whose values are the domains to spread over, each on its own. Defaults to
	// kubernetes.io/hostname (nodes) and topology.kubernetes.io/zone (zones).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=317
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.indexOf('/') <= 253)",message="a key's prefix must be at most 253 characters"
	// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`
	TopologyKeys []string `json:"topologyKeys,omitempty"`

	// MaxSkew is how many more Pods one domain may hold than the emptiest. Defaults to 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxSkew *int32 `json:"maxSkew,omitempty"`

	// WhenUnsatisfiable is ScheduleAnyway (the default: spreading is a preference, and a Pod that cannot be
	// spread runs where it can) or DoNotSchedule (a Pod that would break the skew waits).
	// +optional
	// +kubebuilder:validation:Enum=ScheduleAnyway;DoNotSchedule
	WhenUnsatisfiable corev1.UnsatisfiableConstraintAction `json:"whenUnsatisfiable,omitempty"`
}
