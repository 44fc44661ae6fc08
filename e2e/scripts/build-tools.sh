#!/usr/bin/env bash
# Builds the real control-plane binaries from Go modules and caches them outside the repo:
#   $SLO_WARDEN_CACHE/<component>-<version>/bin/...
# A component whose binaries are already cached is skipped, so a warm run takes seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
mkdir -p "$SLO_WARDEN_CACHE"

log() { printf '[build-tools] %s\n' "$*" >&2; }

# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from k8s.io/kubernetes.
# Upstream's go.mod replaces every staging module with ./staging/...; a wrapper module
# replaces each with the matching published v0.Y.Z instead.
build_kubernetes() {
  local out="$SLO_WARDEN_CACHE/kubernetes-$K8S_VERSION/bin"
  if [[ -x $out/kube-apiserver && -x $out/kube-controller-manager && -x $out/kube-scheduler && -x $out/kubectl ]]; then
    log "kubernetes $K8S_VERSION cached"; return
  fi
  log "building kubernetes $K8S_VERSION (cold: 10-25 min on 2 cores)"
  local work; work=$(mktemp -d)
  local gomod; gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local patch=${K8S_VERSION##*.}
  {
    echo "module slo-warden.local/kubernetes-build"
    grep -E '^(go|godebug) ' "$gomod"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk -v v="v0.$minor.$patch" '{print "replace " $1 " => " $1 " " v}'
  } >"$work/go.mod"
  local pkg=k8s.io/component-base/version
  local ld="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  mkdir -p "$out.tmp"
  (cd "$work" && go build -trimpath -ldflags "$ld" -o "$out.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$out"; mv "$out.tmp" "$out"; rm -rf "$work"
}

# etcd: the server module's main package, through a wrapper (its own go.mod has replaces).
build_etcd() {
  local out="$SLO_WARDEN_CACHE/etcd-$ETCD_VERSION/bin"
  if [[ -x $out/etcd ]]; then log "etcd $ETCD_VERSION cached"; return; fi
  log "building etcd $ETCD_VERSION"
  local work; work=$(mktemp -d)
  printf 'module slo-warden.local/etcd-build\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$work/go.mod"
  mkdir -p "$out.tmp"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$out"; mv "$out.tmp" "$out"; rm -rf "$work"
}

# A command of a module whose go.mod has replace directives (all onto published module
# versions), so `go install mod/cmd@version` refuses it: a wrapper module requires it and copies
# the replaces, with its go/godebug lines.
build_with_replaces() { # name version module package ldflags [tags]
  local name=$1 version=$2 mod=$3 pkg=$4 ld=$5 tags=${6:-}
  local work; work=$(mktemp -d)
  local gomod; gomod=$(cd "$work" && go mod download -json "$mod@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -s $gomod ]] || { log "cannot download $mod@$version"; return 1; }
  {
    echo "module slo-warden.local/$name-build"
    grep -E '^(go|godebug) ' "$gomod"
    echo "require $mod $version"
    # `replace X [v] => Y v` lines, single or in a block; local-path targets are dropped.
    awk '/^replace \($/ { inblock = 1; next }
         inblock && /^\)/ { inblock = 0; next }
         inblock && /=>/ { print "replace " $0; next }
         /^replace [^(]/ { print }' "$gomod" | awk '$NF !~ /^v/ { next } { $1 = $1; print }'
  } >"$work/go.mod"
  local out="$SLO_WARDEN_CACHE/$name-$version/bin"
  mkdir -p "$out.tmp"
  (cd "$work" && go build -trimpath ${tags:+-tags "$tags"} -ldflags "$ld" -o "$out.tmp/" "$pkg")
  rm -rf "$out"; mv "$out.tmp" "$out"; rm -rf "$work"
}

# Argo Rollouts' controller (cmd/rollouts-controller).
build_argo_rollouts() {
  local out="$SLO_WARDEN_CACHE/argo-rollouts-$ARGO_ROLLOUTS_VERSION/bin"
  if [[ -x $out/rollouts-controller ]]; then log "argo-rollouts $ARGO_ROLLOUTS_VERSION cached"; return; fi
  log "building argo-rollouts $ARGO_ROLLOUTS_VERSION rollouts-controller"
  local mod=github.com/argoproj/argo-rollouts
  build_with_replaces argo-rollouts "$ARGO_ROLLOUTS_VERSION" "$mod" "$mod/cmd/rollouts-controller" \
    "-s -w -X $mod/utils/version.version=${ARGO_ROLLOUTS_VERSION#v}"
}

# Thanos (sidecar and querier in one binary), with upstream's release build tags.
build_thanos() {
  local out="$SLO_WARDEN_CACHE/thanos-$THANOS_VERSION/bin"
  if [[ -x $out/thanos ]]; then log "thanos $THANOS_VERSION cached"; return; fi
  log "building thanos $THANOS_VERSION (cold: about 3 min on 2 cores)"
  local mod=github.com/thanos-io/thanos v=github.com/prometheus/common/version
  build_with_replaces thanos "$THANOS_VERSION" "$mod" "$mod/cmd/thanos" \
    "-s -w -X $v.Version=${THANOS_VERSION#v} -X $v.Branch=HEAD -X $v.Revision=$THANOS_VERSION" netgo,slicelabels
}

# Tools whose go.mod has no replace directives install directly.
build_go_install() { # name version package
  local name=$1 version=$2 pkg=$3
  local out="$SLO_WARDEN_CACHE/$name-$version/bin"
  if [[ -x $out/$name ]]; then log "$name $version cached"; return; fi
  log "building $name $version"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" "$pkg@$version"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# Our own Go tools under tools/ (grafana-validate: the dashboard validator on
# grafana-foundation-sdk; enforce-namespace: Prometheus Operator's enforcedNamespaceLabel
# rewrite): cached under a hash of their sources, whose copy next to the binary tells the tests
# (tests/dashboards.rs, tests/promtool.rs) it is current.
build_own_tool() {
  local name=$1
  local src=$here/../../tools/$name
  local key; key=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-16)
  local dir="$SLO_WARDEN_CACHE/$name-$key"
  if [[ -x $dir/bin/$name ]]; then log "$name $key cached"; return; fi
  log "building $name $key"
  local work; work=$(mktemp -d)
  cp "$src/main.go" "$src/go.mod" "$src/go.sum" "$work/"
  mkdir -p "$dir.tmp/bin" "$dir.tmp/src"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/bin/$name" .)
  cp "$work/main.go" "$work/go.mod" "$work/go.sum" "$dir.tmp/src/"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"; rm -rf "$work"
}

# Upstream CRD sources (PrometheusRule, Rollout, Flagger's Canary) come from the module cache, never the repo.
download_crd_modules() {
  (cd "$SLO_WARDEN_CACHE" && GOFLAGS= go mod download \
      "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
      "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION" \
      "github.com/fluxcd/flagger@$FLAGGER_VERSION")
}

what=${1:-all}
case $what in
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) build_go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok ;;
  helm) build_go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
  actionlint) build_go_install actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint ;;
  argo-rollouts) build_argo_rollouts ;;
  thanos) build_thanos ;;
  crds) download_crd_modules ;;
  grafana-validate|enforce-namespace) build_own_tool "$what" ;;
  all)
    download_crd_modules
    build_etcd
    build_go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
    build_go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
    build_go_install actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint
    build_kubernetes
    build_argo_rollouts
    build_thanos
    build_own_tool grafana-validate
    build_own_tool enforce-namespace
    ;;
  *) echo "usage: $0 [all|kubernetes|etcd|kwok|helm|actionlint|argo-rollouts|thanos|crds|grafana-validate|enforce-namespace]" >&2; exit 2 ;;
esac
