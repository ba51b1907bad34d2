package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	berthv1alpha1 "github.com/berthdev/berth/pkg/apis/berth/v1alpha1"
)

// TestKubectlGetWide checks the columns that `kubectl get -o wide` adds for Apps, from the CRD's printer columns as
// the API server serves them: the reason of the Degraded condition, the current and desired Pods, the revision,
// and the URL of the App's Service.
func TestKubectlGetWide(t *testing.T) {
	ns := newNamespace(t)
	apply(t, ns, appManifest("web", goodImage, 1, 8080))
	apply(t, ns, appManifest("crashing", crashLoopImage, 1, 0))
	web := waitAvailable(t, ns, "web", 1)
	require.NotEmpty(t, web.Status.URL)
	eventually(t, "App crashing to be Degraded with reason CrashLoopBackOff", func(ctx context.Context) error {
		app, err := getApp(ctx, ns, "crashing")
		if err != nil {
			return err
		}
		return degradedNamingAPod(ctx, app, "CrashLoopBackOff")
	})

	out := kubectl(t, "get", "apps.berth.dev", "--namespace="+ns, "-o", "wide")
	t.Logf("kubectl get apps.berth.dev -o wide:\n%s", out)
	header, rows := table(t, out)
	assert.Equal(t, []string{"NAME", "IMAGE", "READY", "AVAILABLE", "AGE", "DEGRADED", "CURRENT", "DESIRED",
		"REVISION", "URL"}, header)
	assert.Equal(t, []string{"crashing", crashLoopImage, "0/1", "False", "", "CrashLoopBackOff", "1", "1", "1", ""},
		withoutAge(rows["crashing"]))
	assert.Equal(t, []string{"web", goodImage, "1/1", "True", "", "AsExpected", "1", "1", "1", web.Status.URL},
		withoutAge(rows["web"]))

	plain := kubectl(t, "get", "apps.berth.dev", "--namespace="+ns)
	header, _ = table(t, plain)
	assert.Equal(t, []string{"NAME", "IMAGE", "READY", "AVAILABLE", "AGE"}, header, "without -o wide:\n%s", plain)
}

// table splits kubectl's table output into its header and its rows by their first cell (the name). A cell is
// cut at the column of its header (kubectl leaves an empty cell blank).
func table(t *testing.T, out string) (header []string, rows map[string][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.NotEmpty(t, lines)
	header = strings.Fields(lines[0])
	var starts []int
	for i := 0; i < len(lines[0]); i++ {
		if lines[0][i] != ' ' && (i == 0 || lines[0][i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	rows = map[string][]string{}
	for _, line := range lines[1:] {
		cells := make([]string, len(starts))
		for i, start := range starts {
			end := len(line)
			if i+1 < len(starts) {
				end = min(starts[i+1], len(line))
			}
			if start < end {
				cells[i] = strings.TrimSpace(line[start:end])
			}
		}
		rows[cells[0]] = cells
	}
	return header, rows
}

// withoutAge blanks the AGE cell (the fifth), which changes with time.
func withoutAge(row []string) []string {
	if len(row) < 5 {
		return row
	}
	row = append([]string(nil), row...)
	row[4] = ""
	return row
}

// TestKubectlExplainReadsAsParagraphs checks the field descriptions as `kubectl explain` prints them from the
// API server's OpenAPI: each is a paragraph that kubectl fills to its width, not the Go comment's lines, which
// broke sentences where the comment's lines broke ("...a Service of the App's name that" / "sends this port...").
func TestKubectlExplainReadsAsParagraphs(t *testing.T) {
	out := kubectl(t, "explain", "apps.berth.dev.spec.port")
	t.Logf("kubectl explain apps.berth.dev.spec.port:\n%s", out)
	description := explainDescription(t, out)
	require.NotEmpty(t, description)
	assert.Contains(t, strings.Join(description, " "),
		"When set, berth creates a Service of the App's name that sends this port to the Pods; when unset, there "+
			"is no Service.")
	assertFilled(t, description)

	for _, field := range []string{"apps.berth.dev.spec", "apps.berth.dev.spec.healthCheck", "apps.berth.dev.status"} {
		out := kubectl(t, "explain", field)
		assertFilled(t, explainDescription(t, out))
	}
}

// explainDescription returns the lines of the DESCRIPTION section of kubectl explain's output, unindented.
func explainDescription(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "DESCRIPTION:":
			in = true
		case in && line != "" && !strings.HasPrefix(line, " "):
			return lines // the next section (FIELDS:)
		case in:
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	require.True(t, in, "no DESCRIPTION in:\n%s", out)
	return lines
}

// assertFilled fails where a line of a paragraph ends although the next line's first word would have fit on it:
// kubectl fills a paragraph's lines up to its width, so such a break was in the description itself.
func assertFilled(t *testing.T, lines []string) {
	t.Helper()
	width := 0
	for _, line := range lines {
		width = max(width, len(line))
	}
	for i := 0; i+1 < len(lines); i++ {
		if lines[i] == "" || lines[i+1] == "" {
			continue // a paragraph ends
		}
		next, _, _ := strings.Cut(lines[i+1], " ")
		assert.Greater(t, len(lines[i])+1+len(next), width,
			"line %d breaks early: %q, then %q (lines up to %d characters)", i+1, lines[i], lines[i+1], width)
	}
}

// TestStatusTellsTheRevision: the App's status says which revision its Pods run, since when, with which image,
// and which revision last rolled out; a change of image is a new revision, and one that cannot roll out (its
// image cannot be pulled) leaves the last available revision where it was.
func TestStatusTellsTheRevision(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	apply(t, ns, appManifest("web", goodImage, 2, 0))
	first := waitRevision(t, ns, 1, 1)
	assert.Equal(t, []string{goodImage}, first.Status.Images)
	require.NotNil(t, first.Status.RevisionSince)

	const next = "nginxinc/nginx-unprivileged:1.28"
	apply(t, ns, appManifest("web", next, 2, 0))
	second := waitRevision(t, ns, 2, 2)
	assert.Equal(t, []string{next}, second.Status.Images)
	assert.True(t, second.Status.RevisionSince.After(first.Status.RevisionSince.Time) ||
		second.Status.RevisionSince.Equal(first.Status.RevisionSince), "since the second revision")
	out := kubectl(t, "get", "apps.berth.dev", "web", "--namespace="+ns, "-o", "wide")
	header, rows := table(t, out)
	require.Contains(t, header, "REVISION")
	assert.Equal(t, "2", rows["web"][slices.Index(header, "REVISION")], "kubectl get -o wide:\n%s", out)

	// A revision that fails is revision 3 all the same; rolled back, it would soon be revision 4.
	apply(t, ns, appManifest("web", imagePullsFailed, 2, 0)+"  rollout: {rollback: {disabled: true}}\n")
	third := waitRevision(t, ns, 3, 2)
	assert.Equal(t, []string{imagePullsFailed}, third.Status.Images)
}

// waitRevision waits until the App web of namespace is at revision, with availableRevision, and returns it.
func waitRevision(t *testing.T, namespace string, revision, available int64) *berthv1alpha1.App {
	t.Helper()
	var app *berthv1alpha1.App
	eventually(t, fmt.Sprintf("App web at revision %d, %d available", revision, available), func(ctx context.Context) error {
		var err error
		if app, err = getApp(ctx, namespace, "web"); err != nil {
			return err
		}
		if app.Status.Revision != revision || app.Status.AvailableRevision != available {
			return fmt.Errorf("revision %d, available revision %d", app.Status.Revision, app.Status.AvailableRevision)
		}
		return nil
	})
	return app
}
