package scale

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The report of the sharded benchmark: its tables, and the targets it says are met or not.

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
// of each run), sharded-requests.csv and the chart sharded.svg.
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
	if err := writeCSV(filepath.Join(dir, "sharded-requests.csv"), reqs); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sharded.svg"), []byte(shardedChart(runs)), 0o644)
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
