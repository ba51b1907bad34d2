package controller

import (
	"context"
	"fmt"
	"testing"

	"github.com/berthdev/berth/pkg/plan/plantest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
)

// TestEventRecorderWritesWhatWasRecordedBeforeItStops: the Events of the syncs that drain after a shutdown
// signal are recorded after the signal, just before the recorder stops; they must be written all the same.
func TestEventRecorderWritesWhatWasRecordedBeforeItStops(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := kubefake.NewClientset()
	signalled, signal := context.WithCancel(ctx)
	recorder, stop, err := NewEventRecorder(signalled, client)
	require.NoError(t, err)

	signal()
	const n = 20
	for i := range n {
		app := plantest.NewApp()
		app.Name = fmt.Sprintf("web-%d", i) // distinct Events, not one Event counted 20 times
		recorder.Eventf(app, corev1.EventTypeNormal, "Created", "Created Deployment %q", app.Name)
	}
	stop()

	written, err := client.CoreV1().Events("shop").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, written.Items, n, "every Event recorded before stop is written")
}
