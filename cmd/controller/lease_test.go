package main

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// fakeLock is a resourcelock.Interface whose writes fail when told to.
type fakeLock struct {
	resourcelock.Interface
	identity string
	fail     atomic.Bool
}

func (l *fakeLock) Identity() string { return l.identity }

func (l *fakeLock) Create(context.Context, resourcelock.LeaderElectionRecord) error { return l.err() }

func (l *fakeLock) Update(context.Context, resourcelock.LeaderElectionRecord) error { return l.err() }

func (l *fakeLock) err() error {
	if l.fail.Load() {
		return errors.New("injected")
	}
	return nil
}

// The renewal clock counts the writes that succeeded and name this replica: not a failed renewal, not a
// release (no holder).
func TestRenewalClockRecordsSuccessfulRenewalsOnly(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Unix(1000, 0))
	lock := &fakeLock{identity: "me"}
	renewals := newRenewalClock(lock, clock)
	ours := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}

	assert.True(t, renewals.lastRenewal().IsZero())
	require.NoError(t, renewals.Create(t.Context(), ours))
	assert.Equal(t, clock.Now(), renewals.lastRenewal(), "the acquisition")

	clock.Step(time.Second)
	require.NoError(t, renewals.Update(t.Context(), ours))
	renewed := clock.Now()
	assert.Equal(t, renewed, renewals.lastRenewal(), "a renewal")

	clock.Step(time.Second)
	lock.fail.Store(true)
	require.Error(t, renewals.Update(t.Context(), ours))
	assert.Equal(t, renewed, renewals.lastRenewal(), "a renewal that failed does not count")

	lock.fail.Store(false)
	require.NoError(t, renewals.Update(t.Context(), resourcelock.LeaderElectionRecord{}))
	assert.Equal(t, renewed, renewals.lastRenewal(), "a release does not count")
}

// expire fires the renew deadline after the last renewal, and each renewal puts it off.
func TestRenewalClockExpiresAtTheRenewDeadline(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Unix(1000, 0))
	renewals := newRenewalClock(&fakeLock{identity: "me"}, clock)
	ours := resourcelock.LeaderElectionRecord{HolderIdentity: "me"}
	require.NoError(t, renewals.Update(t.Context(), ours))

	expired := make(chan struct{})
	go renewals.expire(t.Context(), 10*time.Second, func() { close(expired) })
	waitTimer(t, clock)

	clock.Step(6 * time.Second)
	require.NoError(t, renewals.Update(t.Context(), ours)) // at 6 s: the deadline moves to 16 s
	waitTimer(t, clock)
	clock.Step(9 * time.Second) // 15 s
	waitTimer(t, clock)
	select {
	case <-expired:
		t.Fatal("expired 9 s after a renewal, with a renew deadline of 10 s")
	default:
	}
	clock.Step(time.Second) // 16 s
	select {
	case <-expired:
	case <-time.After(10 * time.Second):
		t.Fatal("not expired at the renew deadline after the last renewal")
	}
}

// With no renewal at all, the clock expires at once; and it stops with its context.
func TestRenewalClockWithoutRenewalAndStop(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Unix(1000, 0))
	renewals := newRenewalClock(&fakeLock{identity: "me"}, clock)
	fired := false
	renewals.expire(t.Context(), time.Second, func() { fired = true })
	assert.True(t, fired, "no renewal: expired at once")

	require.NoError(t, renewals.Update(t.Context(), resourcelock.LeaderElectionRecord{HolderIdentity: "me"}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		renewals.expire(ctx, time.Second, func() { t.Error("expired after its context was done") })
		close(done)
	}()
	waitTimer(t, clock)
	cancel()
	<-done
}

// waitTimer waits until a goroutine waits on a timer of clock.
func waitTimer(t *testing.T, clock *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("nothing waits on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

func leaseHeldBy(holder string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "berth-system", Name: "berth-controller", ResourceVersion: "7"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder),
			LeaseDurationSeconds: ptr.To[int32](15),
			LeaseTransitions:     ptr.To[int32](3),
		},
	}
}

// release blanks a Lease that names this replica, and leaves alone one that names another or none: client-go's
// release would blank it whoever it names.
func TestReleaseOnlyWhatIsOurs(t *testing.T) {
	for _, tt := range []struct {
		name, holder string
		released     bool
	}{
		{"ours", "me", true},
		{"another's", "other", false},
		{"nobody's", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(leaseHeldBy(tt.holder))
			released, err := release(t.Context(), client.CoordinationV1(), "berth-system", "berth-controller", "me")
			require.NoError(t, err)
			assert.Equal(t, tt.released, released)
			lease, err := client.CoordinationV1().Leases("berth-system").Get(t.Context(), "berth-controller",
				metav1.GetOptions{})
			require.NoError(t, err)
			var updates int
			for _, a := range client.Actions() {
				if a.GetVerb() == "update" {
					updates++
				}
			}
			if !tt.released {
				assert.Zero(t, updates, "no write")
				assert.Equal(t, tt.holder, ptr.Deref(lease.Spec.HolderIdentity, ""))
				return
			}
			assert.Equal(t, 1, updates)
			assert.Empty(t, ptr.Deref(lease.Spec.HolderIdentity, ""), "no holder")
			assert.Equal(t, int32(1), ptr.Deref(lease.Spec.LeaseDurationSeconds, 0), "standbys take it at once")
			assert.Equal(t, int32(3), ptr.Deref(lease.Spec.LeaseTransitions, 0), "the transitions are kept")
		})
	}
}

// The release's write carries the resourceVersion it read: when the Lease changed in between, it fails.
func TestReleaseCarriesTheVersionItRead(t *testing.T) {
	client := fake.NewClientset(leaseHeldBy("me"))
	var sent string
	client.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		sent = action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease).ResourceVersion
		return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), "berth-controller",
			errors.New("the object has been modified"))
	})
	released, err := release(t.Context(), client.CoordinationV1(), "berth-system", "berth-controller", "me")
	assert.False(t, released)
	require.Error(t, err)
	assert.True(t, apierrors.IsConflict(err))
	assert.Equal(t, "7", sent, "the write carried the resourceVersion of the read")
}

// A leader that stopped working is neither healthy nor ready; the first cause is what the probes say.
func TestProbesOfALeaderThatStoppedWorking(t *testing.T) {
	health := &leaderHealth{}
	h := probeHandler(t.Context(), func() error { return nil }, nil, health)
	code, _ := get(t, h, "/readyz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get(t, h, "/healthz")
	assert.Equal(t, http.StatusOK, code)

	health.stopped(errLeaseNotOurs)
	health.stopped(errRenewalOverdue)
	code, body := get(t, h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "the leader stopped working: the Lease no longer names this replica")
	code, body = get(t, h, "/healthz")
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Contains(t, body, "the Lease no longer names this replica")
}
