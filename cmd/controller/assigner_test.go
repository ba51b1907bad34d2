package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/pkg/shard"
)

// assignerFixture is an assigner over a fake clientset whose Leases the test puts in the informer's cache by
// hand, as the watch would.
type assignerFixture struct {
	t        *testing.T
	client   *fake.Clientset
	leases   *shardLeases
	assigner *assigner
	writes   int
}

func newAssignerFixture(t *testing.T) *assignerFixture {
	client := fake.NewClientset()
	opts := defaultOptions()
	leases := newShardLeases(client, opts.leaderElectionNamespace, opts.leaderElectionID)
	a, err := newAssigner(client.CoordinationV1().Leases(opts.leaderElectionNamespace), leases, opts, nil,
		assignerMetrics{setMembers: func(int) {}, setUnassigned: func(int) {}})
	require.NoError(t, err)
	return &assignerFixture{t: t, client: client, leases: leases, assigner: a}
}

// put stores lease in the API server and in the cache.
func (f *assignerFixture) put(lease *coordinationv1.Lease) {
	f.t.Helper()
	leases := f.client.CoordinationV1().Leases(lease.Namespace)
	stored, err := leases.Update(f.t.Context(), lease, metav1.UpdateOptions{})
	if err != nil {
		stored, err = leases.Create(f.t.Context(), lease, metav1.CreateOptions{})
	}
	require.NoError(f.t, err)
	// The fake clientset keeps the resourceVersion; the API server gives each write a new one, which is how
	// the assigner sees a renewal.
	f.writes++
	stored.ResourceVersion = strconv.Itoa(f.writes)
	require.NoError(f.t, f.leases.informer.GetIndexer().Update(stored))
}

// member writes the Lease of the member identity, as a renewal does, saying it applied generation applied.
func (f *assignerFixture) member(identity string, applied int64) {
	f.put(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: f.leases.memberLeaseName(identity), Namespace: f.leases.namespace,
			Labels:      map[string]string{labelSharding: f.leases.id, labelRole: roleMember},
			Annotations: map[string]string{annotationApplied: strconv.FormatInt(applied, 10)}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(identity)},
	})
}

// table steps the assigner at now and returns the table it wrote, which the cache then shows.
func (f *assignerFixture) step(now time.Time) shard.Table {
	f.t.Helper()
	_, ctx := ktesting.NewTestContext(f.t)
	require.NoError(f.t, f.assigner.step(ctx, now))
	if lease, err := f.client.CoordinationV1().Leases(f.leases.namespace).Get(ctx, f.leases.tableName(),
		metav1.GetOptions{}); err == nil {
		f.writes++
		lease.ResourceVersion = strconv.Itoa(f.writes) // as the API server gives each write a new one
		require.NoError(f.t, f.leases.informer.GetIndexer().Update(lease))
	}
	table, _, err := f.leases.table()
	require.NoError(f.t, err)
	return table
}

// A member is live until the lease duration has passed since the assigner last saw its Lease change, by the
// assigner's clock: then its buckets are taken from it and given to the others, and its Lease is deleted.
func TestAssignerMovesTheBucketsOfAnExpiredMember(t *testing.T) {
	f := newAssignerFixture(t)
	now := time.Now()
	assert.Equal(t, shard.Table{}, f.step(now), "the first step creates the table, with no owner")
	f.member("a", 0)
	f.member("b", 0)
	table := f.step(now)
	require.Equal(t, int64(1), table.Generation)
	require.Equal(t, shard.All(), unionOf(table.Of("a"), table.Of("b")), "every bucket given")
	require.Positive(t, table.Of("b").Len())

	// Both apply generation 1, seen at now; then a renews, b does not.
	f.member("a", 1)
	f.member("b", 1)
	assert.Equal(t, table, f.step(now))
	later := now.Add(f.assigner.opts.leaseDuration - time.Second)
	f.member("a", 1)
	assert.Equal(t, table, f.step(later), "within the lease duration nothing moves")

	expired := now.Add(f.assigner.opts.leaseDuration + time.Second)
	taken := f.step(expired)
	assert.Equal(t, int64(2), taken.Generation)
	assert.Zero(t, taken.Of("b").Len(), "the expired member's buckets are taken from it")
	assert.Equal(t, table.Of("a"), taken.Of("a"), "the live member keeps its buckets")
	_, err := f.client.CoordinationV1().Leases(f.leases.namespace).Get(t.Context(), f.leases.memberLeaseName("b"),
		metav1.GetOptions{})
	assert.True(t, err != nil, "the expired member's Lease is deleted")

	// The expired Lease is gone from the cache too; once a has applied generation 2, it gets every bucket.
	require.NoError(t, f.leases.informer.GetIndexer().Delete(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: f.leases.memberLeaseName("b"), Namespace: f.leases.namespace}}))
	assert.Equal(t, taken, f.step(expired), "nothing is given before a has applied the table that took the buckets")
	f.member("a", 2)
	given := f.step(expired)
	assert.Equal(t, shard.All(), given.Of("a"))
}

func unionOf(a, b shard.Set) shard.Set {
	for i := range a {
		a[i] |= b[i]
	}
	return a
}

// The labeler's cache keeps of an App's metadata only what it reads: the bucket label survives the trim, so that
// an App already labelled is not labelled again, and the rest goes.
func TestLabelerKeepsOnlyTheBucketLabel(t *testing.T) {
	app := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1",
		ResourceVersion: "7",
		Labels:          map[string]string{shard.Label: "17", "team": "shop"},
		Annotations:     map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	obj, err := trimToBucket(app)
	require.NoError(t, err)
	trimmed := obj.(*metav1.PartialObjectMetadata)
	assert.Equal(t, map[string]string{shard.Label: "17"}, trimmed.Labels)
	assert.Empty(t, trimmed.Annotations)
	assert.Empty(t, trimmed.ManagedFields)
	assert.Equal(t, app.UID, trimmed.UID)
	assert.Equal(t, "7", trimmed.ResourceVersion)

	unlabelled := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "api", UID: "u2"}}
	obj, err = trimToBucket(unlabelled)
	require.NoError(t, err)
	assert.Nil(t, obj.(*metav1.PartialObjectMetadata).Labels)
}

// A step that follows the assigner's own write before the cache shows it writes nothing: from the table before,
// its write could only conflict.
func TestAssignerWaitsForItsCacheAfterAWrite(t *testing.T) {
	f := newAssignerFixture(t)
	now := time.Now()
	f.step(now) // creates the table
	f.member("a", 0)
	_, ctx := ktesting.NewTestContext(t)
	require.NoError(t, f.assigner.step(ctx, now), "the first step gives every bucket")
	f.client.ClearActions()
	require.NoError(t, f.assigner.step(ctx, now), "the cache still shows the table before the write")
	for _, a := range f.client.Actions() {
		assert.NotEqual(t, "update", a.GetVerb(), "a write from a cache behind the assigner's own: %v", a)
	}
}
