#!/usr/bin/env bash
# Regenerates everything derived from pkg/apis: deepcopy and register code next to the types, the clientset,
# listers, informers and apply configurations in pkg/generated, and the CRD in artifacts/crds; what derives from the
# alerting rules and dashboard of artifacts/monitoring (the PrometheusRule, the list of queried metrics); and the
# chart's copies of the CRD and of the alert rules (charts/berth/crds, charts/berth/files), which Helm can only read
# from the chart's folder.
#
# It works in any checkout (no GOPATH layout needed): code-generator's kube_codegen.sh is taken from the module
# cache at the version pinned in go.mod, and the generators it installs from there go to a git-ignored folder of
# the project. go.mod also lists them as tools, at that same version, for running one by hand
# (`go tool client-gen --help`); controller-gen runs through `go tool`.
#
# Usage: hack/update-codegen.sh [OUTPUT_ROOT]
#   OUTPUT_ROOT defaults to the repository; verify-codegen.sh passes a scratch copy of it.
set -o errexit -o nounset -o pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
out_root="${1:-${repo_root}}"
module="github.com/berthdev/berth"

cd "${out_root}"
# kube_codegen.sh greps these folders before it first writes them.
mkdir -p pkg/generated/{applyconfiguration,clientset,listers,informers}
go mod download k8s.io/code-generator
codegen_root="$(go list -m -f '{{.Dir}}' k8s.io/code-generator)"

# kube_codegen.sh "go install"s the generators; keep them inside the project instead of ~/go/bin.
export GOBIN="${repo_root}/.cache/codegen-bin"
mkdir -p "${GOBIN}"

# shellcheck source=/dev/null
source "${codegen_root}/kube_codegen.sh"

boilerplate="${repo_root}/hack/boilerplate.go.txt"

kube::codegen::gen_helpers \
    --boilerplate "${boilerplate}" \
    "${out_root}/pkg/apis"

kube::codegen::gen_register \
    --boilerplate "${boilerplate}" \
    "${out_root}/pkg/apis"

kube::codegen::gen_client \
    --with-watch \
    --with-applyconfig \
    --applyconfig-externals "k8s.io/api/autoscaling/v1.Scale:k8s.io/client-go/applyconfigurations/autoscaling/v1" \
    --output-dir "${out_root}/pkg/generated" \
    --output-pkg "${module}/pkg/generated" \
    --boilerplate "${boilerplate}" \
    "${out_root}/pkg/apis"

echo "Generating the CRD into artifacts/crds"
go tool controller-gen crd:crdVersions=v1 paths=./pkg/apis/... output:crd:artifacts:config=artifacts/crds

# The quantities of spec.resources: controller-gen gives them resource.Quantity's pattern, which lets through
# strings that apimachinery's resource.ParseQuantity refuses (an exponent with a fraction, "1e1.5") or takes
# minutes or forever over (an exponent of 2^31, "1e2147483648"). berth's client decodes every App with that
# parser, and the API server's CEL quantity() is that parser too: one such App would stop berth's informer, or a
# request. No marker reaches the values of a map, so the pattern is narrowed here: no sign but '+', an exponent
# of at most two digits, at most 64 characters. An OpenAPI error also keeps the CEL rules from running at all.
crd="artifacts/crds/berth.dev_apps.yaml"
export QUANTITY_PATTERN='pattern: ^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$'
export NARROW_PATTERN='pattern: ^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][-+]?[0-9]{1,2}))?$'
if [[ "$(grep -cF -- "${QUANTITY_PATTERN}" "${crd}")" != 2 ]]; then
    echo "expected the quantity pattern twice in ${crd} (spec.resources.requests and limits)" >&2
    exit 1
fi
awk '{
    i = index($0, ENVIRON["QUANTITY_PATTERN"])
    if (i == 0) { print; next }
    indent = substr($0, 1, i - 1)
    print indent "maxLength: 64"
    print indent ENVIRON["NARROW_PATTERN"]
}' "${crd}" > "${crd}.tmp"
mv "${crd}.tmp" "${crd}"

# controller-gen keeps the Go comments' line breaks in the descriptions; kubectl explain reads paragraphs better.
(cd "${repo_root}" && go run ./hack/unwrap-descriptions "${out_root}"/artifacts/crds/*.yaml)

# With the build tags of `make monitoring`'s promtool (see the Makefile), whose compiled packages it then shares.
echo "Generating artifacts/monitoring/prometheusrule.yaml and metrics.txt"
GOFLAGS="${GOFLAGS:-} -tags=remove_all_sd" go -C "${repo_root}/hack/tools/promtool" run ./gen-monitoring "${out_root}/artifacts/monitoring"

# Helm installs the CRDs of a chart's crds/ folder and reads files only from inside the chart: the chart carries
# copies of the generated CRD and of the alert rules of artifacts/monitoring, which verify-codegen.sh keeps current.
echo "Copying the CRD and the alert rules into charts/berth"
rm -rf charts/berth/crds charts/berth/files
mkdir -p charts/berth/crds charts/berth/files
cp artifacts/crds/berth.dev_*.yaml charts/berth/crds/
cp artifacts/monitoring/rules.yaml charts/berth/files/rules.yaml
