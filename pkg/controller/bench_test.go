package controller

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// The benchmarks here use the fixture's helpers only, not the controller's internals, so that they keep
// measuring the same thing while the controller changes.

// BenchmarkSyncConverged measures a sync that finds nothing to do: what every App costs berth at each resync.
// Its baseline, BenchmarkSyncBaselineListerReads, does only the lister reads such a sync cannot avoid; compare
// the two (make bench prints the ratio).
func BenchmarkSyncConverged(b *testing.B) {
	app, d, s := converged(b, plantest.NewApp(plantest.WithPort(8080)))
	f := newFixture(b, app, budgetOf(b, app), d, s)
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

// BenchmarkSyncBaselineListerReads reads from the caches what a converged sync reads: the App, its objects of
// each kind and its Pods.
func BenchmarkSyncBaselineListerReads(b *testing.B) {
	app, d, s := converged(b, plantest.NewApp(plantest.WithPort(8080)))
	f := newFixture(b, app, budgetOf(b, app), d, s)
	c := f.controller
	key := cache.NewObjectName("shop", "web")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.appLister.Apps("shop").Get("web"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.ownedVersions(key); err != nil {
			b.Fatal(err)
		}
		if _, err := c.appPods(key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyncNewApp measures the first sync of an App with a port that owns nothing yet: it creates the
// Deployment and the Service and writes the status, through the fake clientsets, whose own cost is included and
// is most of it (NewClientset's field-managed tracker builds a REST mapper on every request). Each iteration
// syncs an App of a new name in the same fixture, which is cheaper to set up than a new fixture and leaves
// nothing behind that the next sync would see: the objects it creates reach the fake clients, not the caches.
func BenchmarkSyncNewApp(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		name := "web-" + strconv.Itoa(i)
		app := plantest.NewApp(plantest.WithPort(8080), func(a *berthv1alpha1.App) {
			a.Name, a.UID = name, types.UID("uid-"+name)
		})
		require.NoError(b, f.indexerFor(app).Add(app))
		// The fake clients record every action and the recorder blocks when its buffer is full.
		f.kubeClient.ClearActions()
		f.berthClient.ClearActions()
		f.events()
		b.StartTimer()

		if err := f.controller.syncApp(f.ctx, cache.NewObjectName("shop", name)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.NotEmpty(b, f.writes(), "a new App's sync writes")
}
