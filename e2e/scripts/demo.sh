#!/usr/bin/env bash
# `make demo`: a local cluster, Prometheus, synthetic traffic and the Argo Rollouts controller,
# slo-warden running against them with examples/ (SLOs and the ErrorBudgetPolicy of checkout),
# checkout's Deployment and canary Rollout (e2e/demo/checkout-workloads.yaml) and its admission
# webhooks (e2e/demo/webhooks.yaml), and a terminal dashboard (redrawn every few seconds) while
# a scripted scenario ships a bad release of checkout, which slo-warden names and rolls back,
# tries to ship it again during the freeze (refused), and ships the fix once released. Ctrl-C tears everything down.
#
# Environment:
#   DEMO_DURATION=N     stop by itself after N seconds (0, the default: run until Ctrl-C)
#   DEMO_REFRESH=N      seconds between redraws (5)
#   DEMO_POLL_INTERVAL  how often the operator reads the budgets from Prometheus (5s)
#   DEMO_DIR            state dir (/tmp/slo-warden-demo): cluster, operator log (logs/slo-warden.log)
#   DEMO_KEEP_LOGS=1    keep $DEMO_DIR/logs after tear-down
#   DEMO_SKIP_SETUP=1   skip setup.sh (tools already installed)
#   NO_COLOR=1          no colours (also off when stdout is not a terminal)
#
# While it runs, another terminal can look around:
#   source /tmp/slo-warden-demo/env; $KUBECTL get slo,ebp,prometheusrules -A
#   $KUBECTL get ebp checkout -n shop -o yaml; $KUBECTL get events -n shop
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
export SLO_WARDEN_E2E_DIR=${DEMO_DIR:-/tmp/slo-warden-demo}
. "$here/lib.sh"   # DIR (= the state dir), KUBECTL, http, component_pid, k
log() { printf '[demo %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

DURATION=${DEMO_DURATION:-0}
REFRESH=${DEMO_REFRESH:-5}
POLL_INTERVAL=${DEMO_POLL_INTERVAL:-5s}
[[ $DURATION =~ ^[0-9]+$ && $REFRESH =~ ^[0-9]+$ && $REFRESH -gt 0 ]] || die "DEMO_DURATION and DEMO_REFRESH must be whole seconds"

# ---- The scenario ------------------------------------------------------------------------
# One step per line: "SECONDS|ACTION|WHAT TO WATCH". ACTION is shell run once when the step
# starts (helpers: traffic SERVICE PARAMS..., ship VERSION, kubectl ...); "-" for none. To
# extend the demo, add a line (and, if it needs objects, a file under e2e/demo/ applied by its
# ACTION). Steps without an action describe what the operator does by itself around then.
SCENARIO=(
  "0|traffic checkout errors=0.0005 slow=0 follow=shop/app=checkout image_errors=registry.invalid/shop/checkout:1.5.0=0.2; traffic search errors=0 slow=0|Healthy: checkout's Deployment and canary Rollout run 1.4.0. The traffic's errors follow the images the pods actually run: 1.4.0 fails 0.05% of requests (burn 0.5x of the 0.1% budget), 1.5.0 20%. The ErrorBudgetPolicy shop/checkout (examples/checkout-policy.yaml) watches both checkout SLOs; its release ledger (status.releases of each SLO) lists 1.4.0."
  "90|ship 1.5.0 --now|The pipeline ships 1.5.0: the Deployment rolls it out on its 3 pods, the canary Rollout on 1 of its 4. About 11% of checkout's requests now fail: the 5m burn rate passes 14.4x within a minute."
  "105|-|The policy enters stage fast-burn. 1.5.0 started within the policy's suspectWindow before the burn, on both workloads: rollbackRelease rolls the Deployment back to 1.4.0 (what kubectl rollout undo sends, marked slo.warden.dev/rolled-back-from) and aborts the canary (its stable 1.4.0 takes the traffic back), and freezeNamespace freezes shop. Errors fall back to 0.05% as the 1.4.0 pods return: the rollback alone fixed it (see the policy's rollback lines and the RollbackRelease Events)."
  "180|ship 1.5.0|The pipeline retries 1.5.0 during the freeze: the admission webhook refuses it on both workloads, saying which policy froze shop and how to get an override (see Release attempts). A kubectl rollout undo to an older revision would go through."
  "240|-|The ledger shows what 1.5.0 cost: its errors, its share of each SLO's 30-day budget and its burn rate since it started (Which release burned the budget; the share appears once the window's request count is recorded, about t=10m). The demo's 30-day window holds only its own minutes, so every share is large: even 1.4.0's 0.05% errors (half the budget's pace) spend a good part of such a window. 1.4.0 is in force again as a new revision, counted from the rollback on."
  "420|-|About now the 5m burn rate is back under 14.4x; the policy holds for releaseAfter (2m), then releases: namespace shop is unfrozen (about t=9m)."
  "600|ship 1.5.1 --after-release|The fix, 1.5.1, ships once the freeze is gone: accepted. The Deployment rolls it out at once, the canary goes 25%, waits 45s, 75%, waits 30s, 100%; the ledger records it."
  "780|-|Done: checkout runs 1.5.1 and nothing is held; the ledger holds 1.4.0, 1.5.0 (and what it burned), the rollback and 1.5.1. Ctrl-C tears everything down."
)

traffic() { # SERVICE KEY=VALUE...
  local svc=$1 q; shift
  q="service=$svc$(printf '&%s' "$@")"
  http POST "$TRAFFIC_URL/control?$q" >/dev/null
}
kubectl() { "$KUBECTL" "$@"; }
# attempt WHAT COMMAND...: runs a release command and notes in $releases whether the API server
# accepted it, or what it answered.
attempt() {
  local what=$1 out; shift
  if out=$("$@" 2>&1); then
    printf '%s %s: accepted\n' "$(date +%T)" "$what"
  else
    printf '%s %s: REFUSED %s\n' "$(date +%T)" "$what" "$(tr '\n' ' ' <<<"$out")"
  fi >>"$releases"
}
# ship VERSION [--now|--after-release]: what a release pipeline does, on both checkout
# workloads. Meant for the freeze, it waits (up to 90s) for the namespace to be frozen first;
# with --after-release, for it to be released (up to 4 minutes); with --now, for nothing.
ship() {
  local image=registry.invalid/shop/checkout:$1 want=true deadline=$((SECONDS + 90))
  if [[ ${2:-} == --after-release ]]; then want='' deadline=$((SECONDS + 240)); fi
  if [[ ${2:-} == --now ]]; then want=$(kubectl get namespace shop -o jsonpath='{.metadata.labels.slo\.warden\.dev/frozen}'); fi
  until [[ $(kubectl get namespace shop -o jsonpath='{.metadata.labels.slo\.warden\.dev/frozen}') == "$want" ]]; do
    ((SECONDS < deadline)) || { log "namespace shop is not as expected: shipping $1 anyway"; break; }
    sleep 2
  done
  attempt "kubectl set image deployment/checkout checkout=…:$1" \
    kubectl set image deployment/checkout -n shop "checkout=$image"
  attempt "kubectl patch rollout checkout (image …:$1)" kubectl patch rollout checkout -n shop --type=merge \
    -p "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"checkout\",\"image\":\"$image\"}]}}}}"
}

# ---- Setup -----------------------------------------------------------------------------------
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock -n 9 || die "a demo is already running with state dir $DIR"

tty=0
[[ -t 1 ]] && tty=1
color=()
((tty)) && [[ -z ${NO_COLOR:-} ]] && color=(--color)

on_exit() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  trap '' PIPE   # the terminal or a pipe may be gone: tear down anyway
  ((tty)) && printf '\033[?25h'   # cursor back
  echo
  for c in slo-warden-ui slo-warden; do
    if pid=$(component_pid "$c"); then
      log "stopping $c ($pid)"
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  if [[ -d $DIR/pids ]]; then
    log "tearing down the cluster in $DIR"
    KEEP_LOGS=${DEMO_KEEP_LOGS:-0} "$here/cluster-down.sh"
  fi
  log "demo stopped"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ ${DEMO_SKIP_SETUP:-0} != 1 ]]; then
  log "installing tools (setup.sh; cached after the first run)"
  "$here/setup.sh"
fi
log "building slo-warden"
cargo build
bin=$repo/target/debug/slo-warden

log "starting the cluster, Prometheus and the traffic generator in $DIR"
"$here/cluster-up.sh" >/dev/null
. "$DIR/env"

for c in slo-warden-ui slo-warden; do  # left over from an interrupted demo
  if pid=$(component_pid "$c"); then
    kill -TERM "$pid" 2>/dev/null || true
  fi
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
webhook_port=$(free_port)
oplog=$DIR/logs/slo-warden.log
releases=$DIR/logs/releases.log
: >"$releases"
# The webhooks call the operator on this machine (the chart's Service stands in a cluster);
# its certificate lives in namespace slo-warden, as the chart's would.
k create namespace slo-warden --dry-run=client -o yaml | k apply -f - >/dev/null
sed "s/WEBHOOK_PORT/$webhook_port/" e2e/demo/webhooks.yaml | k apply -f - >/dev/null
# Own session (Ctrl-C reaches it through the trap, after the dashboard stops) and the
# SLO_WARDEN_E2E_DIR marker component_pid checks.
SLO_WARDEN_E2E_DIR=$DIR NO_COLOR=1 POD_NAMESPACE=slo-warden setsid bash -c 'echo $$ >"$0"; exec "$@"' "$DIR/pids/slo-warden.pid" \
  "$bin" run --http-addr "127.0.0.1:$port" --prometheus-url "$PROMETHEUS_URL" \
  --scrape-interval "$E2E_SCRAPE_INTERVAL" --alert-interval "$E2E_EVAL_INTERVAL" --poll-interval "$POLL_INTERVAL" \
  --webhook-addr "127.0.0.1:$webhook_port" --webhook-cert-secret slo-warden-webhook \
  --webhook-dns-name localhost --webhook-configuration slo-warden-demo </dev/null >>"$oplog" 2>&1 &
deadline=$((SECONDS + 60))
until http GET "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
  component_pid slo-warden >/dev/null || { tail -n 30 "$oplog" >&2; die "slo-warden exited (log $oplog)"; }
  ((SECONDS < deadline)) || die "slo-warden not ready after 60s (log $oplog)"
  sleep 0.5
done
until [[ -n $(k get validatingwebhookconfiguration slo-warden-demo -o jsonpath='{.webhooks[0].clientConfig.caBundle}') ]]; do
  ((SECONDS < deadline)) || die "slo-warden did not set the webhooks' caBundle after 60s (log $oplog)"
  sleep 0.5
done
log "slo-warden running (pid $(component_pid slo-warden), metrics http://127.0.0.1:$port/metrics, webhook https://localhost:$webhook_port, log $oplog)"

# The web UI, read only, beside the terminal dashboard below.
ui_port=$(free_port)
uilog=$DIR/logs/slo-warden-ui.log
SLO_WARDEN_E2E_DIR=$DIR NO_COLOR=1 setsid bash -c 'echo $$ >"$0"; exec "$@"' "$DIR/pids/slo-warden-ui.pid" \
  "$bin" ui --cluster demo --http-addr "127.0.0.1:$ui_port" --prometheus-url "$PROMETHEUS_URL" </dev/null >>"$uilog" 2>&1 &
until http GET "http://127.0.0.1:$ui_port/readyz" >/dev/null 2>&1; do
  component_pid slo-warden-ui >/dev/null || { tail -n 30 "$uilog" >&2; die "slo-warden ui exited (log $uilog)"; }
  ((SECONDS < deadline + 30)) || die "slo-warden ui not ready (log $uilog)"
  sleep 0.5
done
log "web UI: http://127.0.0.1:$ui_port/ (every SLO, its budget and the policy acting on it)"

for ns in $(sed -n 's/^ *namespace: *//p' examples/*.yaml e2e/demo/*.yaml | sort -u); do
  k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
done
# The SLOs first: a policy created before its SLOs reports them missing until they exist.
k apply $(grep -l '^kind: ServiceLevelObjective' examples/*.yaml | sed 's/^/-f /') >/dev/null
k apply -f examples/ -f e2e/demo/checkout-workloads.yaml >&2
# A demo cannot wait a 30-day window: its budgets count from the first tiles (partialWindows;
# without it they read NoData, "Prometheus holds less than an hour of the 30d window", as a
# new SLO should).
for slo in $(k get slo -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{" "}{end}'); do
  k -n "${slo%%/*}" patch slo "${slo#*/}" --type merge -p '{"spec":{"partialWindows":true}}' >/dev/null
done

# ---- Dashboard -----------------------------------------------------------------------------
fmt_t() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
paint() { # CODE TEXT
  if ((${#color[@]})); then printf '\033[%sm%s\033[0m' "$1" "$2"; else printf '%s' "$2"; fi
}

# Terminal size (redrawn each frame, so resizing works); 0 = no limit (not a terminal).
term_size() {
  cols=0 rows=0
  if ((tty)); then
    read -r rows cols < <(stty size </dev/tty 2>/dev/null || echo "0 0")
  fi
}

render() { # ELAPSED CURRENT-STEP
  local t=$1 cur=$2 i at text width=$((cols > 40 ? cols - 16 : 1000)) first
  printf '%s   t=%s   %s\n' "$(paint 1 'slo-warden demo')" "$(fmt_t "$t")" \
    "$( ((DURATION)) && echo "stops at $(fmt_t "$DURATION")" || echo "Ctrl-C to stop")"
  printf 'Web UI http://127.0.0.1:%s/ | Prometheus %s | operator log %s | explore: source %s/env\n\n' "$ui_port" "$PROMETHEUS_URL" "$oplog" "$DIR"
  printf '%s\n' "$(paint 36 Scenario)"
  for i in "${!SCENARIO[@]}"; do
    IFS='|' read -r at _ text <<<"${SCENARIO[i]}"
    if ((i < cur)); then
      printf '  [x] t=%-7s %s\n' "$(fmt_t "$at")" "$(paint 2 "$text")"
    elif ((i == cur)); then  # the current step in full, wrapped
      first=1
      while IFS= read -r line; do
        if ((first)); then
          printf '  %s t=%-7s %s\n' "$(paint '1;33' '-->')" "$(fmt_t "$at")" "$(paint 1 "$line")"
          first=0
        else
          printf '              %s\n' "$(paint 1 "$line")"
        fi
      done < <(fold -s -w "$width" <<<"$text")
    else
      printf '  [ ] t=%-7s (in %s) %s\n' "$(fmt_t "$at")" "$(fmt_t $((at - t)))" "$text"
    fi
  done
  echo
  python3 "$repo/e2e/demo/dashboard.py" --kubectl "$KUBECTL" --prometheus-url "$PROMETHEUS_URL" \
    --traffic-url "$TRAFFIC_URL" --operator-url "http://127.0.0.1:$port" --releases "$releases" \
    --width "$cols" "${color[@]}" 2>&1
}

# fit COLS ROWS: cuts lines to COLS visible characters (ANSI colours kept) and the frame to
# ROWS lines, appending erase-to-end-of-line to each.
fit() {
  python3 -c '
import re, sys
cols, rows = int(sys.argv[1]), int(sys.argv[2])
lines = sys.stdin.read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
if rows > 1 and len(lines) > rows - 1:
    lines = lines[: rows - 2] + ["... (%d more lines: enlarge the terminal)" % (len(lines) - rows + 2)]
out = []
for line in lines:
    if cols > 0:
        vis, cut = 0, []
        for tok in re.split("(\x1b\\[[0-9;?]*[A-Za-z])", line):
            if tok.startswith("\x1b"):
                cut.append(tok)
                continue
            room = cols - 1 - vis
            cut.append(tok[: max(0, room)])
            vis += len(tok)
        line = "".join(cut) + ("\x1b[0m" if "\x1b" in line else "")
    out.append(line + "\x1b[K")
sys.stdout.write("\n".join(out))
' "$1" "$2"
}

((tty)) && printf '\033[?25l\033[H\033[2J'   # hide the cursor, clear once
start=$SECONDS
cur=-1
while :; do
  t=$((SECONDS - start))
  # Start every step that is due.
  while ((cur + 1 < ${#SCENARIO[@]})); do
    IFS='|' read -r at action _ <<<"${SCENARIO[cur + 1]}"
    ((t >= at)) || break
    cur=$((cur + 1))
    if [[ $action != - ]]; then
      eval "$action" || log "scenario step $cur failed: $action"
    fi
    ((tty)) || log "scenario step $cur at t=$(fmt_t "$t"): $action"
  done
  term_size
  frame=$(render "$t" "$cur")
  if ((tty)); then
    # Home, each line cut to the terminal and cleared to its end, then everything below:
    # no flicker, no wrapping.
    printf '\033[H%s\033[J' "$(printf '%s\n' "$frame" | fit "$cols" "$rows")"
  else
    printf '\n===== %s =====\n%s\n' "$(date +%T)" "$frame"
  fi
  if ((DURATION && t >= DURATION)); then
    break
  fi
  # Sleep until the next refresh, or the next step if that comes first.
  wait_s=$REFRESH
  if ((cur + 1 < ${#SCENARIO[@]})); then
    IFS='|' read -r at _ <<<"${SCENARIO[cur + 1]}"
    ((at - t > 0 && at - t < wait_s)) && wait_s=$((at - t))
  fi
  if ((DURATION && DURATION - t < wait_s)); then wait_s=$((DURATION - t)); fi
  ((wait_s > 0)) || wait_s=1
  sleep "$wait_s"
done
echo
log "DEMO_DURATION=$DURATION reached"
