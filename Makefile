# slo-warden — the two commands that matter:
#   make demo   a local control plane, Prometheus, traffic, the operator; watch budgets burn
#   make test   unit tests, promtool rule tests, drift checks, then the end-to-end suite
SHELL := /bin/bash
CARGO ?= cargo

include e2e/e2e.mk

.PHONY: all build test unit e2e demo bench generate lint fmt clean

all: build

build:
	$(CARGO) build --locked

# Unit tests, `promtool test rules` scenarios and CRD/manifest drift checks, then the real-cluster suite.
test: tools unit e2e

unit: tools
	$(CARGO) test --locked

e2e: tools
	e2e/scripts/e2e.sh

demo: tools
	e2e/scripts/demo.sh

# Rule generation speed (1,000 SLOs) and the window-ratio cost/accuracy comparison.
bench: tools
	$(CARGO) bench --locked --bench generate
	bench/window-cost.sh

# Regenerates everything derived from the Rust types: crds/, the chart's CRDs, manifests/.
generate:
	$(CARGO) run --locked --quiet -- crds --dir crds
	charts/render-manifests.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
