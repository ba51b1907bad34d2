package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr    string
		want    []string
		wantErr string
	}{
		{expr: `sum by (le) (rate(b_seconds_bucket{job="x"}[5m]))`, want: []string{"b_seconds_bucket"}},
		{expr: `sum(rate(b_errors_total[5m])) / sum(rate(a_total[5m])) > 0.1`,
			want: []string{"a_total", "b_errors_total"}},
		{expr: `x * on (instance) group_left () (y == 1) or x`, want: []string{"x", "y"}},
		{expr: `absent(up{job="berth-metrics"} == 1)`, want: []string{"up"}},
		{expr: `{__name__="by_name", job="x"}`, want: []string{"by_name"}},
		{expr: `max_over_time(x[10m:1m])`, want: []string{"x"}},
		{expr: `{job="x"}`, wantErr: "selects no metric by name"},
		{expr: `{__name__=~"berth_.*"}`, wantErr: "selects no metric by name"},
		{expr: `rate(x[5m]`, wantErr: "unclosed"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := metricNames(tt.expr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// testDashboard is a dashboard with two variables and two panels, changed by each case of
// TestDashboardQueries.
func testDashboard(t *testing.T, change func(d map[string]any)) []byte {
	t.Helper()
	var d map[string]any
	err := json.Unmarshal([]byte(`{
	  "templating": {"list": [
	    {"name": "datasource", "type": "datasource", "query": "prometheus"},
	    {"name": "job", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
	     "query": "label_values(a_total{namespace=\"x\"}, job)"}
	  ]},
	  "panels": [
	    {"type": "row", "id": 1, "title": "row", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1}, "panels": []},
	    {"type": "timeseries", "id": 2, "title": "rate", "gridPos": {"x": 0, "y": 1, "w": 12, "h": 8},
	     "datasource": {"type": "prometheus", "uid": "${datasource}"},
	     "targets": [{"refId": "A", "expr": "rate(b_total{job=\"$job\"}[$__rate_interval])"},
	                 {"refId": "B", "expr": "c{job=\"${job}\"}"}]},
	    {"type": "stat", "id": 3, "title": "stat", "gridPos": {"x": 12, "y": 1, "w": 12, "h": 8},
	     "datasource": {"type": "prometheus", "uid": "${datasource}"},
	     "targets": [{"refId": "A", "expr": "d"}]}
	  ]
	}`), &d)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(d)
	}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDashboardQueries(t *testing.T) {
	queries, err := dashboardQueries(testDashboard(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, q := range queries {
		exprs = append(exprs, q.expr)
	}
	want := []string{`a_total{namespace="x"}`, `rate(b_total{job="$job"}[5m])`, `c{job="${job}"}`, `d`}
	if !reflect.DeepEqual(exprs, want) {
		t.Fatalf("got %q, want %q", exprs, want)
	}

	panelAt := func(d map[string]any, i int) map[string]any {
		return d["panels"].([]any)[i].(map[string]any)
	}
	variableAt := func(d map[string]any, i int) map[string]any {
		return d["templating"].(map[string]any)["list"].([]any)[i].(map[string]any)
	}
	for _, tt := range []struct {
		name    string
		change  func(d map[string]any)
		wantErr string
	}{
		{"a variable the dashboard does not have", func(d map[string]any) {
			panelAt(d, 2)["targets"] = []any{map[string]any{"refId": "A", "expr": `d{job="$jbo"}`}}
		}, "$jbo is no variable"},
		{"a query PromQL refuses", func(d map[string]any) {
			panelAt(d, 2)["targets"] = []any{map[string]any{"refId": "A", "expr": `sum(d`}}
		}, ""},
		{"two queries with one refId", func(d map[string]any) {
			panelAt(d, 1)["targets"].([]any)[1].(map[string]any)["refId"] = "A"
		}, "refId of its own"},
		{"a panel on another datasource", func(d map[string]any) {
			panelAt(d, 2)["datasource"] = map[string]any{"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
		}, "the datasource is not ${datasource}"},
		{"overlapping panels", func(d map[string]any) {
			panelAt(d, 2)["gridPos"] = map[string]any{"x": 8, "y": 4, "w": 12, "h": 8}
		}, "overlaps panel 2"},
		{"a panel wider than the grid", func(d map[string]any) {
			panelAt(d, 2)["gridPos"] = map[string]any{"x": 12, "y": 1, "w": 14, "h": 8}
		}, "not within the 24 columns"},
		{"two panels with one id", func(d map[string]any) {
			panelAt(d, 2)["id"] = 2
		}, "not positive and unique"},
		{"a variable query other than label_values", func(d map[string]any) {
			variableAt(d, 1)["query"] = "query_result(a_total)"
		}, "is not label_values"},
		{"no datasource variable", func(d map[string]any) {
			variableAt(d, 0)["name"] = "ds"
		}, `no variable "datasource"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			queries, err := dashboardQueries(testDashboard(t, tt.change))
			for _, q := range queries {
				if err == nil {
					_, err = metricNames(q.expr)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v; want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestToPrometheusRule(t *testing.T) {
	rules := `# About this file: left out.
# More of it.

groups:
- name: g
  rules:
  # Kept, with its rule.
  - alert: A
    expr: |-
      sum(x)
        > 1
    annotations:
      description: >-
        folded
        text
`
	got, err := toPrometheusRule([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	text := string(got)
	if strings.Contains(text, "About this file") || !strings.Contains(text, "  # Kept, with its rule.\n") {
		t.Errorf("the comments are not as they should be:\n%s", text)
	}
	if !strings.HasPrefix(text, "# Generated") || !strings.Contains(text, "\nspec:\n  groups:\n  - name: g\n") {
		t.Errorf("not a PrometheusRule with the groups in its spec:\n%s", text)
	}

	if _, err := toPrometheusRule([]byte("groups:\n- name: g\n  rules:\n\t- alert: A\n")); err == nil {
		t.Error("a tab got through")
	}
}
