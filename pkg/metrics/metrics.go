// Package metrics holds berth's Prometheus metrics: its own reconcile metrics, and client-go's workqueue,
// REST client and leader-election metrics, which component-base's adapters (imported here) register in
// component-base's global registry. Served by Handler, with the Go and process collectors of that registry.
package metrics

import (
	"net/http"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/berthdev/berth/pkg/controller"
	// Registers client-go's workqueue, REST client, reflector and leader-election metrics.
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
)

const subsystem = "berth"

// Reconcile records the syncs of the controller; it implements controller.Metrics.
type Reconcile struct {
	total    *metrics.CounterVec
	errors   *metrics.Counter
	duration *metrics.HistogramVec
	synced   *metrics.GaugeVec
}

// NewReconcile creates the reconcile metrics and registers them with register: legacyregistry.MustRegister in
// the binary (the registry Handler serves), a registry of their own in tests.
func NewReconcile(register func(...metrics.Registerable)) *Reconcile {
	r := &Reconcile{
		total: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem:      subsystem,
			Name:           "reconcile_total",
			Help:           "Syncs of an App, by result: success, conflict (retried with a short backoff), refused (the API server refused a write: retried with backoff), unsatisfiable (an object of the App's name is not its own: checked again with backoff) or error (retried with backoff).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"result"}),
		errors: metrics.NewCounter(&metrics.CounterOpts{
			Subsystem:      subsystem,
			Name:           "reconcile_errors_total",
			Help:           "Syncs of an App that failed and were retried with backoff.",
			StabilityLevel: metrics.ALPHA,
		}),
		duration: metrics.NewHistogramVec(&metrics.HistogramOpts{
			Subsystem:      subsystem,
			Name:           "reconcile_duration_seconds",
			Help:           "How long one sync of an App took, by result.",
			Buckets:        metrics.ExponentialBuckets(0.001, 2, 16), // 1 ms to about 33 s
			StabilityLevel: metrics.ALPHA,
		}, []string{"result"}),
		synced: metrics.NewGaugeVec(&metrics.GaugeOpts{
			Subsystem:      subsystem,
			Name:           "namespace_synced",
			Help:           "1 when berth's caches of the namespace have synced and its Apps are synced; 0 while they have not (berth cannot list the namespace's objects: see its log). The namespace is empty for the caches of all namespaces. Reported by the replica that works.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"namespace"}),
	}
	register(r.total, r.errors, r.duration, r.synced)
	return r
}

// ObserveReconcile records one sync.
func (r *Reconcile) ObserveReconcile(result string, took time.Duration) {
	r.total.WithLabelValues(result).Inc()
	if result == controller.ResultError {
		r.errors.Inc()
	}
	r.duration.WithLabelValues(result).Observe(took.Seconds())
}

// SetNamespaceSynced records whether berth's caches of namespace have synced.
func (r *Reconcile) SetNamespaceSynced(namespace string, synced bool) {
	value := 0.0
	if synced {
		value = 1
	}
	r.synced.WithLabelValues(namespace).Set(value)
}

// Handler serves every registered metric in the Prometheus text format.
func Handler() http.Handler {
	return legacyregistry.Handler()
}
