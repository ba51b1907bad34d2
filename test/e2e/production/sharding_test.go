package production

import (
	"context"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/test/framework"
)

const (
	shardNamespaces  = 6
	appsPerNamespace = 100
	appsWithPods     = 10 // per namespace; the others have no replica: the kwok nodes hold 330 Pods
	shardTableLease  = leaseName + "-shards"
)

// TestShardedReplicas runs berth as the platform team of a large cluster would: three replicas sharing 600 Apps
// (--sharding, artifacts/sharded), on an API server that ignores shard selectors, so that the members select
// their Apps by label. Every App converges with exactly one member; a member killed with SIGKILL has its Apps
// synced by the others within the lease duration and 5 s; a member added takes its share; the set scales to one
// member and back. Throughout, while Apps keep changing, the API server's audit log shows no App, and no object of
// an App, written by two members in turn and then by the first again: no second writer.
func TestShardedReplicas(t *testing.T) {
	applyShippedManifests(t)
	kubectl(t, "apply", "--filename="+filepath.Join(framework.RepoRoot(), "artifacts", "sharded", "rbac.yaml"))
	t.Cleanup(func() {
		// The other tests check the least privilege of the shipped RBAC, without sharding's.
		_, _ = cluster.Kubectl(context.Background(), "delete", "--ignore-not-found",
			"--filename="+filepath.Join(framework.RepoRoot(), "artifacts", "sharded", "rbac.yaml"))
		_ = kubeClient.CoordinationV1().Leases(leaseNamespace).Delete(context.Background(), shardTableLease,
			metav1.DeleteOptions{})
	})
	deleteLease(t)
	kubeconfig := tokenKubeconfig(t, "berth-system", "berth")
	start := time.Now()

	var namespaces []string
	for range shardNamespaces {
		namespaces = append(namespaces, newNamespace(t, "shard", nil))
	}
	var wg sync.WaitGroup
	errs := make(chan error, shardNamespaces)
	for _, ns := range namespaces {
		wg.Go(func() { errs <- createShardApps(t.Context(), ns) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	args := append(manifestLeaderElectionArgs(t), "--sharding")
	members := []*member{}
	for _, name := range []string{"a", "b", "c"} {
		members = append(members, startMember(t, name, kubeconfig, args))
	}
	waitShardsSettled(t, live(members))
	waitAllConverged(t, namespaces, "three members")
	t.Logf("600 Apps converged on 3 members %s after the members started", time.Since(start).Round(time.Second))
	for _, m := range members {
		require.NoError(t, logged(m.replica, "The API server ignores shard selectors"),
			"the member found that the API server ignores shard selectors, and selects by label")
		assert.Positive(t, m.apps(t), "member %s syncs some of the Apps", m.Name)
	}
	assertEveryAppHasOneMember(t, namespaces, live(members))

	// An App created while the members are stable: the assigner labels it with its bucket, and the member that
	// owns the bucket sees it and syncs it.
	created := time.Now()
	require.NoError(t, newApp(t.Context(), namespaces[0], "new"))
	eventually(t, "the new App to be synced", timeout, func(ctx context.Context) error {
		return appConverged(ctx, types.NamespacedName{Namespace: namespaces[0], Name: "new"})
	})
	synced := time.Since(created)
	t.Logf("an App created while the members were stable had its status written %s after its create",
		synced.Round(10*time.Millisecond))
	assert.Less(t, synced, 2*time.Second, "a new App starts converging within 2 s")
	last := time.Now()
	phase := func(what string) {
		t.Logf("%s: done in %s", what, time.Since(last).Round(100*time.Millisecond))
		last = time.Now()
	}

	// SIGKILL a member that does not lead: its Lease is neither renewed nor deleted, and its Apps move once it
	// expires. Apps of its buckets changed right after the kill converge within the lease duration and 5 s
	// (measured with nothing else changing: under a stream of changes, the Apps a member takes over wait behind
	// them in its queue, as the first list of any start does).
	victim := members[0]
	if victim.leading(t.Context(), leaseName) {
		victim = members[1]
	}
	table := readTable(t)
	require.NoError(t, victim.Signal(syscall.SIGKILL))
	killed := time.Now()
	changed := changeAppsOf(t, namespaces, table, victim.identity, 10)
	require.Len(t, changed, 10, "ten Apps of the killed member's buckets changed")
	for _, key := range changed {
		eventually(t, "App "+key.String()+" of the killed member to converge", leaseDuration+30*time.Second,
			func(ctx context.Context) error { return appConverged(ctx, key) })
	}
	took := time.Since(killed)
	t.Logf("the killed member's Apps converged on the others %s after the SIGKILL (lease duration %s)",
		took.Round(100*time.Millisecond), leaseDuration)
	assert.Less(t, took, leaseDuration+5*time.Second, "the killed member's Apps converge within the lease duration and 5 s")
	victim.gone = true
	phase("a member killed")

	// From here on, Apps keep changing while the members change, so that a second writer would show; the
	// changes stop for each wait for every App to converge (with one member, a few are always in flight).
	changes := 0
	stopChanges := changeAppsContinuously(t, namespaces)
	converge := func(when string) {
		t.Helper()
		changes += stopChanges()
		waitAllConverged(t, namespaces, when)
		stopChanges = changeAppsContinuously(t, namespaces)
	}

	// A member added: buckets move to it, first taken from their owners, then given.
	members = append(members, startMember(t, "d", kubeconfig, args))
	waitShardsSettled(t, live(members))
	converge("a member added")
	phase("a member added")

	// Down to one member: two leave (SIGTERM: they drain and delete their Leases), the last takes every bucket.
	var leaving []*member
	for _, m := range live(members) {
		if len(leaving) < 2 && !m.leading(t.Context(), leaseName) {
			leaving = append(leaving, m)
		}
	}
	for _, m := range leaving {
		require.NoError(t, m.Signal(syscall.SIGTERM))
	}
	for _, m := range leaving {
		expectExit(t, m.replica, time.Minute, func(code int) bool { return code == 0 }, "0")
		m.gone = true
	}
	waitShardsSettled(t, live(members))
	converge("one member")
	phase("down to one member")

	// And back to three.
	members = append(members, startMember(t, "e", kubeconfig, args), startMember(t, "f", kubeconfig, args))
	waitShardsSettled(t, live(members))
	converge("three members again")
	changes += stopChanges()
	t.Logf("%d changes of Apps made during the kill, the moves and the scaling", changes)
	phase("back to three members")
	assertEveryAppHasOneMember(t, namespaces, live(members))
	assertNoSecondWriter(t, start, namespaces)
}

// assertNoSecondWriter checks, from the API server's audit log, every write that berth's members made since since
// to the Apps of namespaces and their objects against the table of the buckets' owners in force when it completed
// (framework.CheckShardWriters): no write by a member that the table did not allow.
func assertNoSecondWriter(t *testing.T, since time.Time, namespaces []string) {
	t.Helper()
	buckets, err := framework.AppBuckets(t.Context(), berthClient, namespaces...)
	require.NoError(t, err)
	report, err := cluster.CheckShardWriters(since, shardTableLease, buckets)
	require.NoError(t, err)
	for _, v := range report.Violations {
		t.Error(v)
	}
	t.Logf("audit log: %d generations of the table; %d writes of %d Apps and their objects, each by the owner of "+
		"the App's bucket (%d by a member draining it); %d Apps written by more than one member in turn",
		report.Tables, report.Writes, report.Apps, report.Draining, report.Moved)
	require.Positive(t, report.Tables, "the audit log holds the table's writes")
	assert.Positive(t, report.Moved, "Apps moved between members while they were being changed")
}
