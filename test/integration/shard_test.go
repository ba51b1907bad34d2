package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/shard"
)

// halves splits the buckets of apps in two sets that each hold some of the Apps.
func halves(t *testing.T, apps []*berthv1alpha1.App) (first, second shard.Set) {
	t.Helper()
	for b := range shard.Buckets {
		if b < shard.Buckets/2 {
			first.Add(b)
		} else {
			second.Add(b)
		}
	}
	var inFirst int
	for _, a := range apps {
		if first.Has(shard.BucketOf(a.UID)) {
			inFirst++
		}
	}
	require.True(t, inFirst > 0 && inFirst < len(apps), "each half holds some of the Apps: %d of %d", inFirst, len(apps))
	return first, second
}

// The API server applies berth's shard selector (KEP-5866, gate ShardedListAndWatch, which this control plane
// enables): a list with the selector of a set of buckets answers exactly the Apps of those buckets, as
// shard.BucketOf computes them, and says in shardInfo that it applied the selector.
func TestTheAPIServerSelectsTheAppsOfBuckets(t *testing.T) {
	e := newEnv(t)
	var apps []*berthv1alpha1.App
	for i := range 24 {
		apps = append(apps, e.createApp(app(fmt.Sprintf("web-%d", i))))
	}
	filters, known, err := controller.ServerFiltersShards(e.ctx, e.berth, e.namespace)
	require.NoError(t, err)
	require.True(t, filters && known, "the API server applies shard selectors")

	first, second := halves(t, apps)
	odd := shard.Set{}
	for b := 1; b < shard.Buckets; b += 2 {
		odd.Add(b)
	}
	for _, set := range []shard.Set{first, second, odd} {
		selector, _ := set.ServerSelector()
		list, err := e.berth.BerthV1alpha1().Apps(e.namespace).List(e.ctx, metav1.ListOptions{ShardSelector: selector})
		require.NoError(t, err)
		// kube-apiserver 1.37 filters lists of custom resources without saying so in shardInfo.
		assert.Nil(t, list.ShardInfo, "if the API server now says it applied the selector, ServerFiltersShards can trust it")
		got := map[string]bool{}
		for _, a := range list.Items {
			got[a.Name] = true
		}
		for _, a := range apps {
			assert.Equal(t, set.Has(shard.BucketOf(a.UID)), got[a.Name], "App %s, bucket %d, selector of %s",
				a.Name, shard.BucketOf(a.UID), set)
		}
	}
}

// Two members, each with half of the buckets, on the API server's shard selector: each syncs the Apps of its
// buckets and writes nothing of the others', and what it makes carries the App's bucket label.
func TestMembersWriteOnlyTheAppsOfTheirBuckets(t *testing.T) {
	e := newEnv(t)
	var apps []*berthv1alpha1.App
	for i := range 12 {
		apps = append(apps, e.createApp(app(fmt.Sprintf("web-%d", i))))
	}
	first, second := halves(t, apps)
	one := e.startMember([]string{e.namespace}, &first, true)
	two := e.startMember([]string{e.namespace}, &second, true)
	for _, a := range apps {
		_, d := e.waitConverged(a.Name)
		assert.Equal(t, shard.LabelValue(shard.BucketOf(a.UID)), d.Labels[shard.Label], "Deployment %s", a.Name)
		assert.Equal(t, shard.LabelValue(shard.BucketOf(a.UID)), d.Spec.Template.Labels[shard.Label])
	}
	for _, m := range []struct {
		r    *running
		owns shard.Set
	}{{one, first}, {two, second}} {
		cached, err := m.r.informers.AppLister().List(labels.Everything())
		require.NoError(t, err)
		require.NotEmpty(t, cached)
		for _, a := range cached {
			assert.True(t, m.owns.Has(shard.BucketOf(a.UID)), "the cache of the member of %s holds App %s of bucket %d: "+
				"the API server sent it", m.owns, a.Name, shard.BucketOf(a.UID))
		}
		writes := m.r.writes.list()
		require.NotEmpty(t, writes)
		for _, a := range apps {
			wrote := false
			for _, w := range writes {
				if strings.HasSuffix(w, "/"+a.Name) || strings.Contains(w, "/"+a.Name+"/") {
					wrote = true
				}
			}
			assert.Equal(t, m.owns.Has(shard.BucketOf(a.UID)), wrote, "App %s (bucket %d): written by the member of %s",
				a.Name, shard.BucketOf(a.UID), m.owns)
		}
	}
}
