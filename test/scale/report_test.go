package scale

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// perApp is what the per-App figures are divided by: the N Apps and the one created during the run.
func perApp(m measurement) float64 { return float64(m.n + 1) }

// eventless is the writes per App without Events, NaN when berth's requests were counted without their
// resource (rest_client_requests_total), so that Events cannot be told apart.
func eventless(r result, m measurement) float64 {
	if !r.requests.knowsResources() {
		return math.NaN()
	}
	return r.requests.writes(false) / perApp(m)
}

// markdown is the report of one N: the figures of berth beside the floor's, and the requests of each.
func markdown(s setup, m measurement) string {
	b, f := m.berth, m.floor
	var out strings.Builder
	fmt.Fprintf(&out, "### %d Apps\n\n", m.n)
	fmt.Fprintf(&out, "QPS %g, burst %d, %d workers, for berth and the floor alike; \"per App\" divides by the %d Apps "+
		"(the %d and the one created %s after the start).\n\n", s.qps, s.burst, s.workers, m.n+1, m.n, extraAppDelay)
	out.WriteString("| | berth | write floor | berth / floor |\n|---|---:|---:|---:|\n")
	row := func(what, berth, floor, ratio string) {
		fmt.Fprintf(&out, "| %s | %s | %s | %s |\n", what, berth, floor, ratio)
	}
	row("every App converged (Deployment, Service, status of its generation)",
		seconds(b.converge), seconds(f.converge), ratio(b.converge.Seconds(), f.converge.Seconds()))
	row(fmt.Sprintf("the App created %s after the start converged after", extraAppDelay),
		seconds(b.extra), seconds(f.extra), "")
	bw, fw := b.requests.writes(true)/perApp(m), f.requests.writes(true)/perApp(m)
	row("writes per App", fraction(bw), fraction(fw), ratio(bw, fw))
	bw, fw = eventless(b, m), eventless(f, m)
	row("writes per App, Events not counted", fraction(bw), fraction(fw), ratio(bw, fw))
	row(fmt.Sprintf("writes in the idle window (%s: three resync periods and 5 s)", b.idleWindow),
		number(b.idle.writes(true)), "", "")
	row("GET and LIST requests in the idle window", number(b.idle.reads()), "", "")
	row("Go heap after a GC (live objects)", fmt.Sprintf("%s (%s per App)", mib(b.heap), kib(b.heap/perApp(m))), "", "")
	row("RSS", fmt.Sprintf("%s (%s per App)", mib(b.rss), kib(b.rss/perApp(m))), "", "")
	row(fmt.Sprintf("Go heap after a GC, before / after %d foreign Deployments", s.foreign),
		fmt.Sprintf("%s / %s", mib(b.heap), mib(b.heapForeign)), "", "")
	if !b.requests.knowsResources() {
		out.WriteString("\nberth has no berth_api_requests_total: its requests are client-go's " +
			"rest_client_requests_total, by HTTP method only (resource ?; \"get\" includes watches).\n")
	}

	out.WriteString("\n| requests (berth: until every App is Available and it stops writing) | berth | write floor |\n" +
		"|---|---:|---:|\n")
	union := requests{}
	for req := range b.requests {
		union[req] = 1
	}
	for req := range f.requests {
		union[req] = 1
	}
	for _, req := range union.sorted() {
		resource := req.resource
		if resource == "" {
			resource = "(discovery)" // a request outside the resource API
		}
		fmt.Fprintf(&out, "| %s %s | %s | %s |\n", req.verb, resource, number(b.requests[req]), number(f.requests[req]))
	}
	return out.String()
}

// writeReport writes the reports of every N measured so far into dir: scale.md, scale.csv,
// scale-requests.csv and the chart scale.svg.
func writeReport(dir string, s setup, all []measurement) error {
	var md strings.Builder
	fmt.Fprintf(&md, "# berth's scale benchmark, %s\n\n", time.Now().UTC().Format(time.RFC3339))
	var figures, reqs [][]string
	figures = append(figures, []string{"apps", "runner", "converge_s", "extra_app_s", "writes_per_app",
		"writes_per_app_without_events", "idle_writes", "idle_reads", "heap_bytes", "heap_per_app_bytes",
		"rss_bytes", "heap_after_foreign_bytes"})
	reqs = append(reqs, []string{"apps", "runner", "verb", "resource", "count"})
	for _, m := range all {
		md.WriteString(markdown(s, m) + "\n")
		for _, runner := range []struct {
			name string
			r    result
		}{{"berth", m.berth}, {"floor", m.floor}} {
			r, isBerth := runner.r, runner.name == "berth"
			row := []string{strconv.Itoa(m.n), runner.name, csvNumber(r.converge.Seconds()),
				csvNumber(r.extra.Seconds()), csvNumber(r.requests.writes(true) / perApp(m)), csvNumber(eventless(r, m))}
			if isBerth {
				row = append(row, csvNumber(r.idle.writes(true)), csvNumber(r.idle.reads()), csvNumber(r.heap),
					csvNumber(r.heap/perApp(m)), csvNumber(r.rss), csvNumber(r.heapForeign))
			} else {
				row = append(row, "", "", "", "", "", "")
			}
			figures = append(figures, row)
			for _, req := range r.requests.sorted() {
				reqs = append(reqs, []string{strconv.Itoa(m.n), runner.name, req.verb, req.resource,
					csvNumber(r.requests[req])})
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "scale.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "scale.csv"), figures); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "scale-requests.csv"), reqs); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "scale.svg"), []byte(chart(all)), 0o644)
}

func writeCSV(path string, records [][]string) error {
	var out strings.Builder
	w := csv.NewWriter(&out)
	if err := w.WriteAll(records); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// number is a count: a whole number, or n/a.
func number(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// fraction is a figure per App, or n/a.
func fraction(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func mib(bytes float64) string { return fmt.Sprintf("%.1f MiB", bytes/(1<<20)) }
func kib(bytes float64) string { return fmt.Sprintf("%.1f KiB", bytes/(1<<10)) }

func csvNumber(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
