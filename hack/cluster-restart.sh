#!/usr/bin/env bash
# Restarts components of the running local cluster of hack/cluster-up.sh, one after the other, as a node's
# supervisor would: stops the recorded process (SIGTERM, and SIGKILL if it has not stopped within
# BERTH_STOP_TIMEOUT seconds; SIGKILL at once with --kill), starts it again with the arguments it was started with
# (recorded in pids/NAME.args), and waits until it is healthy: etcd answers /health, kube-apiserver /readyz; the
# others are still running a second after their start. The etcd data and the certificates are kept, so the
# cluster comes back with its state.
#
# Usage: hack/cluster-restart.sh [--kill] COMPONENT...
#   COMPONENT   etcd, kube-apiserver, kube-controller-manager, kube-scheduler or kwok
#   --kill      stop with SIGKILL, as a crash would, rather than SIGTERM
#
# Environment: the BERTH_* variables of hack/cluster-up.sh that select the cluster (BERTH_CLUSTER_DIR, ports);
# BERTH_UP_TIMEOUT [120] seconds to wait for a component to be healthy.
set -euo pipefail

# shellcheck source=lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

SIGNAL=TERM
COMPONENTS=()
for arg in "$@"; do
  case "${arg}" in
    --kill) SIGNAL=KILL ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "cluster-restart: unknown argument '${arg}' (try --help)" >&2
      exit 2
      ;;
    *) COMPONENTS+=("${arg}") ;;
  esac
done
if ((${#COMPONENTS[@]} == 0)); then
  echo "cluster-restart: name the components to restart (try --help)" >&2
  exit 2
fi
TIMEOUT="${BERTH_UP_TIMEOUT:-120}"

fail() {
  echo "cluster-restart: ERROR: $*" >&2
  exit 1
}

# healthy COMPONENT succeeds once the component serves: what cluster-up.sh waits for before it goes on. Of the
# others, nothing is asked but to be running a second after their start.
healthy() {
  case "$1" in
    etcd) cluster::etcd_healthy 2>/dev/null ;;
    kube-apiserver) cluster::apiserver_ready >/dev/null 2>&1 ;;
    *) sleep 1 ;;
  esac
}

restart() {
  local name="$1" args=() deadline start
  [[ " ${CLUSTER_COMPONENTS[*]} " == *" ${name} "* ]] || fail "unknown component '${name}'"
  [[ -n "$(cluster::pid "${name}")" ]] || fail "${name} is not running in ${CLUSTER_DIR}"
  [[ -f "${CLUSTER_PID_DIR}/${name}.args" ]] ||
    fail "${CLUSTER_PID_DIR}/${name}.args is missing: the cluster was started by an older hack/cluster-up.sh"
  mapfile -d '' args < <(cluster::args "${name}")

  start="$(date +%s.%N)"
  cluster::stop "${name}" "${SIGNAL}"
  cluster::launch "${name}" "${args[@]}"
  deadline=$(($(date +%s) + TIMEOUT))
  until healthy "${name}"; do
    [[ -n "$(cluster::pid "${name}")" ]] || fail "${name} exited after its restart; last lines of \
${CLUSTER_LOG_DIR}/${name}.log:
$(tail -n 30 "${CLUSTER_LOG_DIR}/${name}.log")"
    (($(date +%s) < deadline)) || fail "${name} is not healthy ${TIMEOUT}s after its restart"
    sleep 0.2
  done
  [[ -n "$(cluster::pid "${name}")" ]] || fail "${name} exited after its restart; last lines of \
${CLUSTER_LOG_DIR}/${name}.log:
$(tail -n 30 "${CLUSTER_LOG_DIR}/${name}.log")"
  echo "cluster-restart: ${name} is back (pid $(cluster::pid "${name}")), $(awk -v s="${start}" \
    -v e="$(date +%s.%N)" 'BEGIN{printf "%.1fs", e-s}') after it was stopped"
}

for c in "${COMPONENTS[@]}"; do
  restart "${c}"
done
