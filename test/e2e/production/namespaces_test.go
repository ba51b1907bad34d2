package production

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthdev/berth/test/framework"
)

// TestARoleInEachNamespaceOfAListIsEnough runs berth as a ServiceAccount that has the Role of
// artifacts/deploy/namespaced/rbac.yaml in two namespaces, the Lease Role of
// artifacts/deploy/base/leader-election-rbac.yaml in its own, and nothing else: no ClusterRole, so no list or
// watch of all namespaces. With --namespace listing the two, berth makes the Apps of both converge and is refused
// nothing; an App of a third namespace is left alone.
func TestARoleInEachNamespaceOfAListIsEnough(t *testing.T) {
	ctx := t.Context()
	home := newNamespace(t, "home", nil) // the ServiceAccount's, and the Lease's
	first, second := newNamespace(t, "list", nil), newNamespace(t, "list", nil)
	third := newNamespace(t, "other", nil)
	const name = "berth"
	namespacedServiceAccount(t, home, name, first, second)
	// What an informer of all namespaces would need, and berth does not have.
	for _, resource := range []string{"apps", "deployments", "services", "pods"} {
		assert.False(t, allowedEverywhere(t, home, name, "list", resource),
			"the ServiceAccount may not list %s in all namespaces", resource)
	}

	for _, ns := range []string{first, second, third} {
		require.NoError(t, newApp(ctx, ns, "web"))
	}
	berth := startReplica(t, name, tokenKubeconfig(t, home, name), "--namespace="+first+","+second,
		"--leader-elect", "--leader-election-namespace="+home)
	berth.waitReady(t)
	waitConverged(t, first, "web")
	waitConverged(t, second, "web")

	assert.Empty(t, framework.PermissionDenials(berth.Log()), "berth is refused nothing")
	app, err := berthClient.BerthV1alpha1().Apps(third).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, app.Status.ObservedGeneration, "the App of the namespace not listed has no status")
	// berth_apps counts the Apps of both namespaces, from both caches.
	eventually(t, "berth_apps to count the Apps of both namespaces", timeout, func(ctx context.Context) error {
		m, err := berth.metrics(ctx)
		if err != nil {
			return err
		}
		available := map[string]string{"condition": "Available", "status": "True"}
		if n := m.Sum("berth_apps", available); n != 2 {
			return fmt.Errorf("berth_apps{condition=\"Available\",status=\"True\"} is %v, want 2", n)
		}
		return nil
	})
}

// namespacedServiceAccount creates the ServiceAccount home/name with the Lease Role of
// artifacts/deploy/base/leader-election-rbac.yaml in home and the Role of artifacts/deploy/namespaced/rbac.yaml in
// each of namespaces, and nothing else; it waits until the authorizer allows them, and returns the namespaced
// Role's rules.
func namespacedServiceAccount(t *testing.T, home, name string, namespaces ...string) []rbacv1.PolicyRule {
	t.Helper()
	role := readObject[rbacv1.Role](t, deployDir("namespaced", "rbac.yaml"), "Role")
	leaseRole := readObject[rbacv1.Role](t, deployDir("base", "leader-election-rbac.yaml"), "Role")
	require.NotEmpty(t, role.Rules)
	require.NotEmpty(t, leaseRole.Rules)
	_, err := kubeClient.CoreV1().ServiceAccounts(home).Create(t.Context(), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	grantRole(t, home, name, home, name+"-leader-election", leaseRole.Rules)
	for _, ns := range namespaces {
		grantRole(t, home, name, ns, name, role.Rules)
	}
	waitAllowed(t, home, name, home, leaseRole.Rules)
	for _, ns := range namespaces {
		waitAllowed(t, home, name, ns, role.Rules)
	}
	return role.Rules
}

// grantRole gives the ServiceAccount saNamespace/serviceAccount the rules in namespace: a Role and a RoleBinding
// named name.
func grantRole(t *testing.T, saNamespace, serviceAccount, namespace, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	_, err := kubeClient.RbacV1().Roles(namespace).Create(t.Context(), &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      rules,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kubeClient.RbacV1().RoleBindings(namespace).Create(t.Context(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: saNamespace}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// allowedEverywhere asks the API server's authorizer whether the ServiceAccount may do verb on resource (of
// berth.dev for apps, else of the core or apps group) in all namespaces.
func allowedEverywhere(t *testing.T, saNamespace, serviceAccount, verb, resource string) bool {
	t.Helper()
	group := map[string]string{"apps": "berth.dev", "deployments": "apps"}[resource]
	review, err := kubeClient.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "system:serviceaccount:" + saNamespace + ":" + serviceAccount,
			// The groups of its tokens: a binding to one of them would count too.
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNamespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: metav1.NamespaceAll, Verb: verb, Group: group, Resource: resource,
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return review.Status.Allowed
}

// TestANamespaceBerthCannotListHoldsUpOnlyItself runs berth on three namespaces as a ServiceAccount that has the
// namespaced Role in two of them only (the third's RoleBinding is missing, as after a typo or a namespace made
// later). The Apps of the two converge; the third is reported (readiness names it with the API server's
// refusal, berth_namespace_synced is 0 for it, the log names it), and once the Role is granted there, its App
// converges too, without a restart.
func TestANamespaceBerthCannotListHoldsUpOnlyItself(t *testing.T) {
	ctx := t.Context()
	home := newNamespace(t, "home", nil)
	first, second, third := newNamespace(t, "list", nil), newNamespace(t, "list", nil), newNamespace(t, "unbound", nil)
	const name = "berth"
	role := namespacedServiceAccount(t, home, name, first, second)
	for _, ns := range []string{first, second, third} {
		require.NoError(t, newApp(ctx, ns, "web"))
	}

	berth := startReplica(t, name, tokenKubeconfig(t, home, name), "--namespace="+first+","+second+","+third,
		"--leader-elect", "--leader-election-namespace="+home)
	waitConverged(t, first, "web")
	waitConverged(t, second, "web")
	eventually(t, "readiness to name the namespace berth cannot list", timeout, func(ctx context.Context) error {
		code, body := berth.probeBody(ctx, "/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "namespace "+third+": ") ||
			!strings.Contains(body, "forbidden") {
			return fmt.Errorf("/readyz answers %d: %q", code, body)
		}
		if strings.Contains(body, first) || strings.Contains(body, second) {
			return fmt.Errorf("/readyz names a namespace that works: %q", body)
		}
		return nil
	})
	m, err := berth.metrics(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0.0, m.Sum("berth_namespace_synced", map[string]string{"namespace": third}))
	assert.Equal(t, 1.0, m.Sum("berth_namespace_synced", map[string]string{"namespace": first}))
	assert.Equal(t, 1.0, m.Sum("berth_namespace_synced", map[string]string{"namespace": second}))
	require.NoError(t, logged(berth, "Cannot list the namespace's objects"))
	require.Contains(t, berth.Log(), `namespace="`+third+`"`)
	app, err := berthClient.BerthV1alpha1().Apps(third).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, app.Status.ObservedGeneration, "the App of the namespace berth cannot list waits")

	// The Role comes: berth lists the namespace at its next try (client-go's backoff, at most 30 s apart).
	grantRole(t, home, name, third, name, role)
	waitConverged(t, third, "web")
	eventually(t, "berth to be ready", timeout, func(ctx context.Context) error {
		if code, body := berth.probeBody(ctx, "/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz answers %d: %q", code, body)
		}
		return nil
	})
	m, err = berth.metrics(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1.0, m.Sum("berth_namespace_synced", map[string]string{"namespace": third}))
	assert.False(t, berth.Exited(), "berth was not restarted")
}
