package production

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/shard"
	"github.com/berthdev/berth/test/framework"
)

const (
	shardNamespaces   = 6
	appsPerNamespace  = 100
	appsWithPods      = 10 // per namespace; the others have no replica: the kwok nodes hold 330 Pods
	shardTableLease   = leaseName + "-shards"
	shardAssignerTail = "/assigner"
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

// member is a berth replica started with --sharding, with its identity (read from its log).
type member struct {
	*replica
	identity string
	gone     bool
}

var memberIdentity = regexp.MustCompile(`"Starting berth as a member of a shared set".*identity="([^"]+)"`)

func startMember(t *testing.T, name, kubeconfig string, args []string) *member {
	t.Helper()
	r := startReplica(t, name, kubeconfig, args...)
	m := &member{replica: r}
	eventually(t, "member "+name+" to start", timeout, func(context.Context) error {
		if found := memberIdentity.FindStringSubmatch(r.Log()); found != nil {
			m.identity = found[1]
			return nil
		}
		return errors.New("no identity in its log yet")
	})
	r.waitReady(t)
	return m
}

func live(members []*member) []*member {
	var l []*member
	for _, m := range members {
		if !m.gone {
			l = append(l, m)
		}
	}
	return l
}

// apps is how many Apps the member's metrics say it holds.
func (m *member) apps(t *testing.T) float64 {
	t.Helper()
	metrics, err := m.metrics(t.Context())
	require.NoError(t, err)
	return metrics.Sum("berth_apps", map[string]string{"condition": "Available"})
}

// createShardApps creates the Apps of one namespace, a few of them with a Pod.
func createShardApps(ctx context.Context, namespace string) error {
	for i := range appsPerNamespace {
		replicas := int32(0)
		if i < appsWithPods {
			replicas = 1
		}
		_, err := berthClient.BerthV1alpha1().Apps(namespace).Create(ctx, &berthv1alpha1.App{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i)},
			Spec: berthv1alpha1.AppSpec{Image: "nginxinc/nginx-unprivileged:1.27", Replicas: ptr.To(replicas),
				Port: ptr.To[int32](8080)},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
	}
	return nil
}

// readTable reads the table of the buckets' owners from its Lease.
func readTable(t *testing.T) shard.Table {
	t.Helper()
	lease, err := kubeClient.CoordinationV1().Leases(leaseNamespace).Get(t.Context(), shardTableLease, metav1.GetOptions{})
	require.NoError(t, err)
	table, err := shard.DecodeTable(lease.Annotations["berth.dev/generation"], lease.Annotations["berth.dev/owners"])
	require.NoError(t, err)
	return table
}

// waitShardsSettled waits until the table gives every bucket to one of members, each of them some, and each
// member's metrics say it holds the buckets the table gives it.
func waitShardsSettled(t *testing.T, members []*member) {
	t.Helper()
	eventually(t, fmt.Sprintf("the buckets to be shared between %d members", len(members)), timeout,
		func(ctx context.Context) error {
			lease, err := kubeClient.CoordinationV1().Leases(leaseNamespace).Get(ctx, shardTableLease, metav1.GetOptions{})
			if err != nil {
				return err
			}
			table, err := shard.DecodeTable(lease.Annotations["berth.dev/generation"], lease.Annotations["berth.dev/owners"])
			if err != nil {
				return err
			}
			if n := table.Unassigned().Len(); n > 0 {
				return fmt.Errorf("%d buckets unassigned at generation %d", n, table.Generation)
			}
			for _, m := range members {
				metrics, err := m.metrics(ctx)
				if err != nil {
					return err
				}
				owned := table.Of(m.identity).Len()
				if owned == 0 || metrics.Sum("berth_shard_buckets", nil) != float64(owned) {
					return fmt.Errorf("member %s: %d buckets in the table, %v in its metrics", m.Name, owned,
						metrics.Sum("berth_shard_buckets", nil))
				}
			}
			return nil
		})
}

// waitAllConverged waits until every App's status describes its generation, and says it is available.
func waitAllConverged(t *testing.T, namespaces []string, when string) {
	t.Helper()
	eventually(t, "every App to converge with "+when, timeout, func(ctx context.Context) error {
		var waiting []string
		for _, ns := range namespaces {
			list, err := berthClient.BerthV1alpha1().Apps(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, a := range list.Items {
				if a.Status.ObservedGeneration != a.Generation ||
					!meta.IsStatusConditionTrue(a.Status.Conditions, berthv1alpha1.ConditionAvailable) {
					waiting = append(waiting, ns+"/"+a.Name)
				}
			}
		}
		if len(waiting) > 0 {
			return fmt.Errorf("%d Apps not converged, such as %s", len(waiting), waiting[0])
		}
		return nil
	})
}

// appConverged tells whether berth has reported on the App's current generation.
func appConverged(ctx context.Context, key types.NamespacedName) error {
	a, err := berthClient.BerthV1alpha1().Apps(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if a.Status.ObservedGeneration != a.Generation {
		return fmt.Errorf("status of generation %d, App at %d", a.Status.ObservedGeneration, a.Generation)
	}
	return nil
}

// assertEveryAppHasOneMember checks that every App carries its bucket's label, that its bucket is owned by one of
// members, and that the members' counts of Apps add up to all of them.
func assertEveryAppHasOneMember(t *testing.T, namespaces []string, members []*member) {
	t.Helper()
	table := readTable(t)
	identities := map[string]bool{}
	for _, m := range members {
		identities[m.identity] = true
	}
	total := 0
	for _, ns := range namespaces {
		list, err := berthClient.BerthV1alpha1().Apps(ns).List(t.Context(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, a := range list.Items {
			total++
			bucket := shard.BucketOf(a.UID)
			assert.Equal(t, shard.LabelValue(bucket), a.Labels[shard.Label], "App %s/%s carries its bucket", ns, a.Name)
			assert.True(t, identities[table.Owners[bucket]], "App %s/%s, bucket %d: owned by %q, not a live member",
				ns, a.Name, bucket, table.Owners[bucket])
		}
	}
	var held float64
	for _, m := range members {
		held += m.apps(t)
	}
	assert.Equal(t, float64(total), held, "the members' berth_apps add up to every App, each counted once")
}

// changeAppsOf changes up to n Apps whose buckets the table gives member, and returns them.
func changeAppsOf(t *testing.T, namespaces []string, table shard.Table, member string, n int) []types.NamespacedName {
	t.Helper()
	var changed []types.NamespacedName
	for _, ns := range namespaces {
		list, err := berthClient.BerthV1alpha1().Apps(ns).List(t.Context(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, a := range list.Items {
			if len(changed) == n || table.Owners[shard.BucketOf(a.UID)] != member {
				continue
			}
			patch := fmt.Sprintf(`{"spec":{"env":[{"name":"KILLED","value":%q}]}}`, time.Now().Format(time.RFC3339Nano))
			_, err := berthClient.BerthV1alpha1().Apps(ns).Patch(t.Context(), a.Name, types.MergePatchType,
				[]byte(patch), metav1.PatchOptions{})
			require.NoError(t, err)
			changed = append(changed, types.NamespacedName{Namespace: ns, Name: a.Name})
		}
	}
	return changed
}

// changeAppsContinuously changes one App after another, every 20 ms, round the namespaces, until the function it
// returns is called; that returns how many changes were made. Each change makes the App's member write its
// Deployment and status: a second writer would show in the audit log.
func changeAppsContinuously(t *testing.T, namespaces []string) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	count := 0
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			ns := namespaces[i%len(namespaces)]
			name := fmt.Sprintf("app-%d", (i/len(namespaces))%appsPerNamespace)
			patch := fmt.Sprintf(`{"spec":{"env":[{"name":"CHANGE","value":"%d"}]}}`, i)
			if _, err := berthClient.BerthV1alpha1().Apps(ns).Patch(ctx, name, types.MergePatchType, []byte(patch),
				metav1.PatchOptions{}); err == nil {
				count++
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	stop := func() int {
		cancel()
		wg.Wait()
		return count
	}
	t.Cleanup(func() { stop() })
	return stop
}

// assertNoSecondWriter reads from the API server's audit log every write that berth's members made since since to
// the Apps (their status) and to the objects they own, and every write of the table of the buckets' owners
// (logged with its content), and checks each write against the table in force when it completed: a member may
// write an App while the table gives it the App's bucket, or while the table gives the bucket to nobody and it
// was the bucket's last owner (it is draining). Every other write is a second writer. The assigner's labels of
// the Apps are not syncs, and are left out.
func assertNoSecondWriter(t *testing.T, since time.Time, namespaces []string) {
	t.Helper()
	buckets := map[string]int{}
	for _, ns := range namespaces {
		list, err := berthClient.BerthV1alpha1().Apps(ns).List(t.Context(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, a := range list.Items {
			buckets[ns+"/"+a.Name] = shard.BucketOf(a.UID)
		}
	}
	events, err := cluster.Writes(since, func(e framework.AuditEvent) bool {
		if e.ObjectRef.Resource == "leases" {
			return e.ObjectRef.Name == shardTableLease && e.ResponseStatus.Code < 300
		}
		return e.ByBerth() && !strings.HasSuffix(e.UserAgent, shardAssignerTail) &&
			strings.HasPrefix(e.ObjectRef.Namespace, "shard-") && e.ObjectRef.Resource != "events"
	})
	require.NoError(t, err)
	sort.SliceStable(events, func(i, j int) bool { return events[i].StageTimestamp.Before(events[j].StageTimestamp) })

	var table shard.Table
	var lastOwner [shard.Buckets]string
	tables, writes, draining := 0, 0, 0
	writers := map[string]map[string]bool{} // App -> members that wrote it
	for _, e := range events {
		if e.ObjectRef.Resource == "leases" {
			var lease coordinationv1.Lease
			require.NoError(t, json.Unmarshal(e.RequestObject, &lease), "the audit log holds the table's content")
			table, err = shard.DecodeTable(lease.Annotations["berth.dev/generation"], lease.Annotations["berth.dev/owners"])
			require.NoError(t, err)
			for b, owner := range table.Owners {
				if owner != "" {
					lastOwner[b] = owner
				}
			}
			tables++
			continue
		}
		key := e.ObjectRef.Namespace + "/" + e.ObjectRef.Name
		bucket, ok := buckets[key]
		if !ok {
			continue // not an App's, nor named after one
		}
		member := strings.TrimPrefix(e.UserAgent, "berth/")
		writes++
		if writers[key] == nil {
			writers[key] = map[string]bool{}
		}
		writers[key][member] = true
		switch owner := table.Owners[bucket]; {
		case owner == member:
		case owner == "" && lastOwner[bucket] == member:
			draining++
		default:
			t.Errorf("%s: member %s wrote while generation %d of the table gives bucket %d to %q (last owner %q)",
				e, member, table.Generation, bucket, owner, lastOwner[bucket])
		}
	}
	moved := 0
	for _, members := range writers {
		if len(members) > 1 {
			moved++
		}
	}
	t.Logf("audit log: %d generations of the table; %d writes of %d Apps and their objects, each by the owner of "+
		"the App's bucket (%d by a member draining it); %d Apps written by more than one member in turn",
		tables, writes, len(writers), draining, moved)
	require.Positive(t, tables, "the audit log holds the table's writes")
	assert.Positive(t, moved, "Apps moved between members while they were being changed")
}
