package production

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/test/framework"
)

// TestBerthReadsOnlyTheMetadataOfSecrets runs berth with the shipped rules, through a proxy that records every
// request: an App reads a Secret, the Secret changes, and the App rolls out; berth's requests on Secrets were only
// lists and watches that asked for, and got, PartialObjectMetadata: no Secret's data ever reached berth. (The
// shipped rule would allow more: it is what berth asks for that is proven here.)
func TestBerthReadsOnlyTheMetadataOfSecrets(t *testing.T) {
	clusterRules, leaseRules := shippedRules(t)
	ns, serviceAccount := namespaceWithRules(t, clusterRules, leaseRules)
	token, err := cluster.ServiceAccountToken(t.Context(), ns, serviceAccount, time.Hour)
	require.NoError(t, err)
	proxy, err := cluster.StartFaultProxy(framework.FaultOptions{})
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, proxy.WriteKubeconfig(kubeconfig, token))

	_, err = kubeClient.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": "one"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	startReplica(t, "berth-"+ns, kubeconfig, "--namespace="+ns, "--leader-elect", "--leader-election-namespace="+ns)
	_, err = berthClient.BerthV1alpha1().Apps(ns).Create(t.Context(), &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: berthv1alpha1.AppSpec{Image: "nginxinc/nginx-unprivileged:1.27", Replicas: ptr.To[int32](1),
			Env: []berthv1alpha1.EnvVar{{Name: "PASSWORD",
				SecretKeyRef: &berthv1alpha1.KeyRef{Name: "db", Key: "password"}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRevisionAvailable(t, ns, 1)

	secret, err := kubeClient.CoreV1().Secrets(ns).Get(t.Context(), "db", metav1.GetOptions{})
	require.NoError(t, err)
	secret.StringData = map[string]string{"password": "two"}
	_, err = kubeClient.CoreV1().Secrets(ns).Update(t.Context(), secret, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitRevisionAvailable(t, ns, 2)

	var onSecrets []framework.Answered
	for _, a := range proxy.Answers() {
		if a.Resource == "secrets" {
			onSecrets = append(onSecrets, a)
		}
	}
	require.NotEmpty(t, onSecrets, "berth's requests on Secrets went through the proxy")
	for _, a := range onSecrets {
		t.Logf("%s secrets: %d, Accept %q, Content-Type %q", a.Verb, a.Code, a.Accept, a.ContentType)
		assert.Contains(t, []string{"list", "watch"}, a.Verb, "berth only lists and watches Secrets")
		assert.Contains(t, a.Accept, "as=PartialObjectMetadata", "berth asks for the metadata only")
		assert.NotContains(t, a.Accept, "*/*", "and takes nothing else")
		if a.Code == 200 && a.Verb == "list" {
			assert.True(t, strings.Contains(a.ContentType, "as=PartialObjectMetadataList"),
				"the API server answered with metadata only: %q", a.ContentType)
		}
	}
}

// waitRevisionAvailable waits until the App web of namespace has rolled out revision, with every Pod available.
func waitRevisionAvailable(t *testing.T, namespace string, revision int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("App web to roll out revision %d", revision), timeout, func(ctx context.Context) error {
		app, err := berthClient.BerthV1alpha1().Apps(namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if app.Status.AvailableRevision != revision {
			d, _ := kubeClient.AppsV1().Deployments(namespace).Get(ctx, "web", metav1.GetOptions{})
			var versions string
			if d != nil {
				versions = d.Spec.Template.Annotations[plan.AnnotationConfigVersions]
			}
			return fmt.Errorf("revision %d, available %d (config versions %q)", app.Status.Revision,
				app.Status.AvailableRevision, versions)
		}
		return nil
	})
}
