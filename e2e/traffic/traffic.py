#!/usr/bin/env python3
"""Synthetic HTTP traffic for the end-to-end suite.

Serves /metrics in the Prometheus text format with, for every service:

  http_requests_total{service="<name>",code="200"|"500"}          counter
  http_request_duration_seconds_bucket{service="<name>",le="..."}  classic histogram
  http_request_duration_seconds_sum / _count{service="<name>"}

No requests are really made: counters advance with elapsed wall-clock time at
`rps` requests per second, a fraction `errors` of them answered with code 500
and a fraction `slow` of them taking `slow_seconds` (the rest `fast_seconds`).
Fractions are applied exactly over time (carried remainders), so rates are
deterministic. rps=0 freezes the counters.

Control API (query string or form-encoded body):
  GET  /control                      -> JSON state of every service
  POST /control?service=checkout&errors=0.2&slow=0.1&rps=10
       any subset of rps, errors, slow, fast_seconds, slow_seconds; without
       `service` the change applies to every service; an unknown service is
       created. Answers with the JSON state.
  GET  /healthz                      -> "ok"

Following what runs (the error rate of the image actually running, not the test's word):
  POST /control?service=checkout&follow=shop/app=web&image_errors=web:2=0.5
       every second, the ReplicaSets of namespace `shop` matching the label selector
       `app=web` are read (kubectl with --kubeconfig); the service's error fraction is
       then the mean over their pods of each pod's image error fraction (`image_errors`,
       comma-separated image=fraction; other images: `errors`). A rollout shifts it pod
       by pod; a rollback alone brings it down. `follow=` (empty) stops following.
"""

import argparse
import json
import math
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BUCKETS = (0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5)
PARAMS = ("rps", "errors", "slow", "fast_seconds", "slow_seconds")
TEXT_PARAMS = ("follow", "image_errors")


def fmt(le):
    # Same spelling as client_golang (strconv 'g'): 0.05, 1, 2.5, +Inf.
    return "+Inf" if le == math.inf else "%g" % le


class Service:
    def __init__(self, name, rps, errors, slow, fast_seconds, slow_seconds, now):
        self.name = name
        self.rps, self.errors, self.slow = rps, errors, slow
        self.fast_seconds, self.slow_seconds = fast_seconds, slow_seconds
        # Following the ReplicaSets of a workload: (namespace, selector), the error fraction
        # per image, and the fraction the pods running now give (None until read).
        self.follow = None
        self.image_errors = {}
        self.followed = None
        self.running = {}
        self.last = now
        self.carry = self.err_carry = self.slow_carry = 0.0
        self.ok = self.failed = 0          # requests by code
        self.fast_n = self.slow_n = 0      # requests by latency class
        self.sum = 0.0

    def advance(self, now):
        dt = max(0.0, now - self.last)
        self.last = now
        self.carry += self.rps * dt
        n = int(self.carry)
        if n <= 0:
            return
        self.carry -= n
        self.err_carry += n * self.error_fraction()
        e = min(n, int(self.err_carry))
        self.err_carry -= e
        self.slow_carry += n * self.slow
        s = min(n, int(self.slow_carry))
        self.slow_carry -= s
        self.failed += e
        self.ok += n - e
        self.slow_n += s
        self.fast_n += n - s
        self.sum += s * self.slow_seconds + (n - s) * self.fast_seconds

    def error_fraction(self):
        return self.errors if self.follow is None or self.followed is None else self.followed

    def set_running(self, pods_by_image):
        """The pods running each image of the followed workload, as just read."""
        total = sum(pods_by_image.values())
        self.running = pods_by_image
        if total == 0:
            self.followed = None
            return
        self.followed = sum(n * self.image_errors.get(img, self.errors) for img, n in pods_by_image.items()) / total

    def state(self):
        return {
            "follow": "/".join(self.follow) if self.follow else "",
            "image_errors": self.image_errors, "running": self.running,
            "effective_errors": self.error_fraction(),
            "rps": self.rps, "errors": self.errors, "slow": self.slow,
            "fast_seconds": self.fast_seconds, "slow_seconds": self.slow_seconds,
            "requests_200": self.ok, "requests_500": self.failed,
            "requests_slow": self.slow_n, "requests_fast": self.fast_n,
        }

    def metrics(self):
        lbl = 'service="%s"' % self.name
        out = [
            'http_requests_total{%s,code="200"} %d' % (lbl, self.ok),
            'http_requests_total{%s,code="500"} %d' % (lbl, self.failed),
        ]
        for le in BUCKETS + (math.inf,):
            c = (self.fast_n if self.fast_seconds <= le else 0) + (self.slow_n if self.slow_seconds <= le else 0)
            out.append('http_request_duration_seconds_bucket{%s,le="%s"} %d' % (lbl, fmt(le), c))
        out.append("http_request_duration_seconds_sum{%s} %s" % (lbl, repr(self.sum)))
        out.append("http_request_duration_seconds_count{%s} %d" % (lbl, self.fast_n + self.slow_n))
        return out


class Traffic:
    def __init__(self, defaults, kubectl="kubectl", kubeconfig=None):
        self.defaults = defaults
        self.lock = threading.Lock()
        self.services = {}
        self.kubectl, self.kubeconfig = kubectl, kubeconfig
        threading.Thread(target=self._follow_loop, daemon=True).start()

    def _pods_by_image(self, namespace, selector):
        cmd = [self.kubectl, "get", "replicasets", "-n", namespace, "-l", selector, "-o", "json"]
        if self.kubeconfig:
            cmd[1:1] = ["--kubeconfig", self.kubeconfig]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        pods = {}
        for rs in json.loads(out.stdout).get("items", []):
            n = (rs.get("status") or {}).get("replicas") or 0
            containers = rs["spec"]["template"]["spec"].get("containers", [])
            for c in containers[:1]:
                pods[c.get("image", "")] = pods.get(c.get("image", ""), 0) + n
        return pods

    def _follow_loop(self):
        while True:
            time.sleep(1)
            with self.lock:
                followed = [(s, s.follow) for s in self.services.values() if s.follow]
            for s, (namespace, selector) in followed:
                try:
                    pods = self._pods_by_image(namespace, selector)
                except Exception as e:  # the cluster may be starting or gone: keep the last
                    print("follow %s/%s: %s" % (namespace, selector, e), flush=True)
                    continue
                with self.lock:
                    self._advance_all()  # settle the elapsed time at the old fraction first
                    if s.follow == (namespace, selector):
                        s.set_running(pods)

    def _advance_all(self):
        now = time.monotonic()
        for s in self.services.values():
            s.advance(now)

    def add(self, name):
        if name not in self.services:
            self.services[name] = Service(name, now=time.monotonic(), **self.defaults)
        return self.services[name]

    def control(self, name, values):
        with self.lock:
            self._advance_all()  # settle the elapsed time at the old settings first
            targets = [self.add(name)] if name else list(self.services.values())
            for s in targets:
                for k, v in values.items():
                    setattr(s, k, v)
                if "follow" in values:
                    s.followed, s.running = None, {}
            return self._state()

    def _state(self):
        return {n: s.state() for n, s in sorted(self.services.items())}

    def state(self):
        with self.lock:
            self._advance_all()
            return self._state()

    def metrics(self):
        with self.lock:
            self._advance_all()
            lines = [
                "# HELP http_requests_total Synthetic HTTP requests by service and status code.",
                "# TYPE http_requests_total counter",
            ]
            svcs = [self.services[n] for n in sorted(self.services)]
            per = [s.metrics() for s in svcs]
            for m in per:
                lines += m[:2]
            lines += [
                "# HELP http_request_duration_seconds Synthetic HTTP request latency.",
                "# TYPE http_request_duration_seconds histogram",
            ]
            for m in per:
                lines += m[2:]
            return "\n".join(lines) + "\n"


def parse_values(q):
    values = {}
    for k in PARAMS:
        if k in q:
            v = float(q[k][-1])
            if not math.isfinite(v) or v < 0:
                raise ValueError("%s must be a finite number >= 0" % k)
            if k in ("errors", "slow") and v > 1:
                raise ValueError("%s must be within [0, 1]" % k)
            values[k] = v
    if "follow" in q:
        f = q["follow"][-1]
        if f and "/" not in f:
            raise ValueError("follow must be <namespace>/<label selector>, e.g. shop/app=web")
        values["follow"] = tuple(f.split("/", 1)) if f else None
    if "image_errors" in q:
        table = {}
        for pair in filter(None, q["image_errors"][-1].split(",")):
            image, _, v = pair.rpartition("=")
            v = float(v)
            if not image or not (0 <= v <= 1):
                raise ValueError("image_errors must be image=fraction pairs, each fraction within [0, 1]")
            table[image] = v
        values["image_errors"] = table
    unknown = set(q) - set(PARAMS) - set(TEXT_PARAMS) - {"service"}
    if unknown:
        raise ValueError("unknown parameter(s): %s" % ", ".join(sorted(unknown)))
    return values


def make_handler(traffic):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt_, *args):  # keep the log for control calls only
            pass

        def reply(self, code, body, ctype="application/json"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/metrics":
                self.reply(200, traffic.metrics(), "text/plain; version=0.0.4; charset=utf-8")
            elif url.path == "/control":
                self.reply(200, json.dumps(traffic.state(), indent=1) + "\n")
            elif url.path in ("/healthz", "/"):
                self.reply(200, "ok\n", "text/plain")
            else:
                self.reply(404, '{"error": "not found"}\n')

        def do_POST(self):
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if url.path != "/control":
                self.reply(404, '{"error": "not found"}\n')
                return
            q = parse_qs(url.query)
            for k, v in parse_qs(body).items():
                q.setdefault(k, []).extend(v)
            try:
                values = parse_values(q)
            except ValueError as e:
                self.reply(400, json.dumps({"error": str(e)}) + "\n")
                return
            name = q.get("service", [""])[-1]
            state = traffic.control(name, values)
            print("control service=%s %s" % (name or "*", values), flush=True)
            self.reply(200, json.dumps(state, indent=1) + "\n")

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9101)
    p.add_argument("--services", default="checkout,search", help="comma-separated service names")
    p.add_argument("--rps", type=float, default=10.0)
    p.add_argument("--errors", type=float, default=0.0)
    p.add_argument("--slow", type=float, default=0.0)
    p.add_argument("--fast-seconds", type=float, default=0.04)
    p.add_argument("--slow-seconds", type=float, default=2.0)
    p.add_argument("--kubectl", default="kubectl", help="for follow=: reads the followed ReplicaSets")
    p.add_argument("--kubeconfig", default=None)
    a = p.parse_args()
    traffic = Traffic(dict(rps=a.rps, errors=a.errors, slow=a.slow,
                           fast_seconds=a.fast_seconds, slow_seconds=a.slow_seconds),
                      kubectl=a.kubectl, kubeconfig=a.kubeconfig)
    for name in filter(None, (s.strip() for s in a.services.split(","))):
        traffic.add(name)
    srv = ThreadingHTTPServer((a.listen, a.port), make_handler(traffic))
    srv.daemon_threads = True
    print("traffic generator on http://%s:%d services=%s" % (a.listen, srv.server_port, ",".join(traffic.services)), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
