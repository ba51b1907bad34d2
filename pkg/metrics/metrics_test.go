package metrics

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthlisters "github.com/berthdev/berth/pkg/generated/listers/berth/v1alpha1"
)

func TestReconcileMetrics(t *testing.T) {
	registry := metrics.NewKubeRegistry()
	r := NewReconcile(registry.MustRegister)

	r.ObserveReconcile("success", 3*time.Millisecond)
	r.ObserveReconcile("success", 5*time.Millisecond)
	r.ObserveReconcile("error", time.Second)

	want := `
# HELP berth_reconcile_errors_total [ALPHA] Syncs of an App that failed and were retried with backoff.
# TYPE berth_reconcile_errors_total counter
berth_reconcile_errors_total 1
# HELP berth_reconcile_total [ALPHA] Syncs of an App, by result: success, conflict (retried with a short backoff), refused (the API server refused a write: retried with backoff), unsatisfiable (an object of the App's name is not its own: checked again with backoff) or error (retried with backoff).
# TYPE berth_reconcile_total counter
berth_reconcile_total{result="error"} 1
berth_reconcile_total{result="success"} 2
`
	require.NoError(t, testutil.GatherAndCompare(registry, strings.NewReader(want),
		"berth_reconcile_total", "berth_reconcile_errors_total"))

	r.SetNamespaceSynced("shop", false)
	r.SetNamespaceSynced("web", false)
	r.SetNamespaceSynced("web", true)
	want = `
# HELP berth_namespace_synced [ALPHA] 1 when berth's caches of the namespace have synced and its Apps are synced; 0 while they have not (berth cannot list the namespace's objects: see its log). The namespace is empty for the caches of all namespaces. Reported by the replica that works.
# TYPE berth_namespace_synced gauge
berth_namespace_synced{namespace="shop"} 0
berth_namespace_synced{namespace="web"} 1
`
	require.NoError(t, testutil.GatherAndCompare(registry, strings.NewReader(want), "berth_namespace_synced"))
	count, err := testutil.GetHistogramMetricCount(r.duration.WithLabelValues("success"))
	require.NoError(t, err)
	require.Equal(t, uint64(2), count)
}

func TestAppConditions(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	app := func(name string, conditions ...metav1.Condition) *berthv1alpha1.App {
		return &berthv1alpha1.App{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Status:     berthv1alpha1.AppStatus{Conditions: conditions},
		}
	}
	cond := func(conditionType string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: conditionType, Status: status, Reason: reason}
	}
	for _, a := range []*berthv1alpha1.App{
		app("web",
			cond("Available", metav1.ConditionTrue, "MinimumReplicasAvailable"),
			cond("Progressing", metav1.ConditionFalse, "RolloutComplete"),
			cond("Degraded", metav1.ConditionFalse, "AsExpected")),
		app("api",
			cond("Available", metav1.ConditionFalse, "MinimumReplicasUnavailable"),
			cond("Progressing", metav1.ConditionTrue, "RollingOut"),
			cond("Degraded", metav1.ConditionTrue, "CrashLoopBackOff"),
			cond("example.com/Audited", metav1.ConditionTrue, "Other")), // another controller's: not counted
		app("new"), // no status yet
	} {
		require.NoError(t, indexer.Add(a))
	}
	lister := berthlisters.NewAppLister(indexer)
	leads := func() bool { return true }

	registry := metrics.NewKubeRegistry()
	NewAppConditions(lister, false, leads, registry.CustomMustRegister)
	want := `
# HELP berth_apps [ALPHA] Apps by condition (Available, Progressing, Degraded) and its status (True, False, Unknown); an App whose status does not have the condition yet counts as Unknown.
# TYPE berth_apps gauge
berth_apps{condition="Available",status="False"} 1
berth_apps{condition="Available",status="True"} 1
berth_apps{condition="Available",status="Unknown"} 1
berth_apps{condition="Degraded",status="False"} 1
berth_apps{condition="Degraded",status="True"} 1
berth_apps{condition="Degraded",status="Unknown"} 1
berth_apps{condition="Progressing",status="False"} 1
berth_apps{condition="Progressing",status="True"} 1
berth_apps{condition="Progressing",status="Unknown"} 1
`
	require.NoError(t, testutil.GatherAndCompare(registry, strings.NewReader(want), "berth_apps", "berth_app_condition"))

	perApp := metrics.NewKubeRegistry()
	NewAppConditions(lister, true, leads, perApp.CustomMustRegister)
	want = `
# HELP berth_app_condition [ALPHA] 1 for each App and each of its conditions, with the condition's status and reason; only with --metrics-per-app, and only from the replica that leads, since it has three series per App.
# TYPE berth_app_condition gauge
berth_app_condition{app="api",condition="Available",namespace="shop",reason="MinimumReplicasUnavailable",status="False"} 1
berth_app_condition{app="api",condition="Degraded",namespace="shop",reason="CrashLoopBackOff",status="True"} 1
berth_app_condition{app="api",condition="Progressing",namespace="shop",reason="RollingOut",status="True"} 1
berth_app_condition{app="new",condition="Available",namespace="shop",reason="",status="Unknown"} 1
berth_app_condition{app="new",condition="Degraded",namespace="shop",reason="",status="Unknown"} 1
berth_app_condition{app="new",condition="Progressing",namespace="shop",reason="",status="Unknown"} 1
berth_app_condition{app="web",condition="Available",namespace="shop",reason="MinimumReplicasAvailable",status="True"} 1
berth_app_condition{app="web",condition="Degraded",namespace="shop",reason="AsExpected",status="False"} 1
berth_app_condition{app="web",condition="Progressing",namespace="shop",reason="RolloutComplete",status="False"} 1
`
	require.NoError(t, testutil.GatherAndCompare(perApp, strings.NewReader(want), "berth_app_condition"))
}

// TestPerAppSeriesComeFromTheLeaderOnly: every replica counts the Apps (berth_apps), but only the one that leads
// reports the three series of each App; a standby, or a leader that stopped leading, reports none.
func TestPerAppSeriesComeFromTheLeaderOnly(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, name := range []string{"web", "api"} {
		require.NoError(t, indexer.Add(&berthv1alpha1.App{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}))
	}
	var leads atomic.Bool
	registry := metrics.NewKubeRegistry()
	NewAppConditions(berthlisters.NewAppLister(indexer), true, leads.Load, registry.CustomMustRegister)

	series := func(name string) int {
		t.Helper()
		families, err := registry.Gather()
		require.NoError(t, err)
		for _, family := range families {
			if family.GetName() == name {
				return len(family.GetMetric())
			}
		}
		return 0
	}
	require.Equal(t, 9, series("berth_apps"), "a standby counts the Apps")
	require.Zero(t, series("berth_app_condition"), "a standby reports no App of its own")

	leads.Store(true)
	require.Equal(t, 9, series("berth_apps"))
	require.Equal(t, 6, series("berth_app_condition"), "the leader: three series per App")

	leads.Store(false)
	require.Zero(t, series("berth_app_condition"), "no longer the leader")
}
