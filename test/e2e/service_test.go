package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
)

// TestARealServiceInOneApp applies artifacts/examples/api.yaml as written, in a namespace that enforces the
// restricted standard: its Pods are admitted and run, and the Deployment carries what the App says of Secrets and
// ConfigMaps, the command, the identity, the shutdown, the rollout and the placement. Then the App is applied
// again without those fields, as a user removes them: berth takes each out of the Deployment.
func TestARealServiceInOneApp(t *testing.T) {
	t.Parallel()
	ns := newLabelledNamespace(t, podSecurity("restricted"))
	apply(t, ns, example(t, "api.yaml", ns))

	app := waitAvailable(t, ns, "api", 2)
	waitPodsRunning(t, app, 2)
	d, err := kubeClient.AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	require.NoError(t, err)
	pod, c := d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0]

	assert.Equal(t, []string{"nginx"}, c.Command)
	assert.Equal(t, []string{"-g", "daemon off;"}, c.Args)
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api-db"}, Key: "password"}}})
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "LOG_LEVEL", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api-conf"},
			Key: "level", Optional: ptr.To(true)}}})
	assert.Equal(t, []corev1.EnvFromSource{{Prefix: "DB_",
		SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "api-db"}}}}, c.EnvFrom)
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	require.Contains(t, mounts, "/etc/nginx/conf.d")
	require.Contains(t, mounts, "/etc/api/db")
	assert.True(t, mounts["/etc/api/db"].ReadOnly, "the files of a Secret are read-only")
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	secretVolume := volumes[mounts["/etc/api/db"].Name].Secret
	require.NotNil(t, secretVolume, "the volume of /etc/api/db is the Secret's: %+v", pod.Volumes)
	assert.Equal(t, "api-db", secretVolume.SecretName)
	assert.Equal(t, ptr.To[int32](0o440), secretVolume.DefaultMode, "mode 0440 in the App's YAML")
	configVolume := volumes[mounts["/etc/nginx/conf.d"].Name].ConfigMap
	require.NotNil(t, configVolume)
	assert.Equal(t, []corev1.KeyToPath{{Key: "default.conf", Path: "default.conf"}}, configVolume.Items)

	assert.Equal(t, "api", pod.ServiceAccountName)
	assert.Equal(t, ptr.To(false), pod.AutomountServiceAccountToken)
	assert.Equal(t, ptr.To[int64](101), pod.SecurityContext.RunAsUser)
	assert.Equal(t, ptr.To[int64](101), pod.SecurityContext.FSGroup)
	assert.Equal(t, ptr.To[int64](30), pod.TerminationGracePeriodSeconds)
	assert.Equal(t, &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}, c.Lifecycle.PreStop)
	assert.Equal(t, &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(1)),
		MaxUnavailable: ptr.To(intstr.FromInt32(0))}, d.Spec.Strategy.RollingUpdate)
	assert.Equal(t, int32(2), d.Spec.MinReadySeconds)
	assert.Equal(t, ptr.To[int32](300), d.Spec.ProgressDeadlineSeconds)
	assert.Equal(t, map[string]string{"kubernetes.io/os": "linux"}, pod.NodeSelector)
	assert.Equal(t, []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "shop",
		Effect: corev1.TaintEffectNoSchedule}}, pod.Tolerations, "operator Equal is the CRD's default")
	assert.Len(t, pod.TopologySpreadConstraints, 2, "spread over nodes and zones by default")

	// The objects beside the Deployment and the Service: an autoscaler, a disruption budget and a route, which
	// is an HTTPRoute since the suite's cluster has Gateway API.
	h, err := kubeClient.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(t.Context(), "api", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, ptr.To[int32](2), h.Spec.MinReplicas)
	assert.Equal(t, int32(10), h.Spec.MaxReplicas)
	b, err := kubeClient.PolicyV1().PodDisruptionBudgets(ns).Get(t.Context(), "api", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, ptr.To(intstr.FromInt32(1)), b.Spec.MaxUnavailable)
	r, err := gatewayClient.GatewayV1().HTTPRoutes(ns).Get(t.Context(), "api", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []gatewayv1.Hostname{"api.example.com"}, r.Spec.Hostnames)
	assert.Equal(t, gatewayv1.ObjectName("public"), r.Spec.ParentRefs[0].Name)
	assert.Equal(t, "http://api.example.com", app.Status.URL, "the external URL")

	// The user removes every field but the image, the replicas and the port.
	apply(t, ns, appManifest("api", goodImage, 2, 8080))
	eventually(t, "the autoscaler and the route to go", func(ctx context.Context) error {
		if _, err := kubeClient.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "api", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("HorizontalPodAutoscaler api: %v", err)
		}
		if _, err := gatewayClient.GatewayV1().HTTPRoutes(ns).Get(ctx, "api", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("HTTPRoute api: %v", err)
		}
		return nil
	})
	eventually(t, "Deployment api to lose what the App no longer says", func(ctx context.Context) error {
		d, err := kubeClient.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return err
		}
		return leftOver(d)
	})
	waitAvailable(t, ns, "api", 2)
}

// leftOver names what the Deployment of an App that says only its image, replicas and port still has of the
// fields of artifacts/examples/api.yaml.
func leftOver(d *appsv1.Deployment) error {
	pod, c := d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0]
	left := map[string]bool{
		"command": len(c.Command) > 0, "args": len(c.Args) > 0, "envFrom": len(c.EnvFrom) > 0,
		"env": len(c.Env) > 0, "volumes": len(pod.Volumes) > 0, "volumeMounts": len(c.VolumeMounts) > 0,
		"serviceAccountName": pod.ServiceAccountName != "" && pod.ServiceAccountName != "default",
		"runAsUser":          pod.SecurityContext != nil && pod.SecurityContext.RunAsUser != nil,
		"lifecycle":          c.Lifecycle != nil,
		// The Deployment API's defaults come back when berth stops setting a field: 30 s, 25%, 600 s.
		"terminationGracePeriodSeconds": pod.TerminationGracePeriodSeconds != nil && *pod.TerminationGracePeriodSeconds != 30,
		"maxUnavailable":                d.Spec.Strategy.RollingUpdate != nil && d.Spec.Strategy.RollingUpdate.MaxUnavailable.String() != "25%",
		"minReadySeconds":               d.Spec.MinReadySeconds != 0,
		"progressDeadlineSeconds":       d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != 600,
		"nodeSelector":                  len(pod.NodeSelector) > 0,
		"tolerations":                   len(pod.Tolerations) > 0,
	}
	var names []string
	for name, isLeft := range left {
		if isLeft {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		return fmt.Errorf("still set: %v", names)
	}
	return nil
}

// TestPortsAndProbes gives an App several ports, one of them internal, and probes of three kinds, as a user
// would with kubectl: the Service exposes the ports that are not internal, each on its service port, and the
// container carries the probes. Back to the port shorthand, the Service has the one port http and the probes go.
func TestPortsAndProbes(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	apply(t, ns, appManifest("api", goodImage, 1, 0)+`  ports:
  - {name: api, port: 8080, servicePort: 80}
  - {name: metrics, port: 9090, internal: true}
  - {name: dns, port: 5353, protocol: UDP}
  probes:
    startup: {exec: {command: [/bin/true]}, failureThreshold: 30}
    readiness: {http: {path: /ready}, periodSeconds: 5}
    liveness: {tcp: {port: metrics}}
`)
	app := waitAvailable(t, ns, "api", 1)
	assert.Equal(t, fmt.Sprintf("http://api.%s.svc.cluster.local:80", ns), app.Status.URL)

	s, err := kubeClient.CoreV1().Services(ns).Get(t.Context(), "api", metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, s.Spec.Ports, 2, "the internal port is not exposed: %+v", s.Spec.Ports)
	assert.Equal(t, corev1.ServicePort{Name: "api", Protocol: corev1.ProtocolTCP, Port: 80,
		TargetPort: intstr.FromString("api")}, s.Spec.Ports[0])
	assert.Equal(t, corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 5353,
		TargetPort: intstr.FromString("dns")}, s.Spec.Ports[1])
	d, err := kubeClient.AppsV1().Deployments(ns).Get(t.Context(), "api", metav1.GetOptions{})
	require.NoError(t, err)
	c := d.Spec.Template.Spec.Containers[0]
	assert.Len(t, c.Ports, 3)
	require.NotNil(t, c.StartupProbe)
	assert.Equal(t, []string{"/bin/true"}, c.StartupProbe.Exec.Command)
	assert.Equal(t, int32(30), c.StartupProbe.FailureThreshold)
	require.NotNil(t, c.ReadinessProbe)
	assert.Equal(t, &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("api"), Scheme: corev1.URISchemeHTTP},
		c.ReadinessProbe.HTTPGet, "a probe that names no port probes the first")
	require.NotNil(t, c.LivenessProbe)
	assert.Equal(t, intstr.FromString("metrics"), c.LivenessProbe.TCPSocket.Port)

	apply(t, ns, appManifest("api", goodImage, 1, 8080))
	eventually(t, "the Service and the container to be back to the port shorthand", func(ctx context.Context) error {
		s, err := kubeClient.CoreV1().Services(ns).Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Name != "http" || s.Spec.Ports[0].Port != 8080 {
			return fmt.Errorf("service ports: %+v", s.Spec.Ports)
		}
		d, err := kubeClient.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := d.Spec.Template.Spec.Containers[0]
		if len(c.Ports) != 1 || c.StartupProbe != nil || c.ReadinessProbe != nil || c.LivenessProbe != nil {
			return fmt.Errorf("container ports %+v, probes %v %v %v", c.Ports, c.StartupProbe, c.ReadinessProbe, c.LivenessProbe)
		}
		return nil
	})
}

// TestAMissingSecretDegradesTheApp: an App that requires a Secret that does not exist cannot start its Pods
// (kwok's pod-missing-reference Stage plays the kubelet: names starting missing- stand for objects that do not
// exist); the App is Degraded, CreateContainerConfigError, naming the Secret. The same reference made optional
// runs, as does one to a ConfigMap of envFrom that is optional.
func TestAMissingSecretDegradesTheApp(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	required := appManifest("api", goodImage, 1, 0) + `  env:
  - name: DB_PASSWORD
    secretKeyRef: {name: missing-db, key: password}
`
	apply(t, ns, required)
	eventually(t, "App api to be Degraded, naming the Secret", func(ctx context.Context) error {
		app, err := getApp(ctx, ns, "api")
		if err != nil {
			return err
		}
		if err := degradedNamingAPod(ctx, app, plan.ReasonCreateContainerConfigError); err != nil {
			return err
		}
		message := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded).Message
		if !strings.Contains(message, `secret "missing-db" not found`) {
			return fmt.Errorf("the Degraded message %q does not name the Secret", message)
		}
		return nil
	})

	apply(t, ns, appManifest("api", goodImage, 1, 0)+`  env:
  - name: DB_PASSWORD
    secretKeyRef: {name: missing-db, key: password, optional: true}
  envFrom:
  - configMapRef: {name: missing-settings, optional: true}
`)
	waitAvailable(t, ns, "api", 1)
}
