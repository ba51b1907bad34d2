package integration

import (
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// randomApp is an App as a user may write it: every field within what admission allows (see types.go), with
// the values a Go API type drops when it is stored (empty strings, zeros, empty lists and maps) more often than
// chance would give them.
func randomApp(r *rand.Rand, namespace string, i int) *berthv1alpha1.App {
	a := &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("app-%d", i),
			Namespace: namespace,
			UID:       types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i)),
		},
		Spec: berthv1alpha1.AppSpec{
			Image: pick(r, "nginx:1.27", "registry.example.com/shop/web@sha256:"+
				"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "busybox", "localhost:5000/a/b:c"),
		},
	}
	if r.IntN(4) > 0 {
		a.Spec.Replicas = ptr.To(pick(r, int32(0), int32(1), int32(3), int32(10000)))
	}
	if r.IntN(4) == 0 {
		randomPorts(r, a)
	} else if r.IntN(3) > 0 {
		a.Spec.Port = ptr.To(pick(r, int32(1), int32(80), int32(8080), int32(65535)))
		if r.IntN(2) == 0 {
			hc := &berthv1alpha1.HealthCheck{Path: pick(r, "/", "/healthz", "/a/b?c=d")}
			if r.IntN(2) == 0 {
				hc.InitialDelaySeconds = ptr.To(pick(r, int32(0), int32(1), int32(3600)))
			}
			if r.IntN(2) == 0 {
				hc.PeriodSeconds = ptr.To(pick(r, int32(1), int32(10), int32(3600)))
			}
			a.Spec.HealthCheck = hc
		}
	}
	names := []string{"A", "MODE", "_x", "with.dot", "with-dash", "Z9"}
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, name := range names[:r.IntN(len(names)+1)] {
		a.Spec.Env = append(a.Spec.Env, berthv1alpha1.EnvVar{Name: name, Value: pick(r, "", "", "prod", " ", "0", "ünïcode")})
	}
	if r.IntN(3) > 0 {
		a.Spec.Resources = randomResources(r)
	}
	a.Spec.RunAsRoot = r.IntN(4) == 0
	randomReferences(r, a)
	randomIdentity(r, a)
	randomPlacement(r, a)
	randomScaling(r, a)
	if (a.Spec.Port != nil || len(a.Spec.Ports) > 0) && r.IntN(2) == 0 {
		a.Spec.Route = &berthv1alpha1.Route{Host: pick(r, "a.example.com", "x", "api.shop.example")}
		if r.IntN(2) == 0 {
			a.Spec.Route.Path = pick(r, "/", "/v1", "/a/b/")
		}
		if r.IntN(2) == 0 {
			a.Spec.Route.TLSSecretName = "tls"
		}
		if r.IntN(2) == 0 {
			a.Spec.Route.Gateway = &berthv1alpha1.GatewayReference{Name: "private",
				Namespace: pick(r, "", "infra"), SectionName: pick(r, "", "https")}
		}
	}
	return a
}

// randomScaling gives the App a disruption budget and autoscaling, each in one of its forms, or not.
func randomScaling(r *rand.Rand, a *berthv1alpha1.App) {
	switch r.IntN(4) {
	case 0:
		a.Spec.DisruptionBudget = &berthv1alpha1.DisruptionBudget{Disabled: r.IntN(2) == 0}
	case 1:
		a.Spec.DisruptionBudget = &berthv1alpha1.DisruptionBudget{MaxUnavailable: ptr.To(
			pick(r, intstr.FromInt32(1), intstr.FromInt32(2), intstr.FromString("1%"), intstr.FromString("100%")))}
	}
	if r.IntN(3) > 0 {
		return
	}
	scaling := &berthv1alpha1.Autoscaling{MaxReplicas: pick(r, int32(1), int32(5), int32(10000))}
	if r.IntN(2) == 0 {
		scaling.MinReplicas = ptr.To(pick(r, int32(1), scaling.MaxReplicas))
	}
	if a.Spec.Resources == nil {
		a.Spec.Resources = &berthv1alpha1.Resources{}
	}
	if a.Spec.Resources.Requests == nil {
		a.Spec.Resources.Requests = corev1.ResourceList{}
	}
	// A utilization target needs a request of its resource, which must not be above the limit.
	request := func(name corev1.ResourceName, quantity string) {
		if _, ok := a.Spec.Resources.Requests[name]; ok {
			return
		}
		if limit, ok := a.Spec.Resources.Limits[name]; ok {
			a.Spec.Resources.Requests[name] = limit
			return
		}
		a.Spec.Resources.Requests[name] = resource.MustParse(quantity)
	}
	if r.IntN(3) > 0 {
		scaling.CPUUtilization = ptr.To(pick(r, int32(1), int32(80), int32(1000)))
		request(corev1.ResourceCPU, "100m")
	}
	if scaling.CPUUtilization == nil || r.IntN(2) == 0 {
		scaling.MemoryUtilization = ptr.To(pick(r, int32(1), int32(90)))
		request(corev1.ResourceMemory, "64Mi")
	}
	a.Spec.Autoscaling = scaling
}

// randomPorts gives the App named ports of every protocol, internal or not, and probes of every kind.
func randomPorts(r *rand.Rand, a *berthv1alpha1.App) {
	all := []berthv1alpha1.Port{
		{Name: "api", Port: 8080, Protocol: corev1.ProtocolTCP, ServicePort: ptr.To(pick(r, int32(80), int32(8080)))},
		{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP, Internal: r.IntN(2) == 0},
		{Name: "dns", Port: 53, Protocol: pick(r, corev1.ProtocolUDP, corev1.ProtocolSCTP)},
	}
	a.Spec.Ports = all[:1+r.IntN(len(all))]
	probe := func() *berthv1alpha1.Probe {
		p := pick(r,
			&berthv1alpha1.Probe{HTTP: &berthv1alpha1.HTTPProbe{Path: "/ready", Port: pick(r, "", "api")}},
			&berthv1alpha1.Probe{TCP: &berthv1alpha1.TCPProbe{Port: pick(r, "", "api")}},
			&berthv1alpha1.Probe{GRPC: &berthv1alpha1.GRPCProbe{Port: 9090, Service: pick(r, "", "api.v1")}},
			&berthv1alpha1.Probe{Exec: &berthv1alpha1.ExecProbe{Command: []string{"/bin/check", ""}[:1+r.IntN(2)]}})
		if r.IntN(2) == 0 {
			p.InitialDelaySeconds = ptr.To(pick(r, int32(0), int32(30)))
			p.PeriodSeconds = ptr.To(pick(r, int32(1), int32(10)))
			p.TimeoutSeconds = ptr.To(pick(r, int32(1), int32(5)))
			p.FailureThreshold = ptr.To(pick(r, int32(1), int32(30)))
		}
		return p
	}
	switch r.IntN(3) {
	case 0:
		a.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: "/healthz"}
	case 1:
		a.Spec.Probes = &berthv1alpha1.Probes{Readiness: probe(), Liveness: probe(), Startup: probe()}
		a.Spec.Probes.Readiness.SuccessThreshold = ptr.To(pick(r, int32(1), int32(2)))
	}
}

// randomPlacement gives the App shutdown and rollout settings, a node selector, tolerations and a spread, or
// leaves them to their defaults.
func randomPlacement(r *rand.Rand, a *berthv1alpha1.App) {
	if r.IntN(2) == 0 {
		a.Spec.Shutdown = &berthv1alpha1.Shutdown{}
		if r.IntN(2) == 0 {
			a.Spec.Shutdown.PreStopSleepSeconds = ptr.To(pick(r, int64(1), int64(10)))
		}
		if r.IntN(2) == 0 {
			a.Spec.Shutdown.GracePeriodSeconds = ptr.To(pick(r, int64(11), int64(86400)))
		}
	}
	if r.IntN(2) == 0 {
		a.Spec.Rollout = &berthv1alpha1.Rollout{}
		if r.IntN(2) == 0 {
			a.Spec.Rollout.MaxSurge = ptr.To(pick(r, intstr.FromInt32(1), intstr.FromString("25%"), intstr.FromString("100%")))
		}
		if r.IntN(2) == 0 {
			a.Spec.Rollout.MaxUnavailable = ptr.To(pick(r, intstr.FromInt32(1), intstr.FromString("10%")))
		}
		if r.IntN(2) == 0 {
			a.Spec.Rollout.MinReadySeconds = ptr.To(pick(r, int32(0), int32(5)))
		}
		if r.IntN(2) == 0 {
			a.Spec.Rollout.ProgressDeadlineSeconds = ptr.To(pick(r, int32(60), int32(600)))
		}
	}
	if r.IntN(3) == 0 {
		a.Spec.NodeSelector = map[string]berthv1alpha1.LabelValue{"kubernetes.io/arch": pick[berthv1alpha1.LabelValue](r, "arm64", "")}
	}
	for range r.IntN(3) {
		a.Spec.Tolerations = append(a.Spec.Tolerations, pick(r,
			berthv1alpha1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule},
			berthv1alpha1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual},
			berthv1alpha1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute,
				TolerationSeconds: ptr.To(pick(r, int64(0), int64(60)))}))
	}
	switch r.IntN(4) {
	case 0:
		a.Spec.Spread = &berthv1alpha1.Spread{Disabled: true}
	case 1:
		a.Spec.Spread = &berthv1alpha1.Spread{TopologyKeys: []string{"example.com/rack"}, MaxSkew: ptr.To(int32(2)),
			WhenUnsatisfiable: pick(r, corev1.ScheduleAnyway, corev1.DoNotSchedule, "")}
	}
}

// randomReferences gives the App variables from keys of Secrets and ConfigMaps, whole Secrets and ConfigMaps as
// variables, and files; optional or not, with modes and chosen keys or without.
func randomReferences(r *rand.Rand, a *berthv1alpha1.App) {
	for i := range r.IntN(3) {
		ref := &berthv1alpha1.KeyRef{Name: pick(r, "db", "settings.v2"), Key: pick(r, "password", "a.b_c-d", "K"),
			Optional: r.IntN(2) == 0}
		e := berthv1alpha1.EnvVar{Name: fmt.Sprintf("REF_%d", i)}
		if r.IntN(2) == 0 {
			e.SecretKeyRef = ref
		} else {
			e.ConfigMapKeyRef = ref
		}
		a.Spec.Env = append(a.Spec.Env, e)
	}
	for range r.IntN(3) {
		from := berthv1alpha1.EnvFromSource{Prefix: pick(r, "", "", "DB_", "x.")}
		ref := &berthv1alpha1.ObjectRef{Name: pick(r, "db", "settings"), Optional: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			from.SecretRef = ref
		} else {
			from.ConfigMapRef = ref
		}
		a.Spec.EnvFrom = append(a.Spec.EnvFrom, from)
	}
	for i := range r.IntN(3) {
		source := &berthv1alpha1.FilesSource{Name: pick(r, "tls", "web-conf"), Optional: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			source.Mode = ptr.To(pick(r, int32(0), int32(0o400), int32(0o440), int32(0o644), int32(0o777)))
		}
		for _, key := range []string{"tls.crt", "tls.key", "config.yaml"}[:r.IntN(4)] {
			source.Items = append(source.Items, berthv1alpha1.FileItem{Key: key, Path: pick(r, "", key, "sub/dir/"+key)})
		}
		files := berthv1alpha1.Files{Path: fmt.Sprintf("/etc/app/%d", i)}
		if r.IntN(2) == 0 {
			files.Secret = source
		} else {
			files.ConfigMap = source
		}
		a.Spec.Files = append(a.Spec.Files, files)
	}
}

// randomIdentity gives the App a command and arguments, pull secrets, a ServiceAccount and its token, and a
// user and groups.
func randomIdentity(r *rand.Rand, a *berthv1alpha1.App) {
	a.Spec.Command = []string{"/bin/web", "sh", ""}[:r.IntN(3)]
	a.Spec.Args = []string{"--port=$(PORT)", "", "-v"}[:r.IntN(4)]
	a.Spec.ImagePullSecrets = []string{"registry", "mirror.example"}[:r.IntN(3)]
	a.Spec.ServiceAccountName = pick(r, "", "", "web", "default")
	a.Spec.AutomountServiceAccountToken = r.IntN(3) == 0
	if r.IntN(2) == 0 {
		a.Spec.RunAs = &berthv1alpha1.RunAs{}
		if r.IntN(2) == 0 {
			user := pick(r, int64(1), int64(1000), int64(2147483647))
			if a.Spec.RunAsRoot {
				user = pick(r, int64(0), user)
			}
			a.Spec.RunAs.User = &user
		}
		if r.IntN(2) == 0 {
			a.Spec.RunAs.Group = ptr.To(pick(r, int64(0), int64(1000)))
		}
		if r.IntN(2) == 0 {
			a.Spec.RunAs.FSGroup = ptr.To(pick(r, int64(0), int64(2000)))
		}
	}
}

// randomResources keeps every limit at or above its request, as the CRD's rule requires.
func randomResources(r *rand.Rand) *berthv1alpha1.Resources {
	quantities := map[string][]string{
		"cpu":               {"0", "100m", "1", "1000m", "1.5"},
		"memory":            {"0", "64Mi", "1Gi", "1e9", "128974848"},
		"ephemeral-storage": {"0", "1Gi"},
	}
	res := &berthv1alpha1.Resources{}
	for _, name := range []string{"cpu", "memory", "ephemeral-storage"} {
		switch r.IntN(4) {
		case 0:
			continue
		case 1:
			if res.Requests == nil {
				res.Requests = corev1.ResourceList{}
			}
			res.Requests[corev1.ResourceName(name)] = resource.MustParse(pick(r, quantities[name]...))
		case 2:
			if res.Limits == nil {
				res.Limits = corev1.ResourceList{}
			}
			res.Limits[corev1.ResourceName(name)] = resource.MustParse(pick(r, quantities[name]...))
		default:
			q := resource.MustParse(pick(r, quantities[name]...))
			if res.Requests == nil {
				res.Requests = corev1.ResourceList{}
			}
			if res.Limits == nil {
				res.Limits = corev1.ResourceList{}
			}
			res.Requests[corev1.ResourceName(name)] = q
			res.Limits[corev1.ResourceName(name)] = q
		}
	}
	if r.IntN(8) == 0 {
		res.Requests = corev1.ResourceList{} // present but empty
	}
	return res
}

func pick[T any](r *rand.Rand, values ...T) T {
	return values[r.IntN(len(values))]
}
