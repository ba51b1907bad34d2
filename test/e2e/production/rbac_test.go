package production

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/test/framework"
)

// failWindow is how long berth is given to complete the scenario without one of its rules: far longer than the
// scenario takes with all of them (a few seconds), so that "it did not happen" means "it could not".
const failWindow = 35 * time.Second

// TestRBACIsLeast proves that berth needs every rule of the shipped RBAC: with all of them the scenario passes,
// and without any one of them it fails, and berth's log says what was forbidden. The ClusterRole of
// artifacts/deploy/rbac.yaml and the Lease Role of artifacts/deploy/base/leader-election-rbac.yaml are read from
// the files, so a rule added there is tested here too. Each case has its own namespace, ServiceAccount, copies of
// the roles and berth (--namespace and its Lease in that namespace): the ClusterRole's rules are all namespaced,
// so a RoleBinding of the copy in the namespace grants them there.
//
// All cases run at once, so that the test takes one failWindow rather than one per rule: they are started one
// after the other, each watched by a goroutine of its own, and the subtests then check what was seen. (Parallel
// subtests would not do: go test runs only GOMAXPROCS of them at a time, two on a small machine.)
func TestRBACIsLeast(t *testing.T) {
	clusterRules, leaseRules := shippedRules(t)
	// Gateway API is installed: berth makes the App's route as an HTTPRoute, and as an Ingress when told to.
	ingress := []string{"--route-kind=Ingress"}
	cases := []*rbacCase{
		{name: "with every rule", clusterRules: clusterRules, leaseRules: leaseRules},
		{name: "with every rule, --route-kind=Ingress", clusterRules: clusterRules, leaseRules: leaseRules, args: ingress},
	}
	for i, rule := range clusterRules {
		c := &rbacCase{
			name:         "without ClusterRole rule " + describeRule(rule),
			clusterRules: slices.Delete(slices.Clone(clusterRules), i, i+1),
			leaseRules:   leaseRules,
			removed:      &rule,
		}
		if slices.Contains(rule.Resources, "ingresses") {
			c.name += ", --route-kind=Ingress"
			c.args = ingress
		}
		cases = append(cases, c)
	}
	for i, rule := range leaseRules {
		cases = append(cases, &rbacCase{
			name:         "without Lease Role rule " + describeRule(rule),
			clusterRules: clusterRules,
			leaseRules:   slices.Delete(slices.Clone(leaseRules), i, i+1),
			removed:      &rule,
		})
	}
	for _, c := range cases {
		c.start(t)
	}
	for _, c := range cases {
		t.Run(c.name, c.check)
	}
}

// shippedRules are the rules of the ClusterRole of artifacts/deploy/rbac.yaml and of the Lease Role of
// artifacts/deploy/base/leader-election-rbac.yaml.
func shippedRules(t *testing.T) (clusterRules, leaseRules []rbacv1.PolicyRule) {
	t.Helper()
	clusterRole := readObject[rbacv1.ClusterRole](t, deployDir("rbac.yaml"), "ClusterRole")
	leaseRole := readObject[rbacv1.Role](t, deployDir("base", "leader-election-rbac.yaml"), "Role")
	require.NotEmpty(t, clusterRole.Rules)
	require.NotEmpty(t, leaseRole.Rules)
	return clusterRole.Rules, leaseRole.Rules
}

// rbacCase is berth with one set of rules, and what was seen of the scenario: an App that owns an object of every
// kind (newAppOfEveryKind), created as berth starts, converges (see converged); then its image is changed to one
// that cannot be pulled, and berth rolls the App back (see rolledBack).
type rbacCase struct {
	name                     string
	clusterRules, leaseRules []rbacv1.PolicyRule
	removed                  *rbacv1.PolicyRule // nil: every rule
	args                     []string           // berth's flags beyond those of startWithRules

	namespace  string
	berth      *replica
	watched    chan struct{} // closed when the watch is over
	converged  time.Duration // how long after its creation the App converged; 0 if it did not
	rolledBack time.Duration // how long after its creation the App was rolled back; 0 if it was not
	last       error         // why the App had not converged, or not been rolled back, at the last look
}

// start runs berth with the case's rules, creates the App, and watches it in a goroutine: with every rule until
// it converges (or timeout), without one for failWindow (or until it converges, which fails the case).
func (c *rbacCase) start(t *testing.T) {
	t.Helper()
	c.namespace, c.berth = startWithRules(t, c.clusterRules, c.leaseRules, c.args...)
	c.berth.quiet = true // check prints the log of a case that fails
	require.NoError(t, newAppOfEveryKind(t.Context(), c.namespace, "web"))
	within := failWindow
	if c.removed == nil {
		within = timeout
	}
	c.watched = make(chan struct{})
	go func() {
		defer close(c.watched)
		begin := time.Now()
		for time.Since(begin) < within {
			switch {
			case c.converged == 0:
				if c.last = converged(t.Context(), c.namespace, "web"); c.last == nil {
					c.converged = time.Since(begin)
					c.last = breakImage(t.Context(), c.namespace, "web")
				}
			default:
				if c.last = rolledBack(t.Context(), c.namespace, "web"); c.last == nil {
					c.rolledBack = time.Since(begin)
					return
				}
			}
			select {
			case <-t.Context().Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
}

// check waits for the end of the watch and asserts its outcome, and berth's log and probes.
func (c *rbacCase) check(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of berth (%s):\n%s", c.berth.LogPath, c.berth.Log())
		}
	})
	<-c.watched
	if c.berth.Exited() {
		t.Fatalf("berth exited with code %d: it should keep running and retrying", c.berth.ExitCode())
	}
	log := c.berth.Log()
	if c.removed == nil {
		require.NoError(t, c.last, "with every rule, the App converges, and is rolled back")
		t.Logf("with every rule, the App converged %s after it was created, and was rolled back at %s",
			c.converged.Round(time.Millisecond), c.rolledBack.Round(time.Millisecond))
		assert.Empty(t, framework.PermissionDenials(log), "with every rule, berth is refused nothing")
		return
	}

	if c.last == nil {
		t.Fatalf("the App converged and was rolled back without the rule %s (after %s): berth does not need it",
			describeRule(*c.removed), c.rolledBack.Round(time.Millisecond))
	}
	t.Logf("as expected, the App did not converge, or was not rolled back, in %s: %v", failWindow, c.last)
	want := forbiddenText(*c.removed)
	if line := forbiddenLine(log, want); line != "" {
		t.Logf("berth's log says: %s", line)
	} else {
		t.Errorf("berth's log has no line with %q and %q", "forbidden", want)
	}
	// Without a rule to list and watch, the caches cannot sync: /readyz says so, /healthz that berth is alive.
	// (ReplicaSets are listed, not watched: their rule is no informer's.)
	if slices.Contains(c.removed.Verbs, "watch") {
		assert.Equal(t, http.StatusServiceUnavailable, c.berth.probe(t.Context(), "/readyz"),
			"/readyz fails while the caches cannot sync")
		assert.Equal(t, http.StatusOK, c.berth.probe(t.Context(), "/healthz"), "/healthz: the process is alive")
	}
}

// startWithRules creates a namespace with a ServiceAccount that has exactly these rules there (a copy of the
// ClusterRole's bound with a RoleBinding, and a Role with the Lease's), and runs berth as that ServiceAccount,
// managing that namespace only, with its Lease there.
func startWithRules(t *testing.T, clusterRules, leaseRules []rbacv1.PolicyRule, args ...string) (string, *replica) {
	t.Helper()
	ns, name := namespaceWithRules(t, clusterRules, leaseRules)
	berth := startReplica(t, "berth-"+ns, tokenKubeconfig(t, ns, name),
		append([]string{"--namespace=" + ns, "--leader-elect", "--leader-election-namespace=" + ns}, args...)...)
	return ns, berth
}

// namespaceWithRules creates a namespace with a ServiceAccount that has exactly these rules there, as
// startWithRules runs berth, and returns the namespace and the ServiceAccount's name.
func namespaceWithRules(t *testing.T, clusterRules, leaseRules []rbacv1.PolicyRule) (string, string) {
	t.Helper()
	ctx := t.Context()
	ns := newNamespace(t, "rbac", nil)
	const name = "berth"
	subjects := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}}

	_, err := kubeClient.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	clusterRole, err := kubeClient.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "berth-test-" + ns},
		Rules:      clusterRules,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = kubeClient.RbacV1().ClusterRoles().Delete(context.Background(), clusterRole.Name, metav1.DeleteOptions{})
	})
	_, err = kubeClient.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole.Name},
		Subjects:   subjects,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kubeClient.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-leader-election"},
		Rules:      leaseRules,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kubeClient.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-leader-election"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name + "-leader-election"},
		Subjects:   subjects,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitAllowed(t, ns, name, ns, append(slices.Clone(clusterRules), leaseRules...))
	return ns, name
}

// waitAllowed waits until the API server's authorizer, whose caches learn of new roles and bindings a moment
// after they are written, allows the ServiceAccount saNamespace/serviceAccount every rule in namespace, so that a
// failure of berth is the missing rule's and not this delay's.
func waitAllowed(t *testing.T, saNamespace, serviceAccount, namespace string, rules []rbacv1.PolicyRule) {
	t.Helper()
	user := "system:serviceaccount:" + saNamespace + ":" + serviceAccount
	eventually(t, "the rules to be in force for "+user, timeout, func(ctx context.Context) error {
		for _, rule := range rules {
			resource, subresource, _ := strings.Cut(rule.Resources[0], "/")
			attributes := &authorizationv1.ResourceAttributes{
				Namespace: namespace, Verb: rule.Verbs[0], Group: rule.APIGroups[0],
				Resource: resource, Subresource: subresource,
			}
			if len(rule.ResourceNames) > 0 {
				attributes.Name = rule.ResourceNames[0]
			}
			review, err := kubeClient.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: attributes},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if !review.Status.Allowed {
				return fmt.Errorf("%s is not allowed %s yet", user, describeRule(rule))
			}
		}
		return nil
	})
}

// forbiddenText is what berth's log names when a request that needs the rule is refused. The API server's
// "forbidden" message names the resource as resource.group, or resource/subresource; the admission plugin that
// guards blockOwnerDeletion (OwnerReferencesPermissionEnforcement) says the owner's finalizers cannot be set.
func forbiddenText(rule rbacv1.PolicyRule) string {
	resource, group := rule.Resources[0], rule.APIGroups[0]
	switch {
	case strings.HasSuffix(resource, "/finalizers"):
		return "can't set finalizers"
	case strings.Contains(resource, "/"):
		return resource
	case group == "":
		return resource
	default:
		return resource + "." + group
	}
}

// forbiddenLine is the first line of log that says that something named text was forbidden, or "".
func forbiddenLine(log, text string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "forbidden") && strings.Contains(line, text) {
			return line
		}
	}
	return ""
}

// describeRule is a rule in short: resources.group/names:verbs.
func describeRule(rule rbacv1.PolicyRule) string {
	s := strings.Join(rule.Resources, ",")
	if g := strings.Join(rule.APIGroups, ","); g != "" {
		s += "." + g
	}
	if len(rule.ResourceNames) > 0 {
		s += "/" + strings.Join(rule.ResourceNames, ",")
	}
	return s + ":" + strings.Join(rule.Verbs, ",")
}

// readObject decodes the first document of kind in a YAML file of several documents.
func readObject[T any](t *testing.T, path, kind string) T {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		var meta metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal(doc, &meta))
		if meta.Kind != kind {
			continue
		}
		var obj T
		require.NoError(t, yaml.UnmarshalStrict(doc, &obj), "decoding the %s of %s", kind, path)
		return obj
	}
	t.Fatalf("%s has no %s", path, kind)
	var zero T
	return zero
}

// badImage is an image that the local cluster's kubelet (kwok's Stage pod-image-pull-fails) cannot pull.
const badImage = "pull-fails.invalid/web:2"

// breakImage changes the App's image to badImage, once its status has an available revision to go back to.
func breakImage(ctx context.Context, namespace, name string) error {
	app, err := berthClient.BerthV1alpha1().Apps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if app.Status.AvailableRevision == 0 {
		return fmt.Errorf("App %s has no available revision yet", name)
	}
	app.Spec.Image = badImage
	_, err = berthClient.BerthV1alpha1().Apps(namespace).Update(ctx, app, metav1.UpdateOptions{})
	return err
}

// rolledBack returns nil when berth has rolled back the App from badImage: it is Degraded, reason RolledBack, and
// its Deployment runs another image.
func rolledBack(ctx context.Context, namespace, name string) error {
	app, err := berthClient.BerthV1alpha1().Apps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if app.Spec.Image != badImage {
		return breakImage(ctx, namespace, name)
	}
	degraded := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
	if degraded == nil || degraded.Reason != plan.ReasonRolledBack {
		return fmt.Errorf("App %s is not rolled back: %+v", name, degraded)
	}
	d, err := kubeClient.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if image := d.Spec.Template.Spec.Containers[0].Image; image == badImage {
		return fmt.Errorf("App %s says RolledBack, but its Deployment runs %s", name, image)
	}
	return nil
}
