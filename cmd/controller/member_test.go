package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/pkg/shard"
)

// fakeWork is a member's work that takes a while to drain, as syncs under way do.
type fakeWork struct {
	buckets shard.Set
	drained atomic.Bool
}

func (w *fakeWork) run(ctx context.Context, stop <-chan struct{}) error {
	select {
	case <-stop:
	case <-ctx.Done():
	}
	time.Sleep(100 * time.Millisecond) // the last syncs finish
	w.drained.Store(true)
	return nil
}

// memberTest is what the tests of a member share: a fake API server, options with the Lease timings given, and
// the Leases of sharding read from it.
func memberTest(t *testing.T, retry, renewDeadline, leaseDuration time.Duration) (context.Context, *fake.Clientset,
	options, *shardLeases) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	opts := defaultOptions()
	opts.retryPeriod, opts.renewDeadline, opts.leaseDuration = retry, renewDeadline, leaseDuration
	return ctx, client, opts, newShardLeases(client, opts.leaderElectionNamespace, opts.leaderElectionID)
}

// tableLease is the table of the buckets' owners at generation, owners encoded as the assigner writes them.
func tableLease(leases *shardLeases, generation, owners string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: leases.tableName(), Namespace: leases.namespace,
			Labels:      map[string]string{labelSharding: leases.id, labelRole: roleTable},
			Annotations: map[string]string{annotationGeneration: generation, annotationOwners: owners}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("")},
	}
}

// A member applies a table that takes its buckets only once its work has drained: the acknowledgement, which
// lets the assigner give the buckets to another member, is written after the last sync. On a graceful stop it
// drains and deletes its Lease.
func TestMemberDrainsBeforeItAcknowledges(t *testing.T) {
	ctx, client, opts, leases := memberTest(t, 50*time.Millisecond, 5*time.Second, 6*time.Second)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var mu sync.Mutex
	var works []*fakeWork
	newWork := func(buckets shard.Set) (work, error) {
		mu.Lock()
		defer mu.Unlock()
		w := &fakeWork{buckets: buckets}
		works = append(works, w)
		return w, nil
	}
	// Each write of the member's Lease that acknowledges generation 2 finds the first work drained.
	var acknowledged, drainedFirst atomic.Bool
	client.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		lease := action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		if lease.Annotations[annotationApplied] == "2" && !acknowledged.Load() {
			acknowledged.Store(true)
			mu.Lock()
			drainedFirst.Store(len(works) > 0 && works[0].drained.Load())
			mu.Unlock()
		}
		return false, nil, nil
	})
	const identity = "member-a"
	m, err := newMember(identity, client.CoordinationV1().Leases(opts.leaderElectionNamespace), leases, opts,
		newWork, func(int) {})
	require.NoError(t, err)
	leases.start(ctx)
	done := make(chan error, 1)
	go func() { done <- m.run(ctx) }()

	table := tableLease(leases, "1", identity+"=0-255")
	tables := client.CoordinationV1().Leases(leases.namespace)
	_, err = tables.Create(ctx, table, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(works) == 1 && works[0].buckets == shard.All()
	}, 10*time.Second, 10*time.Millisecond, "the member works on every bucket the table gives it")

	// The assigner takes half of the buckets.
	table.Annotations[annotationGeneration] = "2"
	table.Annotations[annotationOwners] = identity + "=0-127"
	_, err = tables.Update(ctx, table, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, acknowledged.Load, 10*time.Second, 10*time.Millisecond, "the member acknowledges generation 2")
	assert.True(t, drainedFirst.Load(), "the work of every bucket had drained when the member acknowledged")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(works) == 2 && works[1].buckets == shard.SetOf(bucketsBelow(128)...)
	}, 10*time.Second, 10*time.Millisecond, "the member then works on the buckets it kept")

	cancel()
	require.NoError(t, <-done)
	_, err = client.CoordinationV1().Leases(leases.namespace).Get(context.Background(), m.leaseName, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the member deleted its Lease when it left: %v", err)
	assert.True(t, works[1].drained.Load(), "the member drained its work when it left")
}

func bucketsBelow(n int) []int {
	bs := make([]int, n)
	for i := range bs {
		bs[i] = i
	}
	return bs
}

// A member whose renewals fail stops its work at once when its last renewal is older than the renew deadline,
// before the assigner can count its Lease as expired, and returns errMemberLost.
func TestMemberStopsWhenItCannotRenew(t *testing.T) {
	ctx, client, opts, leases := memberTest(t, 50*time.Millisecond, 500*time.Millisecond, 2*time.Second)
	var failing atomic.Bool
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, apierrors.NewServiceUnavailable("the API server is away")
		}
		return false, nil, nil
	})
	var w *fakeWork
	m, err := newMember("member-a", client.CoordinationV1().Leases(opts.leaderElectionNamespace), leases, opts,
		func(buckets shard.Set) (work, error) {
			w = &fakeWork{buckets: buckets}
			return w, nil
		}, func(int) {})
	require.NoError(t, err)
	leases.start(ctx)
	_, err = client.CoordinationV1().Leases(leases.namespace).Create(ctx, tableLease(leases, "1", "member-a=0-255"),
		metav1.CreateOptions{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- m.run(ctx) }()
	require.Eventually(t, func() bool { return m.appliedGeneration() == 1 }, 10*time.Second, 10*time.Millisecond)

	failing.Store(true)
	failed := time.Now()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, errMemberLost)
		assert.ErrorIs(t, err, errRenewalOverdue)
		assert.Less(t, time.Since(failed), opts.leaseDuration, "the member stopped before its Lease could expire")
		assert.True(t, w.drained.Load(), "the member's work had ended")
	case <-time.After(10 * time.Second):
		t.Fatal("the member goes on working with its renewals failing")
	}
}

// stuckWork is a member's work that ignores both its stop and its context until released.
type stuckWork struct{ release chan struct{} }

func (w *stuckWork) run(context.Context, <-chan struct{}) error {
	<-w.release
	return nil
}

// A member whose work does not stop cannot acknowledge a table that takes its buckets (its syncs may still
// write), and must not hold every move back by renewing its Lease forever: it gives up after the drain timeout
// and the grace after it, logs every goroutine's stack, and returns errWorkStuck, so that the process exits and
// its Lease expires. It neither acknowledges the table nor deletes its Lease.
func TestMemberExitsWhenItsWorkDoesNotStop(t *testing.T) {
	ctx, client, opts, leases := memberTest(t, 50*time.Millisecond, 5*time.Second, 6*time.Second)
	opts.drainTimeout = 100 * time.Millisecond
	w := &stuckWork{release: make(chan struct{})}
	defer close(w.release)
	m, err := newMember("member-a", client.CoordinationV1().Leases(opts.leaderElectionNamespace), leases, opts,
		func(shard.Set) (work, error) { return w, nil }, func(int) {})
	require.NoError(t, err)
	m.stopGrace = 200 * time.Millisecond
	var dumps atomic.Int32
	m.dumpStacks = func(klog.Logger) { dumps.Add(1) }
	leases.start(ctx)
	tables := client.CoordinationV1().Leases(leases.namespace)
	table, err := tables.Create(ctx, tableLease(leases, "1", "member-a=0-255"), metav1.CreateOptions{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- m.run(ctx) }()
	require.Eventually(t, func() bool { return m.appliedGeneration() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the member applies the table that gives it every bucket")

	// The assigner takes every bucket: the member must stop its work first.
	table.Annotations[annotationGeneration] = "2"
	table.Annotations[annotationOwners] = ""
	_, err = tables.Update(ctx, table, metav1.UpdateOptions{})
	require.NoError(t, err)
	select {
	case err := <-done:
		assert.ErrorIs(t, err, errWorkStuck)
	case <-time.After(10 * time.Second):
		t.Fatal("the member waits forever for a work that does not stop, and renews its Lease all the while")
	}
	assert.EqualValues(t, 1, dumps.Load(), "the member logged the goroutines' stacks")
	lease, err := tables.Get(context.Background(), m.leaseName, metav1.GetOptions{})
	require.NoError(t, err, "the member's Lease stays, to expire")
	assert.Equal(t, "1", lease.Annotations[annotationApplied], "the member did not acknowledge generation 2")
}
