package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// maxKillDelay bounds the random delay of a kill after the Apps of the first part of a wave are written.
const maxKillDelay = 500 * time.Millisecond

// killAtWork SIGKILLs b at a random moment in the middle of a wave of writes: a random delay up to maxKillDelay,
// and then the first moment it is at work (see atWork: its creates, the first changes of the objects it created,
// which hand the fields of its create to its apply first, its status writes), if that comes within a few seconds.
// It reports whether it was at work.
func killAtWork(t *testing.T, b *berth, random *rand.Rand) (delay time.Duration, busy bool) {
	t.Helper()
	start := time.Now()
	sleep(t, randomDuration(random, maxKillDelay))
	deadline := time.Now().Add(3 * time.Second)
	for !busy && time.Now().Before(deadline) {
		busy = b.atWork(t.Context())
		if !busy {
			sleep(t, 20*time.Millisecond)
		}
	}
	require.NoError(t, b.alive(), "berth died before it was killed")
	b.kill(t)
	return time.Since(start), busy
}

// TestCrashes SIGKILLs berth at random moments while Apps are created and changed, and starts it again each time
// at once, as a Pod's restart would: -chaos.apps Apps come in -chaos.kills+1 waves, each with changes to Apps of
// the earlier waves, and berth dies in the middle of each wave but the last, once a random part of it is written,
// at work if it can be caught so; the rest of the wave is written while it is away. Then every App converges, with
// nothing duplicated, orphaned, co-owned or stale (see check).
func TestCrashes(t *testing.T) {
	ns := newNamespace(t)
	createForeign(t, ns)
	random := newRandom(t)
	w := newWorkload(ns, random)

	starts := 0
	// Each berth is killed at work, not while it starts: it gets its wave once its caches have synced.
	start := func() *berth {
		starts++
		b := startBerth(t, fmt.Sprintf("berth-%d", starts), kubeconfig, ns)
		b.waitReady(t)
		return b
	}
	b := start()
	atWork := 0
	waves := *kills + 1
	for i := range waves {
		n := part(*appCount, waves, i)
		if i == waves-1 {
			require.NoError(t, w.create(t.Context(), n))
			require.NoError(t, w.change(t.Context(), len(w.names)/(2*waves)))
			break
		}
		before := random.IntN(n + 1)
		require.NoError(t, w.create(t.Context(), before))
		require.NoError(t, w.change(t.Context(), len(w.names)/(2*waves)))
		delay, busy := killAtWork(t, b, random)
		if busy {
			atWork++
		}
		t.Logf("killed %s %s into wave %d, after %d of its %d Apps (at work: %v)", b.Name,
			delay.Round(time.Millisecond), i+1, before, n, busy)
		require.NoError(t, w.create(t.Context(), n-before))
		b = start()
	}
	took := waitConverged(t, ns, true, b.alive)
	figure(t, "%d Apps, %d changes, %d SIGKILLs of berth (%d of them with work queued or under way): converged %s "+
		"after the last wave", len(w.names), w.changes, *kills, atWork, took.Round(100*time.Millisecond))
}

// TestLeaderCrashes runs two replicas of berth with leader election, as the shipped Deployment does, and
// SIGKILLs whichever leads in the middle of waves of Apps created and changed, as TestCrashes does
// (-chaos.leader-kills times), starting it again each time. A killed leader does not release its Lease: the work
// stops until the Lease expires and a replica takes it over. Then every App converges, as in TestCrashes.
func TestLeaderCrashes(t *testing.T) {
	ns := newNamespace(t)
	createForeign(t, ns)
	deleteLease(t)
	random := newRandom(t)
	w := newWorkload(ns, random)

	args := leaderArgs(t)
	starts := 0
	start := func(slot string) *berth {
		starts++
		return startBerth(t, fmt.Sprintf("%s-%d", slot, starts), kubeconfig, ns, args...)
	}
	replicas := map[string]*berth{"a": start("a"), "b": start("b")}
	alive := func() error {
		return errors.Join(replicas["a"].alive(), replicas["b"].alive())
	}
	waitLeader(t, replicas)

	atWork := 0
	waves := *leaderKills + 1
	for i := range waves {
		n := part(*appCount, waves, i)
		if i == waves-1 {
			require.NoError(t, w.create(t.Context(), n))
			require.NoError(t, w.change(t.Context(), len(w.names)/(2*waves)))
			break
		}
		before := random.IntN(n + 1)
		require.NoError(t, w.create(t.Context(), before))
		require.NoError(t, w.change(t.Context(), len(w.names)/(2*waves)))
		require.NoError(t, alive(), "a replica died before the leader was killed")
		slot := waitLeader(t, replicas)
		delay, busy := killAtWork(t, replicas[slot], random)
		killed := time.Now()
		if busy {
			atWork++
		}
		t.Logf("killed the leader %s %s into wave %d, after %d of its %d Apps (at work: %v)", replicas[slot].Name,
			delay.Round(time.Millisecond), i+1, before, n, busy)
		require.NoError(t, w.create(t.Context(), n-before))
		replicas[slot] = start(slot)
		leader := waitLeader(t, replicas)
		t.Logf("%s leads, %s after the kill", replicas[leader].Name, time.Since(killed).Round(100*time.Millisecond))
	}
	took := waitConverged(t, ns, true, alive)
	figure(t, "%d Apps, %d changes, %d SIGKILLs of the leader among 2 replicas (%d of them with work queued or "+
		"under way): converged %s after the last wave", len(w.names), w.changes, *leaderKills, atWork,
		took.Round(100*time.Millisecond))
}

// waitLeader waits until berth's Lease is held by one of the replicas (a killed replica's hold expires), and
// returns that replica's slot.
func waitLeader(t *testing.T, replicas map[string]*berth) string {
	t.Helper()
	var leader string
	eventually(t, "a replica to lead", 2*time.Minute, func(ctx context.Context) error {
		holder, err := leaseHolder(ctx)
		if err != nil {
			return err
		}
		for slot, b := range replicas {
			if err := b.alive(); err != nil {
				t.Fatal(err)
			}
			if id := b.identity(); id != "" && id == holder {
				leader = slot
				return nil
			}
		}
		return fmt.Errorf("the Lease is held by %q, none of the running replicas", holder)
	})
	return leader
}
