package metrics_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berthdev/berth/test/framework"
)

// madeByPrometheus are the metrics the monitoring queries that Prometheus itself makes for each target.
var madeByPrometheus = map[string]bool{"up": true}

// TestMonitoringQueriesDocumentedMetrics checks that every metric the alerting rules and the dashboard of
// artifacts/monitoring query (metrics.txt, which hack/update-codegen.sh extracts from their queries with
// PromQL's parser) is in the README's table of the metrics berth serves: a misspelt or renamed metric would
// otherwise make a panel empty, or an alert that never fires. test/e2e/production checks the same list against
// a running berth.
func TestMonitoringQueriesDocumentedMetrics(t *testing.T) {
	queried, err := framework.QueriedMetrics()
	require.NoError(t, err)
	documented := readmeMetrics(t, "../../README.md")
	for _, name := range queried {
		if madeByPrometheus[name] {
			continue
		}
		if !documented.has(name) {
			t.Errorf("artifacts/monitoring queries %s, which the README's Metrics table does not have", name)
		}
	}
}

// documentedMetrics are the metric names of the README's table, and the prefixes of its rows that stand for a
// family (`go_*`).
type documentedMetrics struct {
	names    map[string]bool
	prefixes []string
}

// has tells whether the table has name, or the histogram of which name is a series (_bucket, _sum, _count).
func (d documentedMetrics) has(name string) bool {
	for _, prefix := range d.prefixes {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && d.names[base] {
			return true
		}
	}
	return false
}

var tableMetric = regexp.MustCompile("`([a-z_:][a-z0-9_:]*)(\\*?)`")

// readmeMetrics reads the first column of the README's table of metrics: the table whose header starts with
// "| metric |".
func readmeMetrics(t *testing.T, path string) documentedMetrics {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	_, table, found := strings.Cut(string(data), "\n| metric |")
	require.True(t, found, "%s has no table of metrics", path)

	d := documentedMetrics{names: map[string]bool{}}
	for _, line := range strings.Split(table, "\n")[1:] {
		if !strings.HasPrefix(line, "|") {
			break // the end of the table
		}
		cells := strings.Split(line, "|")
		for _, m := range tableMetric.FindAllStringSubmatch(cells[1], -1) {
			if m[2] == "*" {
				d.prefixes = append(d.prefixes, m[1])
			} else {
				d.names[m[1]] = true
			}
		}
	}
	require.NotEmpty(t, d.names, "no metric in the table of %s", path)
	return d
}
