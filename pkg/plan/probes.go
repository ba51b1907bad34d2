package plan

import (
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// healthCheckProbe is the probe of the healthCheck shorthand: an HTTP GET of its path on the App's first port.
func healthCheckProbe(hc *berthv1alpha1.HealthCheck, port string) *corev1ac.ProbeApplyConfiguration {
	p := corev1ac.Probe().WithHTTPGet(corev1ac.HTTPGetAction().
		WithPath(hc.Path).
		WithPort(intstr.FromString(port)))
	if hc.InitialDelaySeconds != nil && *hc.InitialDelaySeconds != 0 {
		p.WithInitialDelaySeconds(*hc.InitialDelaySeconds)
	}
	if hc.PeriodSeconds != nil {
		p.WithPeriodSeconds(*hc.PeriodSeconds)
	}
	return p
}

// probe is one of spec.probes; a probe that names no port probes the App's first.
func probe(in *berthv1alpha1.Probe, ports []berthv1alpha1.Port) *corev1ac.ProbeApplyConfiguration {
	portOr := func(name string) intstr.IntOrString {
		if name == "" && len(ports) > 0 {
			name = ports[0].Name
		}
		return intstr.FromString(name)
	}
	p := corev1ac.Probe()
	switch {
	case in.HTTP != nil:
		p.WithHTTPGet(corev1ac.HTTPGetAction().WithPath(in.HTTP.Path).WithPort(portOr(in.HTTP.Port)))
	case in.TCP != nil:
		p.WithTCPSocket(corev1ac.TCPSocketAction().WithPort(portOr(in.TCP.Port)))
	case in.GRPC != nil:
		grpc := corev1ac.GRPCAction().WithPort(in.GRPC.Port)
		if in.GRPC.Service != "" {
			grpc.WithService(in.GRPC.Service)
		}
		p.WithGRPC(grpc)
	case in.Exec != nil:
		p.WithExec(corev1ac.ExecAction().WithCommand(in.Exec.Command...))
	}
	// A zero the API server does not store is not sent (see desiredContainer); the others are the App's.
	if in.InitialDelaySeconds != nil && *in.InitialDelaySeconds != 0 {
		p.WithInitialDelaySeconds(*in.InitialDelaySeconds)
	}
	if in.PeriodSeconds != nil {
		p.WithPeriodSeconds(*in.PeriodSeconds)
	}
	if in.TimeoutSeconds != nil {
		p.WithTimeoutSeconds(*in.TimeoutSeconds)
	}
	if in.SuccessThreshold != nil {
		p.WithSuccessThreshold(*in.SuccessThreshold)
	}
	if in.FailureThreshold != nil {
		p.WithFailureThreshold(*in.FailureThreshold)
	}
	return p
}
