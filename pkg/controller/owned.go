package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// The write path of the objects an App owns: one generic function, syncOwned, for every kind, described to it by
// an ownedKind (kinds.go lists them).

// ownedClient is the part of a typed client (DeploymentInterface, ServiceInterface) that the write path uses:
// T is the object, A its apply configuration.
type ownedClient[T ownedObject, A any] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions,
		subresources ...string) (T, error)
	Apply(ctx context.Context, obj A, opts metav1.ApplyOptions) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// ownedKind is what the write path needs to know of one kind of object an App owns.
type ownedKind[T ownedObject, A any] struct {
	kind     string // "Deployment": in conditions, Events and errors
	resource string // "deployments": in expectations
	// cached reads the object from the informer's cache; found is false when the cache holds none.
	cached func(namespace, name string) (obj T, found bool, err error)
	client func(namespace string) ownedClient[T, A]
	// extract returns the fields of obj that berth owns, as an apply configuration.
	extract func(obj T, fieldManager string) (A, error)
	// newObject returns an empty object, for decoding an apply configuration into.
	newObject func() T
	// withUID makes an apply fail, rather than take over, if the object was replaced since berth saw it.
	withUID func(A, types.UID)
	// withAnnotation sets an annotation of the object.
	withAnnotation func(A, string, string)
	// withLabel sets a label of the object.
	withLabel func(A, string, string)
	// unwanted says, in the Event of its deletion, why an App no longer has an object of this kind.
	unwanted string
	// desired is what app wants of its object of this kind (from pkg/plan), and whether it wants one, given what
	// the sync has worked out so far.
	desired func(app *berthv1alpha1.App, obs *observation) (A, bool)
	// observe, when not nil, records in obs the App's object of this kind as the sync left it (nil when none).
	observe func(obs *observation, app *berthv1alpha1.App, obj T)
	// beforeApply, when not nil, prepares live for berth's apply of desired, and may write it to do so (see
	// replicas.go). It returns live as it left it, and whether it wrote.
	beforeApply func(ctx context.Context, c *Controller, live T, desired A) (T, bool, error)
}

// errStaleCache is returned when the API server holds another object than the one the cache shows: the cache is
// behind, and its next event brings the App back. It is retried like a conflict.
var errStaleCache = errors.New("the cache is behind the API server")

// syncOwned creates, corrects or deletes the App's object of one kind so that it is what desired says, or absent
// when want is false. It returns the object as it now is, or the zero T when there is none (or none of the
// App's). An object of the App's name that the App does not control is left alone and recorded in obs.
//
// A new object costs one write: berth creates it as desired says (see ownership.go for why a create and not an
// apply, and what that asks of a later change).
func syncOwned[T ownedObject, A any](ctx context.Context, c *Controller, app *berthv1alpha1.App, k ownedKind[T, A],
	desired A, want bool, obs *observation) (T, error) {
	var none T
	key := cache.MetaObjectToName(app)
	client := k.client(app.Namespace)
	existing, found, err := k.cached(app.Namespace, app.Name)
	// fresh tells that existing was read from the API server, with every manager's managedFields.
	fresh := false
	switch {
	case err != nil:
		return none, err
	case !found && !want:
		return none, nil
	case !found:
		created, err := createOwned(ctx, c, app, k, desired)
		if err == nil {
			obs.wrote = true
			return created, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return none, obs.refusedOr(fmt.Sprintf("create %s %q", k.kind, app.Name), err)
		}
		// berth caches only its own objects: this one is someone else's, or berth's own with its label taken
		// away. Only now is it read.
		if existing, err = client.Get(ctx, app.Name, metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return none, fmt.Errorf("%w: %s %q was deleted after berth's create failed", errStaleCache, k.kind, app.Name)
			}
			return none, err
		}
		fresh = true
	}

	switch {
	case !isControlledBy(existing, app):
		switch {
		case !want:
		case isLeftByDeletedApp(existing, app):
			obs.WaitingFor = fmt.Sprintf("%s %q", k.kind, app.Name)
		default:
			obs.Conflict = fmt.Sprintf("%s %q", k.kind, app.Name)
		}
		return none, nil
	case !want:
		// The precondition keeps an object that replaced berth's since the cache saw it.
		uid := existing.GetUID()
		err := client.Delete(ctx, existing.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) {
			return none, nil
		}
		if err != nil {
			return none, obs.refusedOr(fmt.Sprintf("delete %s %q", k.kind, app.Name), err)
		}
		obs.wrote = true
		c.expectations.deleted(k.resource, key, existing.GetResourceVersion())
		c.recorder.Eventf(app, corev1.EventTypeNormal, "Deleted",
			"Deleted %s %q: %s", k.kind, app.Name, k.unwanted)
		return none, nil
	}

	hash, err := desiredHash(desired)
	if err != nil {
		return none, err
	}
	// drifted: fields that berth set for this very desired state, changed since by someone else (see contest.go).
	same, drifted, err := k.compare(existing, desired, hash)
	if err != nil {
		return none, fmt.Errorf("reading berth's fields of %s %q: %w", k.kind, app.Name, err)
	}
	if same {
		c.corrections.settled(key, k.kind)
		return existing, nil
	}
	var changedByWhom string
	if len(drifted) > 0 {
		verdict := c.corrections.verdict(key, k.kind, hash)
		switch {
		case verdict.held != nil:
			obs.Contested = verdict.held.message()
			obs.retryAfter(verdict.wait)
			return existing, nil
		case verdict.wait > 0:
			obs.retryAfter(verdict.wait)
			return existing, nil
		}
		// The cache keeps no other manager's managedFields: who changed the fields is read from the API server.
		if !fresh {
			if existing, err = k.readAgain(ctx, client, app, existing, obs); err != nil || obs.Conflict != "" {
				return none, err
			}
			fresh = true
		}
		changedByWhom = changedBy(existing, drifted)
		if verdict.hold {
			contest, hold := c.corrections.hold(key, k.kind, app.Name, hash, drifted, changedByWhom)
			klog.FromContext(ctx).Info("Stopped correcting "+k.kind+": someone else keeps changing it",
				"object", klog.KObj(existing), "fields", contest.fields, "changedBy", changedByWhom, "for", hold)
			obs.Contested = contest.message()
			obs.retryAfter(hold)
			return existing, nil
		}
	}
	if ownsByCreate(existing) {
		// The object is still as berth created it, and now must change: its fields pass to berth's Apply entry
		// first, so that the apply drops those the App no longer asks for. The patch replaces managedFields
		// whole, and the cache lacks those of other managers: it is made on a fresh read, of the same object.
		if !fresh {
			if existing, err = k.readAgain(ctx, client, app, existing, obs); err != nil || obs.Conflict != "" {
				return none, err
			}
		}
		if existing, err = takeOwnership(ctx, existing, client.Patch, c.expectations, k.resource); err != nil {
			// As for a refused apply, below: the object berth had stays as it was, and the status goes on
			// describing it.
			return existing, obs.refusedOr(fmt.Sprintf("update %s %q", k.kind, app.Name), err)
		}
		obs.wrote = true
	}
	if k.beforeApply != nil {
		prepared, wrote, err := k.beforeApply(ctx, c, existing, desired)
		if err != nil {
			return existing, obs.refusedOr(fmt.Sprintf("update %s %q", k.kind, app.Name), err)
		}
		existing, obs.wrote = prepared, obs.wrote || wrote
	}
	k.withUID(desired, existing.GetUID())
	k.withAnnotation(desired, AnnotationAppliedFrom, hash)
	applied, err := client.Apply(ctx, desired, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		// The object berth had stays as it was: the status goes on describing it.
		return existing, obs.refusedOr(fmt.Sprintf("change %s %q", k.kind, app.Name), err)
	}
	obs.wrote = true
	c.expectations.wrote(k.resource, key, applied.GetResourceVersion())
	if len(drifted) > 0 {
		c.corrections.corrected(key, k.kind, hash)
		klog.FromContext(ctx).V(2).Info("Reverted a change of "+k.kind, "object", klog.KObj(applied),
			"fields", fieldNames(drifted), "changedBy", changedByWhom)
		c.recorder.Eventf(app, corev1.EventTypeWarning, "Reverted",
			"Reverted a change of %s %q by %s: %s", k.kind, app.Name, changedByWhom, fieldNames(drifted))
		return applied, nil
	}
	c.corrections.settled(key, k.kind)
	klog.FromContext(ctx).V(2).Info("Applied "+k.kind, "object", klog.KObj(applied))
	c.recorder.Eventf(app, corev1.EventTypeNormal, "Updated", "Updated %s %q", k.kind, app.Name)
	return applied, nil
}

// readAgain reads from the API server the object the cache shows as existing, with every manager's
// managedFields. When it is gone, was replaced, or is no longer the App's, it returns an error or records the
// conflict in obs.
func (k ownedKind[T, A]) readAgain(ctx context.Context, client ownedClient[T, A], app *berthv1alpha1.App,
	existing T, obs *observation) (T, error) {
	var none T
	live, err := client.Get(ctx, app.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return none, fmt.Errorf("%w: %s %q is gone", errStaleCache, k.kind, app.Name)
	case err != nil:
		return none, err
	case !isControlledBy(live, app):
		// Replaced, or its controller reference removed, since the cache saw it: someone else's now.
		obs.Conflict = fmt.Sprintf("%s %q", k.kind, app.Name)
		return none, nil
	case live.GetUID() != existing.GetUID():
		return none, fmt.Errorf("%w: %s %q was replaced", errStaleCache, k.kind, app.Name)
	}
	return live, nil
}

// createOwned creates the App's object of one kind as desired says, marked with the hash of desired (see
// ownership.go).
func createOwned[T ownedObject, A any](ctx context.Context, c *Controller, app *berthv1alpha1.App, k ownedKind[T, A],
	desired A) (T, error) {
	var none T
	hash, err := desiredHash(desired)
	if err != nil {
		return none, err
	}
	obj := k.newObject()
	if err := convertApplyConfiguration(desired, obj); err != nil {
		return none, err
	}
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationCreatedFrom] = hash
	obj.SetAnnotations(annotations)
	created, err := k.client(app.Namespace).Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil {
		return none, err
	}
	c.expectations.wrote(k.resource, cache.MetaObjectToName(app), created.GetResourceVersion())
	c.recorder.Eventf(app, corev1.EventTypeNormal, "Created", "Created %s %q", k.kind, app.Name)
	return created, nil
}

// compare tells whether the fields berth owns in live are what desired (whose hash is hash) says, and when they
// are not, which of them someone else changed (see contest.go):
//   - An object berth applied desired to (AnnotationAppliedFrom), or created from it and has not applied since
//     (AnnotationCreatedFrom, see ownership.go), is as desired when berth's entry in managedFields still holds
//     every field of desired, with its values; what it lacks, or holds with another value, drifted. Fields
//     beyond desired's (defaults, what admission added) are left as they are.
//   - An object that berth applied before it marked its applies (no AnnotationAppliedFrom) must hold exactly
//     desired; nothing is said to have drifted, since berth does not know for which desired state it wrote it.
//   - Otherwise berth last wrote the object for another desired state: the App changed since.
func (k ownedKind[T, A]) compare(live T, desired A, hash string) (same bool, drifted []driftedField, err error) {
	var owned T
	switch {
	case appliesTo(live):
		switch live.GetAnnotations()[AnnotationAppliedFrom] {
		case hash:
			owned = live
		case "":
			applied, err := k.extract(live, FieldManager)
			if err != nil {
				return false, nil, err
			}
			return equality.Semantic.DeepEqual(desired, applied), nil, nil
		default:
			return false, nil, nil
		}
	case ownsByCreate(live) && live.GetAnnotations()[AnnotationCreatedFrom] == hash:
		owned = createEntryAsApplied(live)
	default:
		return false, nil, nil
	}
	fields, err := k.extract(owned, FieldManager)
	if err != nil {
		return false, nil, err
	}
	if drifted, err = driftedFields(desired, fields); err != nil {
		return false, nil, err
	}
	return len(drifted) == 0, drifted, nil
}

// isLeftByDeletedApp tells whether obj is controlled by an earlier App of this App's name, deleted since (an App
// of that name with another UID cannot exist beside this one): the garbage collector deletes such an object soon,
// and its deletion brings this App back to the queue.
func isLeftByDeletedApp(obj metav1.Object, app *berthv1alpha1.App) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && refersToApp(ref) && ref.Name == app.Name && ref.UID != app.UID
}
