// How the App is reached from outside the cluster: a route to its Service.

package v1alpha1

// Route sends the requests for a host (and a path under it) from outside the cluster to the App's Service,
// through a Gateway API HTTPRoute or an Ingress: which, berth's --route-kind says.
type Route struct {
	// Host is the DNS name that clients use, e.g. api.example.com.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Host string `json:"host"`

	// Path is the path prefix that is sent to the App, e.g. /api. Defaults to /, every path.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[-A-Za-z0-9._~!$&'()*+,;=:@%/]*$`
	Path string `json:"path,omitempty"`

	// Port names the port of spec.ports that receives the requests. Defaults to the first port the Service
	// exposes (http, with spec.port). It must be a TCP port that the Service exposes.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	Port string `json:"port,omitempty"`

	// TLSSecretName names the Secret (type kubernetes.io/tls, in the App's namespace) with the certificate for
	// host: the route then serves https. With an Ingress, berth names it in the Ingress; with an HTTPRoute, TLS
	// ends at the Gateway, whose listener must name the certificate, and this only makes the URL https.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	TLSSecretName string `json:"tlsSecretName,omitempty"`

	// Gateway is the Gateway that the HTTPRoute attaches to, when it is not the one berth's --gateway names.
	// Not used with an Ingress.
	// +optional
	Gateway *GatewayReference `json:"gateway,omitempty"`
}

// GatewayReference names a Gateway API Gateway, and optionally one of its listeners.
type GatewayReference struct {
	// Name is the Gateway's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Namespace is the Gateway's namespace. Defaults to the App's.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`

	// SectionName names the listener of the Gateway to attach to; unset, every listener that allows it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SectionName string `json:"sectionName,omitempty"`
}
