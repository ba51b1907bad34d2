# berth: `make run` runs the controller, `make test` runs every test. See README.md.

GO ?= go
BIN := bin/berth
# Everything the project builds for itself (control plane binaries, generators, scratch state) lives here.
CACHE := .cache

# berth's builds, and those of its tools (go vet, staticcheck, the tests' binaries, helm, promtool, the image's
# binary), are all made one way: static and free of local paths (CGO_ENABLED=0, -trimpath), as the image's binary
# must be. The Go build cache then holds one compiled copy of a package they share (client-go, say), made once,
# as long as the tools' modules use berth's versions of the modules they share (hack/shared-versions, which
# verify-versions runs): that cuts about 14 minutes off a first `make test`. Only the race detector needs cgo: the
# race targets set it back on.
export CGO_ENABLED := 0
export GOFLAGS := -trimpath $(GOFLAGS)
RACE := CGO_ENABLED=1 $(GO) test -race

.PHONY: all build image test verify fmt-check vet lint chart-lint verify-codegen verify-versions generate unit \
	monitoring integration e2e chaos kube-binaries fuzz bench run cluster-up cluster-down clean help

all: build

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

# berth --version prints these; hack/image.sh sets the same for the image's binaries (and strips them).
VERSION = $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT = $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS = -X github.com/berthdev/berth/pkg/version.version=$(VERSION) -X github.com/berthdev/berth/pkg/version.commit=$(COMMIT)

build: ## compile the controller into bin/berth: static, with its version from git
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/controller

# hack/tools/image (go-containerregistry) assembles it, crane (pinned in hack/tools/image/go.mod) validates it.
image: ## the OCI image (linux/amd64, linux/arm64) and SBOMs in .cache/image, validated with crane; no Docker
	hack/image.sh

generate: ## regenerate clients, deepcopy code and the CRD from pkg/apis
	hack/update-codegen.sh

verify: fmt-check vet lint chart-lint verify-codegen verify-versions ## gofmt, go vet, staticcheck, helm lint, generated code current, tools' versions

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) -C hack/tools/image vet ./...

# staticcheck is pinned in a module of its own (hack/tools), so that its dependencies stay out of berth's go.mod.
lint:
	$(GO) tool -modfile=hack/tools/go.mod staticcheck $$($(GO) list ./... | grep -v /pkg/generated/)

# helm is pinned in a module of its own too (hack/tools/helm); its state (plugins, repositories) stays in .cache.
HELM := HELM_CACHE_HOME=$(CURDIR)/$(CACHE)/helm/cache HELM_CONFIG_HOME=$(CURDIR)/$(CACHE)/helm/config \
	HELM_DATA_HOME=$(CURDIR)/$(CACHE)/helm/data $(GO) tool -modfile=hack/tools/helm/go.mod helm

# The chart with its default values (every namespace) and with each values file of charts/berth/ci (a list of
# namespaces, the Prometheus Operator's objects); --strict fails on warnings too. test/e2e/production compares
# what it renders with artifacts/deploy and has the API server dry-run it.
chart-lint: ## helm lint --strict of charts/berth, with its default values and those of charts/berth/ci
	$(HELM) lint --strict charts/berth
	@set -e; for values in charts/berth/ci/*-values.yaml; do \
		echo "$(HELM) lint --strict charts/berth --values $$values"; \
		$(HELM) lint --strict charts/berth --values "$$values"; \
	done

verify-codegen:
	hack/verify-codegen.sh

# A module that two builds share at two versions is compiled twice: see hack/shared-versions.
verify-versions:
	$(GO) run ./hack/shared-versions

kube-binaries: ## build the local control plane (etcd, kube-*, kubectl, kwok) into .cache/bin
	hack/build-kube.sh

test: verify kube-binaries unit monitoring integration e2e ## everything: verify, unit, monitoring, integration, end-to-end and short chaos tests

unit: ## unit tests (fake clientsets), with coverage (generated code left out); and those of the image builder
	$(RACE) -cover $$($(GO) list ./pkg/... ./cmd/... ./hack/... | grep -v /pkg/generated/)
	$(GO) -C hack/tools/image test ./...

# promtool is pinned in a module of its own (hack/tools/promtool), with gen-monitoring, which writes what derives
# from artifacts/monitoring (hack/update-codegen.sh runs it) and checks the dashboard's queries. Prometheus's
# discovery plugins are of no use to either: the tag remove_all_sd leaves most of them out of the build, and the
# same tags everywhere let the two share their compiled packages.
PROMTOOL := GOFLAGS="$(GOFLAGS) -tags=remove_all_sd" $(GO) tool -modfile=hack/tools/promtool/go.mod promtool

monitoring: ## check and unit-test the alerting rules with promtool, and test gen-monitoring
	$(PROMTOOL) check rules --lint=all --lint-fatal artifacts/monitoring/rules.yaml
	$(PROMTOOL) test rules artifacts/monitoring/rules_test.yaml
	GOFLAGS="$(GOFLAGS) -tags=remove_all_sd" $(GO) -C hack/tools/promtool test ./...

integration: ## integration tests against a real etcd and kube-apiserver, with the race detector
	hack/build-kube.sh etcd kube-apiserver pki
	$(RACE) -count=1 -timeout 15m ./test/integration/...

# The tests run the binary of this machine's platform's image: they build only that one (make image builds both).
HOST_IMAGE := IMAGE_PLATFORMS=linux/$$($(GO) env GOARCH) hack/image.sh

e2e: ## end-to-end tests on the full local cluster, driving the image's binary; and test/chaos, short
	$(HOST_IMAGE)
	hack/build-kube.sh
	$(GO) test -p 1 -count=1 -timeout 30m ./test/e2e/... ./test/chaos/...

# The scenarios of test/chaos at a larger scale, with their figures at the end of the output.
CHAOS_FLAGS ?= -chaos.apps=1000 -chaos.kills=10 -chaos.leader-kills=5 -chaos.fault-apps=500 -chaos.shard-kills=3 \
	-chaos.writer-time=15s -chaos.timeout=15m

chaos: ## test/chaos bigger and longer (CHAOS_FLAGS): crashes, control plane restarts, API faults; prints figures
	$(HOST_IMAGE)
	hack/build-kube.sh
	$(GO) test -count=1 -timeout 90m -v ./test/chaos/ -args $(CHAOS_FLAGS)

# The fuzz targets' seed corpora (pkg/plan/testdata/fuzz) run with the unit tests; this target searches for
# new failing inputs, FUZZTIME per target (go test -fuzz takes one target at a time). A failure is written to the
# corpus folder: commit it with the fix.
FUZZTIME ?= 2m
FUZZ_TARGETS := FuzzDesiredState FuzzComputeStatus

fuzz: ## run each fuzz target for FUZZTIME (default 2m)
	@set -e; for target in $(FUZZ_TARGETS); do \
		echo "$$target for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./pkg/plan; \
	done

bench: ## Go benchmarks against a baseline; the scale benchmark (BENCH_APPS, default 100,1000) against the write floor; the sharded one with BENCH_SHARDED_APPS
	hack/bench.sh

run: build ## run berth against $$KUBECONFIG, or against a local cluster that it starts
	hack/run.sh

cluster-up: ## start the local cluster (etcd, kube-apiserver, controller manager, scheduler, kwok nodes)
	hack/cluster-up.sh

cluster-down: ## stop the local cluster
	hack/cluster-down.sh

clean: ## remove build outputs (keeps the control plane binaries in .cache)
	rm -rf bin
