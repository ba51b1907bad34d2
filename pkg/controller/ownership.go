package controller

import (
	"context"
	"encoding/json"
	"fmt"

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
// object of that name that exists but has not reached the cache yet, and that object may be someone else's. A
// create fails on it instead. But the fields of a create are owned by an Update entry in managedFields, and a
// field that two entries own is not removed when one of them stops applying it: a later apply without, say, the
// container port would leave the port in place. So right after creating an object, berth hands the fields of its
// Update entry to its Apply entry (takeOwnership), and its next apply sets the exact set of fields it owns.

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

// ownsByCreate tells whether berth still owns fields of obj as their creator (an Update entry of berth's in
// managedFields): the takeOwnership that follows a create did not land.
func ownsByCreate(obj metav1.Object) bool {
	for _, entry := range obj.GetManagedFields() {
		if entry.Manager == FieldManager && entry.Operation == metav1.ManagedFieldsOperationUpdate && entry.Subresource == "" {
			return true
		}
	}
	return false
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
