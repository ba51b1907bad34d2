#!/usr/bin/env bash
# Builds berth's container image without a container engine (make image), and proves it with crane.
#
# 1. berth, static (CGO_ENABLED=0, -trimpath), for each platform, with its version from git in the linker flags
#    (`berth --version` prints it): .cache/image/bin/OS-ARCH/berth.
# 2. hack/tools/image (go-containerregistry) assembles the OCI image layout .cache/image/oci: an image index with
#    an image per platform (a base of CA certificates and a nonroot user, and /berth; no base image is pulled),
#    and an SPDX SBOM per platform, attached as an OCI 1.1 referrer and written to .cache/image/sbom/. Every
#    timestamp is the commit's (SOURCE_DATE_EPOCH): two builds of one commit give the same digests.
# 3. crane, on a registry of its own on 127.0.0.1 (crane registry serve): pushes the layout, validates the index
#    (every blob's digest and size, every layer's diff ID), checks that each SBOM artifact is a referrer of its
#    image (names it as subject) and holds the file of .cache/image/sbom, and exports this machine's platform's image, taking
#    /berth out of it to .cache/image/from-image/berth: the binary that test/e2e, test/e2e/production and
#    test/chaos run. It must be the very file built in step 1.
#
# Prints each platform's digest and size. .cache/image/summary.tsv has them for scripts.
#
# Environment:
#   IMAGE_PLATFORMS ["linux/amd64 linux/arm64"]   the platforms; this machine's must be one of them
#   IMAGE_SOURCE [https://github.com/berthdev/berth]   the project's address, for the labels and SBOMs
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${ROOT}/.cache/image"
TOOLS="${ROOT}/hack/tools/image"
PLATFORMS="${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}"
SOURCE="${IMAGE_SOURCE:-https://github.com/berthdev/berth}"
HOST_PLATFORM="linux/$(go env GOARCH)"

log() { echo "image: $*"; }
fail() { echo "image: $*" >&2; exit 1; }
seconds() { echo "$((SECONDS - $1))s"; }
# crane is pinned in hack/tools/image/go.mod; go tool builds it once into the Go build cache.
# The binary itself, not `go tool crane`: a registry started in the background must be the process that the trap
# kills, and go tool does not pass its signals on to the tool.
crane_bin="$(go -C "${TOOLS}" tool -n crane)"
crane() { "${crane_bin}" "$@"; }

[[ " ${PLATFORMS} " == *" ${HOST_PLATFORM} "* ]] ||
  fail "IMAGE_PLATFORMS (${PLATFORMS}) lacks this machine's ${HOST_PLATFORM}, whose binary the tests take out"

cd "${ROOT}"
version="$(git describe --tags --always --dirty)"
revision="$(git rev-parse HEAD)"
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)"
export SOURCE_DATE_EPOCH
# As `make build` sets them, and -s -w: no symbol table, no DWARF (a panic's stack trace keeps its function names).
ldflags="-s -w -X github.com/berthdev/berth/pkg/version.version=${version}"
ldflags+=" -X github.com/berthdev/berth/pkg/version.commit=${revision}"

# 1. The binaries.
binary_args=()
for platform in ${PLATFORMS}; do
  os="${platform%/*}" arch="${platform#*/}"
  bin="${OUT}/bin/${os}-${arch}/berth"
  start=${SECONDS}
  CGO_ENABLED=0 GOOS="${os}" GOARCH="${arch}" go build -trimpath -ldflags="${ldflags}" -o "${bin}" ./cmd/controller
  log "built berth ${version} for ${platform} ($(seconds "${start}"))"
  binary_args+=(-binary "${platform}=${bin}")
done

# 2. The layout and the SBOMs.
start=${SECONDS}
rm -rf "${OUT}/oci" "${OUT}/sbom"
go -C "${TOOLS}" run . -layout "${OUT}/oci" -sbom-dir "${OUT}/sbom" -summary "${OUT}/summary.tsv" \
  -version "${version}" -revision "${revision}" -source "${SOURCE}" "${binary_args[@]}"
log "assembled the layout ($(seconds "${start}"))"

# 3. The proof, with crane.
start=${SECONDS}
registry_log="${OUT}/registry.log"
"${crane_bin}" registry serve --address 127.0.0.1:0 >"${registry_log}" 2>&1 &
registry_pid=$!
trap 'kill "${registry_pid}" 2>/dev/null || true; wait "${registry_pid}" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 100); do
  port="$(sed -n 's/.*serving on port \([0-9][0-9]*\).*/\1/p' "${registry_log}")"
  [[ -n "${port}" ]] && break
  kill -0 "${registry_pid}" 2>/dev/null || fail "crane registry serve exited: $(cat "${registry_log}")"
  sleep 0.1
done
[[ -n "${port}" ]] || fail "crane registry serve did not say its port within 10 s: $(cat "${registry_log}")"
repo="127.0.0.1:${port}/berth"

index_digest="$(awk -F'\t' '$1 == "index" { print $2 }' "${OUT}/summary.tsv")"
# --index pushes the layout's index.json whole: the image index and the SBOM artifacts beside it. This registry
# has no referrers API: crane lists each SBOM in the referrers tag of its subject (sha256-DIGEST), as the OCI
# distribution spec has clients do then.
crane push --index "${OUT}/oci" "${repo}:layout" >"${OUT}/push.log" 2>&1 ||
  fail "crane push --index ${OUT}/oci failed: $(cat "${OUT}/push.log")"
crane validate --remote "${repo}@${index_digest}" | sed 's/^/image: crane validate: /' ||
  fail "crane validate --remote ${repo}@${index_digest} failed"
pushed="$(crane digest "${repo}@${index_digest}")"
[[ "${pushed}" == "${index_digest}" ]] || fail "the registry serves ${pushed} for ${index_digest}"

while IFS=$'\t' read -r kind platform manifest compressed uncompressed sbom_manifest sbom_blob; do
  [[ "${kind}" == image ]] || continue
  # The image of the index for this platform is the one the layout tool wrote.
  got="$(crane digest --platform "${platform}" "${repo}@${index_digest}")"
  [[ "${got}" == "${manifest}" ]] || fail "${platform}: the index points to ${got}, not ${manifest}"
  # The SBOM is the referrer of that image, refers to it, and holds the SBOM written beside the layout.
  referrers="$(crane manifest "${repo}:sha256-${manifest#sha256:}")"
  [[ "${referrers}" == *'"digest":"'"${sbom_manifest}"'"'*'"artifactType":"application/spdx+json"'* ]] ||
    fail "${platform}: the referrers of ${manifest} do not list the SBOM ${sbom_manifest}: ${referrers}"
  artifact="$(crane manifest "${repo}@${sbom_manifest}")"
  [[ "${artifact}" == *'"artifactType":"application/spdx+json"'* ]] ||
    fail "${platform}: ${sbom_manifest} is not an SPDX artifact: ${artifact}"
  [[ "${artifact}" == *'"subject":{'*'"digest":"'"${manifest}"'"'* ]] ||
    fail "${platform}: the SBOM artifact ${sbom_manifest} does not name ${manifest} as its subject: ${artifact}"
  crane blob "${repo}@${sbom_blob}" | cmp -s - "${OUT}/sbom/berth-${platform/\//-}.spdx.json" ||
    fail "${platform}: the SBOM in the registry differs from ${OUT}/sbom/berth-${platform/\//-}.spdx.json"
  printf 'image: %-12s %s  %s bytes compressed (%s MiB), %s unpacked (%s MiB); SBOM %s\n' "${platform}" \
    "${manifest}" "${compressed}" "$((compressed / 1048576))" "${uncompressed}" "$((uncompressed / 1048576))" \
    "${sbom_manifest}"
done <"${OUT}/summary.tsv"

# This machine's binary, taken out of the image's layer as a container runtime would see it.
extracted="${OUT}/from-image"
rm -rf "${extracted}"
mkdir -p "${extracted}"
crane export --platform "${HOST_PLATFORM}" "${repo}@${index_digest}" - | tar -x -C "${extracted}" berth
cmp -s "${extracted}/berth" "${OUT}/bin/${HOST_PLATFORM/\//-}/berth" ||
  fail "the /berth of the ${HOST_PLATFORM} image is not the binary that was built"
log "validated with crane on ${repo}: index ${index_digest}, SBOM referrers, ${HOST_PLATFORM}'s /berth taken out to" \
  "${extracted#"${ROOT}"/}/berth ($(seconds "${start}"))"
"${extracted}/berth" --version
