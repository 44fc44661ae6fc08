#!/usr/bin/env python3
"""Mirrors PrometheusRule objects into a Prometheus rule directory.

A stand-in for prometheus-operator's rule handling in the end-to-end cluster:
every --interval seconds it lists prometheusrules.monitoring.coreos.com in all
namespaces, writes each object's spec (its `groups`) to
<rule-dir>/<namespace>-<name>.yaml (JSON, which is valid YAML), removes the
files of deleted objects and, when anything changed, POSTs /-/reload to
Prometheus. Like the operator, a rule file that `promtool check rules` rejects
is skipped (logged, not installed) instead of breaking Prometheus.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def list_rules(a):
    cmd = [a.kubectl, "--kubeconfig", a.kubeconfig, "get", "prometheusrules.monitoring.coreos.com",
           "--all-namespaces", "-o", "json", "--request-timeout=10s"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or "kubectl failed")
    return json.loads(out.stdout).get("items", [])


def render(obj):
    spec = obj.get("spec") or {}
    groups = []
    for g in spec.get("groups") or []:
        g = dict(g)
        g.pop("partial_response_strategy", None)  # Thanos-only field, the operator drops it too
        groups.append(g)
    return json.dumps({"groups": groups}, indent=1, sort_keys=True) + "\n"


def check(a, content):
    """Returns None when promtool accepts the rule file, else its complaint."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=a.staging, delete=False) as f:
        f.write(content)
        path = f.name
    try:
        out = subprocess.run([a.promtool, "check", "rules", path], capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            return None
        return (out.stderr + out.stdout).replace(path, "<file>").strip()
    finally:
        os.unlink(path)


def reload(a):
    req = urllib.request.Request(a.prometheus_url.rstrip("/") + "/-/reload", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status == 200


def sync_once(a, state):
    items = list_rules(a)
    desired = {}
    for obj in items:
        md = obj.get("metadata", {})
        desired["%s-%s.yaml" % (md.get("namespace", ""), md.get("name", ""))] = render(obj)

    changed = False
    for fname, content in sorted(desired.items()):
        path = os.path.join(a.rule_dir, fname)
        digest = hashlib.sha256(content.encode()).hexdigest()
        try:
            with open(path) as f:
                if f.read() == content:
                    continue
        except FileNotFoundError:
            pass
        if state["rejected"].get(fname) == digest:
            continue  # already reported, unchanged since
        problem = check(a, content)
        if problem:
            state["rejected"][fname] = digest
            log("skipped %s: promtool rejected it: %s" % (fname, problem.replace("\n", " | ")))
            if os.path.exists(path):  # the object no longer has a valid version: drop the stale one
                os.unlink(path)
                changed = True
            continue
        state["rejected"].pop(fname, None)
        tmp = os.path.join(a.staging, fname + ".tmp")
        with open(tmp, "w") as f:
            f.write(content)
        os.replace(tmp, path)
        log("installed %s" % fname)
        changed = True

    for fname in sorted(os.listdir(a.rule_dir)):
        if fname.endswith(".yaml") and fname not in desired:
            os.unlink(os.path.join(a.rule_dir, fname))
            log("removed %s" % fname)
            changed = True
    for fname in list(state["rejected"]):
        if fname not in desired:
            del state["rejected"][fname]

    if changed:
        state["reload"] = True
    if state["reload"]:
        try:
            if reload(a):
                state["reload"] = False
                log("reloaded Prometheus (%d rule files)" % len([f for f in os.listdir(a.rule_dir) if f.endswith(".yaml")]))
        except Exception as e:  # Prometheus not up yet: retry on the next round
            log("reload failed, will retry: %s" % e)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kubectl", default="kubectl")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", ""))
    p.add_argument("--promtool", default="promtool")
    p.add_argument("--rule-dir", required=True)
    p.add_argument("--prometheus-url", required=True)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--once", action="store_true", help="one round, then exit")
    a = p.parse_args()
    os.makedirs(a.rule_dir, exist_ok=True)
    a.staging = os.path.join(os.path.dirname(os.path.abspath(a.rule_dir)), ".rule-sync")
    os.makedirs(a.staging, exist_ok=True)
    state = {"rejected": {}, "reload": False}
    last_error = None
    log("syncing PrometheusRules into %s every %ss" % (a.rule_dir, a.interval))
    while True:
        try:
            sync_once(a, state)
            if last_error:
                log("recovered")
            last_error = None
        except Exception as e:
            msg = str(e).strip()
            if msg != last_error:
                log("sync failed: %s" % msg)
            last_error = msg
        if a.once:
            return 0 if last_error is None else 1
        time.sleep(a.interval)


if __name__ == "__main__":
    sys.exit(main())
