# drwatchd — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
PKG := github.com/drwatchd/drwatchd
REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(PKG)/pkg/version.Version=$(VERSION) -X $(PKG)/pkg/version.Revision=$(REVISION)
# Packages whose tests need the real Prometheus tools or Chromium install them through this
# target; tests skip with a clear message only where installation is impossible.
APT_PACKAGES := prometheus prometheus-alertmanager chromium systemd

.PHONY: help build demo test test-deps check fmt vet lint fuzz bench tidy-check clean

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/drwatchd (stripped)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/drwatchd ./cmd/drwatchd

demo: build ## run the daemon on the embedded simulated cloud: watch a regional outage get failed over
	./bin/drwatchd run --sim

test: test-deps ## run every test with the race detector (what CI runs), then the corpus in every world
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -timeout 20m -run 'TestCorpusYardstick' ./pkg/scenario

test-deps: ## install the tools the tests use (Prometheus, Alertmanager, promtool, Chromium, systemd-analyze)
	@missing=""; \
	for bin in promtool prometheus chromium systemd-analyze; do \
	  command -v $$bin >/dev/null 2>&1 || missing="$$missing $$bin"; \
	done; \
	command -v alertmanager >/dev/null 2>&1 || command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing alertmanager"; \
	if [ -n "$$missing" ]; then \
	  echo "test-deps: installing Debian packages for:$$missing"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null) \
	      || echo "test-deps: apt-get failed; the tests that need these tools will skip and say so"; \
	  else \
	    echo "test-deps: not root or no apt-get; the tests that need$$missing will skip and say so"; \
	  fi; \
	fi

check: fmt vet lint ## gofmt, go vet, staticcheck, then the race tests
	$(MAKE) test

fmt: ## fail if any file is not gofmt-formatted
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet ./...

lint: ## staticcheck, pinned in go.mod as a tool
	$(GO) tool staticcheck ./...

fuzz: ## fuzz config parsing and the Monitoring page decoder, a minute each (each new input minimised for at most 1s, not the default 60s)
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 60s -fuzzminimizetime 1s ./pkg/config
	$(GO) test -run XXX -fuzz FuzzDecode -fuzztime 60s -fuzzminimizetime 1s ./pkg/gcp

bench: build ## scenario comparison and scale benchmarks; writes bench/results.md
	$(GO) run ./bench -out bench/results.md

tidy-check: ## go.mod and go.sum are tidy
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

clean:
	rm -rf bin
