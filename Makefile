# postee — build, run, test, bench.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Every folder under plugins/ is one action plugin: adding an action touches only its folder.
PLUGINS     := $(notdir $(patsubst %/main.go,%,$(wildcard plugins/*/main.go)))
PLUGIN_BINS := $(PLUGINS:%=bin/plugins/postee-action-%)

.PHONY: all build run test lint test-short bench proto clean FORCE

all: build

build: bin/postee $(PLUGIN_BINS)

# Static binaries (no cgo: pure-Go DNS resolver, nothing else needs libc):
# they run on any Linux, and a plugin process maps about 1.3 MB less.
bin/postee: FORCE
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $@ ./cmd/postee

bin/plugins/postee-action-%: FORCE
	CGO_ENABLED=0 $(GO) build -o $@ ./plugins/$*

# Start postee on the example config: HTTP on 127.0.0.1:8082, no external service.
# With ingest and management authentication (docs/security.md):
#   POSTEE_INGEST_TOKEN=ingest-secret POSTEE_API_KEY=admin-secret make run
#   curl -H 'Authorization: Bearer ingest-secret' -d '{"image":"alpine"}' http://127.0.0.1:8082/
#   curl -H 'X-Api-Key: admin-secret' http://127.0.0.1:8082/executions
run: build
	PATH_TO_DB=$(CURDIR)/.postee/webhooks.db bin/postee --cfgfile examples/cfg.yaml --url 127.0.0.1:8082 --tls ""

# Unit, plugin and end-to-end tests (the e2e tests build their own binaries).
# The SDK is a module of its own (sdk/go.mod): `./...` of the root module
# does not reach it, so it is vetted and tested on its own.
# `make lint` runs first: tidy modules, gofmt, vet and staticcheck.
test: build lint
	cd sdk && $(GO) test -race -count=1 -timeout 5m ./...
	$(GO) test -race -count=1 -timeout 12m ./...

# Both modules (the root and sdk/): go.mod and go.sum tidy, gofmt, go vet,
# staticcheck (a pinned version, fetched by go run).
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) mod tidy -diff
	cd sdk && $(GO) mod tidy -diff
	@test -z "$$(gofmt -l cmd core internal plugins sdk test tools)" || { gofmt -l cmd core internal plugins sdk test tools; echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	cd sdk && $(GO) vet ./...
	$(STATICCHECK) ./...
	cd sdk && $(STATICCHECK) ./...

test-short:
	cd sdk && $(GO) test -short ./...
	$(GO) test -short ./...

# The end-to-end load suite in one run (tools/loadgen -suite): the bare relay,
# standalone postee and controller → runner in turn, four rounds (every other
# one in the reverse order), then
# --no-durable-ingest, idle memory and start time, ending with a table of each figure beside its
# goal. It runs before the Go benchmarks, whose disk writes (the ingest
# benchmarks) would slow the fsyncs of the load runs. About 2 minutes, then
# the Go benchmarks; figures go to docs/performance.md.
bench: build
	$(GO) run ./tools/loadgen -suite -postee bin/postee -plugin-dir bin/plugins -json bin/bench.json
	$(GO) build -o bin/nats-server github.com/nats-io/nats-server/v2
	$(GO) run ./tools/clusterbench -postee bin/postee -plugin-dir bin/plugins -nats-server bin/nats-server -senders 16
	$(GO) run ./tools/runnersim -postee bin/postee -plugin-dir bin/plugins -runners 1000
	$(GO) test -run '^$$' -bench . -benchmem ./core/... ./plugins/... ./internal/...

# Regenerate the committed protobuf code (needs protoc; the Go generators are installed here).
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc -I . \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative sdk/protocol/actionpb/action.proto
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc -I . \
		--go_out=. --go_opt=paths=source_relative core/cluster/clusterpb/cluster.proto

clean:
	rm -rf bin

FORCE:
