package scale

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/pkg/metrics"
	"github.com/berthdev/berth/test/framework"
)

// request names API requests as berth's metric berth_api_requests_total does: the verb (get, list, watch,
// create, update, patch, apply, delete, deletecollection) and the resource (its plural, with "/status" for the
// status subresource, e.g. apps/status).
type request struct {
	verb, resource string
}

// unknownResource is the resource of requests counted by client-go's rest_client_requests_total, which has the
// HTTP method but not the resource: what is measured when berth does not have berth_api_requests_total.
const unknownResource = "?"

// requests counts API requests.
type requests map[request]float64

// writes counts the requests that change something; with events false, not those of Events.
func (r requests) writes(events bool) float64 {
	return r.sum(func(req request) bool {
		switch req.verb {
		case "create", "update", "patch", "apply", "delete", "deletecollection":
			return events || req.resource != "events"
		}
		return false
	})
}

// reads counts GET and LIST requests, not watches. Counted by rest_client_requests_total, "get" is any GET:
// watches too.
func (r requests) reads() float64 {
	return r.sum(func(req request) bool { return req.verb == "get" || req.verb == "list" })
}

func (r requests) sum(match func(request) bool) float64 {
	var n float64
	for req, count := range r {
		if match(req) {
			n += count
		}
	}
	return n
}

// knowsResources tells whether the requests were counted by resource, so that Events can be told apart.
func (r requests) knowsResources() bool {
	for req := range r {
		if req.resource == unknownResource {
			return false
		}
	}
	return true
}

// since is what was counted after before.
func (r requests) since(before requests) requests {
	diff := requests{}
	for req, count := range r {
		if d := count - before[req]; d != 0 {
			diff[req] = d
		}
	}
	return diff
}

// sorted lists the requests by verb, then resource.
func (r requests) sorted() []request {
	return slices.SortedFunc(maps.Keys(r), func(a, b request) int {
		return cmp.Or(cmp.Compare(a.verb, b.verb), cmp.Compare(a.resource, b.resource))
	})
}

// scrapeRequests reads berth's requests from its /metrics: berth_api_requests_total, or when berth does not
// have that metric, client-go's rest_client_requests_total, by HTTP method only.
func scrapeRequests(ctx context.Context, metricsURL string) (requests, error) {
	m, err := framework.ScrapeMetrics(ctx, metricsURL)
	if err != nil {
		return nil, err
	}
	return requestsIn(m), nil
}

// scrapeRequestsAndCPU reads berth's requests, as scrapeRequests does, and the CPU time it has used.
func scrapeRequestsAndCPU(ctx context.Context, metricsURL string) (requests, time.Duration, error) {
	m, err := framework.ScrapeMetrics(ctx, metricsURL)
	if err != nil {
		return nil, 0, err
	}
	if !m.Has("process_cpu_seconds_total", nil) {
		return nil, 0, fmt.Errorf("berth's /metrics has no process_cpu_seconds_total")
	}
	cpu := time.Duration(m.Sum("process_cpu_seconds_total", nil) * float64(time.Second))
	return requestsIn(m), cpu, nil
}

// requestsIn are berth's requests in its metrics m.
func requestsIn(m framework.Metrics) requests {
	r := requests{}
	if samples := m["berth_api_requests_total"]; len(samples) > 0 {
		for _, s := range samples {
			r[request{s.Labels["verb"], s.Labels["resource"]}] += s.Value
		}
		return r
	}
	verbs := map[string]string{"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
	for _, s := range m["rest_client_requests_total"] {
		verb, ok := verbs[s.Labels["method"]]
		if !ok {
			verb = strings.ToLower(s.Labels["method"])
		}
		r[request{verb, unknownResource}] += s.Value
	}
	return r
}

// requestCounter counts the requests of a client in the test process the way berth_api_requests_total
// counts berth's; it is meant for rest.Config.WrapTransport.
type requestCounter struct {
	mu     sync.Mutex
	counts requests
}

func newRequestCounter() *requestCounter { return &requestCounter{counts: requests{}} }

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		verb, resource := metrics.RequestVerbAndResource(req)
		r := request{verb, resource}
		c.mu.Lock()
		c.counts[r]++
		c.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

func (c *requestCounter) snapshot() requests {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// berthMemory is berth's live Go heap after a garbage collection (the bytes of the objects still reachable:
// its caches, mostly), and its resident memory, in bytes. It needs
// berth's --profiling: a GET of the heap profile with gc=1 runs a collection first. The profile is written to
// profilePath, for `go tool pprof -sample_index=inuse_space`.
func berthMemory(ctx context.Context, metricsAddress, profilePath string) (heap, rss float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddress+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("forcing a garbage collection in berth: %w", err)
	}
	profile, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("reading berth's heap profile: %w", err)
	}
	if err := os.WriteFile(profilePath, profile, 0o644); err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET /debug/pprof/heap?gc=1: %s (is --profiling on?)", resp.Status)
	}
	m, err := framework.ScrapeMetrics(ctx, "http://"+metricsAddress+"/metrics")
	if err != nil {
		return 0, 0, err
	}
	if !m.Has("go_memstats_heap_alloc_bytes", nil) || !m.Has("process_resident_memory_bytes", nil) {
		return 0, 0, fmt.Errorf("berth's /metrics has no go_memstats_heap_alloc_bytes or process_resident_memory_bytes")
	}
	return m.Sum("go_memstats_heap_alloc_bytes", nil), m.Sum("process_resident_memory_bytes", nil), nil
}
