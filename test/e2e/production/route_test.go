package production

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/test/framework"
)

// TestRoutesWithoutGatewayAPI runs berth against an API server of its own that does not serve Gateway API, as
// many clusters are. With --route-kind=auto, an App's route is an Ingress (of --ingress-class, with the App's
// TLS Secret); with --route-kind=HTTPRoute, an App with a route is Degraded, saying that the kind is not
// installed, and berth does not retry it: one status write, no failed sync.
func TestRoutesWithoutGatewayAPI(t *testing.T) {
	t.Parallel()
	controlPlane, err := framework.StartControlPlane(t.Context())
	require.NoError(t, err)
	t.Cleanup(controlPlane.Stop)
	require.NoError(t, framework.InstallCRDs(t.Context(), controlPlane.Config))
	kube := kubernetes.NewForConfigOrDie(controlPlane.Config)
	apps := versioned.NewForConfigOrDie(controlPlane.Config).BerthV1alpha1().Apps("shop")
	_, err = kube.CoreV1().Namespaces().Create(t.Context(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	routed := func(name string) *berthv1alpha1.App {
		return &berthv1alpha1.App{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: berthv1alpha1.AppSpec{
			Image: "nginx", Port: ptr.To[int32](8080),
			Route: &berthv1alpha1.Route{Host: name + ".example.com", TLSSecretName: name + "-tls"}}}
	}

	auto := startReplica(t, "auto", controlPlane.Kubeconfig, "--ingress-class=public")
	_, err = apps.Create(t.Context(), routed("ingressed"), metav1.CreateOptions{})
	require.NoError(t, err)
	var ingress *networkingv1.Ingress
	eventually(t, "the Ingress of App ingressed", timeout, func(ctx context.Context) error {
		ingress, err = kube.NetworkingV1().Ingresses("shop").Get(ctx, "ingressed", metav1.GetOptions{})
		return err
	})
	assert.Equal(t, ptr.To("public"), ingress.Spec.IngressClassName)
	assert.Equal(t, "ingressed.example.com", ingress.Spec.Rules[0].Host)
	assert.Equal(t, []networkingv1.IngressTLS{{Hosts: []string{"ingressed.example.com"}, SecretName: "ingressed-tls"}},
		ingress.Spec.TLS)
	eventually(t, "the App's external URL", timeout, func(ctx context.Context) error {
		app, err := apps.Get(ctx, "ingressed", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if app.Status.URL != "https://ingressed.example.com" {
			return fmt.Errorf("status.url %q", app.Status.URL)
		}
		return nil
	})
	auto.Stop()

	told := startReplica(t, "httproute", controlPlane.Kubeconfig, "--route-kind=HTTPRoute", "--gateway=infra/public")
	_, err = apps.Create(t.Context(), routed("unrouted"), metav1.CreateOptions{})
	require.NoError(t, err)
	var degraded *metav1.Condition
	eventually(t, "App unrouted to say that HTTPRoutes are not installed", timeout, func(ctx context.Context) error {
		app, err := apps.Get(ctx, "unrouted", metav1.GetOptions{})
		if err != nil {
			return err
		}
		degraded = meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
		if degraded == nil || degraded.Reason != plan.ReasonRouteKindNotInstalled {
			return fmt.Errorf("Degraded: %+v", degraded)
		}
		return nil
	})
	assert.Equal(t, metav1.ConditionTrue, degraded.Status)
	assert.Contains(t, degraded.Message, "--route-kind=Ingress")
	before, err := apps.Get(t.Context(), "unrouted", metav1.GetOptions{})
	require.NoError(t, err)
	time.Sleep(5 * time.Second)
	after, err := apps.Get(t.Context(), "unrouted", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "no write of the App after its status")
	m, err := framework.ScrapeMetrics(t.Context(), told.metricsURL)
	require.NoError(t, err)
	assert.Zero(t, m.Sum("berth_reconcile_errors_total", nil), "nothing failed, so nothing is retried")
	assert.Positive(t, m.Sum("berth_reconcile_total", nil), "berth synced the Apps")
}
