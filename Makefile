SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Pinned tool versions. protoc-gen-go, protoc-gen-go-grpc and
# protoc-gen-connect-go are pinned by tools/go.mod; buf is installed with `go install` at BUF_VERSION.
BUF_VERSION := v1.75.0
TOOLS := $(CURDIR)/bin/tools
BUF := $(TOOLS)/buf
STATICCHECK := $(TOOLS)/staticcheck
# The contract `buf breaking` compares against: the image of proto/ at the
# last tagged release, committed (tools/breaking/<tag>.binpb) so that a
# shallow clone without tags or history checks it the same way.
# `make breaking-baseline` writes it again after a new release tag.
RELEASE := v0.1.0
BREAKING_BASELINE := tools/breaking/$(RELEASE).binpb

# Every module of the workspace (pkg, each service, the CLI).
MODULES := $(shell go list -m -f '{{.Dir}}')
SERVICES := token-broker catalog-poller stock-poller order-forwarder invoice-watcher console hiper-sim
TEST_FLAGS ?= -race -count=1 -timeout 15m
BENCHTIME ?= 2s

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every binary into ./bin/
	@mkdir -p bin
	@for s in $(SERVICES); do go build -o bin/$$s ./services/$$s; done
	@go build -o bin/hipersync ./cmd/hipersync
	@echo "built: $$(ls bin | grep -v tools | tr '\n' ' ')"

.PHONY: test
test: $(TOOLS)/nats ## Run every test of every module (needs NATS with JetStream and Redis)
	@for m in $(MODULES); do echo "== $${m#$(CURDIR)/}"; (cd $$m && go test $(TEST_FLAGS) ./...); done
	@echo "== tools"; cd tools && GOWORK=off go test $(TEST_FLAGS) ./...

.PHONY: bench
bench: ## Run every benchmark and print one table (each figure beside its same-run baseline) and the growth chart docs/img/bench-growth.svg
	@mkdir -p bin
	@for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 30m ./... | grep -E '^(Benchmark|ok|FAIL|---)' ); done | tee bin/bench.txt | grep -E '^(FAIL|---)' || true
	@cd tools && GOWORK=off go run ./benchtable -chart ../docs/img/bench-growth.svg < ../bin/bench.txt

.PHONY: lint
lint: $(BUF) $(STATICCHECK) ## gofmt, go vet, staticcheck, buf lint and buf breaking against the last release
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^pkg/gen/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...); done
	@# Each module must also build alone, as an image build does (GOWORK=off).
	@for m in $(MODULES); do (cd $$m && GOWORK=off go list -deps -test ./... >/dev/null) || { echo "$${m#$(CURDIR)/} does not build alone: run 'GOWORK=off go mod tidy' there"; exit 1; }; done
	@cd tools && GOWORK=off go vet ./...
	@for m in $(MODULES); do (cd $$m && $(STATICCHECK) ./...) || exit 1; done
	@cd tools && GOWORK=off $(STATICCHECK) ./...
	@$(BUF) lint
	@$(BUF) breaking --against $(BREAKING_BASELINE)

.PHONY: breaking-baseline
breaking-baseline: $(BUF) ## Write the image of proto/ at tag RELEASE, which buf breaking compares against
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	git archive $(RELEASE) proto buf.yaml | tar -x -C "$$tmp"; \
	$(BUF) build "$$tmp" -o $(BREAKING_BASELINE); echo "wrote $(BREAKING_BASELINE) from $(RELEASE)"

.PHONY: generate
generate: $(BUF) $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/protoc-gen-connect-go ## Regenerate pkg/gen from proto/
	@$(BUF) generate

.PHONY: checkgenerate
checkgenerate: generate ## Fail when the committed generated code is stale
	@if [ -n "$$(git status --porcelain -- pkg/gen)" ]; then echo "pkg/gen is stale: run make generate and commit"; git status --porcelain -- pkg/gen; exit 1; fi

.PHONY: run
run: build ## Run the system on this machine (hipersync dev); Ctrl-C stops it
	@./bin/hipersync dev

.PHONY: tools
tools: $(BUF) $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/protoc-gen-connect-go $(TOOLS)/nats-server $(TOOLS)/nats ## Install the pinned code generators, nats-server (cluster tests) and the nats CLI (store isolation test) into bin/tools

$(BUF):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(STATICCHECK): tools/go.mod
	@mkdir -p $(TOOLS)
	cd tools && GOWORK=off go build -o $(STATICCHECK) honnef.co/go/tools/cmd/staticcheck

$(TOOLS)/protoc-gen-go: tools/go.mod
	@mkdir -p $(TOOLS)
	cd tools && GOWORK=off go build -o $(TOOLS)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go

$(TOOLS)/protoc-gen-go-grpc: tools/go.mod
	@mkdir -p $(TOOLS)
	cd tools && GOWORK=off go build -o $(TOOLS)/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc

$(TOOLS)/protoc-gen-connect-go: tools/go.mod
	@mkdir -p $(TOOLS)
	cd tools && GOWORK=off go build -o $(TOOLS)/protoc-gen-connect-go connectrpc.com/connect/cmd/protoc-gen-connect-go

# The cluster tests (pkg/natstest) build it themselves when it is missing.
$(TOOLS)/nats-server: tools/go.mod
	@mkdir -p $(TOOLS)
	cd tools && GOWORK=off go build -o $(TOOLS)/nats-server github.com/nats-io/nats-server/v2

# The official nats CLI (natscli, pinned in tools/go.mod): the store
# isolation test (pkg/natsauth) checks a store's .creds with it.
# The test builds it itself when it is missing.
$(TOOLS)/nats: tools/go.mod
	@mkdir -p $(TOOLS)
	cd tools && GOWORK=off go build -o $(TOOLS)/nats github.com/nats-io/natscli/nats

.PHONY: clean
clean: ## Remove built binaries
	rm -rf bin/console bin/token-broker bin/catalog-poller bin/stock-poller bin/order-forwarder bin/invoice-watcher bin/hiper-sim bin/hipersync
