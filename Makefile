# slo-warden — the two commands that matter:
#   make demo   a local control plane, Prometheus, traffic, the operator; watch budgets burn
#   make test   unit tests, promtool rule tests, drift checks, then the end-to-end suite
SHELL := /bin/bash
CARGO ?= cargo

include e2e/e2e.mk

.PHONY: all build test unit e2e e2e-existing demo bench bench-scale generate lint fmt clean

all: build

build:
	$(CARGO) build --locked

# Unit tests, `promtool test rules` scenarios and CRD/manifest drift checks, then the real-cluster
# suite, then part of it again in its existing-cluster mode (as on kind, against a bare control plane).
test: tools unit e2e e2e-existing

unit: tools
	$(CARGO) test --locked

e2e: tools
	e2e/scripts/e2e.sh

e2e-existing: tools
	e2e/scripts/e2e-existing.sh

demo: tools
	e2e/scripts/demo.sh

# Rule generation speed (1,000 SLOs in-process; `slo-warden generate` on 10,000), the
# window-ratio cost/accuracy comparison, and the whole rule sets against the real Sloth and Pyrra
# (about 25 minutes in all), and the admission webhook under abuse (bench/README.md).
bench: tools
	$(CARGO) bench --locked --bench generate
	$(CARGO) bench --locked --bench webhook
	$(CARGO) bench --locked --bench poll
	$(CARGO) bench --locked --bench ui
	$(CARGO) build --release --locked
	python3 bench/generate_fleet.py target/release/slo-warden 10000
	bench/window-cost.sh
	bench/rule-cost.sh --quick

# The operator at 1,000 and 10,000 SLOs on the real control plane (about 50 minutes).
bench-scale: tools
	bench/scale.sh

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
