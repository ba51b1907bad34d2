package controller

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthfake "github.com/berthdev/berth/pkg/generated/clientset/versioned/fake"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// inNamespace puts the App in namespace.
func inNamespace(namespace string) func(*berthv1alpha1.App) {
	return func(a *berthv1alpha1.App) { a.Namespace = namespace }
}

// namespacesFixture is a controller on fake clientsets that watches the namespaces of a list.
type namespacesFixture struct {
	ctx         context.Context
	kubeClient  *kubefake.Clientset
	berthClient *berthfake.Clientset
	informers   Informers
	controller  *Controller
}

func newNamespacesFixture(t *testing.T, namespaces []string, objects ...runtime.Object) *namespacesFixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	kubeObjects, berthObjects := splitObjects(objects)
	f := &namespacesFixture{
		ctx:         ctx,
		kubeClient:  kubefake.NewClientset(kubeObjects...),
		berthClient: berthfake.NewSimpleClientset(berthObjects...),
	}
	answerAppAppliesAsSent(f.berthClient)
	f.informers = NewInformers(f.kubeClient, f.berthClient, InformerOptions{Namespaces: namespaces})
	c, err := NewFromInformers(ctx, f.kubeClient, f.berthClient, f.informers, record.NewFakeRecorder(100), nil,
		Options{})
	require.NoError(t, err)
	f.controller = c
	t.Cleanup(c.queue.ShutDown)
	return f
}

// start runs the informers until the test ends.
func (f *namespacesFixture) start(t *testing.T) {
	ctx, cancel := context.WithCancel(f.ctx)
	f.informers.Start(ctx)
	t.Cleanup(func() {
		cancel()
		f.informers.Shutdown()
	})
}

// fill puts obj in the cache of its kind of the informers of namespace, as if they had listed it.
func (f *namespacesFixture) fill(t *testing.T, namespace string, obj runtime.Object) {
	t.Helper()
	for _, n := range f.informers {
		if n.Namespace != namespace {
			continue
		}
		var informer cache.SharedIndexInformer
		switch obj.(type) {
		case *berthv1alpha1.App:
			informer = n.Berth.Berth().V1alpha1().Apps().Informer()
		case *appsv1.Deployment:
			informer = n.Owned.Apps().V1().Deployments().Informer()
		case *corev1.Service:
			informer = n.Owned.Core().V1().Services().Informer()
		case *corev1.Pod:
			informer = n.Owned.Core().V1().Pods().Informer()
		case *policyv1.PodDisruptionBudget:
			informer = n.Owned.Policy().V1().PodDisruptionBudgets().Informer()
		}
		require.NoError(t, informer.GetIndexer().Add(obj))
		return
	}
	t.Fatalf("no informers for namespace %q", namespace)
}

func TestNewInformersMakesAPairPerNamespace(t *testing.T) {
	kubeClient, berthClient := kubefake.NewClientset(), berthfake.NewSimpleClientset()

	all := NewInformers(kubeClient, berthClient, InformerOptions{})
	require.Len(t, all, 1)
	assert.Equal(t, metav1.NamespaceAll, all[0].Namespace, "no namespace: one pair for all")

	list := NewInformers(kubeClient, berthClient, InformerOptions{Namespaces: []string{"a", "b"}})
	require.Len(t, list, 2)
	assert.Equal(t, "a", list[0].Namespace)
	assert.Equal(t, "b", list[1].Namespace)
	assert.NotSame(t, list[0].Owned, list[1].Owned, "a factory per namespace")
}

func TestInformersThatWouldAnswerANamespaceTwiceAreRefused(t *testing.T) {
	kubeClient, berthClient := kubefake.NewClientset(), berthfake.NewSimpleClientset()
	_, ctx := ktesting.NewTestContext(t)
	for name, informers := range map[string]Informers{
		"a namespace twice": NewInformers(kubeClient, berthClient, InformerOptions{Namespaces: []string{"a", "b", "a"}}),
		"all namespaces and one": append(NewInformers(kubeClient, berthClient, InformerOptions{}),
			NewInformers(kubeClient, berthClient, InformerOptions{Namespaces: []string{"a"}})...),
		"none": {},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewFromInformers(ctx, kubeClient, berthClient, informers, record.NewFakeRecorder(1), nil,
				Options{})
			assert.Error(t, err)
		})
	}
}

func TestListersOfAListReadTheInformersOfTheNamespaceTheyName(t *testing.T) {
	f := newNamespacesFixture(t, []string{"a", "b"})
	for _, namespace := range []string{"a", "b"} {
		app, d, s := converged(t, plantest.NewApp(inNamespace(namespace), plantest.WithPort(8080)))
		f.fill(t, namespace, app)
		f.fill(t, namespace, d)
		f.fill(t, namespace, budgetOf(t, app))
		f.fill(t, namespace, s)
		f.fill(t, namespace, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: namespace,
			Labels: map[string]string{plan.LabelInstance: "web", plan.LabelManagedBy: plan.ManagedByBerth}}})
	}
	c := f.controller

	for _, namespace := range []string{"a", "b"} {
		app, err := c.appLister.Apps(namespace).Get("web")
		require.NoError(t, err)
		assert.Equal(t, namespace, app.Namespace)
		d, found, err := c.deploymentKind.cached(namespace, "web")
		require.NoError(t, err)
		require.True(t, found)
		assert.Equal(t, namespace, d.Namespace)
		owned, err := c.ownedVersions(cache.NewObjectName(namespace, "web"))
		require.NoError(t, err)
		filled := map[string]bool{"deployments": true, "services": true, "poddisruptionbudgets": true}
		for i, k := range c.owned {
			assert.Equal(t, filled[k.resourceName()], owned[i].exists, "the App's %s", k.resourceName())
		}
		pods, err := c.appPods(cache.NewObjectName(namespace, "web"))
		require.NoError(t, err)
		require.Len(t, pods, 1)
		assert.Equal(t, namespace, pods[0].Namespace)
	}

	// A namespace that is not on the list holds nothing.
	_, err := c.appLister.Apps("c").Get("web")
	assert.True(t, apierrors.IsNotFound(err), "an App of another namespace: %v", err)
	_, found, err := c.deploymentKind.cached("c", "web")
	require.NoError(t, err)
	assert.False(t, found, "a Deployment of another namespace")
	owned, err := c.ownedVersions(cache.NewObjectName("c", "web"))
	require.NoError(t, err)
	for i, k := range c.owned {
		assert.False(t, owned[i].exists, "an object of another namespace: %s", k.resourceName())
	}
	pods, err := c.appPods(cache.NewObjectName("c", "web"))
	require.NoError(t, err)
	assert.Empty(t, pods)

	// List, which berth_apps counts with, reads every namespace.
	for name, lister := range map[string]interface {
		List(labels.Selector) ([]*berthv1alpha1.App, error)
	}{"the controller's": c.appLister, "the informers'": f.informers.AppLister()} {
		apps, err := lister.List(labels.Everything())
		require.NoError(t, err)
		var namespaces []string
		for _, app := range apps {
			namespaces = append(namespaces, app.Namespace)
		}
		assert.ElementsMatch(t, []string{"a", "b"}, namespaces, name)
	}
}

func TestOneNamespaceOrAllIsReadThroughTheInformersOwnListers(t *testing.T) {
	for _, namespaces := range [][]string{nil, {"a"}} {
		f := newNamespacesFixture(t, namespaces)
		_, routed := f.controller.appLister.(appListers)
		assert.False(t, routed, "%q: the informer's own App lister, as before lists of namespaces", namespaces)
		_, routed = f.informers.AppLister().(appListers)
		assert.False(t, routed, "%q: berth_apps reads the informer's own lister", namespaces)
	}
}

// TestAListOfNamespacesIsWatchedAndNoOther runs the controller on the namespaces a and b: it makes the Apps of
// both, and asks the API server nothing of namespace c, nor of all namespaces.
func TestAListOfNamespacesIsWatchedAndNoOther(t *testing.T) {
	f := newNamespacesFixture(t, []string{"a", "b"},
		plantest.NewApp(inNamespace("a")), plantest.NewApp(inNamespace("b")), plantest.NewApp(inNamespace("c")))
	f.start(t)
	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- f.controller.Run(f.ctx, stop, 2) }()

	for _, namespace := range []string{"a", "b"} {
		require.Eventually(t, func() bool {
			_, err := f.kubeClient.AppsV1().Deployments(namespace).Get(f.ctx, "web", metav1.GetOptions{})
			return err == nil
		}, 10*time.Second, 10*time.Millisecond, "the Deployment of the App of namespace %s", namespace)
	}
	// An App created while berth runs reaches it through the watch of its namespace.
	_, err := f.berthClient.BerthV1alpha1().Apps("b").Create(f.ctx, plantest.NewApp(inNamespace("b"), func(a *berthv1alpha1.App) {
		a.Name, a.UID = "api", "uid-api"
	}), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := f.kubeClient.AppsV1().Deployments("b").Get(f.ctx, "api", metav1.GetOptions{})
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the Deployment of the App created in b while berth runs")
	close(stop)
	require.NoError(t, <-done)

	// Every request, the test's own reads included, was in a or b.
	watched := map[string]bool{}
	for _, a := range append(f.kubeClient.Actions(), f.berthClient.Actions()...) {
		assert.Contains(t, []string{"a", "b"}, a.GetNamespace(), "%s %s in namespace %q",
			a.GetVerb(), a.GetResource().Resource, a.GetNamespace())
		if a.GetVerb() == "watch" {
			watched[a.GetNamespace()+" "+a.GetResource().Resource] = true
		}
	}
	for _, namespace := range []string{"a", "b"} {
		for _, resource := range []string{"apps", "deployments", "services", "pods"} {
			assert.True(t, watched[namespace+" "+resource], "%s of namespace %s are watched", resource, namespace)
		}
	}
	_, err = f.kubeClient.AppsV1().Deployments("c").Get(f.ctx, "web", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the App of namespace c is left alone: %v", err)
}

// TestANamespaceThatCannotBeListedHoldsUpOnlyItself: with namespaces a and b, and the Pods of b forbidden (its
// RoleBinding missing), the App of a converges while b's waits; the controller is not synced, and says that b
// is why, with the API server's refusal. When the Pods of b can be listed again, its App converges too, without
// a restart.
func TestANamespaceThatCannotBeListedHoldsUpOnlyItself(t *testing.T) {
	f := newNamespacesFixture(t, []string{"a", "b"}, plantest.NewApp(inNamespace("a")), plantest.NewApp(inNamespace("b")))
	var forbidden, refused atomic.Bool
	forbidden.Store(true)
	f.kubeClient.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "b" && forbidden.Load() {
			refused.Store(true)
			return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("no RoleBinding"))
		}
		return false, nil, nil
	})
	f.start(t)
	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- f.controller.Run(f.ctx, stop, 2) }()

	deploymentOf := func(namespace string) func() bool {
		return func() bool {
			_, err := f.kubeClient.AppsV1().Deployments(namespace).Get(f.ctx, "web", metav1.GetOptions{})
			return err == nil
		}
	}
	require.Eventually(t, deploymentOf("a"), 10*time.Second, 10*time.Millisecond,
		"the App of namespace a converges while b cannot be listed")
	require.True(t, refused.Load(), "the list of the Pods of b was refused")
	assert.False(t, deploymentOf("b")(), "the App of namespace b waits: berth's caches of b are incomplete")
	assert.False(t, f.controller.HasSynced(), "not synced while the Pods of namespace b cannot be listed")
	notSynced := f.controller.NotSynced()
	require.Len(t, notSynced, 1)
	assert.Equal(t, "b", notSynced[0].Namespace)
	assert.ErrorContains(t, notSynced[0].Err, "no RoleBinding", "the API server's refusal")

	forbidden.Store(false)
	// The informer lists again after a backoff (800 ms, doubling).
	require.Eventually(t, deploymentOf("b"), 30*time.Second, 10*time.Millisecond,
		"the App of namespace b converges once its Pods can be listed")
	assert.True(t, f.controller.HasSynced())
	assert.Empty(t, f.controller.NotSynced())
	close(stop)
	require.NoError(t, <-done)
}
