package plan

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// Labels berth puts on everything it owns. The selector uses only instance and managed-by, which never change
// for an App, because a Deployment's selector is immutable.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByBerth is the value of LabelManagedBy on berth's objects and Pods; the Pod informer watches only it.
	ManagedByBerth = "berth"
)

// AppKind is the kind of berth's App, in the owner references of what it owns.
const AppKind = "App"

// containerName is the name of the App's one container in its Pods.
const containerName = "app"

// portName names the App's port on the container and on the Service.
const portName = "http"

// defaultReplicas is used when an App reaches berth without spec.replicas (the CRD defaults it to 1 too).
const defaultReplicas int32 = 1

// SelectorLabels select the App's Pods.
func SelectorLabels(app *berthv1alpha1.App) map[string]string {
	return map[string]string{
		LabelInstance:  app.Name,
		LabelManagedBy: ManagedByBerth,
	}
}

// ObjectLabels label the App's Deployment, Service and Pods.
func ObjectLabels(app *berthv1alpha1.App) map[string]string {
	l := SelectorLabels(app)
	l[LabelName] = app.Name
	return l
}

// selectorString is the App's Pod selector as `kubectl get -l` and the scale subresource read it.
func selectorString(app *berthv1alpha1.App) string {
	return labels.SelectorFromSet(SelectorLabels(app)).String()
}

func desiredReplicas(app *berthv1alpha1.App) int32 {
	if app.Spec.Replicas == nil {
		return defaultReplicas
	}
	return *app.Spec.Replicas
}

// ownerReference makes the App the controller of an object, so that the garbage collector deletes the object
// with the App and berth can tell its own objects from others'.
func ownerReference(app *berthv1alpha1.App) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(berthv1alpha1.GroupVersion.String()).
		WithKind(AppKind).
		WithName(app.Name).
		WithUID(app.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// Deployment is the Deployment the App asks for: every field berth sets on it, and nothing else, so that
// server-side apply leaves the fields of other managers alone.
func Deployment(app *berthv1alpha1.App) *appsv1ac.DeploymentApplyConfiguration {
	return appsv1ac.Deployment(app.Name, app.Namespace).
		WithLabels(ObjectLabels(app)).
		WithOwnerReferences(ownerReference(app)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(desiredReplicas(app)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(app))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(ObjectLabels(app)).
				WithSpec(corev1ac.PodSpec().
					// The App's service has no business with the Kubernetes API.
					WithAutomountServiceAccountToken(false).
					WithSecurityContext(podSecurityContext(app)).
					WithContainers(desiredContainer(app)))))
}

// podSecurityContext and containerSecurityContext make the Pods pass the restricted Pod Security Standard, which
// production clusters enforce, unless the App asks to run as root: then only the seccomp profile is kept, which
// the baseline standard allows.
func podSecurityContext(app *berthv1alpha1.App) *corev1ac.PodSecurityContextApplyConfiguration {
	sc := corev1ac.PodSecurityContext().
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
	if !app.Spec.RunAsRoot {
		sc.WithRunAsNonRoot(true)
	}
	return sc
}

func containerSecurityContext(app *berthv1alpha1.App) *corev1ac.SecurityContextApplyConfiguration {
	if app.Spec.RunAsRoot {
		return nil
	}
	return corev1ac.SecurityContext().
		WithAllowPrivilegeEscalation(false).
		WithCapabilities(corev1ac.Capabilities().WithDrop("ALL"))
}

func desiredContainer(app *berthv1alpha1.App) *corev1ac.ContainerApplyConfiguration {
	c := corev1ac.Container().
		WithName(containerName).
		WithImage(app.Spec.Image)
	if sc := containerSecurityContext(app); sc != nil {
		c.WithSecurityContext(sc)
	}
	// Here and below, a field whose value the API server does not store (an empty string, a zero: the API
	// types omit them) is left out. Sent, it would be missing from what berth reads back of its own fields,
	// and every sync of the App would apply again.
	for _, env := range app.Spec.Env {
		e := corev1ac.EnvVar().WithName(env.Name)
		if env.Value != "" {
			e.WithValue(env.Value)
		}
		c.WithEnv(e)
	}
	if r := app.Spec.Resources; r != nil && (len(r.Requests) > 0 || len(r.Limits) > 0) {
		resources := corev1ac.ResourceRequirements()
		if len(r.Requests) > 0 {
			resources.WithRequests(r.Requests.DeepCopy())
		}
		if len(r.Limits) > 0 {
			resources.WithLimits(r.Limits.DeepCopy())
		}
		c.WithResources(resources)
	}
	if app.Spec.Port != nil {
		c.WithPorts(corev1ac.ContainerPort().
			WithName(portName).
			WithContainerPort(*app.Spec.Port).
			WithProtocol("TCP"))
		if hc := app.Spec.HealthCheck; hc != nil {
			c.WithReadinessProbe(httpProbe(hc))
			c.WithLivenessProbe(httpProbe(hc))
		}
	}
	return c
}

func httpProbe(hc *berthv1alpha1.HealthCheck) *corev1ac.ProbeApplyConfiguration {
	p := corev1ac.Probe().WithHTTPGet(corev1ac.HTTPGetAction().
		WithPath(hc.Path).
		WithPort(intstr.FromString(portName)))
	if hc.InitialDelaySeconds != nil && *hc.InitialDelaySeconds != 0 {
		p.WithInitialDelaySeconds(*hc.InitialDelaySeconds)
	}
	if hc.PeriodSeconds != nil {
		p.WithPeriodSeconds(*hc.PeriodSeconds)
	}
	return p
}

// Service is the Service the App asks for, or nil when the App has no port and so no Service.
func Service(app *berthv1alpha1.App) *corev1ac.ServiceApplyConfiguration {
	if app.Spec.Port == nil {
		return nil
	}
	return corev1ac.Service(app.Name, app.Namespace).
		WithLabels(ObjectLabels(app)).
		WithOwnerReferences(ownerReference(app)).
		WithSpec(corev1ac.ServiceSpec().
			WithSelector(SelectorLabels(app)).
			WithPorts(corev1ac.ServicePort().
				WithName(portName).
				WithProtocol("TCP").
				WithPort(*app.Spec.Port).
				WithTargetPort(intstr.FromString(portName))))
}
