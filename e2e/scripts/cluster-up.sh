#!/usr/bin/env bash
# Starts a real local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok with one fake node), installs the CRDs, and starts the Argo Rollouts
# controller, Prometheus, the traffic generator and the PrometheusRule -> Prometheus rule sync.
# Everything listens on 127.0.0.1 only (except the Argo Rollouts controller's metrics and
# health servers, which bind 0.0.0.0), on free ports picked at start.
#
# State (certificates, data, logs, pids) lives in ${SLO_WARDEN_E2E_DIR:-/tmp/slo-warden-e2e};
# `source $SLO_WARDEN_E2E_DIR/env` afterwards. Stop with cluster-down.sh.
#
# Two halves, each of which can run alone:
#   E2E_KUBECONFIG=FILE        no control plane of its own: the suite's components (the CRDs, kwok
#                              and its fake node, Argo Rollouts, Prometheus, Thanos, the traffic
#                              generator, rule sync) run on this machine against the cluster of
#                              FILE's current context, e.g. kind's. cluster-down.sh stops them and
#                              deletes the fake node.
#   E2E_CONTROL_PLANE_ONLY=1   only etcd, kube-apiserver, kube-controller-manager and
#                              kube-scheduler: a bare cluster, as kind gives one, to run the other
#                              half against (how the existing-cluster mode is tested here).
#
# Tunables (environment):
#   E2E_SCRAPE_INTERVAL / E2E_EVAL_INTERVAL   Prometheus intervals (default 5s / 5s)
#   E2E_TRAFFIC_SERVICES                      services of the traffic generator (checkout,search)
#   E2E_TRAFFIC_RPS                           initial requests/s per service (10)
#   E2E_RULE_SYNC_INTERVAL                    seconds between rule syncs (2)
#   E2E_KCM_CONTROLLERS                       kube-controller-manager --controllers
#   E2E_TIMEOUT                               seconds to wait for each component (120)
#   E2E_RULE_SYNC=0                           no rule sync (Prometheus evaluates no PrometheusRules)
#   E2E_EXTRA_SCRAPE_CONFIGS=FILE             scrape jobs appended to Prometheus' scrape_configs (e.g. bench/scale's exporter)
#   E2E_AUDIT=1                               kube-apiserver audit log of every write ($DIR/logs/audit.log)
#   E2E_AUDIT_BODIES=1                        with E2E_AUDIT: the bodies of status writes and Events too
#   E2E_KEEP_ON_FAILURE=1                     leave processes running when start-up fails
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

t0=$(date +%s.%N)
SCRAPE_INTERVAL=${E2E_SCRAPE_INTERVAL:-5s}
EVAL_INTERVAL=${E2E_EVAL_INTERVAL:-5s}
TRAFFIC_SERVICES=${E2E_TRAFFIC_SERVICES:-checkout,search}
TRAFFIC_RPS=${E2E_TRAFFIC_RPS:-10}
RULE_SYNC_INTERVAL=${E2E_RULE_SYNC_INTERVAL:-2}
KCM_CONTROLLERS=${E2E_KCM_CONTROLLERS:-garbage-collector-controller,deployment-controller,replicaset-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller}
TIMEOUT=${E2E_TIMEOUT:-120}
RULE_SYNC=${E2E_RULE_SYNC:-1}
EXTRA_SCRAPE_CONFIGS=${E2E_EXTRA_SCRAPE_CONFIGS:-}
AUDIT=${E2E_AUDIT:-0}
NODE_NAME=kwok-node-0
ATTACH_TO=${E2E_KUBECONFIG:-}
control_plane=1 suite=1
if [[ -n $ATTACH_TO ]]; then
  [[ ${E2E_CONTROL_PLANE_ONLY:-0} != 1 ]] || die "E2E_KUBECONFIG and E2E_CONTROL_PLANE_ONLY=1 exclude each other"
  [[ -r $ATTACH_TO ]] || die "E2E_KUBECONFIG=$ATTACH_TO is not readable"
  ATTACH_TO=$(realpath "$ATTACH_TO")
  control_plane=0
elif [[ ${E2E_CONTROL_PLANE_ONLY:-0} == 1 ]]; then
  suite=0
fi
wanted=()
((control_plane)) && wanted+=("${CONTROL_PLANE[@]}")
((suite)) && wanted+=("${SUITE_COMPONENTS[@]}")

# Only what the wanted half starts (a bare control plane needs no Prometheus; attaching to
# another cluster needs no etcd).
binaries=("$KUBECTL") commands=(python3)
((control_plane)) && binaries+=("$ETCD" "$K8S_BIN/kube-apiserver" "$K8S_BIN/kube-controller-manager" "$K8S_BIN/kube-scheduler") && commands+=(openssl)
((suite)) && binaries+=("$KWOK" "$ARGO_ROLLOUTS_CONTROLLER" "$THANOS") && commands+=("$PROMETHEUS" "$PROMTOOL" go)
for b in "${binaries[@]}"; do
  [[ -x $b ]] || die "$b is missing: run e2e/scripts/setup.sh (or build-tools.sh) first"
done
for b in "${commands[@]}"; do
  command -v "$b" >/dev/null || die "$b is missing: run e2e/scripts/setup.sh first"
done

# Already (partly) running from this state dir?
running=()
for c in "${COMPONENTS[@]}"; do component_pid "$c" >/dev/null && running+=("$c"); done
if ((${#running[@]} == ${#COMPONENTS[@]})) && [[ -s $DIR/env && "${COMPONENTS[*]}" == "${wanted[*]}" ]]; then
  log "already running in $DIR (cluster-down.sh to stop)"
  cat "$DIR/env"
  exit 0
elif ((${#running[@]})); then
  log "partly running (${running[*]}): stopping first"
  "$e2e_scripts/cluster-down.sh"
fi
if [[ -d $DIR && -n $(ls -A "$DIR") && ! -d $DIR/pids && ! -d $DIR/logs ]]; then
  die "$DIR exists and is not an e2e state dir; set SLO_WARDEN_E2E_DIR elsewhere"
fi
rm -rf "$DIR"
mkdir -p "$DIR"/{logs,pids,pki,kwok,prometheus/rules,prometheus/data,prometheus/targets}
mkdir -m 700 "$DIR/etcd"
echo "${wanted[*]}" >"$DIR/components"
COMPONENTS=("${wanted[@]}")

ok=0
fail_reason=
die() { fail_reason=$*; log "ERROR: $*"; exit 1; }
on_exit() {
  ((ok)) && return
  log "start-up failed; last lines of the component logs:"
  for f in "$DIR"/logs/*.log; do
    [[ -e $f ]] || continue
    printf '==> %s <==\n' "$f" >&2; tail -n 25 "$f" >&2
  done
  if [[ ${E2E_KEEP_ON_FAILURE:-0} == 1 ]]; then
    log "processes left running (E2E_KEEP_ON_FAILURE=1); logs in $DIR/logs"
  else
    KEEP_LOGS=1 "$e2e_scripts/cluster-down.sh" || true
  fi
  log "cluster-up failed: ${fail_reason:-see above}"
}
trap on_exit EXIT

# start NAME CMD...: own session/process group, output to logs/NAME.log, pid to pids/NAME.pid.
start() {
  local name=$1; shift
  local pidfile="$DIR/pids/$name.pid"
  SLO_WARDEN_E2E_DIR=$DIR setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >>"$DIR/logs/$name.log" 2>&1 &
  local i
  for ((i = 0; i < 100; i++)); do [[ -s $pidfile ]] && return; sleep 0.02; done
  die "$name did not start"
}
started=()
launch() { start "$@"; started+=("$1"); }

# wait_for SECONDS WHAT CMD...: polls CMD; fails early when a started component died.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout)) c
  until "$@" >/dev/null 2>&1; do
    for c in "${started[@]}"; do
      component_pid "$c" >/dev/null || die "$c exited while waiting for $what (see $DIR/logs/$c.log)"
    done
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
    sleep 0.25
  done
}

read -r P_ETCD P_PEER P_API P_KCM P_SCHED P_KWOK P_PROM P_TRAFFIC P_ARGO_METRICS P_ARGO_HEALTHZ \
  P_SIDECAR_GRPC P_SIDECAR_HTTP P_THANOS_HTTP P_THANOS_GRPC < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(14)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

# ---- etcd -------------------------------------------------------------------------
((control_plane)) && launch etcd "$ETCD" --name e2e --data-dir "$DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
  --listen-peer-urls "http://127.0.0.1:$P_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_PEER" \
  --initial-cluster "e2e=http://127.0.0.1:$P_PEER" --unsafe-no-fsync --log-level warn

# ---- traffic generator and Prometheus (independent of Kubernetes) ---------------
if ((suite)); then
launch traffic python3 "$e2e_root/traffic/traffic.py" --port "$P_TRAFFIC" \
  --services "$TRAFFIC_SERVICES" --rps "$TRAFFIC_RPS" --kubectl "$KUBECTL" --kubeconfig "$DIR/kubeconfig"
cat >"$DIR/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: $SCRAPE_INTERVAL
  evaluation_interval: $EVAL_INTERVAL
  # Thanos' sidecar needs them; through the Querier they are the tenant (cluster="e2e").
  external_labels:
    cluster: e2e
rule_files:
  - $DIR/prometheus/rules/*.yaml
scrape_configs:
  - job_name: traffic
    static_configs:
      - targets: ['127.0.0.1:$P_TRAFFIC']
  # Operators a test wants scraped (tests/e2e/dashboards.rs): it writes their /metrics address
  # to targets/<name>.json. The job is named as the chart's ServiceMonitor names it.
  - job_name: slo-warden
    file_sd_configs:
      - files: ['$DIR/prometheus/targets/*.json']
        refresh_interval: 5s
EOF
if [[ -n $EXTRA_SCRAPE_CONFIGS ]]; then
  cat "$EXTRA_SCRAPE_CONFIGS" >>"$DIR/prometheus/prometheus.yml"
fi
launch prometheus "$PROMETHEUS" --config.file="$DIR/prometheus/prometheus.yml" \
  --storage.tsdb.path="$DIR/prometheus/data" --storage.tsdb.retention.time=1d \
  --web.listen-address="127.0.0.1:$P_PROM" --web.enable-lifecycle --web.enable-admin-api
# Thanos in front of it, as users who outgrow one Prometheus run it: a sidecar, and a Querier
# that enforces tenancy on the `cluster` external label from the X-Scope-OrgID header.
launch thanos-sidecar "$THANOS" sidecar --prometheus.url="http://127.0.0.1:$P_PROM" \
  --tsdb.path="$DIR/prometheus/data" --grpc-address="127.0.0.1:$P_SIDECAR_GRPC" \
  --http-address="127.0.0.1:$P_SIDECAR_HTTP" --prometheus.get_config_interval=1s \
  --http-grace-period=0s --grpc-grace-period=0s --log.level=warn
launch thanos-query "$THANOS" query --endpoint="127.0.0.1:$P_SIDECAR_GRPC" \
  --http-address="127.0.0.1:$P_THANOS_HTTP" --grpc-address="127.0.0.1:$P_THANOS_GRPC" \
  --query.enforce-tenancy --query.tenant-label-name=cluster --query.tenant-header=X-Scope-OrgID \
  --http-grace-period=0s --grpc-grace-period=0s --log.level=warn
fi

# ---- certificates ------------------------------------------------------------------
if ((control_plane)); then
pki=$DIR/pki
(
  cd "$pki"
  ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  serial() { echo "0x$(openssl rand -hex 16)"; }
  ec ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=slo-warden-e2e-ca" -days 3650 -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
  sign() { # name subject extensions
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "$(serial)" -days 365 \
      -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
  }
  sign apiserver "/CN=kube-apiserver" \
    "$(printf 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.0.0.1')"
  sign admin "/O=system:masters/CN=slo-warden-e2e-admin" "extendedKeyUsage=clientAuth"
  sign front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub
)
b64() { base64 -w0 <"$1"; }
cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: slo-warden-e2e
  cluster:
    server: https://127.0.0.1:$P_API
    certificate-authority-data: $(b64 "$pki/ca.crt")
users:
- name: slo-warden-e2e-admin
  user:
    client-certificate-data: $(b64 "$pki/admin.crt")
    client-key-data: $(b64 "$pki/admin.key")
contexts:
- name: slo-warden-e2e
  context:
    cluster: slo-warden-e2e
    user: slo-warden-e2e-admin
    namespace: default
current-context: slo-warden-e2e
EOF
chmod 600 "$DIR/kubeconfig"

wait_for 60 "etcd" http GET "http://127.0.0.1:$P_ETCD/health"

# ---- kube-apiserver --------------------------------------------------------------
# TaintNodesByCondition is off: it taints new nodes not-ready and only the node
# lifecycle controller (not run here) would lift the taint. All other default
# admission plugins (webhooks, ValidatingAdmissionPolicy, ServiceAccount, ...) stay on.
# Writes only (who changed what, never the bodies): what a benchmark counts.
audit_flags=()
if [[ $AUDIT == 1 ]]; then
  # E2E_AUDIT_BODIES=1: the bodies of status writes and Events too, to see what a write changed.
  bodies=
  if [[ ${E2E_AUDIT_BODIES:-0} == 1 ]]; then
    bodies='  - level: Request
    verbs: [create, update, patch]
    resources:
      - {group: slo.warden.dev, resources: [servicelevelobjectives/status, errorbudgetpolicies/status]}
      - {group: "", resources: [events]}
      - {group: events.k8s.io, resources: [events]}'
  fi
  cat >"$DIR/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
$bodies
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
EOF
  audit_flags=(--audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/logs/audit.log"
    --audit-log-format=json --audit-log-maxsize=0 --audit-log-mode=batch)
fi
launch kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$P_ETCD" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$P_API" \
  --cert-dir="$pki" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --authorization-mode=RBAC --allow-privileged=true \
  --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
  --service-account-issuer="https://127.0.0.1:$P_API" \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --disable-admission-plugins=TaintNodesByCondition \
  --requestheader-client-ca-file="$pki/ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
  --profiling=false "${audit_flags[@]}"
wait_for "$TIMEOUT" "kube-apiserver /readyz" k get --raw /readyz
else
  # The cluster of E2E_KUBECONFIG, its current context, self-contained (certificates inline).
  "$KUBECTL" --kubeconfig "$ATTACH_TO" config view --minify --flatten >"$DIR/kubeconfig"
  chmod 600 "$DIR/kubeconfig"
  wait_for "$TIMEOUT" "the API server of $ATTACH_TO /readyz" k get --raw /readyz
fi

# ---- CRDs (before the controller-manager, so its garbage collector knows them) ----
if ((suite)); then
moddir() { (cd "$DIR" && GOFLAGS= go mod download -json "$1") | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p'; }
crd_files=()
if [[ -d $repo_root/crds ]]; then
  while IFS= read -r f; do crd_files+=("$f"); done < <(find "$repo_root/crds" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
fi
po_dir=$(moddir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
argo_dir=$(moddir "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION")
kwok_dir=$(moddir "sigs.k8s.io/kwok@$KWOK_VERSION")
flagger_dir=$(moddir "github.com/fluxcd/flagger@$FLAGGER_VERSION")
[[ -n $po_dir && -n $argo_dir && -n $kwok_dir && -n $flagger_dir ]] || die "could not resolve Go module directories (run setup.sh)"
crd_files+=("$po_dir/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml")
# All of Argo Rollouts' CRDs: its controller watches Rollouts, AnalysisRuns, AnalysisTemplates,
# ClusterAnalysisTemplates and Experiments.
for f in "$argo_dir"/manifests/crds/*-crd.yaml; do crd_files+=("$f"); done
# Flagger's CRDs (Canary, MetricTemplate, AlertProvider), with no Flagger controller.
crd_files+=("$flagger_dir/artifacts/flagger/crd.yaml")
apply_args=()
for f in "${crd_files[@]}"; do apply_args+=(-f "$f"); done
k apply --server-side --field-manager=slo-warden-e2e "${apply_args[@]}" >"$DIR/logs/crds.log"
# A CRD created a moment ago may have no status yet, which `kubectl wait` reports as an error
# rather than waiting on: ask again until every one is Established.
wait_for "$TIMEOUT" "the CRDs to be Established" k wait --for=condition=Established crd --all --timeout=5s
k get crd -o name >>"$DIR/logs/crds.log"
log "CRDs established: $(k get crd -o name | sed 's|.*/||' | tr '\n' ' ')"
fi

# ---- controllers, scheduler, kwok --------------------------------------------------
kc=$DIR/kubeconfig
if ((control_plane)); then
launch kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
  --leader-elect=false --use-service-account-credentials=false \
  --controllers="$KCM_CONTROLLERS" \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --bind-address=127.0.0.1 --secure-port="$P_KCM" --cert-dir="$DIR/pki/kcm" \
  --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics
launch kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port="$P_SCHED" --cert-dir="$DIR/pki/scheduler" \
  --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics
fi
if ((suite)); then
# kwok's stages (node: initialize + heartbeat; pod: ready, complete, delete) from its module.
st=$kwok_dir/kustomize/stage
for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  cat "$st/$f"; printf '\n---\n'
done >"$DIR/kwok/kwok.yaml"
launch kwok "$KWOK" --config="$DIR/kwok/kwok.yaml" --kubeconfig="$kc" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --server-address="127.0.0.1:$P_KWOK" --node-ip=127.0.0.1 --cidr=10.244.0.0/16
# Argo Rollouts' controller, all namespaces (its servers bind 0.0.0.0: no bind-address flag).
launch argo-rollouts "$ARGO_ROLLOUTS_CONTROLLER" --kubeconfig="$kc" --leader-elect=false \
  --metricsport="$P_ARGO_METRICS" --healthzPort="$P_ARGO_HEALTHZ" --logformat=text --loglevel=info
if [[ $RULE_SYNC == 1 ]]; then
  launch rule-sync python3 "$e2e_scripts/rule-sync.py" --kubectl "$KUBECTL" --kubeconfig "$kc" \
    --promtool "$PROMTOOL" --rule-dir "$DIR/prometheus/rules" \
    --prometheus-url "http://127.0.0.1:$P_PROM" --interval "$RULE_SYNC_INTERVAL"
fi

k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: $NODE_NAME
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
EOF
fi

if ((control_plane)); then
  wait_for "$TIMEOUT" "kube-controller-manager /healthz" http GET "https://127.0.0.1:$P_KCM/healthz"
  wait_for "$TIMEOUT" "kube-scheduler /healthz" http GET "https://127.0.0.1:$P_SCHED/healthz"
fi
if ((suite)); then
# The health port answers as soon as the process starts; workers run once the caches synced.
wait_for "$TIMEOUT" "argo-rollouts /healthz" http GET "http://127.0.0.1:$P_ARGO_HEALTHZ/healthz"
wait_for "$TIMEOUT" "argo-rollouts rollout workers" grep -q "Started rollout workers" "$DIR/logs/argo-rollouts.log"
wait_for "$TIMEOUT" "node $NODE_NAME Ready" k wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
wait_for "$TIMEOUT" "traffic generator" http GET "http://127.0.0.1:$P_TRAFFIC/healthz"
wait_for "$TIMEOUT" "Prometheus /-/ready" http GET "http://127.0.0.1:$P_PROM/-/ready"
wait_for "$TIMEOUT" "Thanos Querier /-/ready" http GET "http://127.0.0.1:$P_THANOS_HTTP/-/ready"
fi
wait_for "$TIMEOUT" "serviceaccount default/default" k get serviceaccount default -n default

envfile=$DIR/env
api_url=$(k config view --minify -o 'jsonpath={.clusters[0].cluster.server}')
{
  echo "# slo-warden end-to-end cluster (cluster-up.sh $(date -u +%FT%TZ)); source this file."
  printf 'export %s=%q\n' \
    SLO_WARDEN_E2E_DIR "$DIR" \
    KUBECONFIG "$DIR/kubeconfig" \
    KUBECTL "$KUBECTL" \
    HELM "$HELM" \
    KUBE_APISERVER_URL "$api_url"
  if ((control_plane)); then
    printf 'export %s=%q\n' ETCD_URL "http://127.0.0.1:$P_ETCD"
  fi
  if ((suite)); then
    printf 'export %s=%q\n' \
      PROMETHEUS_URL "http://127.0.0.1:$P_PROM" \
      PROMETHEUS_BIN "$PROMETHEUS" \
      THANOS_QUERY_URL "http://127.0.0.1:$P_THANOS_HTTP" \
      PROMETHEUS_RULE_DIR "$DIR/prometheus/rules" \
      PROMETHEUS_TARGETS_DIR "$DIR/prometheus/targets" \
      TRAFFIC_URL "http://127.0.0.1:$P_TRAFFIC" \
      TRAFFIC_SERVICES "$TRAFFIC_SERVICES" \
      E2E_NODE_NAME "$NODE_NAME" \
      E2E_SCRAPE_INTERVAL "$SCRAPE_INTERVAL" \
      E2E_EVAL_INTERVAL "$EVAL_INTERVAL" \
      ARGO_ROLLOUTS_METRICS_URL "http://127.0.0.1:$P_ARGO_METRICS/metrics"
  fi
} >"$envfile"
ok=1
secs=$(python3 -c "import sys,time; print('%.1f' % (time.time() - float(sys.argv[1])))" "$t0")
log "cluster up in ${secs}s (state and logs in $DIR)"
what="the control plane and the suite's components"
((control_plane)) || what="the suite's components against $ATTACH_TO ($api_url)"
((suite)) || what="the control plane only"
log "started $what"
echo
echo "  source $envfile        # or: export KUBECONFIG=$DIR/kubeconfig"
echo "  kubectl:    $KUBECTL"
if ((control_plane)); then
  echo "  apiserver:  $api_url (Kubernetes $K8S_VERSION)"
else
  echo "  apiserver:  $api_url (of $ATTACH_TO)"
fi
if ((suite)); then
  cat <<EOF
  fake node:  $NODE_NAME (kwok)
  Prometheus: http://127.0.0.1:$P_PROM (rule dir $DIR/prometheus/rules, synced from PrometheusRules)
  traffic:    http://127.0.0.1:$P_TRAFFIC/control (services $TRAFFIC_SERVICES)
  argo:       rollouts-controller $ARGO_ROLLOUTS_VERSION, metrics http://127.0.0.1:$P_ARGO_METRICS/metrics
EOF
fi
echo "  stop:       SLO_WARDEN_E2E_DIR=$DIR e2e/scripts/cluster-down.sh"
echo
echo "KUBECONFIG=$DIR/kubeconfig"
