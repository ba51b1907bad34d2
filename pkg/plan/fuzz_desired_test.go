package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
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
			"probe startup grpc 9090 api.v1\ntiming startup - 10 - 1 30")
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
			return false
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
	return errs
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

// validateDeployment checks a Deployment with the validation functions of apimachinery that the API server's
// Deployment and Pod validation call.
func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&d.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 0 {
		errs = append(errs, field.Invalid(spec.Child("replicas"), d.Spec.Replicas, "must be set and not negative"))
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

// describeApp is the App's name and spec, for a failure's message.
func describeApp(app *berthv1alpha1.App) string {
	spec, err := json.Marshal(app.Spec)
	if err != nil {
		return fmt.Sprintf("%s (%v)", app.Name, err)
	}
	return fmt.Sprintf("%s %s", app.Name, spec)
}
