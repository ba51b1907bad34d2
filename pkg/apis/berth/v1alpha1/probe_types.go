// Where the App listens and how Kubernetes checks it: ports and probes.

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
)

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
