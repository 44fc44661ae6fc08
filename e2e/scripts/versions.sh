# Pinned versions of every component the end-to-end suite and the demo run.
# Sourced by the other scripts; bump a version here and the cache key changes with it.
K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.21.4
PROMETHEUS_OPERATOR_VERSION=v0.85.0
ARGO_ROLLOUTS_VERSION=v1.8.5
THANOS_VERSION=v0.42.4
# Flagger's CRDs only (no controller): the chart's MetricTemplate and the README's Canary are
# validated against them by the API server.
FLAGGER_VERSION=v1.36.1
# axe-core (npm) checks the web UI's pages for accessibility in the browser tests.
AXE_CORE_VERSION=4.14.1
# actionlint checks the GitHub Action and workflows (tests/action.rs).
ACTIONLINT_VERSION=v1.7.12
# grafana-validate (the dashboards' schema check) pins grafana-foundation-sdk in
# tools/grafana-validate/go.mod; its cache key is a hash of those sources (build-tools.sh).

SLO_WARDEN_CACHE=${SLO_WARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slo-warden}
