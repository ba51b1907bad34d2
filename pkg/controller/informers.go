package controller

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"

	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	berthinformers "github.com/berthdev/berth/pkg/generated/informers/externalversions"
)

// Informers are the shared informer factories berth reads the cluster through.
type Informers struct {
	// Kube serves Deployments and Services: all of them, since an object of an App's name that berth does not
	// own must be seen to be left alone.
	Kube kubeinformers.SharedInformerFactory
	// Pods serves only berth's Pods.
	Pods kubeinformers.SharedInformerFactory
	// Berth serves Apps.
	Berth berthinformers.SharedInformerFactory
}

// NewInformers builds berth's informer factories for one namespace, or all when namespace is empty. Every cache
// drops the managedFields of other managers (see TrimManagedFields).
func NewInformers(kubeClient kubernetes.Interface, berthClient versioned.Interface, namespace string,
	resync time.Duration) Informers {
	return Informers{
		Kube: kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, resync,
			kubeinformers.WithNamespace(namespace),
			kubeinformers.WithTransform(TrimManagedFields)),
		Pods: kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, resync,
			kubeinformers.WithNamespace(namespace),
			kubeinformers.WithTweakListOptions(PodListOptions),
			kubeinformers.WithTransform(TrimManagedFields)),
		Berth: berthinformers.NewSharedInformerFactoryWithOptions(berthClient, resync,
			berthinformers.WithNamespace(namespace),
			berthinformers.WithTransform(TrimManagedFields)),
	}
}

// Start starts the informers that were asked for; they run until ctx is done.
func (i Informers) Start(ctx context.Context) {
	i.Kube.Start(ctx.Done())
	i.Pods.Start(ctx.Done())
	i.Berth.Start(ctx.Done())
}

// Shutdown waits for the informers' goroutines to end; call it after ctx of Start is done.
func (i Informers) Shutdown() {
	i.Kube.Shutdown()
	i.Pods.Shutdown()
	i.Berth.Shutdown()
}

// NewFromInformers is New with berth's own informers taken from the factories.
func NewFromInformers(ctx context.Context, kubeClient kubernetes.Interface, berthClient versioned.Interface,
	informers Informers, recorder events.EventRecorder, metrics Metrics, opts Options) (*Controller, error) {
	return New(ctx, kubeClient, berthClient,
		informers.Berth.Berth().V1alpha1().Apps(),
		informers.Kube.Apps().V1().Deployments(),
		informers.Kube.Core().V1().Services(),
		informers.Pods.Core().V1().Pods(),
		recorder, metrics, opts)
}

// PodListOptions narrows the Pod informer to berth's Pods, so that its cache holds only them rather than every
// Pod of the cluster.
func PodListOptions(options *metav1.ListOptions) {
	options.LabelSelector = labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByBerth}).String()
}

// TrimManagedFields is an informer transform that drops the managedFields entries of every manager but berth
// before an object enters the cache: they are most of an object's size, and berth reads only its own entry (to
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
