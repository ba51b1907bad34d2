package production

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/test/framework"
)

// retryPeriod is the shipped Deployment's --leader-election-retry-period.
const retryPeriod = time.Second

// TestLeaderStopsWhenItsLeaseIsBlanked blanks the holder of the Lease under a working leader, as an administrator
// may, or as the late release of an earlier leader did. A blank holder is a free Lease: a standby may take it at
// once, so the leader must stop working at once. And it must not go on holding the Lease without working: it
// leaves (exits non-zero, so that its Pod restarts), is neither ready nor healthy from the moment it stops, and
// another replica takes the Lease and works.
func TestLeaderStopsWhenItsLeaseIsBlanked(t *testing.T) {
	applyShippedManifests(t)
	deleteLease(t)
	kubeconfig := tokenKubeconfig(t, "berth-system", "berth")
	ns := newNamespace(t, "blanked", nil)
	args := manifestLeaderElectionArgs(t)
	leader, standby := oneLeader(t, startReplica(t, "a", kubeconfig, args...), startReplica(t, "b", kubeconfig, args...))
	createApps(t, ns, "before")
	waitConverged(t, ns, "before")

	// The probes are polled until the old leader exits: once it has stopped working, neither may say 200.
	probes := pollProbes(leader)
	blankLease(t)
	blanked := time.Now()
	expectExit(t, leader, renewDeadline, func(code int) bool { return code != 0 }, "non-zero")
	t.Logf("the old leader exited %s after its Lease was blanked", time.Since(blanked).Round(time.Millisecond))
	answers := <-probes
	stopped := loggedAt(t, leader, `"Stopping work at once" reason="the Lease no longer names this replica"`)
	var after int
	for _, a := range answers {
		// The log's clock has microseconds; the probe's answer may cross the stop by a little.
		if a.asked.After(stopped.Add(10 * time.Millisecond)) {
			after++
			assert.NotEqual(t, http.StatusOK, a.code, "%s answered %d %s after the leader stopped working",
				a.path, a.code, a.asked.Sub(stopped).Round(time.Millisecond))
		}
	}
	t.Logf("probes answered %d times, %d of them after the leader stopped working", len(answers), after)

	took := waitLeading(t, standby, blanked, leaseDuration+30*time.Second)
	t.Logf("the standby leads %s after the blank", took.Round(time.Millisecond))
	createApps(t, ns, "after")
	waitConverged(t, ns, "after")
	assert.Equal(t, standby.Name, holderReplica(t, standby, leader), "the Lease names the replica that works")
}

// TestOldLeaderStopsBeforeTheNewOneStarts cuts the leader off from its Lease (the fault proxy holds its Lease
// requests and cuts its watch of the Lease) while its other requests go through, and Apps keep coming, so that
// it has work. Another replica takes the Lease once it has expired. berth's own clock must have stopped the old
// leader by then: none of its writes may land after the new leader acquired the Lease (the proxy logs when each
// was answered). When the Lease requests go through again, what the old leader held back must not disturb the
// new leader: client-go's release, sent late, would blank the new holder's Lease.
//
// Twice: with the shipped flags, and with flags where client-go's elector alone would keep the old leader
// working past the lease duration (it gives up only after the retry period and the renew deadline, 2 s + 3 s
// against a lease of 4 s), and a standby that tries every 200 ms, so that it takes over as soon as it may.
func TestOldLeaderStopsBeforeTheNewOneStarts(t *testing.T) {
	shipped := manifestLeaderElectionArgs(t)
	short := []string{"--leader-election-lease-duration=4s", "--leader-election-renew-deadline=3s"}
	for _, tt := range []struct {
		name      string
		old, next []string
	}{
		{"shipped flags", shipped, shipped},
		{"retry period and renew deadline longer than the lease", append(slices.Clone(shipped),
			append(short, "--leader-election-retry-period=2s")...), append(slices.Clone(shipped),
			append(short, "--leader-election-retry-period=200ms")...)},
	} {
		t.Run(tt.name, func(t *testing.T) { testOldLeaderStopsBeforeTheNewOneStarts(t, tt.old, tt.next) })
	}
}

func testOldLeaderStopsBeforeTheNewOneStarts(t *testing.T, oldArgs, nextArgs []string) {
	applyShippedManifests(t)
	deleteLease(t)
	token, err := cluster.ServiceAccountToken(t.Context(), "berth-system", "berth", time.Hour)
	require.NoError(t, err)
	proxy, err := cluster.StartFaultProxy(framework.FaultOptions{})
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	proxyKubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, proxy.WriteKubeconfig(proxyKubeconfig, token))
	ns := newNamespace(t, "takeover", nil)

	old := startReplica(t, "old", proxyKubeconfig, oldArgs...)
	old.waitReady(t)
	waitLeading(t, old, time.Now(), timeout)
	next := startReplica(t, "next", tokenKubeconfig(t, "berth-system", "berth"), nextArgs...)
	next.waitReady(t)
	eventually(t, "the second replica to stand by", timeout, func(context.Context) error {
		return logged(next, "Another replica leads; standing by")
	})

	// Apps keep coming, from before the cut until after the takeover, so that both replicas have work.
	creating := createAppsEvery(t, ns, "app", 250*time.Millisecond)
	time.Sleep(2 * time.Second)
	proxy.Block(func(_, resource string) bool { return resource == "leases" })
	blocked := time.Now()
	took := waitLeading(t, next, blocked, leaseDuration+30*time.Second)
	t.Logf("the new leader leads %s after the old one was cut off from its Lease", took.Round(time.Millisecond))
	acquired := getLease(t).Spec.AcquireTime.Time
	require.True(t, acquired.After(blocked), "the Lease was acquired (%s) after the cut (%s)", acquired, blocked)

	// What the old leader held back goes through now: the new leader must go on undisturbed.
	time.Sleep(time.Second)
	proxy.Unblock()
	expectExit(t, old, time.Minute, func(code int) bool { return code != 0 }, "non-zero")
	created := creating()
	require.NotEmpty(t, created)

	var wrote, late []string
	for _, a := range proxy.Answers() {
		if a.Verb == "get" || a.Verb == "list" || a.Verb == "watch" || a.Code/100 != 2 {
			continue
		}
		wrote = append(wrote, a.Verb+" "+a.Resource)
		if a.At.After(acquired) {
			late = append(late, fmt.Sprintf("%s %s (%d) %s after the takeover", a.Verb, a.Resource, a.Code,
				a.At.Sub(acquired).Round(time.Millisecond)))
		}
	}
	require.NotEmpty(t, wrote, "the old leader wrote before it was cut off")
	t.Logf("the old leader's writes that landed: %d, the last %s after the takeover", len(wrote),
		lastWrite(proxy.Answers()).Sub(acquired).Round(time.Millisecond))
	assert.Empty(t, late, "writes of the old leader that landed after the new leader acquired the Lease")
	// Cut off from its Lease and from the watch of it, the old leader can have stopped only by its own clock.
	assert.NoError(t, logged(old, `reason="the Lease was not renewed within the renew deadline"`))

	time.Sleep(3 * time.Second)
	assert.Equal(t, next.Name, holderReplica(t, next, old), "the Lease names the new leader")
	assert.True(t, next.leading(t.Context(), leaseName), "the new leader still leads")
	createApps(t, ns, "after")
	waitConverged(t, ns, append(created, "after")...)
}

// TestLeaseIsRenewedUnderLoad has the leader create 2,000 Apps' objects at --kube-api-qps=5, far below what the
// work asks: every sync waits for the client's rate limit. The renewals of the Lease must not wait behind them:
// they are renewed every retry period (the Lease is watched, and the longest time between two renewals taken),
// and the leader never loses the Lease.
func TestLeaseIsRenewedUnderLoad(t *testing.T) {
	applyShippedManifests(t)
	deleteLease(t)
	ns := newNamespace(t, "load", nil)
	// Many workers, as a platform team with thousands of Apps may run: each holds a request waiting for the
	// rate limit, and a renewal sent through the same limit would wait behind all of them (10 s at 5/s).
	args := append(manifestLeaderElectionArgs(t), "--namespace="+ns, "--kube-api-qps=5", "--kube-api-burst=10",
		"--workers=50")
	leader := startReplica(t, "a", tokenKubeconfig(t, "berth-system", "berth"), args...)
	leader.waitReady(t)
	waitLeading(t, leader, time.Now(), timeout)

	renewals := watchRenewals(t)
	const apps = 2000
	start := time.Now()
	createManyApps(t, ns, apps)
	t.Logf("created %d Apps in %s", apps, time.Since(start).Round(time.Millisecond))
	const observe = 30 * time.Second
	time.Sleep(observe - time.Since(start))
	gaps := renewals()

	require.NotEmpty(t, gaps, "renewals seen")
	longest := slices.Max(gaps)
	t.Logf("%d renewals in %s; longest time between two: %s", len(gaps), observe, longest.Round(time.Millisecond))
	require.False(t, leader.Exited(), "the leader exited; its log ends with:\n%s", leader.LogTail(20))
	assert.True(t, leader.leading(t.Context(), leaseName), "the leader still leads")
	m, err := leader.metrics(t.Context())
	require.NoError(t, err)
	synced := m.Sum("berth_reconcile_total", nil)
	queued := m.Sum("workqueue_depth", map[string]string{"name": "app"})
	t.Logf("%v syncs in the meantime, %v Apps still queued", synced, queued)
	// The precondition: the leader synced, and far more work waited than --kube-api-qps let it do, so that
	// every worker kept a request waiting for the rate limit.
	require.Positive(t, synced, "the leader synced Apps")
	require.Greater(t, queued, float64(apps/2), "Apps queued behind the rate limit")
	assert.LessOrEqual(t, longest, 2*retryPeriod+500*time.Millisecond,
		"the longest time between two renewals of the Lease (retry period %s)", retryPeriod)
	assert.GreaterOrEqual(t, len(gaps), int(observe/(2*retryPeriod)), "renewals at least every two retry periods")
}

// deleteLease deletes berth's Lease, so that a test's replicas do not wait for an earlier test's holder to expire.
func deleteLease(t *testing.T) {
	t.Helper()
	err := kubeClient.CoordinationV1().Leases(leaseNamespace).Delete(t.Context(), leaseName, metav1.DeleteOptions{})
	if !apierrors.IsNotFound(err) {
		require.NoError(t, err)
	}
}

func getLease(t *testing.T) *coordinationv1.Lease {
	t.Helper()
	lease, err := kubeClient.CoordinationV1().Leases(leaseNamespace).Get(t.Context(), leaseName, metav1.GetOptions{})
	require.NoError(t, err)
	return lease
}

// blankLease clears the holder of berth's Lease, as `kubectl edit` by an administrator would.
func blankLease(t *testing.T) {
	t.Helper()
	leases := kubeClient.CoordinationV1().Leases(leaseNamespace)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := leases.Get(t.Context(), leaseName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		lease.Spec.HolderIdentity = nil
		_, err = leases.Update(t.Context(), lease, metav1.UpdateOptions{})
		return err
	}))
}

// probeAnswer is an answer of a probe endpoint, and when it was asked.
type probeAnswer struct {
	path  string
	code  int
	asked time.Time
}

// pollProbes polls r's /readyz and /healthz every 20 ms until r exits, and then sends the answers.
func pollProbes(r *replica) <-chan []probeAnswer {
	done := make(chan []probeAnswer, 1)
	go func() {
		var answers []probeAnswer
		for !r.Exited() {
			for _, path := range []string{"/readyz", "/healthz"} {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				asked := time.Now()
				if code := r.probe(ctx, path); code != 0 {
					answers = append(answers, probeAnswer{path: path, code: code, asked: asked})
				}
				cancel()
			}
			time.Sleep(20 * time.Millisecond)
		}
		done <- answers
	}()
	return done
}

// loggedAt is the time of the first line of r's log (klog's text format) that holds text; the test fails when
// there is none.
func loggedAt(t *testing.T, r *replica, text string) time.Time {
	t.Helper()
	for _, line := range strings.Split(r.Log(), "\n") {
		if !strings.Contains(line, text) {
			continue
		}
		// I1207 04:10:19.198574    9708 leader.go:71] ...
		fields := strings.Fields(line)
		require.GreaterOrEqual(t, len(fields), 2, "a klog line: %s", line)
		at, err := time.ParseInLocation("0102 15:04:05.000000", fields[0][1:]+" "+fields[1], time.Local)
		require.NoError(t, err, "the time of the klog line %q", line)
		now := time.Now()
		return at.AddDate(now.Year(), 0, 0)
	}
	t.Fatalf("replica %s has not logged %q", r.Name, text)
	return time.Time{}
}

// campaignIdentity is the identity r logged when it began to campaign, or "".
func campaignIdentity(r *replica) string {
	for _, line := range strings.Split(r.Log(), "\n") {
		if !strings.Contains(line, "Campaigning for leadership") {
			continue
		}
		if _, rest, ok := strings.Cut(line, `identity="`); ok {
			identity, _, _ := strings.Cut(rest, `"`)
			return identity
		}
	}
	return ""
}

// holderReplica names which of the replicas the Lease names.
func holderReplica(t *testing.T, replicas ...*replica) string {
	t.Helper()
	holder := ptr.Deref(getLease(t).Spec.HolderIdentity, "")
	for _, r := range replicas {
		if id := campaignIdentity(r); id != "" && id == holder {
			return r.Name
		}
	}
	return fmt.Sprintf("none of them (%q)", holder)
}

// createAppsEvery creates an App named prefix-N every interval until the function it returns is called, which
// returns the names of the Apps created.
func createAppsEvery(t *testing.T, namespace, prefix string, interval time.Duration) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var names []string
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for i := 1; ; i++ {
			name := fmt.Sprintf("%s-%d", prefix, i)
			if err := newApp(ctx, namespace, name); err == nil {
				names = append(names, name)
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	})
	stop := func() []string {
		cancel()
		wg.Wait()
		return names
	}
	t.Cleanup(func() { stop() })
	return stop
}

// createManyApps creates count Apps in namespace, with 20 clients at a time.
func createManyApps(t *testing.T, namespace string, count int) {
	t.Helper()
	names := make(chan string)
	errs := make(chan error, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for name := range names {
				if err := newApp(t.Context(), namespace, name); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range count {
		names <- fmt.Sprintf("load-%d", i+1)
	}
	close(names)
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
}

// watchRenewals watches berth's Lease from now on, and returns a function that returns the times between two
// of its renewals seen so far (by the time each change of the Lease arrived).
func watchRenewals(t *testing.T) func() []time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w, err := kubeClient.CoordinationV1().Leases(leaseNamespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", leaseName).String(),
	})
	require.NoError(t, err)
	var mu sync.Mutex
	var gaps []time.Duration
	var last time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range w.ResultChan() {
			now := time.Now()
			mu.Lock()
			if !last.IsZero() {
				gaps = append(gaps, now.Sub(last))
			}
			last = now
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		w.Stop()
		<-done
	})
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), gaps...)
	}
}

// lastWrite is when the last write among answers was answered.
func lastWrite(answers []framework.Answered) time.Time {
	var last time.Time
	for _, a := range answers {
		if a.Verb != "get" && a.Verb != "list" && a.Verb != "watch" && a.Code/100 == 2 && a.At.After(last) {
			last = a.At
		}
	}
	return last
}
