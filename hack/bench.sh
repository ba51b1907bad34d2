#!/usr/bin/env bash
# Runs berth's benchmarks (make bench), in three parts (the third only when asked for):
#
# 1. The Go benchmarks of pkg/controller and pkg/plan (fake clientsets, no cluster), each reported as a ratio to the baseline
#    measured in the same run: BenchmarkSyncBaselineListerReads, the lister reads that a sync of a converged App
#    cannot avoid. BenchmarkSyncConverged is what every App costs berth at each resync.
# 2. The scale benchmark (test/scale): for each N of BENCH_APPS, N Apps are created on a fresh local cluster before
#    berth starts; berth works them through. The write floor (a plain client-go program making only the writes an
#    App needs, with berth's clients, client limits and workers) does the same on another fresh cluster. Each runs
#    3 times (-scale.runs), alternately, on a fresh cluster each time. It prints a table per N (medians and
#    spread of the convergence time beside the rate limit's bound, writes per App, idle writes, memory, requests
#    by verb and resource) and writes it to .cache/bench/: scale.md, scale.csv, scale-requests.csv, the chart
#    scale.svg, and berth's CPU and heap profiles in logs/.
#    Each App reads one of 10 Secrets of its own (created with the Apps, 4 KiB each, with kubectl's copy in an
#    annotation); berth's first run of each N also measures an idle window of a minute, 10,000 foreign
#    Deployments, and as many Secrets again that no App reads (the heap per Secret). On 2
#    cores the default (100,1000) takes about 15 minutes; N=10000 is possible (BENCH_APPS=100,1000,10000) but
#    takes long: with -scale.runs=1, an hour or more on top, most of it spent by the control plane on 10,000
#    Deployments and their Pods.
# 3. The sharded scale benchmark (test/scale's TestScaleSharded), only with BENCH_SHARDED_APPS: for each M of
#    BENCH_SHARDED_MEMBERS, its N Apps are created on a fresh local cluster before M berth processes start at once
#    with --leader-elect --sharding (each with the limits and workers above); and once more with berth unsharded,
#    the baseline of the writes per App. It prints a table per run (the time until every App converged against
#    the single member's; each member's buckets, heap, RSS and CPU at that moment against the single member's;
#    the members' writes per App against berth unsharded) and writes them to .cache/bench/: sharded.md,
#    sharded.csv, sharded-requests.csv and the chart sharded.svg (drawn again from sharded.csv with
#    `go test ./test/scale -run TestShardedRedraw -args -scale.sharded-redraw [-scale.update-docs]`, which copies
#    it to docs/bench/sharded.svg). The issue's run is BENCH_APPS= BENCH_SHARDED_APPS=10000 (1, 2 and 4
#    members): four clusters of 10,000 Apps, a few hours on 2 cores.
#
# Environment:
#   BENCH_COUNT [3]          runs of each Go benchmark
#   BENCH_APPS [100,1000]    the numbers of Apps of the scale benchmark; empty skips it
#   BENCH_FLAGS              more flags for the scale benchmark, e.g. "-scale.update-docs" (copies the chart to
#                            docs/bench/scale.svg), "-scale.qps=100 -scale.burst=200 -scale.workers=8" (berth's
#                            limits and the floor's), "-scale.runs=1", "-scale.foreign=0", "-scale.secrets-per-app=0"; see
#                            test/scale/scale_test.go
#   BENCH_SHARDED_APPS       the number of Apps of the sharded scale benchmark, e.g. 10000; empty (the default)
#                            skips it. BENCH_FLAGS apply to it too; "-scale.sharded-baseline=false" leaves out
#                            the unsharded run
#   BENCH_SHARDED_MEMBERS [1,2,4]
#                            the numbers of berth members of the sharded scale benchmark, one run of each
#   BERTH_BIN_DIR            the local cluster's binaries [.cache/bin]: built when missing (about 10 minutes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="$(go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-3}" ./pkg/controller/ ./pkg/plan/ 2>/dev/null | grep '^Benchmark')"
echo "${out}"
echo
echo "${out}" | awk '
  # Fields: name, iterations, ns/op, "ns/op", B/op, "B/op", allocs/op, "allocs/op"; averaged over the runs.
  { sub(/-[0-9]+$/, "", $1); ns[$1] += $3; allocs[$1] += $7; n[$1]++; if (!($1 in seen)) { seen[$1]; order[++count] = $1 } }
  END {
    base = "BenchmarkSyncBaselineListerReads"
    printf "%-34s %12s %10s  %s\n", "mean of " n[base] " run(s)", "ns/op", "allocs/op", "against the lister-read baseline"
    for (i = 1; i <= count; i++) {
      b = order[i]
      printf "%-34s %12.0f %10.0f  %s\n", b, ns[b] / n[b], allocs[b] / n[b],
        (b == base ? "" : sprintf("%.0fx", (ns[b] / n[b]) / (ns[base] / n[base])))
    }
  }'

apps="${BENCH_APPS-100,1000}"
if [[ -n "${apps}" ]]; then
  echo
  echo "scale benchmark: ${apps} Apps (see .cache/bench/ for the report and the chart)"
  # shellcheck disable=SC2086 # BENCH_FLAGS holds several flags
  go test -run '^TestScale$' -count=1 -timeout=0 -v ./test/scale/ -args -scale.apps="${apps}" ${BENCH_FLAGS:-}
fi

sharded="${BENCH_SHARDED_APPS:-}"
if [[ -n "${sharded}" ]]; then
  members="${BENCH_SHARDED_MEMBERS:-1,2,4}"
  echo
  echo "sharded scale benchmark: ${sharded} Apps, ${members} members (see .cache/bench/sharded.md)"
  # shellcheck disable=SC2086 # BENCH_FLAGS holds several flags
  go test -run '^TestScaleSharded$' -count=1 -timeout=0 -v ./test/scale/ -args -scale.sharded-apps="${sharded}" \
    -scale.sharded-members="${members}" ${BENCH_FLAGS:-}
fi
