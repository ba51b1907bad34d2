package controller

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	gatewayversioned "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"

	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	berthinformers "github.com/berthdev/berth/pkg/generated/informers/externalversions"
	berthlisters "github.com/berthdev/berth/pkg/generated/listers/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
	"github.com/berthdev/berth/pkg/shard"
)

// Informers are the shared informer factories berth reads the cluster through: one pair for all namespaces (or
// for one), or one pair for each namespace of a list. client-go's informers watch one namespace or all of them;
// with a pair per namespace berth lists and watches in those namespaces only, and needs a Role in each rather
// than a ClusterRole. Each namespace of a list costs its four informers, however few objects it holds: four
// watches, 40 goroutines and about 0.5 MiB (measured against kube-apiserver; half of the heap is the gzip readers
// of the watches). An object costs the same in any informer.
//
// berth caches what it owns and nothing else: a cluster's other Deployments, Services and Pods, however many its
// tenants make, cost berth no memory. An object of an App's name that is not berth's is found when berth's create
// of it fails (see syncOwned).
type Informers []NamespaceInformers

// NamespaceInformers are the informer factories of one namespace, or of all.
type NamespaceInformers struct {
	// Namespace is the namespace the factories watch; metav1.NamespaceAll ("") for all.
	Namespace string
	// Owned serves berth's Deployments, Services, Pods and the other kinds of Kubernetes' own API that an App
	// owns: those labelled app.kubernetes.io/managed-by=berth.
	Owned kubeinformers.SharedInformerFactory
	// Berth serves Apps.
	Berth berthinformers.SharedInformerFactory
	// Gateway serves berth's HTTPRoutes, when the Apps' routes are HTTPRoutes; nil otherwise.
	Gateway gatewayinformers.SharedInformerFactory
	// RouteKind is the kind of the Apps' routes that the factories serve (plan.RouteKindHTTPRoute or
	// plan.RouteKindIngress), or "" when the cluster does not serve the kind berth makes them of.
	RouteKind string
	// Config watches the metadata of the Secrets and ConfigMaps (config.go); nil when berth does not.
	Config *configInformers
}

// InformerOptions say what berth's informers watch.
type InformerOptions struct {
	// Namespaces are the namespaces to watch, each with factories of its own; none for all namespaces.
	Namespaces []string
	// Resync is how often the informers hand every object to the handlers again.
	Resync time.Duration
	// RouteKind is the kind of the Apps' routes: plan.RouteKindHTTPRoute (watched through GatewayClient) or
	// plan.RouteKindIngress, or "" when the cluster does not serve the kind berth makes them of.
	RouteKind     string
	GatewayClient gatewayversioned.Interface
	// MetadataClient, when not nil, watches the metadata of Secrets and ConfigMaps, whose changes roll out the
	// Apps that read them.
	MetadataClient metadata.Interface
	// Buckets, when not nil, narrows the Apps and what they own to those of these buckets (--sharding): the
	// informers select them by shard.Label. It must not be empty.
	Buckets *shard.Set
	// ServerShards selects the Apps of Buckets by the API server's shard selector over their UIDs (KEP-5866)
	// rather than by their label, so that an App is seen by its member before it is labelled. Only for an API
	// server that applies shard selectors (ServerFiltersShards).
	ServerShards bool
}

// NewInformers builds berth's informer factories: a set for each namespace of opts, which must differ, or one
// for all namespaces when there are none. Every cache drops what berth never reads: the managedFields of other
// managers (see TrimManagedFields; an App keeps none), and most of a Pod (see TrimPod).
func NewInformers(kubeClient kubernetes.Interface, berthClient versioned.Interface, opts InformerOptions) Informers {
	namespaces := opts.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	ownedOptions, appOptions := OwnedListOptions, func(*metav1.ListOptions) {}
	if opts.Buckets != nil {
		ownedOptions, appOptions = bucketListOptions(*opts.Buckets, opts.ServerShards)
	}
	informers := make(Informers, 0, len(namespaces))
	for _, namespace := range namespaces {
		n := NamespaceInformers{
			Namespace: namespace,
			Owned: kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, opts.Resync,
				kubeinformers.WithNamespace(namespace),
				kubeinformers.WithTweakListOptions(ownedOptions),
				kubeinformers.WithTransform(trimOwned)),
			Berth: berthinformers.NewSharedInformerFactoryWithOptions(berthClient, opts.Resync,
				berthinformers.WithNamespace(namespace),
				berthinformers.WithTweakListOptions(appOptions),
				berthinformers.WithTransform(trimApp)),
			RouteKind: opts.RouteKind,
		}
		if opts.RouteKind == plan.RouteKindHTTPRoute {
			n.Gateway = gatewayinformers.NewSharedInformerFactoryWithOptions(opts.GatewayClient, opts.Resync,
				gatewayinformers.WithNamespace(namespace),
				gatewayinformers.WithTweakListOptions(ownedOptions),
				gatewayinformers.WithTransform(TrimManagedFields))
		}
		if opts.MetadataClient != nil {
			n.Config = newConfigInformers(opts.MetadataClient, namespace, opts.Resync)
		}
		informers = append(informers, n)
	}
	return informers
}

// Start starts the informers that were asked for; they run until ctx is done.
func (i Informers) Start(ctx context.Context) {
	for _, n := range i {
		n.Owned.Start(ctx.Done())
		n.Berth.Start(ctx.Done())
		if n.Gateway != nil {
			n.Gateway.Start(ctx.Done())
		}
		if n.Config != nil {
			n.Config.start(ctx)
		}
	}
}

// Shutdown waits for the informers' goroutines to end; call it after ctx of Start is done.
func (i Informers) Shutdown() {
	for _, n := range i {
		n.Owned.Shutdown()
		n.Berth.Shutdown()
		if n.Gateway != nil {
			n.Gateway.Shutdown()
		}
		if n.Config != nil {
			n.Config.shutdown()
		}
	}
}

// AppLister reads the Apps of every namespace the informers watch.
func (i Informers) AppLister() berthlisters.AppLister {
	return newAppLister(i.sets())
}

// sets are berth's informers, taken from the factories: a set per namespace.
func (i Informers) sets() []informerSet {
	sets := make([]informerSet, 0, len(i))
	for _, n := range i {
		set := informerSet{
			namespace: n.Namespace,
			apps:      n.Berth.Berth().V1alpha1().Apps(),
			pods:      n.Owned.Core().V1().Pods(),
			owned:     ownedInformers(n),
		}
		if n.Config != nil {
			set.config = n.Config.informers
		}
		sets = append(sets, set)
	}
	return sets
}

// NewFromInformers is New with berth's own informers taken from the factories, a set per namespace.
func NewFromInformers(ctx context.Context, kubeClient kubernetes.Interface, berthClient versioned.Interface,
	informers Informers, recorder record.EventRecorder, metrics Metrics, opts Options) (*Controller, error) {
	return newController(ctx, kubeClient, berthClient, informers.sets(), recorder, metrics, opts)
}

// OwnedListOptions narrows an informer to the objects berth labelled as its own, so that its cache holds only
// them rather than every object of the cluster.
func OwnedListOptions(options *metav1.ListOptions) {
	options.LabelSelector = labels.SelectorFromSet(labels.Set{plan.LabelManagedBy: plan.ManagedByBerth}).String()
}

// bucketListOptions narrow the informers of owned objects, and of Apps, to those of buckets: a member's share of
// the Apps (--sharding). berth sets the bucket label on what it makes; an App's is set by the assigner, or, with
// server, the API server hashes the App's UID itself. What berth makes has a UID of its own, and only the label
// ties it to its App's bucket.
func bucketListOptions(buckets shard.Set, server bool) (owned, apps func(*metav1.ListOptions)) {
	labelSelector, _ := buckets.LabelSelector()
	owned = func(options *metav1.ListOptions) {
		OwnedListOptions(options)
		options.LabelSelector += "," + labelSelector
	}
	apps = func(options *metav1.ListOptions) { options.LabelSelector = labelSelector }
	if server {
		shardSelector, _ := buckets.ServerSelector()
		apps = func(options *metav1.ListOptions) { options.ShardSelector = shardSelector }
	}
	return owned, apps
}

// ServerFiltersShards asks the API server whether it applies shard selectors to lists of Apps in namespace (""
// for all). A server without the feature gate ShardedListAndWatch ignores the selector and answers with every
// App. The answer's shardInfo, which echoes the selector applied, would tell, but kube-apiserver 1.37 leaves it
// out of lists of custom resources, which it filters all the same (test/integration). So berth asks for the
// Apps of one hash value of the 2^64, which no App has: a server that answers with an App ignored the selector.
// Without any App to answer with, the question has no answer: known is false, and berth selects by label.
func ServerFiltersShards(ctx context.Context, client versioned.Interface, namespace string) (filters, known bool,
	err error) {
	apps := client.BerthV1alpha1().Apps(namespace)
	none := "shardRange(object.metadata.uid, '0x0000000000000000', '0x0000000000000001')"
	list, err := apps.List(ctx, metav1.ListOptions{Limit: 1, ShardSelector: none})
	switch {
	case err != nil:
		return false, false, fmt.Errorf("asking the API server whether it applies shard selectors: %w", err)
	case list.ShardInfo != nil:
		return true, true, nil
	case len(list.Items) > 0:
		return false, true, nil
	}
	if list, err = apps.List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return false, false, fmt.Errorf("asking the API server whether it applies shard selectors: %w", err)
	}
	return len(list.Items) > 0, len(list.Items) > 0, nil
}

// podsByApp is the name of the Pod cache's index by App: a sync reads the App's Pods from it rather than
// matching a selector against every Pod of the namespace.
const podsByApp = "app"

// indexPodByApp indexes one of berth's Pods under "namespace/app", the App named by its instance label.
func indexPodByApp(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("indexing Pods by App: got %T", obj)
	}
	name := pod.Labels[plan.LabelInstance]
	if name == "" {
		return nil, nil
	}
	return []string{cache.NewObjectName(pod.Namespace, name).String()}, nil
}

func trimOwned(obj any) (any, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		return TrimPod(pod), nil
	}
	return TrimManagedFields(obj)
}

// TrimPod keeps of a Pod what berth reads, before the Pod enters the cache: its identity, labels and deletion, its
// phase, and of its containers the waiting reasons, restart counts and latest exits (see plan.PodFailure). A Pod's spec
// and most of its status are most of its size, and the App's status reads the replica counts from the Deployment.
func TrimPod(pod *corev1.Pod) *corev1.Pod {
	trimmed := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			Labels:            pod.Labels,
			DeletionTimestamp: pod.DeletionTimestamp,
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	trimmed.Status.InitContainerStatuses = trimContainerStatuses(pod.Status.InitContainerStatuses)
	trimmed.Status.ContainerStatuses = trimContainerStatuses(pod.Status.ContainerStatuses)
	return trimmed
}

func trimContainerStatuses(statuses []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(statuses) == 0 {
		return nil
	}
	trimmed := make([]corev1.ContainerStatus, len(statuses))
	for i, s := range statuses {
		trimmed[i] = corev1.ContainerStatus{Name: s.Name, Ready: s.Ready, RestartCount: s.RestartCount}
		if w := s.State.Waiting; w != nil {
			trimmed[i].State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason}
			// Of the waiting messages, only a config error's is kept: it names the missing Secret or ConfigMap,
			// and it does not change while the container waits (a back-off's does, at every retry).
			if w.Reason == plan.ReasonCreateContainerConfigError {
				trimmed[i].State.Waiting.Message = w.Message
			}
		}
		trimmed[i].State.Terminated = trimExit(s.State.Terminated)
		trimmed[i].LastTerminationState.Terminated = trimExit(s.LastTerminationState.Terminated)
	}
	return trimmed
}

// trimExit keeps of a container's exit what the message of a crash loop says (its code and reason) and when it
// ended, which tells whether the kubelet still counts the container as crash-looping (see plan.CrashLoopWindow).
func trimExit(t *corev1.ContainerStateTerminated) *corev1.ContainerStateTerminated {
	if t == nil {
		return nil
	}
	return &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Reason: t.Reason, FinishedAt: t.FinishedAt}
}

// lastAppliedAnnotation is where `kubectl apply` (client-side) keeps a copy of the whole object it applied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// trimApp drops from an App what berth never reads: its managedFields (berth applies the App's status without
// reading back what it owns there), and the copy of the App that a client-side `kubectl apply` keeps in an
// annotation, as large as the App itself.
func trimApp(obj any) (any, error) {
	object, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	object.SetManagedFields(nil)
	if _, ok := object.GetAnnotations()[lastAppliedAnnotation]; ok {
		annotations := maps.Clone(object.GetAnnotations())
		delete(annotations, lastAppliedAnnotation)
		object.SetAnnotations(annotations)
	}
	return obj, nil
}

// TrimManagedFields is an informer transform that drops the managedFields entries of every manager but berth
// before an object enters the cache: they are most of an object's size, and berth reads only its own entries (to
// tell what it applied).
func TrimManagedFields(obj any) (any, error) {
	object, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	entries := object.GetManagedFields()
	if len(entries) == 0 {
		return obj, nil
	}
	var kept []metav1.ManagedFieldsEntry
	for _, e := range entries {
		if e.Manager == FieldManager {
			kept = append(kept, e)
		}
	}
	object.SetManagedFields(kept)
	return obj, nil
}
