# Shared by cluster-up.sh, cluster-down.sh and smoke.sh (sourced, not run).
# shellcheck shell=bash
e2e_scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
e2e_root=$(cd "$e2e_scripts/.." && pwd)
repo_root=$(cd "$e2e_root/.." && pwd)
. "$e2e_scripts/versions.sh"

# go is only needed to locate the modules holding the upstream CRDs and kwok stages.
if ! command -v go >/dev/null; then
  for d in /usr/local/go/bin "$SLO_WARDEN_CACHE"/go-go*/bin; do
    if [[ -x $d/go ]]; then PATH=$d:$PATH; break; fi
  done
fi

DIR=$(realpath -m "${SLO_WARDEN_E2E_DIR:-/tmp/slo-warden-e2e}")
K8S_BIN=$SLO_WARDEN_CACHE/kubernetes-$K8S_VERSION/bin
ETCD=$SLO_WARDEN_CACHE/etcd-$ETCD_VERSION/bin/etcd
KWOK=$SLO_WARDEN_CACHE/kwok-$KWOK_VERSION/bin/kwok
ARGO_ROLLOUTS_CONTROLLER=$SLO_WARDEN_CACHE/argo-rollouts-$ARGO_ROLLOUTS_VERSION/bin/rollouts-controller
THANOS=$SLO_WARDEN_CACHE/thanos-$THANOS_VERSION/bin/thanos
KUBECTL=$K8S_BIN/kubectl
HELM=$SLO_WARDEN_CACHE/helm-$HELM_VERSION/bin/helm
PROMETHEUS=${PROMETHEUS_BIN:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL_BIN:-/usr/bin/promtool}

# Components in start order; cluster-down stops them in reverse. A state dir started with
# only the control plane (E2E_CONTROL_PLANE_ONLY=1), or only the suite's own components against
# a cluster of someone else's (E2E_KUBECONFIG), lists what it runs in $DIR/components.
CONTROL_PLANE=(etcd kube-apiserver kube-controller-manager kube-scheduler)
SUITE_COMPONENTS=(kwok argo-rollouts traffic prometheus thanos-sidecar thanos-query rule-sync)
COMPONENTS=("${CONTROL_PLANE[@]}" "${SUITE_COMPONENTS[@]}")
if [[ -s $DIR/components ]]; then
  read -r -a COMPONENTS <"$DIR/components"
fi

log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Pid of a component we started, only if that process is still ours: every process
# is launched with SLO_WARDEN_E2E_DIR=$DIR in its environment, which guards against
# pid reuse.
component_pid() {
  local f="$DIR/pids/$1.pid" pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/environ ]] || return 1
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SLO_WARDEN_E2E_DIR=$DIR" || return 1
  echo "$pid"
}

# http METHOD URL [BODY]: prints the body; fails on connection errors and non-2xx.
http() {
  python3 - "$@" <<'EOF'
import sys, urllib.request, ssl
method, url = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else (b"" if method == "POST" else None)
req = urllib.request.Request(url, data=data, method=method)
if data:
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
ctx = ssl._create_unverified_context()  # only for the components' self-signed health ports
try:
    with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    sys.stderr.write("%s %s: %s\n" % (method, url, e))
    sys.exit(1)
EOF
}

k() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" "$@"; }
