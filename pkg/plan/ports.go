package plan

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// appPorts are the App's ports: spec.ports, or spec.port as one TCP port named http.
func appPorts(app *berthv1alpha1.App) []berthv1alpha1.Port {
	if app.Spec.Port != nil {
		return []berthv1alpha1.Port{{Name: portName, Port: *app.Spec.Port, Protocol: corev1.ProtocolTCP}}
	}
	return app.Spec.Ports
}

// protocolOf is the port's protocol; the CRD defaults it to TCP, and so does berth for an App that did not pass
// through the API server.
func protocolOf(port berthv1alpha1.Port) corev1.Protocol {
	if port.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return port.Protocol
}

// servicePortOf is the port of the App's Service that sends to port.
func servicePortOf(port berthv1alpha1.Port) int32 {
	if port.ServicePort != nil {
		return *port.ServicePort
	}
	return port.Port
}

// exposedPorts are the ports the App's Service exposes.
func exposedPorts(app *berthv1alpha1.App) []berthv1alpha1.Port {
	var exposed []berthv1alpha1.Port
	for _, port := range appPorts(app) {
		if !port.Internal {
			exposed = append(exposed, port)
		}
	}
	return exposed
}

// Service is the Service the App asks for, or nil when the App exposes no port and so has no Service.
func Service(app *berthv1alpha1.App) *corev1ac.ServiceApplyConfiguration {
	exposed := exposedPorts(app)
	if len(exposed) == 0 {
		return nil
	}
	spec := corev1ac.ServiceSpec().WithSelector(SelectorLabels(app))
	for _, port := range exposed {
		spec.WithPorts(corev1ac.ServicePort().
			WithName(port.Name).
			WithProtocol(protocolOf(port)).
			WithPort(servicePortOf(port)).
			WithTargetPort(intstr.FromString(port.Name)))
	}
	return corev1ac.Service(app.Name, app.Namespace).
		WithLabels(ObjectLabels(app)).
		WithOwnerReferences(ownerReference(app)).
		WithSpec(spec)
}

// url is where the App is reached inside the cluster: its Service's first TCP port. Empty without one.
func url(app *berthv1alpha1.App, clusterDomain string) string {
	for _, port := range exposedPorts(app) {
		if protocolOf(port) == corev1.ProtocolTCP {
			return fmt.Sprintf("http://%s.%s.svc.%s:%d", app.Name, app.Namespace, clusterDomain, servicePortOf(port))
		}
	}
	return ""
}
