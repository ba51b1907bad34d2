// Package scale is berth's scale benchmark (make bench): for each N of -scale.apps, N Apps of 1 replica with a
// port are created on a fresh local cluster (hack/cluster-up.sh) before berth starts; the benchmark measures how
// long berth takes until every App has its Deployment, its Service and a status of its current generation, the
// requests it makes, its writes while idle and its memory. The write floor (floor_test.go), a plain client-go
// program with the same clients, client limits and workers making only the writes an App needs, does the same on
// another fresh cluster. berth and the floor run -scale.runs times each, alternately, on a fresh cluster each
// time, and which of them goes first alternates too; the report gives the median of the runs and their spread,
// beside the least time the client's rate limit allows each (bound_test.go). The results go to stdout and to
// .cache/bench/: scale.md, scale.csv, scale-requests.csv and the chart scale.svg.
//
// It is skipped unless -scale.apps is given:
//
//	go test -run TestScale -v -timeout 0 ./test/scale/ -args -scale.apps=100,1000
//
// The sharded benchmark (TestScaleSharded, sharded_test.go) runs instead with -scale.sharded-apps=N: for each M of
// -scale.sharded-members (1,2,4 by default), the N Apps are created on a fresh cluster before M berth processes
// start at once with --leader-elect --sharding (berth's limits and workers each, as above); and, unless
// -scale.sharded-baseline=false, once more with one berth process unsharded. It reports for each run the time
// until every App converged, against the single member's, and each member's buckets, heap (after a GC), RSS and
// CPU time at that moment, against the single member's (the targets: 1/M within 20%, and with 4 members each
// heap at most 0.3x); and the writes per App of all the members together (the Apps' bucket labels count, the
// Leases' do not) until every App is Available and they stopped writing, against berth unsharded (the target:
// at most one more). It writes sharded.md, sharded.csv and sharded-requests.csv to .cache/bench/:
//
//	go test -run TestScaleSharded -v -timeout 0 ./test/scale/ -args -scale.sharded-apps=10000 -scale.sharded-members=1,2,4
//
// Neither asserts anything about the figures: each fails only when a run cannot complete.
package scale

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berthdev/berth/test/framework"
)

var (
	appsFlag = flag.String("scale.apps", "",
		"comma-separated numbers of Apps, e.g. 100,1000,10000; without it the benchmark is skipped")
	workersFlag = flag.Int("scale.workers", 0, "berth's --workers and the floor's workers; 0: berth's default")
	qpsFlag     = flag.Float64("scale.qps", 0, "berth's --kube-api-qps and the floor's; 0: berth's default")
	burstFlag   = flag.Int("scale.burst", 0, "berth's --kube-api-burst and the floor's; 0: berth's default")
	resyncFlag  = flag.Duration("scale.resync-period", 20*time.Second,
		"berth's --resync-period; the idle window lasts three of them and 5 seconds")
	foreignFlag = flag.Int("scale.foreign", 10000,
		"foreign Deployments created after convergence, to see whether berth's memory grows with them")
	secretsFlag = flag.Int("scale.secrets-per-app", 10,
		"Secrets per App in the Apps' namespaces, created before the Apps (each App reads the first of its own); as "+
			"many again, read by no App, are created after convergence, to weigh a Secret in berth's heap")
	timeoutFlag = flag.Duration("scale.timeout", 0,
		"longest wait for the Apps to converge, and then to be Available; 0: 5 minutes and 300 ms per App")
	updateDocsFlag = flag.Bool("scale.update-docs", false, "copy the chart to docs/bench/scale.svg")
	runsFlag       = flag.Int("scale.runs", 3,
		"runs of berth and of the floor for each N, alternately; the idle window and the memory are measured in berth's first")
)

// limits are the client limits and the concurrency that berth and the floor share.
type limits struct {
	qps     float64
	burst   int
	workers int
}

// setup is what every run of the benchmark works with.
type setup struct {
	binary string // berth
	limits
	resync  time.Duration
	foreign int
	secrets int // per App
	logDir  string
}

// timeout bounds each wait of a run with n Apps.
func (s setup) timeout(n int) time.Duration {
	if *timeoutFlag > 0 {
		return *timeoutFlag
	}
	return 5*time.Minute + time.Duration(n)*300*time.Millisecond
}

// result is what one runner, berth or the floor, did with the N Apps and the one created during the run.
type result struct {
	converge time.Duration // from the runner's start until every App converged
	extra    time.Duration // from the creation of the App created during the run until it converged
	requests requests      // every request of the runner (berth: until every App is Available and it stops writing)
	// untilConverged are the requests of the runner until every App converged, counted as soon as they had.
	untilConverged requests
	// busy is the share of the machine's CPU time that was not idle from the runner's start until every App
	// converged: near 1, the API server and the runner compete for the cores.
	busy float64

	// berth only
	cpu         time.Duration // berth's CPU time until every App converged
	idle        requests      // the requests of the idle window (berth's first run only, as what follows)
	idleWindow  time.Duration
	heap, rss   float64 // bytes, after a garbage collection
	heapForeign float64 // bytes, after a garbage collection, once the foreign Deployments exist
	heapSecrets float64 // bytes, after a garbage collection, once the Secrets no App reads exist too
}

// measurement is one N's results: every run of berth and of the floor, in the order they ran. berth's first
// run alone measured the idle window and the memory.
type measurement struct {
	n            int
	berth, floor []result
}

func TestScale(t *testing.T) {
	if *appsFlag == "" {
		t.Skip("the scale benchmark runs only with -scale.apps=N,... (make bench)")
	}
	counts, err := parseCounts(*appsFlag)
	require.NoError(t, err)
	ctx := t.Context()
	s, out := prepare(t)
	t.Logf("berth and the floor: QPS %g, burst %d, %d workers; berth's logs in %s", s.qps, s.burst, s.workers, s.logDir)

	require.Positive(t, *runsFlag, "-scale.runs")

	var all []measurement
	for _, n := range counts {
		m := measurement{n: n}
		// One runner going first every time would give the other a machine that its predecessor's cluster may
		// still be leaving (page cache, a process stopping): which goes first alternates.
		for run := range *runsFlag {
			berthFirst := run%2 == 0
			for _, isBerth := range []bool{berthFirst, !berthFirst} {
				if isBerth {
					t.Logf("=== %d Apps: berth, run %d of %d", n, run+1, *runsFlag)
					r, err := runBerth(ctx, t, s, n, run == 0)
					require.NoError(t, err, "berth with %d Apps", n)
					m.berth = append(m.berth, r)
				} else {
					t.Logf("=== %d Apps: the write floor, run %d of %d", n, run+1, *runsFlag)
					r, err := runFloor(ctx, t, s, n)
					require.NoError(t, err, "the write floor with %d Apps", n)
					m.floor = append(m.floor, r)
				}
			}
		}

		all = append(all, m)
		fmt.Println(markdown(s, m))
		require.NoError(t, writeReport(out, s, all))
	}
	t.Logf("written to %s: scale.md, scale.csv, scale-requests.csv, scale.svg", out)
	if *updateDocsFlag {
		docs := filepath.Join(framework.RepoRoot(), "docs", "bench")
		require.NoError(t, os.MkdirAll(docs, 0o755))
		chart, err := os.ReadFile(filepath.Join(out, "scale.svg"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(docs, "scale.svg"), chart, 0o644))
		t.Logf("copied the chart to %s", docs)
	}
}

// prepare builds berth and returns the setup of the benchmark's runs, and the folder of the reports,
// .cache/bench (with berth's logs in logs/).
func prepare(t *testing.T) (setup, string) {
	out := filepath.Join(framework.RepoRoot(), ".cache", "bench")
	s := setup{resync: *resyncFlag, foreign: *foreignFlag, secrets: *secretsFlag, logDir: filepath.Join(out, "logs")}
	require.NoError(t, os.MkdirAll(s.logDir, 0o755))
	var err error
	s.binary, err = framework.BuildBerth(t.Context(), t.TempDir())
	require.NoError(t, err)
	s.limits, err = berthLimits(s.binary)
	require.NoError(t, err)
	return s, out
}

func parseCounts(list string) ([]int, error) {
	var counts []int
	for _, field := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale.apps: %q is not a number of Apps", field)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts) // the chart draws its lines from the smallest N to the largest
	return counts, nil
}

// berthLimits are the limits of the flags -scale.qps, -scale.burst and -scale.workers, and berth's own defaults
// for those not given, read from its -h, so that the floor keeps up with berth's defaults when they change.
func berthLimits(binary string) (limits, error) {
	// Only the output matters: the flag package prints the defaults, and exits 0 after -h.
	help, _ := exec.Command(binary, "-h").CombinedOutput()
	byDefault := func(name string) (float64, error) {
		re := regexp.MustCompile(`(?m)^\s*-` + regexp.QuoteMeta(name) + ` \w+\n.*\(default ([0-9.]+)\)`)
		match := re.FindSubmatch(help)
		if match == nil {
			return 0, fmt.Errorf("no default of -%s in the output of %s -h", name, binary)
		}
		return strconv.ParseFloat(string(match[1]), 64)
	}
	l := limits{qps: *qpsFlag, burst: *burstFlag, workers: *workersFlag}
	var err error
	var v float64
	if l.qps == 0 {
		if l.qps, err = byDefault("kube-api-qps"); err != nil {
			return l, err
		}
	}
	if l.burst == 0 {
		if v, err = byDefault("kube-api-burst"); err != nil {
			return l, err
		}
		l.burst = int(v)
	}
	if l.workers == 0 {
		if v, err = byDefault("workers"); err != nil {
			return l, err
		}
		l.workers = int(v)
	}
	return l, nil
}
