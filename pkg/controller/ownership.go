package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/csaupgrade"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// How berth comes to own an object, and tells its own objects from others'.
//
// berth creates, rather than applies, an object that its cache does not hold: an apply would merge into an
// object of that name that exists but is not in berth's cache (berth caches only its own objects), and that object
// may be someone else's. A create fails on it instead. A create is also the one write a new object costs.
//
// But the fields of a create are owned by an Update entry in managedFields (with the defaults the API server
// filled in), and a field that an Update entry owns is not removed when an apply stops setting it: a later apply
// without, say, the container port would leave the port in place. So before berth first changes an object it
// created, it hands the fields of its Update entry to its Apply entry (takeOwnership), and that apply sets the exact
// set of fields berth owns. Until then, the object is compared with what the App wants in two steps: the hash of
// the desired state it was created from (AnnotationCreatedFrom) tells that the App has not changed since, and
// berth's Update entry tells that nobody has changed a field of it: who changes a field takes it from the entry.

// AnnotationCreatedFrom marks an object that is still as berth created it, with the hash of the desired state it
// was created from. berth's first apply of the object removes it.
const AnnotationCreatedFrom = "berth.dev/created-from"

// ownedObject is a Deployment or a Service: the kinds of object an App owns.
type ownedObject interface {
	runtime.Object
	metav1.Object
}

// patchFunc is the Patch method of a typed client.
type patchFunc[T ownedObject] func(ctx context.Context, name string, pt types.PatchType, data []byte,
	opts metav1.PatchOptions, subresources ...string) (T, error)

// takeOwnership moves the fields that berth owns in live as their creator to berth's Apply entry, with
// client-go's own migration from client-side to server-side apply. live must come from the API server with all
// its managedFields, not from the cache, which drops those of other managers: the patch replaces the list. It
// carries live's resourceVersion, so it fails rather than overwrite managedFields that changed since. The write
// is recorded in exp under resource, for the sync it triggers.
func takeOwnership[T ownedObject](ctx context.Context, live T, patch patchFunc[T], exp *expectations,
	resource string) (T, error) {
	data, err := csaupgrade.UpgradeManagedFieldsPatch(live, sets.New(FieldManager), FieldManager)
	if err != nil || data == nil {
		return live, err
	}
	patched, err := patch(ctx, live.GetName(), types.JSONPatchType, data, metav1.PatchOptions{})
	if err != nil {
		return live, fmt.Errorf("taking ownership of %q for server-side apply: %w", live.GetName(), err)
	}
	exp.wrote(resource, cache.NewObjectName(live.GetNamespace(), live.GetName()), patched.GetResourceVersion())
	return patched, nil
}

// ownsByCreate tells whether berth owns fields of obj as their creator (an Update entry of berth's in
// managedFields): berth has not applied the object since it created it.
func ownsByCreate(obj metav1.Object) bool {
	for _, entry := range obj.GetManagedFields() {
		if entry.Manager == FieldManager && entry.Operation == metav1.ManagedFieldsOperationUpdate && entry.Subresource == "" {
			return true
		}
	}
	return false
}

// appliesTo tells whether berth owns fields of obj through server-side apply (an Apply entry of berth's).
func appliesTo(obj metav1.Object) bool {
	for _, entry := range obj.GetManagedFields() {
		if entry.Manager == FieldManager && entry.Operation == metav1.ManagedFieldsOperationApply && entry.Subresource == "" {
			return true
		}
	}
	return false
}

// createEntryAsApplied returns a copy of obj whose managedFields are berth's Update entry alone, relabelled as an
// Apply entry: client-go's Extract functions read only Apply entries, and so read from this copy the fields that
// berth's create set.
func createEntryAsApplied[T ownedObject](obj T) T {
	var entries []metav1.ManagedFieldsEntry
	for _, entry := range obj.GetManagedFields() {
		if entry.Manager == FieldManager && entry.Operation == metav1.ManagedFieldsOperationUpdate && entry.Subresource == "" {
			entry.Operation = metav1.ManagedFieldsOperationApply
			entries = append(entries, entry)
		}
	}
	relabelled := obj.DeepCopyObject().(T)
	relabelled.SetManagedFields(entries)
	return relabelled
}

// desiredHash is a hash of a desired state (an apply configuration), to tell whether an object was created from
// it. encoding/json writes maps with their keys sorted, so that equal states hash alike.
func desiredHash(desired any) (string, error) {
	data, err := json.Marshal(desired)
	if err != nil {
		return "", fmt.Errorf("encoding %T: %w", desired, err)
	}
	h := fnv.New64a()
	_, _ = h.Write(data)
	return strconv.FormatUint(h.Sum64(), 36), nil
}

// isControlledBy tells whether obj's controller is exactly this App: same API group, kind and UID, so that an
// object left behind by a deleted App of the same name, or controlled by another kind called App, is not taken.
func isControlledBy(obj metav1.Object, app *berthv1alpha1.App) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && refersToApp(ref) && ref.UID == app.UID
}

// convertApplyConfiguration turns an apply configuration into the typed object a Create call takes.
func convertApplyConfiguration(applyConfiguration, object any) error {
	data, err := json.Marshal(applyConfiguration)
	if err != nil {
		return fmt.Errorf("encoding %T: %w", applyConfiguration, err)
	}
	if err := json.Unmarshal(data, object); err != nil {
		return fmt.Errorf("decoding into %T: %w", object, err)
	}
	return nil
}
