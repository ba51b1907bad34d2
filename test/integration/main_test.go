// Package integration tests berth against a real kube-apiserver and etcd, with the controller running in the
// test process. There is no kube-controller-manager here: Deployments get no Pods and no status, which keeps
// the cluster still, so that every write berth makes can be counted.
package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/berthdev/berth/pkg/controller"
	"github.com/berthdev/berth/pkg/generated/clientset/versioned"
	"github.com/berthdev/berth/pkg/shard"
	"github.com/berthdev/berth/test/framework"
)

// controlPlane is shared by all tests of the package; each test works in a namespace of its own.
var controlPlane *framework.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	var err error
	controlPlane, err = framework.StartControlPlane(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting etcd and kube-apiserver: %v\n", err)
		return 1
	}
	defer controlPlane.Stop()
	if err := framework.InstallCRDs(ctx, controlPlane.Config); err != nil {
		fmt.Fprintf(os.Stderr, "installing the CRD: %v\n", err)
		return 1
	}
	if err := framework.InstallGatewayAPI(ctx, controlPlane.Config); err != nil {
		fmt.Fprintf(os.Stderr, "installing Gateway API's CRDs: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "etcd and kube-apiserver ready, CRDs installed (berth's, Gateway API's), in %s\n",
		time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// env is what a test works with: clients, a namespace of its own, and a context that ends with the test.
type env struct {
	t         *testing.T
	ctx       context.Context
	namespace string
	kube      kubernetes.Interface
	berth     versioned.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	kube := kubernetes.NewForConfigOrDie(controlPlane.Config)
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "it-"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return &env{
		t:         t,
		ctx:       ctx,
		namespace: ns.Name,
		kube:      kube,
		berth:     versioned.NewForConfigOrDie(controlPlane.Config),
	}
}

// running is a controller started by a test.
type running struct {
	cancel func()
	done   chan error
	syncs  *syncCounter
	writes *writeCounter
	// informers are the controller's: what its caches hold.
	informers controller.Informers
}

// hook stands between the controller and the API server, for the tests that need the world to change at one
// exact point of a sync: it sees each request of the controller and decides what happens to it. It may act on
// the cluster before or after passing the request on with next, or answer in the API server's place.
type hook func(req *http.Request, next http.RoundTripper) (*http.Response, error)

// startController runs berth in this process, limited to the test's namespace, until stop or the end of the
// test. Hooks see the controller's requests, the first hook first.
func (e *env) startController(hooks ...hook) *running {
	e.t.Helper()
	return e.startControllerIn([]string{e.namespace}, hooks...)
}

// startControllerIn is startController on the Apps of namespaces, as --namespace=a,b does.
func (e *env) startControllerIn(namespaces []string, hooks ...hook) *running {
	e.t.Helper()
	return e.startMember(namespaces, nil, false, hooks...)
}

// startMember is startControllerIn as a member of a shared set (--sharding) that owns buckets, when they are
// not nil; with serverShards, the API server selects the buckets' Apps.
func (e *env) startMember(namespaces []string, buckets *shard.Set, serverShards bool, hooks ...hook) *running {
	e.t.Helper()
	writes := &writeCounter{}
	config := rest.CopyConfig(controlPlane.Config)
	for i := len(hooks) - 1; i >= 0; i-- {
		h := hooks[i]
		config.Wrap(func(next http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(req *http.Request) (*http.Response, error) { return h(req, next) })
		})
	}
	config.Wrap(writes.wrap)
	kube := kubernetes.NewForConfigOrDie(config)
	berth := versioned.NewForConfigOrDie(config)

	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), klog.FromContext(e.ctx)))
	recorder, stopEvents, err := controller.NewEventRecorder(ctx, kube)
	require.NoError(e.t, err)
	informers := controller.NewInformers(kube, berth, controller.InformerOptions{Namespaces: namespaces,
		Buckets: buckets, ServerShards: serverShards})
	syncs := &syncCounter{}
	c, err := controller.NewFromInformers(ctx, kube, berth, informers, recorder, syncs,
		controller.Options{BackoffBase: 10 * time.Millisecond, BackoffMax: time.Second,
			// Fights (fights_test.go) are fought at test speed; the limit and the window are berth's own.
			CorrectionBackoff: 100 * time.Millisecond, Buckets: buckets})
	require.NoError(e.t, err)
	informers.Start(ctx)

	r := &running{cancel: cancel, done: make(chan error, 1), syncs: syncs, writes: writes, informers: informers}
	go func() {
		err := c.Run(context.WithoutCancel(ctx), ctx.Done(), 2)
		stopEvents()
		informers.Shutdown()
		r.done <- err
	}()
	e.t.Cleanup(r.stop)
	return r
}

// stop cancels the controller and waits for Run to return; calling it again does nothing.
func (r *running) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	<-r.done
}

// syncCounter counts the controller's syncs by result.
type syncCounter struct {
	mu      sync.Mutex
	results map[string]int
}

func (s *syncCounter) ObserveReconcile(result string, _ time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.results == nil {
		s.results = map[string]int{}
	}
	s.results[result]++
}

func (s *syncCounter) SetNamespaceSynced(string, bool) {}

func (s *syncCounter) count(result string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results[result]
}

// total counts the syncs of any result.
func (s *syncCounter) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, count := range s.results {
		n += count
	}
	return n
}

// writeCounter counts the requests of a client that are not reads (GET, which includes watches), and apart
// those of them that the API server refused with a conflict.
type writeCounter struct {
	n          atomic.Int64
	mu         sync.Mutex
	requests   []string
	conflicted []string
}

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodGet {
			return rt.RoundTrip(req)
		}
		request := req.Method + " " + req.URL.Path
		w.n.Add(1)
		w.mu.Lock()
		w.requests = append(w.requests, request)
		w.mu.Unlock()
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusConflict {
			w.mu.Lock()
			w.conflicted = append(w.conflicted, request)
			w.mu.Unlock()
		}
		return resp, err
	})
}

func (w *writeCounter) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.requests...)
}

// listConflicted returns the writes that the API server refused with a conflict: they changed nothing.
func (w *writeCounter) listConflicted() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.conflicted...)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// eventually polls condition until it returns true, failing the test with what after the timeout. A condition
// that returns an error ends the wait at once.
func (e *env) eventually(what string, condition func(ctx context.Context) (bool, error)) {
	e.t.Helper()
	err := wait.PollUntilContextTimeout(e.ctx, 50*time.Millisecond, 30*time.Second, true, condition)
	require.NoError(e.t, err, "waiting for %s", what)
}
