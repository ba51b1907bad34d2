// What the App's container is given: environment variables, files, the identity it runs as, and resources.

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
)

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
