package metrics

import (
	"net/http"
	"strconv"
	"strings"

	"k8s.io/component-base/metrics"
)

// APIRequests counts berth's requests to the API server by verb and resource: client-go's own REST client metric
// has the HTTP method and host but not the resource, and a write of a Deployment must be told apart from a write
// of an Event or a renewal of the Lease to see what each App costs.
type APIRequests struct {
	total *metrics.CounterVec
}

// NewAPIRequests creates the metric and registers it with register (see NewReconcile).
func NewAPIRequests(register func(...metrics.Registerable)) *APIRequests {
	r := &APIRequests{
		total: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem: subsystem,
			Name:      "api_requests_total",
			Help: "Requests berth sent to the API server, by verb (get, list, watch, create, update, patch, apply, " +
				"delete, deletecollection), resource (plural, with the subresource after a slash, e.g. apps/status) " +
				"and HTTP status code (\"<error>\" when no response came).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"verb", "resource", "code"}),
	}
	register(r.total)
	return r
}

// Wrap counts every request that goes through rt; it is meant for rest.Config.Wrap.
func (r *APIRequests) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		code := "<error>"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		verb, resource := RequestVerbAndResource(req)
		r.total.WithLabelValues(verb, resource, code).Inc()
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// RequestVerbAndResource names a request as the API server's audit log would: its verb, and its resource (with
// "/subresource"). A request outside the resource API (discovery, /version) has resource "".
func RequestVerbAndResource(req *http.Request) (verb, resource string) {
	segments := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	// /api/v1/... or /apis/GROUP/VERSION/...
	switch {
	case len(segments) >= 2 && segments[0] == "api":
		segments = segments[2:]
	case len(segments) >= 3 && segments[0] == "apis":
		segments = segments[3:]
	default:
		segments = nil
	}
	// /namespaces/NS/RESOURCE... is a namespaced resource; /namespaces and /namespaces/NS are namespaces.
	if len(segments) >= 3 && segments[0] == "namespaces" {
		segments = segments[2:]
	}
	named := len(segments) >= 2
	if len(segments) > 0 {
		resource = segments[0]
	}
	if len(segments) >= 3 {
		resource += "/" + segments[2]
	}

	switch req.Method {
	case http.MethodGet:
		switch {
		case named:
			verb = "get"
		case req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1":
			verb = "watch"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
		if strings.HasPrefix(req.Header.Get("Content-Type"), "application/apply-patch") {
			verb = "apply"
		}
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(req.Method)
	}
	return verb, resource
}
