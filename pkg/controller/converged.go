package controller

import (
	"hash/maphash"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// A sync of an App that has nothing to do is the most common sync there is: every App, at every resync. Its
// answer depends only on what it reads from the caches (the App, its objects of each kind, its Pods, and the
// versions of the Secrets and ConfigMaps its Pods read), and
// every change of those changes their resourceVersions. So when a sync finds an App converged, berth remembers
// the versions it read; a later sync that reads the same versions knows the answer without working it out again,
// which means comparing managedFields, the costliest thing a sync does.

// readVersions are the versions of what one sync read of an App from the caches.
type readVersions struct {
	app string
	// owned are the resourceVersions of the App's objects of each kind, in the order of the controller's kinds;
	// "" for an object that is not there.
	owned [maxOwnedKinds]string
	pods  uint64 // a hash of the names and resourceVersions of the App's Pods
	// config are the versions of the Secrets and ConfigMaps the App's Pods read (plan.ConfigVersions).
	config string
}

// convergedApps remembers, for each App that its last sync found converged, the versions that sync read.
type convergedApps struct {
	seed maphash.Seed

	mu   sync.Mutex
	apps map[cache.ObjectName]readVersions
}

func newConvergedApps() *convergedApps {
	return &convergedApps{seed: maphash.MakeSeed(), apps: map[cache.ObjectName]readVersions{}}
}

// versionsOf is what a sync read, as readVersions.
func (c *convergedApps) versionsOf(app *berthv1alpha1.App, owned ownedVersions, pods []*corev1.Pod,
	config string) readVersions {
	v := readVersions{app: app.ResourceVersion, config: config}
	for i, o := range owned {
		v.owned[i] = o.version
	}
	// Summed, so that the order of the cache's index does not matter; each Pod's hash mixes its name and
	// version, so that one Pod replaced by another does not cancel out.
	var h maphash.Hash
	h.SetSeed(c.seed)
	for _, pod := range pods {
		h.Reset()
		_, _ = h.WriteString(pod.Name)
		_ = h.WriteByte(0)
		_, _ = h.WriteString(pod.ResourceVersion)
		v.pods += h.Sum64()
	}
	return v
}

// is tells whether the last sync of key found it converged, having read v.
func (c *convergedApps) is(key cache.ObjectName, v readVersions) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen, ok := c.apps[key]
	return ok && seen == v
}

// set remembers that a sync of key that read v found it converged.
func (c *convergedApps) set(key cache.ObjectName, v readVersions) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apps[key] = v
}

// forget drops what is remembered of key: its last sync did not find it converged, or the App is gone.
func (c *convergedApps) forget(key cache.ObjectName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.apps, key)
}
