package plan

import (
	"fmt"
	"hash/fnv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	spec := appsv1ac.DeploymentSpec().
		WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(app))).
		WithTemplate(corev1ac.PodTemplateSpec().
			WithLabels(ObjectLabels(app)).
			WithSpec(podSpec(app)))
	if !IsAutoscaled(app) {
		// An autoscaled App's replicas are its autoscaler's: berth does not own the field, so that neither
		// undoes what the other set.
		spec.WithReplicas(desiredReplicas(app))
	}
	if r := app.Spec.Rollout; r != nil {
		if r.MaxSurge != nil || r.MaxUnavailable != nil {
			rolling := appsv1ac.RollingUpdateDeployment()
			if r.MaxSurge != nil {
				rolling.WithMaxSurge(*r.MaxSurge)
			}
			if r.MaxUnavailable != nil {
				rolling.WithMaxUnavailable(*r.MaxUnavailable)
			}
			spec.WithStrategy(appsv1ac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(rolling))
		}
		if r.MinReadySeconds != nil && *r.MinReadySeconds != 0 {
			spec.WithMinReadySeconds(*r.MinReadySeconds)
		}
		if r.ProgressDeadlineSeconds != nil {
			spec.WithProgressDeadlineSeconds(*r.ProgressDeadlineSeconds)
		}
	}
	return appsv1ac.Deployment(app.Name, app.Namespace).
		WithLabels(ObjectLabels(app)).
		WithOwnerReferences(ownerReference(app)).
		WithSpec(spec)
}

func podSpec(app *berthv1alpha1.App) *corev1ac.PodSpecApplyConfiguration {
	spec := corev1ac.PodSpec().
		// Unless the App asks for it, its service has no business with the Kubernetes API.
		WithAutomountServiceAccountToken(app.Spec.AutomountServiceAccountToken).
		WithSecurityContext(podSecurityContext(app)).
		WithContainers(desiredContainer(app))
	if app.Spec.ServiceAccountName != "" {
		spec.WithServiceAccountName(app.Spec.ServiceAccountName)
	}
	for _, name := range app.Spec.ImagePullSecrets {
		spec.WithImagePullSecrets(corev1ac.LocalObjectReference().WithName(name))
	}
	for _, f := range app.Spec.Files {
		spec.WithVolumes(filesVolume(f))
	}
	if sd := app.Spec.Shutdown; sd != nil && sd.GracePeriodSeconds != nil {
		spec.WithTerminationGracePeriodSeconds(*sd.GracePeriodSeconds)
	}
	if len(app.Spec.NodeSelector) > 0 {
		selector := make(map[string]string, len(app.Spec.NodeSelector))
		for k, v := range app.Spec.NodeSelector {
			selector[k] = string(v)
		}
		spec.WithNodeSelector(selector)
	}
	for _, t := range app.Spec.Tolerations {
		spec.WithTolerations(toleration(t))
	}
	spec.WithTopologySpreadConstraints(spreadConstraints(app)...)
	return spec
}

func toleration(t berthv1alpha1.Toleration) *corev1ac.TolerationApplyConfiguration {
	out := corev1ac.Toleration()
	if t.Key != "" {
		out.WithKey(t.Key)
	}
	if t.Operator != "" {
		out.WithOperator(t.Operator)
	}
	if t.Value != "" {
		out.WithValue(t.Value)
	}
	if t.Effect != "" {
		out.WithEffect(t.Effect)
	}
	if t.TolerationSeconds != nil {
		out.WithTolerationSeconds(*t.TolerationSeconds)
	}
	return out
}

// defaultSpreadKeys are the domains an App's Pods are spread over unless it says otherwise: nodes, then zones.
var defaultSpreadKeys = []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"}

// spreadConstraints spread the App's Pods over nodes and zones, whatever its replicas: constraints that came
// and went with the number of replicas would roll every Pod out at each scaling across 1 and 2, and an
// autoscaler's. Only the Pods of one revision are counted (pod-template-hash), so that a rollout spreads the new
// Pods rather than fitting them around the old ones.
func spreadConstraints(app *berthv1alpha1.App) []*corev1ac.TopologySpreadConstraintApplyConfiguration {
	spread := app.Spec.Spread
	if spread != nil && spread.Disabled {
		return nil
	}
	keys, skew, when := defaultSpreadKeys, int32(1), corev1.ScheduleAnyway
	if spread != nil {
		if len(spread.TopologyKeys) > 0 {
			keys = spread.TopologyKeys
		}
		if spread.MaxSkew != nil {
			skew = *spread.MaxSkew
		}
		if spread.WhenUnsatisfiable != "" {
			when = spread.WhenUnsatisfiable
		}
	}
	var constraints []*corev1ac.TopologySpreadConstraintApplyConfiguration
	for _, key := range keys {
		constraints = append(constraints, corev1ac.TopologySpreadConstraint().
			WithMaxSkew(skew).
			WithTopologyKey(key).
			WithWhenUnsatisfiable(when).
			WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(app))).
			WithMatchLabelKeys(appsv1.DefaultDeploymentUniqueLabelKey))
	}
	return constraints
}

// filesVolumeName names the volume of the files at path: from the path, so that the volume of a directory keeps
// its name when other directories are added or removed (a name from the position would roll out every Pod).
func filesVolumeName(path string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(path))
	return fmt.Sprintf("files-%08x", h.Sum32())
}

func filesVolume(f berthv1alpha1.Files) *corev1ac.VolumeApplyConfiguration {
	v := corev1ac.Volume().WithName(filesVolumeName(f.Path))
	if src := f.Secret; src != nil {
		secret := corev1ac.SecretVolumeSource().WithSecretName(src.Name).WithItems(fileItems(src.Items)...)
		if src.Mode != nil {
			secret.WithDefaultMode(*src.Mode)
		}
		if src.Optional {
			secret.WithOptional(true)
		}
		return v.WithSecret(secret)
	}
	src := f.ConfigMap
	if src == nil { // the CRD admits no such App
		return v
	}
	configMap := corev1ac.ConfigMapVolumeSource().WithName(src.Name).WithItems(fileItems(src.Items)...)
	if src.Mode != nil {
		configMap.WithDefaultMode(*src.Mode)
	}
	if src.Optional {
		configMap.WithOptional(true)
	}
	return v.WithConfigMap(configMap)
}

func fileItems(items []berthv1alpha1.FileItem) []*corev1ac.KeyToPathApplyConfiguration {
	var out []*corev1ac.KeyToPathApplyConfiguration
	for _, item := range items {
		path := item.Path
		if path == "" {
			path = item.Key
		}
		out = append(out, corev1ac.KeyToPath().WithKey(item.Key).WithPath(path))
	}
	return out
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
	if r := app.Spec.RunAs; r != nil {
		if r.User != nil {
			sc.WithRunAsUser(*r.User)
		}
		if r.Group != nil {
			sc.WithRunAsGroup(*r.Group)
		}
		if r.FSGroup != nil {
			sc.WithFSGroup(*r.FSGroup)
		}
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
	if sd := app.Spec.Shutdown; sd != nil && sd.PreStopSleepSeconds != nil {
		c.WithLifecycle(corev1ac.Lifecycle().WithPreStop(corev1ac.LifecycleHandler().
			WithSleep(corev1ac.SleepAction().WithSeconds(*sd.PreStopSleepSeconds))))
	}
	// Here and below, a field whose value the API server does not store (an empty string, a zero: the API
	// types omit them) is left out. Sent, it would be missing from what berth reads back of its own fields,
	// and every sync of the App would apply again.
	if len(app.Spec.Command) > 0 {
		c.WithCommand(app.Spec.Command...)
	}
	if len(app.Spec.Args) > 0 {
		c.WithArgs(app.Spec.Args...)
	}
	for _, env := range app.Spec.Env {
		c.WithEnv(envVar(env))
	}
	for _, from := range app.Spec.EnvFrom {
		c.WithEnvFrom(envFrom(from))
	}
	for _, f := range app.Spec.Files {
		c.WithVolumeMounts(corev1ac.VolumeMount().
			WithName(filesVolumeName(f.Path)).
			WithMountPath(f.Path).
			WithReadOnly(true))
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
	ports := appPorts(app)
	for _, port := range ports {
		c.WithPorts(corev1ac.ContainerPort().
			WithName(port.Name).
			WithContainerPort(port.Port).
			WithProtocol(protocolOf(port)))
	}
	if len(ports) > 0 {
		if hc := app.Spec.HealthCheck; hc != nil {
			c.WithReadinessProbe(healthCheckProbe(hc, ports[0].Name))
			c.WithLivenessProbe(healthCheckProbe(hc, ports[0].Name))
		}
	}
	if probes := app.Spec.Probes; probes != nil {
		if probes.Readiness != nil {
			c.WithReadinessProbe(probe(probes.Readiness, ports))
		}
		if probes.Liveness != nil {
			c.WithLivenessProbe(probe(probes.Liveness, ports))
		}
		if probes.Startup != nil {
			c.WithStartupProbe(probe(probes.Startup, ports))
		}
	}
	return c
}

// envVar is a variable of the container: its value, or where the kubelet reads it. berth never reads a Secret.
func envVar(env berthv1alpha1.EnvVar) *corev1ac.EnvVarApplyConfiguration {
	e := corev1ac.EnvVar().WithName(env.Name)
	switch {
	case env.SecretKeyRef != nil:
		ref := corev1ac.SecretKeySelector().WithName(env.SecretKeyRef.Name).WithKey(env.SecretKeyRef.Key)
		if env.SecretKeyRef.Optional {
			ref.WithOptional(true)
		}
		e.WithValueFrom(corev1ac.EnvVarSource().WithSecretKeyRef(ref))
	case env.ConfigMapKeyRef != nil:
		ref := corev1ac.ConfigMapKeySelector().WithName(env.ConfigMapKeyRef.Name).WithKey(env.ConfigMapKeyRef.Key)
		if env.ConfigMapKeyRef.Optional {
			ref.WithOptional(true)
		}
		e.WithValueFrom(corev1ac.EnvVarSource().WithConfigMapKeyRef(ref))
	case env.Value != "":
		e.WithValue(env.Value)
	}
	return e
}

func envFrom(from berthv1alpha1.EnvFromSource) *corev1ac.EnvFromSourceApplyConfiguration {
	e := corev1ac.EnvFromSource()
	if from.Prefix != "" {
		e.WithPrefix(from.Prefix)
	}
	if ref := from.SecretRef; ref != nil {
		secret := corev1ac.SecretEnvSource().WithName(ref.Name)
		if ref.Optional {
			secret.WithOptional(true)
		}
		return e.WithSecretRef(secret)
	}
	if from.ConfigMapRef == nil { // the CRD admits no such App
		return e
	}
	configMap := corev1ac.ConfigMapEnvSource().WithName(from.ConfigMapRef.Name)
	if from.ConfigMapRef.Optional {
		configMap.WithOptional(true)
	}
	return e.WithConfigMapRef(configMap)
}
