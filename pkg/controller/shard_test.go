package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthdev/berth/pkg/plan/plantest"
	"github.com/berthdev/berth/pkg/shard"
)

// A member labels what it makes with the App's bucket, its Pods included, so that its informers (which select
// the bucket) see them; and it writes no App of a bucket it does not own, whatever the App's label says.
func TestAMemberWritesOnlyTheAppsOfItsBuckets(t *testing.T) {
	app := plantest.NewApp()
	bucket := shard.BucketOf(app.UID)
	require.NotEmpty(t, app.UID, "the App has a UID, whose bucket is the App's")

	own := shard.SetOf(bucket)
	f := newFixtureWithOptions(t, Options{Buckets: &own}, app)
	require.NoError(t, f.sync())
	require.Equal(t, []action{createDeployment, createBudget, applyAppStatus}, f.writes())
	d, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	value := shard.LabelValue(bucket)
	assert.Equal(t, value, d.Labels[shard.Label], "the Deployment carries the App's bucket")
	assert.Equal(t, value, d.Spec.Template.Labels[shard.Label], "the Pods carry the App's bucket")
	b, err := f.kubeClient.PolicyV1().PodDisruptionBudgets("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, value, b.Labels[shard.Label], "the PodDisruptionBudget carries the App's bucket")

	others := shard.All()
	others[bucket/64] &^= 1 << (bucket % 64)
	require.False(t, others.Has(bucket))
	labelled := app.DeepCopy()
	labelled.Labels = map[string]string{shard.Label: shard.LabelValue((bucket + 1) % shard.Buckets)}
	f = newFixtureWithOptions(t, Options{Buckets: &others}, labelled)
	require.NoError(t, f.sync())
	assert.Empty(t, f.writes(), "an App of another member's bucket, labelled as this member's, is left alone")

	f = newFixture(t, app)
	require.NoError(t, f.sync())
	d, err = f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, d.Spec.Template.Labels, shard.Label, "without sharding, nothing changes: no rollout")
}
