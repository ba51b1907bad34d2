package chaos

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxTooOld bounds how often berth's log may say "too old resource version". After a restart of etcd or of the
// API server, a watch may resume from a version the API server no longer has, once per watch and restart, and the
// reflector lists again: a handful of such lines. A reflector stuck in a loop of them says so every second or
// more often, hundreds of times within the scenario.
const maxTooOld = 30

// TestControlPlaneRestarts restarts kube-apiserver, and then etcd, while berth runs (as it runs in a cluster,
// with leader election) and Apps are created and changed: before, during and after the outage, the writes of the
// outage failing as they may. berth must come through without being restarted: its watches come back, without a
// loop of "too old resource version", and every App created or changed converges. One more App, created once all
// is over, converges too: the watches are alive.
func TestControlPlaneRestarts(t *testing.T) {
	ns := newNamespace(t)
	createForeign(t, ns)
	deleteLease(t)
	random := newRandom(t)
	w := newWorkload(ns, random)

	// -v=4: client-go logs a watch that ended with "too old resource version" at level 4.
	b := startBerth(t, "berth", kubeconfig, ns, append(leaderArgs(t), "-v=4")...)
	eventually(t, "berth to lead", 2*time.Minute, func(context.Context) error {
		if err := b.alive(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.Log(), "Became the leader") {
			return errors.New("berth has not logged that it leads")
		}
		return nil
	})
	require.NoError(t, w.create(t.Context(), 20))
	waitConverged(t, ns, true, b.alive)
	listsBefore := listsAndWatches(t, b)

	// Both are killed, as in a crash, and started again at once. Stopped with SIGTERM, kube-apiserver stops
	// listening at once, and then waits up to its request timeout (a minute) for the connections under way, its
	// clients' watches among them, to close before it exits; etcd takes about 7 s to close its streams. Either
	// outage would outlast berth's renew deadline (10 s), and berth would exit, as it must when it cannot renew
	// its Lease.
	for _, component := range []string{"kube-apiserver", "etcd"} {
		writer := startWriter(w)
		sleep(t, 2*time.Second)
		probe := startBackProbe()
		stopped := time.Now()
		out, err := cluster.Restart(t.Context(), component, true)
		require.NoError(t, err)
		ready := time.Now()
		back := probe.stop(ready)
		t.Logf("%s", strings.TrimSpace(out))
		sleep(t, *writerTime)
		stats := writer.stop()
		lastWrite := time.Now()
		// Not every Deployment need be available: kwok may have lost a Pod's start to the restart (see check).
		waitConverged(t, ns, false, b.alive)
		round := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
		figure(t, "%s killed and started again: healthy %s later, the API server answering again %s later; "+
			"berth converged %s after the API server answered again (%s after the last write of the %d Apps "+
			"created and %d changed meanwhile; %d writes failed)", component, round(ready.Sub(stopped)),
			round(back.Sub(stopped)), round(time.Since(back)), round(time.Since(lastWrite)), stats.created,
			stats.changed, stats.failed)
	}

	require.NoError(t, w.create(t.Context(), 1))
	waitConverged(t, ns, false, b.alive)
	require.NoError(t, b.alive(), "berth came through the restarts without exiting")

	tooOld := strings.Count(b.Log(), "too old resource version")
	figure(t, `berth logged "too old resource version" %d times, and started %.0f lists and watches during the `+
		"restarts", tooOld, listsAndWatches(t, b)-listsBefore)
	assert.LessOrEqual(t, tooOld, maxTooOld, `berth's log says "too old resource version" so often that a `+
		"reflector seems stuck in a loop")
}

// writerStats counts what a writer did.
type writerStats struct {
	created, changed, failed int
}

// writer creates and changes Apps of a workload until it is stopped, every 250 ms, as users go on doing while
// the control plane restarts: a write that fails (the API server is away) is counted and not retried. It owns
// the workload until stop returns.
type writer struct {
	cancel context.CancelFunc
	done   chan writerStats
}

func startWriter(w *workload) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	wr := &writer{cancel: cancel, done: make(chan writerStats, 1)}
	go func() {
		var stats writerStats
		defer func() { wr.done <- stats }()
		ticker := time.NewTicker(250 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			// A request that hangs while etcd is away must not hold the writer past its stop.
			reqCtx, cancelReq := context.WithTimeout(ctx, 5*time.Second)
			if err := w.create(reqCtx, 1); err != nil {
				stats.failed++
			} else {
				stats.created++
			}
			if err := w.change(reqCtx, 1); err != nil {
				stats.failed++
			} else {
				stats.changed++
			}
			cancelReq()
		}
	}()
	return wr
}

// stop stops the writer and returns what it did.
func (wr *writer) stop() writerStats {
	wr.cancel()
	return <-wr.done
}

// backProbe finds when the API server is back for its clients: it reads a namespace every 100 ms (a read from
// etcd, which fails while either is away) and notes the first answer after a failure. The API server answers
// requests some seconds before its /readyz says ready, which waits for all of its start-up work.
type backProbe struct {
	cancel context.CancelFunc
	done   chan time.Time
}

func startBackProbe() *backProbe {
	ctx, cancel := context.WithCancel(context.Background())
	p := &backProbe{cancel: cancel, done: make(chan time.Time, 1)}
	go func() {
		var back time.Time
		defer func() { p.done <- back }()
		failed := false
		for {
			reqCtx, cancelReq := context.WithTimeout(ctx, time.Second)
			_, err := kubeClient.CoreV1().Namespaces().Get(reqCtx, "default", metav1.GetOptions{})
			cancelReq()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				failed = true
			case failed:
				back = time.Now()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return p
}

// stop stops the probe once the API server is ready, and returns when it answered again; ready if the probe saw
// no failure (the outage fell between two of its reads).
func (p *backProbe) stop(ready time.Time) time.Time {
	select {
	case back := <-p.done:
		return back
	case <-time.After(5 * time.Second):
		// The API server is ready: the probe's next read succeeds, unless it saw no failure.
	}
	p.cancel()
	if back := <-p.done; !back.IsZero() {
		return back
	}
	return ready
}

// listsAndWatches counts the lists and watches berth has requested so far, by its metric berth_api_requests_total.
func listsAndWatches(t *testing.T, b *berth) float64 {
	t.Helper()
	m, err := b.metrics(t.Context())
	require.NoError(t, err)
	return m.Sum("berth_api_requests_total", map[string]string{"verb": "list"}) +
		m.Sum("berth_api_requests_total", map[string]string{"verb": "watch"})
}
