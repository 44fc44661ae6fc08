#!/usr/bin/env python3
"""The table of bench/scale.sh from the result of each fleet size (scale.py's JSON), checked
against the targets; exits 1 when one is missed."""

import json
import sys


def main():
    runs = []
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            runs.append(json.load(f))
    runs.sort(key=lambda r: r["slos"])
    if not runs:
        sys.exit("no results")
    big = runs[-1]
    poll = big.get("poll_interval_s", 30)

    def row(label, key, fmt="{}"):
        return "| %s | %s |" % (label, " | ".join(fmt.format(r.get(key, "-")) if not callable(key) else key(r) for r in runs))

    def writes(d):
        return ", ".join("%s %d" % kv for kv in sorted(d.items())) or "0"

    lines = [
        "| | " + " | ".join("N = {:,}".format(r["slos"]) for r in runs) + " |",
        "|---|" + "---|" * len(runs),
        row("SLOs / policies / Deployments", lambda r: "{:,} / {:,} / {:,}".format(r["slos"], r["policies"], r["deployments"])),
        row("cold start: every PrometheusRule applied, every SLO and policy Ready (s)", "cold_start_s"),
        row("cold start: API writes", lambda r: writes(r["cold_start_writes"])),
        row("restart: converged (s)", "restart_converge_s"),
        row("restart: API writes (Lease aside)", lambda r: writes(r["restart_writes"])),
        row("steady: operator RSS, max (MiB)", "steady_rss_mib_max"),
        row("steady: operator CPU (cores)", "steady_cpu_cores"),
        row("steady: API writes per minute (Lease aside)", "steady_writes_per_min"),
        row("steady: Lease writes per minute", "lease_writes_per_min"),
        row("steady: Prometheus queries per poll cycle", "prometheus_queries_per_cycle"),
        row("steady: SLO status writes per cycle (burn rates changed per cycle)",
            lambda r: "%s (%s)" % (r["status_writes_per_cycle"], r["burn_changes_per_cycle"])),
        row("steady: SLO status writes per cycle, the operator's count", "operator_status_writes_per_cycle"),
        row("steady: SLOs disputed (max) / series rejected / queries failed",
            lambda r: "%s / %s / %s" % (r.get("steady_disputed_slos_max", "-"), r.get("steady_rejected_series", "-"),
                                        r.get("steady_failed_queries", "-"))),
        row("burn true in Prometheus → Deployment paused (s)", "burn_to_pause_s"),
        row("PrometheusRule object size per SLO (bytes)", "prometheusrule_bytes_per_slo"),
    ]
    print("\n".join(lines))

    missed = []
    if big["slos"] >= 10000:
        if big["steady_rss_mib_max"] >= 150:
            missed.append("RSS %.0f MiB >= 150 MiB at N=%d" % (big["steady_rss_mib_max"], big["slos"]))
        if big["steady_cpu_cores"] >= 0.05:
            missed.append("idle CPU %.3f cores >= 0.05 at N=%d" % (big["steady_cpu_cores"], big["slos"]))
        if big["burn_to_pause_s"] > poll + 2:
            missed.append("burn to pause %.1fs > poll interval + 2s at N=%d" % (big["burn_to_pause_s"], big["slos"]))
    for r in runs:
        # A fleet whose series the operator does not take as its own is not a healthy fleet:
        # what was measured is then something else.
        for key, what in (("steady_disputed_slos_max", "SLOs disputed"), ("steady_rejected_series", "series rejected"),
                          ("steady_failed_queries", "queries failed")):
            if r.get(key, 0):
                missed.append("%s in the steady state: %s at N=%d" % (what, r[key], r["slos"]))
        if r["restart_converge_s"] >= 60:
            missed.append("restart convergence %.0fs >= 60s at N=%d" % (r["restart_converge_s"], r["slos"]))
        if sum(r["restart_writes"].values()):
            missed.append("restart wrote %s at N=%d" % (writes(r["restart_writes"]), r["slos"]))
    if len({r["prometheus_queries_per_cycle"] for r in runs}) > 1:
        missed.append("Prometheus queries per cycle differ: %s" % [r["prometheus_queries_per_cycle"] for r in runs])
    print()
    if missed:
        print("targets missed:\n  " + "\n  ".join(missed))
        sys.exit(1)
    print("all targets met (RSS < 150 MiB and idle CPU < 0.05 core at 10,000 SLOs; restart < 60 s with "
          "no writes; queries per cycle constant; burn to pause within one poll interval + 2 s)")


if __name__ == "__main__":
    main()
