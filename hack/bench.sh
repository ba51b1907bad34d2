#!/usr/bin/env bash
# Runs berth's Go benchmarks and reports each against the baseline measured in the same run, as a ratio.
#   BenchmarkSyncConverged / BenchmarkSyncBaselineListerReads: the cost of a sync with nothing to do (every App
#   pays it at each resync) in units of the lister reads it cannot avoid.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(go test -run '^$' -bench . -benchmem -count "${BENCH_COUNT:-3}" ./pkg/controller/ 2>/dev/null | grep '^Benchmark')"
echo "${out}"
echo
echo "${out}" | awk '
  { sub(/-[0-9]+$/, "", $1); sum[$1] += $3; n[$1]++ }
  END {
    base = sum["BenchmarkSyncBaselineListerReads"] / n["BenchmarkSyncBaselineListerReads"]
    conv = sum["BenchmarkSyncConverged"] / n["BenchmarkSyncConverged"]
    printf "converged sync: %.0f ns/op = %.0fx the lister-read baseline (%.0f ns/op)\n", conv, conv / base, base
  }'
