#!/usr/bin/env python3
"""Whole-rule-set cost of ten 99.9%/30d SLOs: Sloth, Pyrra, Pyrra performanceOverAccuracy, slo-warden.

For each SLI cardinality (3 and 60 raw series per SLI) this script generates 31 days of 30s-scraped
OpenMetrics for ten services (window_cost.py's traffic model: day/night cycle, error bursts, a
no-traffic stretch, a counter reset) ending now, with the exact error and request counts on the
side; backfills them with promtool; starts Prometheus on 127.0.0.1 with a temporary data directory
and a local exporter that carries the same counters on live (so the short windows see fresh
samples); backfills the recorded series the windows are built from (our 5m tiles, Sloth's 5m
ratio, Pyrra's performanceOverAccuracy 5m increase; our 1m tiles over the last day only) with
`promtool tsdb create-blocks-from rules`; then loads each tool's generated rule file in turn
(reload, ours first) and lets it evaluate.

Reported per rule set: rules/SLO; rule-evaluation seconds per hour per SLO, from
prometheus_rule_group_last_duration_seconds (mean over the evaluations seen after each group's
first, times 3600/interval,
summed over the groups, divided by 10); the Prometheus process CPU per hour per SLO less the
CPU of the same Prometheus without rules; the series the rules write per SLO; and the worst
30d error ratio, over the 10 SLOs, against the exact one (queried at the end of the generated data).

Python 3 standard library only. Needs prometheus/promtool, slo-warden, Sloth and Pyrra binaries.
Exit status: 0 when our targets are met, 1 when one is missed, 2 when the bench could not run.
"""

import argparse
import http.server
import json
import math
import os
import random
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import window_cost as wc  # noqa: E402  (traffic model and process handling)
from window_cost import DAY, BenchError, log, run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "bench" / "rule-cost"
SCRAPE_S = 30
N_SLO = 10
JOB = "bench"
# Raw series per SLI: instances x codes. Errors are the 5xx codes.
CARDINALITIES = {
    3: (1, ("200", "500", "503")),
    60: (5, ("200", "201", "202", "204", "301", "304", "400", "404", "429", "500", "502", "503")),
}
CODE_SHARE = {"200": 0.80, "201": 0.04, "202": 0.01, "204": 0.03, "301": 0.01, "304": 0.05, "400": 0.02,
              "404": 0.03, "429": 0.01, "500": 0.65, "502": 0.10, "503": 0.25}
INSTANCE_SHARE = {1: (1.0,), 5: wc.INSTANCE_SHARE}
PHASE_MS = wc.PHASE_MS
SVC_PEAK = [60.0 + 30.0 * i for i in range(N_SLO)]  # rps at the daily peak, per service
SETS = ("sloth", "pyrra", "pyrra-perf", "slo-warden")
# Records the windows are computed from, backfilled so that they mean something: the long windows'
# sources over all the data, and our one-minute tiles (which feed windows of up to 6h) over the
# last day.
BACKFILL = {
    "slo-warden": ("slo:sli_errors:tile_rate5m", "slo:sli_total:tile_rate5m"),
    "sloth": ("slo:sli_error:ratio_rate5m",),
    "pyrra-perf": ("http_requests:increase5m",),
}
BACKFILL_LAST_DAY = {
    "slo-warden": ("slo:sli_errors:tile_rate1m", "slo:sli_total:tile_rate1m"),
}
EVAL_TARGET = 0.10  # our rule-eval s/h/SLO over Pyrra's (standard), at every cardinality
ACCURACY_TARGET = 1e-4  # our 30d ratio within 0.01% (relative) of the exact one
BLOCK_BATCH = 2000  # backfilled rule blocks handed to Prometheus at a time


# ---------------------------------------------------------------------------------------------
# Traffic


class Traffic:
    """Ten services' counters; `advance` moves them on to a time, as the generator and the exporter do."""

    def __init__(self, card, start_ms, seed):
        self.instances, self.codes = CARDINALITIES[card]
        self.start_ms = start_ms
        self.rnd = random.Random(seed)
        self.errors = [c for c in self.codes if c.startswith("5")]
        self.good = [c for c in self.codes if not c.startswith("5")]
        gs = sum(CODE_SHARE[c] for c in self.good)
        es = sum(CODE_SHARE[c] for c in self.errors)
        self.share = {c: CODE_SHARE[c] / (es if c.startswith("5") else gs) for c in self.codes}
        self.reset_inst = min(2, self.instances - 1)
        # (svc, inst) -> [last time ms, cumulative values by code index, split remainders]
        self.state = {}
        for s in range(N_SLO):
            for i in range(self.instances):
                cum = [self.rnd.randint(1_000, 100_000) if c.startswith("2") else self.rnd.randint(10, 900) for c in self.codes]
                self.state[(s, i)] = [start_ms + PHASE_MS[i] + 97 * s, cum, [0.0] * len(self.codes)]

    def poisson(self, mu):
        if mu <= 0:
            return 0
        if mu < 30:
            limit, k, p = math.exp(-mu), 0, 1.0
            while True:
                p *= self.rnd.random()
                if p <= limit:
                    return k
                k += 1
        return max(0, int(round(self.rnd.gauss(mu, math.sqrt(mu)))))

    def step(self, s, i, t):
        """Requests of (service, instance) between its last time and t (ms): counts by code."""
        st = self.state[(s, i)]
        prev = st[0]
        mid = ((prev + t) / 2 - self.start_ms) / 1000
        level = wc.load(mid)
        n = self.poisson(SVC_PEAK[s] * INSTANCE_SHARE[self.instances][i] * level * (t - prev) / 1000)
        e = min(n, self.poisson(n * wc.error_ratio(mid, level, 4 if i == 4 else 0)))
        rem = st[2]
        counts = []
        for k, c in enumerate(self.codes):
            rem[k] += (e if c.startswith("5") else n - e) * self.share[c]
            v = int(rem[k])
            rem[k] -= v
            counts.append(v)
        return prev, counts

    def commit(self, s, i, t, counts):
        st = self.state[(s, i)]
        if i == self.reset_inst and st[0] < self.start_ms + wc.RESET[1] * 1000 <= t:
            st[1] = [0] * len(self.codes)
        st[0] = t
        for k, v in enumerate(counts):
            st[1][k] += v

    def is_error(self, k):
        return self.codes[k].startswith("5")

    def labels(self, s, i, code):
        return f'code="{code}",instance="i-{i}",job="{JOB}",service="svc{s}"'


def generate(path, traffic, end_ms, window_start_ms):
    """OpenMetrics for all series up to end_ms; exact (errors, total) per service in (window_start, end]."""
    exact = [[0.0, 0.0] for _ in range(N_SLO)]
    samples = 0
    with open(path, "w") as out:
        out.write("# HELP http_requests Requests served.\n# TYPE http_requests counter\n")
        for s in range(N_SLO):
            for i in range(traffic.instances):
                st = traffic.state[(s, i)]
                times = [st[0]]
                values = [[v] for v in st[1]]
                base, k = st[0], 0
                while True:
                    k += 1
                    t = base + k * SCRAPE_S * 1000 + traffic.rnd.randint(-3, 3)
                    prev, counts = traffic.step(s, i, t)
                    overlap = max(0, min(t, end_ms) - max(prev, window_start_ms)) / (t - prev)
                    n = sum(counts)
                    exact[s][1] += n * overlap
                    exact[s][0] += sum(v for c, v in enumerate(counts) if traffic.is_error(c)) * overlap
                    if t > end_ms:
                        # Requests after the last scrape happened but were never scraped: the exporter
                        # carries on from the last scrape, so keep them pending there.
                        break
                    traffic.commit(s, i, t, counts)
                    times.append(t)
                    for c, v in enumerate(st[1]):
                        values[c].append(v)
                stamps = [f"{ms // 1000}.{ms % 1000:03d}" for ms in times]
                for c, code in enumerate(traffic.codes):
                    name = f"http_requests_total{{{traffic.labels(s, i, code)}}} "
                    out.write("".join(f"{name}{v} {ts}\n" for v, ts in zip(values[c], stamps)))
                    samples += len(stamps)
        out.write("# EOF\n")
    return exact, samples


class Exporter:
    """Serves the counters live, carrying on from the generated data at wall-clock time."""

    def __init__(self, traffic):
        self.traffic = traffic
        self.lock = threading.Lock()
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def render(self):
        now = int(time.time() * 1000)
        tr = self.traffic
        lines = ["# TYPE http_requests_total counter"]
        with self.lock:
            for (s, i), st in tr.state.items():
                if now > st[0]:
                    _, counts = tr.step(s, i, now)
                    tr.commit(s, i, now, counts)
                for c, code in enumerate(tr.codes):
                    lines.append(f"http_requests_total{{{tr.labels(s, i, code)}}} {st[1][c]}")
        return "\n".join(lines) + "\n"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Prometheus(wc.Prometheus):
    """window_cost's Prometheus, scraping the exporter (honor_labels) every 30s."""

    target = None

    def write_config(self, rule_files):
        cfg = {"global": {"evaluation_interval": "1m", "scrape_interval": f"{SCRAPE_S}s"},
               "rule_files": [str(f) for f in rule_files]}
        if self.target:
            cfg["scrape_configs"] = [{"job_name": JOB, "honor_labels": True, "static_configs": [{"targets": [self.target]}]}]
        self.config.write_text(json.dumps(cfg))

    def reload(self, rule_files):
        self.write_config(rule_files)
        status, body = self.request("POST", "/-/reload")
        if status != 200:
            raise BenchError(f"reload failed: {status} {body[:300]!r}")

    def rule_metrics(self):
        """{group key "file;name": {metric: value}} for the prometheus_rule_group_* gauges."""
        _, body = self.get("/metrics")
        out = {}
        for line in body.decode().splitlines():
            if not line.startswith("prometheus_rule_group_"):
                continue
            head, value = line.rsplit(" ", 1)
            if "{" not in head:
                continue
            name, labels = head.split("{", 1)
            key = labels.split('rule_group="', 1)[1].split('"', 1)[0] if 'rule_group="' in labels else None
            if key:
                out.setdefault(key, {})[name] = float(value)
        return out


# ---------------------------------------------------------------------------------------------
# Rule sets


def tool_env():
    env = dict(os.environ)
    if not (env.get("SLOTH_BIN") and env.get("PYRRA_BIN")):
        out = run([REPO / "e2e" / "scripts" / "build-slo-tools.sh", "env"], cwd=REPO)
        for line in out.splitlines():
            line = line.strip().removeprefix("export ")
            if "=" in line:
                k, v = line.split("=", 1)
                env.setdefault(k, v.strip("'\""))
    for k in ("SLOTH_BIN", "PYRRA_BIN"):
        if not env.get(k) or not Path(env[k]).exists():
            raise BenchError(f"{k} not found: run e2e/scripts/build-slo-tools.sh all")
    return env["SLOTH_BIN"], env["PYRRA_BIN"]


def generate_rule_sets(work):
    """Each tool's rule files for the ten SLOs, in work/rules/<set>/."""
    sloth, pyrra = tool_env()
    binary = wc.slo_warden_binary()
    out = {}
    for name in SETS:
        d = work / "rules" / name
        d.mkdir(parents=True)
        if name == "slo-warden":
            (d / "rules.yaml").write_text(run([binary, "generate", "--format", "rulefile", "--scrape-interval", f"{SCRAPE_S}s",
                                               SPECS / "slo-warden.yaml"]))
        elif name == "sloth":
            run([sloth, "generate", "--no-log", "-i", SPECS / "sloth.yml", "-o", d / "rules.yaml", "--default-slo-period=30d"])
        else:
            # Pyrra reads one object per file.
            src = work / "rules" / f"{name}-specs"
            src.mkdir()
            docs = [doc for doc in (SPECS / f"{name}.yaml").read_text().split("\n---\n") if "kind:" in doc]
            for k, doc in enumerate(docs):
                (src / f"slo{k}.yaml").write_text(doc)
                run([pyrra, "generate", f"--config-files={src / f'slo{k}.yaml'}", f"--prometheus-folder={d}/"])
        files = sorted(d.glob("*.yaml"))
        for f in files:
            run(["promtool", "check", "rules", f])
        out[name] = files
    return out


def read_groups(prom, files):
    prom.reload(files)
    groups = prom.api("/api/v1/rules")["groups"]
    prom.reload([])
    return groups


def set_of(group, sets):
    for name, files in sets.items():
        if any(group["file"] == str(f) for f in files):
            return name
    return None


def kind(set_name, group_name):
    if set_name == "slo-warden":
        return group_name.rsplit(":", 1)[-1]
    if set_name == "sloth":
        return group_name.split("-")[2]  # sloth-slo-<sli|meta|alerts>-...
    return "increase" if group_name.endswith("-increase") else "burnrate"


def slo_of(rule):
    labels = rule.get("labels", {})
    return labels.get("slo") or labels.get("sloth_slo")


# ---------------------------------------------------------------------------------------------
# Measurement


def ratio_30d(prom, set_name, groups, at):
    """The 30d error ratio each rule set records, by SLO, evaluated at `at`."""
    out = {}
    for g in groups:
        for r in g["rules"]:
            if r["type"] != "recording":
                continue
            if set_name in ("slo-warden", "sloth") and r["name"] == "slo:sli_error:ratio_rate30d":
                res = prom.query(r["query"], at)["result"]
                out[slo_of(r)] = float(res[0]["value"][1]) if res else math.nan
            elif set_name.startswith("pyrra") and r["name"] == "http_requests:increase30d":
                res = prom.query(r["query"], at)["result"]
                err = sum(float(x["value"][1]) for x in res if x["metric"].get("code", "").startswith("5"))
                tot = sum(float(x["value"][1]) for x in res)
                out[slo_of(r)] = err / tot if tot else math.nan
    return out


def time_group(prom, group):
    """A group's evaluation time estimated with the query API (engine evalTotalTime, median of 3)."""
    total = 0.0
    now = time.time()
    for r in group["rules"]:
        ts = [prom.query(r["query"], now)["stats"]["timings"]["evalTotalTime"] for _ in range(3)]
        total += statistics.median(ts)
    return total


def series_written(prom, groups):
    n = 0
    now = time.time()
    for g in groups:
        for r in g["rules"]:
            if r["type"] == "recording":
                n += len(prom.query(r["query"], now)["result"])
            else:
                n += len(r.get("alerts", [])) * (2 if r.get("duration", 0) else 1)
    return n


def measure_set(prom, name, files, run_s, idle_cpu_per_s, poll_s=5.0):
    prom.reload(files)
    groups = prom.api("/api/v1/rules")["groups"]
    keys = {f"{g['file']};{g['name']}": g for g in groups}
    seen = {k: {} for k in keys}  # key -> {last evaluation ts: duration}
    c0, t0 = prom.cpu_seconds(), time.time()
    while True:
        for key, m in prom.rule_metrics().items():
            if key in seen and m.get("prometheus_rule_group_last_evaluation_timestamp_seconds", 0) > 0:
                seen[key][m["prometheus_rule_group_last_evaluation_timestamp_seconds"]] = m["prometheus_rule_group_last_duration_seconds"]
        if time.time() - t0 >= run_s:
            break
        time.sleep(poll_s)
    cpu = prom.cpu_seconds() - c0
    elapsed = time.time() - t0
    per_kind, estimated, evals = {}, [], 0
    for key, g in keys.items():
        # A group's first evaluation after the reload creates its series (head index, WAL records):
        # a one-off, left out so that the figure is the steady state for every rule set alike.
        durations = [d for _, d in sorted(seen[key].items())][1:]
        if durations:
            d = statistics.mean(durations)
            evals += len(durations)
        else:
            d = time_group(prom, g)
            estimated.append(g["name"])
        k = kind(name, g["name"])
        per_kind[k] = per_kind.get(k, 0.0) + d * 3600 / g["interval"] / N_SLO
    groups = prom.api("/api/v1/rules")["groups"]
    groups = [g for g in groups if f"{g['file']};{g['name']}" in keys]
    n_rules = sum(len(g["rules"]) for g in groups)
    return {
        "rules_per_slo": n_rules / N_SLO,
        "groups": len(groups),
        "eval_s_per_h_per_slo": sum(per_kind.values()),
        "by_kind": per_kind,
        "estimated_groups": len(estimated),
        "evaluations_seen": evals,
        "cpu_s_per_h_per_slo": (cpu / elapsed - idle_cpu_per_s) * 3600 / N_SLO,
        "series_per_slo": series_written(prom, groups) / N_SLO,
        "run_s": round(elapsed),
        "_groups": groups,
    }


def wait_quiet(prom, data, probe, deadline_s):
    deadline = time.time() + deadline_s
    while True:
        metas = wc.blocks(data)
        loaded = prom.metric("prometheus_tsdb_blocks_loaded")
        ready = not wc.overlapping(metas) and loaded == len(metas)
        if ready and probe:
            ready = bool(prom.query(probe, time.time())["result"])
        if ready:
            c0 = prom.cpu_seconds()
            time.sleep(2)
            if prom.cpu_seconds() - c0 < 0.1:
                return len(metas)
        if time.time() > deadline:
            raise BenchError(f"blocks not compacted after {deadline_s} s ({len(metas)} blocks, loaded={loaded})")
        time.sleep(2)


def bench_cardinality(args, card, work, rule_sets):
    cwork = work / f"card{card}"
    cwork.mkdir()
    end_ms = int(time.time() // SCRAPE_S * SCRAPE_S * 1000)
    start_ms = end_ms - args.days * DAY * 1000
    window_start_ms = max(start_ms, end_ms - 30 * DAY * 1000)
    end_s = end_ms // 1000
    traffic = Traffic(card, start_ms, args.seed + card)
    om = cwork / "traffic.om"
    t0 = time.time()
    exact, n_samples = generate(om, traffic, end_ms, window_start_ms)
    exact_ratio = {f"svc{s}-availability": e / t for s, (e, t) in enumerate(exact)}
    log(f"[{card}/SLI] generated {N_SLO * card} series, {n_samples:,} samples ({om.stat().st_size / 2**20:.0f} MiB) "
        f"in {time.time() - t0:.0f}s; exact ratios {min(exact_ratio.values()):.4%}..{max(exact_ratio.values()):.4%}")
    exporter = Exporter(traffic)
    RUNNING.append(exporter)

    data = cwork / "data"
    t0 = time.time()
    run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", "--max-block-duration=54h", om, data])
    om.unlink()
    log(f"[{card}/SLI] backfilled {len(wc.blocks(data))} blocks in {time.time() - t0:.0f}s")

    Prometheus.target = f"127.0.0.1:{exporter.port}"
    prom = Prometheus(cwork, data, [])
    RUNNING.append(prom)
    prom.start()

    all_files = [f for fs in rule_sets.values() for f in fs]
    groups = read_groups(prom, all_files)
    by_set = {}
    for g in groups:
        by_set.setdefault(set_of(g, rule_sets), []).append(g)

    # Backfill the records the windows read, each in its own group's name and interval.
    t0 = time.time()
    new_blocks, n_rules = [], 0
    for tag, records_by_set, since_s in (("", BACKFILL, start_ms // 1000), ("-last-day", BACKFILL_LAST_DAY, end_s - DAY)):
        backfill = {"groups": []}
        for name, records in records_by_set.items():
            for g in by_set[name]:
                rules = [{"record": r["name"], "expr": r["query"], "labels": r.get("labels", {})}
                         for r in g["rules"] if r["type"] == "recording" and r["name"] in records]
                if rules:
                    backfill["groups"].append({"name": g["name"], "interval": f"{int(g['interval'])}s", "rules": rules})
        n_rules += sum(len(g["rules"]) for g in backfill["groups"])
        bf = Path(f"backfill-rules{tag}.yaml")  # relative: the evaluation offsets do not depend on the temp dir
        (cwork / bf).write_text(json.dumps(backfill, indent=1))
        rule_blocks = cwork / f"rule-blocks{tag}"
        run(["promtool", "tsdb", "create-blocks-from", "rules", "--quiet", f"--url={prom.url}", f"--start={since_s}",
             f"--end={end_s}", f"--output-dir={rule_blocks}", bf], cwd=cwork)
        # promtool writes one 2h block per rule: hand them over in batches, so that Prometheus (which
        # compacts overlapping blocks) never holds more open blocks than its file limit allows.
        new_blocks += [(json.loads((d / "meta.json").read_text())["minTime"], d)
                       for d in rule_blocks.iterdir() if (d / "meta.json").exists()]
    new_blocks.sort()
    log(f"[{card}/SLI] backfilled {n_rules} recording rules ({len(new_blocks)} blocks) in "
        f"{time.time() - t0:.0f}s; waiting for Prometheus to load and compact them")
    t0 = time.time()
    batch = args.block_batch
    for k in range(0, len(new_blocks), batch):
        for _, d in new_blocks[k:k + batch]:
            shutil.move(str(d), str(data / d.name))
        last = k + batch >= len(new_blocks)
        probe = 'count_over_time(slo:sli_errors:tile_rate5m{slo="svc0-availability"}[1d] offset 10m) > 200' if last else None
        n_blocks = wait_quiet(prom, data, probe, 900)
    log(f"[{card}/SLI] {n_blocks} blocks after {time.time() - t0:.0f}s; idle CPU for {args.idle}s")

    c0, t0 = prom.cpu_seconds(), time.time()
    time.sleep(args.idle)
    idle = (prom.cpu_seconds() - c0) / (time.time() - t0)

    results = {}
    # Ours first: the one-minute tiles were backfilled up to the end of the generated data, and the
    # live ones start when the set is loaded, so measuring it first keeps that gap to a few minutes.
    for name in sorted(SETS, key=lambda n: n != "slo-warden"):
        files = rule_sets[name]
        log(f"[{card}/SLI] {name}: {sum(len(g['rules']) for g in by_set[name])} rules in {len(by_set[name])} groups, "
            f"evaluating for {args.run}s")
        r = measure_set(prom, name, files, args.run, idle)
        got = ratio_30d(prom, name, r.pop("_groups"), end_s)
        errs = {slo: abs(v - exact_ratio[slo]) / exact_ratio[slo] if not math.isnan(v) else math.inf for slo, v in got.items()}
        r["worst_error"] = max(errs.values()) if len(errs) == N_SLO else math.inf
        r["ratios"] = got
        results[name] = r
        log(f"[{card}/SLI] {name}: {r['eval_s_per_h_per_slo']:.3f} s/h/SLO rule evaluation, CPU {r['cpu_s_per_h_per_slo']:.2f} s/h/SLO, "
            f"worst error {r['worst_error']:.4%}")
        prom.reload([])
    prom.stop()
    RUNNING.remove(prom)
    exporter.stop()
    RUNNING.remove(exporter)
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return {"samples": n_samples, "series": N_SLO * card, "blocks": n_blocks, "idle_cpu_s_per_h": idle * 3600,
            "exact": exact_ratio, "sets": {name: results[name] for name in SETS}}


def fmt_err(e):
    return "NaN/missing" if math.isinf(e) or math.isnan(e) else f"{e * 100:.4g}%"


def report(args, all_results):
    print()
    print(f"Whole rule sets of {N_SLO} SLOs (99.9%, 30d), Prometheus {wc.prometheus_version()}, {args.days} days of "
          f"{SCRAPE_S}s data, {args.run}s of live evaluation per set; s/h/SLO = seconds per hour of evaluation per SLO")
    for card, res in all_results.items():
        print()
        print(f"### {card} raw series per SLI ({res['series']} series, {res['samples']:,} samples, {res['blocks']} blocks; "
              f"Prometheus without rules: {res['idle_cpu_s_per_h']:.1f} CPU s/h)")
        print()
        print("| rule set | rules/SLO | rule-eval s/h/SLO | by group kind | Prometheus CPU s/h/SLO | series written/SLO | worst 30d error |")
        print("|---|---|---|---|---|---|---|")
        for name, r in res["sets"].items():
            kinds = ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["by_kind"].items(), key=lambda kv: -kv[1]))
            est = f" ({r['estimated_groups']} groups timed by query*)" if r["estimated_groups"] else ""
            print(f"| {name} | {r['rules_per_slo']:g} | {r['eval_s_per_h_per_slo']:.3f} | {kinds}{est} | "
                  f"{r['cpu_s_per_h_per_slo']:.2f} | {r['series_per_slo']:g} | {fmt_err(r['worst_error'])} |")
    print()
    print("* groups that did not evaluate during the run (interval longer than the run, or first evaluation offset "
          "after its end): their rules' queries were timed once each through the query API (engine evalTotalTime).")


RUNNING = wc.RUNNING


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 days of data, 3 min per rule set, 20 s idle")
    ap.add_argument("--days", type=int, help="days of data (default 31)")
    ap.add_argument("--run", type=int, help="seconds of live evaluation per rule set (default 330)")
    ap.add_argument("--idle", type=int, help="seconds of CPU measured without rules (default 60)")
    ap.add_argument("--cardinality", type=int, action="append", choices=sorted(CARDINALITIES),
                    help="raw series per SLI (repeatable; default 3 and 60)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--block-batch", type=int, default=BLOCK_BATCH, help=argparse.SUPPRESS)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory (printed)")
    args = ap.parse_args()
    args.days = args.days or (8 if args.quick else 31)
    args.run = args.run or (180 if args.quick else 330)
    args.idle = args.idle or (20 if args.quick else 60)
    cards = args.cardinality or sorted(CARDINALITIES)

    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            log(f"{tool} not found: apt-get install -y prometheus")
            return 2
    started = time.time()
    return wc.guarded("slo-warden-rule-cost-", args.keep, lambda work: bench(args, cards, work, started))


def bench(args, cards, work, started):
    rule_sets = generate_rule_sets(work)
    results = {card: bench_cardinality(args, card, work, rule_sets) for card in cards}
    report(args, results)
    if args.json:
        Path(args.json).write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1, default=str))
    missed = []
    for card, res in results.items():
        ours, pyrra = res["sets"]["slo-warden"], res["sets"]["pyrra"]
        ratio = ours["eval_s_per_h_per_slo"] / pyrra["eval_s_per_h_per_slo"]
        print(f"{card}/SLI: slo-warden rule evaluation = {ratio:.3f}x Pyrra's (target <= {EVAL_TARGET}); "
              f"worst 30d error {fmt_err(ours['worst_error'])} (target <= {ACCURACY_TARGET:.2%})")
        if not ratio <= EVAL_TARGET:
            missed.append(f"{card}/SLI: rule evaluation {ratio:.3f}x Pyrra's > {EVAL_TARGET}")
        if not ours["worst_error"] <= ACCURACY_TARGET:
            missed.append(f"{card}/SLI: 30d ratio {fmt_err(ours['worst_error'])} off > {ACCURACY_TARGET:.2%}")
    print(f"bench took {time.time() - started:.0f}s")
    if missed:
        print("TARGET MISSED: " + "; ".join(missed))
        return 1
    print("targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
