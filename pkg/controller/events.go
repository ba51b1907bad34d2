package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"

	berthscheme "github.com/berthdev/berth/pkg/generated/clientset/versioned/scheme"
)

// eventFlushTimeout bounds how long a stopping recorder waits for the Events recorded so far to be written.
const eventFlushTimeout = 5 * time.Second

// NewEventRecorder starts an events.k8s.io/v1 broadcaster that writes berth's Events to the API server, and
// returns a recorder for the controller and a function that stops the broadcaster. Call that function after the
// controller's workers have stopped: it writes the Events they recorded (waiting for at most eventFlushTimeout)
// before it stops. The broadcaster does not stop with ctx, which only carries the logger: the Events of the syncs
// that drain after a shutdown signal are written too.
func NewEventRecorder(ctx context.Context, kubeClient kubernetes.Interface) (events.EventRecorder, func(), error) {
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), berthscheme.AddToScheme(scheme)); err != nil {
		return nil, nil, fmt.Errorf("building the scheme for Events: %w", err)
	}
	sink := &trackedSink{sink: &events.EventSinkImpl{Interface: kubeClient.EventsV1()}}
	writeCtx, stopWriting := context.WithCancel(context.WithoutCancel(ctx))
	broadcaster := events.NewBroadcaster(sink)
	if err := broadcaster.StartRecordingToSinkWithContext(writeCtx); err != nil {
		stopWriting()
		return nil, nil, fmt.Errorf("starting the event broadcaster: %w", err)
	}
	stop := func() {
		// Let the Events recorded so far reach the API server before the broadcaster stops taking them.
		sink.waitIdle(eventFlushTimeout)
		broadcaster.Shutdown()
		stopWriting()
	}
	return broadcaster.NewRecorder(scheme, FieldManager), stop, nil
}

// trackedSink is an EventSink that knows whether writes are under way, so that a stopping recorder can wait for
// them. client-go's recorder and broadcaster hand an Event on through goroutines of their own, and tell nobody
// when they are done with it: the Events recorded so far are written only once no write has been under way, or
// started, for sinkIdleTime.
type trackedSink struct {
	sink events.EventSink

	mu         sync.Mutex
	underWay   int
	lastActive time.Time
}

// sinkIdleTime is how long without a write under way counts as all written.
const sinkIdleTime = 200 * time.Millisecond

func (s *trackedSink) Create(ctx context.Context, event *eventsv1.Event) (*eventsv1.Event, error) {
	defer s.track()()
	return s.sink.Create(ctx, event)
}

func (s *trackedSink) Update(ctx context.Context, event *eventsv1.Event) (*eventsv1.Event, error) {
	defer s.track()()
	return s.sink.Update(ctx, event)
}

func (s *trackedSink) Patch(ctx context.Context, event *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	defer s.track()()
	return s.sink.Patch(ctx, event, data)
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
