package controller

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/cache"
)

// BenchmarkSyncConverged measures a sync that finds nothing to do: what every App costs berth at each resync.
// Its baseline, BenchmarkSyncBaselineListerReads, does only the lister reads such a sync cannot avoid; compare
// the two (make bench prints the ratio).
func BenchmarkSyncConverged(b *testing.B) {
	app, d, s := converged(b, newApp(withPort(8080)))
	f := newFixture(b, app, d, s)
	key := cache.NewObjectName("shop", "web")
	b.ReportAllocs()
	for b.Loop() {
		if err := f.controller.syncApp(f.ctx, key); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.Empty(b, f.writes(), "a converged sync writes nothing")
}

// BenchmarkSyncBaselineListerReads reads from the listers what a converged sync reads: the App, its Deployment,
// its Service and its Pods.
func BenchmarkSyncBaselineListerReads(b *testing.B) {
	app, d, s := converged(b, newApp(withPort(8080)))
	f := newFixture(b, app, d, s)
	c := f.controller
	key := cache.NewObjectName("shop", "web")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.appLister.Apps("shop").Get("web"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.deploymentLister.Deployments("shop").Get("web"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.serviceLister.Services("shop").Get("web"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.appPods(key); err != nil {
			b.Fatal(err)
		}
	}
}
