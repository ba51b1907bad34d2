package scale

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The chart: three panels side by side, each a figure against the number of Apps (on a log scale), berth
// beside the floor. Plain SVG written by hand, so that it needs no dependency and reads in any browser.
const (
	panelWidth  = 300
	panelHeight = 230
	// legendHeight is the strip under the panels that holds the legend.
	legendHeight = 30
	berthColor   = "#c0392b"
	floorColor   = "#7f8c8d"
	boundColor   = "#2c3e50"
)

type series struct {
	name, color, dash string
	values            []float64 // one per N; NaN where there is none
}

type panel struct {
	title  string
	series []series
}

// chart draws the medians of the runs: berth's and the floor's time to converge, with the rate limit's bound for
// the floor's requests, their writes per App, and berth's heap per App (of its first run).
func chart(s setup, all []measurement) string {
	var ns []int
	var converge, floorConverge, floorBound, writes, floorWrites, heap []float64
	eventsCounted := false
	for _, m := range all {
		ns = append(ns, m.n)
		converge = append(converge, of(m.berth, func(r result) float64 { return r.converge.Seconds() }).median)
		floorConverge = append(floorConverge, of(m.floor, func(r result) float64 { return r.converge.Seconds() }).median)
		floorBound = append(floorBound, of(m.floor, func(r result) float64 {
			return bound(s.limits, r.untilConverged).Seconds()
		}).median)
		w := of(m.berth, func(r result) float64 { return eventless(r, m) }).median
		if math.IsNaN(w) { // berth's requests were counted without their resource
			w = of(m.berth, func(r result) float64 { return r.requests.writes(true) / perApp(m) }).median
			eventsCounted = true
		}
		writes = append(writes, w)
		floorWrites = append(floorWrites, of(m.floor, func(r result) float64 { return eventless(r, m) }).median)
		heap = append(heap, m.berth[0].heap/perApp(m)/1024)
	}
	writesTitle := "writes per App (Events not counted)"
	if eventsCounted {
		writesTitle = "writes per App (berth's with Events)"
	}
	panels := []panel{
		{"time until every App converged (s)", []series{
			{"berth", berthColor, "", converge}, {"write floor", floorColor, "5,4", floorConverge},
			{"rate limit's bound", boundColor, "1,3", floorBound}}},
		{writesTitle, []series{
			{"berth", berthColor, "", writes}, {"write floor", floorColor, "5,4", floorWrites}}},
		{"Go heap per App after a GC (KiB)", []series{{"berth", berthColor, "", heap}}},
	}
	return drawChart(panels, ns, "Apps")
}

// drawChart draws panels side by side over the same ns (of Apps, or members: xLabel), with the legend of the
// first panel's series under them.
func drawChart(panels []panel, ns []int, xLabel string) string {
	var b strings.Builder
	width := len(panels) * panelWidth
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" `+
		`font-family="sans-serif" font-size="11">`+"\n", width, panelHeight+legendHeight, width, panelHeight+legendHeight)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, panelHeight+legendHeight)
	for i, p := range panels {
		drawPanel(&b, float64(i*panelWidth), p, ns, xLabel)
	}
	for i, s := range panels[0].series {
		x := float64(width)/2 - float64(len(panels[0].series))*75 + float64(i)*150
		y := float64(panelHeight) + legendHeight/2
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n",
			x, y, x+24, y, s.color, s.dash)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", x+30, y+4, s.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// drawPanel draws one panel whose left edge is at x0: its title, a y axis from 0 with four grid lines, the
// numbers ns (of Apps, or members: xLabel) under the x axis, and each series as a line with a dot per N.
func drawPanel(b *strings.Builder, x0 float64, p panel, ns []int, xLabel string) {
	left, right := x0+50, x0+panelWidth-20
	top, bottom := 30.0, float64(panelHeight)-30

	fmt.Fprintf(b, `<text x="%.0f" y="16" text-anchor="middle" font-weight="bold">%s</text>`+"\n",
		x0+panelWidth/2, p.title)
	var highest float64
	for _, s := range p.series {
		for _, v := range s.values {
			if !math.IsNaN(v) {
				highest = math.Max(highest, v)
			}
		}
	}
	yMax := niceCeiling(highest)
	yOf := func(v float64) float64 { return bottom - v/yMax*(bottom-top) }
	for k := range 5 {
		v := yMax * float64(k) / 4
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, yOf(v), right, yOf(v))
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%g</text>`+"\n", left-5, yOf(v)+4, v)
	}

	// The Ns on a log scale: 100, 1,000 and 10,000 Apps (or 1, 2 and 4 members) are equally far apart.
	lo, hi := math.Log10(float64(ns[0])), math.Log10(float64(ns[0]))
	for _, n := range ns {
		lo, hi = math.Min(lo, math.Log10(float64(n))), math.Max(hi, math.Log10(float64(n)))
	}
	xOf := func(n int) float64 {
		if hi == lo {
			return (left + right) / 2
		}
		return left + 15 + (math.Log10(float64(n))-lo)/(hi-lo)*(right-left-30)
	}
	for _, n := range ns {
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d</text>`+"\n", xOf(n), bottom+15, n)
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`+"\n",
		(left+right)/2, bottom+28, xLabel)

	for _, s := range p.series {
		var points []string
		for i, v := range s.values {
			if math.IsNaN(v) {
				continue
			}
			x, y := xOf(ns[i]), yOf(v)
			points = append(points, fmt.Sprintf("%.1f,%.1f", x, y))
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, %d %s: %.3g</title></circle>`+"\n",
				x, y, s.color, s.name, ns[i], xLabel, v)
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n",
			strings.Join(points, " "), s.color, s.dash)
	}
}

// niceCeiling is the smallest of 1, 2, 4, 6 and 8 times a power of ten that is at least v: the top of a y axis
// whose quarters are round numbers.
func niceCeiling(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	power := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 6, 8, 10} {
		if m*power >= v {
			return m * power
		}
	}
	return 10 * power
}

// TestChartIsSVG draws the chart of made-up results and checks that it is well-formed XML.
func TestChartIsSVG(t *testing.T) {
	var all []measurement
	for i, n := range []int{100, 1000, 10000} {
		r := result{converge: time.Duration(i+1) * time.Minute, heap: float64(n) * 10240,
			requests:       requests{{"create", "deployments"}: float64(n), {"create", "events"}: float64(n)},
			untilConverged: requests{{"create", "deployments"}: float64(n)}}
		all = append(all, measurement{n: n, berth: []result{r, r}, floor: []result{r}})
	}
	s := setup{limits: limits{qps: 50, burst: 100, workers: 10}}
	d := xml.NewDecoder(strings.NewReader(chart(s, all)))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
}
