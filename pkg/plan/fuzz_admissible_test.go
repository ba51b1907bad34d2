package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// FuzzDesiredState's mirror of the CRD: what admission refuses, so that the fuzz target checks only Apps the API
// server would store.

// The CRD's patterns and limits, as in pkg/apis/berth/v1alpha1/types.go and artifacts/crds.
var (
	// quantityPattern is the pattern of the quantities of spec.resources in berth's CRD (hack/update-codegen.sh).
	quantityPattern   = regexp.MustCompile(`^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][-+]?[0-9]{1,2}))?$`)
	appNamePattern    = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	whitespace        = regexp.MustCompile(`\s`)
	envNamePattern    = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	keyPattern        = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	portNamePattern   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelKeyPattern   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValuePattern = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	hugePagesPattern  = regexp.MustCompile(`^[-.a-zA-Z0-9]*[a-zA-Z0-9]$`)
	extendedPattern   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
)

// admissible mirrors the CRD's rules: the reasons the API server would refuse the App, none when it would store
// it. The JSON types (an int32 is an int32) are the Go types' already. It also refuses what the schema leaves to
// the Pod API, the rules of the resources that cannot be overcommitted: the App is stored, but its Deployment is
// refused, and the fuzz target has nothing to check then.
func admissible(app *berthv1alpha1.App) []string {
	var errs []string
	refuse := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	// metadata.name is a DNS subdomain for any object, and a DNS-1035 label by berth's rule.
	if len(validation.IsDNS1123Subdomain(app.Name)) > 0 || len(app.Name) > 63 || !appNamePattern.MatchString(app.Name) {
		refuse("metadata.name")
	}
	s := app.Spec
	if n := utf8.RuneCountInString(s.Image); n < 1 || n > 1024 || whitespace.MatchString(s.Image) {
		refuse("spec.image")
	}
	if s.Replicas != nil && (*s.Replicas < 0 || *s.Replicas > 10000) {
		refuse("spec.replicas")
	}
	if s.Port != nil && (*s.Port < 1 || *s.Port > 65535) {
		refuse("spec.port")
	}
	if len(s.Env) > 256 {
		refuse("spec.env: too many")
	}
	names := map[string]bool{}
	total := 0
	for _, e := range s.Env {
		if n := utf8.RuneCountInString(e.Name); n < 1 || n > 256 || !envNamePattern.MatchString(e.Name) || names[e.Name] {
			refuse("spec.env name %q", e.Name)
		}
		names[e.Name] = true
		if utf8.RuneCountInString(e.Value) > 32768 {
			refuse("spec.env value")
		}
		total += len(e.Value)
		sources := 0
		for _, set := range []bool{e.Value != "", e.SecretKeyRef != nil, e.ConfigMapKeyRef != nil} {
			if set {
				sources++
			}
		}
		if sources > 1 {
			refuse("spec.env %q: more than one source", e.Name)
		}
		for _, ref := range []*berthv1alpha1.KeyRef{e.SecretKeyRef, e.ConfigMapKeyRef} {
			if ref != nil && (!admissibleObjectName(ref.Name) || !admissibleKey(ref.Key)) {
				refuse("spec.env %q: reference", e.Name)
			}
		}
	}
	if len(s.EnvFrom) > 32 {
		refuse("spec.envFrom: too many")
	}
	for _, from := range s.EnvFrom {
		if (from.SecretRef == nil) == (from.ConfigMapRef == nil) {
			refuse("spec.envFrom: not exactly one source")
		}
		for _, ref := range []*berthv1alpha1.ObjectRef{from.SecretRef, from.ConfigMapRef} {
			if ref != nil && !admissibleObjectName(ref.Name) {
				refuse("spec.envFrom name %q", ref.Name)
			}
		}
		if from.Prefix != "" && (utf8.RuneCountInString(from.Prefix) > 128 || !envNamePattern.MatchString(from.Prefix)) {
			refuse("spec.envFrom prefix %q", from.Prefix)
		}
	}
	if len(s.Files) > 32 {
		refuse("spec.files: too many")
	}
	paths := map[string]bool{}
	for _, f := range s.Files {
		if n := utf8.RuneCountInString(f.Path); n < 2 || n > 1024 || !strings.HasPrefix(f.Path, "/") ||
			slices.Contains(strings.Split(f.Path, "/"), "..") || strings.Contains(f.Path, ":") || paths[f.Path] {
			refuse("spec.files path %q", f.Path)
		}
		paths[f.Path] = true
		if (f.Secret == nil) == (f.ConfigMap == nil) {
			refuse("spec.files %q: not exactly one source", f.Path)
			continue
		}
		source := f.Secret
		if source == nil {
			source = f.ConfigMap
		}
		if !admissibleObjectName(source.Name) || len(source.Items) > 64 ||
			(source.Mode != nil && (*source.Mode < 0 || *source.Mode > 511)) {
			refuse("spec.files %q: source", f.Path)
		}
		keys := map[string]bool{}
		for _, item := range source.Items {
			if !admissibleKey(item.Key) || keys[item.Key] || utf8.RuneCountInString(item.Path) > 1024 ||
				strings.HasPrefix(item.Path, "/") || strings.HasPrefix(item.Path, "..") ||
				slices.Contains(strings.Split(item.Path, "/"), "..") {
				refuse("spec.files %q: item %q", f.Path, item.Key)
			}
			keys[item.Key] = true
		}
	}
	for list, words := range map[string][]string{"command": s.Command, "args": s.Args} {
		if (list == "command" && len(words) > 64) || len(words) > 256 {
			refuse("spec.%s: too many", list)
		}
		for _, w := range words {
			if utf8.RuneCountInString(w) > 4096 {
				refuse("spec.%s: too long", list)
			}
		}
	}
	if len(s.ImagePullSecrets) > 16 {
		refuse("spec.imagePullSecrets: too many")
	}
	pullSecrets := map[string]bool{}
	for _, name := range s.ImagePullSecrets {
		if !admissibleObjectName(name) || pullSecrets[name] {
			refuse("spec.imagePullSecrets %q", name)
		}
		pullSecrets[name] = true
	}
	if s.ServiceAccountName != "" && !admissibleObjectName(s.ServiceAccountName) {
		refuse("spec.serviceAccountName")
	}
	if s.Port != nil && s.Ports != nil {
		refuse("spec.port and spec.ports")
	}
	if len(s.Ports) > 16 {
		refuse("spec.ports: too many")
	}
	portNames := map[string]bool{}
	numbers, servicePorts := map[string]bool{}, map[string]bool{}
	for _, p := range s.Ports {
		if len(p.Name) < 1 || len(p.Name) > 15 || !portNamePattern.MatchString(p.Name) ||
			!strings.ContainsAny(p.Name, "abcdefghijklmnopqrstuvwxyz") || strings.Contains(p.Name, "--") || portNames[p.Name] {
			refuse("spec.ports name %q", p.Name)
		}
		portNames[p.Name] = true
		if p.Port < 1 || p.Port > 65535 || (p.ServicePort != nil && (*p.ServicePort < 1 || *p.ServicePort > 65535)) {
			refuse("spec.ports %q: number", p.Name)
		}
		if p.Protocol != corev1.ProtocolTCP && p.Protocol != corev1.ProtocolUDP && p.Protocol != corev1.ProtocolSCTP {
			refuse("spec.ports %q: protocol", p.Name)
		}
		number := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if numbers[number] {
			refuse("spec.ports: %s twice", number)
		}
		numbers[number] = true
		if !p.Internal {
			servicePort := fmt.Sprintf("%d/%s", servicePortOf(p), p.Protocol)
			if servicePorts[servicePort] {
				refuse("spec.ports: service port %s twice", servicePort)
			}
			servicePorts[servicePort] = true
		}
	}
	if pr := s.Probes; pr != nil {
		for kind, probe := range map[string]*berthv1alpha1.Probe{"readiness": pr.Readiness, "liveness": pr.Liveness, "startup": pr.Startup} {
			if probe != nil && !admissibleProbe(probe, kind != "readiness", s) {
				refuse("spec.probes.%s", kind)
			}
		}
	}
	if sd := s.Shutdown; sd != nil {
		grace := int64(30)
		if g := sd.GracePeriodSeconds; g != nil {
			if *g < 1 || *g > 86400 {
				refuse("spec.shutdown.gracePeriodSeconds")
			}
			grace = *g
		}
		if p := sd.PreStopSleepSeconds; p != nil && (*p < 1 || *p > 3600 || *p >= grace) {
			refuse("spec.shutdown.preStopSleepSeconds")
		}
	}
	if r := s.Rollout; r != nil {
		zero := func(v *intstr.IntOrString) bool { return v != nil && (v.String() == "0" || v.String() == "0%") }
		if zero(r.MaxSurge) && zero(r.MaxUnavailable) {
			refuse("spec.rollout: both zero")
		}
		if !admissibleIntOrPercent(r.MaxSurge, `^[0-9]{1,3}%$`) || !admissibleIntOrPercent(r.MaxUnavailable, `^(100|[1-9]?[0-9])%$`) {
			refuse("spec.rollout: maxSurge or maxUnavailable")
		}
		minReady := int32(0)
		if m := r.MinReadySeconds; m != nil {
			if *m < 0 || *m > 3600 {
				refuse("spec.rollout.minReadySeconds")
			}
			minReady = *m
		}
		if d := r.ProgressDeadlineSeconds; d != nil && (*d < 1 || *d > 86400 || *d <= minReady) {
			refuse("spec.rollout.progressDeadlineSeconds")
		}
	}
	if len(s.NodeSelector) > 32 {
		refuse("spec.nodeSelector: too many")
	}
	for k, v := range s.NodeSelector {
		if !admissibleLabelKey(k) || len(v) > 63 || !labelValuePattern.MatchString(string(v)) {
			refuse("spec.nodeSelector %q", k)
		}
	}
	if len(s.Tolerations) > 32 {
		refuse("spec.tolerations: too many")
	}
	for _, t := range s.Tolerations {
		if (t.Key != "" && !admissibleLabelKey(t.Key)) ||
			(t.Operator != corev1.TolerationOpEqual && t.Operator != corev1.TolerationOpExists) ||
			len(t.Value) > 63 || !labelValuePattern.MatchString(t.Value) ||
			(t.Effect != "" && t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectPreferNoSchedule &&
				t.Effect != corev1.TaintEffectNoExecute) ||
			(t.Operator == corev1.TolerationOpExists && t.Value != "") ||
			(t.Key == "" && t.Operator != corev1.TolerationOpExists) ||
			(t.TolerationSeconds != nil && (t.Effect != corev1.TaintEffectNoExecute || *t.TolerationSeconds < 0 ||
				*t.TolerationSeconds > 31536000)) {
			refuse("spec.tolerations %+v", t)
		}
	}
	if sp := s.Spread; sp != nil {
		keys := map[string]bool{}
		for _, k := range sp.TopologyKeys {
			if !admissibleLabelKey(k) || keys[k] {
				refuse("spec.spread.topologyKeys %q", k)
			}
			keys[k] = true
		}
		if len(sp.TopologyKeys) > 8 || (sp.MaxSkew != nil && (*sp.MaxSkew < 1 || *sp.MaxSkew > 1000)) ||
			(sp.WhenUnsatisfiable != "" && sp.WhenUnsatisfiable != corev1.ScheduleAnyway &&
				sp.WhenUnsatisfiable != corev1.DoNotSchedule) {
			refuse("spec.spread")
		}
	}
	if r := s.RunAs; r != nil {
		for _, id := range []*int64{r.User, r.Group, r.FSGroup} {
			if id != nil && (*id < 0 || *id > 2147483647) {
				refuse("spec.runAs: %d", *id)
			}
		}
		if r.User != nil && *r.User == 0 && !s.RunAsRoot {
			refuse("spec.runAs.user 0 without runAsRoot")
		}
	}
	if total > 1<<20 {
		refuse("spec.env: values too large")
	}
	if r := s.Resources; r != nil {
		for list, resources := range map[string]corev1.ResourceList{"requests": r.Requests, "limits": r.Limits} {
			if len(resources) > 16 {
				refuse("spec.resources.%s: too many", list)
			}
			for name, q := range resources {
				if !admissibleResourceName(string(name)) {
					refuse("spec.resources.%s name %q", list, name)
				}
				if q.Sign() < 0 {
					refuse("spec.resources.%s.%s negative", list, name)
				}
			}
		}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
			request, hasRequest := r.Requests[name]
			limit, hasLimit := r.Limits[name]
			if hasRequest && hasLimit && limit.Cmp(request) < 0 {
				refuse("spec.resources: limit of %s below the request", name)
			}
		}
		// Left to the Pod API: extended resources and hugepages.
		for name := range r.Requests {
			if !isOvercommittable(name) {
				refuse("spec.resources.requests.%s: left to the Pod API", name)
			}
		}
		for name := range r.Limits {
			if !isOvercommittable(name) {
				refuse("spec.resources.limits.%s: left to the Pod API", name)
			}
		}
	}
	if hc := s.HealthCheck; hc != nil {
		if s.Port == nil && s.Ports == nil {
			refuse("spec.healthCheck requires spec.port or spec.ports")
		}
		if s.Probes != nil {
			refuse("spec.probes with spec.healthCheck")
		}
		if n := utf8.RuneCountInString(hc.Path); n < 1 || n > 2048 || !strings.HasPrefix(hc.Path, "/") || whitespace.MatchString(hc.Path) {
			refuse("spec.healthCheck.path")
		}
		if d := hc.InitialDelaySeconds; d != nil && (*d < 0 || *d > 3600) {
			refuse("spec.healthCheck.initialDelaySeconds")
		}
		if p := hc.PeriodSeconds; p != nil && (*p < 1 || *p > 3600) {
			refuse("spec.healthCheck.periodSeconds")
		}
	}
	return append(errs, admissibleScalingAndRoute(s)...)
}

// admissibleObjectName mirrors the CRD's pattern of the names of Secrets, ConfigMaps and ServiceAccounts: a DNS
// subdomain.
func admissibleObjectName(name string) bool {
	return len(validation.IsDNS1123Subdomain(name)) == 0
}

// admissibleProbe mirrors the CRD's rules on a probe of the App s; successOnce is true of liveness and startup
// probes, whose successThreshold must be 1.
func admissibleProbe(p *berthv1alpha1.Probe, successOnce bool, s berthv1alpha1.AppSpec) bool {
	handlers := 0
	for _, set := range []bool{p.HTTP != nil, p.TCP != nil, p.GRPC != nil, p.Exec != nil} {
		if set {
			handlers++
		}
	}
	if handlers != 1 {
		return false
	}
	portOK := func(name string) bool {
		if len(name) > 15 {
			return false
		}
		if name == "" {
			return s.Port != nil || s.Ports != nil
		}
		if s.Ports == nil {
			return s.Port != nil && name == "http"
		}
		return slices.ContainsFunc(s.Ports, func(p berthv1alpha1.Port) bool { return p.Name == name })
	}
	switch {
	case p.HTTP != nil:
		if n := utf8.RuneCountInString(p.HTTP.Path); n < 1 || n > 2048 || !strings.HasPrefix(p.HTTP.Path, "/") ||
			whitespace.MatchString(p.HTTP.Path) || !portOK(p.HTTP.Port) {
			return false
		}
	case p.TCP != nil:
		if !portOK(p.TCP.Port) {
			return false
		}
	case p.GRPC != nil:
		if p.GRPC.Port < 1 || p.GRPC.Port > 65535 || utf8.RuneCountInString(p.GRPC.Service) > 253 {
			return false
		}
	case p.Exec != nil:
		if len(p.Exec.Command) < 1 || len(p.Exec.Command) > 64 ||
			slices.ContainsFunc(p.Exec.Command, func(w string) bool { return utf8.RuneCountInString(w) > 4096 }) {
			return false
		}
	}
	within := func(v *int32, lo, hi int32) bool { return v == nil || (*v >= lo && *v <= hi) }
	return within(p.InitialDelaySeconds, 0, 3600) && within(p.PeriodSeconds, 1, 3600) &&
		within(p.TimeoutSeconds, 1, 3600) && within(p.SuccessThreshold, 1, 100) && within(p.FailureThreshold, 1, 100) &&
		(!successOnce || p.SuccessThreshold == nil || *p.SuccessThreshold == 1)
}

// admissibleLabelKey mirrors the CRD's rules on a label key (node selectors, tolerations, topology keys).
func admissibleLabelKey(k string) bool {
	return len(k) <= 317 && strings.Index(k, "/") <= 253 && labelKeyPattern.MatchString(k)
}

// admissibleIntOrPercent mirrors the CRD's rule on maxSurge and maxUnavailable: a number not below 0, or a
// percentage matching percent.
func admissibleIntOrPercent(v *intstr.IntOrString, percent string) bool {
	if v == nil {
		return true
	}
	if v.Type == intstr.Int {
		return v.IntVal >= 0
	}
	return regexp.MustCompile(percent).MatchString(v.StrVal)
}

// admissibleKey mirrors the CRD's rules on a key of a Secret or ConfigMap.
func admissibleKey(key string) bool {
	return len(key) >= 1 && len(key) <= 253 && keyPattern.MatchString(key) && key != "." && !strings.HasPrefix(key, "..")
}

// admissibleResourceName mirrors the CRD's rule on the names of spec.resources.requests and limits.
func admissibleResourceName(name string) bool {
	switch {
	case name == "cpu", name == "memory", name == "ephemeral-storage":
		return true
	case strings.HasPrefix(name, "hugepages-"):
		_, err := resource.ParseQuantity(name[len("hugepages-"):])
		return len(name) <= 63 && err == nil && hugePagesPattern.MatchString(name)
	}
	slash := strings.Index(name, "/")
	return extendedPattern.MatchString(name) && slash <= 244 && len(name)-slash <= 64 &&
		!strings.HasPrefix(name, "requests.")
}

// isOvercommittable tells a resource whose request may be below its limit: the Pod API's rule.
func isOvercommittable(name corev1.ResourceName) bool {
	native := !strings.Contains(string(name), "/") || strings.Contains(string(name), "kubernetes.io/")
	return native && !strings.HasPrefix(string(name), "hugepages-")
}
