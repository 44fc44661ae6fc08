#!/usr/bin/env bash
# `make bench-scale`: slo-warden at 1,000 and 10,000 ServiceLevelObjectives (N/10
# ErrorBudgetPolicies, each selecting 10 SLOs and 2 Deployments) on the real control plane,
# run as the chart runs it. Prometheus scrapes bench/scale/exporter.py, which publishes the
# recorded series of every SLO (the operator only reads those), with 1% of the burn rates
# changing every poll interval. Prints a table of measurements against the targets and exits
# non-zero when one is missed. A report, never a timed test. Takes about 50 minutes (10 of them
# steady state per size).
#
#   bench/scale.sh [N...]              fleet sizes (default: 1000 10000)
#
# Environment: SCALE_STEADY (seconds of steady state, 600), SCALE_POLL_INTERVAL (30s, the
# chart's default), SCALE_DIR (state and logs, /tmp/slo-warden-scale), SCALE_SKIP_SETUP=1,
# SCALE_KEEP=1 (leave the last size's cluster, fleet and exporter running, e.g. to profile the
# operator against them; stop them with e2e/scripts/cluster-down.sh and kill the exporter),
# SCALE_RUST_LOG (the operator's RUST_LOG, info,kube=warn), E2E_AUDIT_BODIES=1 (the audit log
# keeps the bodies of status writes and Events, to see what a write changed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
. e2e/scripts/versions.sh
sizes=("$@")
((${#sizes[@]})) || sizes=(1000 10000)
steady=${SCALE_STEADY:-600}
poll=${SCALE_POLL_INTERVAL:-30s}
root=$(realpath -m "${SCALE_DIR:-/tmp/slo-warden-scale}")
log() { printf '[bench-scale %s] %s\n' "$(date +%T)" "$*" >&2; }

if [[ ${SCALE_SKIP_SETUP:-0} != 1 ]]; then
  e2e/scripts/setup.sh
fi
cargo build --release --locked
operator=$repo/target/release/slo-warden

mkdir -p "$root"
exporter_pid=
cleanup() {
  set +e
  if [[ ${SCALE_KEEP:-0} == 1 ]]; then
    log "kept: . $root/cluster/env; operator kubeconfig and flags in $out; exporter pid $exporter_pid"
    return
  fi
  [[ -n $exporter_pid ]] && kill "$exporter_pid" 2>/dev/null
  SLO_WARDEN_E2E_DIR=$root/cluster e2e/scripts/cluster-down.sh >/dev/null 2>&1
}
trap cleanup EXIT

results=()
for n in "${sizes[@]}"; do
  out=$root/n$n
  rm -rf "$out"
  mkdir -p "$out"
  python3 bench/scale/scale.py --slos "$n" --print-slos >"$out/slos.txt"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 bench/scale/exporter.py --port "$port" --slos "$out/slos.txt" \
    --drift-interval "$(python3 -c "import sys; v=sys.argv[1]; print(float(v[:-1]) * {'s': 1, 'm': 60}[v[-1]])" "$poll")" \
    >"$out/exporter.log" 2>&1 &
  exporter_pid=$!
  log "N=$n: cluster (no rule sync, audit log), exporter on :$port"
  # The recorded series as the rules record them, each on its group's schedule: short windows
  # every minute, the long ones and the budgets every 5 minutes, the long-run series hourly;
  # labelled exactly as the rules label them (no job or instance).
  : >"$out/scrape.yml"
  for job in short:1m long:5m hourly:1h; do
    cat >>"$out/scrape.yml" <<EOF
  - job_name: slo-${job%%:*}
    honor_labels: true
    scrape_interval: ${job#*:}
    scrape_timeout: 20s
    metrics_path: /metrics/${job%%:*}
    static_configs: [{targets: ['127.0.0.1:$port']}]
    metric_relabel_configs: [{action: labeldrop, regex: job|instance}]
EOF
  done
  SLO_WARDEN_E2E_DIR=$root/cluster E2E_RULE_SYNC=0 E2E_AUDIT=1 E2E_SCRAPE_INTERVAL=30s E2E_EVAL_INTERVAL=30s \
    E2E_EXTRA_SCRAPE_CONFIGS=$out/scrape.yml e2e/scripts/cluster-up.sh >/dev/null
  . "$root/cluster/env"
  # The exporter's series must be in Prometheus before the operator starts reading, each with
  # two samples: the operator reads a value once its writer has written it twice on schedule,
  # and the steady state must not count every SLO's first reading as a change.
  until [[ $(curl -fsS "$PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=count(count_over_time(slo:error_budget:ratio[11m]) >= 2)' |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)') == "$n" ]]; do
    sleep 2
  done
  log "N=$n: Prometheus has every SLO's series; running"
  python3 bench/scale/scale.py --slos "$n" --operator "$operator" --kubectl "$KUBECTL" --helm "$HELM" \
    --chart charts/slo-warden --prometheus-url "$PROMETHEUS_URL" --exporter-url "http://127.0.0.1:$port" \
    --audit-log "$root/cluster/logs/audit.log" --out "$out" --scrape-interval 30s --poll-interval "$poll" \
    --steady "$steady" | tee "$out/result.json"
  results+=("$out/result.json")
  [[ ${SCALE_KEEP:-0} == 1 && $n == "${sizes[-1]}" ]] && break
  kill "$exporter_pid" 2>/dev/null || true
  wait "$exporter_pid" 2>/dev/null || true
  exporter_pid=
  SLO_WARDEN_E2E_DIR=$root/cluster e2e/scripts/cluster-down.sh >/dev/null 2>&1
done

python3 bench/scale/report.py "${results[@]}"
