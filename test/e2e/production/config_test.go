package production

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
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
// request and the answers on Secrets: an App reads a Secret, the Secret changes, and the App rolls out; berth's
// requests on Secrets were only lists and watches that asked for PartialObjectMetadata, and what the API server sent
// holds no password: no Secret's data ever reached berth. (The shipped rule would allow more: it is what berth
// asks for that is proven here.)
func TestBerthReadsOnlyTheMetadataOfSecrets(t *testing.T) {
	clusterRules, leaseRules := shippedRules(t)
	ns, serviceAccount := namespaceWithRules(t, clusterRules, leaseRules)
	token, err := cluster.ServiceAccountToken(t.Context(), ns, serviceAccount, time.Hour)
	require.NoError(t, err)
	proxy, err := cluster.StartFaultProxy(framework.FaultOptions{})
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	proxy.CaptureBodies("secrets")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, proxy.WriteKubeconfig(kubeconfig, token))

	_, err = kubeClient.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": firstPassword},
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
	secret.StringData = map[string]string{"password": secondPassword}
	_, err = kubeClient.CoreV1().Secrets(ns).Update(t.Context(), secret, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitRevisionAvailable(t, ns, 2)

	var onSecrets []framework.Received
	for _, r := range proxy.Received() {
		if r.Resource == "secrets" {
			onSecrets = append(onSecrets, r)
		}
	}
	require.NotEmpty(t, onSecrets, "berth's requests on Secrets went through the proxy")
	for _, r := range onSecrets {
		t.Logf("%s secrets, Accept %q, answered with Content-Type %q", r.Verb, r.Accept, r.ContentType)
		assert.Contains(t, []string{"list", "watch"}, r.Verb, "berth only lists and watches Secrets")
		assert.True(t, strings.HasPrefix(r.Accept, "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata") ||
			strings.HasPrefix(r.Accept, "application/json;as=PartialObjectMetadata"),
			"berth asks for the metadata first: %q", r.Accept)
		// The metadata client's Accept ends with plain JSON, for servers that cannot send metadata alone; the
		// API server can for every built-in kind, and did: what it sent is PartialObjectMetadata, and has
		// neither password in it, plain or in base64.
		body := string(decompressed(t, r.Body))
		assert.Contains(t, body, "PartialObjectMetadata", "the API server sent metadata")
		assert.Contains(t, body, "db", "the Secret's metadata was sent")
		for _, password := range []string{firstPassword, secondPassword} {
			assert.NotContains(t, body, password)
			assert.NotContains(t, body, base64.StdEncoding.EncodeToString([]byte(password)))
		}
	}
}

// decompressed is body as the client read it: the API server gzips what it sends when the client accepts it
// (Go's transport asks for it), in a watch's stream too, member after member. A watch still open ends in the middle
// of one: what was decompressed until then is kept.
func decompressed(t *testing.T, body []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		return body
	}
	reader, err := gzip.NewReader(bytes.NewReader(body))
	require.NoError(t, err)
	out, err := io.ReadAll(reader)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		require.NoError(t, err)
	}
	return out
}

// The passwords of the test's Secret: words that appear nowhere else.
const (
	firstPassword  = "pw-first-9f3a61"
	secondPassword = "pw-second-7c1e08"
)

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
