#!/usr/bin/env python3
"""Publishes the series slo-warden's recording rules would record, for N synthetic SLOs.

The scale benchmark (bench/scale/scale.py) measures the operator, not Prometheus' rule
evaluation: instead of evaluating 10,000 SLOs' rules, Prometheus scrapes this exporter, which
serves for every SLO `<ns>/<name>` the error ratios over its recorded windows
(slo:sli_error:ratio_rate<window>), its budget (slo:error_budget:ratio) and what is left of it
(slo:error_budget_remaining:ratio) and its long-run burn rate and coverage
(slo:long_run_burn:ratio, slo:long_run_covered:seconds) and how much of the window the data covers
(slo:window_covered:seconds), the one-minute tiles of errors and requests the release ledger
counts (slo:sli_errors:tile_rate1m, slo:sli_total:tile_rate1m) and the window's request count
(slo:sli_requests:count30d), labelled {namespace, slo, slo_warden}
exactly as the rules label them. The operator reads a series only on the schedule of the rule
group that records it, so it serves them on three paths, scraped as three jobs at those
groups' intervals (their `job` and `instance` labels dropped): /metrics/short (the windows under
a day: every minute, like the `:sli` group), /metrics/long (the longer windows and the budgets:
every 5 minutes, like `:window`) and /metrics/hourly (the long-run series, like `:calibration`).

Burn rates drift: every --drift-interval seconds, --drift-percent of the SLOs (a different slice
each time) get a new 5-minute error ratio, so status writes per cycle can be counted.

  GET  /metrics/short, /metrics/long, /metrics/hourly   the exposition
  POST /control?slo=NS/NAME&ratio=X       sets every error ratio of one SLO (e.g. a burn);
                                          ratio=-1 goes back to the normal value
  POST /control?drift=1|0                 budgets drift, or hold still (the default)
  GET  /control                           the settings, as JSON
"""

import argparse
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
BUDGET = 0.001  # 99.9%
RPS = 10.0  # the traffic every SLO's tiles say it serves
# Seconds between the evaluations of the rule group each path stands for.
INTERVALS = {"short": 60, "long": 300, "hourly": 3600}


class State:
    def __init__(self, slos, drift_percent, drift_interval):
        self.slos = slos  # [(namespace, name)]
        self.lock = threading.Lock()
        # Quiet: a 0.2x burn (0.1x to 0.3x), and budgets left between 0.4 and 0.9.
        self.remaining = [0.9 - (i % 50) * 0.01 for i in range(len(slos))]
        self.ratio5m = [BUDGET * (0.1 + (i % 20) * 0.01) for i in range(len(slos))]
        self.burning = {}  # index -> ratio
        self.drift_percent = drift_percent
        self.drifting = False
        self.drift_interval = drift_interval
        self.drifts = 0
        self.cached = None
        self.phases = {}  # path -> offset (ms) of its schedule within the interval
        self.index = {f"{ns}/{name}": i for i, (ns, name) in enumerate(slos)}

    def drift(self):
        with self.lock:
            n = len(self.slos)
            k = max(1, n * self.drift_percent // 100) if self.drift_percent else 0
            start = (self.drifts * k) % n if n else 0
            for j in range(k):
                i = (start + j) % n
                # A change the 4-significant-digit status rounding sees.
                self.ratio5m[i] = self.ratio5m[i] * 1.01 if self.ratio5m[i] < BUDGET * 0.5 else BUDGET * 0.1
            self.drifts += 1
            self.cached = None

    def exposition(self, path):
        """The series of one scrape path: `short`, `long` or `hourly`."""
        # Stamped on a fixed schedule, as a rule group's evaluation stamps its samples: a
        # scrape's own timestamp is late by however long Prometheus took to start it, and the
        # operator reads samples off a group's schedule as a second writer's. The schedule is
        # set by the path's first scrape (5 s before it, so a late scrape stays on it), so a
        # sample is about as fresh when scraped as a recorded one is when written.
        now = int(time.time() * 1000)
        every = INTERVALS[path] * 1000
        with self.lock:
            phase = self.phases.setdefault(path, (now - 5000) % every)
        stamp = now - (now - phase) % every
        with self.lock:
            if self.cached is None:
                self.cached = {}
            if self.cached.get(path, (None, None))[0] == stamp:
                return self.cached[path][1]
            lines = []

            def series(name, ns, slo, value):
                # Labelled exactly as the rules label them, slo-warden's marker included.
                lines.append(f'{name}{{namespace="{ns}",slo="{slo}",slo_warden="{ns}/{slo}"}} {value:g} {stamp}')

            if path in ("short", "long"):
                for w in (WINDOWS[5:] if path == "long" else WINDOWS[:5]):
                    name = "slo:sli_error:ratio_rate" + w
                    lines.append(f"# TYPE {name} gauge")
                    for i, (ns, slo) in enumerate(self.slos):
                        series(name, ns, slo, self.burning.get(i, self.ratio5m[i] if w == "5m" else BUDGET * 0.2))
            if path == "short":
                # The one-minute tiles the release ledger counts, at 10 requests a second.
                lines.append("# TYPE slo:sli_errors:tile_rate1m gauge")
                for i, (ns, slo) in enumerate(self.slos):
                    series("slo:sli_errors:tile_rate1m", ns, slo, RPS * self.burning.get(i, self.ratio5m[i]))
                lines.append("# TYPE slo:sli_total:tile_rate1m gauge")
                for ns, slo in self.slos:
                    series("slo:sli_total:tile_rate1m", ns, slo, RPS)
            if path == "long":
                # The requests the 30-day window holds, for the ledger's share of the budget.
                lines.append("# TYPE slo:sli_requests:count30d gauge")
                for ns, slo in self.slos:
                    series("slo:sli_requests:count30d", ns, slo, RPS * 2592000)
                lines.append("# TYPE slo:error_budget:ratio gauge")
                for ns, slo in self.slos:
                    series("slo:error_budget:ratio", ns, slo, BUDGET)
                lines.append("# TYPE slo:error_budget_remaining:ratio gauge")
                for i, (ns, slo) in enumerate(self.slos):
                    series("slo:error_budget_remaining:ratio", ns, slo, self.remaining[i])
            if path == "hourly":
                # A long run at 0.2x to 0.7x the budget, over the 90 days the calibration reads.
                lines.append("# TYPE slo:long_run_burn:ratio gauge")
                for i, (ns, slo) in enumerate(self.slos):
                    series("slo:long_run_burn:ratio", ns, slo, 0.2 + (i % 50) * 0.01)
                lines.append("# TYPE slo:long_run_covered:seconds gauge")
                for ns, slo in self.slos:
                    series("slo:long_run_covered:seconds", ns, slo, 7776000)
                # The whole 30-day window held (slo:window_covered:seconds, hourly as well).
                lines.append("# TYPE slo:window_covered:seconds gauge")
                for ns, slo in self.slos:
                    series("slo:window_covered:seconds", ns, slo, 2592000)
            self.cached[path] = (stamp, ("\n".join(lines) + "\n").encode())
            return self.cached[path][1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--slos", required=True, help="file with one NAMESPACE/NAME per line")
    ap.add_argument("--drift-percent", type=int, default=1)
    ap.add_argument("--drift-interval", type=float, default=30.0)
    a = ap.parse_args()
    with open(a.slos, encoding="utf-8") as f:
        slos = [tuple(line.strip().split("/", 1)) for line in f if line.strip()]
    state = State(slos, a.drift_percent, a.drift_interval)

    def drifter():
        while True:
            time.sleep(state.drift_interval)
            if state.drifting:
                state.drift()

    threading.Thread(target=drifter, daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, code, body, ctype="text/plain; version=0.0.4"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = urllib.parse.urlparse(self.path).path
            if path in ("/metrics/short", "/metrics/long", "/metrics/hourly"):
                self.reply(200, state.exposition(path.rsplit("/", 1)[1]))
            elif path == "/control":
                with state.lock:
                    body = {"slos": len(state.slos), "drifting": state.drifting, "drifts": state.drifts,
                            "burning": {f"{state.slos[i][0]}/{state.slos[i][1]}": r for i, r in state.burning.items()}}
                self.reply(200, json.dumps(body).encode(), "application/json")
            elif path == "/healthz":
                self.reply(200, b"ok\n")
            else:
                self.reply(404, b"not found\n")

        def do_POST(self):
            u = urllib.parse.urlparse(self.path)
            if u.path != "/control":
                return self.reply(404, b"not found\n")
            q = urllib.parse.parse_qs(u.query)
            if "drift" in q:
                state.drifting = q["drift"][0] == "1"
                return self.reply(200, b"ok\n")
            slo, ratio = q.get("slo", [""])[0], q.get("ratio", [""])[0]
            if slo not in state.index:
                return self.reply(400, f"unknown slo {slo!r}\n".encode())
            try:
                r = float(ratio)
            except ValueError:
                return self.reply(400, b"ratio must be a number\n")
            with state.lock:
                if r < 0:
                    state.burning.pop(state.index[slo], None)
                else:
                    state.burning[state.index[slo]] = r
                state.cached = None
            self.reply(200, b"ok\n")

    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
