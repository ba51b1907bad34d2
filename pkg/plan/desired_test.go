package plan

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// toTyped fills object, a typed object, from an apply configuration, through JSON as the API server reads it.
func toTyped(applyConfiguration, object any) error {
	data, err := json.Marshal(applyConfiguration)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, object)
}

func typedDeployment(t *testing.T, app *berthv1alpha1.App) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	require.NoError(t, toTyped(Deployment(app), &d))
	return &d
}

// restricted is the container security context of the restricted Pod Security Standard.
var restricted = &corev1.SecurityContext{
	AllowPrivilegeEscalation: ptr.To(false),
	Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
}

// TestDesiredDeploymentSendsNoValueTheAPIServerDrops: what berth applies is compared with what it reads back of
// its own fields; a value the API server does not store (omitempty) would never be read back, and the App would
// be applied again at every sync. The integration tests prove this over generated Apps against the API server.
func TestDesiredDeploymentSendsNoValueTheAPIServerDrops(t *testing.T) {
	c := Deployment(plantest.NewApp(plantest.WithPort(8080), func(a *berthv1alpha1.App) {
		a.Spec.Env = []berthv1alpha1.EnvVar{{Name: "EMPTY"}, {Name: "SET", Value: "x"}}
		a.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: "/healthz", InitialDelaySeconds: ptr.To[int32](0)}
	})).Spec.Template.Spec.Containers[0]
	assert.Nil(t, c.Env[0].Value, "an empty value is not stored")
	assert.Equal(t, ptr.To("x"), c.Env[1].Value)
	assert.Nil(t, c.ReadinessProbe.InitialDelaySeconds, "a zero delay is not stored")
	assert.Nil(t, c.LivenessProbe.InitialDelaySeconds)
}

func TestDesiredDeployment(t *testing.T) {
	wantLabels := map[string]string{
		"app.kubernetes.io/name":       "web",
		"app.kubernetes.io/instance":   "web",
		"app.kubernetes.io/managed-by": "berth",
	}
	wantSelector := map[string]string{
		"app.kubernetes.io/instance":   "web",
		"app.kubernetes.io/managed-by": "berth",
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/healthz", Port: intstr.FromString("http"),
	}}}

	tests := []struct {
		name string
		app  *berthv1alpha1.App
		want func(*testing.T, *appsv1.Deployment)
	}{{
		name: "minimal App: one container, no port, no probes",
		app:  plantest.NewApp(),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, int32(3), *d.Spec.Replicas)
			c := d.Spec.Template.Spec.Containers
			require.Len(t, c, 1)
			assert.Equal(t, corev1.Container{Name: "app", Image: "nginx:1.27", SecurityContext: restricted}, c[0])
		},
	}, {
		name: "Pods pass the restricted Pod Security Standard by default",
		app:  plantest.NewApp(),
		want: func(t *testing.T, d *appsv1.Deployment) {
			pod := d.Spec.Template.Spec
			assert.Equal(t, &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}, pod.SecurityContext)
			assert.Equal(t, restricted, pod.Containers[0].SecurityContext)
			assert.Equal(t, ptr.To(false), pod.AutomountServiceAccountToken)
		},
	}, {
		name: "runAsRoot keeps only what the baseline standard allows",
		app:  plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.RunAsRoot = true }),
		want: func(t *testing.T, d *appsv1.Deployment) {
			pod := d.Spec.Template.Spec
			assert.Equal(t, &corev1.PodSecurityContext{
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}, pod.SecurityContext)
			assert.Nil(t, pod.Containers[0].SecurityContext, "the image's user, the runtime's capabilities")
			assert.Equal(t, ptr.To(false), pod.AutomountServiceAccountToken)
		},
	}, {
		name: "replicas unset defaults to 1",
		app:  plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Replicas = nil }),
		want: func(t *testing.T, d *appsv1.Deployment) { assert.Equal(t, int32(1), *d.Spec.Replicas) },
	}, {
		name: "replicas 0 stays 0",
		app:  plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Replicas = ptr.To[int32](0) }),
		want: func(t *testing.T, d *appsv1.Deployment) { assert.Equal(t, int32(0), *d.Spec.Replicas) },
	}, {
		name: "port becomes a named TCP container port",
		app:  plantest.NewApp(plantest.WithPort(8080)),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				d.Spec.Template.Spec.Containers[0].Ports)
		},
	}, {
		name: "health check becomes readiness and liveness probes with the App's timing",
		app: plantest.NewApp(plantest.WithPort(8080), func(a *berthv1alpha1.App) {
			a.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: "/healthz"}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, probe, d.Spec.Template.Spec.Containers[0].ReadinessProbe)
			assert.Equal(t, probe, d.Spec.Template.Spec.Containers[0].LivenessProbe)
		},
	}, {
		name: "health check timing is passed on",
		app: plantest.NewApp(plantest.WithPort(8080), func(a *berthv1alpha1.App) {
			a.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: "/ready", InitialDelaySeconds: ptr.To[int32](5),
				PeriodSeconds: ptr.To[int32](20)}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			p := d.Spec.Template.Spec.Containers[0].ReadinessProbe
			assert.Equal(t, "/ready", p.HTTPGet.Path)
			assert.Equal(t, int32(5), p.InitialDelaySeconds)
			assert.Equal(t, int32(20), p.PeriodSeconds)
		},
	}, {
		name: "env keeps the App's order",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Env = []berthv1alpha1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "EMPTY"}}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, []corev1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "EMPTY"}},
				d.Spec.Template.Spec.Containers[0].Env)
		},
	}, {
		name: "resources are copied",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Resources = &berthv1alpha1.Resources{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
			}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			r := d.Spec.Template.Spec.Containers[0].Resources
			assert.True(t, resource.MustParse("100m").Equal(r.Requests[corev1.ResourceCPU]))
			assert.True(t, resource.MustParse("64Mi").Equal(r.Limits[corev1.ResourceMemory]))
		},
	}, {
		name: "empty resources set nothing",
		app:  plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Resources = &berthv1alpha1.Resources{} }),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, corev1.ResourceRequirements{}, d.Spec.Template.Spec.Containers[0].Resources)
		},
	}, {
		name: "env from keys of Secrets and ConfigMaps: references only, optional only when asked",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Env = []berthv1alpha1.EnvVar{
				{Name: "DB_PASSWORD", SecretKeyRef: &berthv1alpha1.KeyRef{Name: "db", Key: "password"}},
				{Name: "LEVEL", ConfigMapKeyRef: &berthv1alpha1.KeyRef{Name: "settings", Key: "level", Optional: true}},
			}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, []corev1.EnvVar{
				{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
				{Name: "LEVEL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "level",
					Optional: ptr.To(true)}}},
			}, d.Spec.Template.Spec.Containers[0].Env)
		},
	}, {
		name: "envFrom: every key of a Secret or ConfigMap, with a prefix",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.EnvFrom = []berthv1alpha1.EnvFromSource{
				{SecretRef: &berthv1alpha1.ObjectRef{Name: "db"}, Prefix: "DB_"},
				{ConfigMapRef: &berthv1alpha1.ObjectRef{Name: "settings", Optional: true}},
			}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, []corev1.EnvFromSource{
				{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}},
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"},
					Optional: ptr.To(true)}},
			}, d.Spec.Template.Spec.Containers[0].EnvFrom)
		},
	}, {
		name: "files: a read-only volume per directory, named after its path, chosen keys and a mode",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Files = []berthv1alpha1.Files{
				{Path: "/etc/web/tls", Secret: &berthv1alpha1.FilesSource{Name: "tls", Mode: ptr.To[int32](0o440),
					Items: []berthv1alpha1.FileItem{{Key: "tls.crt", Path: "cert.pem"}, {Key: "tls.key"}}}},
				{Path: "/etc/web/conf", ConfigMap: &berthv1alpha1.FilesSource{Name: "web-conf", Optional: true}},
			}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			tls, conf := filesVolumeName("/etc/web/tls"), filesVolumeName("/etc/web/conf")
			assert.Equal(t, "files-", tls[:6])
			assert.NotEqual(t, tls, conf)
			assert.Equal(t, []corev1.Volume{
				{Name: tls, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: "tls", DefaultMode: ptr.To[int32](0o440),
					Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "cert.pem"}, {Key: "tls.key", Path: "tls.key"}}}}},
				{Name: conf, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "web-conf"}, Optional: ptr.To(true)}}},
			}, d.Spec.Template.Spec.Volumes)
			assert.Equal(t, []corev1.VolumeMount{
				{Name: tls, MountPath: "/etc/web/tls", ReadOnly: true},
				{Name: conf, MountPath: "/etc/web/conf", ReadOnly: true},
			}, d.Spec.Template.Spec.Containers[0].VolumeMounts)
		},
	}, {
		name: "a directory's volume keeps its name when another is added before it",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Files = []berthv1alpha1.Files{
				{Path: "/etc/new", ConfigMap: &berthv1alpha1.FilesSource{Name: "new"}},
				{Path: "/etc/web/conf", ConfigMap: &berthv1alpha1.FilesSource{Name: "web-conf"}},
			}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, filesVolumeName("/etc/web/conf"), d.Spec.Template.Spec.Volumes[1].Name)
			assert.Equal(t, "files-", filesVolumeName("/etc/web/conf")[:6])
		},
	}, {
		name: "command and args replace the image's",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Command = []string{"/bin/web"}
			a.Spec.Args = []string{"--port=$(PORT)", "--verbose"}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			c := d.Spec.Template.Spec.Containers[0]
			assert.Equal(t, []string{"/bin/web"}, c.Command)
			assert.Equal(t, []string{"--port=$(PORT)", "--verbose"}, c.Args)
		},
	}, {
		name: "private images and identity: pull secrets, ServiceAccount, its token, user and groups",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.ImagePullSecrets = []string{"registry", "mirror"}
			a.Spec.ServiceAccountName = "web"
			a.Spec.AutomountServiceAccountToken = true
			a.Spec.RunAs = &berthv1alpha1.RunAs{User: ptr.To[int64](1000), Group: ptr.To[int64](1001),
				FSGroup: ptr.To[int64](2000)}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			pod := d.Spec.Template.Spec
			assert.Equal(t, []corev1.LocalObjectReference{{Name: "registry"}, {Name: "mirror"}}, pod.ImagePullSecrets)
			assert.Equal(t, "web", pod.ServiceAccountName)
			assert.Equal(t, ptr.To(true), pod.AutomountServiceAccountToken)
			assert.Equal(t, &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1001),
				FSGroup:        ptr.To[int64](2000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}, pod.SecurityContext)
			assert.Equal(t, restricted, pod.Containers[0].SecurityContext, "still the restricted standard")
		},
	}, {
		name: "by default the Pods are spread over nodes and zones, one revision at a time, as a preference",
		app:  plantest.NewApp(func(a *berthv1alpha1.App) { a.Spec.Replicas = ptr.To[int32](1) }),
		want: func(t *testing.T, d *appsv1.Deployment) {
			constraint := func(key string) corev1.TopologySpreadConstraint {
				return corev1.TopologySpreadConstraint{MaxSkew: 1, TopologyKey: key,
					WhenUnsatisfiable: corev1.ScheduleAnyway,
					LabelSelector:     &metav1.LabelSelector{MatchLabels: wantSelector},
					MatchLabelKeys:    []string{"pod-template-hash"}}
			}
			assert.Equal(t, []corev1.TopologySpreadConstraint{
				constraint("kubernetes.io/hostname"), constraint("topology.kubernetes.io/zone"),
			}, d.Spec.Template.Spec.TopologySpreadConstraints,
				"whatever the replicas: scaling across 1 and 2 must not change the template")
		},
	}, {
		name: "spread: the App's keys, skew and rule, or none",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Spread = &berthv1alpha1.Spread{TopologyKeys: []string{"example.com/rack"}, MaxSkew: ptr.To[int32](2),
				WhenUnsatisfiable: corev1.DoNotSchedule}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, []corev1.TopologySpreadConstraint{{MaxSkew: 2, TopologyKey: "example.com/rack",
				WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: wantSelector},
				MatchLabelKeys: []string{"pod-template-hash"}}}, d.Spec.Template.Spec.TopologySpreadConstraints)
			off := typedDeployment(t, plantest.NewApp(func(a *berthv1alpha1.App) {
				a.Spec.Spread = &berthv1alpha1.Spread{Disabled: true}
			}))
			assert.Empty(t, off.Spec.Template.Spec.TopologySpreadConstraints)
		},
	}, {
		name: "placement: node selector and tolerations",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.NodeSelector = map[string]berthv1alpha1.LabelValue{"kubernetes.io/arch": "arm64"}
			a.Spec.Tolerations = []berthv1alpha1.Toleration{
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule},
				{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](60)},
			}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			pod := d.Spec.Template.Spec
			assert.Equal(t, map[string]string{"kubernetes.io/arch": "arm64"}, pod.NodeSelector)
			assert.Equal(t, []corev1.Toleration{
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule},
				{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](60)},
			}, pod.Tolerations)
		},
	}, {
		name: "graceful shutdown: a pre-stop sleep and the grace period",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Shutdown = &berthv1alpha1.Shutdown{PreStopSleepSeconds: ptr.To[int64](10), GracePeriodSeconds: ptr.To[int64](45)}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			pod := d.Spec.Template.Spec
			assert.Equal(t, ptr.To[int64](45), pod.TerminationGracePeriodSeconds)
			assert.Equal(t, &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 10}}},
				pod.Containers[0].Lifecycle)
		},
	}, {
		name: "no rollout settings: the Deployment's defaults (no strategy sent)",
		app:  plantest.NewApp(),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, appsv1.DeploymentStrategy{}, d.Spec.Strategy)
			assert.Nil(t, d.Spec.ProgressDeadlineSeconds)
			assert.Zero(t, d.Spec.MinReadySeconds)
			assert.Nil(t, d.Spec.Template.Spec.TerminationGracePeriodSeconds)
			assert.Nil(t, d.Spec.Template.Spec.Containers[0].Lifecycle)
		},
	}, {
		name: "rollout settings",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Rollout = &berthv1alpha1.Rollout{MaxSurge: ptr.To(intstr.FromString("50%")),
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MinReadySeconds: ptr.To[int32](10),
				ProgressDeadlineSeconds: ptr.To[int32](300)}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Equal(t, appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromString("50%")),
					MaxUnavailable: ptr.To(intstr.FromInt32(0))}}, d.Spec.Strategy)
			assert.Equal(t, int32(10), d.Spec.MinReadySeconds)
			assert.Equal(t, ptr.To[int32](300), d.Spec.ProgressDeadlineSeconds)
		},
	}, {
		name: "several named ports, of any protocol; healthCheck probes the first",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Ports = []berthv1alpha1.Port{
				{Name: "api", Port: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "metrics", Port: 9090, Internal: true},
				{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP, ServicePort: ptr.To[int32](53)},
			}
			a.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: "/healthz"}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			c := d.Spec.Template.Spec.Containers[0]
			assert.Equal(t, []corev1.ContainerPort{
				{Name: "api", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
				{Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
			}, c.Ports)
			assert.Equal(t, intstr.FromString("api"), c.ReadinessProbe.HTTPGet.Port)
			assert.Equal(t, intstr.FromString("api"), c.LivenessProbe.HTTPGet.Port)
		},
	}, {
		name: "probes of every kind, with their timing; a probe that names no port probes the first",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.Ports = []berthv1alpha1.Port{{Name: "api", Port: 8080}, {Name: "admin", Port: 8081}}
			a.Spec.Probes = &berthv1alpha1.Probes{
				Readiness: &berthv1alpha1.Probe{HTTP: &berthv1alpha1.HTTPProbe{Path: "/ready"},
					PeriodSeconds: ptr.To[int32](5), TimeoutSeconds: ptr.To[int32](2), SuccessThreshold: ptr.To[int32](2),
					FailureThreshold: ptr.To[int32](4), InitialDelaySeconds: ptr.To[int32](0)},
				Liveness: &berthv1alpha1.Probe{TCP: &berthv1alpha1.TCPProbe{Port: "admin"}},
				Startup: &berthv1alpha1.Probe{GRPC: &berthv1alpha1.GRPCProbe{Port: 8081, Service: "api.v1"},
					PeriodSeconds: ptr.To[int32](10), FailureThreshold: ptr.To[int32](6)},
			}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			c := d.Spec.Template.Spec.Containers[0]
			assert.Equal(t, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready", Port: intstr.FromString("api")}}, PeriodSeconds: 5, TimeoutSeconds: 2,
				SuccessThreshold: 2, FailureThreshold: 4}, c.ReadinessProbe, "a zero delay is not sent")
			assert.Equal(t, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
				Port: intstr.FromString("admin")}}}, c.LivenessProbe)
			assert.Equal(t, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{
				Port: 8081, Service: ptr.To("api.v1")}}, PeriodSeconds: 10, FailureThreshold: 6}, c.StartupProbe)
			exec := typedDeployment(t, plantest.NewApp(func(a *berthv1alpha1.App) {
				a.Spec.Probes = &berthv1alpha1.Probes{Liveness: &berthv1alpha1.Probe{
					Exec: &berthv1alpha1.ExecProbe{Command: []string{"/bin/check", "--quick"}}}}
			}))
			assert.Equal(t, &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
				Command: []string{"/bin/check", "--quick"}}}}, exec.Spec.Template.Spec.Containers[0].LivenessProbe)
		},
	}, {
		name: "health check without port is ignored (admission rejects it anyway)",
		app: plantest.NewApp(func(a *berthv1alpha1.App) {
			a.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: "/healthz"}
		}),
		want: func(t *testing.T, d *appsv1.Deployment) {
			assert.Nil(t, d.Spec.Template.Spec.Containers[0].ReadinessProbe)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := typedDeployment(t, tt.app)
			assert.Equal(t, "web", d.Name)
			assert.Equal(t, "shop", d.Namespace)
			assert.Equal(t, wantLabels, d.Labels)
			assert.Equal(t, wantSelector, d.Spec.Selector.MatchLabels)
			assert.Equal(t, wantLabels, d.Spec.Template.Labels)
			assert.Equal(t, []metav1.OwnerReference{{
				APIVersion: "berth.dev/v1alpha1", Kind: "App", Name: "web", UID: "uid-web",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}}, d.OwnerReferences)
			tt.want(t, d)
		})
	}
}

func TestDesiredServiceOfSeveralPorts(t *testing.T) {
	app := plantest.NewApp(func(a *berthv1alpha1.App) {
		a.Spec.Ports = []berthv1alpha1.Port{
			{Name: "api", Port: 8080, Protocol: corev1.ProtocolTCP, ServicePort: ptr.To[int32](80)},
			{Name: "metrics", Port: 9090, Internal: true},
			{Name: "dns", Port: 5353, Protocol: corev1.ProtocolUDP},
		}
	})
	var s corev1.Service
	require.NoError(t, toTyped(Service(app), &s))
	assert.Equal(t, []corev1.ServicePort{
		{Name: "api", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("api")},
		{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 5353, TargetPort: intstr.FromString("dns")},
	}, s.Spec.Ports, "the internal port is not exposed")

	internalOnly := plantest.NewApp(func(a *berthv1alpha1.App) {
		a.Spec.Ports = []berthv1alpha1.Port{{Name: "metrics", Port: 9090, Internal: true}}
	})
	assert.Nil(t, Service(internalOnly), "an App that exposes no port has no Service")
}

func TestDesiredService(t *testing.T) {
	tests := []struct {
		name string
		app  *berthv1alpha1.App
		want *corev1.ServiceSpec
	}{{
		name: "no port, no Service",
		app:  plantest.NewApp(),
		want: nil,
	}, {
		name: "port is exposed on the same number and targets the named container port",
		app:  plantest.NewApp(plantest.WithPort(8080)),
		want: &corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/instance": "web", "app.kubernetes.io/managed-by": "berth"},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromString("http"),
			}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired := Service(tt.app)
			if tt.want == nil {
				assert.Nil(t, desired)
				return
			}
			var s corev1.Service
			require.NoError(t, toTyped(desired, &s))
			assert.Equal(t, *tt.want, s.Spec)
			assert.Equal(t, "web", s.Name)
			assert.Equal(t, "berth", s.Labels["app.kubernetes.io/managed-by"])
			require.Len(t, s.OwnerReferences, 1)
			assert.Equal(t, "uid-web", string(s.OwnerReferences[0].UID))
		})
	}
}

func TestSelectorString(t *testing.T) {
	assert.Equal(t, "app.kubernetes.io/instance=web,app.kubernetes.io/managed-by=berth", selectorString(plantest.NewApp()))
}
