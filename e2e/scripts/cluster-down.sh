#!/usr/bin/env bash
# Stops everything cluster-up.sh started (process groups recorded in $DIR/pids) and
# removes the state dir ${SLO_WARDEN_E2E_DIR:-/tmp/slo-warden-e2e}.
# KEEP_LOGS=1 keeps $DIR/logs (copy them first, e.g. in CI) and removes only the rest.
# Succeeds when nothing is running.
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

[[ -d $DIR ]] || exit 0
[[ $DIR != / && ( -d $DIR/pids || -d $DIR/logs ) ]] || { log "$DIR does not look like an e2e state dir; not touching it"; exit 0; }

# Against someone else's cluster (cluster-up.sh with E2E_KUBECONFIG): the fake node goes too,
# while kwok still runs (its pods are then removed by that cluster's pod garbage collector).
if [[ " ${COMPONENTS[*]} " == *" kwok "* && " ${COMPONENTS[*]} " != *" kube-apiserver "* && -s $DIR/kubeconfig ]]; then
  node=$(sed -n 's/^export E2E_NODE_NAME=//p' "$DIR/env" 2>/dev/null)
  if [[ -n $node ]] && k delete node "$node" --ignore-not-found --wait=false --request-timeout=10s >/dev/null 2>&1; then
    log "deleted node $node"
  fi
fi

# Reverse start order: clients first, etcd last.
pids=()
for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
  c=${COMPONENTS[i]}
  if pid=$(component_pid "$c"); then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    pids+=("$pid")
  fi
done

# Wait up to 15 s for the groups to go away, then kill what is left.
for ((t = 0; t < 75; t++)); do
  alive=()
  for pid in "${pids[@]}"; do
    kill -0 -- "-$pid" 2>/dev/null && alive+=("$pid")
  done
  ((${#alive[@]})) || break
  sleep 0.2
done
for pid in "${alive[@]}"; do
  log "process group $pid still running: SIGKILL"
  kill -KILL -- "-$pid" 2>/dev/null
done
((${#pids[@]})) && log "stopped ${#pids[@]} components"

if [[ ${KEEP_LOGS:-0} == 1 ]]; then
  find "$DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
  log "logs kept in $DIR/logs"
else
  rm -rf "$DIR"
fi
exit 0
