package production

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/berthdev/berth/test/framework"
)

// The Lease of artifacts/deploy, with berth's default timings (the manifest sets only a shorter retry period).
const (
	leaseNamespace = "berth-system"
	leaseName      = "berth-controller"
	leaseDuration  = 15 * time.Second
	renewDeadline  = 10 * time.Second
)

// TestLeaderElection runs replicas of berth as the Deployment of artifacts/deploy does (the shipped
// ServiceAccount's token and RBAC, --leader-elect with the default Lease and timings) and checks that exactly one
// works at a time, how fast another takes over when the leader is stopped (SIGTERM), dies (SIGKILL), or loses its
// Lease, and that a leader that lost its Lease writes nothing more. The handover times are measured (polling
// every 50 ms) and logged; they are asserted only with generous bounds, the machine being shared and slow.
func TestLeaderElection(t *testing.T) {
	applyShippedManifests(t)
	kubeconfig := tokenKubeconfig(t, "berth-system", "berth")
	ns := newNamespace(t, "leader", nil)

	leaderArgs := manifestLeaderElectionArgs(t)
	a := startReplica(t, "a", kubeconfig, leaderArgs...)
	b := startReplica(t, "b", kubeconfig, leaderArgs...)
	leader, standby := oneLeader(t, a, b)
	t.Logf("replica %s leads, %s stands by", leader.Name, standby.Name)

	// Exactly one reconciles; the other's caches are warm but its queue is not worked on.
	createApps(t, ns, "first-1", "first-2", "first-3")
	waitConverged(t, ns, "first-1", "first-2", "first-3")
	assert.Positive(t, leader.reconciles(t), "the leader synced the Apps")
	assert.Zero(t, standby.reconciles(t), "the standby synced nothing")

	// SIGTERM: the leader drains, releases the Lease and exits 0; the standby takes over at its next try.
	require.NoError(t, leader.Signal(syscall.SIGTERM))
	signalled := time.Now()
	created := createAppsInBackground(ns, "term-1", "term-2")
	took := waitLeading(t, standby, signalled, 15*time.Second)
	t.Logf("handover after SIGTERM: %s (target: under 2s)", took.Round(time.Millisecond))
	require.NoError(t, <-created)
	expectExit(t, leader, time.Minute, func(code int) bool { return code == 0 }, "0")
	waitConverged(t, ns, "term-1", "term-2")
	leader = standby

	// A new replica stands by; SIGKILL the leader: its Lease is not released, and the standby takes it once it
	// has expired.
	c := startReplica(t, "c", kubeconfig, leaderArgs...)
	c.waitReady(t)
	eventually(t, "replica c to see the leader", timeout, func(context.Context) error {
		return logged(c, "Another replica leads; standing by")
	})
	assert.Zero(t, c.reconciles(t), "the new standby synced nothing")
	require.NoError(t, leader.Signal(syscall.SIGKILL))
	killed := time.Now()
	created = createAppsInBackground(ns, "kill-1", "kill-2")
	took = waitLeading(t, c, killed, leaseDuration+30*time.Second)
	t.Logf("handover after SIGKILL: %s (lease duration %s; target: under %s)", took.Round(time.Millisecond),
		leaseDuration, leaseDuration+2*time.Second)
	require.NoError(t, <-created)
	waitConverged(t, ns, "kill-1", "kill-2")
	leader = c

	// Losing the Lease: another identity takes it over (as after a long pause of the leader). From then on the
	// holder may be working, so the old leader must stop at once: it may finish a request already under way, for
	// which half a second is plenty, and then write nothing, not wait for its renew deadline. It stops its
	// workers and exits non-zero, without taking the Lease back.
	const intruder = "intruder"
	takeLease(t, intruder)
	lost := time.Now()
	time.Sleep(500 * time.Millisecond)
	before, scrapeErr := leader.metrics(t.Context())
	lostApps := []string{"lost-1", "lost-2", "lost-3"}
	createApps(t, ns, lostApps...)
	last := lastMetricsBeforeExit(t, leader, before, renewDeadline+time.Minute)
	expectExit(t, leader, time.Second, func(code int) bool { return code != 0 }, "non-zero")
	t.Logf("the leader exited %s after its Lease was taken", time.Since(lost).Round(time.Millisecond))
	for _, name := range lostApps {
		_, err := kubeClient.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err),
			"the replica that lost the Lease created no Deployment for App %s, created after the take: %v", name, errOrExists(err))
		app, err := berthClient.BerthV1alpha1().Apps(ns).Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Zero(t, app.Status.ObservedGeneration,
			"the replica that lost the Lease wrote no status for App %s: %+v", name, app.Status)
	}
	if scrapeErr != nil {
		t.Logf("the leader's metrics were gone half a second after the take (%v): no request of it to count", scrapeErr)
	} else {
		assert.Equal(t, landedWrites(before), landedWrites(last),
			"requests of the old leader that changed something (rest_client_requests_total, not GET, code 2xx) "+
				"from half a second after the take until its exit")
	}
	require.NoError(t, logged(leader, "lost the leader-election lease"))
	require.NoError(t, logged(leader, "All workers stopped"))
	lease, err := kubeClient.CoordinationV1().Leases(leaseNamespace).Get(t.Context(), leaseName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, intruder, *lease.Spec.HolderIdentity, "the replica that lost the Lease leaves it to its holder")
}

// manifestLeaderElectionArgs are the leader-election flags of the shipped Deployment (see framework.ShippedLeaderElectionArgs).
func manifestLeaderElectionArgs(t *testing.T) []string {
	t.Helper()
	args, err := framework.ShippedLeaderElectionArgs()
	require.NoError(t, err)
	return args
}

// oneLeader waits until the replicas are ready and exactly one of them leads, and returns it and the other.
func oneLeader(t *testing.T, a, b *replica) (leader, standby *replica) {
	t.Helper()
	a.waitReady(t)
	b.waitReady(t)
	eventually(t, "exactly one replica to lead", timeout, func(ctx context.Context) error {
		aLeads, bLeads := a.leading(ctx, leaseName), b.leading(ctx, leaseName)
		switch {
		case aLeads && !bLeads:
			leader, standby = a, b
		case bLeads && !aLeads:
			leader, standby = b, a
		default:
			return fmt.Errorf("%s leads: %v, %s leads: %v", a.Name, aLeads, b.Name, bLeads)
		}
		return logged(standby, "Another replica leads; standing by")
	})
	require.NoError(t, logged(leader, "Became the leader"))
	return leader, standby
}

// waitLeading polls r's metrics every 50 ms until it leads, and returns the time from since until then; it fails
// the test after bound.
func waitLeading(t *testing.T, r *replica, since time.Time, bound time.Duration) time.Duration {
	t.Helper()
	for {
		if r.leading(t.Context(), leaseName) {
			return time.Since(since)
		}
		if r.Exited() {
			t.Fatalf("replica %s exited (code %d) before it led", r.Name, r.ExitCode())
		}
		if time.Since(since) > bound {
			t.Fatalf("replica %s does not lead %s after the leader was stopped", r.Name, bound)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// expectExit waits up to within for r to exit, and checks its exit code with ok (want says what is expected).
func expectExit(t *testing.T, r *replica, within time.Duration, ok func(code int) bool, want string) {
	t.Helper()
	select {
	case <-r.Done():
	case <-time.After(within):
		t.Fatalf("replica %s is still running %s later", r.Name, within)
	}
	if code := r.ExitCode(); !ok(code) {
		t.Fatalf("replica %s exited with code %d, want %s; its log ends with:\n%s", r.Name, code, want, r.LogTail(20))
	}
}

// logged returns nil when r's log holds text.
func logged(r *replica, text string) error {
	if !strings.Contains(r.Log(), text) {
		return fmt.Errorf("replica %s has not logged %q", r.Name, text)
	}
	return nil
}

// createApps creates Apps with the given names.
func createApps(t *testing.T, namespace string, names ...string) {
	t.Helper()
	for _, name := range names {
		require.NoError(t, newApp(t.Context(), namespace, name))
	}
}

// createAppsInBackground creates Apps while the caller measures a handover, and sends the outcome.
func createAppsInBackground(namespace string, names ...string) <-chan error {
	done := make(chan error, 1)
	go func() {
		for _, name := range names {
			if err := newApp(context.Background(), namespace, name); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// lastMetricsBeforeExit scrapes r's metrics until it exits, and returns the last scrape (first if there is
// none); it fails the test if r is still running after within. The last scrape may miss what r did in its last
// moments, so a count taken from it can only be too low, never too high.
func lastMetricsBeforeExit(t *testing.T, r *replica, first framework.Metrics, within time.Duration) framework.Metrics {
	t.Helper()
	last := first
	deadline := time.After(within)
	for {
		if m, err := r.metrics(t.Context()); err == nil {
			last = m
		}
		select {
		case <-r.Done():
			return last
		case <-deadline:
			t.Fatalf("replica %s is still running %s later", r.Name, within)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// landedWrites counts the requests of a client that changed something: not a GET (a list and a watch are GETs
// too), answered with 2xx. A write refused with a conflict, such as the renewal of a Lease someone else holds,
// changes nothing.
func landedWrites(m framework.Metrics) float64 {
	var n float64
	for _, s := range m["rest_client_requests_total"] {
		if s.Labels["method"] != "GET" && strings.HasPrefix(s.Labels["code"], "2") {
			n += s.Value
		}
	}
	return n
}

// errOrExists is err, or an error saying that the object exists.
func errOrExists(err error) error {
	if err == nil {
		return errors.New("it exists")
	}
	return err
}

// takeLease makes identity the holder of berth's Lease, freshly renewed, as another replica would.
func takeLease(t *testing.T, identity string) {
	t.Helper()
	leases := kubeClient.CoordinationV1().Leases(leaseNamespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := leases.Get(t.Context(), leaseName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.NowMicro()
		lease.Spec.HolderIdentity = &identity
		lease.Spec.AcquireTime = &now
		lease.Spec.RenewTime = &now
		_, err = leases.Update(t.Context(), lease, metav1.UpdateOptions{})
		return err
	})
	require.NoError(t, err)
}
