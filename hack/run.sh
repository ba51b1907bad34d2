#!/usr/bin/env bash
# Runs berth in the foreground, as `make run` does.
#
# With KUBECONFIG set, against that cluster: it installs (or updates) the App CRD there and starts berth.
# Without it, against the local cluster of hack/cluster-up.sh, started first if it is not running: it installs
# the CRD, applies the examples of artifacts/examples/, and starts berth.
#
# Extra flags for berth: BERTH_FLAGS, e.g. BERTH_FLAGS="-v=2 --workers=8" make run
set -euo pipefail

# shellcheck source=lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"
root="${CLUSTER_ROOT}"
berth="${root}/bin/berth"
kubectl_bin="${CLUSTER_BIN_DIR}/kubectl"
log() { echo "run: $*"; }

[[ -x "${berth}" ]] || { echo "run: ${berth} is missing: run make build" >&2; exit 1; }
"${root}/hack/build-kube.sh" kubectl >/dev/null
kubectl() { "${kubectl_bin}" "$@"; }

if [[ -n "${KUBECONFIG:-}" ]]; then
  if ! kubectl --request-timeout=10s get --raw=/readyz >/dev/null 2>&1; then
    echo "run: the cluster of KUBECONFIG=${KUBECONFIG} does not answer." >&2
    echo "run: fix it, or unset KUBECONFIG to run against a local cluster that make run starts." >&2
    exit 1
  fi
  log "using the cluster of KUBECONFIG=${KUBECONFIG}"
  examples=0
else
  if [[ -z "$(cluster::running)" ]]; then
    "${root}/hack/cluster-up.sh"
  else
    log "the local cluster is already running"
  fi
  export KUBECONFIG="${CLUSTER_KUBECONFIG}"
  examples=1
fi

log "installing the App CRD"
kubectl apply --server-side --force-conflicts -k "${root}/artifacts/crds" >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/apps.berth.dev >/dev/null
if [[ "${examples}" == 1 ]]; then
  log "applying artifacts/examples/"
  # Right after the CRD is Established, discovery may not serve Apps for a moment: retry.
  for attempt in $(seq 1 30); do
    if out="$(kubectl apply -f "${root}/artifacts/examples/" 2>&1)"; then
      break
    fi
    if [[ "${attempt}" == 30 ]]; then
      echo "${out}" >&2
      exit 1
    fi
    sleep 1
  done
fi

cat <<MSG
run: starting berth against $(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}'); Ctrl-C stops it.
run: in another terminal:
       export KUBECONFIG=${KUBECONFIG} KUBECACHEDIR=${KUBECACHEDIR} PATH=${CLUSTER_BIN_DIR}:\$PATH
       kubectl get apps.berth.dev -A
       kubectl get pods -n shop
MSG
if [[ "${examples}" == 1 ]]; then
  echo "run: the local cluster keeps running after berth stops; stop it with: make cluster-down"
fi
# shellcheck disable=SC2086 # BERTH_FLAGS is a list of flags
exec "${berth}" --kubeconfig="${KUBECONFIG}" ${BERTH_FLAGS:-}
