#!/usr/bin/env python3
"""Renders one frame of the demo dashboard (demo.sh calls it every few seconds).

Reads the SLOs with kubectl, their error ratios, burn rates and budgets from Prometheus
(the recording rules slo-warden generated), the alerts Prometheus evaluates, and the traffic
generator's settings; prints plain text, with ANSI colours when --color is given.

  dashboard.py --kubectl K --prometheus-url URL --traffic-url URL [--color] [--header-file F]
"""

import argparse
import calendar
import json
import math
import subprocess
import sys
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
    if any(r[1][1] == "SLONoTraffic" for r in rows):
        out.append(p("SLONoTraffic reads the traffic recorded by the 5-minute `window` rule group, so it is pending "
                     "for a new SLO until that group first runs.", DIM))
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubectl", required=True)
    ap.add_argument("--prometheus-url", required=True)
    ap.add_argument("--traffic-url", required=True)
    ap.add_argument("--color", action="store_true")
    a = ap.parse_args()
    a.prometheus_url = a.prometheus_url.rstrip("/")
    a.traffic_url = a.traffic_url.rstrip("/")
    p = Painter(a.color)

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
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
