#!/usr/bin/env python3
"""Renders one frame of the demo dashboard (demo.sh calls it every few seconds).

Reads the SLOs with kubectl, their error ratios, burn rates and budgets from Prometheus
(the recording rules slo-warden generated), the alerts Prometheus evaluates, the traffic
generator's settings, and what the ErrorBudgetPolicies enforce: their stage and what they hold,
the Deployments, Rollouts and ReplicaSets of their namespaces, the frozen label, slo-warden's
Events and the operator's metrics; prints plain text, with ANSI colours when --color is given.

  dashboard.py --kubectl K --prometheus-url URL --traffic-url URL [--operator-url URL]
               [--width COLUMNS] [--color]
"""

import argparse
import calendar
import concurrent.futures
import json
import math
import re
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request

RESET, BOLD, DIM, RED, GREEN, YELLOW, CYAN = "\033[0m", "\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[33m", "\033[36m"


class Painter:
    def __init__(self, on):
        self.on = on

    def __call__(self, text, *codes):
        return "".join(codes) + text + RESET if self.on and codes else text


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def get_text(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def query(prom, expr):
    """{(namespace, slo): value} of an instant query."""
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    out = {}
    for s in get_json(url)["data"]["result"]:
        m = s["metric"]
        try:
            out[(m.get("namespace", ""), m.get("slo", ""))] = float(s["value"][1])
        except ValueError:
            pass
    return out


def duration(seconds):
    seconds = int(max(0, seconds))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)


def pct(x, digits=3):
    if x is None or math.isnan(x):
        return "-"
    return ("%." + str(digits) + "f%%") % (100 * x)


def burn(x):
    if x is None or math.isnan(x):
        return "-"
    return "%.1fx" % x


def table(rows, paint_row=None):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        lines.append(paint_row(n, line) if paint_row else line)
    return lines


def slo_section(a, p):
    out = []
    try:
        slos = json.loads(subprocess.run([a.kubectl, "get", "slo", "-A", "-o", "json"], capture_output=True,
                                         text=True, timeout=20, check=True).stdout)["items"]
    except Exception as e:  # noqa: BLE001 - shown on the dashboard
        return [p("cannot list SLOs: %s" % e, RED)]
    if not slos:
        return ["(no ServiceLevelObjectives yet)"]
    try:
        r5 = query(a.prometheus_url, "slo:sli_error:ratio_rate5m")
        r1h = query(a.prometheus_url, "slo:sli_error:ratio_rate1h")
        budget = query(a.prometheus_url, "slo:error_budget:ratio")
        left = query(a.prometheus_url, "slo:error_budget_remaining:ratio")
    except Exception as e:  # noqa: BLE001
        return [p("cannot query Prometheus at %s: %s" % (a.prometheus_url, e), RED)]
    rows = [["SLO", "OBJECTIVE", "WINDOW", "ERRORS 5m", "BURN 5m", "BURN 1h", "BUDGET LEFT", "READY"]]
    pending_window = False
    for s in sorted(slos, key=lambda s: (s["metadata"]["namespace"], s["metadata"]["name"])):
        ns, name = s["metadata"]["namespace"], s["metadata"]["name"]
        key = (ns, name)
        objective = s["spec"]["objective"]
        b = budget.get(key, 1 - objective / 100.0)  # the budget record comes with the 5m group
        e5, e1h = r5.get(key), r1h.get(key)
        remaining = left.get(key)
        if remaining is None:
            pending_window = True
        cond = next((c for c in s.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None)
        ready = "-" if not cond else cond["status"] if cond["status"] == "True" else "%s %s" % (cond["status"], cond["reason"])
        rows.append([
            "%s/%s" % (ns, name), "%g%%" % objective, s["spec"]["window"], pct(e5),
            burn(e5 / b if e5 is not None else None), burn(e1h / b if e1h is not None else None),
            "..." if remaining is None else pct(remaining, 1), ready,
        ])

    def paint(n, line):
        if n == 0:
            return p(line, BOLD)
        return line

    out += table(rows, paint)
    out.append(p("burn = error ratio / error budget (1x spends exactly the budget over the window). "
                 "Budget left is over the SLO window, i.e. since the demo started.", DIM))
    if pending_window:
        out.append(p("... budget left appears after the first evaluation of the 5-minute `window` rule group.", DIM))
    return out


def alert_section(a, p):
    try:
        groups = get_json(a.prometheus_url + "/api/v1/rules?type=alert")["data"]["groups"]
    except Exception as e:  # noqa: BLE001
        return [p("cannot read alerts from Prometheus: %s" % e, RED)]
    now = time.time()
    rows = []
    for g in groups:
        for r in g.get("rules", []):
            for al in r.get("alerts", []):
                lb = al.get("labels", {})
                since = al.get("activeAt", "")
                try:
                    # 2024-01-02T03:04:05.123456789Z
                    base = since.split(".")[0].rstrip("Z")
                    t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
                    active = now - t
                except ValueError:
                    active = 0
                state = al.get("state", "?")
                windows = "%s/%s" % (lb["long"], lb["short"]) if "long" in lb else ""
                value = ""
                if "long" in lb:  # burn-rate alerts: the value is the long window's burn rate
                    try:
                        value = "burn %.1fx" % float(al.get("value", "nan"))
                    except ValueError:
                        pass
                if state == "pending":
                    timing = "active %s, fires after %s" % (duration(active), duration(r.get("duration", 0)))
                else:
                    timing = "active %s" % duration(active)
                rows.append((state, [state.upper(), lb.get("alertname", r.get("name", "")),
                                     "%s/%s" % (lb.get("namespace", ""), lb.get("slo", "")),
                                     "severity=%s" % lb.get("severity", ""), windows, value, timing]))
    if not rows:
        return [p("no alerts pending or firing", GREEN)]
    rows.sort(key=lambda r: (r[0] != "firing", r[1]))
    lines = table([r[1] for r in rows])
    colour = {"firing": RED + BOLD, "pending": YELLOW}
    out = [p(line, colour.get(state, "")) for (state, _), line in zip(rows, lines)]
    return out


def traffic_section(a, p):
    try:
        state = get_json(a.traffic_url + "/control")
    except Exception as e:  # noqa: BLE001
        return [p("cannot read the traffic generator: %s" % e, RED)]
    parts = []
    for name, s in sorted(state.items()):
        err = s["errors"]
        text = "%s %g rps, %s errors, %s slow" % (name, s["rps"], pct(err, 2), pct(s["slow"], 0))
        parts.append(p(text, RED) if err >= 0.01 else text)
    return ["Traffic: " + "  |  ".join(parts)]


# ---- Error budget policies -------------------------------------------------------------------

PAUSED_BY = "slo.warden.dev/paused-by"
FROZEN_LABEL = "slo.warden.dev/frozen"
FROZEN_BY = "slo.warden.dev/frozen-by"
FROZEN_AT = "slo.warden.dev/frozen-at"
OPERATOR = "slo-warden"  # reportingController of its Events


def kubectl(a, *args):
    got = subprocess.run([a.kubectl, *args], capture_output=True, text=True, timeout=20)
    if got.returncode != 0:
        lines = (got.stderr or got.stdout).strip().splitlines()
        raise RuntimeError(lines[-1] if lines else "kubectl %s exited %d" % (" ".join(args), got.returncode))
    return got.stdout


def parse_time(text):
    """Seconds since the epoch of an RFC 3339 UTC time (fractions ignored); None if absent."""
    if not text:
        return None
    try:
        return calendar.timegm(time.strptime(text.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def parse_duration(text):
    """Seconds of a Prometheus duration such as 2m or 1h30m; None if it is not one."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(int(n) * units[u] for n, u in parts)


def clock(t):
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "-"


def wrap(text, width, indent="  ", hang=2):
    """`indent` + text, wrapped to `width` columns, further lines indented `hang` more (one line
    when width is 0)."""
    if width <= 0:
        return [indent + text]
    return textwrap.wrap(text, width=max(width - 1, 40), initial_indent=indent, subsequent_indent=indent + " " * hang,
                         break_on_hyphens=False, break_long_words=True) or [indent]


def cut(text, width):
    return text[: width - 2] + "~" if 0 < width - 1 < len(text) else text


def image_of(template):
    """The images of a pod template, without their registry path (checkout:1.4.0)."""
    cs = template.get("spec", {}).get("containers", [])
    return ",".join(c.get("image", "?").rsplit("/", 1)[-1] for c in cs) or "-"


def held_by(obj):
    """'PAUSED by ns/policy', 'PAUSED by hand' or '' for an object with spec.paused."""
    if not obj.get("spec", {}).get("paused"):
        return ""
    by = obj["metadata"].get("annotations", {}).get(PAUSED_BY)
    return "PAUSED by %s" % by if by else "PAUSED by hand"


def policy_section(a, p, table_text, policies):
    out = [p("$ kubectl get ebp -A", CYAN)]
    out += table_text.rstrip("\n").split("\n")
    now = time.time()
    for pol in policies:
        md, st = pol["metadata"], pol.get("status", {})
        out.append("%s/%s:" % (md["namespace"], md["name"]))
        conds = {c["type"]: c for c in st.get("conditions", [])}
        ready = conds.get("Ready")
        if ready and ready.get("status") != "True":
            out += [p(line, RED) for line in wrap("Ready=False %s: %s" % (ready.get("reason"), ready.get("message")), a.width)]
        if st.get("reason"):
            out += wrap("reason: " + st["reason"], a.width)
        quiet = parse_time(st.get("quietSince"))
        release_after = parse_duration(pol["spec"].get("releaseAfter", "15m"))
        if quiet and release_after is not None and st.get("stage"):
            left = quiet + release_after - now
            out.append(p("  quiet for %s: releases %s (releaseAfter %s) unless a stage holds again" % (
                duration(now - quiet), "in %s" % duration(left) if left > 0 else "now", pol["spec"].get("releaseAfter")),
                GREEN))
        enforced = st.get("enforced", [])
        if enforced:
            holds = "; ".join("%s %s (%s since %s)" % (e["kind"], e["name"], e["action"],
                                                       clock(parse_time(e.get("since")))) for e in enforced)
            out += [p(line, RED) for line in wrap("holds: " + holds, a.width)]
        else:
            out.append("  holds: nothing")
        for r in st.get("rollbacks", [])[:3]:
            colour = GREEN if r.get("result") in ("RolledBack", "Aborted") else RED
            out += [p(line, colour) for line in wrap("rollback %s: %s %s: %s" % (
                clock(parse_time(r.get("time"))), r.get("kind"), r.get("name"), r.get("message")), a.width)]
        history = st.get("history", [])
        if history:
            h = history[0]
            out.append(p("  last change %s: %s -> %s" % (clock(parse_time(h.get("time"))), h.get("from") or "none",
                                                         h.get("to") or "none"), DIM))
    return out


def ledger_section(a, p):
    """The release ledger of each SLO that has one: which release burned how much budget."""
    out = []
    try:
        slos = json.loads(kubectl(a, "get", "slo", "-A", "-o", "json"))["items"]
    except Exception as e:  # noqa: BLE001
        return [p("cannot read the SLOs: %s" % e, RED)]
    for slo in slos:
        st = slo.get("status", {})
        releases = st.get("releases", [])
        if not releases:
            continue
        md = slo["metadata"]
        out.append("%s/%s (counted through %s):" % (md["namespace"], md["name"],
                                                  clock(parse_time(st.get("releasesCountedThrough")))))
        rows = [["RELEASE", "IMAGES", "STARTED", "ERRORS", "BUDGET BURNED", "BURN SINCE"]]
        for r in releases[:4]:
            share = r.get("budgetBurned")
            rows.append(["%s %s rev %s" % (r["kind"], r["workload"], r["revision"]),
                         ",".join(i.rsplit("/", 1)[-1] for i in r.get("images", [])),
                         clock(parse_time(r.get("startedAt"))), "%.0f" % r.get("errors", 0),
                         "-" if share is None else pct(share, 2), burn(r.get("burnRateSince"))])
        out += ["  " + line for line in table(rows)]
    return out or ["  (no ledger yet: no policy follows a release)"]


def workload_section(a, p, namespaces, objects, ns_objects):
    out = []
    by_kind = {}
    for o in objects:
        if o.get("metadata", {}).get("namespace") in namespaces:
            by_kind.setdefault(o.get("kind"), []).append(o)
    replicasets = by_kind.get("ReplicaSet", [])

    def owned(owner):
        uid = owner["metadata"]["uid"]
        return [rs for rs in replicasets
                if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences", []))
                and rs["metadata"]["namespace"] == owner["metadata"]["namespace"]]

    def rs_line(rs, note=""):
        ready = rs.get("status", {}).get("readyReplicas", 0)
        n = rs["spec"].get("replicas", 0)
        return ("    ReplicaSet %-20s %-15s  %d pod%s, %d ready  %s" % (
            rs["metadata"]["name"], image_of(rs["spec"]["template"]), n, "" if n == 1 else "s", ready, note)).rstrip()

    for ns in sorted(namespaces):
        nso = next((n for n in ns_objects if n["metadata"]["name"] == ns), None)
        labels = (nso or {}).get("metadata", {}).get("labels", {})
        ann = (nso or {}).get("metadata", {}).get("annotations", {})
        if labels.get(FROZEN_LABEL) == "true":
            out.append(p("namespace %s: FROZEN (label %s=true, by %s since %s)" % (
                ns, FROZEN_LABEL, ann.get(FROZEN_BY, "hand"), clock(parse_time(ann.get(FROZEN_AT)))), RED + BOLD))
        else:
            out.append(p("namespace %s: not frozen" % ns, GREEN))
        for d in sorted(by_kind.get("Deployment", []), key=lambda o: o["metadata"]["name"]):
            if d["metadata"]["namespace"] != ns:
                continue
            spec, st = d["spec"], d.get("status", {})
            want = image_of(spec["template"])
            held = held_by(d)
            line = "Deployment %s  %-23s  %-15s  %d/%d updated, %d ready" % (
                d["metadata"]["name"], held or "running", want, st.get("updatedReplicas", 0),
                spec.get("replicas", 1), st.get("readyReplicas", 0))
            out += [p(x, RED) if held else x for x in wrap(line, a.width, hang=11)]
            revision = d["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision")
            mine = sorted(owned(d), key=lambda r: int(r["metadata"].get("annotations", {}).get(
                "deployment.kubernetes.io/revision", "0")))
            for rs in mine:
                current = rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision") == revision
                if rs["spec"].get("replicas", 0) or current:
                    out.append(rs_line(rs))
            if not any(image_of(rs["spec"]["template"]) == want for rs in mine):
                text = "    no ReplicaSet runs %s: %s" % (
                    want, "the paused Deployment does not roll out" if held else "rolling out")
                out.append(p(text, YELLOW + BOLD))
        for r in sorted(by_kind.get("Rollout", []), key=lambda o: o["metadata"]["name"]):
            if r["metadata"]["namespace"] != ns:
                continue
            spec, st = r["spec"], r.get("status", {})
            steps = spec.get("strategy", {}).get("canary", {}).get("steps", [])
            step = st.get("currentStepIndex")
            phase = st.get("phase", "-") + (" (%s)" % st["message"] if st.get("message") else "")
            held = held_by(r)
            where = "step %s/%d" % ("-" if step is None else step, len(steps))
            if step is not None and step >= len(steps):
                where = "all %d steps done" % len(steps)
            elif step is not None:
                s = steps[step]
                if "setWeight" in s:
                    where += ": setWeight %s" % s["setWeight"]
                elif "pause" in s:
                    where += ": pause %s" % s["pause"].get("duration", "(until promoted)")
            line = "Rollout    %s  %-23s  %-15s  %s, %s" % (
                r["metadata"]["name"], held or "running", image_of(spec["template"]), where, phase)
            out += [p(x, RED) if held else x for x in wrap(line, a.width, hang=11)]
            stable, current = st.get("stableRS"), st.get("currentPodHash")
            for rs in sorted(owned(r), key=lambda x: x["metadata"]["name"]):
                h = rs["metadata"].get("labels", {}).get("rollouts-pod-template-hash")
                note = "stable" if h == stable else "canary" if h == current else ""
                if note or rs["spec"].get("replicas", 0):
                    out.append(rs_line(rs, note))
    return out or ["(no policy namespaces)"]


def event_section(a, p, events, namespaces):
    rows = []
    for e in events:
        if e.get("reportingComponent") != OPERATOR and e.get("source", {}).get("component") != OPERATOR:
            continue
        if e["metadata"].get("namespace") not in namespaces:
            continue
        # When it first happened. A repeat (same object, reason and action) only counts up the
        # first Event's series and keeps its message.
        t = next(filter(None, [parse_time(e.get("eventTime")), parse_time(e.get("firstTimestamp")),
                               parse_time(e["metadata"].get("creationTimestamp"))]), 0)
        rows.append((t, e))
    if not rows:
        return ["(none yet)"]
    rows.sort(key=lambda r: r[0])
    out = []
    colour = {"Freeze": RED, "Refreeze": RED, "Release": GREEN, "Abort": RED}
    for t, e in rows[-a.events:]:
        obj = e.get("involvedObject") or e.get("regarding") or {}
        series = e.get("series") or {}
        count = series.get("count") or e.get("count") or 1
        last = parse_time(series.get("lastObservedTime") or e.get("lastTimestamp"))
        again = " (x%d, last %s)" % (count, clock(last)) if count > 1 else ""
        text = "%s %s %s/%s: %s%s" % (clock(t), e.get("reason", ""), obj.get("kind"), obj.get("name"),
                                      e.get("message") or e.get("note") or "", again)
        lines = wrap(text, a.width, indent="", hang=9)
        if len(lines) > 2:  # at most two lines each
            lines = [lines[0], cut(lines[1] + " " + " ".join(x.strip() for x in lines[2:]), a.width)]
        out += [p(x, colour.get(e.get("reason"), YELLOW if e.get("type") == "Warning" else "")) for x in lines]
    return out


def release_section(a, p, path, last=4):
    """The latest release attempts of the scenario and what the API server answered."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [x.rstrip("\n") for x in f if x.strip()]
    except OSError:
        lines = []
    if not lines:
        return ["(none yet)"]
    out = []
    for line in lines[-last:]:
        refused = ": REFUSED " in line
        wrapped = wrap(line, a.width, indent="", hang=9)
        if len(wrapped) > 4:  # at most four lines each
            wrapped = wrapped[:3] + [cut(" ".join(x.strip() for x in wrapped[3:]), a.width)]
        out += [p(x, RED if refused else GREEN) for x in wrapped]
    return out


def operator_metrics_line(text):
    """The stage and the frozen objects from the operator's /metrics, on one line."""
    stages, frozen = [], []
    for line in text.splitlines():
        m = re.match(r'(slo_warden_policy_stage|slo_warden_frozen_objects)\{([^}]*)\} (\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        value = float(m.group(3))
        if m.group(1) == "slo_warden_policy_stage" and value:
            stages.append("%s/%s %s" % (labels.get("namespace"), labels.get("policy"),
                                        'stage="%s"' % labels["stage"] if labels.get("stage") else "no stage"))
        elif m.group(1) == "slo_warden_frozen_objects":
            frozen.append("%s=%g" % (labels.get("kind"), value))
    return "operator /metrics: slo_warden_policy_stage %s, slo_warden_frozen_objects %s" % (
        ", ".join(stages) or "-", " ".join(sorted(frozen)) or "-")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubectl", required=True)
    ap.add_argument("--prometheus-url", required=True)
    ap.add_argument("--traffic-url", required=True)
    ap.add_argument("--operator-url", help="the operator's HTTP address, for its /metrics")
    ap.add_argument("--width", type=int, default=0, help="terminal columns to wrap to (0: no wrapping)")
    ap.add_argument("--events", type=int, default=6, help="how many of slo-warden's latest Events to show")
    ap.add_argument("--releases", help="the scenario's release attempts (one line each)")
    ap.add_argument("--color", action="store_true")
    a = ap.parse_args()
    a.prometheus_url = a.prometheus_url.rstrip("/")
    a.traffic_url = a.traffic_url.rstrip("/")
    p = Painter(a.color)

    # The policy part's kubectl calls run meanwhile.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=5)
    ebp_table = pool.submit(kubectl, a, "get", "ebp", "-A")
    objects = pool.submit(kubectl, a, "get", "errorbudgetpolicies.slo.warden.dev,deployments.apps,"
                          "rollouts.argoproj.io,replicasets.apps", "-A", "-o", "json")
    namespaces = pool.submit(kubectl, a, "get", "namespaces", "-o", "json")
    events = pool.submit(kubectl, a, "get", "events", "-A", "-o", "json",
                         "--field-selector", "reportingComponent=" + OPERATOR)
    metrics = pool.submit(get_text, a.operator_url.rstrip("/") + "/metrics") if a.operator_url else None

    out = traffic_section(a, p)
    out.append("")
    out.append(p("$ kubectl get slo -A", CYAN))
    try:
        got = subprocess.run([a.kubectl, "get", "slo", "-A"], capture_output=True, text=True, timeout=20)
        out += (got.stdout or got.stderr).rstrip("\n").split("\n")
    except Exception as e:  # noqa: BLE001
        out.append(p("kubectl failed: %s" % e, RED))
    out.append("")
    out.append(p("Error ratios and burn rates (Prometheus, recorded by slo-warden's rules)", CYAN))
    out += slo_section(a, p)
    out.append("")
    out.append(p("Alerts (Prometheus)", CYAN))
    out += alert_section(a, p)
    out.append("")
    try:
        items = json.loads(objects.result())["items"]
        policies = sorted((o for o in items if o.get("kind") == "ErrorBudgetPolicy"),
                          key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
        policy_ns = {o["metadata"]["namespace"] for o in policies}
        out += policy_section(a, p, ebp_table.result(), policies)
        if metrics is not None:
            try:
                out += [p(x, DIM) for x in wrap(operator_metrics_line(metrics.result()), a.width, indent="")]
            except Exception as e:  # noqa: BLE001
                out.append(p("cannot read the operator's metrics: %s" % e, RED))
        out.append("")
        out.append(p("Workloads the policies hold (spec.paused, the frozen label; images and ReplicaSets)", CYAN))
        out += workload_section(a, p, policy_ns, items, json.loads(namespaces.result())["items"])
        out.append("")
        out.append(p("Which release burned the budget (status.releases of each SLO)", CYAN))
        out += ledger_section(a, p)
        if a.releases:
            out.append("")
            out.append(p("Release attempts (kubectl; the admission webhook answers in frozen namespaces)", CYAN))
            out += release_section(a, p, a.releases)
        out.append("")
        out.append(p("slo-warden's Events (latest last)", CYAN))
        out += event_section(a, p, json.loads(events.result())["items"], policy_ns)
    except Exception as e:  # noqa: BLE001 - shown on the dashboard
        out.append(p("cannot read the policies and workloads: %s" % e, RED))
    pool.shutdown(wait=False, cancel_futures=True)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
