package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	berthscheme "github.com/berthdev/berth/pkg/generated/clientset/versioned/scheme"
)

// eventFlushTimeout bounds how long a stopping recorder waits for the Events recorded so far to be written.
const eventFlushTimeout = 5 * time.Second

// NewEventRecorder starts a broadcaster that writes berth's Events to the API server, and returns a recorder for
// the controller and a function that stops the broadcaster. Call that function after the controller's workers
// have stopped: it writes the Events they recorded (waiting for at most eventFlushTimeout) before it stops. The
// broadcaster does not stop with ctx, which only carries the logger: the Events of the syncs that drain after a
// shutdown signal are written too.
//
// The Events are core/v1 Events, as kube-controller-manager's controllers write them, not events.k8s.io/v1 ones:
// `kubectl describe` orders an object's Events by lastTimestamp and counts repeats by count, two fields that
// only core/v1 Events carry (events.k8s.io/v1 refuses them), so the Events of the newer API are listed in the
// order of their first occurrence, and a repeat shows as a single Event at its first time.
func NewEventRecorder(ctx context.Context, kubeClient kubernetes.Interface) (record.EventRecorderLogger, func(), error) {
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), berthscheme.AddToScheme(scheme)); err != nil {
		return nil, nil, fmt.Errorf("building the scheme for Events: %w", err)
	}
	sink := &trackedSink{sink: &typedcorev1.EventSinkImpl{Interface: kubeClient.CoreV1().Events("")}}
	writeCtx, stopWriting := context.WithCancel(context.WithoutCancel(ctx))
	broadcaster := record.NewBroadcaster(record.WithContext(writeCtx))
	broadcaster.StartRecordingToSink(sink)
	stop := func() {
		// Let the Events recorded so far reach the API server before the broadcaster stops taking them.
		sink.waitIdle(eventFlushTimeout)
		broadcaster.Shutdown()
		stopWriting()
	}
	return broadcaster.NewRecorder(scheme, corev1.EventSource{Component: FieldManager}), stop, nil
}

// trackedSink is an EventSink that knows whether writes are under way, so that a stopping recorder can wait for
// them. client-go's recorder and broadcaster hand an Event on through goroutines of their own, and tell nobody
// when they are done with it: the Events recorded so far are written only once no write has been under way, or
// started, for sinkIdleTime.
type trackedSink struct {
	sink record.EventSink

	mu         sync.Mutex
	underWay   int
	lastActive time.Time
}

// sinkIdleTime is how long without a write under way counts as all written.
const sinkIdleTime = 200 * time.Millisecond

func (s *trackedSink) Create(event *corev1.Event) (*corev1.Event, error) {
	defer s.track()()
	return s.sink.Create(event)
}

func (s *trackedSink) Update(event *corev1.Event) (*corev1.Event, error) {
	defer s.track()()
	return s.sink.Update(event)
}

func (s *trackedSink) Patch(event *corev1.Event, data []byte) (*corev1.Event, error) {
	defer s.track()()
	return s.sink.Patch(event, data)
}

// track records the start of a write and returns the function that records its end.
func (s *trackedSink) track() func() {
	s.activity(1)
	return func() { s.activity(-1) }
}

func (s *trackedSink) activity(delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.underWay += delta
	s.lastActive = time.Now()
}

// waitIdle returns once no write has been under way for sinkIdleTime, or after timeout.
func (s *trackedSink) waitIdle(timeout time.Duration) {
	s.activity(0) // the writes of the Events just recorded may not have started yet
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		idle := s.underWay == 0 && time.Since(s.lastActive) >= sinkIdleTime
		s.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
