package controller

import "time"

// Results of one sync, as counted by Metrics.
const (
	ResultSuccess       = "success"
	ResultConflict      = "conflict"
	ResultUnsatisfiable = "unsatisfiable"
	ResultRefused       = "refused"
	ResultError         = "error"
)

// Metrics receives what the controller measures of its syncs. cmd/controller backs it with Prometheus metrics;
// tests may leave it nil.
type Metrics interface {
	// ObserveReconcile records one sync of one key: how it ended (a Result* constant) and how long it took.
	ObserveReconcile(result string, took time.Duration)
	// SetNamespaceSynced records whether the caches of a namespace (metav1.NamespaceAll for those of all
	// namespaces) have synced, so that its Apps are synced.
	SetNamespaceSynced(namespace string, synced bool)
}

type noMetrics struct{}

func (noMetrics) ObserveReconcile(string, time.Duration) {}

func (noMetrics) SetNamespaceSynced(string, bool) {}
