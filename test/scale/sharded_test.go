package scale

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/berthdev/berth/test/framework"
)

var (
	shardedAppsFlag = flag.Int("scale.sharded-apps", 0,
		"number of Apps of the sharded benchmark (TestScaleSharded), e.g. 10000; without it that benchmark is skipped")
	shardedMembersFlag = flag.String("scale.sharded-members", "1,2,4",
		"comma-separated numbers of berth members (--leader-elect --sharding) of the sharded benchmark, each on a fresh cluster")
	shardedBaselineFlag = flag.Bool("scale.sharded-baseline", true,
		"the sharded benchmark also runs berth unsharded (no --leader-elect) on a fresh cluster: the writes per App "+
			"that the members' are held against")
)

// shardedNamespace is berth's --leader-election-namespace by default: the members' Leases and the table's are in
// it, and berth does not create it.
const shardedNamespace = "berth-system"

// memberResult is what one berth process of a sharded run did.
type memberResult struct {
	// leader tells whether the member led (assigned the buckets and labelled the Apps) when every App had
	// converged: its berth_shard_members was above 0.
	leader bool
	// buckets and bucketsSettled are its berth_shard_buckets when every App had converged and once every App
	// was Available and the members had stopped writing; NaN when berth ran unsharded.
	buckets, bucketsSettled float64
	cpu                     time.Duration // its CPU time from its start until every App converged
	heap, rss               float64       // bytes, when every App had converged, after a garbage collection
	requests                requests      // every request, until every App was Available and the members stopped writing
}

// shardedRun is one run of the sharded benchmark: n Apps, worked through by members berth processes started at
// once with --leader-elect --sharding, or, with members 0, by one berth process unsharded.
type shardedRun struct {
	n, members int
	converge   time.Duration // from the members' start until every App converged
	busy       float64       // the machine's CPU busy from the start until every App converged, as for TestScale
	// liveMembers and unassigned are what the leader counted when every App had converged (NaN unsharded).
	liveMembers, unassigned float64
	member                  []memberResult
}

func (r shardedRun) label() string { return runLabel(r.members) }

func runLabel(members int) string {
	switch members {
	case 0:
		return "unsharded"
	case 1:
		return "1 member"
	}
	return fmt.Sprintf("%d members", members)
}

// requests are the requests of every member.
func (r shardedRun) requests() requests {
	all := requests{}
	for _, m := range r.member {
		for req, count := range m.requests {
			all[req] += count
		}
	}
	return all
}

// writesPerApp is the members' writes per App, the writes of the Leases not counted (they go on as long as the
// members live, whatever the Apps); with events false, not those of Events either. The label the leader writes
// on each App counts.
func (r shardedRun) writesPerApp(events bool) float64 {
	return r.requests().sum(func(req request) bool {
		return isWrite(req.verb) && req.resource != "leases" && (events || req.resource != "events")
	}) / float64(r.n)
}

// labelWrites counts the patches of Apps: the bucket labels the leader writes (berth writes an App's status
// with an apply of apps/status, and nothing else of the App).
func (r shardedRun) labelWrites() float64 {
	return r.requests()[request{"patch", "apps"}]
}

// leaseWrites counts the writes of Leases: the members' renewals, the table, the leader's Lease.
func (r shardedRun) leaseWrites() float64 {
	return r.requests().sum(func(req request) bool { return isWrite(req.verb) && req.resource == "leases" })
}

func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "apply", "delete", "deletecollection":
		return true
	}
	return false
}

// TestScaleSharded is the sharded benchmark: for each number of members M of -scale.sharded-members, the
// -scale.sharded-apps Apps are created on a fresh cluster before M berth processes start with --leader-elect
// --sharding; it measures how long they take until every App converged, each member's heap, RSS, CPU and
// buckets at that moment, and the writes per App of all of them together until every App is Available and they
// stopped writing, against berth unsharded (-scale.sharded-baseline) and against the run of a single member.
func TestScaleSharded(t *testing.T) {
	if *shardedAppsFlag <= 0 {
		t.Skip("the sharded scale benchmark runs only with -scale.sharded-apps=N (make bench BENCH_SHARDED_APPS=N)")
	}
	counts, err := parseMembers(*shardedMembersFlag)
	require.NoError(t, err)
	if *shardedBaselineFlag {
		counts = append([]int{0}, counts...)
	}
	ctx := t.Context()
	s, out := prepare(t)
	n := *shardedAppsFlag
	t.Logf("each berth process: QPS %g, burst %d, %d workers; their logs in %s", s.qps, s.burst, s.workers, s.logDir)

	var runs []shardedRun
	for _, members := range counts {
		t.Logf("=== %d Apps: berth, %s", n, runLabel(members))
		r, err := runSharded(ctx, t, s, n, members)
		require.NoError(t, err, "berth with %d Apps, %s", n, runLabel(members))
		runs = append(runs, r)
		fmt.Println(shardedMarkdown(s, runs, r))
		require.NoError(t, writeShardedReport(out, s, runs))
	}
	fmt.Println(shardedSummary(runs))
	t.Logf("written to %s: sharded.md, sharded.csv, sharded-requests.csv", out)
}

// parseMembers reads -scale.sharded-members: distinct numbers of members, from the fewest to the most.
func parseMembers(list string) ([]int, error) {
	var counts []int
	for _, field := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale.sharded-members: %q is not a number of members", field)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts) // the ratios are against the run of one member: it goes first
	return slices.Compact(counts), nil
}

// runSharded measures berth with n Apps on a fresh cluster: the n Apps exist before members berth processes
// start with --leader-elect --sharding (with members 0, one berth process without either).
func runSharded(ctx context.Context, t *testing.T, s setup, n, members int) (shardedRun, error) {
	r := shardedRun{n: n, members: members, liveMembers: math.NaN(), unassigned: math.NaN()}
	cluster, err := startCluster(ctx, n)
	if err != nil {
		return r, err
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			t.Logf("stopping the cluster: %v", err)
		}
	}()
	if _, err := createAppsLogged(ctx, t, cluster, n); err != nil {
		return r, err
	}
	sharded := members > 0
	if sharded {
		kube, err := kubernetes.NewForConfig(cluster.Config)
		if err != nil {
			return r, err
		}
		if _, err := kube.CoreV1().Namespaces().Create(ctx,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shardedNamespace}}, metav1.CreateOptions{}); err != nil {
			return r, fmt.Errorf("creating namespace %s: %w", shardedNamespace, err)
		}
	}
	conv, err := startConvergence(ctx, cluster.Config, n)
	if err != nil {
		return r, err
	}
	defer conv.Stop()

	processes := max(members, 1)
	ports, err := framework.FreePorts(2 * processes)
	if err != nil {
		return r, err
	}
	metricsAddresses := make([]string, processes)
	for i := range processes {
		metricsAddresses[i] = "127.0.0.1:" + strconv.Itoa(ports[2*i])
	}
	metricsURL := func(i int) string { return "http://" + metricsAddresses[i] + "/metrics" }
	name := func(i int) string {
		if !sharded {
			return fmt.Sprintf("berth-unsharded-%d", n)
		}
		return fmt.Sprintf("berth-sharded-%d-of-%d-%d", i+1, members, n)
	}

	cpuBefore, err := readCPUTimes()
	if err != nil {
		return r, err
	}
	start := time.Now()
	var berths []*framework.Process
	defer func() { stopAll(berths) }()
	for i := range processes {
		args := []string{
			"--metrics-bind-address=" + metricsAddresses[i],
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
			"--profiling",
			"--resync-period=" + s.resync.String(),
			"--workers=" + strconv.Itoa(s.workers),
			"--kube-api-qps=" + strconv.FormatFloat(s.qps, 'f', -1, 64),
			"--kube-api-burst=" + strconv.Itoa(s.burst),
		}
		if sharded {
			args = append(args, "--leader-elect", "--sharding")
		}
		berth, err := cluster.StartBerth(s.binary, s.logDir, name(i), args...)
		if err != nil {
			return r, err
		}
		berths = append(berths, berth)
	}
	exited := anyDone(berths)
	failed := func(err error) (shardedRun, error) {
		var logs strings.Builder
		for _, b := range berths {
			fmt.Fprintf(&logs, "\n%s's log (%s) ends with:\n%s", b.Name, b.LogPath, b.LogTail(20))
		}
		return r, fmt.Errorf("%w;%s", err, logs.String())
	}

	if err := conv.wait(ctx, t.Logf, "berth's Apps converged", conv.allConverged, exited, s.timeout(n)); err != nil {
		return failed(err)
	}
	r.busy = busySince(cpuBefore)
	r.converge = conv.lastConvergedAt().Sub(start)
	// First what every member did until then (the CPU time goes on), then their heaps, one after the other.
	r.member = make([]memberResult, processes)
	for i := range processes {
		got, err := scrapeMember(ctx, metricsURL(i), sharded)
		if err != nil {
			return failed(fmt.Errorf("%s: %w", name(i), err))
		}
		r.member[i].cpu, r.member[i].buckets = got.cpu, got.buckets
		if got.members > 0 {
			r.member[i].leader = true
			r.liveMembers, r.unassigned = got.members, got.unassigned
		}
	}
	for i := range processes {
		m := &r.member[i]
		if m.heap, m.rss, err = berthMemory(ctx, metricsAddresses[i],
			filepath.Join(s.logDir, fmt.Sprintf("heap-%s.pprof", name(i)))); err != nil {
			return failed(fmt.Errorf("%s: %w", name(i), err))
		}
	}
	var perMember strings.Builder
	for i, m := range r.member {
		fmt.Fprintf(&perMember, "\n  %s%s: %s buckets, heap %s, RSS %s, CPU %s", name(i), leaderMark(m),
			number(m.buckets), mib(m.heap), mib(m.rss), m.cpu.Round(time.Millisecond))
	}
	t.Logf("berth's %d Apps converged in %s (%s); the machine's CPU %.0f%% busy:%s", n,
		r.converge.Round(time.Millisecond), r.label(), 100*r.busy, perMember.String())

	// The writes are counted once the Apps have settled, as TestScale counts them: every App Available, and
	// the members have stopped writing (but for their Leases, which they renew as long as they live).
	if err := conv.wait(ctx, t.Logf, "berth's Apps are Available", conv.allAvailable, exited, s.timeout(n)); err != nil {
		return failed(err)
	}
	conv.Stop()
	last := -1.0
	err = waitFor(ctx, "berth stops writing", 2*time.Second, s.timeout(n), func() (bool, error) {
		for i := range processes {
			got, err := scrapeMember(ctx, metricsURL(i), sharded)
			if err != nil {
				return false, fmt.Errorf("%s: %w", name(i), err)
			}
			r.member[i].requests, r.member[i].bucketsSettled = got.requests, got.buckets
		}
		writes := r.writesPerApp(true)
		quiet := writes == last
		last = writes
		return quiet, nil
	})
	if err != nil {
		return failed(err)
	}
	for _, b := range berths {
		if b.Exited() {
			return failed(fmt.Errorf("%s exited", b.Name))
		}
	}
	return r, nil
}

func leaderMark(m memberResult) string {
	if m.leader {
		return " (leader)"
	}
	return ""
}

// anyDone is closed when one of the processes has ended.
func anyDone(processes []*framework.Process) <-chan struct{} {
	done := make(chan struct{})
	var once sync.Once
	for _, p := range processes {
		go func() {
			<-p.Done()
			once.Do(func() { close(done) })
		}()
	}
	return done
}

// stopAll stops the processes at once: a member that leaves drains its syncs and deletes its Lease.
func stopAll(processes []*framework.Process) {
	var wg sync.WaitGroup
	for _, p := range processes {
		wg.Go(p.Stop)
	}
	wg.Wait()
}

// memberScrape is what one scrape of a member's /metrics tells.
type memberScrape struct {
	requests requests
	cpu      time.Duration
	// buckets, members and unassigned are its berth_shard_* gauges; NaN unsharded.
	buckets, members, unassigned float64
}

func scrapeMember(ctx context.Context, metricsURL string, sharded bool) (memberScrape, error) {
	got := memberScrape{buckets: math.NaN(), members: math.NaN(), unassigned: math.NaN()}
	m, err := framework.ScrapeMetrics(ctx, metricsURL)
	if err != nil {
		return got, err
	}
	if !m.Has("process_cpu_seconds_total", nil) {
		return got, fmt.Errorf("berth's /metrics has no process_cpu_seconds_total")
	}
	got.cpu = time.Duration(m.Sum("process_cpu_seconds_total", nil) * float64(time.Second))
	got.requests = requestsIn(m)
	if sharded {
		gauge := func(name string) float64 {
			if !m.Has(name, nil) {
				return math.NaN()
			}
			return m.Sum(name, nil)
		}
		got.buckets = gauge("berth_shard_buckets")
		got.members = gauge("berth_shard_members")
		got.unassigned = gauge("berth_shard_unassigned_buckets")
	}
	return got, nil
}

// The targets of the sharded benchmark, which the report tells met or not (it asserts nothing): a member's heap
// and CPU fall as 1/M within 20% of the single member's; with 4 members, each holds at most 0.3x of the single
// member's heap; the writes per App are at most one more than unsharded (the App's bucket label); the Apps
// converge no slower than with a single member.
const (
	shareTolerance     = 0.2
	fourMembersHeapMax = 0.3
	extraWritesMax     = 1.0
)

// shardedRefs finds the reference runs among runs: berth unsharded and the single member; nil when not run.
func shardedRefs(runs []shardedRun) (unsharded, single *shardedRun) {
	for i := range runs {
		switch runs[i].members {
		case 0:
			unsharded = &runs[i]
		case 1:
			single = &runs[i]
		}
	}
	return unsharded, single
}

// ratio is a/b, NaN when b is not a positive number.
func ratio(a, b float64) float64 {
	if !(b > 0) {
		return math.NaN()
	}
	return a / b
}

func ratioText(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", v)
}

// met says whether a target was met: yes, no, or n/a when a figure it needs is missing.
func met(ok bool, known bool) string {
	switch {
	case !known:
		return "n/a"
	case ok:
		return "yes"
	default:
		return "no"
	}
}

// shardedMarkdown is the report of run r: a row per member, and its figures against the references in runs.
func shardedMarkdown(s setup, runs []shardedRun, r shardedRun) string {
	unsharded, single := shardedRefs(runs)
	var out strings.Builder
	fmt.Fprintf(&out, "### %d Apps, %s\n\n", r.n, r.label())
	how := "One berth process without --leader-elect"
	switch {
	case r.members == 1:
		how = "One berth process with --leader-elect --sharding"
	case r.members > 1:
		how = fmt.Sprintf("%d berth processes with --leader-elect --sharding, started at once", r.members)
	}
	fmt.Fprintf(&out, "%s; each with QPS %g, burst %d, %d workers. The heap (live objects, after a GC), RSS, CPU "+
		"and buckets are each member's when every App had converged; the writes are all members' until every App "+
		"was Available and they stopped writing, the Leases' not counted.\n\n", how, s.qps, s.burst, s.workers)

	share := math.NaN()
	if r.members > 0 {
		share = 1 / float64(r.members)
	}
	fmt.Fprintf(&out, "| member | buckets | Go heap | heap / 1 member's | RSS | CPU until converged | CPU / 1 member's |\n")
	out.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	var heapSum, rssSum, cpuSum float64
	for i, m := range r.member {
		heapRatio, cpuRatio := math.NaN(), math.NaN()
		if single != nil {
			heapRatio = ratio(m.heap, single.member[0].heap)
			cpuRatio = ratio(m.cpu.Seconds(), single.member[0].cpu.Seconds())
		}
		fmt.Fprintf(&out, "| %d%s | %s | %s | %s | %s | %.1f s | %s |\n", i+1, leaderMark(m), number(m.buckets),
			mib(m.heap), ratioText(heapRatio), mib(m.rss), m.cpu.Seconds(), ratioText(cpuRatio))
		heapSum += m.heap
		rssSum += m.rss
		cpuSum += m.cpu.Seconds()
	}
	if len(r.member) > 1 {
		fmt.Fprintf(&out, "| all | | %s | | %s | %.1f s | |\n", mib(heapSum), mib(rssSum), cpuSum)
	}
	out.WriteString("\n")

	row := func(what, value, target, ok string) {
		fmt.Fprintf(&out, "| %s | %s | %s | %s |\n", what, value, target, ok)
	}
	out.WriteString("| | | target | met |\n|---|---:|---|---|\n")
	row("every App converged (Deployment, Service, status of its generation)",
		fmt.Sprintf("%.1f s", r.converge.Seconds()), "", "")
	if r.members > 0 {
		convRatio := math.NaN()
		if single != nil {
			convRatio = ratio(r.converge.Seconds(), single.converge.Seconds())
		}
		row("converged / 1 member's", ratioText(convRatio), "at most 1.00x (no slower)",
			met(convRatio <= 1, !math.IsNaN(convRatio)))
	}
	writes := r.writesPerApp(true)
	row("writes per App (all members; the Leases' not counted)", fmt.Sprintf("%.2f", writes), "", "")
	if r.members > 0 {
		extra := math.NaN()
		if unsharded != nil {
			extra = writes - unsharded.writesPerApp(true)
		}
		value := "n/a (no unsharded run)"
		if !math.IsNaN(extra) {
			value = fmt.Sprintf("%+.2f (unsharded %.2f)", extra, unsharded.writesPerApp(true))
		}
		row("writes per App - unsharded's", value, fmt.Sprintf("at most %+.0f (the bucket label)", extraWritesMax),
			met(extra <= extraWritesMax, !math.IsNaN(extra)))
	}
	row("writes per App, Events not counted", fmt.Sprintf("%.2f", r.writesPerApp(false)), "", "")
	row("of which App labels (patches of Apps) per App", fmt.Sprintf("%.2f", r.labelWrites()/float64(r.n)), "", "")
	row("writes of Leases (renewals, the table)", number(r.leaseWrites()), "", "")
	if r.members > 0 {
		if single != nil {
			heapOK, cpuOK := true, true
			known := true
			for _, m := range r.member {
				h := ratio(m.heap, single.member[0].heap)
				c := ratio(m.cpu.Seconds(), single.member[0].cpu.Seconds())
				known = known && !math.IsNaN(h) && !math.IsNaN(c)
				heapOK = heapOK && math.Abs(h-share) <= shareTolerance*share
				cpuOK = cpuOK && math.Abs(c-share) <= shareTolerance*share
			}
			bounds := fmt.Sprintf("%.2fx-%.2fx (1/%d within %.0f%%)", share*(1-shareTolerance),
				share*(1+shareTolerance), r.members, 100*shareTolerance)
			row("each member's heap / 1 member's", rangeOf(r, single, func(m memberResult) float64 { return m.heap }),
				bounds, met(heapOK, known))
			row("each member's CPU / 1 member's", rangeOf(r, single, func(m memberResult) float64 { return m.cpu.Seconds() }),
				bounds, met(cpuOK, known))
			if r.members == 4 {
				largest := math.NaN()
				for _, m := range r.member {
					largest = maxOf(largest, ratio(m.heap, single.member[0].heap))
				}
				row("the largest member's heap / 1 member's", ratioText(largest),
					fmt.Sprintf("at most %.2fx", fourMembersHeapMax),
					met(largest <= fourMembersHeapMax, !math.IsNaN(largest)))
			}
		}
		row("live members and unassigned buckets (the leader's, at convergence)",
			fmt.Sprintf("%s, %s", number(r.liveMembers), number(r.unassigned)), "", "")
		var settled []string
		for _, m := range r.member {
			settled = append(settled, number(m.bucketsSettled))
		}
		row("each member's buckets once settled", strings.Join(settled, ", "), "", "")
	}
	row("the machine's CPU busy until converged (%)", fmt.Sprintf("%.0f", 100*r.busy), "", "")
	return out.String()
}

// rangeOf is the least and greatest ratio of a figure of r's members to the single member's.
func rangeOf(r shardedRun, single *shardedRun, figure func(memberResult) float64) string {
	least, most := math.NaN(), math.NaN()
	for _, m := range r.member {
		v := ratio(figure(m), figure(single.member[0]))
		least, most = minOf(least, v), maxOf(most, v)
	}
	if least == most || math.IsNaN(least) {
		return ratioText(least)
	}
	return fmt.Sprintf("%.2fx-%.2fx", least, most)
}

// minOf and maxOf ignore a NaN a.
func minOf(a, b float64) float64 {
	if math.IsNaN(a) || b < a {
		return b
	}
	return a
}

func maxOf(a, b float64) float64 {
	if math.IsNaN(a) || b > a {
		return b
	}
	return a
}

// shardedSummary is a row per run: the figures that the targets are about.
func shardedSummary(runs []shardedRun) string {
	unsharded, single := shardedRefs(runs)
	var out strings.Builder
	if len(runs) > 0 {
		fmt.Fprintf(&out, "### %d Apps: every run\n\n", runs[0].n)
	}
	out.WriteString("| run | converged | / 1 member's | writes per App | - unsharded's | largest member heap | " +
		"/ 1 member's | largest member CPU | / 1 member's |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		heap, cpu := math.NaN(), math.NaN()
		for _, m := range r.member {
			heap, cpu = maxOf(heap, m.heap), maxOf(cpu, m.cpu.Seconds())
		}
		convRatio, heapRatio, cpuRatio, extra := math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if single != nil {
			convRatio = ratio(r.converge.Seconds(), single.converge.Seconds())
			heapRatio = ratio(heap, single.member[0].heap)
			cpuRatio = ratio(cpu, single.member[0].cpu.Seconds())
		}
		if unsharded != nil {
			extra = r.writesPerApp(true) - unsharded.writesPerApp(true)
		}
		extraText := "n/a"
		if !math.IsNaN(extra) {
			extraText = fmt.Sprintf("%+.2f", extra)
		}
		fmt.Fprintf(&out, "| %s | %.1f s | %s | %.2f | %s | %s | %s | %.1f s | %s |\n", r.label(), r.converge.Seconds(),
			ratioText(convRatio), r.writesPerApp(true), extraText, mib(heap), ratioText(heapRatio), cpu,
			ratioText(cpuRatio))
	}
	fmt.Fprintf(&out, "\nTargets: each member's heap and CPU 1/M of the single member's within %.0f%%; with 4 members, "+
		"each heap at most %.2fx the single member's; writes per App at most %.0f more than unsharded; converged no "+
		"slower than the single member.\n", 100*shareTolerance, fourMembersHeapMax, extraWritesMax)
	return out.String()
}

// writeShardedReport writes the reports of the runs so far into dir: sharded.md, sharded.csv (a row per member
// of each run) and sharded-requests.csv.
func writeShardedReport(dir string, s setup, runs []shardedRun) error {
	unsharded, single := shardedRefs(runs)
	var md strings.Builder
	fmt.Fprintf(&md, "# berth's sharded scale benchmark, %s\n\n", time.Now().UTC().Format(time.RFC3339))
	md.WriteString(shardedSummary(runs) + "\n")
	for _, r := range runs {
		md.WriteString(shardedMarkdown(s, runs, r) + "\n")
	}
	figures := [][]string{{"apps", "members", "member", "leader", "buckets", "buckets_settled", "heap_bytes",
		"heap_vs_one_member", "rss_bytes", "cpu_s_until_converged", "cpu_vs_one_member", "converge_s",
		"converge_vs_one_member", "writes_per_app", "writes_per_app_unsharded", "writes_per_app_without_events",
		"label_writes", "lease_writes", "machine_cpu_busy"}}
	reqs := [][]string{{"apps", "members", "member", "verb", "resource", "count"}}
	for _, r := range runs {
		convRatio, unshardedWrites := math.NaN(), math.NaN()
		if single != nil {
			convRatio = ratio(r.converge.Seconds(), single.converge.Seconds())
		}
		if unsharded != nil {
			unshardedWrites = unsharded.writesPerApp(true)
		}
		for i, m := range r.member {
			heapRatio, cpuRatio := math.NaN(), math.NaN()
			if single != nil {
				heapRatio = ratio(m.heap, single.member[0].heap)
				cpuRatio = ratio(m.cpu.Seconds(), single.member[0].cpu.Seconds())
			}
			member := strconv.Itoa(i + 1)
			figures = append(figures, []string{strconv.Itoa(r.n), strconv.Itoa(r.members), member,
				strconv.FormatBool(m.leader), csvNumber(m.buckets), csvNumber(m.bucketsSettled), csvNumber(m.heap),
				csvNumber(heapRatio), csvNumber(m.rss), csvNumber(m.cpu.Seconds()), csvNumber(cpuRatio),
				csvNumber(r.converge.Seconds()), csvNumber(convRatio), csvNumber(r.writesPerApp(true)),
				csvNumber(unshardedWrites), csvNumber(r.writesPerApp(false)), csvNumber(r.labelWrites()),
				csvNumber(r.leaseWrites()), csvNumber(r.busy)})
			for _, req := range m.requests.sorted() {
				reqs = append(reqs, []string{strconv.Itoa(r.n), strconv.Itoa(r.members), member, req.verb,
					req.resource, csvNumber(m.requests[req])})
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "sharded.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "sharded.csv"), figures); err != nil {
		return err
	}
	return writeCSV(filepath.Join(dir, "sharded-requests.csv"), reqs)
}

func TestShardedReport(t *testing.T) {
	s := setup{limits: limits{qps: 50, burst: 100, workers: 4}}
	member := func(leader bool, buckets, heapMiB, cpu float64) memberResult {
		return memberResult{leader: leader, buckets: buckets, bucketsSettled: buckets, heap: heapMiB * (1 << 20),
			rss: 2 * heapMiB * (1 << 20), cpu: time.Duration(cpu * float64(time.Second)),
			requests: requests{{"create", "deployments"}: buckets, {"create", "services"}: buckets,
				{"apply", "apps/status"}: buckets, {"update", "leases"}: 30}}
	}
	unsharded := member(false, 256, 100, 40)
	unsharded.buckets, unsharded.bucketsSettled = math.NaN(), math.NaN()
	delete(unsharded.requests, request{"update", "leases"})
	one := member(true, 256, 100, 40)
	one.requests[request{"patch", "apps"}] = 256
	four := []memberResult{member(true, 64, 24, 10), member(false, 64, 26, 11), member(false, 64, 31, 9),
		member(false, 64, 25, 10)}
	four[0].requests[request{"patch", "apps"}] = 256
	runs := []shardedRun{
		{n: 256, members: 0, converge: 60 * time.Second, liveMembers: math.NaN(), unassigned: math.NaN(),
			member: []memberResult{unsharded}},
		{n: 256, members: 1, converge: 64 * time.Second, liveMembers: 1, member: []memberResult{one}},
		{n: 256, members: 4, converge: 30 * time.Second, liveMembers: 4, member: four},
	}
	require.InDelta(t, 3.0, runs[0].writesPerApp(true), 1e-9)
	require.InDelta(t, 4.0, runs[2].writesPerApp(true), 1e-9)
	require.InDelta(t, 120.0, runs[2].leaseWrites(), 1e-9)
	md := shardedMarkdown(s, runs, runs[2])
	require.Contains(t, md, "| 1 (leader) | 64 | 24.0 MiB | 0.24x | 48.0 MiB | 10.0 s | 0.25x |")
	require.Contains(t, md, "| converged / 1 member's | 0.47x | at most 1.00x (no slower) | yes |")
	require.Contains(t, md, "| writes per App - unsharded's | +1.00 (unsharded 3.00) | at most +1 (the bucket label) | yes |")
	require.Contains(t, md, "| each member's heap / 1 member's | 0.24x-0.31x | 0.20x-0.30x (1/4 within 20%) | no |")
	require.Contains(t, md, "| the largest member's heap / 1 member's | 0.31x | at most 0.30x | no |")
	summary := shardedSummary(runs)
	require.Contains(t, summary, "| 4 members | 30.0 s | 0.47x | 4.00 | +1.00 | 31.0 MiB | 0.31x | 11.0 s | 0.28x |")
	t.Log("\n" + md + "\n" + summary)
}
