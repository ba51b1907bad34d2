package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types reported in App.status.conditions.
const (
	// ConditionAvailable is True when the App's Deployment has at least its minimum number of Pods available.
	ConditionAvailable = "Available"
	// ConditionProgressing is True while a rollout is under way.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when the App cannot run as specified: its Pods fail, or an object berth must
	// own belongs to someone else.
	ConditionDegraded = "Degraded"
)

// +genclient
// +genclient:method=GetScale,verb=get,subresource=scale,result=k8s.io/api/autoscaling/v1.Scale
// +genclient:method=UpdateScale,verb=update,subresource=scale,input=k8s.io/api/autoscaling/v1.Scale,result=k8s.io/api/autoscaling/v1.Scale
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=berth
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Degraded",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].reason`,priority=1
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a valid Service name (DNS-1035 label): at most 63 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit"

// App is a stateless service: berth runs it as a Deployment and, when it listens on a port, exposes it with a
// Service. Both are named after the App and owned by it.
type App struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what the App should run.
	// +required
	Spec AppSpec `json:"spec"`

	// Status is what berth last observed of the App's Deployment and Pods.
	// +optional
	Status AppStatus `json:"status,omitempty"`
}

// AppSpec describes the service to run.
// +kubebuilder:validation:XValidation:rule="!has(self.healthCheck) || has(self.port)",message="spec.healthCheck requires spec.port: the probes are sent to that port",fieldPath=".healthCheck"
type AppSpec struct {
	// Image is the container image to run, for example "nginx:1.27" or "registry.example.com/shop/web@sha256:...".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.matches('\\\\s')",message="spec.image must not contain whitespace"
	Image string `json:"image"`

	// Replicas is the number of Pods to run. Defaults to 1; 0 stops the App without deleting it.
	// Also set by `kubectl scale app/NAME --replicas=N`.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Replicas *int32 `json:"replicas,omitempty"`

	// Port is the TCP port the container listens on. When set, berth creates a Service of the App's name that
	// sends this port to the Pods; when unset, there is no Service.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// Env is the list of environment variables set in the container. Names must be unique, and the values add
	// up to at most 1 MiB.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:XValidation:rule="self.map(e, has(e.value) ? bytes(e.value).size() : 0).sum() <= 1048576",message="spec.env: the values must add up to at most 1 MiB (1048576 bytes)"
	Env []EnvVar `json:"env,omitempty"`

	// Resources are the compute resources the container requests and is limited to.
	// +optional
	Resources *Resources `json:"resources,omitempty"`

	// HealthCheck makes Kubernetes probe the container over HTTP on spec.port: a Pod receives traffic only while
	// the check passes (readiness), and is restarted when it keeps failing (liveness). Requires spec.port.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// RunAsRoot lets the container run as the user its image names, root included, for images that need it.
	// By default the Pods pass the restricted Pod Security Standard: the container must run as a non-root user,
	// cannot gain privileges, has all capabilities dropped and the runtime's default seccomp profile, and the
	// Pod mounts no ServiceAccount token. An image whose user is root then does not start
	// (CreateContainerConfigError). With runAsRoot, the container keeps its image's user and the runtime's
	// default capabilities, and the Pods pass only the baseline standard: a namespace that enforces restricted
	// refuses them.
	// +optional
	RunAsRoot bool `json:"runAsRoot,omitempty"`
}

// EnvVar is one environment variable of the container.
type EnvVar struct {
	// Name of the variable: letters, digits, '_', '-' and '.', not starting with a digit.
	// (Since Kubernetes 1.34 the Pod API takes any printable ASCII character but '='; berth keeps to the names
	// that a shell can read, which no Pod API version refuses.)
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z][-._a-zA-Z0-9]*$`
	Name string `json:"name"`

	// Value of the variable. Defaults to the empty string.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	Value string `json:"value,omitempty"`
}

// Resources are the compute resources of the container, as in a Pod's resources: quantities by resource name.
// Admission checks the names as the Pod API checks a container's (cpu, memory, ephemeral-storage,
// hugepages-<page size>, or an extended resource qualified by a domain, such as example.com/gpu), that no
// quantity is negative, and that the limit of cpu, memory and ephemeral-storage is not below the request. What
// the Pod API asks of the resources that cannot be overcommitted (extended resources and hugepages: a limit
// equal to the request, whole numbers, multiples of the page size) is left to it: the App is then Degraded, with
// reason Rejected and the API server's message. The quantities are narrowed (hack/update-codegen.sh) to what
// resource.ParseQuantity reads promptly; the rule below leaves the others, which it refuses, unparsed.
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || ['cpu', 'memory', 'ephemeral-storage'].all(name, !(name in self.requests) || !(name in self.limits) || [string(self.limits[name]), string(self.requests[name])].exists(q, q.size() > 64 || q.matches('[eE][-+]?[0-9]{3}')) || quantity(string(self.limits[name])).compareTo(quantity(string(self.requests[name]))) >= 0)",message="spec.resources.limits must not be lower than spec.resources.requests for the same resource"
type Resources struct {
	// Requests is the amount of each resource the scheduler reserves for the container.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(name, name in ['cpu', 'memory', 'ephemeral-storage'] || (name.startsWith('hugepages-') && name.size() <= 63 && isQuantity(name.substring(10)) && name.matches('^[-.a-zA-Z0-9]*[a-zA-Z0-9]$')) || (name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$') && name.indexOf('/') <= 244 && name.size() - name.indexOf('/') <= 64 && !name.startsWith('requests.')))",message="spec.resources.requests: a resource name must be cpu, memory, ephemeral-storage, hugepages-<page size>, or qualified by a domain, e.g. example.com/gpu"
	// +kubebuilder:validation:XValidation:rule="self.all(name, !string(self[name]).startsWith('-'))",message="spec.resources.requests: a quantity must not be negative"
	Requests corev1.ResourceList `json:"requests,omitempty"`

	// Limits is the most of each resource the container may use.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	// +kubebuilder:validation:XValidation:rule="self.all(name, name in ['cpu', 'memory', 'ephemeral-storage'] || (name.startsWith('hugepages-') && name.size() <= 63 && isQuantity(name.substring(10)) && name.matches('^[-.a-zA-Z0-9]*[a-zA-Z0-9]$')) || (name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$') && name.indexOf('/') <= 244 && name.size() - name.indexOf('/') <= 64 && !name.startsWith('requests.')))",message="spec.resources.limits: a resource name must be cpu, memory, ephemeral-storage, hugepages-<page size>, or qualified by a domain, e.g. example.com/gpu"
	// +kubebuilder:validation:XValidation:rule="self.all(name, !string(self[name]).startsWith('-'))",message="spec.resources.limits: a quantity must not be negative"
	Limits corev1.ResourceList `json:"limits,omitempty"`
}

// HealthCheck is an HTTP GET probe on the App's port.
type HealthCheck struct {
	// Path is the HTTP path probed, for example "/healthz". Any 2xx or 3xx answer counts as healthy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="spec.healthCheck.path must start with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('\\\\s')",message="spec.healthCheck.path must not contain whitespace"
	Path string `json:"path"`

	// InitialDelaySeconds is how long after the container starts the first probe is sent. Defaults to 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	InitialDelaySeconds *int32 `json:"initialDelaySeconds,omitempty"`

	// PeriodSeconds is how often the probe is sent. Defaults to 10.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	PeriodSeconds *int32 `json:"periodSeconds,omitempty"`
}

// AppStatus is what berth last observed of the App.
type AppStatus struct {
	// ObservedGeneration is the metadata.generation of the App that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Replicas is the number of Pods of the App's Deployment, in any state.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of the App's Pods that are ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// AvailableReplicas is the number of the App's Pods that have been ready long enough to count as available.
	// +optional
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`

	// UpdatedReplicas is the number of the App's Pods that run the current spec.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`

	// Ready is readyReplicas/desired replicas, for display, e.g. "2/3".
	// +optional
	Ready string `json:"ready,omitempty"`

	// Selector is the label selector of the App's Pods, in string form; the scale subresource reads it.
	// +optional
	Selector string `json:"selector,omitempty"`

	// URL is where the App is reached inside the cluster, through its Service. Empty when spec.port is unset.
	// +optional
	URL string `json:"url,omitempty"`

	// Conditions are the latest observations of the App: Available, Progressing and Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// AppList is a list of Apps.
type AppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the Apps.
	Items []App `json:"items"`
}
