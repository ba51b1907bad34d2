package chaos

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthinformers "github.com/berthdev/berth/pkg/generated/informers/externalversions"
	"github.com/berthdev/berth/test/framework"
)

// faultOptions are the faults of TestInjectedFaults with faults, but for their rate: a 504 comes after 2 s, and
// every watch is cut within 10 s of its start.
var faultOptions = framework.FaultOptions{TimeoutDelay: 2 * time.Second, WatchCutWithin: 10 * time.Second}

// TestInjectedFaults runs the same workload twice, each time with a fresh berth (with leader election, as in a
// cluster) that reaches the API server through a FaultProxy: once without faults, once with -chaos.fault-rate of
// its requests failing (500; 429 with Retry-After; 504 after a delay, the request done or not), and every watch
// cut in the middle of its stream within seconds. With the faults, too, every App converges (see check); no App
// is ever Degraded, since nothing but requests failed; and berth's requests stay bounded: with 20% of requests
// failing, each request takes 1.25 tries on average, so three times the requests of the run without faults is a
// generous bound, plus two a second of the longer run for what time alone costs (a Lease renewal a second with
// the shipped retry period, the watches cut and started again).
func TestInjectedFaults(t *testing.T) {
	clean := runThroughProxy(t, "without-faults", 0)
	faulty := runThroughProxy(t, "with-faults", *faultRate)
	if t.Failed() {
		return
	}
	figure(t, "%d Apps without faults: %d requests in %s, %.1f/s (%s)", *faultApps, clean.total(),
		clean.took.Round(100*time.Millisecond), clean.perSecond(), counts(clean.requests))
	figure(t, "%d Apps with %.0f%% of requests failing: %d requests in %s, %.1f/s (%s); faults: %s", *faultApps,
		100**faultRate, faulty.total(), faulty.took.Round(100*time.Millisecond), faulty.perSecond(),
		counts(faulty.requests), counts(faulty.faults))
	bound := 3*clean.total() + 2*int(faulty.took.Seconds())
	assert.LessOrEqual(t, faulty.total(), bound, "berth's requests with faults, against 3 times those without "+
		"plus 2 a second")
}

// proxyRun is what a run through the FaultProxy measured: requests by verb, faults by kind, and the time from
// berth's start until the Apps converged.
type proxyRun struct {
	requests, faults map[string]int
	took             time.Duration
}

func (r proxyRun) total() int {
	n := 0
	for _, c := range r.requests {
		n += c
	}
	return n
}

func (r proxyRun) perSecond() float64 { return float64(r.total()) / r.took.Seconds() }

// runThroughProxy runs the workload of TestInjectedFaults as the subtest name, with rate of berth's requests
// failing, and returns what it measured.
func runThroughProxy(t *testing.T, name string, rate float64) proxyRun {
	var run proxyRun
	t.Run(name, func(t *testing.T) {
		ns := newNamespace(t)
		createForeign(t, ns)
		deleteLease(t)
		opts := framework.FaultOptions{}
		if rate > 0 {
			opts = faultOptions
			opts.Rate, opts.Seed = rate, seed
		}
		proxy, err := cluster.StartFaultProxy(opts)
		require.NoError(t, err)
		t.Cleanup(proxy.Close)
		proxyKubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		require.NoError(t, proxy.WriteKubeconfig(proxyKubeconfig, token))
		degraded := watchDegraded(t, ns)

		// The same Apps and changes in both runs: the workload's choices come from a source seeded alike.
		w := newWorkload(ns, rand.New(rand.NewPCG(seed, 1)))
		started := time.Now()
		b := startBerth(t, "berth", proxyKubeconfig, ns, leaderArgs(t)...)
		require.NoError(t, w.create(t.Context(), *faultApps/2))
		require.NoError(t, w.change(t.Context(), *faultApps/4))
		require.NoError(t, w.create(t.Context(), *faultApps-*faultApps/2))
		waitConverged(t, ns, true, b.alive)
		run = proxyRun{requests: proxy.Requests(), faults: proxy.Faults(), took: time.Since(started)}
		t.Logf("%d requests in %s (%s); faults: %s", run.total(), run.took.Round(100*time.Millisecond),
			counts(run.requests), counts(run.faults))
		assert.Empty(t, degraded(), "Apps were reported Degraded while nothing failed but API requests")
	})
	return run
}

// watchDegraded watches the Apps of namespace with the admin client, which does not go through the proxy, and
// records every state of an App with Degraded=True. It returns what was recorded so far.
func watchDegraded(t *testing.T, namespace string) func() []string {
	t.Helper()
	factory := berthinformers.NewSharedInformerFactoryWithOptions(berthClient, 0, berthinformers.WithNamespace(namespace))
	informer := factory.Berth().V1alpha1().Apps().Informer()
	var mu sync.Mutex
	var seen []string
	record := func(obj any) {
		app, ok := obj.(*berthv1alpha1.App)
		if !ok {
			return
		}
		if c := meta.FindStatusCondition(app.Status.Conditions, berthv1alpha1.ConditionDegraded); c != nil &&
			c.Status == metav1.ConditionTrue {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fmt.Sprintf("App %s (generation %d): Degraded, %s: %s", app.Name, app.Generation,
				c.Reason, c.Message))
		}
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, newObj any) { record(newObj) },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	require.True(t, cache.WaitForCacheSync(t.Context().Done(), informer.HasSynced), "the watch of Apps synced")
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// counts formats counts by name, sorted: "get=3 list=2".
func counts(c map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	return strings.Join(parts, " ")
}
