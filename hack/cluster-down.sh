#!/usr/bin/env bash
# Stops the local control plane that hack/cluster-up.sh started: exactly the processes whose PIDs it recorded in
# .cache/cluster/pids/ (SIGTERM, wait, then SIGKILL), newest first, and removes the PID files. Nothing is ever
# signalled by name. Without anything running it says so and does nothing.
#
# Usage: hack/cluster-down.sh [--purge]
#   --purge   also delete .cache/cluster/ (etcd data, certificates, kubeconfigs, logs): the next cluster-up
#             starts from nothing
set -euo pipefail

# shellcheck source=lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

PURGE=0
for arg in "$@"; do
  case "${arg}" in
    --purge) PURGE=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "cluster-down: unknown argument '${arg}' (try --help)" >&2
      exit 2
      ;;
  esac
done

running="$(cluster::running)"
if [[ -z "${running}" ]]; then
  echo "cluster-down: no local cluster is running (nothing recorded alive in ${CLUSTER_PID_DIR})"
  rm -rf "${CLUSTER_PID_DIR}"
else
  cluster::stop_all
  rm -rf "${CLUSTER_PID_DIR}"
  # The sockets close with the processes; say so if one of our ports is still held (by something else).
  for v in $(cluster::port_vars); do
    port="${!v}"
    if who="$(cluster::port_in_use "${port}")"; then
      echo "cluster-down: warning: port ${port} (${v}) is still in use: ${who}" >&2
    fi
  done
  echo "cluster-down: the local cluster is stopped (state kept in ${CLUSTER_DIR}; --purge deletes it)"
fi

if [[ "${PURGE}" == 1 && -d "${CLUSTER_DIR}" ]]; then
  rm -rf "${CLUSTER_DIR}"
  echo "cluster-down: deleted ${CLUSTER_DIR}"
fi
