package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
// +kubebuilder:validation:XValidation:rule="!has(self.healthCheck) || has(self.port) || has(self.ports)",message="spec.healthCheck requires spec.port or spec.ports: the probes are sent to that port",fieldPath=".healthCheck"
// +kubebuilder:validation:XValidation:rule="!has(self.port) || !has(self.ports)",message="spec.ports: use spec.port or spec.ports, not both",fieldPath=".ports"
// +kubebuilder:validation:XValidation:rule="!has(self.healthCheck) || !has(self.probes)",message="spec.probes: use spec.healthCheck or spec.probes, not both",fieldPath=".probes"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.readiness) || !has(self.probes.readiness.http) || (has(self.probes.readiness.http.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.readiness.http.port) : (has(self.port) && self.probes.readiness.http.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.readiness.http.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.readiness.http"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.readiness) || !has(self.probes.readiness.tcp) || (has(self.probes.readiness.tcp.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.readiness.tcp.port) : (has(self.port) && self.probes.readiness.tcp.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.readiness.tcp.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.readiness.tcp"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.liveness) || !has(self.probes.liveness.http) || (has(self.probes.liveness.http.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.liveness.http.port) : (has(self.port) && self.probes.liveness.http.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.liveness.http.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.liveness.http"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.liveness) || !has(self.probes.liveness.tcp) || (has(self.probes.liveness.tcp.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.liveness.tcp.port) : (has(self.port) && self.probes.liveness.tcp.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.liveness.tcp.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.liveness.tcp"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.startup) || !has(self.probes.startup.http) || (has(self.probes.startup.http.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.startup.http.port) : (has(self.port) && self.probes.startup.http.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.startup.http.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.startup.http"
// +kubebuilder:validation:XValidation:rule="!has(self.probes) || !has(self.probes.startup) || !has(self.probes.startup.tcp) || (has(self.probes.startup.tcp.port) ? (has(self.ports) ? self.ports.exists(p, p.name == self.probes.startup.tcp.port) : (has(self.port) && self.probes.startup.tcp.port == 'http')) : (has(self.port) || has(self.ports)))",message="spec.probes.startup.tcp.port must name a port of spec.ports (or be http, with spec.port); without it, the App needs a port",fieldPath=".probes.startup.tcp"
// +kubebuilder:validation:XValidation:rule="!has(self.runAs) || !has(self.runAs.user) || self.runAs.user != 0 || (has(self.runAsRoot) && self.runAsRoot)",message="spec.runAs.user: 0 is root, which the restricted standard refuses; set spec.runAsRoot to run as root",fieldPath=".runAs.user"
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

// EnvVar is one environment variable of the container: a value, or a reference to a key of a Secret or ConfigMap.
// +kubebuilder:validation:XValidation:rule="[has(self.value), has(self.secretKeyRef), has(self.configMapKeyRef)].filter(x, x).size() <= 1",message="at most one of value, secretKeyRef and configMapKeyRef may be set"
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

	// SecretKeyRef sets the variable to the value of a key of a Secret of the App's namespace. The value never
	// passes through the App or berth: the kubelet reads it when it starts the container.
	// +optional
	SecretKeyRef *KeyRef `json:"secretKeyRef,omitempty"`

	// ConfigMapKeyRef sets the variable to the value of a key of a ConfigMap of the App's namespace.
	// +optional
	ConfigMapKeyRef *KeyRef `json:"configMapKeyRef,omitempty"`
}

// KeyRef names a key of a Secret or ConfigMap of the App's namespace.
type KeyRef struct {
	// Name of the Secret or ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Key in its data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && !self.startsWith('..')",message="must not be '.' or start with '..'"
	Key string `json:"key"`

	// Optional lets the container start when the object or the key does not exist (the variable is then unset).
	// By default the container waits for it, and the App is Degraded (CreateContainerConfigError) until it exists.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// ObjectRef names a Secret or ConfigMap of the App's namespace.
type ObjectRef struct {
	// Name of the Secret or ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Optional lets the container start when the object does not exist. By default the container waits for it,
	// and the App is Degraded (CreateContainerConfigError) until it exists.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// EnvFromSource is a Secret or ConfigMap whose keys all become environment variables.
// +kubebuilder:validation:XValidation:rule="has(self.secretRef) != has(self.configMapRef)",message="exactly one of secretRef and configMapRef must be set"
type EnvFromSource struct {
	// SecretRef names the Secret.
	// +optional
	SecretRef *ObjectRef `json:"secretRef,omitempty"`

	// ConfigMapRef names the ConfigMap.
	// +optional
	ConfigMapRef *ObjectRef `json:"configMapRef,omitempty"`

	// Prefix is put before the name of every variable, e.g. "DB_". A key that does not make a valid variable
	// name is skipped by the kubelet, which reports it in an Event.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z][-._a-zA-Z0-9]*$`
	Prefix string `json:"prefix,omitempty"`
}

// Files are the keys of a Secret or ConfigMap, as read-only files in a directory.
// +kubebuilder:validation:XValidation:rule="has(self.secret) != has(self.configMap)",message="exactly one of secret and configMap must be set"
type Files struct {
	// Path is the directory of the container where the files appear, e.g. "/etc/web/tls". Its content is
	// replaced: what the image has there is hidden.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="must be an absolute path (start with '/')"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)[.][.](/|$)')",message="must not contain '..'"
	// +kubebuilder:validation:XValidation:rule="!self.contains(':')",message="must not contain ':'"
	Path string `json:"path"`

	// Secret is the Secret whose keys become the files.
	// +optional
	Secret *FilesSource `json:"secret,omitempty"`

	// ConfigMap is the ConfigMap whose keys become the files.
	// +optional
	ConfigMap *FilesSource `json:"configMap,omitempty"`
}

// FilesSource is a Secret or ConfigMap, and which of its keys become files.
type FilesSource struct {
	// Name of the Secret or ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Items chooses keys, and the file each is written to; unset, every key becomes a file of its name.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=64
	Items []FileItem `json:"items,omitempty"`

	// Mode is the permission bits of the files, as an octal number in YAML (0440) or a decimal one in JSON
	// (288). Defaults to 0644; 0400 or 0440 keeps a Secret from other users of the container.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=511
	Mode *int32 `json:"mode,omitempty"`

	// Optional lets the container start when the object does not exist (the directory is then empty). By
	// default the Pod waits for it.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// FileItem is a key written to a file.
type FileItem struct {
	// Key in the object's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && !self.startsWith('..')",message="must not be '.' or start with '..'"
	Key string `json:"key"`

	// Path of the file, relative to the directory; defaults to the key.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="must be a relative path"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('..') && !self.matches('/[.][.](/|$)')",message="must not contain '..' or start with '..'"
	Path string `json:"path,omitempty"`
}

// RunAs is the user and groups of the container's processes.
type RunAs struct {
	// User is the numeric user ID; the image's USER when unset.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	User *int64 `json:"user,omitempty"`

	// Group is the numeric primary group ID; the image's when unset.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	Group *int64 `json:"group,omitempty"`

	// FSGroup is a group ID that owns the files mounted into the Pod (spec.files among them) and that the
	// container's processes are members of, so that a non-root user can read them.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	FSGroup *int64 `json:"fsGroup,omitempty"`
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

// Port is a named port of the container.
type Port struct {
	// Name of the port, which probes and the Service refer to: at most 15 lower-case letters, digits and '-',
	// with a letter, e.g. "http" or "metrics".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self.matches('[a-z]') && !self.contains('--')",message="must contain a letter and no '--'"
	Name string `json:"name"`

	// Port is the number the container listens on.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// Protocol is TCP (the default), UDP or SCTP.
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol corev1.Protocol `json:"protocol,omitempty"`

	// ServicePort is the port of the App's Service that sends to this one; defaults to port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	ServicePort *int32 `json:"servicePort,omitempty"`

	// Internal keeps the port out of the Service: only the Pod's probes, or what reaches the Pods directly (a
	// metrics scraper that finds them by their labels), use it.
	// +optional
	Internal bool `json:"internal,omitempty"`
}

// Probes are the container's probes. Unset, the container has none (or healthCheck's).
// +kubebuilder:validation:XValidation:rule="!has(self.liveness) || !has(self.liveness.successThreshold) || self.liveness.successThreshold == 1",message="spec.probes.liveness.successThreshold must be 1",fieldPath=".liveness.successThreshold"
// +kubebuilder:validation:XValidation:rule="!has(self.startup) || !has(self.startup.successThreshold) || self.startup.successThreshold == 1",message="spec.probes.startup.successThreshold must be 1",fieldPath=".startup.successThreshold"
type Probes struct {
	// Readiness decides whether a Pod receives requests: it is taken out of the Service's endpoints while the
	// probe fails.
	// +optional
	Readiness *Probe `json:"readiness,omitempty"`

	// Liveness restarts the container when the probe keeps failing.
	// +optional
	Liveness *Probe `json:"liveness,omitempty"`

	// Startup holds the other probes back until it succeeds once, for a container that takes long to start
	// (a cache to warm, say): give it failureThreshold x periodSeconds of time.
	// +optional
	Startup *Probe `json:"startup,omitempty"`
}

// Probe is one probe of the container: exactly one of http, tcp, grpc and exec, and its timing.
// +kubebuilder:validation:XValidation:rule="[has(self.http), has(self.tcp), has(self.grpc), has(self.exec)].filter(x, x).size() == 1",message="exactly one of http, tcp, grpc and exec must be set"
type Probe struct {
	// HTTP probes with a GET: any 2xx or 3xx answer passes.
	// +optional
	HTTP *HTTPProbe `json:"http,omitempty"`

	// TCP probes by opening a connection.
	// +optional
	TCP *TCPProbe `json:"tcp,omitempty"`

	// GRPC probes with the gRPC health checking protocol.
	// +optional
	GRPC *GRPCProbe `json:"grpc,omitempty"`

	// Exec probes by running a command in the container: exit code 0 passes.
	// +optional
	Exec *ExecProbe `json:"exec,omitempty"`

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

	// TimeoutSeconds is how long a probe may take before it counts as failed. Defaults to 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`

	// SuccessThreshold is how many successes in a row make a failing probe pass. Defaults to 1, which liveness
	// and startup probes require.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	SuccessThreshold *int32 `json:"successThreshold,omitempty"`

	// FailureThreshold is how many failures in a row make a passing probe fail. Defaults to 3.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureThreshold *int32 `json:"failureThreshold,omitempty"`
}

// HTTPProbe is an HTTP GET of a path on a port of the container.
type HTTPProbe struct {
	// Path is the HTTP path probed, for example "/healthz".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="must start with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('\\\\s')",message="must not contain whitespace"
	Path string `json:"path"`

	// Port is the name of the port probed: one of spec.ports, or http with spec.port. Defaults to the first.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	Port string `json:"port,omitempty"`
}

// TCPProbe opens a TCP connection to a port of the container.
type TCPProbe struct {
	// Port is the name of the port probed: one of spec.ports, or http with spec.port. Defaults to the first.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	Port string `json:"port,omitempty"`
}

// GRPCProbe calls the gRPC health service of the container.
type GRPCProbe struct {
	// Port is the number of the port probed (the Pod API takes no name here).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// Service is the name of the service asked about, in the health protocol's request; empty asks about the
	// server as a whole.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Service string `json:"service,omitempty"`
}

// ExecProbe runs a command in the container.
type ExecProbe struct {
	// Command is the program and its arguments; it runs without a shell.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command"`
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
