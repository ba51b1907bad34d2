package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
	berthv1alpha1ac "github.com/berthdev/berth/pkg/generated/applyconfiguration/berth/v1alpha1"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/pkg/plan"
)

// floorManager is the floor's field manager.
const floorManager = "write-floor"

// floor is the write floor: a plain client-go program that makes the fewest writes an App needs (create its
// Deployment, create its Service, write its status once) with berth's clients, client limits and number of
// workers, and nothing else: no cache, no comparison, no retry. It is handed the Apps; it does not list or watch
// them. What berth takes beyond it is what its design costs.
//
// berth's clients are those of cmd/controller/run.go: its kube and berth clientsets take their tokens from one
// bucket of --kube-api-qps and --kube-api-burst (TestBerthsClientsShareOneTokenBucket), and its Events and its
// Lease go through clients with limits of their own. The floor's two clientsets share one bucket of the same
// limits; it writes no Event and holds no Lease. The report checks it: both send their requests through that
// bucket at most at the QPS (the rate limit's bound, bound_test.go).
type floor struct {
	kube    kubernetes.Interface
	berth   versioned.Interface
	counter *requestCounter
	workers int
}

func newFloor(config *rest.Config, l limits) (*floor, error) {
	config = rest.CopyConfig(config)
	config.UserAgent = floorManager
	config.QPS, config.Burst = float32(l.qps), l.burst
	// One token bucket for both clientsets, as berth has: NewForConfig would otherwise build one for each.
	config.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(float32(l.qps), l.burst)
	counter := newRequestCounter()
	config.WrapTransport = counter.wrap
	kube, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	berth, err := versioned.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	return &floor{kube: kube, berth: berth, counter: counter, workers: l.workers}, nil
}

// run makes the writes of each App it receives, f.workers Apps at a time, until apps is closed. After an error,
// it takes the Apps still sent without writing anything, and returns the error.
func (f *floor) run(ctx context.Context, apps <-chan *berthv1alpha1.App) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range f.workers {
		wg.Go(func() {
			for app := range apps {
				if ctx.Err() != nil {
					continue
				}
				if err := f.write(ctx, app); err != nil {
					cancel(fmt.Errorf("App %s/%s: %w", app.Namespace, app.Name, err))
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// write creates the App's Deployment and Service as berth builds them, and then writes its status.
func (f *floor) write(ctx context.Context, app *berthv1alpha1.App) error {
	var d appsv1.Deployment
	if err := convert(plan.Deployment(app), &d); err != nil {
		return err
	}
	if _, err := f.kube.AppsV1().Deployments(app.Namespace).Create(ctx, &d,
		metav1.CreateOptions{FieldManager: floorManager}); err != nil {
		return fmt.Errorf("creating the Deployment: %w", err)
	}
	var s corev1.Service
	if err := convert(plan.Service(app), &s); err != nil {
		return err
	}
	if _, err := f.kube.CoreV1().Services(app.Namespace).Create(ctx, &s,
		metav1.CreateOptions{FieldManager: floorManager}); err != nil {
		return fmt.Errorf("creating the Service: %w", err)
	}
	status := berthv1alpha1ac.App(app.Name, app.Namespace).
		WithStatus(berthv1alpha1ac.AppStatus().WithObservedGeneration(app.Generation))
	if _, err := f.berth.BerthV1alpha1().Apps(app.Namespace).ApplyStatus(ctx, status,
		metav1.ApplyOptions{FieldManager: floorManager, Force: true}); err != nil {
		return fmt.Errorf("writing the status: %w", err)
	}
	return nil
}

// convert turns an apply configuration into the typed object it describes.
func convert(applyConfiguration, object any) error {
	data, err := json.Marshal(applyConfiguration)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, object)
}

// runFloor measures the floor with n Apps on a fresh cluster, the way runBerth measures berth: the n Apps
// exist before it starts, and one more is created a second later and handed to it after the others.
func runFloor(ctx context.Context, t *testing.T, s setup, n int) (result, error) {
	var r result
	cluster, err := startCluster(ctx, n)
	if err != nil {
		return r, err
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			t.Logf("stopping the cluster: %v", err)
		}
	}()
	apps, err := createAppsLogged(ctx, t, cluster, n)
	if err != nil {
		return r, err
	}
	conv, err := startConvergence(ctx, cluster.Config, n+1)
	if err != nil {
		return r, err
	}
	defer conv.Stop()
	f, err := newFloor(cluster.Config, s.limits)
	if err != nil {
		return r, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed := make(chan *berthv1alpha1.App)
	extra := make(chan *berthv1alpha1.App, 1)
	// The feeder hands the floor the Apps in order, and the extra App last: a queue, first in, first out.
	go func() {
		defer close(feed)
		for _, app := range apps {
			select {
			case feed <- app:
			case <-ctx.Done():
				return
			}
		}
		select {
		case app := <-extra:
			select {
			case feed <- app:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}()
	// failed is closed if the floor fails, so that the wait below ends at once; finished when it returns.
	failed, finished := make(chan struct{}), make(chan struct{})
	var floorErr error
	cpuBefore, err := readCPUTimes()
	if err != nil {
		return r, err
	}
	start := time.Now()
	go func() {
		defer close(finished)
		if floorErr = f.run(ctx, feed); floorErr != nil {
			close(failed)
		}
	}()

	extraApp, extraCreated, err := createExtraApp(ctx, cluster, start)
	if err != nil {
		return r, err
	}
	extra <- extraApp

	err = conv.wait(ctx, t.Logf, "the floor's Apps converged", conv.allConverged, failed, s.timeout(n))
	r.busy = busySince(cpuBefore)
	r.untilConverged = f.counter.snapshot()
	if err != nil {
		cancel() // stops the feeder and the floor's workers
	}
	// Once every App has converged, the floor has written and been fed all there is: it ends by itself.
	<-finished
	if floorErr != nil {
		return r, fmt.Errorf("the write floor: %w", floorErr)
	}
	if err != nil {
		return r, err
	}
	r.converge = conv.lastConvergedAt().Sub(start)
	r.extra = conv.convergedAt(extraApp.Namespace, extraApp.Name).Sub(extraCreated)
	r.requests = f.counter.snapshot()
	t.Logf("the floor's %d Apps converged in %s (the rate limit's bound: %s); the machine's CPU %.0f%% busy",
		n+1, r.converge.Round(time.Millisecond), bound(s.limits, r.untilConverged).Round(time.Millisecond), 100*r.busy)
	return r, nil
}
