#!/usr/bin/env bash
# Smoke test of a running end-to-end cluster (after cluster-up.sh): control plane,
# scheduling onto the fake node, CRDs, Prometheus scraping the traffic generator,
# PrometheusRule -> Prometheus rule sync, ownerReference garbage collection, and Argo
# Rollouts' controller (canary steps, spec.paused, status.abort and retry).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
[[ -s $DIR/env ]] || die "no cluster in $DIR: run cluster-up.sh first"
. "$DIR/env"

t0=$SECONDS
ns=default
id=smoke-$$-$RANDOM
pass() { log "ok: $*"; }
cleanup() {
  k delete deployment "$id" -n "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete prometheusrule "$id" "$id-bad" -n "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete configmap "$id-owner" "$id-dependent" -n "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete rollout "$id-canary" "$id-abort" -n "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete namespace "$id" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# poll SECONDS WHAT CMD...
poll() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.5
  done
}
# prom_query EXPR: prints the result vector as "labels value" lines.
prom_query() {
  python3 - "$PROMETHEUS_URL" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
r = json.load(urllib.request.urlopen(url, timeout=5))
for s in r["data"]["result"]:
    print(json.dumps(s["metric"], sort_keys=True), s["value"][1])
EOF
}
target_up() { [[ $(prom_query 'up{job="traffic"}' | awk '{print $NF}') == 1 ]]; }
rule_group_loaded() { # FILE-SUFFIX GROUP [absent]
  python3 - "$PROMETHEUS_URL" "$@" <<'EOF'
import json, sys, urllib.request
url, suffix, group = sys.argv[1], sys.argv[2], sys.argv[3]
want_absent = len(sys.argv) > 4
groups = json.load(urllib.request.urlopen(url + "/api/v1/rules", timeout=5))["data"]["groups"]
found = any(g["name"] == group and g["file"].endswith("/" + suffix) for g in groups)
sys.exit(0 if found != want_absent else 1)
EOF
}

# 1. API server health and version.
[[ $(k get --raw /readyz) == ok ]] || die "/readyz is not ok"
pass "/readyz"
server=$(k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
[[ $server == v1.34.* ]] || die "server version $server, expected v1.34.x"
pass "server version $server"

# 2. A Deployment becomes Available on the fake node.
k create deployment "$id" -n "$ns" --image=registry.invalid/smoke:1 --replicas=1 >/dev/null
k wait -n "$ns" --for=condition=Available "deployment/$id" --timeout=60s >/dev/null
node=$(k get pods -n "$ns" -l "app=$id" -o jsonpath='{.items[0].spec.nodeName}')
[[ $node == "$E2E_NODE_NAME" ]] || die "pod scheduled on '$node', expected $E2E_NODE_NAME"
pass "deployment $id Available on $node"

# 3. CRDs: PrometheusRule, Argo Rollouts' and the repository's own.
k get crd prometheusrules.monitoring.coreos.com rollouts.argoproj.io analysisruns.argoproj.io \
  analysistemplates.argoproj.io clusteranalysistemplates.argoproj.io experiments.argoproj.io >/dev/null
if [[ -d $repo_root/crds ]] && [[ -n $(find "$repo_root/crds" -type f \( -name '*.yaml' -o -name '*.yml' \)) ]]; then
  k get -R -f "$repo_root/crds" -o name >/dev/null
fi
pass "CRDs present: $(k get crd -o name | sed 's|.*/||' | tr '\n' ' ')"

# 4. Prometheus is ready and scrapes the traffic generator.
http GET "$PROMETHEUS_URL/-/ready" >/dev/null
poll 30 "up{job=\"traffic\"} == 1" target_up
n=$(prom_query 'count(http_requests_total{job="traffic"})' | awk '{print $NF}')
[[ ${n:-0} -ge 2 ]] || die "expected http_requests_total series, got '${n:-none}'"
http GET "$TRAFFIC_URL/control" >/dev/null
pass "Prometheus ready, traffic target up ($n http_requests_total series)"

# 5. A PrometheusRule shows up as a rule group in Prometheus; an invalid one is skipped.
k apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: $id
spec:
  groups:
  - name: $id
    rules:
    - record: smoke:http_requests:rate1m
      expr: sum by (service) (rate(http_requests_total[1m]))
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: $id-bad
spec:
  groups:
  - name: $id-bad
    rules:
    - record: smoke:broken
      expr: sum(
EOF
poll 30 "rule group $id loaded in Prometheus" rule_group_loaded "$ns-$id.yaml" "$id"
pass "PrometheusRule $ns/$id loaded as rule group after $((SECONDS - t0))s of smoke"
poll 10 "rule-sync to skip $ns/$id-bad" grep -q "skipped $ns-$id-bad.yaml" "$DIR/logs/rule-sync.log"
rule_group_loaded "$ns-$id-bad.yaml" "$id-bad" absent || die "invalid rule group was loaded"
http GET "$PROMETHEUS_URL/-/ready" >/dev/null
pass "invalid PrometheusRule skipped, Prometheus unaffected"
k delete prometheusrule -n "$ns" "$id" "$id-bad" >/dev/null
poll 30 "rule group $id to disappear" rule_group_loaded "$ns-$id.yaml" "$id" absent
pass "deleted PrometheusRule removed from Prometheus"

# 6. Garbage collection of a dependent whose owner is deleted.
k create configmap "$id-owner" -n "$ns" >/dev/null
uid=$(k get configmap "$id-owner" -n "$ns" -o jsonpath='{.metadata.uid}')
k apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: $id-dependent
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: $id-owner
    uid: $uid
EOF
k delete configmap "$id-owner" -n "$ns" >/dev/null
k wait -n "$ns" --for=delete "configmap/$id-dependent" --timeout=60s >/dev/null
pass "dependent ConfigMap garbage-collected"

k delete deployment "$id" -n "$ns" >/dev/null

# 7. A namespace with a running Deployment finishes terminating.
k create namespace "$id" >/dev/null
k create deployment "$id" -n "$id" --image=registry.invalid/smoke:1 --replicas=2 >/dev/null
k wait -n "$id" --for=condition=Available "deployment/$id" --timeout=60s >/dev/null
k delete namespace "$id" --wait=false >/dev/null  # waited for after the Rollouts below

# 8. Argo Rollouts: canary Rollouts on kwok pods move through their steps; spec.paused holds
#    an update, status.abort (status subresource) scales the canary back to the stable
#    ReplicaSet, status.abort=false retries, and abort on a fully promoted Rollout is dropped.
ro() { k get rollout "$1" -n "$ns" -o jsonpath="$2"; }
ro_is() { [[ $(ro "$1" "$2") == "$3" ]]; } # NAME JSONPATH VALUE
# rs_replicas HASH: spec.replicas/status.readyReplicas of the Rollout's ReplicaSet with that pod hash.
rs_replicas() {
  k get rs -n "$ns" -l "rollouts-pod-template-hash=$1" -o jsonpath='{.items[0].spec.replicas}/{.items[0].status.readyReplicas}'
}
rs_is() { [[ $(rs_replicas "$1") == "$2" ]]; }
# Healthy, fully promoted (stableRS == currentPodHash) and status up to date with the spec.
ro_healthy() {
  [[ $(ro "$1" '{.status.phase} {.status.observedGeneration} {.status.stableRS}') == \
     "Healthy $(ro "$1" '{.metadata.generation} {.status.currentPodHash}')" ]]
}
set_image() { # NAME IMAGE
  k patch rollout "$1" -n "$ns" --type=merge \
    -p "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"$2\"}]}}}}" >/dev/null
}
rollout_yaml() { # NAME STEPS
  cat <<EOF
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: $1
spec:
  replicas: 2
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      labels: {app: $1}
    spec:
      containers:
      - name: app
        image: registry.invalid/smoke:1
  strategy:
    canary:
      steps: $2
---
EOF
}
{
  rollout_yaml "$id-canary" '[{setWeight: 50}, {pause: {duration: 3s}}, {setWeight: 100}]'
  rollout_yaml "$id-abort" '[{setWeight: 50}, {pause: {}}]'
} | k apply -n "$ns" -f - >/dev/null
poll 60 "rollout $id-canary Healthy" ro_healthy "$id-canary"
poll 60 "rollout $id-abort Healthy" ro_healthy "$id-abort"
pass "canary Rollouts Healthy on kwok pods"

# spec.paused before an update: the new ReplicaSet is created but stays at 0 replicas, step 0.
stable=$(ro "$id-canary" '{.status.stableRS}')
k patch rollout "$id-canary" -n "$ns" --type=merge -p '{"spec":{"paused":true}}' >/dev/null
set_image "$id-canary" registry.invalid/smoke:2
gen=$(ro "$id-canary" '{.metadata.generation}')
poll 30 "rollout $id-canary to observe generation $gen" ro_is "$id-canary" '{.status.observedGeneration}' "$gen"
sleep 2
new=$(ro "$id-canary" '{.status.currentPodHash}')
[[ $new != "$stable" ]] || die "currentPodHash did not change after the image change"
got=$(ro "$id-canary" '{.status.phase}/{.status.message}/{.status.currentStepIndex}/{.status.pauseConditions}')
[[ $got == "Paused/manually paused/0/" ]] || die "paused rollout: phase/message/step/pauseConditions = $got"
rs_is "$new" "0/" || die "paused rollout scaled its new ReplicaSet: $(rs_replicas "$new")"
pass "spec.paused holds an update at step 0 (phase Paused, 'manually paused', new ReplicaSet at 0)"
# Unpaused: setWeight 50 (1 new + 1 stable pod), the 3 s pause step, setWeight 100.
k patch rollout "$id-canary" -n "$ns" --type=merge -p '{"spec":{"paused":false}}' >/dev/null
steps_seen=" "
deadline=$((SECONDS + 60))
until ro_healthy "$id-canary"; do
  ((SECONDS < deadline)) || die "rollout $id-canary did not finish its steps (currentStepIndex seen:$steps_seen)"
  s=$(ro "$id-canary" '{.status.currentStepIndex}')
  [[ $steps_seen == *" $s "* ]] || steps_seen+="$s "
  sleep 0.5
done
[[ $steps_seen == *" 1 "* ]] || die "never saw the pause step (currentStepIndex values:$steps_seen)"
[[ $(ro "$id-canary" '{.status.stableRS}/{.status.currentStepIndex}') == "$new/3" ]] || die "rollout $id-canary not promoted to $new"
rs_is "$new" 2/2 || die "new ReplicaSet $new is $(rs_replicas "$new"), expected 2/2"
pass "unpaused canary went through its steps (currentStepIndex seen: $(xargs <<<"$steps_seen")) and promoted $new"

# status.abort mid-update (at the indefinite pause step): canary scaled to 0, stable back to 2.
stable=$(ro "$id-abort" '{.status.stableRS}')
set_image "$id-abort" registry.invalid/smoke:2
poll 30 "rollout $id-abort at its pause step" ro_is "$id-abort" \
  '{.status.phase}/{.status.currentStepIndex}/{.status.pauseConditions[0].reason}' Paused/1/CanaryPauseStep
new=$(ro "$id-abort" '{.status.currentPodHash}')
rs_is "$new" 1/1 || die "canary ReplicaSet at setWeight 50 is $(rs_replicas "$new"), expected 1/1"
k patch rollout "$id-abort" -n "$ns" --subresource=status --type=merge -p '{"status":{"abort":true}}' >/dev/null
poll 30 "rollout $id-abort Degraded" ro_is "$id-abort" '{.status.phase}/{.status.abort}' Degraded/true
poll 30 "aborted canary to scale down" rs_is "$new" 0/
poll 30 "stable ReplicaSet back to 2" rs_is "$stable" 2/2
got=$(ro "$id-abort" '{.status.currentStepIndex}/{.status.currentPodHash}/{.status.stableRS}/{.status.conditions[?(@.type=="Progressing")].reason}')
[[ $got == "0/$new/$stable/RolloutAborted" ]] || die "aborted rollout: step/currentPodHash/stableRS/Progressing = $got"
pass "status.abort rolled back to $stable (phase Degraded, Progressing RolloutAborted)"
k patch rollout "$id-abort" -n "$ns" --subresource=status --type=merge -p '{"status":{"abort":false}}' >/dev/null
poll 30 "retried rollout back at its pause step" ro_is "$id-abort" \
  '{.status.phase}/{.status.currentStepIndex}/{.status.pauseConditions[0].reason}' Paused/1/CanaryPauseStep
poll 30 "retried canary ReplicaSet at 1/1" rs_is "$new" 1/1
pass "status.abort=false retried the update from step 0 (at the pause step again)"

# status.abort on a fully promoted Rollout: the controller drops it.
k patch rollout "$id-canary" -n "$ns" --subresource=status --type=merge -p '{"status":{"abort":true}}' >/dev/null
poll 30 "status.abort to be cleared on fully promoted $id-canary" ro_is "$id-canary" '{.status.abort}' ""
ro_healthy "$id-canary" || die "fully promoted rollout not Healthy after abort: $(ro "$id-canary" '{.status.phase}')"
http GET "$ARGO_ROLLOUTS_METRICS_URL" | grep -q "^rollout_info{name=\"$id-canary\"" ||
  die "no rollout_info for $id-canary at $ARGO_ROLLOUTS_METRICS_URL"
pass "abort on a fully promoted Rollout is dropped (still Healthy); controller metrics served"
k delete rollout "$id-canary" "$id-abort" -n "$ns" >/dev/null

k wait --for=delete "namespace/$id" --timeout=90s >/dev/null
pass "namespace $id with a Deployment deleted"

log "smoke passed in $((SECONDS - t0))s"
