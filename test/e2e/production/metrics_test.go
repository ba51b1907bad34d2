package production

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berthdev/berth/test/framework"
)

// TestMetrics reads the leader's /metrics as Prometheus does, before and after Apps are created: the queue's and
// the reconcile counters move, client-go's, Go's and the process's metrics are there, and so is every metric
// that the dashboard and alerting rules of artifacts/monitoring query.
func TestMetrics(t *testing.T) {
	clusterRules, leaseRules := shippedRules(t)
	// With the per-App metric, which the dashboard's table of Degraded Apps reads.
	ns, berth := startWithRules(t, clusterRules, leaseRules, "--metrics-per-app")
	berth.waitReady(t)
	eventually(t, "berth to lead", timeout, func(ctx context.Context) error {
		if !berth.leading(ctx, leaseName) {
			return fmt.Errorf("leader_election_master_status{name=%q} is not 1", leaseName)
		}
		return nil
	})
	assert.Equal(t, http.StatusOK, berth.probe(t.Context(), "/healthz"))
	assert.Equal(t, http.StatusOK, berth.probe(t.Context(), "/readyz"))

	queue := map[string]string{"name": "app"}
	success := map[string]string{"result": "success"}
	before, err := berth.metrics(t.Context())
	require.NoError(t, err)

	names := []string{"metered-1", "metered-2", "metered-3"}
	createApps(t, ns, names...)
	waitConverged(t, ns, names...)

	var after framework.Metrics
	eventually(t, "the queue's adds and the successful syncs to count the Apps", timeout, func(ctx context.Context) error {
		if after, err = berth.metrics(ctx); err != nil {
			return err
		}
		adds := after.Sum("workqueue_adds_total", queue) - before.Sum("workqueue_adds_total", queue)
		syncs := after.Sum("berth_reconcile_total", success) - before.Sum("berth_reconcile_total", success)
		if adds < float64(len(names)) || syncs < float64(len(names)) {
			return fmt.Errorf("workqueue_adds_total{name=\"app\"} grew by %v and berth_reconcile_total{result=\"success\"} "+
				"by %v, want at least %d each", adds, syncs, len(names))
		}
		return nil
	})
	for _, m := range []struct {
		name   string
		labels map[string]string
	}{
		{"workqueue_depth", queue},
		{"workqueue_work_duration_seconds", queue},
		{"berth_reconcile_duration_seconds", success},
		{"rest_client_requests_total", nil},
		{"go_goroutines", nil},
		{"process_resident_memory_bytes", nil},
	} {
		assert.True(t, after.Has(m.name, m.labels), "/metrics has %s%v", m.name, m.labels)
	}
	assert.Positive(t, after.Sum("rest_client_requests_total", nil))
	assert.Positive(t, after.Sum("process_resident_memory_bytes", nil))
	assert.Zero(t, after.Sum("berth_reconcile_errors_total", nil), "no sync failed")

	// The Apps' own gauge: the three Apps come to be counted as Available.
	eventually(t, "berth_apps to count the Apps as Available", timeout, func(ctx context.Context) error {
		m, err := berth.metrics(ctx)
		if err != nil {
			return err
		}
		available := m.Sum("berth_apps", map[string]string{"condition": "Available", "status": "True"})
		if available < float64(len(names)) {
			return fmt.Errorf("berth_apps{condition=\"Available\",status=\"True\"} is %v, want at least %d",
				available, len(names))
		}
		return nil
	})

	// What the dashboard and the alerts query (metrics.txt, extracted from their queries by
	// hack/update-codegen.sh) is served, under the names they use: a histogram's NAME_bucket, for example.
	text, err := framework.ScrapeMetricsText(t.Context(), berth.metricsURL)
	require.NoError(t, err)
	served := framework.SeriesNames(text)
	queried, err := framework.QueriedMetrics()
	require.NoError(t, err)
	require.Contains(t, queried, "up", "metrics.txt lists what BerthDown queries")
	for _, name := range queried {
		// up is Prometheus's own, for each target it scrapes.
		assert.True(t, name == "up" || served[name], "artifacts/monitoring queries %s, which berth does not serve",
			name)
	}
	if !t.Failed() {
		t.Logf("berth serves the %d metrics that artifacts/monitoring queries (up aside)", len(queried)-1)
	}
}
