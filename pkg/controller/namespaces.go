package controller

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthinformers "github.com/berthdev/berth/pkg/generated/informers/externalversions/berth/v1alpha1"
	berthlisters "github.com/berthdev/berth/pkg/generated/listers/berth/v1alpha1"
)

// berth reads the cluster through one set of informers for all namespaces (or for one), or through a set per
// namespace of a list (see NewInformers). With several sets, the controller reads through listers that send each
// lookup to the set of the namespace it names: every lookup of the controller is in one namespace (an App, and
// what it owns, are in the App's). Only List reads every set: berth_apps counts the Apps with it.

// informerSet is the informers of berth's objects in one namespace, or in all.
type informerSet struct {
	// namespace is the namespace whose lookups the set answers: metav1.NamespaceAll when it answers any (the set
	// of all namespaces, or the one set that New is given).
	namespace string
	apps      berthinformers.AppInformer
	pods      coreinformers.PodInformer
	// owned are the informers of the kinds an App owns, by resource (kinds.go).
	owned map[string]cache.SharedIndexInformer
	// config are the metadata informers of Secrets and ConfigMaps, by kind (config.go); nil when berth does not
	// watch them.
	config map[string]cache.SharedIndexInformer
}

// checkInformerSets refuses sets that would answer a namespace twice.
func checkInformerSets(sets []informerSet) error {
	if len(sets) == 0 {
		return fmt.Errorf("no informers")
	}
	seen := map[string]bool{}
	for _, s := range sets {
		if s.namespace == metav1.NamespaceAll && len(sets) > 1 {
			return fmt.Errorf("informers of all namespaces among informers of single namespaces")
		}
		if seen[s.namespace] {
			return fmt.Errorf("two sets of informers for namespace %q", s.namespace)
		}
		seen[s.namespace] = true
	}
	return nil
}

// byNamespace holds one lister (or indexer) per set of informers, by the set's namespace.
type byNamespace[T any] struct {
	values map[string]T
	// none answers a namespace that no set watches: it holds nothing.
	none T
}

func newByNamespace[T any](sets []informerSet, of func(informerSet) T, none T) byNamespace[T] {
	b := byNamespace[T]{values: make(map[string]T, len(sets)), none: none}
	for _, s := range sets {
		b.values[s.namespace] = of(s)
	}
	return b
}

// in is the lister (or indexer) of namespace's set.
func (b byNamespace[T]) in(namespace string) T {
	if v, ok := b.values[namespace]; ok {
		return v
	}
	if v, ok := b.values[metav1.NamespaceAll]; ok {
		return v
	}
	return b.none
}

// newEmptyIndexer is an indexer that stays empty, with the indexes that the controller's lookups name.
func newEmptyIndexer() cache.Indexer {
	return cache.NewIndexer(cache.MetaNamespaceKeyFunc,
		cache.Indexers{podsByApp: indexPodByApp, appsByConfig: indexAppByConfig})
}

// newAppLister reads Apps through the sets' listers; with one set, it is that set's lister.
func newAppLister(sets []informerSet) berthlisters.AppLister {
	if len(sets) == 1 {
		return sets[0].apps.Lister()
	}
	return appListers{newByNamespace(sets, func(s informerSet) berthlisters.AppLister { return s.apps.Lister() },
		berthlisters.NewAppLister(newEmptyIndexer()))}
}

// newPodIndexers are the sets' caches of Pods, which New has indexed by App.
func newPodIndexers(sets []informerSet) byNamespace[cache.Indexer] {
	return newByNamespace(sets, func(s informerSet) cache.Indexer { return s.pods.Informer().GetIndexer() },
		newEmptyIndexer())
}

// appListers is an AppLister over the sets of several namespaces.
type appListers struct {
	byNamespace[berthlisters.AppLister]
}

func (l appListers) Apps(namespace string) berthlisters.AppNamespaceLister {
	return l.in(namespace).Apps(namespace)
}

func (l appListers) List(selector labels.Selector) ([]*berthv1alpha1.App, error) {
	return listAll(l.values, func(lister berthlisters.AppLister) ([]*berthv1alpha1.App, error) {
		return lister.List(selector)
	})
}

// listAll is what list returns of every lister, together.
func listAll[L any, T any](listers map[string]L, list func(L) ([]T, error)) ([]T, error) {
	var all []T
	for _, lister := range listers {
		objects, err := list(lister)
		if err != nil {
			return nil, err
		}
		all = append(all, objects...)
	}
	return all, nil
}
