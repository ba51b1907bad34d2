package production

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/shard"
)

// The members, Apps and checks of TestShardedReplicas.

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
