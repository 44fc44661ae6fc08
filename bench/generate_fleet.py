#!/usr/bin/env python3
"""`slo-warden generate` on a fleet of 10,000 ServiceLevelObjectives in one file: wall time and
peak memory of the release binary, for both output formats (part of `make bench`).

  bench/generate_fleet.py BINARY [N]
"""

import os
import subprocess
import sys
import tempfile
import time


def slo(i):
    service = "svc-%04d" % (i % 2500)
    selector = 'job="api",service="%s"' % service
    objective = ["99.9", "99.95", "99", "99.5", "99.99", "95"][i % 6]
    window = ["30d", "28d", "7d", "14d"][i % 4]
    if i % 3 == 0:
        indicator = ("    latency:\n      histogram: http_request_duration_seconds{%s}\n      threshold: 300ms\n" % selector)
    else:
        indicator = ("    ratio:\n      errors: http_requests_total{%s,code=~\"5..\"}\n      total: http_requests_total{%s}\n"
                     % (selector, selector))
    return ("apiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata:\n  name: %s-slo-%d\n"
            "  namespace: ns-%d\nspec:\n  service: %s\n  objective: %s\n  window: %s\n  indicator:\n%s"
            % (service, i, i % 100, service, objective, window, indicator))


def run(cmd):
    """Wall time, peak RSS (MiB) and CPU seconds of one run of `cmd`."""
    t = time.monotonic()
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=null, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            sys.exit("%s failed: %s" % (" ".join(cmd), err.read().decode()[:2000]))
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("---\n".join(slo(i) for i in range(n)))
        path = f.name
    try:
        print("| `slo-warden generate` on %s SLOs (one file) | wall | CPU | peak RSS |" % format(n, ","))
        print("|---|---|---|---|")
        for fmt in ["prometheusrule", "rulefile"]:
            wall, rss, cpu = run([binary, "generate", "--format", fmt, path])
            print("| --format %s | %.2f s | %.2f s | %.0f MiB |" % (fmt, wall, cpu, rss))
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
