package scale

import (
	"context"
	"flag"
	"fmt"
	"math"
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
	t.Logf("written to %s: sharded.md, sharded.csv, sharded-requests.csv, sharded.svg", out)
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
