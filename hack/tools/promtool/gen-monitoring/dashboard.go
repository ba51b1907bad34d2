package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// The parts of a Grafana dashboard (the classic JSON model) that hold queries or place panels.
type dashboard struct {
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *datasourceRef  `json:"datasource"`
	Query      json.RawMessage `json:"query"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	GridPos    gridPos        `json:"gridPos"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// The datasource every query goes to: the dashboard's variable, so that it works with whatever a Grafana
// names its Prometheus.
const datasourceVariable = "datasource"

var wantDatasource = datasourceRef{Type: "prometheus", UID: "${" + datasourceVariable + "}"}

// Grafana's own variables that stand for a duration in a query.
var grafanaDurations = map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}

// dashboardQueries checks the dashboard and returns its queries, each with the dashboard's variables replaced
// so that PromQL's parser reads it as Prometheus will.
func dashboardQueries(data []byte) ([]query, error) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}

	declared := map[string]bool{}
	var queries []query
	hasDatasource := false
	for _, v := range d.Templating.List {
		declared[v.Name] = true
		switch v.Type {
		case "datasource":
			hasDatasource = hasDatasource || v.Name == datasourceVariable
		case "query":
			if v.Datasource == nil || *v.Datasource != wantDatasource {
				return nil, fmt.Errorf("variable %s: the datasource is not %s", v.Name, wantDatasource.UID)
			}
			text, err := variableQuery(v.Query)
			if err != nil {
				return nil, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			expr, err := labelValuesSelector(text)
			if err != nil {
				return nil, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			if expr != "" {
				queries = append(queries, query{where: "variable " + v.Name, expr: expr})
			}
		}
	}
	if !hasDatasource {
		return nil, fmt.Errorf("no variable %q of type datasource", datasourceVariable)
	}

	panels := flatten(d.Panels)
	if err := checkLayout(panels); err != nil {
		return nil, err
	}
	for _, p := range panels {
		if p.Type == "row" {
			continue
		}
		where := fmt.Sprintf("panel %d (%s)", p.ID, p.Title)
		if p.Datasource == nil || *p.Datasource != wantDatasource {
			return nil, fmt.Errorf("%s: the datasource is not %s", where, wantDatasource.UID)
		}
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("%s: no queries", where)
		}
		refIDs := map[string]bool{}
		for _, t := range p.Targets {
			if t.Expr == "" || t.RefID == "" || refIDs[t.RefID] {
				return nil, fmt.Errorf("%s: a query without an expr, or without a refId of its own", where)
			}
			refIDs[t.RefID] = true
			queries = append(queries, query{where: where + " query " + t.RefID, expr: t.Expr})
		}
	}

	for i, q := range queries {
		expr, err := substituteVariables(q.expr, declared)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.where, err)
		}
		queries[i].expr = expr
	}
	return queries, nil
}

// flatten returns the panels with those of collapsed rows.
func flatten(panels []panel) []panel {
	var all []panel
	for _, p := range panels {
		all = append(all, p)
		all = append(all, flatten(p.Panels)...)
	}
	return all
}

// checkLayout checks that each panel has an id of its own and a place on the 24 columns of the grid that no
// other panel takes: Grafana imports a dashboard either way, and then moves or drops what collides.
func checkLayout(panels []panel) error {
	ids := map[int]bool{}
	for i, p := range panels {
		where := fmt.Sprintf("panel %d (%s)", p.ID, p.Title)
		if p.ID <= 0 || ids[p.ID] {
			return fmt.Errorf("%s: the id is not positive and unique", where)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.X < 0 || g.Y < 0 || g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
			return fmt.Errorf("%s: gridPos %+v is not within the 24 columns", where, g)
		}
		for _, q := range panels[:i] {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				return fmt.Errorf("%s: overlaps panel %d (%s)", where, q.ID, q.Title)
			}
		}
	}
	return nil
}

// variableQuery returns the query of a query variable: a string, or in newer dashboards an object with the
// string in its field query.
func variableQuery(raw json.RawMessage) (string, error) {
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return text, nil
	}
	var object struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &object); err != nil {
		return "", fmt.Errorf("the query is neither a string nor an object with a query: %w", err)
	}
	return object.Query, nil
}

var (
	labelValuesOfSeries = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)
	labelValuesOfAll    = regexp.MustCompile(`^label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)
)

// labelValuesSelector returns the series selector of a variable's label_values(SELECTOR, LABEL) query, or ""
// for label_values(LABEL), which names no metric. Grafana's other variable queries are refused, rather than
// let through unchecked.
func labelValuesSelector(text string) (string, error) {
	text = strings.TrimSpace(text)
	if m := labelValuesOfSeries.FindStringSubmatch(text); m != nil {
		return m[1], nil
	}
	if labelValuesOfAll.MatchString(text) {
		return "", nil
	}
	return "", fmt.Errorf("%q is not label_values(SELECTOR, LABEL) or label_values(LABEL)", text)
}

var variableReference = regexp.MustCompile(`\$(?:\{([a-zA-Z0-9_]+)(?::[a-zA-Z0-9_]+)?\}|([a-zA-Z0-9_]+))`)

// substituteVariables replaces Grafana's duration variables ($__rate_interval) with a duration, and leaves the
// dashboard's own variables, which stand in label values, where they are. A variable that is neither is an
// error: Grafana would send it as it is, and the panel would show nothing.
func substituteVariables(expr string, declared map[string]bool) (string, error) {
	var err error
	replaced := variableReference.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableReference.FindStringSubmatch(ref)
		name := m[1] + m[2]
		switch {
		case grafanaDurations[name]:
			return "5m"
		case declared[name]:
			return ref
		default:
			if err == nil {
				err = fmt.Errorf("$%s is no variable of the dashboard's, nor a duration of Grafana's", name)
			}
			return ref
		}
	})
	return replaced, err
}
