#!/usr/bin/env bash
# Whole-rule-set cost of ten SLOs for Sloth, Pyrra and slo-warden on one Prometheus: see bench/README.md.
# Arguments go to rule_cost.py (--help). Exits 1 when a target is missed, 2 when it cannot run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/rule_cost.py" "$@"
