package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// Flags of FuzzDesiredState's flags argument.
const (
	fuzzHasPort = 1 << iota
	fuzzHasHealthCheck
	fuzzRunAsRoot
	fuzzHasInitialDelay
	fuzzHasPeriod
	fuzzNoReplicas
)

// FuzzDesiredState builds an App from the fuzzer's input and, for every App that the CRD would admit, checks the
// Deployment and Service that berth derives from it: building them never panics; they pass the API server's
// validation functions that apimachinery exports (names, labels, selector, ownerReferences, ports, env names,
// resource names and quantities); and their JSON is stable through the typed objects.
//
// The Pod API's own validation lives in k8s.io/kubernetes, which berth does not import: that the real API server
// stores each Deployment and Service as berth applies them is proven by the integration property test
// (test/integration/property_test.go), and what it refuses of the resources the schema leaves to it (extended
// resources and hugepages) by TestRejectedDeploymentDegradesANewApp.
//
// env is "NAME=VALUE" lines; resources is "requests|limits NAME=QUANTITY" lines; more is lines of the other
// fields (see fuzzMore).
func FuzzDesiredState(f *testing.F) {
	f.Add("web", "nginx:1.27", int32(3), int32(8080), "MODE=prod\nEMPTY=", "requests cpu=100m\nlimits memory=1Gi",
		"/healthz", int32(5), int32(10), uint8(fuzzHasPort|fuzzHasHealthCheck|fuzzHasPeriod),
		"secretEnv DB_PASSWORD db password\nconfigMapEnv LEVEL settings level optional\n"+
			"envFrom secret db DB_\nenvFrom configMap settings\n"+
			"files /etc/web/tls secret tls 288 tls.crt=cert.pem tls.key\nfiles /etc/web/conf configMap web-conf\n"+
			"command /bin/web\narg --port=$(PORT)\npullSecret registry\nserviceAccount web\ntoken\nrunAs 1000 1000 2000\n"+
			"shutdown 10 45\nrollout 25% 0 5 120\nnodeSelector kubernetes.io/arch arm64\n"+
			"toleration dedicated Equal web NoSchedule -\ntoleration - Exists - NoExecute 60\n"+
			"spread 2 DoNotSchedule example.com/rack")
	f.Add("api", "nginx:1.27", int32(2), int32(0), "", "", "", int32(0), int32(0), uint8(0),
		"port api 8080 TCP 80\nport metrics 9090 TCP - internal\nport dns 5353 UDP\n"+
			"probe readiness http /ready\ntiming readiness 0 5 2 2 4\nprobe liveness tcp metrics\n"+
			"probe startup grpc 9090 api.v1\ntiming startup - 10 - 1 30\n"+
			"budget 50%\nroute api.example.com /v1 api tls public infra https")
	f.Add("web", "nginx:1.27", int32(1), int32(8080), "", "requests cpu=100m\nrequests memory=64Mi", "", int32(0),
		int32(0), uint8(fuzzHasPort), "autoscale 2 10 70 90\nbudget 1\nroute web.example.com - - -")
	f.Fuzz(func(t *testing.T, name, image string, replicas, port int32, env, resources, path string,
		initialDelay, period int32, flags uint8, more string) {
		app, ok := fuzzApp(name, image, replicas, port, env, resources, path, initialDelay, period, flags)
		if !ok || !fuzzMore(app, more) {
			return
		}
		// berth gets its Apps decoded from JSON, where every string is valid UTF-8 (an invalid byte is U+FFFD
		// by then): so must the fuzzer's.
		app = decodedFromJSON(t, app)
		if errs := admissible(app); len(errs) > 0 {
			t.Skipf("the CRD refuses this App: %v", errs)
		}

		deployment := Deployment(app)
		var d appsv1.Deployment
		checkJSONRoundTrip(t, deployment, &d, &appsv1.Deployment{}, &appsv1ac.DeploymentApplyConfiguration{})
		if errs := validateDeployment(&d); len(errs) > 0 {
			t.Errorf("the Deployment of %s is invalid: %v", describeApp(app), errs)
		}

		checkScalingAndRoute(t, app)

		service := Service(app)
		if (service == nil) != (len(exposedPorts(app)) == 0) {
			t.Fatalf("a Service must exist exactly when the App exposes a port: %s", describeApp(app))
		}
		if service == nil {
			return
		}
		var s corev1.Service
		checkJSONRoundTrip(t, service, &s, &corev1.Service{}, &corev1ac.ServiceApplyConfiguration{})
		if errs := validateService(&s, d.Spec.Template.Spec.Containers[0].Ports); len(errs) > 0 {
			t.Errorf("the Service of %s is invalid: %v", describeApp(app), errs)
		}
	})
}

// fuzzApp builds an App from FuzzDesiredState's arguments; ok is false for input that cannot be read as one.
func fuzzApp(name, image string, replicas, port int32, env, resources, path string, initialDelay, period int32,
	flags uint8) (app *berthv1alpha1.App, ok bool) {
	app = &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: "0c5f4ae4-8c8b-4b55-a0b5-4bd1d6ad2c7e",
			Generation: 1},
		Spec: berthv1alpha1.AppSpec{Image: image, Replicas: ptr.To(replicas), RunAsRoot: flags&fuzzRunAsRoot != 0},
	}
	if flags&fuzzNoReplicas != 0 {
		app.Spec.Replicas = nil
	}
	if flags&fuzzHasPort != 0 {
		app.Spec.Port = ptr.To(port)
	}
	if flags&fuzzHasHealthCheck != 0 {
		app.Spec.HealthCheck = &berthv1alpha1.HealthCheck{Path: path}
		if flags&fuzzHasInitialDelay != 0 {
			app.Spec.HealthCheck.InitialDelaySeconds = ptr.To(initialDelay)
		}
		if flags&fuzzHasPeriod != 0 {
			app.Spec.HealthCheck.PeriodSeconds = ptr.To(period)
		}
	}
	if env != "" {
		for line := range strings.SplitSeq(env, "\n") {
			name, value, _ := strings.Cut(line, "=")
			app.Spec.Env = append(app.Spec.Env, berthv1alpha1.EnvVar{Name: name, Value: value})
		}
	}
	if resources != "" {
		app.Spec.Resources = &berthv1alpha1.Resources{}
		for line := range strings.SplitSeq(resources, "\n") {
			list, entry, _ := strings.Cut(line, " ")
			name, value, _ := strings.Cut(entry, "=")
			// The CRD stores quantities as the API server parses them; one it cannot parse is refused.
			if len(value) > 64 || !quantityPattern.MatchString(value) {
				return nil, false
			}
			q, err := resource.ParseQuantity(value)
			if err != nil {
				return nil, false
			}
			switch list {
			case "requests":
				if app.Spec.Resources.Requests == nil {
					app.Spec.Resources.Requests = corev1.ResourceList{}
				}
				app.Spec.Resources.Requests[corev1.ResourceName(name)] = q
			case "limits":
				if app.Spec.Resources.Limits == nil {
					app.Spec.Resources.Limits = corev1.ResourceList{}
				}
				app.Spec.Resources.Limits[corev1.ResourceName(name)] = q
			default:
				return nil, false
			}
		}
	}
	return app, true
}

// fuzzMore sets the App's fields from lines of more, each a field and its words:
//
//	secretEnv|configMapEnv NAME OBJECT KEY [optional]
//	envFrom secret|configMap OBJECT [PREFIX]
//	files PATH secret|configMap OBJECT [MODE] [KEY[=FILE]]...
//	command WORD | arg WORD | pullSecret NAME | serviceAccount NAME | token | runAs USER [GROUP [FSGROUP]]
//	shutdown SLEEP|- GRACE|- | rollout SURGE|- UNAVAILABLE|- MINREADY|- DEADLINE|- | nodeSelector KEY VALUE
//	toleration KEY|- OPERATOR VALUE|- EFFECT|- SECONDS|- | spread off | spread SKEW WHEN [KEY]...
//	port NAME NUMBER [PROTOCOL [SERVICEPORT|- [internal]]]
//	probe readiness|liveness|startup http PATH [PORT] | tcp [PORT] | grpc NUMBER [SERVICE] | exec WORD...
//	timing readiness|liveness|startup DELAY|- PERIOD|- TIMEOUT|- SUCCESS|- FAILURE|-
//
// ok is false for a line that cannot be read.
func fuzzMore(app *berthv1alpha1.App, more string) (ok bool) {
	if more == "" {
		return true
	}
	number := func(word string) (*int64, bool) {
		n, err := strconv.ParseInt(word, 10, 64)
		return &n, err == nil
	}
	for line := range strings.SplitSeq(more, "\n") {
		words := strings.Split(line, " ")
		field, args := words[0], words[1:]
		switch {
		case (field == "secretEnv" || field == "configMapEnv") && (len(args) == 3 || len(args) == 4):
			ref := &berthv1alpha1.KeyRef{Name: args[1], Key: args[2], Optional: len(args) == 4}
			e := berthv1alpha1.EnvVar{Name: args[0]}
			if field == "secretEnv" {
				e.SecretKeyRef = ref
			} else {
				e.ConfigMapKeyRef = ref
			}
			app.Spec.Env = append(app.Spec.Env, e)
		case field == "envFrom" && (len(args) == 2 || len(args) == 3):
			from := berthv1alpha1.EnvFromSource{}
			ref := &berthv1alpha1.ObjectRef{Name: args[1]}
			switch args[0] {
			case "secret":
				from.SecretRef = ref
			case "configMap":
				from.ConfigMapRef = ref
			}
			if len(args) == 3 {
				from.Prefix = args[2]
			}
			app.Spec.EnvFrom = append(app.Spec.EnvFrom, from)
		case field == "files" && len(args) >= 3:
			files := berthv1alpha1.Files{Path: args[0]}
			source := &berthv1alpha1.FilesSource{Name: args[2]}
			switch args[1] {
			case "secret":
				files.Secret = source
			case "configMap":
				files.ConfigMap = source
			}
			items := args[3:]
			if len(items) > 0 {
				if mode, err := strconv.ParseInt(items[0], 10, 32); err == nil {
					source.Mode = ptr.To(int32(mode))
					items = items[1:]
				}
			}
			for _, item := range items {
				key, path, _ := strings.Cut(item, "=")
				source.Items = append(source.Items, berthv1alpha1.FileItem{Key: key, Path: path})
			}
			app.Spec.Files = append(app.Spec.Files, files)
		case field == "command" && len(args) == 1:
			app.Spec.Command = append(app.Spec.Command, args[0])
		case field == "arg" && len(args) == 1:
			app.Spec.Args = append(app.Spec.Args, args[0])
		case field == "pullSecret" && len(args) == 1:
			app.Spec.ImagePullSecrets = append(app.Spec.ImagePullSecrets, args[0])
		case field == "serviceAccount" && len(args) == 1:
			app.Spec.ServiceAccountName = args[0]
		case field == "token" && len(args) == 0:
			app.Spec.AutomountServiceAccountToken = true
		case field == "runAs" && len(args) >= 1 && len(args) <= 3:
			app.Spec.RunAs = &berthv1alpha1.RunAs{}
			for i, target := range []**int64{&app.Spec.RunAs.User, &app.Spec.RunAs.Group, &app.Spec.RunAs.FSGroup}[:len(args)] {
				if *target, ok = number(args[i]); !ok {
					return false
				}
			}
		case field == "port" && len(args) >= 2 && len(args) <= 5:
			n, err := strconv.ParseInt(args[1], 10, 32)
			if err != nil {
				return false
			}
			port := berthv1alpha1.Port{Name: args[0], Port: int32(n), Protocol: corev1.ProtocolTCP}
			if len(args) > 2 {
				port.Protocol = corev1.Protocol(args[2])
			}
			if len(args) > 3 && args[3] != "-" {
				servicePort, err := strconv.ParseInt(args[3], 10, 32)
				if err != nil {
					return false
				}
				port.ServicePort = ptr.To(int32(servicePort))
			}
			port.Internal = len(args) > 4 && args[4] == "internal"
			app.Spec.Ports = append(app.Spec.Ports, port)
		case field == "probe" && len(args) >= 2:
			if app.Spec.Probes == nil {
				app.Spec.Probes = &berthv1alpha1.Probes{}
			}
			probe := &berthv1alpha1.Probe{}
			switch kind, rest := args[1], args[2:]; {
			case kind == "http" && (len(rest) == 1 || len(rest) == 2):
				probe.HTTP = &berthv1alpha1.HTTPProbe{Path: rest[0]}
				if len(rest) == 2 {
					probe.HTTP.Port = rest[1]
				}
			case kind == "tcp" && len(rest) <= 1:
				probe.TCP = &berthv1alpha1.TCPProbe{}
				if len(rest) == 1 {
					probe.TCP.Port = rest[0]
				}
			case kind == "grpc" && (len(rest) == 1 || len(rest) == 2):
				n, err := strconv.ParseInt(rest[0], 10, 32)
				if err != nil {
					return false
				}
				probe.GRPC = &berthv1alpha1.GRPCProbe{Port: int32(n)}
				if len(rest) == 2 {
					probe.GRPC.Service = rest[1]
				}
			case kind == "exec":
				probe.Exec = &berthv1alpha1.ExecProbe{Command: rest}
			default:
				return false
			}
			switch args[0] {
			case "readiness":
				app.Spec.Probes.Readiness = probe
			case "liveness":
				app.Spec.Probes.Liveness = probe
			case "startup":
				app.Spec.Probes.Startup = probe
			default:
				return false
			}
		case field == "timing" && len(args) == 6:
			var probe *berthv1alpha1.Probe
			if app.Spec.Probes != nil {
				probe = map[string]*berthv1alpha1.Probe{"readiness": app.Spec.Probes.Readiness,
					"liveness": app.Spec.Probes.Liveness, "startup": app.Spec.Probes.Startup}[args[0]]
			}
			if probe == nil {
				return false
			}
			for i, target := range []**int32{&probe.InitialDelaySeconds, &probe.PeriodSeconds, &probe.TimeoutSeconds,
				&probe.SuccessThreshold, &probe.FailureThreshold} {
				if args[1+i] != "-" {
					n, err := strconv.ParseInt(args[1+i], 10, 32)
					if err != nil {
						return false
					}
					*target = ptr.To(int32(n))
				}
			}
		case field == "shutdown" && len(args) == 2:
			app.Spec.Shutdown = &berthv1alpha1.Shutdown{}
			for i, target := range []**int64{&app.Spec.Shutdown.PreStopSleepSeconds, &app.Spec.Shutdown.GracePeriodSeconds} {
				if args[i] != "-" {
					if *target, ok = number(args[i]); !ok {
						return false
					}
				}
			}
		case field == "rollout" && len(args) == 4:
			r := &berthv1alpha1.Rollout{}
			for i, target := range []**intstr.IntOrString{&r.MaxSurge, &r.MaxUnavailable} {
				if args[i] != "-" {
					*target = ptr.To(intstr.Parse(args[i]))
				}
			}
			for i, target := range []**int32{&r.MinReadySeconds, &r.ProgressDeadlineSeconds} {
				if args[2+i] != "-" {
					n, err := strconv.ParseInt(args[2+i], 10, 32)
					if err != nil {
						return false
					}
					*target = ptr.To(int32(n))
				}
			}
			app.Spec.Rollout = r
		case field == "nodeSelector" && len(args) == 2:
			if app.Spec.NodeSelector == nil {
				app.Spec.NodeSelector = map[string]berthv1alpha1.LabelValue{}
			}
			app.Spec.NodeSelector[args[0]] = berthv1alpha1.LabelValue(args[1])
		case field == "toleration" && len(args) == 5:
			dash := func(w string) string { return strings.TrimPrefix(w, "-") }
			t := berthv1alpha1.Toleration{Key: dash(args[0]), Operator: corev1.TolerationOperator(args[1]),
				Value: dash(args[2]), Effect: corev1.TaintEffect(dash(args[3]))}
			if args[4] != "-" {
				if t.TolerationSeconds, ok = number(args[4]); !ok {
					return false
				}
			}
			app.Spec.Tolerations = append(app.Spec.Tolerations, t)
		case field == "spread" && len(args) == 1 && args[0] == "off":
			app.Spec.Spread = &berthv1alpha1.Spread{Disabled: true}
		case field == "spread" && len(args) >= 2:
			skew, err := strconv.ParseInt(args[0], 10, 32)
			if err != nil {
				return false
			}
			app.Spec.Spread = &berthv1alpha1.Spread{MaxSkew: ptr.To(int32(skew)),
				WhenUnsatisfiable: corev1.UnsatisfiableConstraintAction(args[1]), TopologyKeys: args[2:]}
		default:
			known, ok := fuzzMoreScalingAndRoute(app, field, args)
			if !known || !ok {
				return false
			}
		}
	}
	return true
}

// decodedFromJSON is app as the API server hands it to berth: encoded as JSON and decoded.
func decodedFromJSON(t *testing.T, app *berthv1alpha1.App) *berthv1alpha1.App {
	t.Helper()
	data, err := json.Marshal(app)
	if err != nil {
		t.Fatalf("encoding the App: %v", err)
	}
	var decoded berthv1alpha1.App
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatalf("decoding the App %s: %v", data, err)
	}
	return &decoded
}

// checkJSONRoundTrip checks that what berth sends is stable through the typed object that the API server decodes
// it into: applyConfiguration as JSON, decoded into typed (and returned there), encoded and decoded again, gives
// the same typed object and the same JSON; and the apply configuration itself survives its own round trip.
func checkJSONRoundTrip(t *testing.T, applyConfiguration, typed, typedAgain, applyAgain any) {
	t.Helper()
	sent, err := json.Marshal(applyConfiguration)
	if err != nil {
		t.Fatalf("encoding %T: %v", applyConfiguration, err)
	}
	if err := json.Unmarshal(sent, typed); err != nil {
		t.Fatalf("decoding %s into %T: %v", sent, typed, err)
	}
	once, err := json.Marshal(typed)
	if err != nil {
		t.Fatalf("encoding %T: %v", typed, err)
	}
	if err := json.Unmarshal(once, typedAgain); err != nil {
		t.Fatalf("decoding %s into %T: %v", once, typedAgain, err)
	}
	twice, err := json.Marshal(typedAgain)
	if err != nil {
		t.Fatalf("encoding %T: %v", typedAgain, err)
	}
	if !equality.Semantic.DeepEqual(typed, typedAgain) || !bytes.Equal(once, twice) {
		t.Errorf("%T changes through JSON:\n%s\n%s", typed, once, twice)
	}
	if err := json.Unmarshal(sent, applyAgain); err != nil {
		t.Fatalf("decoding %s into %T: %v", sent, applyAgain, err)
	}
	again, err := json.Marshal(applyAgain)
	if err != nil {
		t.Fatalf("encoding %T: %v", applyAgain, err)
	}
	if !bytes.Equal(sent, again) {
		t.Errorf("%T changes through JSON:\n%s\n%s", applyConfiguration, sent, again)
	}
}

// describeApp is the App's name and spec, for a failure's message.
func describeApp(app *berthv1alpha1.App) string {
	spec, err := json.Marshal(app.Spec)
	if err != nil {
		return fmt.Sprintf("%s (%v)", app.Name, err)
	}
	return fmt.Sprintf("%s %s", app.Name, spec)
}
