package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDriftIsUndoneEveryTime changes the image of an App's Deployment by hand, twice: berth puts it back each
// time, and says each time whose change it undid. `kubectl describe app` lists those Events as a person reads
// them: oldest first, the repeated correction counted and placed where it last happened.
func TestDriftIsUndoneEveryTime(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, appManifest("drifting", goodImage, 1, 0))
	waitAvailable(t, ns, "drifting", 1)

	for i := range 2 {
		kubectl(t, "set", "image", "deployment/drifting", "app=evil:"+fmt.Sprint(i), "--namespace="+ns)
		eventually(t, "berth to put the image back", func(ctx context.Context) error {
			d, err := kubeClient.AppsV1().Deployments(ns).Get(ctx, "drifting", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if image := d.Spec.Template.Spec.Containers[0].Image; image != goodImage {
				return fmt.Errorf("image is %s", image)
			}
			return nil
		})
	}
	eventually(t, "Reverted Events counting two corrections, naming kubectl", func(ctx context.Context) error {
		events, err := kubeClient.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		// One Event counted twice (the recorder counts an Event that repeats word for word), or two.
		var reverts int32
		for _, e := range events.Items {
			if e.InvolvedObject.Name != "drifting" || e.Reason != "Reverted" {
				continue
			}
			if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, `by "kubectl-set" (Update)`) {
				return fmt.Errorf("a %s Event %q: want a Warning that names kubectl-set", e.Type, e.Message)
			}
			reverts += max(e.Count, 1)
		}
		if reverts < 2 {
			return fmt.Errorf("%d Reverted Events about App drifting", reverts)
		}
		return nil
	})

	// What a person reads: the Events oldest first, each where it last happened, the repeats counted.
	out := kubectl(t, "describe", "app.berth.dev/drifting", "--namespace="+ns)
	t.Logf("kubectl describe app.berth.dev/drifting:\n%s", out)
	rows := describedEvents(t, out)
	require.GreaterOrEqual(t, len(rows), 2, "kubectl describe:\n%s", out)
	first, last := rows[0], rows[len(rows)-1]
	assert.Equal(t, []string{"Normal", "Created"}, first[:2], "the first Event is the oldest:\n%s", out)
	assert.Equal(t, []string{"Warning", "Reverted"}, last[:2], "the last Event is the newest:\n%s", out)
	assert.Contains(t, last[2], "(x2 over", "the Reverted Event counts both corrections:\n%s", out)
	for i := 1; i < len(rows); i++ {
		assert.LessOrEqual(t, age(t, rows[i][2]), age(t, rows[i-1][2]), "oldest first:\n%s", out)
	}
}

// describedEvents returns the rows of the Events table that `kubectl describe` prints last: type, reason, age,
// from, message. The columns are aligned with two spaces or more; a cell has single spaces at most.
func describedEvents(t *testing.T, out string) [][]string {
	t.Helper()
	_, table, found := strings.Cut(out, "\nEvents:\n")
	require.True(t, found, "kubectl describe prints Events:\n%s", out)
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(table), "\n")[2:] { // after the heading and the rule
		cells := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), 5)
		require.Len(t, cells, 5, "an Event row of kubectl describe: %q", line)
		rows = append(rows, cells)
	}
	return rows
}

// age reads the Age column of kubectl describe, "5s" or "2m3s (x2 over 4m)", as the time since the Event last
// happened.
func age(t *testing.T, cell string) time.Duration {
	t.Helper()
	last, _, _ := strings.Cut(cell, " ")
	d, err := time.ParseDuration(last)
	require.NoError(t, err, "the age %q", cell)
	return d
}
