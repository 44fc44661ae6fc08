#!/usr/bin/env bash
# Builds the real Sloth and Pyrra command-line tools from their Go modules (Go module proxy
# only) and caches them outside the repo:
#   $SLO_WARDEN_CACHE/sloth-<version>/bin/sloth
#   $SLO_WARDEN_CACHE/pyrra-<version>/bin/pyrra
# Tests use them to generate those tools' own Prometheus rules from their own spec files:
#   sloth generate -i SPEC.yml -o OUT.yml [--default-slo-period=30d]
#   pyrra generate --config-files=SPEC.yaml --prometheus-folder=OUTDIR/
# A tool that is already cached is skipped, so a warm run takes well under a second.
#   usage: build-slo-tools.sh [all|sloth|pyrra|env]   (env prints SLOTH_BIN=... PYRRA_BIN=...)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

# Pinned here rather than in versions.sh; bump a version and the cache key changes with it.
SLOTH_VERSION=v0.16.0
PYRRA_VERSION=v0.10.1
SLOTH_BIN=$SLO_WARDEN_CACHE/sloth-$SLOTH_VERSION/bin/sloth
PYRRA_BIN=$SLO_WARDEN_CACHE/pyrra-$PYRRA_VERSION/bin/pyrra

if ! command -v go >/dev/null; then
  for d in /usr/local/go/bin "$SLO_WARDEN_CACHE"/go-go*/bin; do
    if [[ -x $d/go ]]; then PATH=$d:$PATH; break; fi
  done
fi

export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

log() { printf '[build-slo-tools] %s\n' "$*" >&2; }

# Neither go.mod (sloth v0.16.0, pyrra v0.10.1) has replace directives, so no wrapper module
# is needed; `go install mod/cmd@version` works for Sloth.

# Sloth: cmd/sloth. Upstream's release build sets internal/info.Version by ldflags; without
# it `sloth version` says "dev" (and so would the sloth_version label of sloth_slo_info).
build_sloth() {
  if [[ -x $SLOTH_BIN ]]; then log "sloth $SLOTH_VERSION cached"; return; fi
  log "building sloth $SLOTH_VERSION (cold: about 1.5 min on 2 cores)"
  local out; out=$(dirname "$SLOTH_BIN")
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath \
    -ldflags "-s -w -X github.com/slok/sloth/internal/info.Version=$SLOTH_VERSION" \
    "github.com/slok/sloth/cmd/sloth@$SLOTH_VERSION"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# Pyrra: the module root is the main package, and it embeds the React UI with
# `//go:embed ui/build`. The module zip has ui/src but no ui/build (it is a build output),
# so neither `go install` nor a wrapper module can build it, and `go build -overlay` refuses
# files under GOMODCACHE. So: copy the module's source out of the module cache (fetched
# through the proxy), add a one-page placeholder ui/build/index.html, and build it as the main
# module with upstream's own go.mod and go.sum (-mod=readonly: exactly upstream's dependency
# versions). Only `pyrra api`'s web UI is affected; generate/filesystem/kubernetes are the
# upstream code unchanged. ldflags as upstream's Makefile: main.version and main.commit.
build_pyrra() {
  if [[ -x $PYRRA_BIN ]]; then log "pyrra $PYRRA_VERSION cached"; return; fi
  log "building pyrra $PYRRA_VERSION (cold: about 1.5 min on 2 cores)"
  local mod=github.com/pyrra-dev/pyrra
  local work; work=$(mktemp -d)
  local json; json=$(cd "$work" && go mod download -json "$mod@$PYRRA_VERSION")
  local dir; dir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json")
  local commit; commit=$(sed -n 's/.*"Hash": "\(.*\)".*/\1/p' <<<"$json")
  [[ -d $dir ]] || { log "cannot download $mod@$PYRRA_VERSION"; rm -rf "$work"; return 1; }
  cp -R "$dir" "$work/src"
  chmod -R u+w "$work/src"
  mkdir -p "$work/src/ui/build"
  printf '<!doctype html>\n<title>Pyrra</title>\n<p>Pyrra %s built from its Go module without the web UI bundle.</p>\n' \
    "$PYRRA_VERSION" >"$work/src/ui/build/index.html"
  local out; out=$(dirname "$PYRRA_BIN")
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  (cd "$work/src" && GOFLAGS=-mod=readonly go build -trimpath \
      -ldflags "-s -w -X main.version=$PYRRA_VERSION -X main.commit=${commit:-unknown}" \
      -o "$out.tmp/pyrra" .)
  rm -rf "$out"; mv "$out.tmp" "$out"; rm -rf "$work"
}

what=${1:-all}
case $what in
  sloth) build_sloth ;;
  pyrra) build_pyrra ;;
  all) build_sloth; build_pyrra ;;
  env) printf 'SLOTH_BIN=%s\nPYRRA_BIN=%s\n' "$SLOTH_BIN" "$PYRRA_BIN" ;;
  *) echo "usage: $0 [all|sloth|pyrra|env]" >&2; exit 2 ;;
esac
