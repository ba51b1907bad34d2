package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	tests := []struct {
		name   string
		writes [][2]string // before, after
		cache  seen
		want   bool
	}{
		{"nothing written", nil, seen{true, "1"}, true},
		{"created, cache does not show it yet", [][2]string{{"", "5"}}, seen{false, ""}, false},
		{"created, cache shows it", [][2]string{{"", "5"}}, seen{true, "5"}, true},
		{"created, cache shows it, with no version (fake clients)", [][2]string{{"", ""}}, seen{true, ""}, true},
		{"created, patched, applied; cache shows the create", [][2]string{{"", "5"}, {"5", "6"}, {"6", "7"}}, seen{true, "5"}, false},
		{"created, patched, applied; cache shows the patch", [][2]string{{"", "5"}, {"5", "6"}, {"6", "7"}}, seen{true, "6"}, false},
		{"created, patched, applied; cache shows the apply", [][2]string{{"", "5"}, {"5", "6"}, {"6", "7"}}, seen{true, "7"}, true},
		{"updated, cache shows the old version", [][2]string{{"3", "4"}}, seen{true, "3"}, false},
		{"updated, someone wrote after berth", [][2]string{{"3", "4"}}, seen{true, "9"}, true},
		{"updated, then deleted by someone", [][2]string{{"3", "4"}}, seen{false, ""}, true},
		{"deleted, cache still shows it", [][2]string{{"3", ""}}, seen{true, "3"}, false},
		{"deleted, cache shows it gone", [][2]string{{"3", ""}}, seen{false, ""}, true},
		{"a write that changed nothing is not awaited", [][2]string{{"3", "3"}}, seen{true, "3"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExpectations(clocktesting.NewFakePassiveClock(time.Now()))
			for _, w := range tt.writes {
				switch {
				case w[0] == "":
					e.created("deployments", key)
				case w[1] == "":
					e.deleted("deployments", key, w[0])
				default:
					e.wrote("deployments", key, w[0], w[1])
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
	e.wrote("apps", key, "1", "2")
	require.True(t, e.caughtUp("apps", key, true, "2"))
	assert.True(t, e.caughtUp("apps", key, true, "1"), "met once, not awaited again")
	assert.Empty(t, e.pending)
}

func TestExpectationsExpire(t *testing.T) {
	key := cache.NewObjectName("shop", "web")
	clock := clocktesting.NewFakePassiveClock(time.Now())
	e := newExpectations(clock)
	e.wrote("apps", key, "1", "2")
	require.False(t, e.caughtUp("apps", key, true, "1"))
	clock.SetTime(clock.Now().Add(expectationTTL))
	assert.True(t, e.caughtUp("apps", key, true, "1"), "a lost watch event cannot stall the App for good")
}

func TestExpectationsForget(t *testing.T) {
	key := cache.NewObjectName("shop", "web")
	e := newExpectations(clocktesting.NewFakePassiveClock(time.Now()))
	e.wrote("apps", key, "1", "2")
	e.created("deployments", key)
	e.forget(key)
	assert.Empty(t, e.pending)
}

func TestSyncWaitsForTheCacheToSeeItsOwnWrites(t *testing.T) {
	f := newFixture(t, newApp(withPort(8080)))
	require.NoError(t, f.sync())
	require.NotEmpty(t, f.writes())
	status := f.appliedStatus()
	f.kubeClient.ClearActions()
	f.berthClient.ClearActions()

	// The caches have not seen the creates yet: a second sync must not create again.
	require.NoError(t, f.sync())
	assert.Empty(t, f.writes(), "no second create from a stale cache")

	// Once the caches show berth's writes, the App is synced again, and found converged.
	d, err := f.kubeClient.AppsV1().Deployments("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, f.indexerFor(d).Add(d))
	s, err := f.kubeClient.CoreV1().Services("shop").Get(f.ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, f.indexerFor(s).Add(s))
	app := newApp(withPort(8080))
	app.Status = status
	require.NoError(t, f.indexerFor(app).Update(app))

	require.NoError(t, f.sync())
	assert.Empty(t, f.writes(), "converged once the caches caught up")
}
