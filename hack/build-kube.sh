#!/usr/bin/env bash
# Builds berth's local control plane from Go modules into .cache/bin/ at the repository root:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl   (k8s.io/kubernetes, hack/kube/go.mod)
#   etcd                                                            (go.etcd.io/etcd/server/v3, hack/kube/etcd/go.mod)
#   kwok                                                            (sigs.k8s.io/kwok/cmd/kwok, hack/kube/kwok/go.mod)
#   pki                                                             (hack/kube/cmd/pki: certificates and kubeconfigs)
#
# Usage: hack/build-kube.sh [NAME...]     no NAME: all of them
#        e.g. hack/build-kube.sh etcd kube-apiserver pki     (enough for integration tests)
#
# A binary is rebuilt only when its stamp (.cache/bin/.stamps/NAME: Go version, build flags, the hash of its module's
# go.mod and go.sum, and for pki its sources) differs from the one recorded when it was last built.
# Builds run one at a time. A cold kube-apiserver build takes about 7 minutes on 2 cores; the others reuse most of
# its compiled packages from the Go build cache. Set BUILD_KUBE_FORCE=1 to rebuild regardless of the stamps.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUBE_MOD="${ROOT}/hack/kube"
BIN_DIR="${BERTH_BIN_DIR:-${ROOT}/.cache/bin}"
STAMP_DIR="${BIN_DIR}/.stamps"

KUBE_VERSION="v1.37.2"
ALL=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok pki)

# module directory and package path of each binary
moddir() {
  case "$1" in
    etcd) echo "${KUBE_MOD}/etcd" ;;
    kwok) echo "${KUBE_MOD}/kwok" ;;
    *) echo "${KUBE_MOD}" ;;
  esac
}
pkgpath() {
  case "$1" in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) echo "k8s.io/kubernetes/cmd/$1" ;;
    etcd) echo "go.etcd.io/etcd/server/v3" ;;
    kwok) echo "sigs.k8s.io/kwok/cmd/kwok" ;;
    pki) echo "./cmd/pki" ;;
  esac
}
ldflags() {
  local flags="-s -w"
  case "$1" in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
      # What kubernetes' hack/lib/version.sh sets, so that `kubectl version` and /version report the real version.
      local minor="${KUBE_VERSION#v1.}"
      minor="${minor%%.*}"
      local pkg
      for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
        flags+=" -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
        flags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
      done
      ;;
  esac
  echo "${flags}"
}

stamp() {
  local name="$1" dir
  dir="$(moddir "${name}")"
  {
    go version
    echo "${name} $(pkgpath "${name}") $(ldflags "${name}") -trimpath"
    cat "${dir}/go.mod" "${dir}/go.sum"
    if [[ "${name}" == pki ]]; then
      cat "${KUBE_MOD}"/cmd/pki/*.go
    fi
  } | sha256sum | cut -d' ' -f1
}

build_one() {
  local name="$1" dir pkg want have start secs
  dir="$(moddir "${name}")"
  pkg="$(pkgpath "${name}")"
  want="$(stamp "${name}")"
  have="$(cat "${STAMP_DIR}/${name}" 2>/dev/null || true)"
  if [[ -x "${BIN_DIR}/${name}" && "${want}" == "${have}" && "${BUILD_KUBE_FORCE:-0}" != 1 ]]; then
    echo "build-kube: ${name}: up to date"
    return 0
  fi
  echo "build-kube: ${name}: building ${pkg} (in ${dir#"${ROOT}/"}) ..."
  start="$(date +%s)"
  # GOWORK=off: a go.work in or above the repository must not pull these modules into another graph.
  (cd "${dir}" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" \
    go build -trimpath -ldflags="$(ldflags "${name}")" -o "${BIN_DIR}/.${name}.tmp" "${pkg}")
  mv -f "${BIN_DIR}/.${name}.tmp" "${BIN_DIR}/${name}"
  echo "${want}" >"${STAMP_DIR}/${name}"
  secs=$(($(date +%s) - start))
  echo "build-kube: ${name}: built in ${secs}s ($(du -h "${BIN_DIR}/${name}" | cut -f1))"
}

main() {
  local names=("$@") n
  if [[ ${#names[@]} -eq 0 ]]; then
    names=("${ALL[@]}")
  fi
  for n in "${names[@]}"; do
    if [[ -z "$(pkgpath "${n}")" ]]; then
      echo "build-kube: unknown binary '${n}' (known: ${ALL[*]})" >&2
      exit 2
    fi
  done
  mkdir -p "${BIN_DIR}" "${STAMP_DIR}"
  local total_start
  total_start="$(date +%s)"
  for n in "${names[@]}"; do
    build_one "${n}"
  done
  echo "build-kube: done in $(($(date +%s) - total_start))s; binaries in ${BIN_DIR}"
}

main "$@"
