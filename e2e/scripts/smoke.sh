#!/usr/bin/env bash
# Smoke test of a running end-to-end cluster (after cluster-up.sh): control plane,
# scheduling onto the fake node, CRDs, Prometheus scraping the traffic generator,
# PrometheusRule -> Prometheus rule sync, and ownerReference garbage collection.
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

# 3. CRDs: PrometheusRule, Rollout and the repository's own.
k get crd prometheusrules.monitoring.coreos.com rollouts.argoproj.io >/dev/null
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
k delete namespace "$id" --wait=false >/dev/null
k wait --for=delete "namespace/$id" --timeout=90s >/dev/null
pass "namespace $id with a Deployment deleted"

log "smoke passed in $((SECONDS - t0))s"
