#!/usr/bin/env bash
# The end-to-end suite (`make e2e`): tools, build, a cluster of its own, smoke.sh, then
# `cargo test --test e2e -- --ignored` (tests/e2e.rs), and teardown whatever happens.
# On failure the component logs and the tests' logs (operator logs, namespace dumps) are
# copied to target/e2e-logs/<time>/ and the path is printed.
#
#   e2e/scripts/e2e.sh [TEST-FILTER...]      # arguments go to the test binary
#
# Environment:
#   E2E_KUBECONFIG=FILE   no control plane of its own: the suite's components (CRDs, kwok's fake
#                         node, Argo Rollouts, Prometheus, traffic, rule sync) run here against
#                         the cluster of FILE, e.g. kind's (cluster-up.sh; e2e-existing.sh)
#   E2E_WEBHOOK_HOST      how that cluster's API server reaches this machine (an address or
#                         name): the tests' operators serve their webhooks there, on every address
#   E2E_USE_EXISTING=1    use the cluster of KUBECONFIG, PROMETHEUS_URL and TRAFFIC_URL instead
#                         of starting one: no setup.sh, no cluster-up/down, no smoke.sh; only
#                         crds/ is applied (see e2e/README.md for what that cluster needs)
#   E2E_STATE_DIR         state dir of the suite's own cluster (/tmp/slo-warden-e2e-suite);
#                         never the SLO_WARDEN_E2E_DIR of a cluster you started by hand
#   E2E_TEST_THREADS      tests run at once (8: each has its own namespace and operator)
#   E2E_SMOKE=0           skip smoke.sh
#   E2E_LOGS_DIR          where failure logs are kept (target/e2e-logs)
#   E2E_KEEP_CLUSTER=1    leave the suite's cluster running at the end (stop it with
#                         SLO_WARDEN_E2E_DIR=$E2E_STATE_DIR e2e/scripts/cluster-down.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

t0=$(date +%s)
log() { printf '[e2e.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { local s=$(($(date +%s) - t0)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

use_existing=${E2E_USE_EXISTING:-0}
state=$(realpath -m "${E2E_STATE_DIR:-/tmp/slo-warden-e2e-suite}")
keep_root=${E2E_LOGS_DIR:-$repo/target/e2e-logs}
threads=${E2E_TEST_THREADS:-8}

# One run per state dir at a time (a second run would share, then tear down, the cluster).
mkdir -p "$(dirname "$state")"
exec 9>"$state.lock"
flock -n 9 || die "another e2e.sh is using $state (lock $state.lock); set E2E_STATE_DIR to run a second one"

test_logs=$(mktemp -d "${TMPDIR:-/tmp}/slo-warden-e2e-tests.XXXXXX")
cluster_started=0

# Operators the tests started and could not stop (test process killed): their pids are in
# $test_logs/<namespace>/operator.pid, one per line, and each carries
# SLO_WARDEN_E2E_OPERATOR=<its log in that directory> in its environment, which guards against
# pid reuse.
stop_leftover_operators() {
  local f pid dir
  for f in "$test_logs"/*/operator.pid; do
    [[ -s $f ]] || continue
    dir=$(dirname "$f")
    while read -r pid; do
      [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/environ ]] || continue
      if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -q "^SLO_WARDEN_E2E_OPERATOR=$dir/[^/]*\.log\$"; then
        log "stopping leftover operator $pid"
        kill -TERM "$pid" 2>/dev/null || true
      fi
    done <"$f"
  done
}

# Control planes a test started of its own (cluster-up.sh in a directory of its log dir, e.g.
# the UI's second cluster) and could not stop.
stop_leftover_clusters() {
  local f
  for f in "$test_logs"/*/*/components; do
    [[ -e $f ]] || continue
    log "stopping leftover cluster $(dirname "$f")"
    KEEP_LOGS=1 SLO_WARDEN_E2E_DIR=$(dirname "$f") "$here/cluster-down.sh" >/dev/null 2>&1 || true
  done
}

on_exit() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  trap '' PIPE   # output may go to a pipe that is gone (| tee, Ctrl-C): tear down anyway
  stop_leftover_operators
  stop_leftover_clusters
  if ((rc != 0)); then
    local kept
    kept=$keep_root/$(date +%Y%m%d-%H%M%S)
    mkdir -p "$kept"
    [[ -d $state/logs ]] && cp -r "$state/logs" "$kept/cluster"
    [[ -n $(ls -A "$test_logs" 2>/dev/null) ]] && cp -r "$test_logs" "$kept/tests"
    log "FAILED after $(elapsed) (exit $rc); logs kept in $kept"
    log "  cluster components: $kept/cluster/<component>.log; operators and failure dumps: $kept/tests/<namespace>/"
  fi
  if ((cluster_started)); then
    if [[ ${E2E_KEEP_CLUSTER:-0} == 1 ]]; then
      log "cluster left running (E2E_KEEP_CLUSTER=1): source $state/env; stop with SLO_WARDEN_E2E_DIR=$state $here/cluster-down.sh"
    else
      SLO_WARDEN_E2E_DIR=$state "$here/cluster-down.sh"
    fi
  fi
  rm -rf "$test_logs"
  ((rc == 0)) && log "passed in $(elapsed)"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ $use_existing == 1 ]]; then
  for v in KUBECONFIG PROMETHEUS_URL TRAFFIC_URL; do
    [[ -n ${!v:-} ]] || die "E2E_USE_EXISTING=1 needs $v (see e2e/README.md)"
  done
  . "$here/versions.sh"
  if [[ -z ${KUBECTL:-} ]]; then
    KUBECTL=$(command -v kubectl || true)
    [[ -n $KUBECTL ]] || KUBECTL=$SLO_WARDEN_CACHE/kubernetes-$K8S_VERSION/bin/kubectl
  fi
  [[ -x $KUBECTL ]] || die "no kubectl (set KUBECTL, put one on PATH or run e2e/scripts/setup.sh)"
  if [[ -z ${HELM:-} ]]; then
    HELM=$(command -v helm || true)
    [[ -n $HELM ]] || HELM=$SLO_WARDEN_CACHE/helm-$HELM_VERSION/bin/helm
  fi
  [[ -x $HELM ]] || die "no helm (set HELM, put one on PATH or run e2e/scripts/setup.sh)"
  export KUBECTL HELM
  log "using the existing cluster of KUBECONFIG=$KUBECONFIG"
else
  log "setup (tools)"
  "$here/setup.sh"
fi

log "building"
cargo build
cargo test --test e2e --no-run

if [[ $use_existing == 1 ]]; then
  "$KUBECTL" get --raw /readyz >/dev/null || die "the API server of KUBECONFIG=$KUBECONFIG is not ready"
  "$KUBECTL" get crd prometheusrules.monitoring.coreos.com >/dev/null \
    || die "the cluster has no PrometheusRule CRD (install prometheus-operator's CRDs)"
  "$KUBECTL" apply --server-side --field-manager=slo-warden-e2e -f crds/ >/dev/null
  "$KUBECTL" wait --for=condition=Established crd --all --timeout=60s >/dev/null
  log "applied crds/"
  curl -fsS --max-time 10 "$PROMETHEUS_URL/-/ready" >/dev/null || die "Prometheus at $PROMETHEUS_URL is not ready"
  curl -fsS --max-time 10 "$TRAFFIC_URL/control" >/dev/null || die "no traffic generator at $TRAFFIC_URL"
else
  log "starting the cluster in $state"
  cluster_started=1
  SLO_WARDEN_E2E_DIR=$state "$here/cluster-up.sh" >/dev/null
  . "$state/env"
  if [[ ${E2E_SMOKE:-1} != 0 ]]; then
    log "smoke.sh"
    SLO_WARDEN_E2E_DIR=$state "$here/smoke.sh"
  fi
fi

# The browser tests' accessibility checks (setup.sh caches the script).
. "$here/versions.sh"
export E2E_AXE=${E2E_AXE:-$SLO_WARDEN_CACHE/axe-core-$AXE_CORE_VERSION/axe.min.js}
log "cargo test --test e2e -- --ignored (up to $threads at once; logs in $test_logs)"
t_tests=$(date +%s)
E2E_LOG_DIR=$test_logs cargo test --test e2e -- --ignored --nocapture --test-threads="$threads" "$@"
log "tests passed in $(($(date +%s) - t_tests))s"
