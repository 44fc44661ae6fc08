#!/usr/bin/env bash
# Cost and accuracy of the 30-day window error ratio against a real Prometheus: see bench/README.md.
# Arguments go to window_cost.py (--help). Exits 1 when a target is missed, 2 when it cannot run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/window_cost.py" "$@"
