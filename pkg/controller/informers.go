package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

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
	kept := entries[:0:0]
	for _, e := range entries {
		if e.Manager == FieldManager {
			kept = append(kept, e)
		}
	}
	if len(kept) == 0 {
		kept = nil
	}
	object.SetManagedFields(kept)
	return obj, nil
}
