package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/shard"
)

// labelerWorkers is how many Apps the assigner labels at once.
const labelerWorkers = 4

// labeler gives every App the label of its bucket (shard.Label), so that the member that owns the bucket selects
// it: one write in the App's life, made by the assigner alone. It watches the metadata of every App, which is
// all it reads of them.
type labeler struct {
	client    metadata.Interface
	informers []cache.SharedIndexInformer
	queue     workqueue.TypedRateLimitingInterface[cache.ObjectName]
}

var appsResource = schema.GroupVersion(berthv1alpha1.GroupVersion).WithResource("apps")

func newLabeler(client metadata.Interface, namespaces []string, backoffBase, backoffMax time.Duration) (*labeler, error) {
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	l := &labeler{client: client, queue: workqueue.NewTypedRateLimitingQueueWithConfig(
		controller.NewRateLimiter(backoffBase, backoffMax, 10, 100),
		workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "app-labels"})}
	for _, namespace := range namespaces {
		informer := metadatainformer.NewFilteredMetadataInformer(client, appsResource, namespace, 0, cache.Indexers{}, nil).Informer()
		// Set before the informer starts, which is the only time it can fail.
		_ = informer.SetTransform(trimToBucket)
		if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    l.enqueue,
			UpdateFunc: func(_, obj any) { l.enqueue(obj) },
		}); err != nil {
			return nil, fmt.Errorf("watching the Apps' metadata: %w", err)
		}
		l.informers = append(l.informers, informer)
	}
	return l, nil
}

// trimToBucket keeps of an App's metadata what the labeler reads: its identity, deletion and bucket label. The
// rest (annotations such as kubectl's copy of the whole App, managedFields) would make the leader's cache of every
// App's metadata weigh much of what the Apps do.
func trimToBucket(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	trimmed := &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID,
			ResourceVersion: m.ResourceVersion, DeletionTimestamp: m.DeletionTimestamp},
	}
	if value, ok := m.Labels[shard.Label]; ok {
		trimmed.Labels = map[string]string{shard.Label: value}
	}
	return trimmed, nil
}

// enqueue queues an App whose label is not its bucket's.
func (l *labeler) enqueue(obj any) {
	app, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok || app.DeletionTimestamp != nil {
		return
	}
	if app.Labels[shard.Label] != shard.LabelValue(shard.BucketOf(app.UID)) {
		l.queue.Add(cache.MetaObjectToName(app))
	}
}

// run labels Apps until ctx is done.
func (l *labeler) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, informer := range l.informers {
		wg.Go(func() { informer.RunWithContext(ctx) })
	}
	defer wg.Wait()
	defer l.queue.ShutDown()
	synced := make([]cache.InformerSynced, 0, len(l.informers))
	for _, informer := range l.informers {
		synced = append(synced, informer.HasSynced)
	}
	if !cache.WaitForNamedCacheSyncWithContext(ctx, synced...) {
		return
	}
	for range labelerWorkers {
		wg.Go(func() {
			for l.next(ctx) {
			}
		})
	}
	<-ctx.Done()
}

func (l *labeler) next(ctx context.Context) bool {
	key, shutdown := l.queue.Get()
	if shutdown {
		return false
	}
	defer l.queue.Done(key)
	if err := l.label(ctx, key); err != nil {
		klog.FromContext(ctx).Info("Cannot label the App with its bucket; retrying", "app", key, "err", err)
		l.queue.AddRateLimited(key)
		return true
	}
	l.queue.Forget(key)
	return true
}

// label writes the App's bucket label, if the cache still shows it without it. The patch names the App's UID,
// which the API server checks: an App deleted and made again under the same name is in another bucket.
func (l *labeler) label(ctx context.Context, key cache.ObjectName) error {
	for _, informer := range l.informers {
		obj, exists, err := informer.GetIndexer().GetByKey(key.String())
		if err != nil || !exists {
			continue
		}
		app := obj.(*metav1.PartialObjectMetadata)
		value := shard.LabelValue(shard.BucketOf(app.UID))
		if app.Labels[shard.Label] == value {
			return nil
		}
		patch := fmt.Sprintf(`{"metadata":{"uid":%q,"labels":{%q:%q}}}`, app.UID, shard.Label, value)
		_, err = l.client.Resource(appsResource).Namespace(key.Namespace).Patch(ctx, key.Name, types.MergePatchType,
			[]byte(patch), metav1.PatchOptions{FieldManager: controller.FieldManager})
		return err
	}
	return nil
}
