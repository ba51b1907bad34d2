package framework

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// AuditEvent is what a test reads of one entry of the API server's audit log (audit.k8s.io/v1 Event, level
// Metadata): who made which write of which object, and how it ended.
type AuditEvent struct {
	Verb      string `json:"verb"`
	UserAgent string `json:"userAgent"`
	User      struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	StageTimestamp time.Time `json:"stageTimestamp"`
	// RequestObject is the object written, for the requests the audit policy logs at level Request (the table of
	// the buckets' owners); empty otherwise.
	RequestObject json.RawMessage `json:"requestObject"`
}

// String is the event in one line, for a test's failure message.
func (e AuditEvent) String() string {
	what := e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		what += "/" + e.ObjectRef.Subresource
	}
	return fmt.Sprintf("%s %s %s/%s by %q (%s) at %s: %d", e.Verb, what, e.ObjectRef.Namespace, e.ObjectRef.Name,
		e.UserAgent, e.User.Username, e.StageTimestamp.Format(time.RFC3339Nano), e.ResponseStatus.Code)
}

// ByBerth tells whether berth's clients made the request: their user agent starts with "berth" (see
// cmd/controller's restConfig).
func (e AuditEvent) ByBerth() bool {
	return strings.HasPrefix(e.UserAgent, "berth")
}

// Writes reads the audit log of writes (WithAuditLog; it holds the reads of Secrets too) and returns the requests
// that completed after since and that match says are of interest, in the order the API server logged them.
func (c *Cluster) Writes(since time.Time, match func(AuditEvent) bool) ([]AuditEvent, error) {
	if c.AuditLog == "" {
		return nil, errors.New("the cluster has no audit log: start it WithAuditLog")
	}
	f, err := os.Open(c.AuditLog)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var events []AuditEvent
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for scanner.Scan() {
		var e AuditEvent
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("reading %s: %w", c.AuditLog, err)
		}
		if e.StageTimestamp.After(since) && match(e) {
			events = append(events, e)
		}
	}
	return events, scanner.Err()
}
