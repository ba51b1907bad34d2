package controller

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthfake "github.com/berthdev/berth/pkg/generated/clientset/versioned/fake"
	berthinformers "github.com/berthdev/berth/pkg/generated/informers/externalversions"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/plan/plantest"
)

// fixture is a controller on fake clientsets whose informer caches are filled by hand, as in sample-controller:
// a test puts the world in the caches, calls the sync directly and reads the actions the clients recorded.
type fixture struct {
	t           testing.TB
	ctx         context.Context
	kubeClient  *kubefake.Clientset
	berthClient *berthfake.Clientset
	recorder    *record.FakeRecorder
	controller  *Controller

	kubeFactory  kubeinformers.SharedInformerFactory
	berthFactory berthinformers.SharedInformerFactory
	config       *configInformers
}

// newFixture builds a controller whose clients and caches both hold the given objects.
func newFixture(t testing.TB, objects ...runtime.Object) *fixture {
	return newFixtureWithOptions(t, Options{}, objects...)
}

// splitObjects sorts objects into those of the kube clientset and those of berth's (Apps); the metadata of
// Secrets and ConfigMaps goes to neither.
func splitObjects(objects []runtime.Object) (kubeObjects, berthObjects []runtime.Object) {
	for _, obj := range objects {
		switch obj.(type) {
		case *berthv1alpha1.App:
			berthObjects = append(berthObjects, obj)
		case *metav1.PartialObjectMetadata:
			// The metadata of a Secret or ConfigMap: berth only ever reads it from its cache.
		default:
			kubeObjects = append(kubeObjects, obj)
		}
	}
	return kubeObjects, berthObjects
}

func newFixtureWithOptions(t testing.TB, opts Options, objects ...runtime.Object) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	kubeObjects, berthObjects := splitObjects(objects)
	f := &fixture{
		t:          t,
		ctx:        ctx,
		kubeClient: kubefake.NewClientset(kubeObjects...),
		// NewClientset's field-managed tracker has no schema for custom resources and refuses them
		// (kubernetes/kubernetes#126850); the simple tracker stores Apps as they are.
		berthClient: berthfake.NewSimpleClientset(berthObjects...),
		recorder:    record.NewFakeRecorder(100),
	}
	f.kubeFactory = kubeinformers.NewSharedInformerFactory(f.kubeClient, 0)
	f.berthFactory = berthinformers.NewSharedInformerFactory(f.berthClient, 0)
	answerAppAppliesAsSent(f.berthClient)
	// The fake kube clientset serves Ingresses; Gateway API's HTTPRoutes it does not.
	// The metadata informers of Secrets and ConfigMaps run on a fake client too; their caches are filled by hand.
	scheme := runtime.NewScheme()
	require.NoError(t, metav1.AddMetaToScheme(scheme))
	informers := Informers{{Namespace: metav1.NamespaceAll, Owned: f.kubeFactory, Berth: f.berthFactory,
		Config: newConfigInformers(metadatafake.NewSimpleMetadataClient(scheme), metav1.NamespaceAll, 0)}}
	f.config = informers[0].Config
	if opts.Route.Kind == plan.RouteKindIngress {
		informers[0].RouteKind = plan.RouteKindIngress
	}
	c, err := NewFromInformers(ctx, f.kubeClient, f.berthClient, informers, f.recorder, nil, opts)
	require.NoError(t, err)
	f.controller = c
	t.Cleanup(c.queue.ShutDown)

	for _, obj := range objects {
		if _, ok := obj.(*appsv1.ReplicaSet); ok {
			continue // berth does not cache ReplicaSets: it lists them when it needs them (rollback.go)
		}
		require.NoError(t, f.indexerFor(obj).Add(obj))
	}
	// The caches are filled by hand, as if the informers had listed: the workers may sync the Apps, which Run
	// otherwise lets them do once the informers have synced.
	for _, n := range c.namespaces {
		n.ready.Store(true)
	}
	return f
}

// answerAppAppliesAsSent makes client answer an apply of an App's status with the App as sent: the fake clientset
// cannot apply to custom resources (kubernetes/kubernetes#126850). The action is still recorded; the integration
// tests prove the real thing.
func answerAppAppliesAsSent(client *berthfake.Clientset) {
	client.PrependReactor("patch", "apps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		patch, ok := a.(k8stesting.PatchAction)
		if !ok || patch.GetPatchType() != types.ApplyPatchType {
			return false, nil, nil
		}
		var app berthv1alpha1.App
		if err := json.Unmarshal(patch.GetPatch(), &app); err != nil {
			return true, nil, err
		}
		return true, &app, nil
	})
}

func (f *fixture) indexerFor(obj runtime.Object) cache.Indexer {
	switch obj := obj.(type) {
	case *berthv1alpha1.App:
		return f.berthFactory.Berth().V1alpha1().Apps().Informer().GetIndexer()
	case *appsv1.Deployment:
		return f.kubeFactory.Apps().V1().Deployments().Informer().GetIndexer()
	case *corev1.Service:
		return f.kubeFactory.Core().V1().Services().Informer().GetIndexer()
	case *corev1.Pod:
		return f.kubeFactory.Core().V1().Pods().Informer().GetIndexer()
	case *policyv1.PodDisruptionBudget:
		return f.kubeFactory.Policy().V1().PodDisruptionBudgets().Informer().GetIndexer()
	case *autoscalingv2.HorizontalPodAutoscaler:
		return f.kubeFactory.Autoscaling().V2().HorizontalPodAutoscalers().Informer().GetIndexer()
	case *networkingv1.Ingress:
		return f.kubeFactory.Networking().V1().Ingresses().Informer().GetIndexer()
	case *metav1.PartialObjectMetadata:
		return f.config.informers[obj.Kind].GetIndexer()
	}
	f.t.Fatalf("no informer for %T", obj)
	return nil
}

// cacheCreated puts into the cache the object web of obj's kind, in namespace shop, as the client holds it: the
// cache has seen berth's create.
func (f *fixture) cacheCreated(obj runtime.Object) {
	f.t.Helper()
	var err error
	switch obj.(type) {
	case *policyv1.PodDisruptionBudget:
		obj, err = f.kubeClient.PolicyV1().PodDisruptionBudgets("shop").Get(f.ctx, "web", metav1.GetOptions{})
	case *autoscalingv2.HorizontalPodAutoscaler:
		obj, err = f.kubeClient.AutoscalingV2().HorizontalPodAutoscalers("shop").Get(f.ctx, "web", metav1.GetOptions{})
	default:
		f.t.Fatalf("cacheCreated: no client for %T", obj)
	}
	require.NoError(f.t, err)
	require.NoError(f.t, f.indexerFor(obj).Add(obj))
}

// sync runs one sync of the App web in namespace shop.
func (f *fixture) sync() error {
	return f.controller.syncApp(f.ctx, cache.NewObjectName("shop", "web"))
}

// action is what a test expects of one client call: verb, resource, subresource and object name.
type action struct {
	verb, resource, subresource, name string
}

// writes are the client calls that changed something, from both clients, in order.
func (f *fixture) writes() []action {
	var got []action
	for _, a := range append(f.kubeClient.Actions(), f.berthClient.Actions()...) {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		got = append(got, action{a.GetVerb(), a.GetResource().Resource, a.GetSubresource(), actionName(a)})
	}
	return got
}

func actionName(a k8stesting.Action) string {
	switch a := a.(type) {
	case k8stesting.CreateAction: // and UpdateAction, which has the same methods
		if obj, ok := a.GetObject().(metav1.Object); ok {
			return obj.GetName()
		}
	case k8stesting.PatchAction:
		return a.GetName()
	case k8stesting.DeleteAction:
		return a.GetName()
	}
	return ""
}

// patchType is the patch type of the first patch on resource/subresource, for telling an apply from other patches.
func (f *fixture) patchType(resource, subresource string) types.PatchType {
	for _, a := range append(f.kubeClient.Actions(), f.berthClient.Actions()...) {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetResource().Resource == resource && a.GetSubresource() == subresource {
			return p.GetPatchType()
		}
	}
	return ""
}

// events drains the Events recorded so far.
func (f *fixture) events() []string {
	var got []string
	for {
		select {
		case e := <-f.recorder.Events:
			got = append(got, e)
		default:
			return got
		}
	}
}

// converged returns the App with a status as berth would have written it, and its Deployment and Service as
// berth applied them, with berth's managedFields, so that nothing remains to be done.
func converged(t testing.TB, app *berthv1alpha1.App) (*berthv1alpha1.App, *appsv1.Deployment, *corev1.Service) {
	t.Helper()
	d := applied(t, app)
	var s *corev1.Service
	if desired := plan.Service(app); desired != nil {
		client := kubefake.NewClientset()
		var err error
		hash, err := desiredHash(desired)
		require.NoError(t, err)
		desired.WithAnnotations(map[string]string{AnnotationAppliedFrom: hash})
		s, err = client.CoreV1().Services(app.Namespace).Apply(context.Background(), desired,
			metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		require.NoError(t, err)
	}
	app = app.DeepCopy()
	app.Status = plan.Status(app, plan.Observed{Deployment: d}, "cluster.local", metav1.NewTime(time.Now().Add(-time.Hour)))
	return app, d, s
}

// budgetOf is the App's PodDisruptionBudget as berth applied it, with berth's managedFields: an App of the
// tests' usual 3 replicas has one.
func budgetOf(t testing.TB, app *berthv1alpha1.App) *policyv1.PodDisruptionBudget {
	t.Helper()
	desired := plan.PodDisruptionBudget(app)
	require.NotNil(t, desired, "the App has no disruption budget")
	desired.WithAnnotations(map[string]string{AnnotationAppliedFrom: hashOf(t, desired)})
	b, err := kubefake.NewClientset().PolicyV1().PodDisruptionBudgets(app.Namespace).Apply(context.Background(),
		desired, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	require.NoError(t, err)
	return b
}

// applied is the App's Deployment as berth applied it, rolled out: it carries berth's managedFields entry, as a
// Deployment from the API server does.
func applied(t testing.TB, app *berthv1alpha1.App) *appsv1.Deployment {
	t.Helper()
	client := kubefake.NewClientset()
	desired := plan.Deployment(app)
	hash, err := desiredHash(desired)
	require.NoError(t, err)
	// As berth applies it: marked with the hash of what it applied (contest.go).
	desired.WithAnnotations(map[string]string{AnnotationAppliedFrom: hash})
	d, err := client.AppsV1().Deployments(app.Namespace).Apply(context.Background(), desired,
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	require.NoError(t, err)
	require.NotEmpty(t, d.ManagedFields, "the fake clientset should record berth's apply in managedFields")
	d.UID = "uid-deployment"
	d.Status = plantest.DeploymentStatus().Status
	d.Generation, d.Status.ObservedGeneration = 1, 1
	return d
}

// hashOf is desiredHash, for tests.
func hashOf(t testing.TB, desired any) string {
	t.Helper()
	hash, err := desiredHash(desired)
	require.NoError(t, err)
	return hash
}
