package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// workload creates and changes the Apps of one namespace, as their users would, with the cluster's admin
// client. The Apps vary: two of three have a port (and so a Service), one of five asks for two replicas. The
// changes are of every kind that makes berth write: a new image (the Deployment is changed, and berth takes
// over the fields of its create first: see pkg/controller/ownership.go), another replica count, and a port
// added or removed (a Service created or deleted).
type workload struct {
	namespace string
	random    *rand.Rand
	// names are the Apps created, in order.
	names []string
	// changes counts the changes made.
	changes int
}

func newWorkload(namespace string, random *rand.Rand) *workload {
	return &workload{namespace: namespace, random: random}
}

// newApp is the i-th App of the workload.
func (w *workload) newApp(i int) *berthv1alpha1.App {
	app := &berthv1alpha1.App{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%04d", i)},
		Spec: berthv1alpha1.AppSpec{
			Image:    "registry.example/chaos:v1",
			Replicas: ptr.To[int32](1),
		},
	}
	if i%3 != 0 {
		app.Spec.Port = ptr.To[int32](8080)
	}
	if i%5 == 0 {
		app.Spec.Replicas = ptr.To[int32](2)
	}
	return app
}

// create creates n more Apps.
func (w *workload) create(ctx context.Context, n int) error {
	for range n {
		app := w.newApp(len(w.names))
		_, err := berthClient.BerthV1alpha1().Apps(w.namespace).Create(ctx, app, metav1.CreateOptions{})
		// An earlier create whose answer was lost may have landed.
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating App %s: %w", app.Name, err)
		}
		w.names = append(w.names, app.Name)
	}
	return nil
}

// change changes n of the Apps created so far, chosen at random (the same App may be chosen twice).
func (w *workload) change(ctx context.Context, n int) error {
	if len(w.names) == 0 {
		return nil
	}
	for range n {
		name := w.names[w.random.IntN(len(w.names))]
		kind := w.random.IntN(3)
		apps := berthClient.BerthV1alpha1().Apps(w.namespace)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			app, err := apps.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			switch kind {
			case 0:
				app.Spec.Image = fmt.Sprintf("registry.example/chaos:v%d", w.changes+2)
			case 1:
				app.Spec.Replicas = ptr.To(3 - ptr.Deref(app.Spec.Replicas, 1)) // 1 <-> 2
			default:
				if app.Spec.Port == nil {
					app.Spec.Port = ptr.To[int32](8080)
				} else {
					app.Spec.Port = nil
				}
			}
			_, err = apps.Update(ctx, app, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("changing App %s: %w", name, err)
		}
		w.changes++
	}
	return nil
}

// createForeign creates a Deployment and a Service that are not berth's, beside the Apps: berth must never touch
// them (check verifies that no field of theirs is berth's).
func createForeign(t *testing.T, namespace string) {
	t.Helper()
	labels := map[string]string{"app.kubernetes.io/name": "foreign"}
	_, err := kubeClient.AppsV1().Deployments(namespace).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.example/foreign:v1"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kubeClient.CoreV1().Services(namespace).Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign", Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// part is the size of the i-th of parts near-equal parts of n.
func part(n, parts, i int) int {
	return n*(i+1)/parts - n*i/parts
}
