package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthdev/berth/test/framework"
)

var shardKills = flag.Int("chaos.shard-kills", 3,
	"SIGKILLs of a member, at random, in TestShardedCrashes; 0 skips it")

// shardTable is the Lease of the table of the buckets' owners (--sharding).
const shardTable = leaseName + "-shards"

// TestShardedCrashes runs three members that share the Apps (--sharding), one of them behind the fault-injecting
// proxy, and SIGKILLs a member chosen at random at random moments while Apps are created and changed, starting it
// again at once, as a Pod's restart would (with a new identity: its buckets move away when its Lease expires, and
// some come back to the new process). Then every App converges, with nothing duplicated, orphaned, co-owned or
// stale (see check), and the API server's audit log shows no write by a member that the table of the buckets'
// owners did not allow at that moment (framework.CheckShardWriters). A member that exits on its own fails it: one
// whose work did not stop (errWorkStuck) logs every goroutine's stack first.
func TestShardedCrashes(t *testing.T) {
	if *shardKills == 0 {
		t.Skip("-chaos.shard-kills=0")
	}
	ns := newNamespace(t)
	createForeign(t, ns)
	deleteLease(t)
	rbac := filepath.Join(framework.RepoRoot(), "artifacts", "sharded", "rbac.yaml")
	_, err := cluster.Kubectl(t.Context(), "apply", "--filename="+rbac)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = cluster.Kubectl(context.Background(), "delete", "--ignore-not-found", "--filename="+rbac)
		_ = kubeClient.CoordinationV1().Leases(berthNamespace).Delete(context.Background(), shardTable,
			metav1.DeleteOptions{})
	})
	random := newRandom(t)
	w := newWorkload(ns, random)
	start := time.Now()

	opts := faultOptions
	opts.Rate, opts.Seed = *faultRate/2, seed
	proxy, err := cluster.StartFaultProxy(opts)
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	proxyKubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, proxy.WriteKubeconfig(proxyKubeconfig, token))

	args := append(leaderArgs(t), "--sharding")
	starts := 0
	startMember := func(slot string) *berth {
		starts++
		config := kubeconfig
		if slot == "a" {
			config = proxyKubeconfig
		}
		return startBerth(t, fmt.Sprintf("%s-%d", slot, starts), config, ns, args...)
	}
	members := map[string]*berth{"a": startMember("a"), "b": startMember("b"), "c": startMember("c")}
	alive := func() error {
		return errors.Join(members["a"].alive(), members["b"].alive(), members["c"].alive())
	}
	slots := []string{"a", "b", "c"}

	waves := *shardKills + 1
	for i := range waves {
		n := part(*appCount, waves, i)
		before := random.IntN(n + 1)
		require.NoError(t, w.create(t.Context(), before))
		require.NoError(t, w.change(t.Context(), len(w.names)/(2*waves)))
		if i == waves-1 {
			require.NoError(t, w.create(t.Context(), n-before))
			break
		}
		require.NoError(t, alive(), "a member died before it was killed")
		slot := slots[random.IntN(len(slots))]
		sleep(t, randomDuration(random, maxKillDelay))
		members[slot].kill(t)
		t.Logf("killed member %s in wave %d, after %d of its %d Apps", members[slot].Name, i+1, before, n)
		require.NoError(t, w.create(t.Context(), n-before))
		members[slot] = startMember(slot)
	}
	took := waitConverged(t, ns, true, alive)

	buckets, err := framework.AppBuckets(t.Context(), berthClient, ns)
	require.NoError(t, err)
	report, err := cluster.CheckShardWriters(start, shardTable, buckets)
	require.NoError(t, err)
	for _, v := range report.Violations {
		t.Error(v)
	}
	// The kills change the members, so the table changes after the first assignment; whether an App is written
	// by two members in turn depends on when the kills fall (TestShardedReplicas makes sure of it).
	require.Greater(t, report.Tables, 1, "the audit log holds the table's writes, and the kills changed it")
	require.Positive(t, report.Writes, "the audit log holds the members' writes")
	figure(t, "%d Apps, %d changes, %d SIGKILLs of a member among 3 sharing the Apps, one behind the fault proxy "+
		"(%s): converged %s after the last wave; audit log: %d tables, %d writes of %d Apps, each by the owner "+
		"of its bucket (%d draining), %d Apps written by more than one member", len(w.names), w.changes,
		*shardKills, counts(proxy.Faults()), took.Round(100*time.Millisecond), report.Tables, report.Writes,
		report.Apps, report.Draining, report.Moved)
}
