// The Secrets and ConfigMaps an App's Pods read, and their versions in the Pod template: a change of one changes the
// template, and so rolls the App out like any other change (kubernetes/kubernetes#22368).

package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// AnnotationConfigVersions, on the Pod template, holds the versions of the Secrets and ConfigMaps the Pods read,
// e.g. "ConfigMap/settings=4711,Secret/db=4712", and "missing" for one that does not exist.
const AnnotationConfigVersions = "berth.dev/config-versions"

// ReasonMissingReference is the Degraded reason of an App that reads a Secret or ConfigMap that does not exist.
const ReasonMissingReference = "MissingReference"

// The kinds of ConfigRef.
const (
	KindSecret    = "Secret"
	KindConfigMap = "ConfigMap"
)

// missingVersion stands, in AnnotationConfigVersions, for the version of an object that does not exist: its
// creation changes the template.
const missingVersion = "missing"

// ConfigRef is a Secret or ConfigMap of the App's namespace that its Pods read.
type ConfigRef struct {
	Kind, Name string
	// Optional tells that the Pods start without it.
	Optional bool
}

// String is the reference as the App's status names it, e.g. `Secret "db"`.
func (r ConfigRef) String() string { return fmt.Sprintf("%s %q", r.Kind, r.Name) }

// ConfigReferences are the Secrets and ConfigMaps that the App's Pods read (environment variables, envFrom and
// files), sorted by kind and name, each once; optional only when every reference to it is. Image pull Secrets are
// not among them: they are read when an image is pulled, not by the service, and a change of one needs no
// restart.
func ConfigReferences(app *berthv1alpha1.App) []ConfigRef {
	var refs []ConfigRef
	add := func(kind, name string, optional bool) {
		if name != "" {
			refs = append(refs, ConfigRef{Kind: kind, Name: name, Optional: optional})
		}
	}
	for _, e := range app.Spec.Env {
		if r := e.SecretKeyRef; r != nil {
			add(KindSecret, r.Name, r.Optional)
		}
		if r := e.ConfigMapKeyRef; r != nil {
			add(KindConfigMap, r.Name, r.Optional)
		}
	}
	for _, e := range app.Spec.EnvFrom {
		if r := e.SecretRef; r != nil {
			add(KindSecret, r.Name, r.Optional)
		}
		if r := e.ConfigMapRef; r != nil {
			add(KindConfigMap, r.Name, r.Optional)
		}
	}
	for _, f := range app.Spec.Files {
		if s := f.Secret; s != nil {
			add(KindSecret, s.Name, false)
		}
		if s := f.ConfigMap; s != nil {
			add(KindConfigMap, s.Name, false)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	// The required before the optional, so that the one entry kept of an object is required when any
	// reference requires it.
	optionalLast := func(r ConfigRef) int {
		if r.Optional {
			return 1
		}
		return 0
	}
	slices.SortFunc(refs, func(a, b ConfigRef) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name), cmp.Compare(optionalLast(a), optionalLast(b)))
	})
	return slices.CompactFunc(refs, func(a, b ConfigRef) bool { return a.Kind == b.Kind && a.Name == b.Name })
}

// ConfigChangesRollOut tells whether a change of the App's Secrets and ConfigMaps rolls it out.
func ConfigChangesRollOut(app *berthv1alpha1.App) bool {
	return app.Spec.Rollout == nil || !app.Spec.Rollout.IgnoreConfigChanges
}

// ConfigVersions are the versions of refs, as AnnotationConfigVersions holds them, given version, which reads an
// object's resourceVersion (found false when it does not exist); and those of refs that the Pods require and that
// do not exist.
func ConfigVersions(refs []ConfigRef, version func(ConfigRef) (string, bool)) (versions string, missing []ConfigRef) {
	var b strings.Builder
	for i, r := range refs {
		v, found := version(r)
		if !found {
			v = missingVersion
			if !r.Optional {
				missing = append(missing, r)
			}
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.Kind)
		b.WriteByte('/')
		b.WriteString(r.Name)
		b.WriteByte('=')
		b.WriteString(v)
	}
	return b.String(), missing
}

// WithConfigVersions puts versions (ConfigVersions) into the Pod template of desired; nothing when there are none.
func WithConfigVersions(desired *appsv1ac.DeploymentApplyConfiguration, versions string) {
	if versions == "" || desired.Spec == nil || desired.Spec.Template == nil {
		return
	}
	desired.Spec.Template.WithAnnotations(map[string]string{AnnotationConfigVersions: versions})
}

// MissingMessage is the Degraded message of an App whose Pods require objects that do not exist.
func MissingMessage(missing []ConfigRef) string {
	names := make([]string, len(missing))
	for i, r := range missing {
		names[i] = r.String()
	}
	if len(missing) == 1 {
		return names[0] + " does not exist, and the App's Pods require it"
	}
	return strings.Join(names, ", ") + " do not exist, and the App's Pods require them"
}
