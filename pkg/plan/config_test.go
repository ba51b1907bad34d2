package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

func TestConfigReferences(t *testing.T) {
	app := plantest.NewApp(func(a *berthv1alpha1.App) {
		a.Spec.Env = []berthv1alpha1.EnvVar{
			{Name: "A", Value: "plain"},
			{Name: "B", SecretKeyRef: &berthv1alpha1.KeyRef{Name: "db", Key: "password", Optional: true}},
			{Name: "C", ConfigMapKeyRef: &berthv1alpha1.KeyRef{Name: "settings", Key: "mode", Optional: true}},
		}
		a.Spec.EnvFrom = []berthv1alpha1.EnvFromSource{
			{SecretRef: &berthv1alpha1.ObjectRef{Name: "db"}},
			{ConfigMapRef: &berthv1alpha1.ObjectRef{Name: "flags", Optional: true}},
		}
		a.Spec.Files = []berthv1alpha1.Files{{Path: "/etc/tls", Secret: &berthv1alpha1.FilesSource{Name: "tls"}}}
		a.Spec.ImagePullSecrets = []string{"registry"}
	})
	assert.Equal(t, []ConfigRef{
		{Kind: KindConfigMap, Name: "flags", Optional: true},
		{Kind: KindConfigMap, Name: "settings", Optional: true},
		{Kind: KindSecret, Name: "db"}, // required by envFrom, though optional in env
		{Kind: KindSecret, Name: "tls"},
	}, ConfigReferences(app), "each object once, sorted; no image pull Secret")
	assert.Nil(t, ConfigReferences(plantest.NewApp()))
}

func TestConfigVersions(t *testing.T) {
	refs := []ConfigRef{
		{Kind: KindConfigMap, Name: "flags", Optional: true},
		{Kind: KindConfigMap, Name: "settings"},
		{Kind: KindSecret, Name: "db"},
	}
	versions, missing := ConfigVersions(refs, func(r ConfigRef) (string, bool) {
		if r.Name == "db" {
			return "4711", true
		}
		return "", false
	})
	assert.Equal(t, "ConfigMap/flags=missing,ConfigMap/settings=missing,Secret/db=4711", versions)
	assert.Equal(t, []ConfigRef{{Kind: KindConfigMap, Name: "settings"}}, missing, "only a required one is missing")
	assert.Equal(t, `ConfigMap "settings" does not exist, and the App's Pods require it`, MissingMessage(missing))

	d := Deployment(plantest.NewApp())
	WithConfigVersions(d, versions)
	assert.Equal(t, versions, d.Spec.Template.Annotations[AnnotationConfigVersions])
	d = Deployment(plantest.NewApp())
	WithConfigVersions(d, "")
	assert.NotContains(t, d.Spec.Template.Annotations, AnnotationConfigVersions, "an App that reads none has none")
}
