#!/usr/bin/env bash
# Installs everything the end-to-end cluster needs; idempotent and noninteractive.
#   - Debian packages: prometheus (/usr/bin/prometheus, /usr/bin/promtool), openssl, libfaketime,
#     jq, shellcheck, chromium-headless-shell
#     (apt-get update only runs when something is missing). Debian's own prometheus
#     service is kept from starting (policy-rc.d) and disabled: cluster-up.sh runs its
#     own Prometheus on a free port.
#   - Go: uses the go on PATH (or /usr/local/go); without one, fetches a Go toolchain
#     from the Go module proxy (golang.org/toolchain) into the cache dir.
#   - build-tools.sh all: etcd, kube-apiserver & co., kubectl, kwok, helm, CRD modules,
#     Argo Rollouts' controller, Thanos, grafana-validate (tools/grafana-validate),
#     enforce-namespace (tools/enforce-namespace).
#   - build-slo-tools.sh all: the real Sloth and Pyrra (their rules are what import is checked against).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if ((EUID == 0)); then "$@"; else sudo -n "$@"; fi; }

# The tests' build and a cold tool build need several GiB; say so up front rather than let a
# compiler fail half-way with ENOSPC.
read -r free_kib mount < <(df -Pk "$here" | awk 'NR == 2 { print $4, $6 }') || true
if [[ ${free_kib:-} =~ ^[0-9]+$ ]] && ((free_kib < 4 * 1024 * 1024)); then
  log "WARNING: only $((free_kib / 1024)) MiB free on $mount; target/ takes about 1.6 GiB, and a cold tool build fills Go's module and build caches with several more"
fi

# ---- Debian packages ---------------------------------------------------------------
pkgs=()
[[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]] || pkgs+=(prometheus)
command -v openssl >/dev/null || pkgs+=(openssl)
[[ -e /etc/ssl/certs/ca-certificates.crt ]] || pkgs+=(ca-certificates)
# libfaketime: the leader-election test runs a replica whose clock is a minute ahead.
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || pkgs+=(libfaketime)
# jq and shellcheck: the GitHub Action's script and actionlint's check of it (tests/action.rs).
command -v jq >/dev/null || pkgs+=(jq)
command -v shellcheck >/dev/null || pkgs+=(shellcheck)
# Headless Chromium: the web UI's browser tests (tests/e2e/ui.rs) drive it.
[[ -x /usr/bin/chromium-headless-shell || -x /usr/lib/chromium/chromium-headless-shell ]] || pkgs+=(chromium-headless-shell)
if ((${#pkgs[@]})); then
  log "installing ${pkgs[*]}"
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [[ ! -e $policy ]]; then  # keep apt from starting services (the Debian prometheus unit)
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    added_policy=1
  fi
  rc=0
  as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "${pkgs[@]}" || rc=$?
  ((added_policy)) && as_root rm -f "$policy"
  ((rc == 0)) || exit "$rc"
  if [[ " ${pkgs[*]} " == *" prometheus "* ]]; then
    if [[ -d /run/systemd/system ]]; then
      as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/prometheus ]]; then
      as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true
      as_root update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
  fi
else
  log "Debian packages present: $(/usr/bin/prometheus --version 2>&1 | head -1)"
fi

# ---- Go ------------------------------------------------------------------------------
GO_BOOTSTRAP=${GO_BOOTSTRAP:-go1.25.0}   # any go >= 1.21 works: GOTOOLCHAIN=auto upgrades as needed
if ! command -v go >/dev/null; then
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH=/usr/local/go/bin:$PATH
  else
    gdir=$SLO_WARDEN_CACHE/go-$GO_BOOTSTRAP
    if [[ ! -x $gdir/bin/go ]]; then
      log "no go on PATH: fetching golang.org/toolchain $GO_BOOTSTRAP from the Go module proxy"
      python3 - "$gdir" "$GO_BOOTSTRAP" <<'EOF'
import io, os, platform, shutil, sys, urllib.request, zipfile
dest, ver = sys.argv[1], sys.argv[2]
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
proxy = os.environ.get("GOPROXY", "https://proxy.golang.org").split(",")[0].split("|")[0]
if proxy in ("direct", "off", ""):
    proxy = "https://proxy.golang.org"
mod = "v0.0.1-%s.linux-%s" % (ver, arch)
data = urllib.request.urlopen("%s/golang.org/toolchain/@v/%s.zip" % (proxy.rstrip("/"), mod), timeout=600).read()
prefix = "golang.org/toolchain@%s/" % mod
tmp = dest + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(io.BytesIO(data)) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.filename.endswith("/"):
            continue
        path = os.path.join(tmp, info.filename[len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out)
        rel = info.filename[len(prefix):]
        if rel.startswith("bin/") or rel.startswith("pkg/tool/"):
            os.chmod(path, 0o755)
shutil.rmtree(dest, ignore_errors=True)
os.rename(tmp, dest)
EOF
    fi
    export PATH=$gdir/bin:$PATH
  fi
fi
log "using $(go version)"

# ---- axe-core (the web UI's accessibility checks in tests/e2e/ui.rs), from npm ---------
axe=$SLO_WARDEN_CACHE/axe-core-$AXE_CORE_VERSION/axe.min.js
if [[ ! -s $axe ]]; then
  log "fetching axe-core $AXE_CORE_VERSION from the npm registry"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "axe-core@$AXE_CORE_VERSION" >/dev/null && tar -xzf axe-core-*.tgz package/axe.min.js)
  mkdir -p "$(dirname "$axe")"
  mv "$tmp/package/axe.min.js" "$axe"
  rm -rf "$tmp"
fi

# ---- Go-built tools ----------------------------------------------------------------
"$here/build-tools.sh" all
# The real Sloth and Pyrra, whose rules the import tests compare ours with.
"$here/build-slo-tools.sh" all
log "done"
