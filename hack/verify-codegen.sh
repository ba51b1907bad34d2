#!/usr/bin/env bash
# Fails when the generated code, the CRD, the monitoring files, or the chart's copies of the CRD and of the alert
# rules differ from what hack/update-codegen.sh makes of their sources: it regenerates into a scratch copy of the
# tree and compares.
set -o errexit -o nounset -o pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT

# Copy the working tree as it is (tracked and untracked files), without git data or caches.
tar -C "${repo_root}" --exclude=./.git --exclude=./.cache -cf - . | tar -C "${scratch}" -xf -

"${repo_root}/hack/update-codegen.sh" "${scratch}" >/dev/null

status=0
for dir in pkg/apis pkg/generated artifacts/crds artifacts/monitoring charts/berth/crds charts/berth/files; do
    if ! diff -Naupr "${repo_root}/${dir}" "${scratch}/${dir}"; then
        status=1
    fi
done
if [ "${status}" -ne 0 ]; then
    echo >&2
    echo "Generated code is out of date: run hack/update-codegen.sh (or make generate) and commit the result." >&2
    exit 1
fi
echo "Generated code is up to date."
