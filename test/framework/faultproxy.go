package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/berthdev/berth/pkg/metrics"
)

// The faults a FaultProxy injects, as its Faults counts them.
const (
	// FaultInternalError answers 500 without forwarding the request.
	FaultInternalError = "500"
	// FaultTooManyRequests answers 429 with Retry-After: 1 without forwarding the request, as the API server's
	// priority and fairness does when a client's share is used up. client-go waits and retries by itself.
	FaultTooManyRequests = "429"
	// FaultTimeout answers 504 after FaultOptions.TimeoutDelay. A request that is not a watch is forwarded
	// first and its answer thrown away: the API server did what was asked, and the client cannot know it, as
	// when a gateway gives up on an answer that comes too late.
	FaultTimeout = "504"
	// FaultWatchCut forwards a watch and cuts its connection after a random time, in the middle of the stream
	// (see FaultOptions.WatchCutWithin).
	FaultWatchCut = "watch-cut"
)

// FaultOptions configure a FaultProxy.
type FaultOptions struct {
	// Rate is the share of requests, from 0 to 1, that get a fault: one of 500, 429 and 504, chosen at random.
	Rate float64
	// Seed makes the choice of requests and faults repeatable for a given order of requests.
	Seed uint64
	// TimeoutDelay is how long a request answered with 504 takes.
	TimeoutDelay time.Duration
	// WatchCutWithin, when not 0, has every watch that is forwarded cut at a random time within it: a watch lives
	// for minutes otherwise, and a share of the few watches a client makes would cut next to none.
	WatchCutWithin time.Duration
}

// FaultProxy is a reverse proxy in front of the cluster's kube-apiserver, for tests of what a client does when the
// API server misbehaves. It serves HTTPS (HTTP/1.1, so that a watch has a connection of its own) on 127.0.0.1,
// with a certificate of its own, and forwards requests with their credentials (a bearer token in the
// Authorization header; client-go sends none over plain HTTP) to the API server; a share of them gets a fault
// instead. It counts the requests it receives, by verb, and the faults it injected, by kind.
type FaultProxy struct {
	// URL is the proxy's address, https://127.0.0.1:PORT.
	URL string

	opts      FaultOptions
	upstream  *url.URL
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	server    *httptest.Server
	// closed ends the delays of requests under way when the proxy is closed.
	closed chan struct{}

	mu       sync.Mutex
	random   *rand.Rand
	requests map[string]int
	received []Received
	captured map[string]bool // resources whose answers' bodies are kept
	faults   map[string]int
	// blocked, when not nil, matches the requests that Block holds; unblocked is closed when they may go.
	blocked   func(verb, resource string) bool
	unblocked chan struct{}
	// openWatches cancels the watches under way, so that Block can cut those it matches.
	openWatches map[*openWatch]struct{}
	answered    []Answered
}

// openWatch is a watch the proxy forwards: what it watches, and how to cut it.
type openWatch struct {
	resource string
	cut      context.CancelFunc
}

// Answered is a request that the proxy forwarded to the API server, and the API server's answer.
type Answered struct {
	Verb, Resource string
	Code           int
	// At is when the answer came back to the proxy: the API server had done what was asked by then.
	At time.Time
	// Accept is the request's Accept header, and ContentType the answer's Content-Type: what the client asked
	// for and got (a metadata client asks for PartialObjectMetadata).
	Accept, ContentType string
}

// StartFaultProxy starts a FaultProxy in front of this cluster's API server. Close it when done.
func (c *Cluster) StartFaultProxy(opts FaultOptions) (*FaultProxy, error) {
	if opts.Rate < 0 || opts.Rate > 1 {
		return nil, fmt.Errorf("fault rate %v is not between 0 and 1", opts.Rate)
	}
	upstream, err := url.Parse(c.Config.Host)
	if err != nil {
		return nil, fmt.Errorf("the API server's address %q: %w", c.Config.Host, err)
	}
	ca, err := os.ReadFile(c.CAFile())
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", c.CAFile())
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	transport.MaxIdleConnsPerHost = 100

	p := &FaultProxy{
		opts:      opts,
		upstream:  upstream,
		transport: transport,
		closed:    make(chan struct{}),
		random:    rand.New(rand.NewPCG(opts.Seed, opts.Seed)),
		requests:  map[string]int{},
		captured:  map[string]bool{},
		faults:    map[string]int{},

		openWatches: map[*openWatch]struct{}{},
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		Transport: transport,
		// Watches are streams: every event goes to the client as soon as it comes.
		FlushInterval: -1,
		// A watch cut on purpose, or a client gone, is no news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	// httptest's server listens on 127.0.0.1, with a certificate for that address.
	p.server = httptest.NewUnstartedServer(p)
	p.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.server.StartTLS()
	p.URL = p.server.URL
	return p, nil
}

// ServeHTTP counts the request and forwards it, or injects a fault, or holds it while it is blocked.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	verb, resource := metrics.RequestVerbAndResource(r)
	if !p.waitUnblocked(r.Context(), verb, resource) {
		return
	}
	p.mu.Lock()
	p.received = append(p.received, Received{Verb: verb, Resource: resource, Accept: r.Header.Get("Accept")})
	received := len(p.received) - 1
	p.mu.Unlock()
	r = r.WithContext(context.WithValue(r.Context(), receivedKey{}, received))
	fault, cutAfter := p.decide(verb)
	switch fault {
	case FaultInternalError:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError,
			"injected fault: internal error")
	case FaultTooManyRequests:
		w.Header().Set("Retry-After", "1")
		writeStatus(w, http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests,
			"injected fault: too many requests, please try again later")
	case FaultTimeout:
		if verb != "watch" {
			p.forwardAndDiscard(r)
		}
		select {
		case <-time.After(p.opts.TimeoutDelay):
		case <-r.Context().Done():
			return
		case <-p.closed:
		}
		writeStatus(w, http.StatusGatewayTimeout, metav1.StatusReasonTimeout,
			"injected fault: the server was unable to return a response in the time allotted")
	case FaultWatchCut:
		// Cancelling the forwarded request ends the copy of the stream; ReverseProxy then aborts the answer, and
		// the client's connection is closed in the middle of the stream.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		timer := time.AfterFunc(cutAfter, cancel)
		defer timer.Stop()
		p.proxy.ServeHTTP(w, r.WithContext(ctx))
	default:
		p.forward(w, r, verb, resource)
	}
}

// forward sends r to the API server and its answer to the client, and records the answer. A watch can be cut
// by Block.
func (p *FaultProxy) forward(w http.ResponseWriter, r *http.Request, verb, resource string) {
	i, known := r.Context().Value(receivedKey{}).(int)
	recorder := &codeRecorder{ResponseWriter: w, code: http.StatusOK, onHeader: func(header http.Header) {
		// A watch's answer starts long before it ends: what the API server sends is known from its headers.
		if known {
			p.mu.Lock()
			p.received[i].ContentType = header.Get("Content-Type")
			p.mu.Unlock()
		}
	}}
	p.mu.Lock()
	if known && p.captured[resource] {
		recorder.onBody = func(b []byte) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.received[i].Body = append(p.received[i].Body, b...)
		}
	}
	p.mu.Unlock()
	if verb == "watch" {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		watch := &openWatch{resource: resource, cut: cancel}
		p.mu.Lock()
		p.openWatches[watch] = struct{}{}
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			delete(p.openWatches, watch)
			p.mu.Unlock()
		}()
		r = r.WithContext(ctx)
	}
	p.proxy.ServeHTTP(recorder, r)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answered = append(p.answered, Answered{Verb: verb, Resource: resource, Code: recorder.code, At: time.Now(),
		Accept: r.Header.Get("Accept"), ContentType: recorder.Header().Get("Content-Type")})
}

// Block holds every new request for which match (of its verb and resource, as metrics.RequestVerbAndResource
// names them) returns true, until Unblock, and cuts the watches under way that it matches: as a network that
// loses one kind of request, or an API server that stalls on it. A held request the client gives up on is never
// forwarded.
func (p *FaultProxy) Block(match func(verb, resource string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = match
	p.unblocked = make(chan struct{})
	for watch := range p.openWatches {
		if match("watch", watch.resource) {
			watch.cut()
		}
	}
}

// Unblock lets the requests that Block holds go on, and new ones pass.
func (p *FaultProxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked != nil {
		p.blocked = nil
		close(p.unblocked)
	}
}

// waitUnblocked holds a request that Block matches until Unblock, and tells whether it may go on: not when its
// client gave up, or the proxy was closed.
func (p *FaultProxy) waitUnblocked(ctx context.Context, verb, resource string) bool {
	p.mu.Lock()
	match, unblocked := p.blocked, p.unblocked
	p.mu.Unlock()
	if match == nil || !match(verb, resource) {
		return true
	}
	select {
	case <-unblocked:
		return true
	case <-ctx.Done():
		return false
	case <-p.closed:
		return false
	}
}

// Answers lists the requests the proxy forwarded and the API server answered, in the order of their answers.
func (p *FaultProxy) Answers() []Answered {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.answered)
}

// decide counts a request of verb and chooses its fault ("" for none), and for a watch cut, when to cut.
func (p *FaultProxy) decide(verb string) (fault string, cutAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests[verb]++
	switch {
	case p.random.Float64() < p.opts.Rate:
		kinds := []string{FaultInternalError, FaultTooManyRequests, FaultTimeout}
		fault = kinds[p.random.IntN(len(kinds))]
	case verb == "watch" && p.opts.WatchCutWithin > 0:
		fault = FaultWatchCut
		cutAfter = time.Duration(p.random.Int64N(int64(p.opts.WatchCutWithin)))
	default:
		return "", 0
	}
	p.faults[fault]++
	return fault, cutAfter
}

// forwardAndDiscard sends r to the API server and throws its answer away.
func (p *FaultProxy) forwardAndDiscard(r *http.Request) {
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = p.upstream.Scheme, p.upstream.Host
	out.Host, out.RequestURI = "", ""
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// writeStatus answers as the API server does when it fails a request: with a Status object.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, message string) {
	status := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  message,
		Reason:   reason,
		Code:     int32(code),
	}
	if code == http.StatusTooManyRequests {
		status.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(status)
}

// Requests counts the requests the proxy received, faulty or not, by verb (get, list, watch, create, update,
// patch, apply, delete; see metrics.RequestVerbAndResource).
func (p *FaultProxy) Requests() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.requests)
}

// Faults counts the faults injected, by kind (FaultInternalError, ...).
func (p *FaultProxy) Faults() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.faults)
}

// WriteKubeconfig writes a kubeconfig file to path that reaches the API server through the proxy, trusting the
// proxy's certificate, and authenticates with token.
func (p *FaultProxy) WriteKubeconfig(path, token string) error {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.server.Certificate().Raw})
	config := clientcmdapi.NewConfig()
	config.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.URL, CertificateAuthorityData: ca}
	config.AuthInfos["token"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "token"}
	config.CurrentContext = "proxy"
	return clientcmd.WriteToFile(*config, path) // mode 0600
}

// Close stops the proxy at once: it closes its connections, watches included.
func (p *FaultProxy) Close() {
	close(p.closed)
	p.server.CloseClientConnections()
	p.server.Close()
	p.transport.CloseIdleConnections()
}
