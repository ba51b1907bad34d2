package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

func TestReadVersionsChangeWithEveryObjectRead(t *testing.T) {
	c := newConvergedApps()
	app, d, s := converged(t, plantest.NewApp(plantest.WithPort(8080)))
	app.ResourceVersion, d.ResourceVersion, s.ResourceVersion = "10", "11", "12"
	pod := func(name, version string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: version}}
	}
	owned := func(d *appsv1.Deployment, s *corev1.Service) ownedVersions {
		var versions ownedVersions
		if d != nil {
			versions[0] = ownedVersion{version: d.ResourceVersion, exists: true}
		}
		if s != nil {
			versions[1] = ownedVersion{version: s.ResourceVersion, exists: true}
		}
		return versions
	}
	base := c.versionsOf(app, owned(d, s), []*corev1.Pod{pod("a", "1"), pod("b", "2")}, "Secret/db=7")
	assert.Equal(t, base, c.versionsOf(app, owned(d, s), []*corev1.Pod{pod("b", "2"), pod("a", "1")}, "Secret/db=7"),
		"the order of the Pods does not matter")

	changed := map[string]readVersions{
		"App":           c.versionsOf(withVersion(app, "13"), owned(d, s), []*corev1.Pod{pod("a", "1"), pod("b", "2")}, "Secret/db=7"),
		"no Deployment": c.versionsOf(app, owned(nil, s), []*corev1.Pod{pod("a", "1"), pod("b", "2")}, "Secret/db=7"),
		"no Service":    c.versionsOf(app, owned(d, nil), []*corev1.Pod{pod("a", "1"), pod("b", "2")}, "Secret/db=7"),
		"versions swapped between kinds": c.versionsOf(app, ownedVersions{{"12", true}, {"11", true}},
			[]*corev1.Pod{pod("a", "1"), pod("b", "2")}, "Secret/db=7"),
		"a Pod changed":  c.versionsOf(app, owned(d, s), []*corev1.Pod{pod("a", "3"), pod("b", "2")}, "Secret/db=7"),
		"a Pod gone":     c.versionsOf(app, owned(d, s), []*corev1.Pod{pod("a", "1")}, "Secret/db=7"),
		"a Pod replaced": c.versionsOf(app, owned(d, s), []*corev1.Pod{pod("a", "1"), pod("c", "2")}, "Secret/db=7"),
		"versions swapped between Pods": c.versionsOf(app, owned(d, s),
			[]*corev1.Pod{pod("a", "2"), pod("b", "1")}, "Secret/db=7"),
		"a Secret changed": c.versionsOf(app, owned(d, s), []*corev1.Pod{pod("a", "1"), pod("b", "2")},
			"Secret/db=8"),
	}
	for what, v := range changed {
		assert.NotEqual(t, base, v, what)
	}

	c.set(webKey, base)
	assert.True(t, c.is(webKey, base))
	assert.False(t, c.is(webKey, changed["App"]))
	c.forget(webKey)
	assert.False(t, c.is(webKey, base))
}

func TestAConvergedAppIsNotWorkedOutAgainUntilSomethingChanges(t *testing.T) {
	app, d, s := converged(t, plantest.NewApp(plantest.WithPort(8080)))
	f := newFixture(t, app, budgetOf(t, app), d, s)
	require.NoError(t, f.sync())
	require.Empty(t, f.writes())

	// The cached Deployment drifts without its version changing, which the API server never lets happen: a
	// sync that works the App out would correct it, one that trusts what it remembers does not.
	d.Spec.Template.Spec.Containers[0].Image = "changed:1"
	require.NoError(t, f.sync())
	assert.Empty(t, f.writes(), "nothing read has a new version: the sync trusts what it found last time")

	d.ResourceVersion = "2"
	require.NoError(t, f.indexerFor(d).Update(d))
	require.NoError(t, f.sync())
	assert.Equal(t, []action{applyDeployment}, f.writes(), "a new version is worked out again")
}

func withVersion(app *berthv1alpha1.App, version string) *berthv1alpha1.App {
	app = app.DeepCopy()
	app.ResourceVersion = version
	return app
}
