package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// configObject is a Secret or ConfigMap of namespace shop as the metadata informer caches it.
func configObject(kind, name, resourceVersion string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", ResourceVersion: resourceVersion, UID: types.UID("uid-" + name)},
	}
}

// readsConfig makes the App read Secret db (an environment variable) and ConfigMap settings (files).
func readsConfig(a *berthv1alpha1.App) {
	a.Spec.Env = []berthv1alpha1.EnvVar{{Name: "PASSWORD",
		SecretKeyRef: &berthv1alpha1.KeyRef{Name: "db", Key: "password"}}}
	a.Spec.Files = []berthv1alpha1.Files{{Path: "/etc/web",
		ConfigMap: &berthv1alpha1.FilesSource{Name: "settings"}}}
}

// TestAConfigChangeRollsTheAppOut: the versions of the Secrets and ConfigMaps the App's Pods read are in the Pod
// template, so that a change of one is a new template; the change queues the App (and no other); a missing one
// is reported; and an App that ignores config changes has no versions in its template.
func TestAConfigChangeRollsTheAppOut(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp(readsConfig))
	other := plantest.NewApp(func(a *berthv1alpha1.App) { a.Name, a.UID = "other", "uid-other" })
	f := newFixture(t, app, d, budgetOf(t, app), other, configObject(plan.KindSecret, "db", "5"))

	require.NoError(t, f.sync())
	assert.Equal(t, []action{{"patch", "deployments", "", "web"}, applyAppStatus}, f.writes())
	applied := appliedDeployment(t, f)
	assert.Equal(t, "ConfigMap/settings=missing,Secret/db=5", applied.Spec.Template.Annotations[plan.AnnotationConfigVersions])
	degraded := degradedOf(f)
	require.NotNil(t, degraded)
	assert.Equal(t, plan.ReasonMissingReference, degraded.Reason)
	assert.Equal(t, `ConfigMap "settings" does not exist, and the App's Pods require it`, degraded.Message)

	// The ConfigMap is created: the App, and only it, is queued.
	settings := configObject(plan.KindConfigMap, "settings", "9")
	require.NoError(t, f.indexerFor(settings).Add(settings))
	apps := newByNamespace([]informerSet{{namespace: metav1.NamespaceAll, apps: f.berthFactory.Berth().V1alpha1().Apps()}},
		func(s informerSet) cache.Indexer { return s.apps.Informer().GetIndexer() }, newEmptyIndexer())
	require.Equal(t, 0, f.controller.queue.Len())
	f.controller.configHandler(plan.KindConfigMap, apps).OnAdd(settings, false)
	require.Equal(t, 1, f.controller.queue.Len(), "the App that reads the ConfigMap is queued")
	key, _ := f.controller.queue.Get()
	f.controller.queue.Done(key)
	assert.Equal(t, webKey, key)
	f.controller.configHandler(plan.KindConfigMap, apps).OnAdd(configObject(plan.KindConfigMap, "unread", "3"), false)
	assert.Equal(t, 0, f.controller.queue.Len(), "no App reads that one")

	// The sync then rolls the App out with the ConfigMap's version, and the App is no longer degraded.
	app = app.DeepCopy()
	app.Status = f.appliedStatus()
	require.NoError(t, f.indexerFor(app).Update(app))
	applied.Status = d.Status
	require.NoError(t, f.indexerFor(applied).Update(applied))
	f.kubeClient.ClearActions()
	f.berthClient.ClearActions()
	require.NoError(t, f.sync())
	assert.Equal(t, []action{{"patch", "deployments", "", "web"}, applyAppStatus}, f.writes())
	assert.Equal(t, "ConfigMap/settings=9,Secret/db=5",
		appliedDeployment(t, f).Spec.Template.Annotations[plan.AnnotationConfigVersions])
	assert.Equal(t, plan.ReasonAsExpected, degradedOf(f).Reason)
}

// TestAnAppCanIgnoreConfigChanges: with spec.rollout.ignoreConfigChanges, the template has no versions.
func TestAnAppCanIgnoreConfigChanges(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp(readsConfig, func(a *berthv1alpha1.App) {
		a.Spec.Rollout = &berthv1alpha1.Rollout{IgnoreConfigChanges: true}
	}))
	f := newFixture(t, app, d, budgetOf(t, app), configObject(plan.KindSecret, "db", "5"),
		configObject(plan.KindConfigMap, "settings", "9"))
	require.NoError(t, f.sync())
	for _, a := range f.writes() {
		assert.NotEqual(t, "deployments", a.resource, "the Deployment is as the App asks: no versions in it")
	}
}
