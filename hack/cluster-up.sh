#!/usr/bin/env bash
# Starts berth's local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# kwok with three fake nodes, all on 127.0.0.1, all state under .cache/cluster/ (certificates, kubeconfigs, etcd
# data, logs, PID files). No Docker, no kubelet: kwok plays the kubelet, so Pods "run" without containers.
#
# Usage: hack/cluster-up.sh [--fresh]
#   --fresh   wipe the etcd data of a previous (stopped) cluster first; without it, the previous state is kept
#
# Environment (defaults in brackets):
#   BERTH_APISERVER_PORT [16443]  BERTH_ETCD_PORT [12379]  BERTH_ETCD_PEER_PORT [12380]
#   BERTH_CONTROLLER_MANAGER_PORT [16257]  BERTH_SCHEDULER_PORT [16259]  BERTH_KWOK_PORT [16247]
#   BERTH_NODES [3]              number of fake nodes (kwok-node-0 ...)
#   BERTH_CLUSTER_DIR [.cache/cluster]   BERTH_BIN_DIR [.cache/bin]
#   BERTH_SKIP_BUILD=1           do not call hack/build-kube.sh (the binaries must be there)
#   BERTH_UP_TIMEOUT [120]       seconds to wait for each step
#   BERTH_FEATURE_GATES          when set, the API server's --feature-gates (e.g. ShardedListAndWatch=true)
#   BERTH_AUDIT_LOG              when set, the API server logs there every write but those of Events and Leases,
#                                and every request on Secrets (audit level Metadata, JSON lines): the e2e tests
#                                read who wrote what from it, and who read Secrets how
#
# Stop it with hack/cluster-down.sh.
set -euo pipefail

# shellcheck source=lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

FRESH=0
for arg in "$@"; do
  case "${arg}" in
    --fresh) FRESH=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "cluster-up: unknown argument '${arg}' (try --help)" >&2
      exit 2
      ;;
  esac
done

NODES="${BERTH_NODES:-3}"
TIMEOUT="${BERTH_UP_TIMEOUT:-120}"
SERVICE_CIDR="10.96.0.0/16"
SERVICE_IP="10.96.0.1"
KWOK_CONFIG="${CLUSTER_ROOT}/hack/kube/kwok-config.yaml"
KUBECTL="${CLUSTER_BIN_DIR}/kubectl"
START_TIME="$(date +%s.%N)"

log() { echo "cluster-up: $*"; }
elapsed() { awk -v s="${START_TIME}" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1fs", e-s}'; }

# Once something was started, any failure (or Ctrl-C) before the end stops what was started.
STARTED=0
DONE=0
cleanup() {
  # Runs on every exit. The output may be a pipe whose reader is gone (Ctrl-C in `cluster-up.sh | tee log`):
  # ignore SIGPIPE and write errors, so that the processes are stopped whatever happens to the messages.
  trap '' PIPE INT TERM
  set +e
  if [[ "${DONE}" != 1 && "${STARTED}" == 1 ]]; then
    echo "cluster-up: stopping what was started (logs are kept in ${CLUSTER_LOG_DIR})" >&2
    cluster::stop_all >&2
  fi
}
trap cleanup EXIT
trap 'exit 141' PIPE
trap 'echo "cluster-up: interrupted" >&2; exit 130' INT TERM
fail() {
  echo "cluster-up: ERROR: $*" >&2
  exit 1
}

kubectl() { "${KUBECTL}" --kubeconfig="${CLUSTER_KUBECONFIG}" "$@"; }

# --- 1. refuse if already running -----------------------------------------------------------------------------
running="$(cluster::running)"
if [[ -n "${running}" ]]; then
  echo "cluster-up: the local cluster is already running (${CLUSTER_DIR}):" >&2
  echo "${running}" | sed 's/^/  /; s/ \([0-9]*\)$/ (pid \1)/' >&2
  echo "cluster-up: use it with: export KUBECONFIG=${CLUSTER_KUBECONFIG}; or stop it first: hack/cluster-down.sh" >&2
  exit 1
fi
rm -rf "${CLUSTER_PID_DIR}" # stale PID files of processes that are gone

# --- 2. binaries ----------------------------------------------------------------------------------------------
if [[ "${BERTH_SKIP_BUILD:-0}" != 1 ]]; then
  "${CLUSTER_ROOT}/hack/build-kube.sh" etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok pki
fi
for b in "${CLUSTER_COMPONENTS[@]}" kubectl pki; do
  [[ -x "${CLUSTER_BIN_DIR}/${b}" ]] || fail "${CLUSTER_BIN_DIR}/${b} is missing: run hack/build-kube.sh"
done

# --- 3. ports -------------------------------------------------------------------------------------------------
taken=0
for v in $(cluster::port_vars); do
  port="${!v}"
  [[ "${port}" =~ ^[0-9]+$ ]] || fail "${v}=${port} is not a port number"
  if who="$(cluster::port_in_use "${port}")"; then
    echo "cluster-up: port ${port} (${v}) is already in use on this machine: ${who}" >&2
    taken=1
  fi
done
if [[ "${taken}" == 1 ]]; then
  fail "free the port(s) above, or choose others with the environment variables named there"
fi

# --- 4. certificates and kubeconfigs --------------------------------------------------------------------------
mkdir -p "${CLUSTER_DIR}" "${CLUSTER_PID_DIR}" "${CLUSTER_LOG_DIR}" "${KUBECACHEDIR}"
if [[ "${FRESH}" == 1 ]]; then
  log "--fresh: removing the previous etcd data"
  rm -rf "${CLUSTER_DIR}/etcd"
fi
"${CLUSTER_BIN_DIR}/pki" -dir "${CLUSTER_PKI_DIR}" -server "https://127.0.0.1:${BERTH_APISERVER_PORT}" \
  -service-ip "${SERVICE_IP}"
cp "${CLUSTER_PKI_DIR}/admin.kubeconfig" "${CLUSTER_KUBECONFIG}.tmp"
mv -f "${CLUSTER_KUBECONFIG}.tmp" "${CLUSTER_KUBECONFIG}"
P="${CLUSTER_PKI_DIR}"

# start NAME ARGS...: starts a component with cluster::launch (its own session, logs/NAME.log, pids/NAME.pid and
# pids/NAME.args) and checks that it did not exit at once.
start() {
  local name="$1"
  cluster::launch "$@"
  STARTED=1
  sleep 0.1
  [[ -n "$(cluster::pid "${name}")" ]] || fail "${name} exited at once; last lines of ${CLUSTER_LOG_DIR}/${name}.log:
$(tail -n 20 "${CLUSTER_LOG_DIR}/${name}.log")"
  log "started ${name} (pid $(cat "${CLUSTER_PID_DIR}/${name}.pid")) [$(elapsed)]"
}

# wait_for DESCRIPTION COMPONENT COMMAND...: retries COMMAND every 0.2s until it succeeds, COMPONENT dies, or
# the timeout passes.
wait_for() {
  local what="$1" comp="$2" deadline
  shift 2
  deadline=$(($(date +%s) + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "${comp}" && -z "$(cluster::pid "${comp}")" ]]; then
      fail "${comp} exited while waiting for ${what}; last lines of ${CLUSTER_LOG_DIR}/${comp}.log:
$(tail -n 30 "${CLUSTER_LOG_DIR}/${comp}.log")"
    fi
    if (($(date +%s) >= deadline)); then
      fail "timed out after ${TIMEOUT}s waiting for ${what}${comp:+; see ${CLUSTER_LOG_DIR}/${comp}.log}"
    fi
    sleep 0.2
  done
  log "${what} [$(elapsed)]"
}

# Whatever happens to the processes started here, checks that every one of them is still alive.
all_alive() {
  local c
  for c in "${CLUSTER_COMPONENTS[@]}"; do
    [[ -n "$(cluster::pid "${c}")" ]] || fail "${c} is not running; last lines of ${CLUSTER_LOG_DIR}/${c}.log:
$(tail -n 30 "${CLUSTER_LOG_DIR}/${c}.log")"
  done
}

# --- 5. etcd --------------------------------------------------------------------------------------------------
log "starting the control plane in ${CLUSTER_DIR}"
start etcd \
  --name=berth-local \
  --data-dir="${CLUSTER_DIR}/etcd" \
  --listen-client-urls="http://127.0.0.1:${BERTH_ETCD_PORT}" \
  --advertise-client-urls="http://127.0.0.1:${BERTH_ETCD_PORT}" \
  --listen-peer-urls="http://127.0.0.1:${BERTH_ETCD_PEER_PORT}" \
  --initial-advertise-peer-urls="http://127.0.0.1:${BERTH_ETCD_PEER_PORT}" \
  --initial-cluster="berth-local=http://127.0.0.1:${BERTH_ETCD_PEER_PORT}" \
  --initial-cluster-state=new \
  --unsafe-no-fsync=true \
  --log-level=warn
wait_for "etcd is healthy" etcd cluster::etcd_healthy

# --- 6. kube-apiserver ----------------------------------------------------------------------------------------
audit_flags=()
if [[ -n "${BERTH_AUDIT_LOG:-}" ]]; then
  cat >"${CLUSTER_DIR}/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
# The table of the buckets' owners (--sharding), with what it says: the tests check each member's writes against it.
- level: Request
  verbs: [create, update]
  resources:
  - {group: coordination.k8s.io, resources: [leases], resourceNames: [berth-controller-shards]}
- level: None
  resources:
  - {group: "", resources: [events]}
  - {group: events.k8s.io}
  - {group: coordination.k8s.io, resources: [leases]}
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
# Every request on Secrets, reads too: the tests check that berth only lists and watches their metadata.
- level: Metadata
  resources:
  - {group: "", resources: [secrets]}
- level: None
POLICY
  audit_flags=(--audit-policy-file="${CLUSTER_DIR}/audit-policy.yaml" --audit-log-path="${BERTH_AUDIT_LOG}"
    --audit-log-format=json --audit-log-mode=blocking)
fi
gate_flags=()
if [[ -n "${BERTH_FEATURE_GATES:-}" ]]; then
  gate_flags=(--feature-gates="${BERTH_FEATURE_GATES}")
fi
start kube-apiserver "${audit_flags[@]}" "${gate_flags[@]}" \
  --etcd-servers="http://127.0.0.1:${BERTH_ETCD_PORT}" \
  --bind-address=127.0.0.1 \
  --secure-port="${BERTH_APISERVER_PORT}" \
  --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --tls-cert-file="${P}/apiserver.crt" \
  --tls-private-key-file="${P}/apiserver.key" \
  --client-ca-file="${P}/ca.crt" \
  --requestheader-client-ca-file="${P}/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="${P}/front-proxy-client.crt" \
  --proxy-client-key-file="${P}/front-proxy-client.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="${P}/sa.pub" \
  --service-account-signing-key-file="${P}/sa.key" \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=OwnerReferencesPermissionEnforcement \
  --allow-privileged=true \
  --profiling=false
wait_for "kube-apiserver is ready (https://127.0.0.1:${BERTH_APISERVER_PORT})" kube-apiserver \
  cluster::apiserver_ready

# --- 7. controller manager, scheduler -------------------------------------------------------------------------
# Client limits above the defaults (20 and 50 requests/s), so that with thousands of Apps (make bench) their own
# clients do not decide how fast Deployments get Pods.
start kube-controller-manager \
  --kube-api-qps=300 \
  --kube-api-burst=600 \
  --kubeconfig="${P}/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="${P}/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="${P}/kube-controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="${BERTH_CONTROLLER_MANAGER_PORT}" \
  --client-ca-file="${P}/ca.crt" \
  --requestheader-client-ca-file="${P}/front-proxy-ca.crt" \
  --use-service-account-credentials=true \
  --service-account-private-key-file="${P}/sa.key" \
  --root-ca-file="${P}/ca.crt" \
  --cluster-signing-cert-file="${P}/ca.crt" \
  --cluster-signing-key-file="${P}/ca.key" \
  --cluster-name=berth-local \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  --leader-elect=false \
  --profiling=false
start kube-scheduler \
  --kube-api-qps=300 \
  --kube-api-burst=600 \
  --kubeconfig="${P}/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig="${P}/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig="${P}/kube-scheduler.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="${BERTH_SCHEDULER_PORT}" \
  --client-ca-file="${P}/ca.crt" \
  --requestheader-client-ca-file="${P}/front-proxy-ca.crt" \
  --leader-elect=false \
  --profiling=false

# --- 8. kwok and its fake nodes -------------------------------------------------------------------------------
# On a restart with kept data, the node Leases are still held by the previous kwok (a random identity per run):
# the new one would manage no node, and so run no Pod, until they expire (~40s). They are ours: delete them.
old_leases="$(kubectl -n kube-node-lease get leases -o name 2>/dev/null | grep '/kwok-node-' || true)"
if [[ -n "${old_leases}" ]]; then
  # shellcheck disable=SC2086 # one argument per lease
  kubectl -n kube-node-lease delete --wait=false ${old_leases} >/dev/null
fi
# Its KWOK_WORKDIR (see cluster::component_env) keeps kwok from reading (or writing) ~/.kwok.
mkdir -p "${CLUSTER_DIR}/kwok"
start kwok \
  --kubeconfig="${P}/kwok.kubeconfig" \
  --config="${KWOK_CONFIG}" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --server-address="127.0.0.1:${BERTH_KWOK_PORT}"

nodes_yaml() {
  local i
  for ((i = 0; i < NODES; i++)); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-${i}
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-${i}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node-role.kubernetes.io/worker: ""
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
  done
}
# No taint: ordinary Pods (berth's Deployments) schedule onto these nodes without tolerations.
nodes_yaml | kubectl apply -f - >/dev/null
log "created ${NODES} fake nodes (kwok-node-0..$((NODES - 1)))"

nodes_ready() {
  local ready
  ready="$(kubectl get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$')"
  [[ "${ready}" -ge "${NODES}" ]]
}
wait_for "${NODES} nodes are Ready" kwok nodes_ready

# --- 9. a Pod can run -----------------------------------------------------------------------------------------
wait_for "the default ServiceAccount exists" kube-controller-manager kubectl -n default get serviceaccount default

SMOKE=berth-cluster-up-check
kubectl -n default delete pod "${SMOKE}" --ignore-not-found --wait=true >/dev/null 2>&1 || true
# Pod creation can still be refused for a moment (admission caches, the ServiceAccount token controller): retry.
cat >"${CLUSTER_DIR}/check-pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: ${SMOKE}
  labels: {app.kubernetes.io/name: ${SMOKE}}
spec:
  containers:
  - name: pause
    image: registry.k8s.io/pause:3.10
  terminationGracePeriodSeconds: 0
EOF
wait_for "the check Pod is created" kube-apiserver kubectl -n default apply -f "${CLUSTER_DIR}/check-pod.yaml"
pod_ready() {
  local out
  out="$(kubectl -n default get pod "${SMOKE}" \
    -o jsonpath='{.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.spec.nodeName}')"
  [[ "${out}" == "Running True kwok-node-"* ]]
}
all_alive
wait_for "a Pod runs (Running and Ready on a kwok node)" kube-scheduler pod_ready
kubectl -n default delete pod "${SMOKE}" --wait=true --timeout="${TIMEOUT}s" >/dev/null
all_alive

DONE=1

# --- 10. how to use it ----------------------------------------------------------------------------------------
cat >"${CLUSTER_DIR}/env" <<EOF
export KUBECONFIG=${CLUSTER_KUBECONFIG}
export KUBECACHEDIR=${KUBECACHEDIR}
export PATH=${CLUSTER_BIN_DIR}:\${PATH}
EOF
rss_kib=0
for c in "${CLUSTER_COMPONENTS[@]}"; do
  pid="$(cluster::pid "${c}")"
  kib="$(awk '/^VmRSS:/{print $2}' "/proc/${pid}/status" 2>/dev/null || echo 0)"
  rss_kib=$((rss_kib + kib))
done

cat <<EOF
cluster-up: the local cluster is up in $(elapsed) (${NODES} kwok nodes; memory in use $((rss_kib / 1024)) MiB RSS)
  API server  https://127.0.0.1:${BERTH_APISERVER_PORT}   (etcd http://127.0.0.1:${BERTH_ETCD_PORT})
  logs        ${CLUSTER_LOG_DIR}/
  use it:
    export KUBECONFIG=${CLUSTER_KUBECONFIG}
    export KUBECACHEDIR=${KUBECACHEDIR}
    ${KUBECTL} get nodes
  or: source ${CLUSTER_DIR}/env   (also puts ${CLUSTER_BIN_DIR} on PATH)
  stop it:    hack/cluster-down.sh
EOF
