#!/usr/bin/env python3
"""One run of the scale benchmark (bench/scale.sh runs it per fleet size): N ServiceLevelObjectives
and N/10 ErrorBudgetPolicies (each selecting 10 SLOs and 2 Deployments) on a running e2e control
plane whose Prometheus scrapes bench/scale/exporter.py, and slo-warden run as the chart runs it
(its ServiceAccount, its flags) from the release binary. Prints one JSON object of measurements.

Writes are counted from the kube-apiserver audit log (cluster-up.sh with E2E_AUDIT=1), by the
operator's ServiceAccount: what the API server saw, not what the operator says it did.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

SLOS_PER_NS = 100
SLOS_PER_POLICY = 10
DEPLOYMENTS_PER_POLICY = 2
RELEASE = "slo-warden"
SYSTEM_NS = "slo-warden"
OPERATOR_USER = "system:serviceaccount:%s:%s" % (SYSTEM_NS, RELEASE)


def log(msg):
    print("[scale %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class Bench:
    def __init__(self, a):
        self.a = a
        self.n = a.slos
        self.namespaces = ["scale-%03d" % k for k in range((self.n + SLOS_PER_NS - 1) // SLOS_PER_NS)]
        self.proc = None
        self.http_port = None
        self.results = {"slos": self.n, "policies": self.n // SLOS_PER_POLICY,
                        "deployments": self.n // SLOS_PER_POLICY * DEPLOYMENTS_PER_POLICY}

    # ---- tools -------------------------------------------------------------------------
    def kubectl(self, *args, stdin=None, check=True, timeout=600):
        out = subprocess.run([self.a.kubectl, *args], input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError("kubectl %s: %s" % (" ".join(args[:4]), out.stderr.strip()))
        return out.stdout

    def prom(self, query):
        url = "%s/api/v1/query?%s" % (self.a.prometheus_url, urllib.parse.urlencode({"query": query}))
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)["data"]["result"]

    def exporter(self, method, path):
        req = urllib.request.Request(self.a.exporter_url + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read().decode()

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http_port, timeout=10) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            rest = line[len(name):]
            if not (rest.startswith("{") or rest.startswith(" ")):
                continue
            if all('%s="%s"' % kv in rest for kv in labels.items()):
                total += float(rest.rsplit(" ", 1)[1])
        return total

    # ---- the fleet -------------------------------------------------------------------------
    def objects(self, ns):
        docs = []
        k = self.namespaces.index(ns)
        count = min(SLOS_PER_NS, self.n - k * SLOS_PER_NS)
        for j in range(count):
            group = "g%d" % (j // SLOS_PER_POLICY)
            docs.append({
                "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
                "metadata": {"name": "slo-%03d" % j, "namespace": ns, "labels": {"group": group}},
                "spec": {
                    "service": "svc-%d" % j, "objective": 99.9, "window": "30d",
                    "indicator": {"ratio": {
                        "errors": 'http_requests_total{job="api",namespace="%s",service="svc-%d",code=~"5.."}' % (ns, j),
                        "total": 'http_requests_total{job="api",namespace="%s",service="svc-%d"}' % (ns, j)}},
                },
            })
        for g in range(count // SLOS_PER_POLICY):
            group = "g%d" % g
            docs.append({
                "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
                "metadata": {"name": "policy-%s" % group, "namespace": ns},
                "spec": {
                    "slos": {"selector": {"matchLabels": {"group": group}}},
                    "stages": [{"name": "fast-burn", "when": [{"burnRate": {"window": "5m", "above": 14.4}}],
                                "actions": ["freezeDeployments"]}],
                    "targets": {"deployments": {"matchLabels": {"group": group}}},
                    "releaseAfter": "2m",
                },
            })
            for d in range(DEPLOYMENTS_PER_POLICY):
                name = "web-%s-%d" % (group, d)
                docs.append({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": ns, "labels": {"group": group}},
                    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                             "template": {"metadata": {"labels": {"app": name, "group": group}},
                                          "spec": {"containers": [{"name": "app", "image": "registry.invalid/web:1"}]}}},
                })
        return docs

    def slo_list(self):
        return ["%s/slo-%03d" % (ns, j) for k, ns in enumerate(self.namespaces)
                for j in range(min(SLOS_PER_NS, self.n - k * SLOS_PER_NS))]

    def create_fleet(self):
        t = time.time()
        self.kubectl("apply", "-f", "-", stdin="\n---\n".join(json.dumps({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}) for ns in self.namespaces))

        def create(ns):
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump({"apiVersion": "v1", "kind": "List", "items": self.objects(ns)}, f)
            try:
                self.kubectl("create", "-f", f.name, timeout=1800)
            finally:
                os.unlink(f.name)

        pending = list(self.namespaces)
        lock = threading.Lock()
        errors = []

        def worker():
            while True:
                with lock:
                    if not pending:
                        return
                    ns = pending.pop()
                try:
                    create(ns)
                except Exception as e:  # noqa: BLE001
                    errors.append(str(e))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise RuntimeError(errors[0])
        log("created %d SLOs, %d policies, %d Deployments in %d namespaces in %.0fs" % (
            self.n, self.results["policies"], self.results["deployments"], len(self.namespaces), time.time() - t))

    # ---- the operator, as the chart runs it ------------------------------------------------
    def install_chart(self):
        self.kubectl("create", "namespace", SYSTEM_NS, check=False)
        out = subprocess.run([self.a.helm, "install", RELEASE, self.a.chart, "--namespace", SYSTEM_NS, "--skip-crds",
                              "--set", "prometheusUrl=%s" % self.a.prometheus_url,
                              "--set", "scrapeInterval=%s" % self.a.scrape_interval,
                              "--set", "pollInterval=%s" % self.a.poll_interval,
                              "--set", "webhook.enabled=false", "--set", "replicaCount=0",
                              "--set", "logFormat=text"], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("helm install: " + out.stderr)
        dep = json.loads(self.kubectl("get", "deployment", RELEASE, "-n", SYSTEM_NS, "-o", "json"))
        self.chart_args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        with open(os.path.join(self.a.out, "operator.args.json"), "w") as f:
            json.dump(self.chart_args, f)
        token = json.loads(self.kubectl("create", "--raw",
                                        "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (SYSTEM_NS, RELEASE), "-f", "-",
                                        stdin=json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                                          "spec": {"expirationSeconds": 86400}})))["status"]["token"]
        config = json.loads(self.kubectl("config", "view", "--raw", "--minify", "-o", "json"))
        config["users"] = [{"name": RELEASE, "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = RELEASE
        self.kubeconfig = os.path.join(self.a.out, "operator.kubeconfig")
        with open(self.kubeconfig, "w") as f:
            json.dump(config, f)

    def start_operator(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.http_port = s.getsockname()[1]
        s.close()
        args = [a if not a.startswith("--http-addr=") else "--http-addr=127.0.0.1:%d" % self.http_port
                for a in self.chart_args]
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, POD_NAMESPACE=SYSTEM_NS, POD_NAME=RELEASE + "-0",
                   RUST_LOG=os.environ.get("SCALE_RUST_LOG", "info,kube=warn"), NO_COLOR="1")
        for k in ("PROMETHEUS_URL", "POLL_INTERVAL", "WATCH_NAMESPACES", "HTTP_ADDR", "RULE_LABELS"):
            env.pop(k, None)
        logf = open(os.path.join(self.a.out, "operator.log"), "a")
        self.proc = subprocess.Popen([self.a.operator, *args], env=env, stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL)
        started = time.time()
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.http_port, timeout=2).read()
                break
            except Exception:  # noqa: BLE001
                if self.proc.poll() is not None:
                    raise RuntimeError("the operator exited; see %s/operator.log" % self.a.out)
                if time.time() - started > 300:
                    raise RuntimeError("the operator is not ready after 300s")
                time.sleep(0.2)
        return started

    def stop_operator(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    # ---- the audit log ---------------------------------------------------------------------
    def audit_offset(self):
        return os.path.getsize(self.a.audit_log) if os.path.exists(self.a.audit_log) else 0

    def writes_since(self, offset, settle=3.0):
        """The operator's writes in the audit log after `offset`, by resource (batch mode
        flushes every second or so: wait `settle` first)."""
        time.sleep(settle)
        counts = {}
        with open(self.a.audit_log, "rb") as f:
            f.seek(offset)
            for raw in f:
                try:
                    e = json.loads(raw)
                except ValueError:
                    continue
                if e.get("user", {}).get("username") != OPERATOR_USER:
                    continue
                ref = e.get("objectRef", {})
                key = ref.get("resource", "?") + ("/" + ref["subresource"] if ref.get("subresource") else "")
                counts[key] = counts.get(key, 0) + 1
        return counts

    # ---- waiting -----------------------------------------------------------------------------
    def ready_counts(self):
        out = self.kubectl("get", "slo", "-A", "--no-headers", "-o",
                           'custom-columns=R:.status.conditions[?(@.type=="Ready")].status', timeout=120)
        slos_ready = sum(1 for line in out.split() if line == "True")
        rules = len(self.kubectl("get", "prometheusrules", "-A", "--no-headers", "-o", "name", timeout=120).split())
        out = self.kubectl("get", "ebp", "-A", "--no-headers", "-o",
                           'custom-columns=R:.status.conditions[?(@.type=="Ready")].status', timeout=120)
        policies_ready = sum(1 for line in out.split() if line == "True")
        return slos_ready, rules, policies_ready

    def wait_converged(self, started, what):
        last = None
        while True:
            counts = self.ready_counts()
            if counts != last:
                log("%s: %d/%d SLOs Ready, %d PrometheusRules, %d/%d policies Ready (%.0fs)" % (
                    what, counts[0], self.n, counts[1], counts[2], self.results["policies"], time.time() - started))
                last = counts
            if counts[0] == self.n and counts[1] == self.n and counts[2] == self.results["policies"]:
                return time.time() - started
            if time.time() - started > self.a.timeout:
                raise RuntimeError("%s: not converged after %ds: %s" % (what, self.a.timeout, counts))
            time.sleep(2)

    def wait_reconciled(self, started):
        """Until this process has reconciled every SLO and every policy once (the cluster says
        Ready from before a restart, so only the operator can tell)."""
        while True:
            slos = self.metric("slo_warden_reconciliations_total", controller="slo")
            policies = self.metric("slo_warden_reconciliations_total", controller="policy")
            if slos >= self.n and policies >= self.results["policies"]:
                took = time.time() - started
                log("restart: reconciled %d SLOs and %d policies (%.1fs)" % (slos, policies, took))
                return took
            if time.time() - started > self.a.timeout:
                raise RuntimeError("restart: %d SLO and %d policy reconciles after %ds" % (slos, policies, self.a.timeout))
            time.sleep(0.5)

    def poll_seconds(self):
        v = self.a.poll_interval
        return float(v[:-1]) * {"s": 1, "m": 60}[v[-1]]

    def wait_cycles(self, cycles):
        """Waits until the operator has finished `cycles` more poll cycles."""
        start = self.metric("slo_warden_prometheus_queries_total")
        per = max(1.0, self.metric("slo_warden_prometheus_queries_per_cycle"))
        deadline = time.time() + (cycles + 2) * self.poll_seconds() + 60
        while self.metric("slo_warden_prometheus_queries_total") < start + cycles * per:
            if time.time() > deadline:
                raise RuntimeError("no poll cycles")
            time.sleep(0.5)

    # ---- the measurements ------------------------------------------------------------------
    def run(self):
        r = self.results
        r["poll_interval_s"] = self.poll_seconds()
        self.install_chart()
        self.create_fleet()

        # Cold start: every PrometheusRule applied, every SLO and policy Ready.
        offset = self.audit_offset()
        started = self.start_operator()
        r["cold_start_s"] = round(self.wait_converged(started, "cold start"), 1)
        self.wait_cycles(1)
        writes = self.writes_since(offset)
        r["cold_start_writes"] = writes
        r["rss_after_cold_start_mib"] = round(self.rss_mib(), 1)

        # Object sizes as stored.
        rules = json.loads(self.kubectl("get", "prometheusrules", "-A", "-o", "json", timeout=300))["items"]
        r["prometheusrule_bytes_per_slo"] = round(sum(len(json.dumps(x, separators=(",", ":"))) for x in rules) / max(1, len(rules)))
        del rules

        # Steady state: 1% of the burn rates drift per cycle.
        self.exporter("POST", "/control?drift=1")
        self.wait_cycles(1)
        offset = self.audit_offset()
        cpu0, t0 = self.cpu_seconds(), time.time()
        q0 = self.metric("slo_warden_prometheus_queries_total")
        # The operator's own count of its writes, beside the audit log's, and whether every
        # SLO's series were read as its own (a disputed or rejected series means the fleet is
        # not what the operator sees in a healthy cluster, and the figures would not be either).
        w0 = self.metric("slo_warden_api_writes_total", controller="budget", kind="status")
        rejected0 = self.metric("slo_warden_budget_series_rejected_total")
        failed0 = self.metric("slo_warden_prometheus_queries_total", result="error")
        rss, disputed = [], 0
        while time.time() - t0 < self.a.steady:
            rss.append(self.rss_mib())
            disputed = max(disputed, self.metric("slo_warden_budget_disputed_slos"))
            if self.proc.poll() is not None:
                raise RuntimeError("the operator exited during the steady state")
            time.sleep(5)
        elapsed = time.time() - t0
        cpu = self.cpu_seconds() - cpu0
        writes = self.writes_since(offset)
        cycles = elapsed / self.poll_seconds()
        r["steady_seconds"] = round(elapsed)
        r["steady_cpu_cores"] = round(cpu / elapsed, 4)
        r["steady_rss_mib_max"] = round(max(rss), 1)
        r["steady_rss_mib_last"] = round(rss[-1], 1)
        r["steady_writes"] = writes
        r["steady_writes_per_min"] = round(sum(v for k, v in writes.items() if k != "leases") * 60 / elapsed, 1)
        r["lease_writes_per_min"] = round(writes.get("leases", 0) * 60 / elapsed, 1)
        r["status_writes_per_cycle"] = round(writes.get("servicelevelobjectives/status", 0) / cycles, 1)
        r["operator_status_writes_per_cycle"] = round(
            (self.metric("slo_warden_api_writes_total", controller="budget", kind="status") - w0) / cycles, 1)
        r["steady_disputed_slos_max"] = disputed
        r["steady_rejected_series"] = self.metric("slo_warden_budget_series_rejected_total") - rejected0
        r["steady_failed_queries"] = self.metric("slo_warden_prometheus_queries_total", result="error") - failed0
        r["burn_changes_per_cycle"] = max(1, self.n // 100)
        # What the operator reports for its last cycle, and the average over the steady state.
        r["prometheus_queries_per_cycle"] = self.metric("slo_warden_prometheus_queries_per_cycle")
        r["prometheus_queries_per_cycle_avg"] = round((self.metric("slo_warden_prometheus_queries_total") - q0) / cycles, 2)

        # Restart with nothing changed: budgets hold still, the statuses settle, then a
        # restart must write nothing (the Lease aside).
        self.exporter("POST", "/control?drift=0")
        self.wait_cycles(2)
        self.stop_operator()
        offset = self.audit_offset()
        started = self.start_operator()
        r["restart_converge_s"] = round(self.wait_reconciled(started), 1)
        self.wait_cycles(2)
        writes = self.writes_since(offset)
        r["restart_writes"] = {k: v for k, v in writes.items() if k != "leases"}
        r["restart_lease_writes"] = writes.get("leases", 0)

        # Burn to pause: one SLO burns 50x; from the first time Prometheus answers with the
        # burn to the Deployment paused.
        ns, slo = self.namespaces[-1], "slo-%03d" % (min(SLOS_PER_NS, self.n - (len(self.namespaces) - 1) * SLOS_PER_NS) - 1)
        group = "g%d" % (int(slo[4:]) // SLOS_PER_POLICY)
        deployment = "web-%s-0" % group
        self.exporter("POST", "/control?slo=%s/%s&ratio=0.05" % (ns, slo))
        sel = 'slo:sli_error:ratio_rate5m{namespace="%s",slo="%s"}' % (ns, slo)
        deadline = time.time() + 120
        while True:
            res = self.prom(sel)
            if res and float(res[0]["value"][1]) >= 0.05:
                t_true = time.time()
                break
            if time.time() > deadline:
                raise RuntimeError("Prometheus never saw the burn")
            time.sleep(0.1)
        while True:
            paused = self.kubectl("get", "deployment", deployment, "-n", ns, "-o", "jsonpath={.spec.paused}")
            if paused == "true":
                r["burn_to_pause_s"] = round(time.time() - t_true, 2)
                break
            if time.time() - t_true > 300:
                raise RuntimeError("the Deployment was not paused within 300s")
            time.sleep(0.1)
        self.exporter("POST", "/control?slo=%s/%s&ratio=-1" % (ns, slo))
        r["rss_final_mib"] = round(self.rss_mib(), 1)
        self.stop_operator()
        return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slos", type=int, required=True)
    ap.add_argument("--print-slos", action="store_true", help="print NAMESPACE/NAME of each SLO and exit")
    ap.add_argument("--operator")
    ap.add_argument("--kubectl")
    ap.add_argument("--helm")
    ap.add_argument("--chart")
    ap.add_argument("--prometheus-url")
    ap.add_argument("--exporter-url")
    ap.add_argument("--audit-log")
    ap.add_argument("--out")
    ap.add_argument("--scrape-interval", default="30s")
    ap.add_argument("--poll-interval", default="30s")
    ap.add_argument("--steady", type=int, default=600, help="seconds of steady state")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds allowed to converge")
    a = ap.parse_args()
    if a.print_slos:
        print("\n".join(Bench(a).slo_list()))
        return
    a.prometheus_url = a.prometheus_url.rstrip("/")
    os.makedirs(a.out, exist_ok=True)
    b = Bench(a)
    try:
        print(json.dumps(b.run()))
    finally:
        if b.proc and b.proc.poll() is None:
            b.proc.kill()


if __name__ == "__main__":
    main()
