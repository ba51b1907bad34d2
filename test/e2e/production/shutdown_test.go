package production

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEventsOfDrainedSyncsAreKept stops berth (SIGTERM) while it is busy: the syncs under way drain, and each
// object they created must still get its Created Event, since that Event is how a user learns what berth did.
// Events are written asynchronously, after the sync that records them: they must be flushed once the workers
// have stopped, not dropped with the signal.
func TestEventsOfDrainedSyncsAreKept(t *testing.T) {
	applyShippedManifests(t)
	kubeconfig := tokenKubeconfig(t, "berth-system", "berth")
	ns := newNamespace(t, "drain", nil)
	// A low client limit makes every request wait for the client's rate limiter, so that when the signal comes
	// several syncs are under way and Events are still waiting to be written. No leader election: the signal
	// reaches a process that is working, not one that is still campaigning.
	berth := startReplica(t, "berth", kubeconfig, "--namespace="+ns, "--kube-api-qps=5", "--kube-api-burst=5")
	berth.waitReady(t)

	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprintf("app-%d", i+1)
	}
	createApps(t, ns, names...)
	eventually(t, "berth to create a first Deployment", timeout, func(ctx context.Context) error {
		deployments, err := kubeClient.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(deployments.Items) == 0 {
			return errors.New("no Deployment yet")
		}
		return nil
	})

	require.NoError(t, berth.Signal(syscall.SIGTERM))
	expectExit(t, berth, time.Minute, func(code int) bool { return code == 0 }, "0")

	// berth is gone: what it created is final, and so must be its Events. The short wait is for the API
	// server's list to show the last of them.
	var summary string
	eventually(t, "a Created Event about the App for every object berth created", 15*time.Second, func(ctx context.Context) error {
		var err error
		summary, err = missingCreatedEvents(ctx, ns)
		return err
	})
	t.Log(summary)
}

// missingCreatedEvents compares the Deployments and Services that Apps control with berth's Normal Created
// Events about those Apps (events.k8s.io/v1: regarding the App, the note naming the object). It returns a summary
// of the counts, and an error that names what has no Event.
func missingCreatedEvents(ctx context.Context, namespace string) (string, error) {
	var created []string // `Deployment "app-3"` about App app-3, as berth's note words it
	owners := map[string]string{}
	deployments, err := kubeClient.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, d := range deployments.Items {
		if ref := metav1.GetControllerOf(&d); ref != nil && ref.Kind == "App" {
			object := fmt.Sprintf("Deployment %q", d.Name)
			created, owners[object] = append(created, object), ref.Name
		}
	}
	nDeployments := len(created)
	services, err := kubeClient.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, s := range services.Items {
		if ref := metav1.GetControllerOf(&s); ref != nil && ref.Kind == "App" {
			object := fmt.Sprintf("Service %q", s.Name)
			created, owners[object] = append(created, object), ref.Name
		}
	}
	if nDeployments == 0 {
		return "", errors.New("no Deployment is controlled by an App")
	}

	events, err := kubeClient.EventsV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	var missing []string
	withEvents := map[string]int{}
	for _, object := range created {
		found := false
		for _, e := range events.Items {
			if e.Type == "Normal" && e.Reason == "Created" && e.Regarding.Kind == "App" &&
				e.Regarding.Name == owners[object] && strings.Contains(e.Note, object) {
				found = true
				break
			}
		}
		kind, _, _ := strings.Cut(object, " ")
		if found {
			withEvents[kind]++
		} else {
			missing = append(missing, object)
		}
	}
	summary := fmt.Sprintf("berth created %d Deployments and %d Services before it exited; Created Events about "+
		"their Apps: %d for Deployments, %d for Services", nDeployments, len(created)-nDeployments,
		withEvents["Deployment"], withEvents["Service"])
	if len(missing) > 0 {
		return summary, fmt.Errorf("%s; without their Event: %s", summary, strings.Join(missing, ", "))
	}
	return summary, nil
}
