package scale

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/berthdev/berth/test/framework"
)

// foreignSettle is how long berth is given to receive the foreign Deployments through its watch once they are
// stored: they arrive within a second; the rest is margin for a busy machine.
const foreignSettle = 10 * time.Second

// runBerth measures berth with n Apps on a fresh cluster: the n Apps exist before it starts, and one more is
// created a second after it starts. A full run also takes a CPU profile while berth converges, and measures
// the idle window and berth's memory.
func runBerth(ctx context.Context, t *testing.T, s setup, n int, full bool) (result, error) {
	var r result
	cluster, err := startCluster(ctx, n)
	if err != nil {
		return r, err
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			t.Logf("stopping the cluster: %v", err)
		}
	}()
	if _, err := createAppsLogged(ctx, t, cluster, n); err != nil {
		return r, err
	}
	conv, err := startConvergence(ctx, cluster.Config, n+1)
	if err != nil {
		return r, err
	}
	defer conv.Stop()

	ports, err := framework.FreePorts(1)
	if err != nil {
		return r, err
	}
	metricsAddress := "127.0.0.1:" + strconv.Itoa(ports[0])
	metricsURL := "http://" + metricsAddress + "/metrics"
	cpuBefore, err := readCPUTimes()
	if err != nil {
		return r, err
	}
	start := time.Now()
	berth, err := cluster.StartBerth(s.binary, s.logDir, fmt.Sprintf("berth-%d", n),
		"--metrics-bind-address="+metricsAddress,
		"--health-probe-bind-address=0",
		"--profiling",
		"--resync-period="+s.resync.String(),
		"--workers="+strconv.Itoa(s.workers),
		"--kube-api-qps="+strconv.FormatFloat(s.qps, 'f', -1, 64),
		"--kube-api-burst="+strconv.Itoa(s.burst),
	)
	if err != nil {
		return r, err
	}
	defer berth.Stop()
	failed := func(err error) (result, error) {
		return r, fmt.Errorf("%w; berth's log (%s) ends with:\n%s", err, berth.LogPath, berth.LogTail(20))
	}

	profile := filepath.Join(s.logDir, fmt.Sprintf("cpu-%d.pprof", n))
	profiled := make(chan error, 1)
	if full {
		// What bounds berth while it converges: its CPU profile over most of that time (the floor's rate
		// limit would need 3 writes per App).
		d := min(max(time.Duration(float64(3*n)/s.qps/2*float64(time.Second)), 5*time.Second), 30*time.Second)
		go func() { profiled <- cpuProfile(ctx, metricsAddress, profile, d) }()
	}

	extraApp, extraCreated, err := createExtraApp(ctx, cluster, start)
	if err != nil {
		return failed(err)
	}
	if err := conv.wait(ctx, t.Logf, "berth's Apps converged", conv.allConverged, berth.Done(), s.timeout(n)); err != nil {
		return failed(err)
	}
	r.busy = busySince(cpuBefore)
	if r.untilConverged, r.cpu, err = scrapeRequestsAndCPU(ctx, metricsURL); err != nil {
		return failed(err)
	}
	r.converge = conv.lastConvergedAt().Sub(start)
	r.extra = conv.convergedAt(extraApp.Namespace, extraApp.Name).Sub(extraCreated)
	t.Logf("berth's %d Apps converged in %s (the rate limit's bound: %s), with %s of CPU; the machine's CPU %.0f%% busy",
		n+1, r.converge.Round(time.Millisecond), bound(s.limits, r.untilConverged).Round(time.Millisecond),
		r.cpu.Round(time.Millisecond), 100*r.busy)
	if full {
		top, err := "", <-profiled
		if err == nil {
			top, err = profileTop(ctx, s.binary, profile)
		}
		if err != nil {
			top = err.Error()
		}
		t.Logf("berth's CPU profile while it converged (%s):\n%s", profile, top)
	}

	// The requests are counted once the Apps have settled: every App Available (its Pods run, and berth wrote
	// so in its status), and berth has stopped writing (its Events are written in the background).
	if err := conv.wait(ctx, t.Logf, "berth's Apps are Available", conv.allAvailable, berth.Done(), s.timeout(n)); err != nil {
		return failed(err)
	}
	conv.Stop() // its watches are no part of what the idle window should see
	last := -1.0
	err = waitFor(ctx, "berth stops writing", 2*time.Second, s.timeout(n), func() (bool, error) {
		got, err := scrapeRequests(ctx, metricsURL)
		if err != nil {
			return false, err
		}
		r.requests = got
		writes := got.writes(true)
		quiet := writes == last
		last = writes
		return quiet, nil
	})
	if err != nil {
		return failed(err)
	}
	if !full {
		return r, nil
	}

	// Three resyncs with nothing to do: berth should neither write nor read the API server.
	r.idleWindow = 3*s.resync + 5*time.Second
	t.Logf("idle window of %s", r.idleWindow)
	select {
	case <-time.After(r.idleWindow):
	case <-berth.Done():
		return failed(fmt.Errorf("berth exited during the idle window"))
	case <-ctx.Done():
		return r, ctx.Err()
	}
	after, err := scrapeRequests(ctx, metricsURL)
	if err != nil {
		return failed(err)
	}
	r.idle = after.since(r.requests)

	if r.heap, r.rss, err = berthMemory(ctx, metricsAddress,
		filepath.Join(s.logDir, fmt.Sprintf("heap-%d.pprof", n))); err != nil {
		return failed(err)
	}
	kube, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		return r, err
	}
	foreignStart := time.Now()
	if err := createForeignDeployments(ctx, kube, s.foreign); err != nil {
		return failed(fmt.Errorf("creating the foreign Deployments: %w", err))
	}
	t.Logf("created %d foreign Deployments in %s", s.foreign, time.Since(foreignStart).Round(time.Millisecond))
	select {
	case <-time.After(foreignSettle):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if r.heapForeign, _, err = berthMemory(ctx, metricsAddress,
		filepath.Join(s.logDir, fmt.Sprintf("heap-%d-foreign.pprof", n))); err != nil {
		return failed(err)
	}
	// As many Secrets again, in the Apps' namespaces, that no App reads: berth caches their metadata alone.
	secretsStart := time.Now()
	if err := createSecrets(ctx, kube, "other", n, false); err != nil {
		return failed(fmt.Errorf("creating the Secrets no App reads: %w", err))
	}
	t.Logf("created %d Secrets in %s", n*s.secrets, time.Since(secretsStart).Round(time.Millisecond))
	select {
	case <-time.After(foreignSettle):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if r.heapSecrets, _, err = berthMemory(ctx, metricsAddress,
		filepath.Join(s.logDir, fmt.Sprintf("heap-%d-secrets.pprof", n))); err != nil {
		return failed(err)
	}
	if berth.Exited() {
		return failed(fmt.Errorf("berth exited"))
	}
	return r, nil
}
