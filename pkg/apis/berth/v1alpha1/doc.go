// Package v1alpha1 is version v1alpha1 of the berth.dev API: the App resource.
//
// +k8s:deepcopy-gen=package
// +groupName=berth.dev
// +kubebuilder:validation:Optional
package v1alpha1
