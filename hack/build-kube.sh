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
# Builds run one at a time, and say how far they are every 20 seconds. With empty Go caches, all of them take
# about 18 minutes on 2 cores (kube-apiserver, the first, most of it: the others reuse most of its compiled
# packages from the Go build cache). Set BUILD_KUBE_FORCE=1 to rebuild regardless of the stamps.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUBE_MOD="${ROOT}/hack/kube"
BIN_DIR="${BERTH_BIN_DIR:-${ROOT}/.cache/bin}"
STAMP_DIR="${BIN_DIR}/.stamps"

# The control plane is built with Go's default for cgo, whatever the Makefile sets for berth's own builds: the
# stamps do not record it, and its modules' versions are not berth's, so it would share no compiled package anyway.
unset CGO_ENABLED

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

# progress NAME TOTAL START reads `go build -v` output: it prints, at most every 20 seconds, how many of the TOTAL
# packages of NAME were compiled so far, and passes any other line (an error) through at once.
progress() {
  local name="$1" total="$2" start="$3" compiled=0 last now line
  printf -v last '%(%s)T' -1
  while IFS= read -r line; do
    # A package is named by its import path alone: no spaces, no colon. Anything else is the compiler's say.
    if [[ -z "${line}" || "${line}" == *" "* || "${line}" == *:* || "${line}" == "#"* ]]; then
      echo "${line}"
      continue
    fi
    compiled=$((compiled + 1))
    printf -v now '%(%s)T' -1
    if ((now - last >= 20)); then
      echo "build-kube: ${name}: ${compiled} of ${total} packages compiled [$((now - start))s]"
      last="${now}"
    fi
  done
  echo "build-kube: ${name}: ${compiled} packages compiled, the other $((total - compiled)) taken from the Go build cache"
}

build_one() {
  local name="$1" dir pkg want have start secs total
  dir="$(moddir "${name}")"
  pkg="$(pkgpath "${name}")"
  want="$(stamp "${name}")"
  have="$(cat "${STAMP_DIR}/${name}" 2>/dev/null || true)"
  if [[ -x "${BIN_DIR}/${name}" && "${want}" == "${have}" && "${BUILD_KUBE_FORCE:-0}" != 1 ]]; then
    echo "build-kube: ${name}: up to date"
    return 0
  fi
  start="$(date +%s)"
  echo "build-kube: ${name}: finding the packages of ${pkg} (in ${dir#"${ROOT}/"}; modules not in the Go module" \
    "cache are downloaded first) ..."
  # GOWORK=off: a go.work in or above the repository must not pull these modules into another graph.
  total="$(cd "${dir}" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" go list -deps "${pkg}" | wc -l)"
  echo "build-kube: ${name}: building ${total} packages (those in the Go build cache are not compiled again)" \
    "[$(($(date +%s) - start))s]"
  # -v names each package as it is compiled, on stderr: counted by progress, which passes errors through.
  (cd "${dir}" && GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly" \
    go build -v -trimpath -ldflags="$(ldflags "${name}")" -o "${BIN_DIR}/.${name}.tmp" "${pkg}" 2>&1) |
    progress "${name}" "${total}" "${start}"
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
