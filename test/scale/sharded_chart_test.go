package scale

import (
	"encoding/csv"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berthdev/berth/test/framework"
)

var shardedRedrawFlag = flag.Bool("scale.sharded-redraw", false,
	"draw .cache/bench/sharded.svg again from .cache/bench/sharded.csv (TestShardedRedraw); with -scale.update-docs, "+
		"copy it to docs/bench/sharded.svg")

const smallestColor = "#e59866"

// shardedChart draws the sharded runs against their number of members: the largest and the smallest member's
// heap and CPU beside the single member's divided by M (the target), and the time until every App converged.
func shardedChart(runs []shardedRun) string {
	var members []int
	var heapMost, heapLeast, heapShare, cpuMost, cpuLeast, cpuShare, converge []float64
	_, single := shardedRefs(runs)
	for _, r := range runs {
		if r.members == 0 {
			continue
		}
		members = append(members, r.members)
		hMost, hLeast, cMost, cLeast := math.NaN(), math.NaN(), math.NaN(), math.NaN()
		for _, m := range r.member {
			hMost, hLeast = maxOf(hMost, m.heap/(1<<20)), minOf(hLeast, m.heap/(1<<20))
			cMost, cLeast = maxOf(cMost, m.cpu.Seconds()), minOf(cLeast, m.cpu.Seconds())
		}
		heapMost, heapLeast = append(heapMost, hMost), append(heapLeast, hLeast)
		cpuMost, cpuLeast = append(cpuMost, cMost), append(cpuLeast, cLeast)
		hShare, cShare := math.NaN(), math.NaN()
		if single != nil {
			hShare = single.member[0].heap / (1 << 20) / float64(r.members)
			cShare = single.member[0].cpu.Seconds() / float64(r.members)
		}
		heapShare, cpuShare = append(heapShare, hShare), append(cpuShare, cShare)
		converge = append(converge, r.converge.Seconds())
	}
	if len(members) == 0 {
		return ""
	}
	trio := func(most, least, share []float64) []series {
		return []series{{"largest member", berthColor, "", most}, {"smallest member", smallestColor, "5,4", least},
			{"1 member's / M (the target)", boundColor, "1,3", share}}
	}
	panels := []panel{
		{"each member's Go heap after a GC (MiB)", trio(heapMost, heapLeast, heapShare)},
		{"each member's CPU until converged (s)", trio(cpuMost, cpuLeast, cpuShare)},
		{"time until every App converged (s)", []series{{"all members", berthColor, "", converge}}},
	}
	return drawChart(panels, members, "members")
}

// readShardedCSV reads the runs back from a sharded.csv: their members' buckets, heap, RSS and CPU, and their
// time to converge (not their requests).
func readShardedCSV(path string) ([]shardedRun, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	records, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil || len(records) < 2 {
		return nil, fmt.Errorf("reading %s: %d records: %w", path, len(records), err)
	}
	column := map[string]int{}
	for i, name := range records[0] {
		column[name] = i
	}
	var runs []shardedRun
	for _, rec := range records[1:] {
		value := func(name string) float64 {
			v, err := strconv.ParseFloat(rec[column[name]], 64)
			if err != nil {
				return math.NaN()
			}
			return v
		}
		n, members := int(value("apps")), int(value("members"))
		i := slices.IndexFunc(runs, func(r shardedRun) bool { return r.n == n && r.members == members })
		if i < 0 {
			runs = append(runs, shardedRun{n: n, members: members,
				converge: time.Duration(value("converge_s") * float64(time.Second)), busy: value("machine_cpu_busy")})
			i = len(runs) - 1
		}
		runs[i].member = append(runs[i].member, memberResult{leader: rec[column["leader"]] == "true",
			buckets: value("buckets"), bucketsSettled: value("buckets_settled"), heap: value("heap_bytes"),
			rss: value("rss_bytes"), cpu: time.Duration(value("cpu_s_until_converged") * float64(time.Second))})
	}
	return runs, nil
}

// TestShardedRedraw draws the chart of the sharded benchmark again from its CSV (-scale.sharded-redraw).
func TestShardedRedraw(t *testing.T) {
	if !*shardedRedrawFlag {
		t.Skip("only with -scale.sharded-redraw")
	}
	out := filepath.Join(framework.RepoRoot(), ".cache", "bench")
	runs, err := readShardedCSV(filepath.Join(out, "sharded.csv"))
	require.NoError(t, err)
	chart := shardedChart(runs)
	require.NotEmpty(t, chart, "sharded.csv holds no sharded run")
	require.NoError(t, os.WriteFile(filepath.Join(out, "sharded.svg"), []byte(chart), 0o644))
	if *updateDocsFlag {
		require.NoError(t, os.WriteFile(filepath.Join(framework.RepoRoot(), "docs", "bench", "sharded.svg"),
			[]byte(chart), 0o644))
	}
	t.Logf("drew %d runs into %s", len(runs), filepath.Join(out, "sharded.svg"))
}

// TestShardedChartIsSVG draws the chart of made-up runs, written to CSV and read back, and checks that it is
// well-formed XML with a dot per sharded run and series.
func TestShardedChartIsSVG(t *testing.T) {
	member := func(heapMiB, cpu float64) memberResult {
		return memberResult{buckets: 64, bucketsSettled: 64, heap: heapMiB * (1 << 20), rss: 2 * heapMiB * (1 << 20),
			cpu: time.Duration(cpu * float64(time.Second)), requests: requests{{"create", "deployments"}: 10}}
	}
	runs := []shardedRun{
		{n: 100, members: 0, converge: time.Minute, member: []memberResult{member(100, 40)}},
		{n: 100, members: 1, converge: time.Minute, member: []memberResult{member(100, 40)}},
		{n: 100, members: 2, converge: 50 * time.Second, member: []memberResult{member(55, 21), member(52, 20)}},
	}
	dir := t.TempDir()
	require.NoError(t, writeShardedReport(dir, setup{}, runs))
	read, err := readShardedCSV(filepath.Join(dir, "sharded.csv"))
	require.NoError(t, err)
	require.Len(t, read, 3)
	require.InDelta(t, 52*(1<<20), read[2].member[1].heap, 1)
	chart := shardedChart(read)
	require.Equal(t, 2*(3+3)+2, strings.Count(chart, "<circle"), "a dot per sharded run in each series")
	require.Contains(t, chart, "<title>largest member, 2 members: 55</title>")
	d := xml.NewDecoder(strings.NewReader(chart))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
}
