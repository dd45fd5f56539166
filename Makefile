# Thin wrappers over go commands, so people and CI run the same things.
# `make help` lists the targets.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 10s

.PHONY: help build test ci bench fuzz lint quickstart

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build ./portcullis with the version stamped in
	$(GO) build -ldflags "-X github.com/portcullis/portcullis/internal/cli.Version=$(VERSION)" -o portcullis ./cmd/portcullis

test: ## the README's test command (race detector on)
	$(GO) test -race -count=1 ./...

ci: ## what CI runs: installs, gofmt, vet, staticcheck, tests
	bash .ci/run

bench: ## hot-path benchmarks with allocations
	$(GO) test -run '^$$' -bench . -benchmem ./internal/server/ ./internal/snapshot/ ./internal/policy/ ./internal/trust/ ./internal/auth/

fuzz: ## each fuzz target for FUZZTIME (default 10s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

quickstart: ## the README's quickstart
	$(GO) run ./cmd/portcullis quickstart
