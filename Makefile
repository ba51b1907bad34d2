# berth: `make run` runs the controller, `make test` runs every test. See README.md.

GO ?= go
BIN := bin/berth

.PHONY: all build test unit verify fmt-check vet generate verify-codegen run clean

all: build

## build: compile the controller into bin/berth
build:
	$(GO) build -o $(BIN) ./cmd/controller

## generate: regenerate clients, deepcopy code and the CRD from pkg/apis
generate:
	hack/update-codegen.sh

## verify: gofmt, go vet and the check that generated code is current
verify: fmt-check vet verify-codegen

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

verify-codegen:
	hack/verify-codegen.sh

## unit: unit tests with coverage of pkg/controller
unit:
	$(GO) test -race -cover ./pkg/... ./cmd/...

## test: verify, then every test
test: verify unit

## run: run the controller against the cluster in KUBECONFIG
run: build
	$(BIN) --kubeconfig="$(KUBECONFIG)"

clean:
	rm -rf bin
