// How many of the App's Pods run, and how many a disruption may take: autoscaling and the disruption budget.

package v1alpha1

import "k8s.io/apimachinery/pkg/util/intstr"

// DisruptionBudget bounds how many of the App's Pods a voluntary disruption (a node drain, an eviction) may take
// down at once.
type DisruptionBudget struct {
	// Disabled turns the budget off: berth owns none, and deletes the one it made.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// MaxUnavailable is how many of the App's Pods may be down at once through evictions: a number, or a
	// percentage of the replicas ("1", the default). It cannot be 0, which would block every node drain.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",message="must be at least 1 Pod or 1%, up to 100%: 0 would block every node drain"
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// Autoscaling scales the App between MinReplicas and MaxReplicas on the CPU or memory its Pods use.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="spec.autoscaling.minReplicas must not be greater than maxReplicas",fieldPath=".minReplicas"
// +kubebuilder:validation:XValidation:rule="has(self.cpuUtilization) || has(self.memoryUtilization)",message="spec.autoscaling needs cpuUtilization, memoryUtilization or both: what to scale on"
type Autoscaling struct {
	// MinReplicas is the fewest Pods the autoscaler keeps. Defaults to 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the most Pods the autoscaler runs.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	MaxReplicas int32 `json:"maxReplicas"`

	// CPUUtilization is the CPU the Pods should use on average, as a percentage of their CPU request
	// (spec.resources.requests.cpu, which it needs): above it the autoscaler adds Pods, below it removes them.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	CPUUtilization *int32 `json:"cpuUtilization,omitempty"`

	// MemoryUtilization is the memory the Pods should use on average, as a percentage of their memory request
	// (spec.resources.requests.memory, which it needs).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MemoryUtilization *int32 `json:"memoryUtilization,omitempty"`
}
