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

// markdown is the report of one N: the figures of berth beside the floor's, median and spread over the runs, and
// the requests of each runner's first run.
func markdown(s setup, m measurement) string {
	b, f := m.berth[0], m.floor[0] // the first runs: berth's alone measured the idle window and the memory
	var out strings.Builder
	fmt.Fprintf(&out, "### %d Apps\n\n", m.n)
	fmt.Fprintf(&out, "QPS %g, burst %d, %d workers, for berth and the floor alike; \"per App\" divides by the %d Apps "+
		"(the %d and the one created %s after the start). Each figure is the median of %d run(s) of berth and %d of "+
		"the floor, run alternately on fresh clusters, with the least and greatest value in brackets; the idle "+
		"window and the memory are berth's first run's.\n\n",
		s.qps, s.burst, s.workers, m.n+1, m.n, extraAppDelay, len(m.berth), len(m.floor))
	out.WriteString("| | berth | write floor | berth / floor |\n|---|---:|---:|---:|\n")
	row := func(what, berth, floor, ratio string) {
		fmt.Fprintf(&out, "| %s | %s | %s | %s |\n", what, berth, floor, ratio)
	}
	converge := func(r result) float64 { return r.converge.Seconds() }
	row("every App converged (Deployment, Service, status of its generation)",
		secondsSpread(of(m.berth, converge)), secondsSpread(of(m.floor, converge)), ratioSpread(m, converge))
	bounded := func(r result) float64 { return bound(s.limits, r.untilConverged).Seconds() }
	row(fmt.Sprintf("the rate limit's bound: (requests through the shared token bucket until converged - burst %d) / QPS %g",
		s.burst, s.qps), secondsSpread(of(m.berth, bounded)), secondsSpread(of(m.floor, bounded)), "")
	overBound := func(r result) float64 { return r.converge.Seconds() / bound(s.limits, r.untilConverged).Seconds() }
	row("converged / the bound", ratioOnly(of(m.berth, overBound)), ratioOnly(of(m.floor, overBound)), "")
	bucket := func(r result) float64 { return bucketRequests(r.untilConverged) / perApp(m) }
	row("requests through the shared token bucket until converged, per App",
		fractionSpread(of(m.berth, bucket)), fractionSpread(of(m.floor, bucket)), ratioSpread(m, bucket))
	busy := func(r result) float64 { return 100 * r.busy }
	row("the machine's CPU busy until converged (%)", numberSpread(of(m.berth, busy)), numberSpread(of(m.floor, busy)), "")
	cores := func(r result) float64 { return r.cpu.Seconds() / r.converge.Seconds() }
	row("berth's CPU until converged (cores)", fractionSpread(of(m.berth, cores)), "", "")
	extra := func(r result) float64 { return r.extra.Seconds() }
	row(fmt.Sprintf("the App created %s after the start converged after", extraAppDelay),
		secondsSpread(of(m.berth, extra)), secondsSpread(of(m.floor, extra)), "")
	writes := func(r result) float64 { return r.requests.writes(true) / perApp(m) }
	row("writes per App", fractionSpread(of(m.berth, writes)), fractionSpread(of(m.floor, writes)), ratioSpread(m, writes))
	noEvents := func(r result) float64 { return eventless(r, m) }
	row("writes per App, Events not counted", fractionSpread(of(m.berth, noEvents)),
		fractionSpread(of(m.floor, noEvents)), ratioSpread(m, noEvents))
	row(fmt.Sprintf("writes in the idle window (%s: three resync periods and 5 s)", b.idleWindow),
		number(b.idle.writes(true)), "", "")
	row("GET and LIST requests in the idle window", number(b.idle.reads()), "", "")
	row("Go heap after a GC (live objects)", fmt.Sprintf("%s (%s per App)", mib(b.heap), kib(b.heap/perApp(m))), "", "")
	row("RSS", fmt.Sprintf("%s (%s per App)", mib(b.rss), kib(b.rss/perApp(m))), "", "")
	row(fmt.Sprintf("Go heap after a GC, before / after %d foreign Deployments", s.foreign),
		fmt.Sprintf("%s / %s", mib(b.heap), mib(b.heapForeign)), "", "")
	if secrets := float64(m.n * s.secrets); secrets > 0 {
		row(fmt.Sprintf("Go heap after a GC, before / after %d more Secrets (4 KiB each; no App reads them)",
			m.n*s.secrets), fmt.Sprintf("%s / %s (%.0f bytes per Secret)", mib(b.heapForeign), mib(b.heapSecrets),
			(b.heapSecrets-b.heapForeign)/secrets), "", "")
	}
	if !b.requests.knowsResources() {
		out.WriteString("\nberth has no berth_api_requests_total: its requests are client-go's " +
			"rest_client_requests_total, by HTTP method only (resource ?; \"get\" includes watches).\n")
	}

	out.WriteString("\n| requests of the first runs (berth: until every App is Available and it stops writing) | berth | write floor |\n" +
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

// ratioSpread is the ratio of berth's median to the floor's, with the least and greatest ratio of the runs taken
// in pairs (berth's run i against the floor's run i, which ran next to it).
func ratioSpread(m measurement, figure func(result) float64) string {
	var ratios []float64
	for i := range min(len(m.berth), len(m.floor)) {
		ratios = append(ratios, figure(m.berth[i])/figure(m.floor[i]))
	}
	b, f := of(m.berth, figure), of(m.floor, figure)
	if math.IsNaN(b.median) || math.IsNaN(f.median) || f.median == 0 {
		return ""
	}
	r := spreadOf(ratios)
	if len(ratios) < 2 {
		return fmt.Sprintf("%.2fx", b.median/f.median)
	}
	return fmt.Sprintf("%.2fx (pairs %.2f-%.2f)", b.median/f.median, r.min, r.max)
}

// writeReport writes the reports of every N measured so far into dir: scale.md, scale.csv (a row per run),
// scale-requests.csv and the chart scale.svg.
func writeReport(dir string, s setup, all []measurement) error {
	var md strings.Builder
	fmt.Fprintf(&md, "# berth's scale benchmark, %s\n\n", time.Now().UTC().Format(time.RFC3339))
	var figures, reqs [][]string
	figures = append(figures, []string{"apps", "runner", "run", "converge_s", "bound_s",
		"bucket_requests_until_converged", "machine_cpu_busy", "cpu_s_until_converged", "extra_app_s",
		"writes_per_app", "writes_per_app_without_events", "idle_writes", "idle_reads", "heap_bytes",
		"heap_per_app_bytes", "rss_bytes", "heap_after_foreign_bytes", "heap_after_secrets_bytes"})
	reqs = append(reqs, []string{"apps", "runner", "run", "verb", "resource", "count"})
	for _, m := range all {
		md.WriteString(markdown(s, m) + "\n")
		for _, runner := range []struct {
			name string
			runs []result
		}{{"berth", m.berth}, {"floor", m.floor}} {
			for i, r := range runner.runs {
				isBerth := runner.name == "berth"
				cpu := math.NaN() // the floor runs in the test process
				if isBerth {
					cpu = r.cpu.Seconds()
				}
				row := []string{strconv.Itoa(m.n), runner.name, strconv.Itoa(i + 1), csvNumber(r.converge.Seconds()),
					csvNumber(bound(s.limits, r.untilConverged).Seconds()), csvNumber(bucketRequests(r.untilConverged)),
					csvNumber(r.busy), csvNumber(cpu), csvNumber(r.extra.Seconds()),
					csvNumber(r.requests.writes(true) / perApp(m)), csvNumber(eventless(r, m))}
				if isBerth && i == 0 {
					row = append(row, csvNumber(r.idle.writes(true)), csvNumber(r.idle.reads()), csvNumber(r.heap),
						csvNumber(r.heap/perApp(m)), csvNumber(r.rss), csvNumber(r.heapForeign), csvNumber(r.heapSecrets))
				} else {
					row = append(row, "", "", "", "", "", "", "")
				}
				figures = append(figures, row)
				for _, req := range r.requests.sorted() {
					reqs = append(reqs, []string{strconv.Itoa(m.n), runner.name, strconv.Itoa(i + 1), req.verb,
						req.resource, csvNumber(r.requests[req])})
				}
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
	return os.WriteFile(filepath.Join(dir, "scale.svg"), []byte(chart(s, all)), 0o644)
}

func writeCSV(path string, records [][]string) error {
	var out strings.Builder
	w := csv.NewWriter(&out)
	if err := w.WriteAll(records); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out.String()), 0o644)
}

// secondsSpread, fractionSpread, numberSpread and ratioOnly give a median with its least and greatest value, when
// there is more than one run.
func secondsSpread(v spread) string  { return withSpread(v, "%.1f", " s") }
func fractionSpread(v spread) string { return withSpread(v, "%.2f", "") }
func numberSpread(v spread) string   { return withSpread(v, "%.0f", "") }
func ratioOnly(v spread) string      { return withSpread(v, "%.2f", "x") }

func withSpread(v spread, format, unit string) string {
	if math.IsNaN(v.median) {
		return "n/a"
	}
	median := fmt.Sprintf(format, v.median) + unit
	if v.min == v.max {
		return median
	}
	return fmt.Sprintf("%s ("+format+"-"+format+")", median, v.min, v.max)
}

// number is a count: a whole number, or n/a.
func number(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func mib(bytes float64) string { return fmt.Sprintf("%.1f MiB", bytes/(1<<20)) }
func kib(bytes float64) string { return fmt.Sprintf("%.1f KiB", bytes/(1<<10)) }

func csvNumber(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	// Milliseconds and thousandths are all the precision there is; the rest is floating-point noise.
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
