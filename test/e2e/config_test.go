package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/test/framework"
)

// podNames are the names of the App web's Pods.
func podNames(t *testing.T, app *berthv1alpha1.App) []string {
	t.Helper()
	pods, err := appPods(t.Context(), app)
	require.NoError(t, err)
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

// TestASecretChangeRollsTheAppOut: changing the data of a Secret the App's Pods read (kubectl) rolls the App out,
// new Pods in place of the old, as a change of the App does; and berth never read a Secret's data: the API
// server's audit log has berth only list and watch Secrets (the Accept header of those requests, metadata only,
// is checked by test/e2e/production's TestBerthReadsOnlyTheMetadataOfSecrets).
func TestASecretChangeRollsTheAppOut(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	kubectl(t, "create", "secret", "generic", "db", "--namespace="+ns, "--from-literal=password=one")
	apply(t, ns, appManifest("web", goodImage, 2, 0)+`  env:
  - name: PASSWORD
    secretKeyRef: {name: db, key: password}
`)
	first := waitRevision(t, ns, 1, 1)
	versions := waitDeployment(t, ns, "web").Spec.Template.Annotations[plan.AnnotationConfigVersions]
	assert.Regexp(t, `^Secret/db=[0-9]+$`, versions)
	before := podNames(t, first)

	kubectl(t, "patch", "secret", "db", "--namespace="+ns, "--patch", `{"stringData":{"password":"two"}}`)
	second := waitRevision(t, ns, 2, 2)
	assert.NotEqual(t, versions, waitDeployment(t, ns, "web").Spec.Template.Annotations[plan.AnnotationConfigVersions])
	eventually(t, "the Pods of revision 1 to be replaced", func(ctx context.Context) error {
		after := podNames(t, second)
		for _, name := range after {
			if slices.Contains(before, name) {
				return fmt.Errorf("Pod %s of revision 1 is still there: %v", name, after)
			}
		}
		if len(after) != 2 {
			return fmt.Errorf("Pods %v", after)
		}
		return nil
	})

	// Every request of berth on Secrets since the suite's berth started.
	reads, err := cluster.Writes(time.Time{}, func(e framework.AuditEvent) bool {
		return e.ByBerth() && e.ObjectRef.Resource == "secrets"
	})
	require.NoError(t, err)
	verbs := map[string]int{}
	for _, r := range reads {
		verbs[r.Verb]++
	}
	t.Logf("berth's requests on Secrets in the audit log: %v", verbs)
	// client-go's informers stream their first list in a watch (WatchListClient), and list only where the API
	// server cannot.
	assert.NotZero(t, verbs["list"]+verbs["watch"], "the audit log has berth's watch (or list) of Secrets")
	for verb := range verbs {
		assert.Contains(t, []string{"list", "watch"}, verb, "berth only lists and watches Secrets")
	}
}

// TestAMissingConfigMapIsReportedAndRollsOutWhenCreated: an App whose Pods mount a ConfigMap that does not exist
// is Degraded, naming it; creating the ConfigMap rolls the App out, and it recovers.
func TestAMissingConfigMapIsReportedAndRollsOutWhenCreated(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	apply(t, ns, appManifest("web", goodImage, 1, 0)+`  files:
  - path: /etc/web
    configMap: {name: settings}
`)
	eventually(t, "App web to be Degraded, MissingReference", func(ctx context.Context) error {
		app, err := getApp(ctx, ns, "web")
		if err != nil {
			return err
		}
		return hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionTrue, plan.ReasonMissingReference)
	})
	app, err := getApp(t.Context(), ns, "web")
	require.NoError(t, err)
	degraded := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded)
	assert.Contains(t, degraded.Message, `ConfigMap "settings" does not exist`)
	revision := app.Status.Revision

	kubectl(t, "create", "configmap", "settings", "--namespace="+ns, "--from-literal=mode=fast")
	eventually(t, "App web rolled out and no longer Degraded", func(ctx context.Context) error {
		app, err := getApp(ctx, ns, "web")
		if err != nil {
			return err
		}
		if app.Status.Revision <= revision || app.Status.AvailableRevision != app.Status.Revision {
			return fmt.Errorf("revision %d, available %d: not rolled out past %d", app.Status.Revision,
				app.Status.AvailableRevision, revision)
		}
		return hasCondition(app, berthv1alpha1.ConditionDegraded, metav1.ConditionFalse, plan.ReasonAsExpected)
	})
}
