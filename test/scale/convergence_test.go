package scale

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	berthinformers "github.com/berthdev/berth/pkg/generated/informers/externalversions"
)

// convergence follows, through informers in the test process (a watch, not LISTs of every App again and
// again), when each App has converged: it has its Deployment, its Service, and a status of its current
// generation. It also follows when each App's status says Available, which comes later: the Pods must run first.
type convergence struct {
	want         int
	allConverged chan struct{} // closed when want Apps have converged
	allAvailable chan struct{} // closed when want Apps are Available

	mu        sync.Mutex
	apps      map[cache.ObjectName]*appState
	converged int
	available int

	cancel       context.CancelFunc
	kubeFactory  kubeinformers.SharedInformerFactory
	berthFactory berthinformers.SharedInformerFactory
}

// appState is what the informers have shown of one App and the objects of its name.
type appState struct {
	app                 bool // the App exists
	generation          int64
	observedGeneration  int64
	available           bool
	deployment, service bool
	// convergedAt is when the App converged first; it counts once, whatever happens to it later.
	convergedAt      time.Time
	countedAvailable bool
}

// startConvergence starts the informers and returns once they have listed what exists; want is how many Apps
// must converge. Call Stop when done.
func startConvergence(ctx context.Context, config *rest.Config, want int) (*convergence, error) {
	kube, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	berth, err := versioned.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &convergence{
		want:         want,
		allConverged: make(chan struct{}),
		allAvailable: make(chan struct{}),
		apps:         map[cache.ObjectName]*appState{},
		cancel:       cancel,
		// With 10,000 Apps, managedFields would be most of what the test process holds.
		kubeFactory:  kubeinformers.NewSharedInformerFactoryWithOptions(kube, 0, kubeinformers.WithTransform(dropManagedFields)),
		berthFactory: berthinformers.NewSharedInformerFactoryWithOptions(berth, 0, berthinformers.WithTransform(dropManagedFields)),
	}
	handlers := []struct {
		informer cache.SharedIndexInformer
		update   func(s *appState, obj any, exists bool)
	}{
		{c.berthFactory.Berth().V1alpha1().Apps().Informer(), setApp},
		{c.kubeFactory.Apps().V1().Deployments().Informer(), func(s *appState, _ any, exists bool) { s.deployment = exists }},
		{c.kubeFactory.Core().V1().Services().Informer(), func(s *appState, _ any, exists bool) { s.service = exists }},
	}
	for _, h := range handlers {
		_, err := h.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.observe(obj, true, h.update) },
			UpdateFunc: func(_, obj any) { c.observe(obj, true, h.update) },
			DeleteFunc: func(obj any) { c.observe(obj, false, h.update) },
		})
		if err != nil {
			c.Stop()
			return nil, err
		}
	}
	c.kubeFactory.Start(ctx.Done())
	c.berthFactory.Start(ctx.Done())
	for informer, synced := range c.kubeFactory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			c.Stop()
			return nil, fmt.Errorf("the informer of %v did not sync", informer)
		}
	}
	for informer, synced := range c.berthFactory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			c.Stop()
			return nil, fmt.Errorf("the informer of %v did not sync", informer)
		}
	}
	return c, nil
}

// Stop stops the informers and waits for them to end.
func (c *convergence) Stop() {
	c.cancel()
	c.kubeFactory.Shutdown()
	c.berthFactory.Shutdown()
}

func setApp(s *appState, obj any, exists bool) {
	s.app = exists
	if app, ok := obj.(*berthv1alpha1.App); ok && exists {
		s.generation = app.Generation
		s.observedGeneration = app.Status.ObservedGeneration
		s.available = app.Status.ObservedGeneration == app.Generation &&
			meta.IsStatusConditionTrue(app.Status.Conditions, berthv1alpha1.ConditionAvailable)
	}
}

// observe records an event of the object obj (an App, or an object of an App's name) and counts the App as
// converged, or Available, the first time it is.
func (c *convergence) observe(obj any, exists bool, update func(s *appState, obj any, exists bool)) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.apps[key]
	if s == nil {
		s = &appState{}
		c.apps[key] = s
	}
	update(s, obj, exists)
	if s.convergedAt.IsZero() && s.app && s.deployment && s.service && s.generation > 0 &&
		s.observedGeneration == s.generation {
		s.convergedAt = now
		c.converged++
		if c.converged == c.want {
			close(c.allConverged)
		}
	}
	if s.available && !s.countedAvailable {
		s.countedAvailable = true
		c.available++
		if c.available == c.want {
			close(c.allAvailable)
		}
	}
}

// convergedAt is when the App converged first; zero if it has not.
func (c *convergence) convergedAt(namespace, name string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.apps[cache.NewObjectName(namespace, name)]; s != nil {
		return s.convergedAt
	}
	return time.Time{}
}

// lastConvergedAt is when the last App to converge did.
func (c *convergence) lastConvergedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	for _, s := range c.apps {
		if s.convergedAt.After(last) {
			last = s.convergedAt
		}
	}
	return last
}

func (c *convergence) progress() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%d of %d Apps converged, %d Available", c.converged, c.want, c.available)
}

// wait waits until done is closed; it fails when stopped is closed first (the runner ended), or after timeout.
// It logs the progress every 15 seconds.
func (c *convergence) wait(ctx context.Context, logf func(string, ...any), what string, done, stopped <-chan struct{},
	timeout time.Duration) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-stopped:
			return fmt.Errorf("waiting until %s: the runner stopped (%s)", what, c.progress())
		case <-deadline:
			return fmt.Errorf("waiting until %s: timed out after %s (%s)", what, timeout, c.progress())
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			logf("waiting until %s: %s", what, c.progress())
		}
	}
}

// dropManagedFields is an informer transform: nothing here reads managedFields.
func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
