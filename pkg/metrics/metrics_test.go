package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
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
	count, err := testutil.GetHistogramMetricCount(r.duration.WithLabelValues("success"))
	require.NoError(t, err)
	require.Equal(t, uint64(2), count)
}
