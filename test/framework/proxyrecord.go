package framework

import (
	"net/http"
	"slices"
)

// What the FaultProxy records of the requests it forwards and of their answers: which requests it received and
// what the client asked for, and, for the resources a test names, what the API server sent.

// Received are the requests the proxy received, answered or not (a watch is answered when it ends), in order.
func (p *FaultProxy) Received() []Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// Received is a request the proxy received: its verb and resource (as metrics.RequestVerbAndResource names
// them), what the client asked for (its Accept header), and what it got.
type Received struct {
	Verb, Resource, Accept string
	// ContentType is the Content-Type of the answer the API server began to send, once it did.
	ContentType string
	// Body is what the API server sent, so far, for a resource of CaptureBodies.
	Body []byte
}

// CaptureBodies has the proxy keep the bodies of the answers to later requests on resource (see Received).
func (p *FaultProxy) CaptureBodies(resource string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.captured[resource] = true
}

// codeRecorder remembers the status code of an answer, and gives its headers and body to the proxy's records. It
// passes Flush on, for the streams of watches.
type codeRecorder struct {
	http.ResponseWriter
	code int
	// onHeader, when not nil, is given the answer's headers as they are sent.
	onHeader func(http.Header)
	// onBody, when not nil, is given the answer's body as it is sent.
	onBody func([]byte)
}

func (c *codeRecorder) Write(b []byte) (int, error) {
	if c.onBody != nil {
		c.onBody(b)
	}
	return c.ResponseWriter.Write(b)
}

func (c *codeRecorder) WriteHeader(code int) {
	c.code = code
	if c.onHeader != nil {
		c.onHeader(c.Header())
	}
	c.ResponseWriter.WriteHeader(code)
}

// receivedKey keys, in a forwarded request's context, its index in the proxy's received requests.
type receivedKey struct{}

func (c *codeRecorder) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
