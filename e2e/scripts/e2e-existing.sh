#!/usr/bin/env bash
# The suite's existing-cluster mode (`make e2e-existing`), as the kind job in
# .github/workflows/e2e-kind.yml runs it, with a local bare control plane standing in for kind:
#
#   1. cluster-up.sh with E2E_CONTROL_PLANE_ONLY=1: etcd, kube-apiserver, kube-controller-manager
#      and kube-scheduler only, no CRDs, no nodes (what `kind create cluster` gives, less its node);
#   2. e2e.sh with E2E_KUBECONFIG pointing at it: the suite attaches its own components (CRDs,
#      kwok's fake node, Argo Rollouts, Prometheus, Thanos, traffic, rule sync) from outside, and
#      with E2E_WEBHOOK_HOST set to this machine's non-loopback address, the operators' webhooks
#      listen on every address and the API server calls them there, as kind's calls the host;
#   3. everything stopped, the control plane last.
#
#   e2e/scripts/e2e-existing.sh [TEST-FILTER...]
#
# Without filters it runs the tests that touch what differs from the suite's own cluster:
# webhooks reached from elsewhere, the chart's replicas, Argo Rollouts, the user the API server
# authenticates. Environment: E2E_EXISTING_DIR (state, /tmp/slo-warden-e2e-existing), and
# e2e.sh's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
log() { printf '[e2e-existing.sh %s] %s\n' "$(date +%T)" "$*" >&2; }

state=$(realpath -m "${E2E_EXISTING_DIR:-/tmp/slo-warden-e2e-existing}")
mkdir -p "$state"
exec 8>"$state.lock"
flock -n 8 || { log "ERROR: another e2e-existing.sh is using $state"; exit 1; }

filters=("$@")
if ((${#filters[@]} == 0)); then
  filters=(
    rules_reach_prometheus_and_the_burn_alert_fires_and_clears
    the_chart_installs_an_operator_that_needs_nothing_more
    a_frozen_namespace_refuses_releases
    a_canary_is_aborted_back_to_stable
    a_canary_gated_on_the_slo_burn_rate
    a_bad_release_is_rolled_back_once
  )
fi

# This machine as a cluster elsewhere would reach it: its first non-loopback IPv4 address.
host=${E2E_WEBHOOK_HOST:-$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9]+(\.[0-9]+){3}$' || true)}
if [[ -z $host ]]; then
  log "no non-loopback address: the webhooks are reached on localhost"
  host=localhost
fi

log "setup (tools)"
"$here/setup.sh"
cp_dir=$state/control-plane
stop() {
  local rc=$?
  SLO_WARDEN_E2E_DIR=$cp_dir "$here/cluster-down.sh"
  exit "$rc"
}
trap stop EXIT
log "a bare control plane in $cp_dir"
SLO_WARDEN_E2E_DIR=$cp_dir E2E_CONTROL_PLANE_ONLY=1 "$here/cluster-up.sh" >/dev/null
log "the suite against it (webhooks on $host): ${filters[*]}"
E2E_KUBECONFIG=$cp_dir/kubeconfig E2E_WEBHOOK_HOST=$host E2E_STATE_DIR=$state/suite \
  "$here/e2e.sh" "${filters[@]}"
