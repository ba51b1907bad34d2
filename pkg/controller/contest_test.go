package controller

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// TestDriftedFieldsOfAnyShape: what counts as drift, whatever the shape of the fields. Fields and list items
// beyond desired's are not berth's to remove; what desired sets and owned lacks, or holds otherwise, drifted.
func TestDriftedFieldsOfAnyShape(t *testing.T) {
	tests := []struct {
		name           string
		desired, owned any
		drifted        bool
	}{
		{"equal", map[string]any{"a": 1}, map[string]any{"a": 1}, false},
		{"a default more", map[string]any{"a": 1}, map[string]any{"a": 1, "b": "default"}, false},
		{"a field missing", map[string]any{"a": 1, "b": 2}, map[string]any{"a": 1}, true},
		{"another value", map[string]any{"a": 1}, map[string]any{"a": 2}, true},
		{"nested, with defaults", map[string]any{"c": []any{map[string]any{"name": "x"}}},
			map[string]any{"c": []any{map[string]any{"name": "x", "policy": "IfNotPresent"}}}, false},
		{"an item more", map[string]any{"c": []any{"x"}}, map[string]any{"c": []any{"x", "y"}}, false},
		{"an item less", map[string]any{"c": []any{"x", "y"}}, map[string]any{"c": []any{"x"}}, true},
		{"items without keys in another order", map[string]any{"c": []any{"x", "y"}},
			map[string]any{"c": []any{"y", "x"}}, true},
		{"a scalar for a map", map[string]any{"a": map[string]any{"b": 1}}, map[string]any{"a": 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			drifted, err := driftedFields(tt.desired, tt.owned)
			require.NoError(t, err)
			assert.Equal(t, tt.drifted, len(drifted) > 0, "drifted: %v", drifted)
		})
	}
}

func TestDriftedFields(t *testing.T) {
	desired := map[string]any{
		"spec": map[string]any{
			"replicas": 3,
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{
				"name":  "app",
				"image": "nginx:1.27",
				"env":   []any{map[string]any{"name": "A", "value": "1"}},
				"ports": []any{map[string]any{"containerPort": 8080, "protocol": "TCP"}},
			}}}},
		},
	}
	tests := []struct {
		name  string
		owned string
		want  []string // path, and "rewritten" when berth still owns the field with another value
	}{
		{"as desired",
			`{"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27",
			"env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}}`,
			nil},
		{"fields berth does not set are no drift",
			`{"metadata": {"annotations": {"x": "y"}}, "spec": {"replicas": 3, "paused": true, "template": {"spec":
			{"containers": [{"name": "app", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}, {"name": "B"}],
			"ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}}`,
			nil},
		{"fields taken by another manager",
			`{"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}],
			"ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}}`,
			[]string{`.spec.replicas`, `.spec.template.spec.containers[name="app"].image`}},
		{"a value rewritten while berth owns it",
			`{"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app",
			"image": "mirror.example.com/nginx:1.27", "env": [{"name": "A", "value": "1"}],
			"ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}}`,
			[]string{`.spec.template.spec.containers[name="app"].image rewritten`}},
		{"list items matched by key, not by place",
			`{"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "sidecar"}, {"name": "app",
			"image": "nginx:1.27", "env": [{"name": "Z"}, {"name": "A", "value": "2"}],
			"ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}}`,
			[]string{`.spec.template.spec.containers[name="app"].env[name="A"].value rewritten`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var owned map[string]any
			require.NoError(t, json.Unmarshal([]byte(tt.owned), &owned))
			drifted, err := driftedFields(desired, owned)
			require.NoError(t, err)
			var got []string
			for _, f := range drifted {
				s := f.path.String()
				if f.rewritten {
					s += " rewritten"
				}
				got = append(got, s)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestChangedByNamesTheManagerThatOwnsTheField(t *testing.T) {
	at := func(minute int) *metav1.Time {
		return &metav1.Time{Time: time.Date(2026, 11, 26, 4, minute, 0, 0, time.UTC)}
	}
	entry := func(manager string, op metav1.ManagedFieldsOperationType, subresource, fields string,
		when *metav1.Time) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource, Time: when,
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields)}
	}
	image := `{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{"f:image":{}}}}}}}`
	live := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		entry(FieldManager, metav1.ManagedFieldsOperationApply, "", `{"f:spec":{"f:replicas":{}}}`, at(1)),
		entry("image-bot", metav1.ManagedFieldsOperationUpdate, "", image, at(2)),
		// Newer, but owns other fields: not who changed the image.
		entry("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "",
			`{"f:metadata":{"f:annotations":{"f:deployment.kubernetes.io/revision":{}}}}`, at(3)),
		entry("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "status", `{"f:status":{}}`, at(4)),
	}}}
	d := plan.Deployment(plantest.NewApp())
	owned := plan.Deployment(plantest.NewApp())
	owned.Spec.Template.Spec.Containers[0].Image = nil
	drifted, err := driftedFields(d, owned)
	require.NoError(t, err)
	require.Len(t, drifted, 1)

	assert.Equal(t, `"image-bot" (Update)`, changedBy(live, drifted))
	assert.Equal(t, `"kube-controller-manager" (Update)`, changedBy(live, []driftedField{{path: nil}}),
		"a removed field owns no entry: the newest writer of the main resource")
	assert.Equal(t, rewrittenByAdmission, changedBy(live, []driftedField{{rewritten: true}}))
}

func TestCorrectionsBackOffThenHoldThenProbe(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC))
	c := newCorrections(clock, 3, 10*time.Minute, time.Second)
	app := cache.NewObjectName("shop", "web")
	drift := []driftedField{{}}
	correct := func() {
		t.Helper()
		v := c.verdict(app, "Deployment", "h1")
		require.Equal(t, correctionVerdict{}, v, "at %s", clock.Now())
		c.corrected(app, "Deployment", "h1")
	}

	correct()
	// Each further correction waits twice as long as the one before.
	for _, backoff := range []time.Duration{time.Second, 2 * time.Second} {
		assert.Equal(t, correctionVerdict{wait: backoff}, c.verdict(app, "Deployment", "h1"))
		clock.SetTime(clock.Now().Add(backoff))
		correct()
	}
	// The limit is reached: the next drift stops the corrections for a window.
	require.Equal(t, correctionVerdict{hold: true}, c.verdict(app, "Deployment", "h1"))
	contest, hold := c.hold(app, "Deployment", "web", "h1", drift, `"image-bot" (Update)`)
	assert.Equal(t, 10*time.Minute, hold)
	assert.Equal(t, 3, contest.times)
	clock.SetTime(clock.Now().Add(time.Minute))
	v := c.verdict(app, "Deployment", "h1")
	assert.Equal(t, contest, v.held)
	assert.Equal(t, 9*time.Minute, v.wait, "the App is synced again when the hold is over")

	// After the hold, one correction; undone again, and the next hold is twice as long.
	clock.SetTime(clock.Now().Add(9 * time.Minute))
	correct()
	require.Equal(t, correctionVerdict{hold: true}, c.verdict(app, "Deployment", "h1"))
	_, hold = c.hold(app, "Deployment", "web", "h1", drift, `"image-bot" (Update)`)
	assert.Equal(t, 20*time.Minute, hold)

	// A change of the App ends the contest at once.
	assert.Equal(t, correctionVerdict{}, c.verdict(app, "Deployment", "h2"))
	// So does the App's deletion.
	c.forget(app)
	assert.Empty(t, c.records)
}

func TestCorrectionsAreForgottenAfterAWindowInPeace(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC))
	c := newCorrections(clock, 3, 10*time.Minute, time.Second)
	app := cache.NewObjectName("shop", "web")
	c.corrected(app, "Deployment", "h1")

	c.settled(app, "Deployment")
	assert.Len(t, c.records, 1, "a correction within the window still counts")
	clock.SetTime(clock.Now().Add(10 * time.Minute))
	c.settled(app, "Deployment")
	assert.Empty(t, c.records)
}

// TestSyncStopsCorrectingAFieldSomeoneKeepsChanging: once berth has made its corrections of a field within the
// window and sees it changed again, it writes nothing more to the object, and the App says why.
func TestSyncStopsCorrectingAFieldSomeoneKeepsChanging(t *testing.T) {
	app, d, _ := converged(t, plantest.NewApp())
	drifted := updatedByAnotherManager(t, d, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "evil:1"
	})
	f := newFixtureWithOptions(t, Options{CorrectionLimit: 2}, app, budgetOf(t, app), drifted)
	clock := clocktesting.NewFakePassiveClock(time.Now())
	f.controller.corrections = newCorrections(clock, 2, time.Minute, time.Second)
	key := cache.MetaObjectToName(app)
	hash := hashOf(t, plan.Deployment(app))
	f.controller.corrections.corrected(key, "Deployment", hash)
	clock.SetTime(clock.Now().Add(2 * time.Second))
	f.controller.corrections.corrected(key, "Deployment", hash)
	clock.SetTime(clock.Now().Add(4 * time.Second))

	require.NoError(t, f.sync())

	assert.Equal(t, []action{applyAppStatus}, f.writes(), "no write of the Deployment, only of the status")
	status := f.appliedStatus()
	degraded := meta.FindStatusCondition(status.Conditions, berthv1alpha1.ConditionDegraded)
	require.NotNil(t, degraded)
	assert.Equal(t, metav1.ConditionTrue, degraded.Status)
	assert.Equal(t, plan.ReasonFieldContested, degraded.Reason)
	assert.Contains(t, degraded.Message, `spec.template.spec.containers[name="app"].image`)
	assert.Contains(t, degraded.Message, `"kubectl-edit" (Update)`)
	assert.True(t, meta.IsStatusConditionTrue(status.Conditions, berthv1alpha1.ConditionAvailable),
		"the Deployment is still available")
}
