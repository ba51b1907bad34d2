#!/usr/bin/env bash
# Runs berth's benchmarks (make bench), in two parts:
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
#
# Environment:
#   BENCH_COUNT [3]          runs of each Go benchmark
#   BENCH_APPS [100,1000]    the numbers of Apps of the scale benchmark; empty skips it
#   BENCH_FLAGS              more flags for the scale benchmark, e.g. "-scale.update-docs" (copies the chart to
#                            docs/bench/scale.svg), "-scale.qps=100 -scale.burst=200 -scale.workers=8" (berth's
#                            limits and the floor's), "-scale.runs=1", "-scale.foreign=0", "-scale.secrets-per-app=0"; see
#                            test/scale/scale_test.go
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
if [[ -z "${apps}" ]]; then
  exit 0
fi
echo
echo "scale benchmark: ${apps} Apps (see .cache/bench/ for the report and the chart)"
# shellcheck disable=SC2086 # BENCH_FLAGS holds several flags
go test -run '^TestScale$' -count=1 -timeout=0 -v ./test/scale/ -args -scale.apps="${apps}" ${BENCH_FLAGS:-}
