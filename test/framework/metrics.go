package framework

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/component-base/metrics/testutil"
)

// Sample is one series of a scraped metric: its labels and its value (a counter's, gauge's or untyped value; a
// histogram's or summary's sample count).
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Metrics is a scrape of a Prometheus /metrics endpoint: the series of each metric, by name.
type Metrics map[string][]Sample

// ScrapeMetrics gets url (a /metrics endpoint) and parses its Prometheus text format.
func ScrapeMetrics(ctx context.Context, url string) (Metrics, error) {
	text, err := ScrapeMetricsText(ctx, url)
	if err != nil {
		return nil, err
	}
	return ParseMetrics(text)
}

// ScrapeMetricsText gets url (a /metrics endpoint) and returns what it serves, in the Prometheus text format.
func ScrapeMetricsText(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body), nil
}

// SeriesNames returns the names of the series in text (the Prometheus text format) as a query names them: a
// histogram's are NAME_bucket, NAME_sum and NAME_count.
func SeriesNames(text string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// QueriedMetrics reads artifacts/monitoring/metrics.txt: the names of the metrics that the alerting rules and the
// dashboard query, which hack/update-codegen.sh extracts from their queries. "up" among them is Prometheus's own,
// made for each target it scrapes.
func QueriedMetrics() ([]string, error) {
	path := filepath.Join(RepoRoot(), "artifacts", "monitoring", "metrics.txt")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s lists no metric", path)
	}
	return names, nil
}

// ParseMetrics parses the Prometheus text format.
func ParseMetrics(text string) (Metrics, error) {
	families, err := testutil.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	m := Metrics{}
	for name, family := range families {
		for _, metric := range family.GetMetric() {
			s := Sample{Labels: map[string]string{}}
			for _, label := range metric.GetLabel() {
				s.Labels[label.GetName()] = label.GetValue()
			}
			switch {
			case metric.Counter != nil:
				s.Value = metric.GetCounter().GetValue()
			case metric.Gauge != nil:
				s.Value = metric.GetGauge().GetValue()
			case metric.Untyped != nil:
				s.Value = metric.GetUntyped().GetValue()
			case metric.Histogram != nil:
				s.Value = float64(metric.GetHistogram().GetSampleCount())
			case metric.Summary != nil:
				s.Value = float64(metric.GetSummary().GetSampleCount())
			}
			m[name] = append(m[name], s)
		}
	}
	return m, nil
}

// Has tells whether the metric has a series with these labels (and maybe others).
func (m Metrics) Has(name string, labels map[string]string) bool {
	_, n := m.sum(name, labels)
	return n > 0
}

// Sum is the sum of the values of the metric's series that have these labels (and maybe others); 0 when there
// is none.
func (m Metrics) Sum(name string, labels map[string]string) float64 {
	v, _ := m.sum(name, labels)
	return v
}

func (m Metrics) sum(name string, labels map[string]string) (float64, int) {
	var total float64
	var n int
	for _, s := range m[name] {
		match := true
		for k, v := range labels {
			match = match && s.Labels[k] == v
		}
		if match {
			total += s.Value
			n++
		}
	}
	return total, n
}
