package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
)

// The Secrets and ConfigMaps that Apps' Pods read are watched so that a change of one rolls its Apps out (see
// plan.ConfigReferences). berth watches their metadata only (a metadata informer: the API server sends
// PartialObjectMetadata, never a Secret's data), and keeps of it their names and versions: no value of a Secret is
// ever in berth's memory or logs.

// configInformers are the metadata informers of one namespace's (or all namespaces') Secrets and ConfigMaps, by
// kind (plan.KindSecret, plan.KindConfigMap).
type configInformers struct {
	informers map[string]cache.SharedIndexInformer
	wg        sync.WaitGroup
}

// newConfigInformers builds the informers of namespace's Secrets and ConfigMaps, which keep only what
// trimToVersion keeps.
func newConfigInformers(client metadata.Interface, namespace string, resync time.Duration) *configInformers {
	informers := map[string]cache.SharedIndexInformer{
		plan.KindSecret:    metadataInformer(client, corev1.SchemeGroupVersion.WithResource("secrets"), namespace, resync),
		plan.KindConfigMap: metadataInformer(client, corev1.SchemeGroupVersion.WithResource("configmaps"), namespace, resync),
	}
	return &configInformers{informers: informers}
}

// metadataInformer is a metadata informer of one resource in namespace, whose cache keeps what trimToVersion keeps.
func metadataInformer(client metadata.Interface, gvr schema.GroupVersionResource, namespace string,
	resync time.Duration) cache.SharedIndexInformer {
	informer := metadatainformer.NewFilteredMetadataInformer(client, gvr, namespace, resync, cache.Indexers{}, nil).Informer()
	// Set before the informer starts, which is the only time it can fail.
	_ = informer.SetTransform(trimToVersion)
	return informer
}

// start runs the informers until ctx is done.
func (c *configInformers) start(ctx context.Context) {
	for _, informer := range c.informers {
		c.wg.Go(func() { informer.RunWithContext(ctx) })
	}
}

// shutdown waits for the informers' goroutines to end, once ctx of start is done.
func (c *configInformers) shutdown() { c.wg.Wait() }

// trimToVersion keeps of an object's metadata what berth reads: its name, namespace, UID and resourceVersion.
// Annotations and managedFields can hold a whole copy of a Secret (kubectl apply's last-applied-configuration).
func trimToVersion(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID,
			ResourceVersion: m.ResourceVersion},
	}, nil
}

// appsByConfig is the name of the App cache's index by the Secrets and ConfigMaps the App's Pods read: a change
// of one finds its Apps there.
const appsByConfig = "config"

// configKey is the key of appsByConfig for an object of kind in namespace.
func configKey(namespace, kind, name string) string {
	return namespace + "/" + kind + "/" + name
}

// indexAppByConfig indexes an App under each Secret and ConfigMap its Pods read.
func indexAppByConfig(obj any) ([]string, error) {
	app, ok := obj.(*berthv1alpha1.App)
	if !ok {
		return nil, fmt.Errorf("indexing Apps by their Secrets and ConfigMaps: got %T", obj)
	}
	refs := plan.ConfigReferences(app)
	if len(refs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(refs))
	for i, r := range refs {
		keys[i] = configKey(app.Namespace, r.Kind, r.Name)
	}
	return keys, nil
}

// configHandler queues the Apps that read a Secret or ConfigMap of kind when it is created, changed or deleted.
func (c *Controller) configHandler(kind string, apps byNamespace[cache.Indexer]) cache.ResourceEventHandler {
	handle := func(obj any, p priority) {
		object, ok := metaObject(obj)
		if !ok {
			return
		}
		keys, err := apps.in(object.GetNamespace()).IndexKeys(appsByConfig,
			configKey(object.GetNamespace(), kind, object.GetName()))
		if err != nil {
			return
		}
		for _, key := range keys {
			if name, err := cache.ParseObjectName(key); err == nil {
				c.enqueue(name, p)
			}
		}
	}
	return cache.ResourceEventHandlerDetailedFuncs{
		// At start, every App is queued anyway, as its informer lists it.
		AddFunc: func(obj any, isInInitialList bool) { handle(obj, priorityOfAdd(isInInitialList)) },
		UpdateFunc: func(oldObj, newObj any) {
			if !sameVersion(oldObj, newObj) {
				handle(newObj, priorityChange)
			}
		},
		DeleteFunc: func(obj any) { handle(obj, priorityChange) },
	}
}

// configVersions reads from the caches the versions of the Secrets and ConfigMaps that the App's Pods read, as
// plan.ConfigVersions gives them; "" and none missing when berth does not watch them, or the App reads none.
func (c *Controller) configVersions(app *berthv1alpha1.App) (string, []plan.ConfigRef, error) {
	if c.configCaches == nil {
		return "", nil, nil
	}
	refs := plan.ConfigReferences(app)
	if len(refs) == 0 {
		return "", nil, nil
	}
	var readErr error
	versions, missing := plan.ConfigVersions(refs, func(r plan.ConfigRef) (string, bool) {
		obj, exists, err := c.configCaches[r.Kind].in(app.Namespace).GetByKey(app.Namespace + "/" + r.Name)
		if err != nil {
			readErr = err
			return "", false
		}
		if !exists {
			return "", false
		}
		m, ok := obj.(metav1.Object)
		if !ok {
			return "", false
		}
		return m.GetResourceVersion(), true
	})
	return versions, missing, readErr
}

// configResource is the resource of a kind of ConfigRef, as the caches' errors name it.
func configResource(kind string) string {
	if kind == plan.KindSecret {
		return "secrets"
	}
	return "configmaps"
}
