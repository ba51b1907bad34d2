# shellcheck shell=bash disable=SC2034
# Shared by hack/cluster-up.sh, hack/cluster-down.sh and hack/cluster-restart.sh: where berth's local control plane
# lives, how its processes are started, and how to find them again. Source it; it defines variables and functions
# only.
# Linux only (it reads /proc to make sure a recorded PID is still the process that was started).

CLUSTER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER_BIN_DIR="${BERTH_BIN_DIR:-${CLUSTER_ROOT}/.cache/bin}"
CLUSTER_DIR="${BERTH_CLUSTER_DIR:-${CLUSTER_ROOT}/.cache/cluster}"
CLUSTER_PKI_DIR="${CLUSTER_DIR}/pki"
CLUSTER_PID_DIR="${CLUSTER_DIR}/pids"
CLUSTER_LOG_DIR="${CLUSTER_DIR}/logs"
CLUSTER_KUBECONFIG="${CLUSTER_DIR}/kubeconfig"

# Ports, all on 127.0.0.1. Uncommon defaults, so as not to clash with a real cluster on the same machine.
BERTH_APISERVER_PORT="${BERTH_APISERVER_PORT:-16443}"
BERTH_ETCD_PORT="${BERTH_ETCD_PORT:-12379}"
BERTH_ETCD_PEER_PORT="${BERTH_ETCD_PEER_PORT:-12380}"
BERTH_CONTROLLER_MANAGER_PORT="${BERTH_CONTROLLER_MANAGER_PORT:-16257}"
BERTH_SCHEDULER_PORT="${BERTH_SCHEDULER_PORT:-16259}"
BERTH_KWOK_PORT="${BERTH_KWOK_PORT:-16247}"

# Start order; cluster-down stops them in the reverse order.
CLUSTER_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

# kubectl's discovery cache goes into the project's scratch folder, not $HOME/.kube.
export KUBECACHEDIR="${KUBECACHEDIR:-${CLUSTER_ROOT}/.cache/kube-cache}"

cluster::port_vars() {
  echo BERTH_ETCD_PORT BERTH_ETCD_PEER_PORT BERTH_APISERVER_PORT BERTH_CONTROLLER_MANAGER_PORT \
    BERTH_SCHEDULER_PORT BERTH_KWOK_PORT
}

# cluster::pid COMPONENT prints the recorded PID of COMPONENT if that process is alive and is still the binary
# that was started (so a PID reused by another process is never taken for ours); prints nothing otherwise.
cluster::pid() {
  local name="$1" file="${CLUSTER_PID_DIR}/$1.pid" pid arg0
  [[ -f "${file}" ]] || return 0
  pid="$(cat "${file}" 2>/dev/null || true)"
  [[ "${pid}" =~ ^[0-9]+$ ]] || return 0
  [[ -r "/proc/${pid}/cmdline" ]] || return 0
  arg0="$({ tr '\0' '\n' <"/proc/${pid}/cmdline"; } 2>/dev/null | head -n1 || true)"
  if [[ "${arg0}" == "${CLUSTER_BIN_DIR}/${name}" ]]; then
    # A zombie (exited, not yet reaped) is not running.
    if [[ "$(awk '/^State:/{print $2}' "/proc/${pid}/status" 2>/dev/null)" != Z ]]; then
      echo "${pid}"
    fi
  fi
}

# cluster::running prints "COMPONENT PID" for each component that is running.
cluster::running() {
  local c pid
  for c in "${CLUSTER_COMPONENTS[@]}"; do
    pid="$(cluster::pid "${c}")"
    if [[ -n "${pid}" ]]; then
      echo "${c} ${pid}"
    fi
  done
}

# cluster::launch NAME ARGS...: runs ${CLUSTER_BIN_DIR}/NAME in the background, in its own session (so that a
# Ctrl-C in the terminal does not reach it), with its output appended to logs/NAME.log, its PID in pids/NAME.pid and
# its arguments in pids/NAME.args (NUL-separated, so that any argument survives), from which hack/cluster-restart.sh
# starts it again the same way. The subshell execs env and setsid, which exec the binary: one PID.
cluster::launch() {
  local name="$1"
  shift
  local logfile="${CLUSTER_LOG_DIR}/${name}.log" setsid=()
  local -a env
  mapfile -t env < <(cluster::component_env "${name}")
  if command -v setsid >/dev/null 2>&1; then
    setsid=(setsid)
  fi
  echo "=== $(date -u +%FT%TZ) ${name} $*" >>"${logfile}"
  : >"${CLUSTER_PID_DIR}/${name}.args"
  if (($# > 0)); then
    printf '%s\0' "$@" >"${CLUSTER_PID_DIR}/${name}.args"
  fi
  (exec env "${env[@]}" "${setsid[@]}" "${CLUSTER_BIN_DIR}/${name}" "$@" </dev/null >>"${logfile}" 2>&1) &
  echo "$!" >"${CLUSTER_PID_DIR}/${name}.pid"
}

# cluster::component_env NAME prints the environment variables (NAME=VALUE, one a line) that the component is
# started with, besides those of the caller: kwok reads and writes ~/.kwok unless KWOK_WORKDIR points elsewhere.
cluster::component_env() {
  case "$1" in
    kwok) echo "KWOK_WORKDIR=${CLUSTER_DIR}/kwok" ;;
  esac
}

# cluster::args NAME prints the arguments NAME was started with, NUL-separated, as cluster::launch recorded them.
cluster::args() {
  cat "${CLUSTER_PID_DIR}/$1.args"
}

# cluster::etcd_healthy succeeds when etcd answers /health with health true: a plain HTTP GET with bash alone (no
# curl needed), since etcd serves its client port without TLS on 127.0.0.1.
cluster::etcd_healthy() {
  local resp
  resp="$(exec 3<>"/dev/tcp/127.0.0.1/${BERTH_ETCD_PORT}" &&
    printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && timeout 2 cat <&3)" || return 1
  [[ "${resp}" == "HTTP/1.0 200"* || "${resp}" == "HTTP/1.1 200"* ]] && [[ "${resp}" == *'"health":"true"'* ]]
}

# cluster::apiserver_ready succeeds when kube-apiserver answers /readyz with ok.
cluster::apiserver_ready() {
  "${CLUSTER_BIN_DIR}/kubectl" --kubeconfig="${CLUSTER_KUBECONFIG}" --request-timeout=5s get --raw /readyz
}

# cluster::port_in_use PORT succeeds if something listens on 127.0.0.1:PORT (or on every address) and prints
# what, when ss can tell.
cluster::port_in_use() {
  local port="$1" line
  if command -v ss >/dev/null 2>&1; then
    line="$(ss -Hltnp "sport = :${port}" 2>/dev/null | head -n1 || true)"
    if [[ -n "${line}" ]]; then
      echo "${line}" | grep -o 'users:(.*)' || echo "(process unknown)"
      return 0
    fi
    return 1
  fi
  # No ss: try to connect.
  if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
    echo "(process unknown)"
    return 0
  fi
  return 1
}

# cluster::stop COMPONENT [SIGNAL]: sends SIGNAL (default TERM) to the recorded process, waits up to
# BERTH_STOP_TIMEOUT seconds (default 15), then SIGKILL; removes the PID file (not the arguments, which
# hack/cluster-restart.sh reads). Never signals anything but the recorded PID.
cluster::stop() {
  local name="$1" signal="${2:-TERM}" pid i timeout="${BERTH_STOP_TIMEOUT:-15}"
  pid="$(cluster::pid "${name}")"
  if [[ -z "${pid}" ]]; then
    rm -f "${CLUSTER_PID_DIR}/${name}.pid"
    return 0
  fi
  kill -"${signal}" "${pid}" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    [[ -n "$(cluster::pid "${name}")" ]] || break
    sleep 0.1
  done
  if [[ -n "$(cluster::pid "${name}")" ]]; then
    echo "cluster: ${name} (pid ${pid}) did not stop within ${timeout}s after SIG${signal}: sending SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [[ -n "$(cluster::pid "${name}")" ]] || break
      sleep 0.1
    done
  fi
  if [[ -n "$(cluster::pid "${name}")" ]]; then
    echo "cluster: ${name} (pid ${pid}) is still running" >&2
    return 1
  fi
  rm -f "${CLUSTER_PID_DIR}/${name}.pid"
  echo "cluster: stopped ${name} (pid ${pid}, SIG${signal})"
}

# cluster::stop_all stops every running component, newest first.
cluster::stop_all() {
  local i rc=0
  for ((i = ${#CLUSTER_COMPONENTS[@]} - 1; i >= 0; i--)); do
    cluster::stop "${CLUSTER_COMPONENTS[i]}" || rc=1
  done
  return "${rc}"
}
