package controller

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// Fights over a field.
//
// berth puts back what someone else changes in an object it owns. But two writers that each insist on their own
// value for a field undo each other forever: another controller, a script in a loop, or a mutating admission
// webhook or policy that rewrites a field on each of berth's own writes (an image to its digest, say). So berth
// counts its corrections of each object of each App. Each correction waits longer than the one before
// (CorrectionBackoff, doubling), and once berth has made CorrectionLimit of them within CorrectionWindow and sees
// the field changed yet again, it stops: the App is Degraded with reason FieldContested, which names the field
// and who changed it. berth tries again when the App changes, or once the hold is over: one correction, and if
// that one is undone too, a hold twice as long.
//
// A correction is told from a change of the App by the hash of the desired state that berth last wrote into the
// object (AnnotationAppliedFrom, or AnnotationCreatedFrom): when it is the hash of what the App wants now, the
// App has not changed since, and what differs was changed by someone else.

// AnnotationAppliedFrom holds the hash of the desired state that berth last applied to an object.
const AnnotationAppliedFrom = "berth.dev/applied-from"

// Defaults of the Options that bound corrections.
const (
	DefaultCorrectionLimit   = 5
	DefaultCorrectionWindow  = 10 * time.Minute
	DefaultCorrectionBackoff = time.Second
	// maxHolds caps the doubling of holds: the longest is 2^maxHolds windows.
	maxHolds = 3
)

// rewrittenByAdmission names who changed a field that berth still owns, with another value than berth wrote: it
// can only have been rewritten during berth's own write.
const rewrittenByAdmission = "a mutating admission webhook or policy, on berth's own write"

// driftedField is a field that berth sets and that does not have berth's value.
type driftedField struct {
	path fieldpath.Path
	// rewritten tells that berth still owns the field, with another value than berth wrote (see
	// rewrittenByAdmission); otherwise another manager has taken the field from berth.
	rewritten bool
}

// driftedFields lists the fields that desired (an apply configuration) sets and that owned (what berth owns of
// the object, as an apply configuration) lacks or has with another value. Lists of objects are matched by their
// keys (name, or port and protocol), as server-side apply matches them.
func driftedFields(desired, owned any) ([]driftedField, error) {
	d, err := toJSONValue(desired)
	if err != nil {
		return nil, err
	}
	o, err := toJSONValue(owned)
	if err != nil {
		return nil, err
	}
	var drifted []driftedField
	walkDrift(d, o, nil, &drifted)
	return drifted, nil
}

// toJSONValue is v as encoding/json decodes it: maps, lists and scalars, to walk.
func toJSONValue(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	var value any
	if err := json.Unmarshal(data, &value); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", v, err)
	}
	return value, nil
}

func walkDrift(desired, owned any, path fieldpath.Path, drifted *[]driftedField) {
	switch d := desired.(type) {
	case map[string]any:
		o, _ := owned.(map[string]any)
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkDrift(d[k], o[k], appendPath(path, fieldpath.PathElement{FieldName: &k}), drifted)
		}
	case []any:
		o, _ := owned.([]any)
		for i, item := range d {
			key := listKey(item)
			if key == nil {
				var match any
				if i < len(o) {
					match = o[i]
				}
				walkDrift(item, match, appendPath(path, fieldpath.PathElement{Index: &i}), drifted)
				continue
			}
			var match any
			for _, candidate := range o {
				if k := listKey(candidate); k != nil && k.Equals(*key) {
					match = candidate
					break
				}
			}
			walkDrift(item, match, appendPath(path, fieldpath.PathElement{Key: key}), drifted)
		}
	default:
		switch {
		case owned == nil:
			*drifted = append(*drifted, driftedField{path: path})
		case owned != desired:
			*drifted = append(*drifted, driftedField{path: path, rewritten: true})
		}
	}
}

// listKey is the key by which server-side apply tells apart the items of the lists berth sets: containers, env
// vars and ports. nil for an item that has none.
func listKey(item any) *value.FieldList {
	m, ok := item.(map[string]any)
	if !ok {
		return nil
	}
	protocol := func() any {
		if p, ok := m["protocol"]; ok {
			return p
		}
		return "TCP"
	}
	switch {
	case m["containerPort"] != nil:
		return fieldpath.KeyByFields("containerPort", jsonInt(m["containerPort"]), "protocol", protocol())
	case m["port"] != nil:
		return fieldpath.KeyByFields("port", jsonInt(m["port"]), "protocol", protocol())
	case m["name"] != nil:
		return fieldpath.KeyByFields("name", m["name"])
	}
	return nil
}

// jsonInt turns a number decoded by encoding/json (a float64) into the int64 that managedFields keys hold.
func jsonInt(v any) any {
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return int64(f)
	}
	return v
}

func appendPath(path fieldpath.Path, element fieldpath.PathElement) fieldpath.Path {
	return append(slices.Clip(path), element)
}

// fieldNames is how drifted fields are shown to people: at most three paths, and how many more there are.
func fieldNames(drifted []driftedField) string {
	var names []string
	for i, f := range drifted {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(drifted)-3))
			break
		}
		names = append(names, strings.TrimPrefix(f.path.String(), "."))
	}
	return strings.Join(names, ", ")
}

// changedBy names who changed the drifted fields of live, an object read from the API server with all its
// managedFields: the manager whose entry owns one of them now, as "name (Operation)"; else (a field removed
// owns no entry) the manager of the main resource (not a subresource such as status) whose entry changed last.
func changedBy(live metav1.Object, drifted []driftedField) string {
	for _, f := range drifted {
		if f.rewritten {
			return rewrittenByAdmission
		}
	}
	var newest *metav1.ManagedFieldsEntry
	for i, entry := range live.GetManagedFields() {
		if entry.Manager == FieldManager || entry.Subresource != "" || entry.FieldsV1 == nil {
			continue
		}
		owned := &fieldpath.Set{}
		if err := owned.FromJSON(entry.FieldsV1.GetRawReader()); err == nil {
			for _, f := range drifted {
				if owned.Has(f.path) {
					return describeManager(entry)
				}
			}
		}
		if newest == nil || newest.Time == nil || (entry.Time != nil && !entry.Time.Before(newest.Time)) {
			newest = &live.GetManagedFields()[i]
		}
	}
	if newest == nil {
		return "an unnamed writer (a removal leaves no field manager)"
	}
	return describeManager(*newest)
}

func describeManager(entry metav1.ManagedFieldsEntry) string {
	name := entry.Manager
	if name == "" {
		name = "a writer without a field manager"
	}
	return fmt.Sprintf("%q (%s)", name, entry.Operation)
}

// contest is a fight over fields of an App's object that berth has, for now, given up.
type contest struct {
	kind    string // "Deployment"
	name    string
	fields  string // fieldNames of the fields
	manager string // changedBy
	times   int    // berth's corrections within the window
	window  time.Duration
	hold    time.Duration
}

func (c *contest) message() string {
	changed := "changed by " + c.manager + " again after each of berth's"
	if c.manager == rewrittenByAdmission {
		changed = "rewritten by " + c.manager + ", on each of berth's"
	}
	return fmt.Sprintf("berth stopped correcting %s %q for %s, or until the App changes: %s %s last %d "+
		"corrections within %s", c.kind, c.name, c.hold, c.fields, changed, c.times, c.window)
}

// correctionKey is one object of one App.
type correctionKey struct {
	app  cache.ObjectName
	kind string
}

// correctionRecord is what berth remembers of its corrections of one object.
type correctionRecord struct {
	desired   string      // hash of the desired state that the corrections restored
	times     []time.Time // the corrections within the window, oldest first
	holdUntil time.Time   // berth makes no correction before this
	holds     int         // holds in a row, each twice as long as the one before
	contest   *contest    // what the current hold is about
}

// corrections counts berth's corrections of each App's objects, and decides when to stop making them.
type corrections struct {
	clock   clock.PassiveClock
	limit   int
	window  time.Duration
	backoff time.Duration

	mu      sync.Mutex
	records map[correctionKey]*correctionRecord
}

func newCorrections(clk clock.PassiveClock, limit int, window, backoff time.Duration) *corrections {
	return &corrections{clock: clk, limit: limit, window: window, backoff: backoff,
		records: map[correctionKey]*correctionRecord{}}
}

// correctionVerdict says whether berth may correct an object now. When it may not, the object is contested
// (held, until the hold is over: wait), or the correction waits (wait); or berth must stop correcting it now
// (hold: see corrections.hold).
type correctionVerdict struct {
	held *contest
	hold bool
	wait time.Duration
}

// verdict is asked when berth sees that fields it set in the object of kind of app, for the desired state with
// hash desired, were changed by someone else.
func (c *corrections) verdict(app cache.ObjectName, kind, desired string) correctionVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	r := c.record(correctionKey{app, kind}, desired)
	r.prune(now, c.window)
	switch {
	case now.Before(r.holdUntil):
		return correctionVerdict{held: r.contest, wait: r.holdUntil.Sub(now)}
	case len(r.times) == 0 && !now.Before(r.holdUntil.Add(c.window)):
		// A whole window in peace after the last hold: the fight is over.
		r.holds = 0
	}
	limit := c.limit
	if r.holds > 0 {
		// After a hold, one correction tells whether the other writer is still there.
		limit = 1
	}
	n := len(r.times)
	if n >= limit {
		return correctionVerdict{hold: true}
	}
	if n > 0 {
		next := r.times[n-1].Add(min(c.backoff<<(n-1), c.window))
		if now.Before(next) {
			return correctionVerdict{wait: next.Sub(now)}
		}
	}
	return correctionVerdict{}
}

// hold stops berth's corrections of the object of kind of app, named name, after a verdict said so: drifted
// are the fields changed yet again, by who. It returns the contest, and how long it holds.
func (c *corrections) hold(app cache.ObjectName, kind, name, desired string, drifted []driftedField,
	who string) (*contest, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.record(correctionKey{app, kind}, desired)
	hold := c.window << min(r.holds, maxHolds)
	r.holds++
	r.holdUntil = c.clock.Now().Add(hold)
	r.contest = &contest{kind: kind, name: name, fields: fieldNames(drifted), manager: who,
		times: len(r.times), window: c.window, hold: hold}
	return r.contest, hold
}

// corrected records a correction of the object of kind of app, for the desired state with hash desired.
func (c *corrections) corrected(app cache.ObjectName, kind, desired string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.record(correctionKey{app, kind}, desired)
	r.times = append(r.times, c.clock.Now())
}

// record returns the record of key, a new one when berth has none or when the App has changed since.
func (c *corrections) record(key correctionKey, desired string) *correctionRecord {
	r := c.records[key]
	if r == nil || r.desired != desired {
		r = &correctionRecord{desired: desired}
		c.records[key] = r
	}
	return r
}

// settled is told that the object of kind of app is as desired: once no correction of it is left within the
// window, and no hold, berth forgets it.
func (c *corrections) settled(app cache.ObjectName, kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := correctionKey{app, kind}
	r := c.records[key]
	if r == nil {
		return
	}
	now := c.clock.Now()
	r.prune(now, c.window)
	if len(r.times) == 0 && !now.Before(r.holdUntil.Add(c.window)) {
		delete(c.records, key)
	}
}

// forget drops everything remembered of a deleted App.
func (c *corrections) forget(app cache.ObjectName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.records {
		if key.app == app {
			delete(c.records, key)
		}
	}
}

func (r *correctionRecord) prune(now time.Time, window time.Duration) {
	i := 0
	for i < len(r.times) && now.Sub(r.times[i]) >= window {
		i++
	}
	r.times = r.times[i:]
}
