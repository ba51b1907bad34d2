package chaos

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// maxKillDelay bounds the random moment of a kill after a wave of writes: berth is then busy with the wave's
// creates, the first changes of objects it created (which hand the fields of its create to its apply first) and
// the status writes that follow Deployments becoming available.
const maxKillDelay = 3 * time.Second

// TestCrashes SIGKILLs berth at random moments while Apps are created and changed, and starts it again each time
// at once, as a Pod's restart would: -chaos.apps Apps come in -chaos.kills+1 waves, each with changes to Apps of
// the earlier waves, and berth dies within seconds of each wave but the last. Then every App converges, with
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
		require.NoError(t, w.create(t.Context(), part(*appCount, waves, i)))
		require.NoError(t, w.change(t.Context(), len(w.names)/(2*waves)))
		if i == waves-1 {
			break
		}
		delay := randomDuration(random, maxKillDelay)
		sleep(t, delay)
		require.NoError(t, b.alive(), "berth died before it was killed")
		busy := b.atWork(t.Context())
		b.kill(t)
		if busy {
			atWork++
		}
		t.Logf("killed %s %s after wave %d (%d Apps so far; at work: %v)", b.Name, delay.Round(time.Millisecond),
			i+1, len(w.names), busy)
		b = start()
	}
	took := waitConverged(t, ns, true, b.alive)
	figure(t, "%d Apps, %d changes, %d SIGKILLs of berth (%d of them with work queued or under way): converged %s "+
		"after the last wave", len(w.names), w.changes, *kills, atWork, took.Round(100*time.Millisecond))
}

// TestLeaderCrashes runs two replicas of berth with leader election, as the shipped Deployment does, and
// SIGKILLs whichever leads at random moments while Apps are created and changed (-chaos.leader-kills times),
// starting it again each time. A killed leader does not release its Lease: the work stops until the Lease expires
// and a replica takes it over. Then every App converges, as in TestCrashes.
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
		require.NoError(t, w.create(t.Context(), part(*appCount, waves, i)))
		require.NoError(t, w.change(t.Context(), len(w.names)/(2*waves)))
		if i == waves-1 {
			break
		}
		delay := randomDuration(random, maxKillDelay)
		sleep(t, delay)
		require.NoError(t, alive(), "a replica died before it was killed")
		slot := waitLeader(t, replicas)
		busy := replicas[slot].atWork(t.Context())
		killed := time.Now()
		replicas[slot].kill(t)
		if busy {
			atWork++
		}
		t.Logf("killed the leader %s %s after wave %d (%d Apps so far; at work: %v)", replicas[slot].Name,
			delay.Round(time.Millisecond), i+1, len(w.names), busy)
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
