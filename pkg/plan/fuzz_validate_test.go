package plan

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FuzzDesiredState's checks of what berth builds: the Deployment and Pod API's rules that apimachinery's
// validation functions can check without k8s.io/kubernetes.

// validateDeployment checks a Deployment with the validation functions of apimachinery that the API server's
// Deployment and Pod validation call.
func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&d.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	// Unset (an autoscaled App's), the API server defaults it to 1.
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 0 {
		errs = append(errs, field.Invalid(spec.Child("replicas"), d.Spec.Replicas, "must not be negative"))
	}
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels)+len(d.Spec.Selector.MatchExpressions) == 0 {
		return append(errs, field.Required(spec.Child("selector"), "an empty selector selects every Pod"))
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(d.Spec.Selector, metav1validation.LabelSelectorValidationOptions{},
		spec.Child("selector"))...)
	template := spec.Child("template")
	errs = append(errs, metav1validation.ValidateLabels(d.Spec.Template.Labels, template.Child("metadata", "labels"))...)
	if selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil {
		errs = append(errs, field.Invalid(spec.Child("selector"), d.Spec.Selector, err.Error()))
	} else if !selector.Matches(labels.Set(d.Spec.Template.Labels)) {
		errs = append(errs, field.Invalid(template.Child("metadata", "labels"), d.Spec.Template.Labels,
			"must match the selector"))
	}
	containers := d.Spec.Template.Spec.Containers
	if len(containers) != 1 {
		return append(errs, field.Invalid(template.Child("spec", "containers"), len(containers), "berth runs one container"))
	}
	errs = append(errs, validateStrategy(d, spec)...)
	errs = append(errs, validatePodSpec(&d.Spec.Template.Spec, template.Child("spec"))...)
	return append(errs, validateContainer(&containers[0], template.Child("spec", "containers").Index(0))...)
}

// validateStrategy checks the rollout settings as the Deployment API does.
func validateStrategy(d *appsv1.Deployment, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r := d.Spec.Strategy.RollingUpdate; r != nil {
		isZero := true
		for name, v := range map[string]*intstr.IntOrString{"maxSurge": r.MaxSurge, "maxUnavailable": r.MaxUnavailable} {
			p := spec.Child("strategy", "rollingUpdate", name)
			if v == nil {
				isZero = false // the Deployment's default, 25%
				continue
			}
			if v.Type == intstr.String {
				for _, m := range validation.IsValidPercent(v.StrVal) {
					errs = append(errs, field.Invalid(p, v.StrVal, m))
				}
			}
			n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, false)
			if err != nil || n < 0 || (name == "maxUnavailable" && v.Type == intstr.String && n > 100) {
				errs = append(errs, field.Invalid(p, v.String(), "must be a number or a percentage, not above 100% here"))
			}
			isZero = isZero && n == 0
		}
		if isZero {
			errs = append(errs, field.Invalid(spec.Child("strategy", "rollingUpdate"), r, "both zero"))
		}
	}
	if d.Spec.MinReadySeconds < 0 {
		errs = append(errs, field.Invalid(spec.Child("minReadySeconds"), d.Spec.MinReadySeconds, "negative"))
	}
	if p := d.Spec.ProgressDeadlineSeconds; p != nil && *p <= d.Spec.MinReadySeconds {
		errs = append(errs, field.Invalid(spec.Child("progressDeadlineSeconds"), *p, "must be greater than minReadySeconds"))
	}
	return errs
}

// validatePodSpec checks what of the Pod's spec the apimachinery validation functions can: the ServiceAccount, the
// user and group IDs, the volumes and what the container mounts of them.
func validatePodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	invalid := func(p *field.Path, value any, messages []string) {
		for _, m := range messages {
			errs = append(errs, field.Invalid(p, value, m))
		}
	}
	if spec.ServiceAccountName != "" {
		invalid(path.Child("serviceAccountName"), spec.ServiceAccountName, validation.IsDNS1123Subdomain(spec.ServiceAccountName))
	}
	for i, ref := range spec.ImagePullSecrets {
		if ref.Name == "" {
			errs = append(errs, field.Required(path.Child("imagePullSecrets").Index(i).Child("name"), ""))
		}
	}
	if sc := spec.SecurityContext; sc != nil {
		for name, id := range map[string]*int64{"runAsUser": sc.RunAsUser, "runAsGroup": sc.RunAsGroup, "fsGroup": sc.FSGroup} {
			if id != nil {
				invalid(path.Child("securityContext", name), *id, validation.IsValidUserID(*id))
			}
		}
		if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			errs = append(errs, field.Invalid(path.Child("securityContext", "runAsUser"), 0, "runAsNonRoot forbids user 0"))
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, path.Child("nodeSelector"))...)
	for i, t := range spec.Tolerations {
		p := path.Child("tolerations").Index(i)
		if t.Key != "" {
			invalid(p.Child("key"), t.Key, validation.IsQualifiedName(t.Key))
		} else if t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(p.Child("operator"), t.Operator, "an empty key needs Exists"))
		}
		if t.Operator == corev1.TolerationOpExists && t.Value != "" {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, "must be empty with Exists"))
		}
		if t.Operator == corev1.TolerationOpEqual || t.Operator == "" {
			invalid(p.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(p.Child("effect"), t.Effect, "tolerationSeconds needs NoExecute"))
		}
	}
	for i, c := range spec.TopologySpreadConstraints {
		p := path.Child("topologySpreadConstraints").Index(i)
		invalid(p.Child("topologyKey"), c.TopologyKey, validation.IsQualifiedName(c.TopologyKey))
		if c.MaxSkew < 1 {
			errs = append(errs, field.Invalid(p.Child("maxSkew"), c.MaxSkew, "must be at least 1"))
		}
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway && c.WhenUnsatisfiable != corev1.DoNotSchedule {
			errs = append(errs, field.NotSupported(p.Child("whenUnsatisfiable"), c.WhenUnsatisfiable, []corev1.UnsatisfiableConstraintAction{corev1.ScheduleAnyway, corev1.DoNotSchedule}))
		}
	}
	grace := int64(30)
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
		errs = append(errs, apivalidation.ValidateNonnegativeField(*g, path.Child("terminationGracePeriodSeconds"))...)
	}
	for _, c := range spec.Containers {
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			if seconds := c.Lifecycle.PreStop.Sleep.Seconds; seconds < 0 || seconds > grace {
				errs = append(errs, field.Invalid(path.Child("containers").Index(0).Child("lifecycle", "preStop", "sleep"),
					seconds, "must be within the grace period"))
			}
		}
	}
	volumes := map[string]bool{}
	for i, v := range spec.Volumes {
		p := path.Child("volumes").Index(i)
		invalid(p.Child("name"), v.Name, validation.IsDNS1123Label(v.Name))
		if volumes[v.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), v.Name))
		}
		volumes[v.Name] = true
		var name string
		var items []corev1.KeyToPath
		var mode *int32
		switch {
		case v.Secret != nil && v.ConfigMap == nil:
			name, items, mode = v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode
		case v.ConfigMap != nil && v.Secret == nil:
			name, items, mode = v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.DefaultMode
		default:
			errs = append(errs, field.Invalid(p, v.Name, "must have exactly one source"))
			continue
		}
		invalid(p.Child("name"), name, validation.IsDNS1123Subdomain(name))
		if mode != nil && (*mode < 0 || *mode > 0o777) {
			errs = append(errs, field.Invalid(p.Child("defaultMode"), *mode, "must be a file mode"))
		}
		for j, item := range items {
			ip := p.Child("items").Index(j)
			invalid(ip.Child("key"), item.Key, validation.IsConfigMapKey(item.Key))
			if item.Path == "" || strings.HasPrefix(item.Path, "/") || strings.HasPrefix(item.Path, "..") ||
				slices.Contains(strings.Split(item.Path, "/"), "..") {
				errs = append(errs, field.Invalid(ip.Child("path"), item.Path, "must be a relative path without '..'"))
			}
		}
	}
	mounts := map[string]bool{}
	for _, c := range spec.Containers {
		for i, m := range c.VolumeMounts {
			p := path.Child("containers").Index(0).Child("volumeMounts").Index(i)
			if !volumes[m.Name] {
				errs = append(errs, field.NotFound(p.Child("name"), m.Name))
			}
			if !strings.HasPrefix(m.MountPath, "/") || mounts[m.MountPath] {
				errs = append(errs, field.Invalid(p.Child("mountPath"), m.MountPath, "must be absolute and unique"))
			}
			mounts[m.MountPath] = true
		}
	}
	return errs
}

func validateContainer(c *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	invalid := func(p *field.Path, value any, messages []string) {
		for _, m := range messages {
			errs = append(errs, field.Invalid(p, value, m))
		}
	}
	invalid(path.Child("name"), c.Name, validation.IsDNS1123Label(c.Name))
	if c.Image == "" || strings.TrimSpace(c.Image) != c.Image {
		errs = append(errs, field.Invalid(path.Child("image"), c.Image, "must be set, without surrounding whitespace"))
	}
	names := map[string]bool{}
	for i, e := range c.Env {
		// Kubernetes 1.34 and later check env names with IsRelaxedEnvVarName (its gate is locked on).
		invalid(path.Child("env").Index(i).Child("name"), e.Name, validation.IsRelaxedEnvVarName(e.Name))
		if names[e.Name] {
			errs = append(errs, field.Duplicate(path.Child("env").Index(i).Child("name"), e.Name))
		}
		names[e.Name] = true
		if from := e.ValueFrom; from != nil {
			p := path.Child("env").Index(i).Child("valueFrom")
			if e.Value != "" || (from.SecretKeyRef == nil) == (from.ConfigMapKeyRef == nil) {
				errs = append(errs, field.Invalid(p, e.Name, "must have exactly one source and no value"))
				continue
			}
			name, key := "", ""
			if from.SecretKeyRef != nil {
				name, key = from.SecretKeyRef.Name, from.SecretKeyRef.Key
			} else {
				name, key = from.ConfigMapKeyRef.Name, from.ConfigMapKeyRef.Key
			}
			invalid(p.Child("name"), name, validation.IsDNS1123Subdomain(name))
			invalid(p.Child("key"), key, validation.IsConfigMapKey(key))
		}
	}
	for i, from := range c.EnvFrom {
		p := path.Child("envFrom").Index(i)
		if from.Prefix != "" {
			invalid(p.Child("prefix"), from.Prefix, validation.IsRelaxedEnvVarName(from.Prefix))
		}
		switch {
		case from.SecretRef != nil && from.ConfigMapRef == nil:
			invalid(p.Child("secretRef", "name"), from.SecretRef.Name, validation.IsDNS1123Subdomain(from.SecretRef.Name))
		case from.ConfigMapRef != nil && from.SecretRef == nil:
			invalid(p.Child("configMapRef", "name"), from.ConfigMapRef.Name, validation.IsDNS1123Subdomain(from.ConfigMapRef.Name))
		default:
			errs = append(errs, field.Invalid(p, from, "must have exactly one source"))
		}
	}
	portNames, numbers := map[string]bool{}, map[string]bool{}
	for i, p := range c.Ports {
		pp := path.Child("ports").Index(i)
		invalid(pp.Child("containerPort"), p.ContainerPort, validation.IsValidPortNum(int(p.ContainerPort)))
		invalid(pp.Child("name"), p.Name, validation.IsValidPortName(p.Name))
		protocols := []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}
		if !slices.Contains(protocols, p.Protocol) {
			errs = append(errs, field.NotSupported(pp.Child("protocol"), p.Protocol, protocols))
		}
		if portNames[p.Name] {
			errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
		}
		portNames[p.Name] = true
		number := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		if numbers[number] {
			errs = append(errs, field.Duplicate(pp.Child("containerPort"), number))
		}
		numbers[number] = true
	}
	for list, resources := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
		for name, q := range resources {
			p := path.Child("resources", list).Key(string(name))
			invalid(p, name, validation.IsQualifiedName(string(name)))
			if q.Sign() < 0 {
				errs = append(errs, field.Invalid(p, q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	for name, request := range c.Resources.Requests {
		if limit, ok := c.Resources.Limits[name]; ok && request.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(path.Child("resources", "requests").Key(string(name)), request.String(),
				"must be less than or equal to the limit"))
		}
	}
	for probeName, probe := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe,
		"livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
		if probe == nil {
			continue
		}
		errs = append(errs, validateProbe(probe, probeName != "readinessProbe", portNames, path.Child(probeName))...)
	}
	return errs
}

// validateProbe checks a probe as the Pod API does: one handler, a named port that the container has, timing
// that is not negative, and a successThreshold of 1 for liveness and startup probes.
func validateProbe(probe *corev1.Probe, successOnce bool, portNames map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	h := probe.ProbeHandler
	handlers := 0
	for _, set := range []bool{h.HTTPGet != nil, h.TCPSocket != nil, h.GRPC != nil, h.Exec != nil} {
		if set {
			handlers++
		}
	}
	if handlers != 1 {
		return append(errs, field.Invalid(p, handlers, "must have exactly one handler"))
	}
	namedPort := func(port intstr.IntOrString, pp *field.Path) {
		if port.Type != intstr.String || !portNames[port.StrVal] {
			errs = append(errs, field.NotFound(pp, port.String()))
		}
	}
	switch {
	case h.HTTPGet != nil:
		if h.HTTPGet.Path == "" {
			errs = append(errs, field.Required(p.Child("httpGet", "path"), ""))
		}
		namedPort(h.HTTPGet.Port, p.Child("httpGet", "port"))
	case h.TCPSocket != nil:
		namedPort(h.TCPSocket.Port, p.Child("tcpSocket", "port"))
	case h.GRPC != nil:
		for _, m := range validation.IsValidPortNum(int(h.GRPC.Port)) {
			errs = append(errs, field.Invalid(p.Child("grpc", "port"), h.GRPC.Port, m))
		}
	case h.Exec != nil:
		if len(h.Exec.Command) == 0 {
			errs = append(errs, field.Required(p.Child("exec", "command"), ""))
		}
	}
	for name, v := range map[string]int32{"initialDelaySeconds": probe.InitialDelaySeconds, "periodSeconds": probe.PeriodSeconds,
		"timeoutSeconds": probe.TimeoutSeconds, "successThreshold": probe.SuccessThreshold, "failureThreshold": probe.FailureThreshold} {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(v), p.Child(name))...)
	}
	if successOnce && probe.SuccessThreshold > 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), probe.SuccessThreshold, "must be 1"))
	}
	return errs
}

// validateService checks a Service with the validation functions of apimachinery that the API server's Service
// validation calls, and that its target ports name ports of the container.
func validateService(s *corev1.Service, containerPorts []corev1.ContainerPort) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&s.ObjectMeta, true, apivalidation.NameIsDNS1035Label, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	errs = append(errs, metav1validation.ValidateLabels(s.Spec.Selector, spec.Child("selector"))...)
	if len(s.Spec.Ports) == 0 {
		errs = append(errs, field.Required(spec.Child("ports"), ""))
	}
	for i, p := range s.Spec.Ports {
		pp := spec.Child("ports").Index(i)
		for _, m := range validation.IsValidPortNum(int(p.Port)) {
			errs = append(errs, field.Invalid(pp.Child("port"), p.Port, m))
		}
		for _, m := range validation.IsValidPortName(p.Name) {
			errs = append(errs, field.Invalid(pp.Child("name"), p.Name, m))
		}
		found := false
		for _, cp := range containerPorts {
			found = found || cp.Name == p.TargetPort.String()
		}
		if !found {
			errs = append(errs, field.NotFound(pp.Child("targetPort"), p.TargetPort.String()))
		}
	}
	return errs
}
