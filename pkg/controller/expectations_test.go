package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/pkg/plan/plantest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestExpectations(t *testing.T) {
	key := cache.NewObjectName("shop", "web")
	type seen struct {
		exists  bool
		version string
	}
	// A write is "wrote N" (berth created, patched or applied the object and got version N) or "deleted N"
	// (berth deleted the object the cache showed at version N); a deletion the cache saw is "gone N" ("gone"
	// alone: learned by a relist).
	tests := []struct {
		name   string
		events []string
		cache  seen
		want   bool
	}{
		{"nothing written", nil, seen{true, "1"}, true},
		{"created, cache does not show it yet", []string{"wrote 5"}, seen{false, ""}, false},
		{"created, cache shows it", []string{"wrote 5"}, seen{true, "5"}, true},
		{"created, cache shows it, with no version (fake clients)", []string{"wrote "}, seen{true, ""}, true},
		{"created, patched, applied; cache shows the create", []string{"wrote 5", "wrote 6", "wrote 7"}, seen{true, "5"}, false},
		{"created, patched, applied; cache shows the patch", []string{"wrote 5", "wrote 6", "wrote 7"}, seen{true, "6"}, false},
		{"created, patched, applied; cache shows the apply", []string{"wrote 5", "wrote 6", "wrote 7"}, seen{true, "7"}, true},
		{"updated, cache shows the old version", []string{"wrote 4"}, seen{true, "3"}, false},
		{"updated, cache shows a version someone wrote before berth", []string{"wrote 12"}, seen{true, "11"}, false},
		{"updated, someone wrote after berth", []string{"wrote 4"}, seen{true, "9"}, true},
		{"versions compare as numbers, not text", []string{"wrote 9"}, seen{true, "10"}, true},
		{"updated, cache does not show it: not yet created there", []string{"wrote 4"}, seen{false, ""}, false},
		{"updated, then deleted by someone", []string{"wrote 4", "gone 5"}, seen{false, ""}, true},
		{"deleted by someone before berth recorded its write", []string{"gone 5", "wrote 4"}, seen{false, ""}, true},
		{"deletion learned by a relist", []string{"wrote 4", "gone"}, seen{false, ""}, true},
		{"an older object of the name deleted", []string{"wrote 8", "gone 5"}, seen{false, ""}, false},
		{"deleted, cache still shows it", []string{"deleted 3"}, seen{true, "3"}, false},
		{"deleted, cache shows it gone", []string{"deleted 3"}, seen{false, ""}, true},
		{"deleted, cache shows a new object of the name", []string{"deleted 3"}, seen{true, "8"}, true},
		{"a write that changed nothing", []string{"wrote 3"}, seen{true, "3"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExpectations(clocktesting.NewFakePassiveClock(time.Now()))
			for _, event := range tt.events {
				what, version, _ := strings.Cut(event, " ")
				switch what {
				case "wrote":
					e.wrote("deployments", key, version)
				case "deleted":
					e.deleted("deployments", key, version)
				case "gone":
					e.observeDeletion("deployments", key, version, version != "")
				}
			}
			assert.Equal(t, tt.want, e.caughtUp("deployments", key, tt.cache.exists, tt.cache.version))
			assert.True(t, e.caughtUp("services", key, false, ""), "other resources are not affected")
		})
	}
}

func TestExpectationsAreForgottenOnceMet(t *testing.T) {
	key := cache.NewObjectName("shop", "web")
	e := newExpectations(clocktesting.NewFakePassiveClock(time.Now()))
	e.wrote("apps", key, "2")
	require.True(t, e.caughtUp("apps", key, true, "2"))
	assert.True(t, e.caughtUp("apps", key, true, "1"), "met once, not awaited again")
	assert.Empty(t, e.pending)
}

func TestExpectationsExpire(t *testing.T) {
	key := cache.NewObjectName("shop", "web")
	clock := clocktesting.NewFakePassiveClock(time.Now())
	e := newExpectations(clock)
	e.wrote("apps", key, "2")
	require.False(t, e.caughtUp("apps", key, true, "1"))
	clock.SetTime(clock.Now().Add(expectationTTL))
	assert.True(t, e.caughtUp("apps", key, true, "1"), "a lost watch event cannot stall the App for good")
}

func TestExpectationsForgetDeletionsAfterTheirTTL(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Now())
	e := newExpectations(clock)
	e.observeDeletion("services", cache.NewObjectName("shop", "old"), "3", true)
	clock.SetTime(clock.Now().Add(expectationTTL))
	e.observeDeletion("services", cache.NewObjectName("shop", "new"), "4", true)
	assert.Len(t, e.gone, 1, "deletions are remembered no longer than an expectation waits")
}

func TestExpectationsForget(t *testing.T) {
	key := cache.NewObjectName("shop", "web")
	e := newExpectations(clocktesting.NewFakePassiveClock(time.Now()))
	e.wrote("apps", key, "2")
	e.wrote("deployments", key, "3")
	e.observeDeletion("services", key, "4", true)
	e.forget(key)
	assert.Empty(t, e.pending)
	assert.Empty(t, e.gone)
}

func TestSyncWaitsForTheCacheToSeeItsOwnWrites(t *testing.T) {
	f := newFixture(t, plantest.NewApp(plantest.WithPort(8080)))
	require.NoError(t, f.sync())
	require.NotEmpty(t, f.writes())
	status := f.appliedStatus()
	f.kubeClient.ClearActions()
	f.berthClient.ClearActions()

	// The caches have not seen the creates yet: a second sync must not create again.
	require.ErrorIs(t, f.sync(), errCacheBehind)
	assert.Empty(t, f.writes(), "no second create from a stale cache")

	// Once the caches show berth's writes, the App is synced again, and found converged.
	d, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, f.indexerFor(d).Add(d))
	s, err := f.kubeClient.CoreV1().Services("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, f.indexerFor(s).Add(s))
	f.cacheCreated(&policyv1.PodDisruptionBudget{})
	app := plantest.NewApp(plantest.WithPort(8080))
	app.Status = status
	require.NoError(t, f.indexerFor(app).Update(app))

	require.NoError(t, f.sync())
	assert.Empty(t, f.writes(), "converged once the caches caught up")
}
