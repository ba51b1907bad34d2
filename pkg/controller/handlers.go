// The informers' event handlers: which App a change belongs to, and with what priority it is queued.

package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/plan"
)

// ownedObjectHandler calls handle for every add, change and delete, skipping the periodic resyncs of objects that
// did not change: what berth owns is compared when its App is synced anyway. An add or a change comes with
// priorityOwnedChange, so that the many changes of a rollout are synced together; a delete is urgent (berth
// makes the object again), and is told to deleted first, when it is not nil.
func ownedObjectHandler(handle func(obj any, p priority), deleted func(obj any)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, isInInitialList bool) {
			// Mostly berth's own creates coming back, or a new Pod of a rollout.
			p := priorityOwnedChange
			if isInInitialList {
				p = priorityResync
			}
			handle(obj, p)
		},
		UpdateFunc: func(oldObj, newObj any) {
			if sameVersion(oldObj, newObj) {
				return
			}
			handle(newObj, priorityOwnedChange)
		},
		DeleteFunc: func(obj any) {
			if deleted != nil {
				deleted(obj)
			}
			handle(obj, priorityChange)
		},
	}
}

// priorityOfAppUpdate is the priority of an App's update: a change of its spec (its generation) is news; a resync
// is not, and neither is a change of its status or metadata, which changes nothing berth makes of the App. Most
// of those are berth's own status writes coming back.
func priorityOfAppUpdate(oldObj, newObj any) priority {
	oldMeta, okOld := oldObj.(metav1.Object)
	newMeta, okNew := newObj.(metav1.Object)
	if okOld && okNew && oldMeta.GetGeneration() == newMeta.GetGeneration() {
		return priorityResync
	}
	return priorityChange
}

// priorityOfAdd is the priority of an informer's add: those of its initial list are not news.
func priorityOfAdd(isInInitialList bool) priority {
	if isInInitialList {
		return priorityResync
	}
	return priorityChange
}

// sameVersion tells an informer's periodic resync, which hands over an object unchanged, from a change.
func sameVersion(oldObj, newObj any) bool {
	oldMeta, okOld := oldObj.(metav1.Object)
	newMeta, okNew := newObj.(metav1.Object)
	return okOld && okNew && oldMeta.GetResourceVersion() == newMeta.GetResourceVersion()
}

// enqueue adds key to the queue with priority p.
func (c *Controller) enqueue(key cache.ObjectName, p priority) {
	if p == priorityOwnedChange {
		// Added after the delay, behind the changes; a key waiting already is not added twice.
		c.priorities.addAfter(key, priorityResync, c.ownedChangeDelay)
		return
	}
	c.priorities.add(key, p)
}

// observeDeletion tells the expectations of a deletion the cache has seen of one of berth's Deployments or
// Services (resource), before its App is queued: a sync that waits for berth's write of that object must not wait
// for it any longer.
func (c *Controller) observeDeletion(resource string) func(obj any) {
	return func(obj any) {
		tombstone, relisted := obj.(cache.DeletedFinalStateUnknown)
		if relisted {
			obj = tombstone.Obj
		}
		object, ok := obj.(metav1.Object)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOfNoCopy(object); ref == nil || !refersToApp(ref) {
			return
		}
		c.expectations.observeDeletion(resource, cache.MetaObjectToName(object), object.GetResourceVersion(), !relisted)
	}
}

// enqueueAppUpdate queues an App that changed. A change that is not of its spec, mostly berth's own status write
// coming back, does not bring back an App that is retried with backoff: its retry comes. Else each status write
// of a failing App would sync it again at once, past its backoff, and a refusal whose message differs at each
// attempt (a webhook that puts a request ID in it) would have berth write the status as fast as the API server
// answers.
func (c *Controller) enqueueAppUpdate(oldObj, newObj any) {
	p := priorityOfAppUpdate(oldObj, newObj)
	if app, ok := newObj.(*berthv1alpha1.App); ok && p != priorityChange &&
		c.queue.NumRequeues(cache.MetaObjectToName(app)) > 0 {
		return
	}
	c.enqueueApp(newObj, p)
}

func (c *Controller) enqueueApp(obj any, p priority) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	app, ok := obj.(*berthv1alpha1.App)
	if !ok {
		return
	}
	c.enqueue(cache.MetaObjectToName(app), p)
}

// handleOwnedObject maps a Deployment or Service to the App that controls it. An object that no App controls is
// mapped to the App of the same name, if there is one: berth names what it owns after the App, so such an object
// is in that App's way, and its change or deletion is what lets the App proceed.
func (c *Controller) handleOwnedObject(obj any, p priority) {
	object, ok := metaObject(obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(object); ref != nil && refersToApp(ref) {
		app, err := c.appLister.Apps(object.GetNamespace()).Get(ref.Name)
		if err == nil && app.UID == ref.UID {
			c.enqueue(cache.MetaObjectToName(app), p)
			return
		}
	}
	if app, err := c.appLister.Apps(object.GetNamespace()).Get(object.GetName()); err == nil {
		c.enqueue(cache.MetaObjectToName(app), p)
	}
}

// handlePod maps one of berth's Pods to its App through the instance label that berth put on the Pod template.
func (c *Controller) handlePod(obj any, p priority) {
	pod, ok := metaObject(obj)
	if !ok {
		return
	}
	labels := pod.GetLabels()
	name := labels[plan.LabelInstance]
	if name == "" || labels[plan.LabelManagedBy] != plan.ManagedByBerth {
		return
	}
	if app, err := c.appLister.Apps(pod.GetNamespace()).Get(name); err == nil {
		c.enqueue(cache.MetaObjectToName(app), p)
	}
}

// metaObject unwraps the tombstone an informer hands over when it missed a delete.
func metaObject(obj any) (metav1.Object, bool) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	object, ok := obj.(metav1.Object)
	return object, ok
}

// refersToApp tells whether an owner reference points at berth's App kind, in berth's API group, at any version.
func refersToApp(ref *metav1.OwnerReference) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == berthv1alpha1.GroupName && ref.Kind == plan.AppKind
}
