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
// the reconcile counters move, and client-go's, Go's and the process's metrics are there.
func TestMetrics(t *testing.T) {
	clusterRules, leaseRules := shippedRules(t)
	ns, berth := startWithRules(t, clusterRules, leaseRules)
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
}
