package v1alpha1

import (
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
// +kubebuilder:printcolumn:name="Current",type=integer,JSONPath=`.status.replicas`,priority=1
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredReplicas`,priority=1
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.status.revision`,priority=1
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
// +kubebuilder:validation:XValidation:rule="!has(self.healthCheck) || has(self.port) || has(self.ports)",message="spec.healthCheck requires spec.port or spec.ports: the probes are sent to that port",fieldPath=".healthCheck"
// +kubebuilder:validation:XValidation:rule="!has(self.port) || !has(self.ports)",message="spec.ports: use spec.port or spec.ports, not both",fieldPath=".ports"
// +kubebuilder:validation:XValidation:rule="!has(self.healthCheck) || !has(self.probes)",message="spec.probes: use spec.healthCheck or spec.probes, not both",fieldPath=".probes"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.readiness) || !has(self.probes.readiness.http) || (has(self.probes.readiness.http.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.readiness.http.port) : (has(self.port) && self.probes.readiness.http.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.readiness.http.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.readiness.http"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.readiness) || !has(self.probes.readiness.tcp) || (has(self.probes.readiness.tcp.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.readiness.tcp.port) : (has(self.port) && self.probes.readiness.tcp.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.readiness.tcp.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.readiness.tcp"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.liveness) || !has(self.probes.liveness.http) || (has(self.probes.liveness.http.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.liveness.http.port) : (has(self.port) && self.probes.liveness.http.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.liveness.http.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.liveness.http"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.liveness) || !has(self.probes.liveness.tcp) || (has(self.probes.liveness.tcp.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.liveness.tcp.port) : (has(self.port) && self.probes.liveness.tcp.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.liveness.tcp.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.liveness.tcp"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.startup) || !has(self.probes.startup.http) || (has(self.probes.startup.http.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.startup.http.port) : (has(self.port) && self.probes.startup.http.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.startup.http.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.startup.http"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.startup) || !has(self.probes.startup.tcp) || (has(self.probes.startup.tcp.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.startup.tcp.port) : (has(self.port) && self.probes.startup.tcp.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.startup.tcp.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.startup.tcp"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || !has(self.autoscaling.cpuUtilization) || (has(self.resources) && has(self.resources.requests) && 'cpu' in self.resources.requests)",message="spec.autoscaling.cpuUtilization needs spec.resources.requests.cpu: the utilization is a share of the request",fieldPath=".autoscaling.cpuUtilization"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || !has(self.autoscaling.memoryUtilization) || (has(self.resources) && has(self.resources.requests) && 'memory' in self.resources.requests)",message="spec.autoscaling.memoryUtilization needs spec.resources.requests.memory: the utilization is a share of the request",fieldPath=".autoscaling.memoryUtilization"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || !has(oldSelf.autoscaling) || (has(self.replicas) ? self.replicas : 1) == (has(oldSelf.replicas) ? oldSelf.replicas : 1)",message="spec.replicas cannot change while the App is autoscaled (spec.autoscaling): the autoscaler sets the number of Pods; change spec.autoscaling.minReplicas or maxReplicas instead",fieldPath=".replicas"
// +kubebuilder:validation:XValidation:rule="!has(self.route) || has(self.port) || has(self.ports)",message="spec.route requires spec.port or spec.ports: the route sends requests to a port of the App's Service",fieldPath=".route"
// +kubebuilder:validation:XValidation:rule="!has(self.route) || !has(self.route.port) || (has(self.ports) ? self.ports.exists(p, p.name == self.route.port && !(has(p.internal) && p.internal) && (!has(p.protocol) || p.protocol == 'TCP')) : self.route.port == 'http')",message="spec.route.port must name a TCP port of spec.ports that is not internal (or be http, with spec.port)",fieldPath=".route.port"
// +kubebuilder:validation:XValidation:rule="!has(self.route) || has(self.route.port) || !has(self.ports) || self.ports.exists(p, !(has(p.internal) && p.internal) && (!has(p.protocol) || p.protocol == 'TCP'))",message="spec.route needs a TCP port of spec.ports that is not internal: the route sends requests to it",fieldPath=".route"
// +kubebuilder:validation:XValidation:rule="!has(self.runAs) || !has(self.runAs.user) || self.runAs.user != 0 || (has(self.runAsRoot) && self.runAsRoot)",message="spec.runAs.user: 0 is root, which the restricted standard refuses; set spec.runAsRoot to run as root",fieldPath=".runAs.user"
type AppSpec struct {
	// Image is the container image to run, for example "nginx:1.27" or "registry.example.com/shop/web@sha256:...".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.matches('\\\\s')",message="spec.image must not contain whitespace"
	Image string `json:"image"`

	// Replicas is the number of Pods to run. Defaults to 1; 0 stops the App without deleting it.
	// Also set by `kubectl scale app/NAME --replicas=N`. Not used while spec.autoscaling is set.
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

	// Ports are the named ports of the container, for an App that listens on more than one (its API and its
	// metrics, say): the fuller form of spec.port, which is one TCP port named http. The Service exposes each
	// port that is not internal; the first port is the one that healthCheck, and probes that name no port, probe.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.exists_one(q, q.port == p.port && q.protocol == p.protocol))",message="spec.ports: a port number may appear once per protocol"
	// +kubebuilder:validation:XValidation:rule="self.all(p, (has(p.internal) && p.internal) || self.exists_one(q, !(has(q.internal) && q.internal) && q.protocol == p.protocol && (has(q.servicePort) ? q.servicePort : q.port) == (has(p.servicePort) ? p.servicePort : p.port)))",message="spec.ports: two ports the Service exposes have the same servicePort and protocol"
	Ports []Port `json:"ports,omitempty"`

	// Probes are the readiness, liveness and startup probes of the container, each of any kind (HTTP, TCP,
	// gRPC, a command) with its timing: the fuller form of healthCheck, which cannot be used with them.
	// +optional
	Probes *Probes `json:"probes,omitempty"`

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

	// HealthCheck makes Kubernetes probe the container over HTTP on spec.port (or the first of spec.ports): a Pod
	// receives traffic only while the check passes (readiness), and is restarted when it keeps failing
	// (liveness). The shorthand of spec.probes, which cannot be used with it.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// Shutdown is how a Pod stops: a pause before the container is signalled, and how long it may take.
	// +optional
	Shutdown *Shutdown `json:"shutdown,omitempty"`

	// Rollout tunes how a change replaces the Pods: how many extra or missing Pods a rollout may have, how long
	// a new Pod must be ready to count, and when a rollout that does not progress is reported.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`

	// NodeSelector runs the Pods only on nodes with all these labels, e.g. {"kubernetes.io/arch": "arm64"}.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && k.indexOf('/') <= 253 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="spec.nodeSelector: a key must be a label key, e.g. kubernetes.io/arch"
	NodeSelector map[string]LabelValue `json:"nodeSelector,omitempty"`

	// Tolerations let the Pods run on nodes with these taints, as in a Pod's spec.tolerations.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []Toleration `json:"tolerations,omitempty"`

	// Spread spreads the Pods over nodes and zones. By default the scheduler prefers to put no two Pods of the
	// App on one node, and to balance them over zones (ScheduleAnyway: a Pod that cannot be spread still runs).
	// +optional
	Spread *Spread `json:"spread,omitempty"`

	// DisruptionBudget bounds how many Pods of an App of 2 or more replicas a node drain or an eviction may take
	// down at once: by default 1. berth owns a PodDisruptionBudget of the App's name for it, which lets a drain
	// evict Pods that are not ready whatever the budget says (unhealthyPodEvictionPolicy AlwaysAllow), so that a
	// broken App never blocks a drain. With fewer than 2 replicas there is none.
	// +optional
	DisruptionBudget *DisruptionBudget `json:"disruptionBudget,omitempty"`

	// Autoscaling scales the App between minReplicas and maxReplicas on the CPU or memory its Pods use, with a
	// HorizontalPodAutoscaler of the App's name that berth owns. The autoscaler then sets the number of Pods:
	// spec.replicas is not used, and cannot change (kubectl scale is refused) while autoscaling is set.
	// +optional
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`

	// Route sends the requests for a host from outside the cluster to the App, through an HTTPRoute (Gateway
	// API) or an Ingress of the App's name that berth owns. status.url then gives the external URL.
	// +optional
	Route *Route `json:"route,omitempty"`

	// Command replaces the entrypoint of the image (its ENTRYPOINT); unset, the image's runs. Variables are
	// expanded as in a Pod: $(NAME) is the value of the environment variable NAME.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command,omitempty"`

	// Args are the arguments of the entrypoint, replacing the image's CMD; unset, the image's are used.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`

	// EnvFrom sets an environment variable for every key of a Secret or ConfigMap of the App's namespace, named
	// after the key (with a prefix, when given). A variable of spec.env wins over one of the same name from here.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	EnvFrom []EnvFromSource `json:"envFrom,omitempty"`

	// Files mounts the keys of a Secret or ConfigMap of the App's namespace as read-only files in a directory of
	// the container, one file per key (or per chosen key). The files change when the object does (a Secret or
	// ConfigMap mounted this way is updated in place by the kubelet, within about a minute).
	// +optional
	// +listType=map
	// +listMapKey=path
	// +kubebuilder:validation:MaxItems=32
	Files []Files `json:"files,omitempty"`

	// ImagePullSecrets are the names of Secrets of the App's namespace (of type kubernetes.io/dockerconfigjson)
	// that hold the credentials to pull the image from a private registry.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty"`

	// ServiceAccountName is the ServiceAccount of the App's namespace that the Pods run as. Defaults to the
	// namespace's "default". Its token is mounted only with automountServiceAccountToken.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// AutomountServiceAccountToken mounts a token of the Pods' ServiceAccount into the container, for a service
	// that calls the Kubernetes API. Off by default: a service that does not need the API should not hold a
	// credential for it.
	// +optional
	AutomountServiceAccountToken bool `json:"automountServiceAccountToken,omitempty"`

	// RunAs sets the user and groups the container runs as. An image whose USER is a name rather than a number
	// needs runAs.user to pass the restricted standard's runAsNonRoot check (the kubelet cannot tell that a name
	// is not root).
	// +optional
	RunAs *RunAs `json:"runAs,omitempty"`

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

	// DesiredReplicas is the number of Pods the App should have now: spec.replicas, or, when the App is
	// autoscaled, the number its autoscaler last asked for.
	// +optional
	DesiredReplicas int32 `json:"desiredReplicas,omitempty"`

	// Revision is the revision of the App that its Pods run, or are rolling out to: the revision of its
	// Deployment, which every change of what the Pods run increases. 0 until the Deployment reports one.
	// +optional
	Revision int64 `json:"revision,omitempty"`

	// RevisionSince is when berth first saw the App at its revision.
	// +optional
	RevisionSince *metav1.Time `json:"revisionSince,omitempty"`

	// Images are the images of the revision's containers, in their order.
	// +optional
	// +listType=atomic
	Images []string `json:"images,omitempty"`

	// AvailableRevision is the last revision whose rollout completed with every Pod available: what a failed
	// rollout would go back to.
	// +optional
	AvailableRevision int64 `json:"availableRevision,omitempty"`

	// AvailableSince is when the available revision rolled out: its verification window
	// (spec.rollout.rollback.verifySeconds) starts then.
	// +optional
	AvailableSince *metav1.Time `json:"availableSince,omitempty"`

	// PreviousAvailableRevision is the available revision before the current one: what berth rolls back to when
	// the available revision fails within its verification window.
	// +optional
	PreviousAvailableRevision int64 `json:"previousAvailableRevision,omitempty"`

	// Ready is readyReplicas/desired replicas, for display, e.g. "2/3".
	// +optional
	Ready string `json:"ready,omitempty"`

	// Selector is the label selector of the App's Pods, in string form; the scale subresource reads it.
	// +optional
	Selector string `json:"selector,omitempty"`

	// URL is where the App is reached: from outside the cluster through its route, when it has one and the
	// route exists, else inside the cluster through its Service. Empty when the App has no port.
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
