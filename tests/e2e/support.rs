//! Harness of the end-to-end tests (`tests/e2e.rs`): environment, a per-test namespace and
//! traffic service, the operator as a separate process, polling with deadlines, and small
//! std-only HTTP clients for Prometheus, the traffic generator and the operator's own endpoints.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use slo_warden::api::{PrometheusRule, ServiceLevelObjective};

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(500);
/// Deadline for anything the API server and the operator do on their own.
pub const K8S: Duration = Duration::from_secs(60);
/// Deadline for anything that goes through rule sync (2 s) and Prometheus (5 s evaluations).
pub const PROM: Duration = Duration::from_secs(120);

/// What the tests need from the environment (`source $SLO_WARDEN_E2E_DIR/env`).
#[derive(Clone, Debug)]
pub struct Env {
    pub kubeconfig: String,
    pub prometheus_url: String,
    pub traffic_url: String,
    /// The Thanos Querier in front of that Prometheus (cluster-up.sh), if any.
    pub thanos_url: Option<String>,
}

impl Env {
    pub fn from_env() -> Self {
        let get = |k: &str| match std::env::var(k) {
            Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_string(),
            _ => panic!(
                "{k} is not set: the end-to-end tests need a cluster, Prometheus and the traffic generator. \
                 Run `make e2e` (e2e/scripts/e2e.sh), or start one with e2e/scripts/cluster-up.sh, \
                 `source /tmp/slo-warden-e2e/env` and run `cargo test --test e2e -- --ignored`."
            ),
        };
        Self {
            kubeconfig: get("KUBECONFIG"),
            prometheus_url: get("PROMETHEUS_URL"),
            traffic_url: get("TRAFFIC_URL"),
            thanos_url: std::env::var("THANOS_QUERY_URL")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().trim_end_matches('/').to_string()),
        }
    }
}

// ---- HTTP ------------------------------------------------------------------------------

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A plain HTTP/1.0 request with an empty body; returns the status code and the body.
/// `https://` URLs (an existing cluster's Prometheus behind TLS) go through curl.
pub fn http(method: &str, url: &str) -> Result<(u16, String), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return curl(method, url);
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("{method} {url}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    stream.set_write_timeout(Some(Duration::from_secs(10))).ok();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {hostport}\r\nAccept: */*\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{method} {url}: malformed response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {url}: bad status line {:?}", head.lines().next()))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&data[..eol]);
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        if n == 0 || data.len() < eol + 2 + n {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + n]);
        data = &data[(eol + 4 + n).min(data.len())..];
    }
    out
}

fn curl(method: &str, url: &str) -> Result<(u16, String), String> {
    let out = Command::new("curl")
        .args(["-sS", "-X", method, "--max-time", "30", "-w", "\n%{http_code}", url])
        .output()
        .map_err(|e| format!("cannot run curl for {url}: {e}"))?;
    if !out.status.success() {
        return Err(format!("curl {url}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Ok((code.trim().parse().unwrap_or(0), body.to_string()))
}

/// GET/POST expecting a 2xx answer.
pub fn http_ok(method: &str, url: &str) -> Result<String, String> {
    match http(method, url)? {
        (code, body) if (200..300).contains(&code) => Ok(body),
        (code, body) => Err(format!("{method} {url}: HTTP {code}: {}", body.trim())),
    }
}

// ---- Prometheus --------------------------------------------------------------------------

/// One sample of an instant query.
#[derive(Clone, Debug)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn prom_query(prometheus_url: &str, query: &str) -> Result<Vec<Sample>, String> {
    let body = http_ok(
        "GET",
        &format!("{prometheus_url}/api/v1/query?query={}", urlencode(query)),
    )?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("query {query}: {e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!("query {query}: {body}"));
    }
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    Ok(result
        .iter()
        .map(|s| Sample {
            labels: serde_json::from_value(s["metric"].clone()).unwrap_or_default(),
            value: s["value"][1].as_str().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN),
        })
        .collect())
}

/// The rule groups Prometheus has loaded (`/api/v1/rules`).
pub fn prom_rule_groups(prometheus_url: &str) -> Result<Vec<Value>, String> {
    let body = http_ok("GET", &format!("{prometheus_url}/api/v1/rules"))?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("/api/v1/rules: {e}"))?;
    Ok(v["data"]["groups"].as_array().cloned().unwrap_or_default())
}

// ---- The operator process ---------------------------------------------------------------

/// `slo-warden run` as a child process, limited to one namespace, logging to a file.
/// Dropping it stops it (SIGTERM, then SIGKILL).
pub struct Operator {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free local port")
}

impl Operator {
    pub fn start(namespace: &str, log: &Path, extra: &[String]) -> Self {
        Self::start_with_env(namespace, log, extra, &[])
    }

    /// [`Operator::start`] with `env` on top.
    pub fn start_with_env(namespace: &str, log: &Path, extra: &[String], env: &[(&str, &str)]) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut args: Vec<String> = ["run", "--http-addr", &addr, "--namespace", namespace]
            .map(String::from)
            .to_vec();
        // The cluster's Prometheus scrape interval (cluster-up.sh's env), for exact tiles.
        if let Ok(s) = std::env::var("E2E_SCRAPE_INTERVAL") {
            args.extend(["--scrape-interval".to_string(), s]);
        }
        // Alerts and short windows at the cluster's evaluation interval (5s), not every minute.
        if let Ok(s) = std::env::var("E2E_EVAL_INTERVAL") {
            args.extend(["--alert-interval".to_string(), s]);
        }
        args.extend(extra.iter().cloned());
        // Its own namespace, as in a pod: the webhook's certificate Secret goes there.
        let mut all = vec![("POD_NAMESPACE", namespace)];
        all.extend_from_slice(env);
        Self::spawn(&args, &all, log)
    }

    /// `slo-warden ARGS` (which must include `--http-addr`), with `env` on top of the test's
    /// environment minus the operator's own variables.
    pub fn spawn(args: &[String], env: &[(&str, &str)], log: &Path) -> Self {
        let addr: SocketAddr = args
            .iter()
            .enumerate()
            .find_map(|(i, a)| match a.strip_prefix("--http-addr") {
                Some("") => args.get(i + 1).cloned(),
                Some(v) => v.strip_prefix('=').map(String::from),
                None => None,
            })
            .and_then(|a| a.parse().ok())
            .expect("the operator's arguments need --http-addr with a local address");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("operator log file");
        writeln!(file, "==== {} slo-warden {}", timestamp(), args.join(" ")).ok();
        let err = file.try_clone().expect("operator log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_slo-warden"));
        command
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("E2E_OPERATOR_LOG").unwrap_or_else(|_| "info,slo_warden=debug,kube=warn".into()),
            )
            .env("NO_COLOR", "1");
        // Only what the arguments say: none of the operator's own variables leak in.
        for var in [
            "HTTP_ADDR",
            "WATCH_NAMESPACES",
            "RULE_LABELS",
            "PROMETHEUS_URL",
            "POLL_INTERVAL",
            "POD_NAME",
            "POD_NAMESPACE",
        ] {
            command.env_remove(var);
        }
        let child = command
            .envs(env.iter().copied())
            // Marks the process as ours, so e2e.sh can stop leftovers by pid safely.
            .env("SLO_WARDEN_E2E_OPERATOR", log)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("cannot start slo-warden");
        if let Some(dir) = log.parent() {
            let pids = dir.join("operator.pid");
            let mut all = fs::read_to_string(&pids).unwrap_or_default();
            all.push_str(&format!("{}\n", child.id()));
            fs::write(pids, all).ok();
        }
        Self {
            child,
            addr,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: dies without releasing anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `/metrics` of this process.
    pub fn metrics(&self) -> Result<String, String> {
        http_ok("GET", &self.url("/metrics"))
    }

    /// `None` while running, else how it ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, up to 15 s for a clean shutdown, then SIGKILL.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.exited() {
            return status;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().expect("wait for slo-warden")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sums the samples of one metric family in a Prometheus/OpenMetrics text exposition;
/// `None` when it has no samples.
pub fn metric_sum(exposition: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit_once('}').map_or(rest, |(_, v)| v).split_whitespace().next();
        if let Some(v) = value.and_then(|v| v.parse::<f64>().ok()) {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// Sums the samples of a metric family whose labels include every `key="value"` of `labels`.
pub fn metric_sum_where(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
        .filter(|rest| labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|rest| {
            rest.rsplit_once('}')
                .map_or(rest, |(_, v)| v)
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .sum()
}

/// Samples of a metric family, one line each (for messages).
pub fn metric_lines(exposition: &str, name: &str) -> String {
    exposition
        .lines()
        .filter(|l| l.starts_with(name))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- A proxy to Prometheus that a test can cut ------------------------------------------

/// Forwards local TCP connections to Prometheus; when cut, it drops every open connection and
/// refuses new ones, as a Prometheus that went away would.
pub struct Proxy {
    addr: SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(prometheus_url: &str) -> Self {
        let target = prometheus_url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        let addr = listener.local_addr().expect("proxy address");
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let open = std::sync::Arc::new(Mutex::new(Vec::<TcpStream>::new()));
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: connection closed
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut open = open2.lock().unwrap();
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        open.push(c);
                    }
                }
                drop(open);
                for (mut from, mut to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self { addr, up, open }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

// ---- Per-test context -----------------------------------------------------------------

pub struct Ctx {
    /// The test's own Prometheus ([`Options::own_prometheus`]), which the operator reads.
    pub own_prometheus: Option<std::sync::Arc<OwnPrometheus>>,
    /// Short name of the test, used in the namespace and in log lines.
    pub tag: String,
    /// Fresh namespace of this test (also the operator's only watched namespace).
    pub ns: String,
    /// Traffic generator service of this test (created at 10 rps, no errors).
    pub service: String,
    pub client: Client,
    pub env: Env,
    pub dir: PathBuf,
    operator: Mutex<Option<Operator>>,
    operator_args: Vec<String>,
    proxy: Option<Proxy>,
    /// Where the operator serves its webhook ([`Options::webhook`]).
    pub webhook: Option<Webhook>,
    started: Instant,
    /// Run after the operator stopped, last first ([`Ctx::on_cleanup`]).
    cleanups: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

fn timestamp() -> String {
    jiff::Timestamp::now().strftime("%H:%M:%S%.3f").to_string()
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn log_root() -> PathBuf {
    std::env::var_os("E2E_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e"))
}

/// How a test's operator runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Read budgets from the cluster's Prometheus every [`POLICY_POLL`].
    pub prometheus: bool,
    /// ... through a proxy the test can cut ([`Ctx::prometheus_reachable`]).
    pub cuttable: bool,
    /// `--leader-elect` on a Lease in the test's namespace (for [`Ctx::start_standby`]).
    pub leader_elect: bool,
    /// Serve the admission webhook on a local port with a certificate the operator issues
    /// ([`Ctx::webhook`]).
    pub webhook: bool,
    /// No operator is started: the test starts its own ([`Ctx::adopt_operator`]).
    pub own_operator: bool,
    /// ... through the Thanos Querier instead, as tenant [`THANOS_TENANT`].
    pub thanos: bool,
    /// Read budgets from a Prometheus of the test's own instead, scraping the traffic generator
    /// at this interval (e.g. `2m`) and loading the test namespace's PrometheusRules
    /// ([`Ctx::own_prometheus`]): one the test may restart, or scrape unlike the cluster's.
    pub own_prometheus: Option<&'static str>,
}

/// A Prometheus of one test ([`Options::own_prometheus`]): the binary the cluster's runs
/// (`PROMETHEUS_BIN` in cluster-up.sh's env), its own port, data and rule directory.
pub struct OwnPrometheus {
    pub url: String,
    port: u16,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl OwnPrometheus {
    fn start(dir: &Path, scrape_interval: &str, traffic_url: &str) -> Self {
        let dir = dir.join("prometheus");
        fs::create_dir_all(dir.join("rules")).expect("rule dir");
        let traffic = traffic_url.trim_start_matches("http://");
        let evaluation = std::env::var("E2E_EVAL_INTERVAL").unwrap_or_else(|_| "5s".into());
        let config = format!(
            "global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {evaluation}\n\
             rule_files: ['{}/rules/*.yaml']\n\
             scrape_configs:\n  - job_name: traffic\n    static_configs:\n      - targets: ['{traffic}']\n",
            dir.display()
        );
        fs::write(dir.join("prometheus.yml"), config).expect("prometheus.yml");
        let port = free_port();
        let p = Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            child: Mutex::new(None),
        };
        p.launch();
        p
    }

    fn launch(&self) {
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into());
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("prometheus.log"))
            .expect("prometheus.log");
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", self.dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", self.dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--web.enable-lifecycle")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_ok("GET", &format!("{}/-/ready", self.url)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the test's Prometheus is not ready after 60s"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Stops it as an orchestrator would (SIGTERM, then waits), keeping its data.
    fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts it again on the same data: it evaluates its rules afresh, and its
    /// alerts go through `for` (or its restore) again.
    pub fn restart(&self) {
        self.stop();
        self.launch();
    }

    /// Writes the groups of the namespace's PrometheusRules to its rule directory and reloads it
    /// when they changed, as prometheus-operator (and the cluster's rule-sync.py) does.
    async fn sync_rules(&self, rules: &Api<PrometheusRule>, last: &mut String) {
        let Ok(list) = rules.list(&ListParams::default()).await else {
            return;
        };
        let mut groups = Vec::new();
        for rule in list.items {
            let mut spec = serde_json::to_value(&rule.spec).unwrap_or_default();
            for g in spec["groups"].as_array_mut().into_iter().flatten() {
                if let Some(g) = g.as_object_mut() {
                    g.remove("partial_response_strategy");
                }
            }
            groups.extend(spec["groups"].as_array().cloned().unwrap_or_default());
        }
        let content = json!({"groups": groups}).to_string();
        if content != *last && fs::write(self.dir.join("rules/rules.yaml"), &content).is_ok() {
            *last = content;
            let _ = http_ok("POST", &format!("{}/-/reload", self.url));
        }
    }
}

impl Drop for OwnPrometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tenant of the e2e cluster's data in its Thanos Querier (Prometheus' external label
/// `cluster`, chosen by the `X-Scope-OrgID` header).
pub const THANOS_TENANT: &str = "e2e";

/// How the API server reaches this machine: `localhost`, or `E2E_WEBHOOK_HOST` for an API
/// server elsewhere (kind's, in a container: the address of this machine on kind's network),
/// where the operators then listen on every address.
pub fn webhook_host() -> String {
    std::env::var("E2E_WEBHOOK_HOST")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The address an operator's webhook server binds to, on `port`: loopback only unless the API
/// server is elsewhere.
pub fn webhook_bind(port: u16) -> String {
    if webhook_host() == "localhost" {
        format!("127.0.0.1:{port}")
    } else {
        format!("0.0.0.0:{port}")
    }
}

/// The user the API server authenticates the tests' kubeconfig as (`kubectl auth whoami`):
/// `slo-warden-e2e-admin` on the suite's own cluster, kind's admin on kind.
pub fn test_user() -> String {
    static USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        kubectl(&["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], None)
            .map(|u| u.trim().to_string())
            .unwrap_or_else(|e| panic!("kubectl auth whoami: {e}"))
    })
    .clone()
}

/// Where a test's operator serves its admission webhook.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub url: String,
    /// The ValidatingWebhookConfiguration whose caBundle the operator sets.
    pub configuration: String,
}

/// The operator's poll interval in policy tests.
pub const POLICY_POLL: Duration = Duration::from_secs(2);

/// Runs one end-to-end test: a fresh namespace and traffic service, the operator watching only
/// that namespace, the body, and clean-up whatever happens. When the body panics, the operator's
/// log and the namespace's objects are printed before the panic continues.
pub fn run(tag: &str, body: impl AsyncFnOnce(&Ctx)) {
    run_with(tag, Options::default(), body)
}

pub fn run_with(tag: &str, options: Options, body: impl AsyncFnOnce(&Ctx)) {
    let env = Env::from_env();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let client = Client::try_default()
            .await
            .unwrap_or_else(|e| panic!("cannot build a client from KUBECONFIG={}: {e}", env.kubeconfig));
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let suffix = format!(
            "{:x}{:04x}",
            std::process::id() % 0xfff,
            (nanos ^ SEQ.fetch_add(1, Ordering::Relaxed)) % 0xffff
        );
        let ns = format!("e2e-{tag}-{suffix}");
        assert!(ns.len() <= 63, "namespace name {ns} too long");
        let dir = log_root().join(&ns);
        fs::create_dir_all(&dir).expect("test log dir");

        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace: Namespace = serde_json::from_value(json!({
            "metadata": {"name": ns, "labels": {"slo-warden.dev/e2e": tag}}
        }))
        .unwrap();
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace {ns}: {e}"));

        let own_prometheus = options
            .own_prometheus
            .map(|scrape| std::sync::Arc::new(OwnPrometheus::start(&dir, scrape, &env.traffic_url)));
        let proxy = options.cuttable.then(|| Proxy::start(&env.prometheus_url));
        let mut operator_args = Vec::new();
        if options.prometheus || own_prometheus.is_some() {
            let mut url = proxy.as_ref().map_or(env.prometheus_url.clone(), |p| p.url());
            if let Some(own) = &own_prometheus {
                url = own.url.clone();
            }
            if options.thanos {
                url = env
                    .thanos_url
                    .clone()
                    .expect("THANOS_QUERY_URL is not set: the e2e cluster runs a Thanos Querier (cluster-up.sh)");
                operator_args.extend([
                    "--prometheus-header".to_string(),
                    format!("X-Scope-OrgID={THANOS_TENANT}"),
                    // The sidecar adds Prometheus' external label to every series.
                    "--prometheus-external-label".to_string(),
                    "cluster".to_string(),
                ]);
            }
            operator_args.extend([
                "--prometheus-url".into(),
                url,
                "--poll-interval".into(),
                format!("{}s", POLICY_POLL.as_secs()),
                "--prometheus-timeout".into(),
                "2s".into(),
            ]);
        }
        let mut webhook = None;
        if options.webhook {
            // The operator issues its own certificate into a Secret and patches the caBundle
            // of the test's webhook configuration (the chart's default).
            let port = free_port();
            let host = webhook_host();
            let url = if host == "localhost" {
                format!("https://127.0.0.1:{port}")
            } else {
                format!("https://{host}:{port}")
            };
            operator_args.extend([
                "--webhook-addr".into(),
                webhook_bind(port),
                "--webhook-cert-secret".into(),
                "slo-warden-webhook".into(),
                "--webhook-dns-name".into(),
                format!("127.0.0.1,{host}"),
                "--webhook-configuration".into(),
                format!("slo-warden-{ns}"),
            ]);
            webhook = Some(Webhook {
                url,
                configuration: format!("slo-warden-{ns}"),
            });
        }
        if options.leader_elect {
            operator_args.extend(["--leader-elect".into(), "--leader-elect-namespace".into(), ns.clone()]);
        }
        let sync = own_prometheus.clone().map(|own| {
            let rules: Api<PrometheusRule> = Api::namespaced(client.clone(), &ns);
            tokio::spawn(async move {
                let mut last = String::new();
                loop {
                    own.sync_rules(&rules, &mut last).await;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            })
        });
        let ctx = Ctx {
            own_prometheus,
            tag: tag.to_string(),
            service: ns.clone(),
            ns,
            client,
            env,
            dir,
            operator: Mutex::new(None),
            operator_args,
            proxy,
            webhook,
            started: Instant::now(),
            cleanups: Mutex::new(Vec::new()),
        };
        ctx.log(format!("namespace {} (logs in {})", ctx.ns, ctx.dir.display()));
        ctx.traffic("rps=10&errors=0&slow=0").expect("traffic generator");
        if !options.own_operator {
            ctx.start_operator().await;
        }

        let result = AssertUnwindSafe(body(&ctx)).catch_unwind().await;

        if let Err(panic) = &result {
            ctx.dump(&panic_message(panic.as_ref())).await;
        }
        // Policies release what they hold through a finalizer: delete them while the operator
        // runs, or the namespace would wait for it forever. The test's webhooks go first: they
        // refuse deleting a policy that holds something.
        ctx.delete_webhooks().await;
        ctx.delete_policies().await;
        let status = ctx.operator.lock().unwrap().take().map(|mut op| op.stop());
        if let Some(sync) = sync {
            sync.abort();
        }
        let cleanups = std::mem::take(&mut *ctx.cleanups.lock().unwrap());
        for cleanup in cleanups.into_iter().rev() {
            cleanup();
        }
        let _ = ctx.traffic("rps=0");
        let keep = result.is_err() && std::env::var("E2E_KEEP_NAMESPACES").is_ok_and(|v| v == "1");
        if keep {
            ctx.log(format!("namespace {} kept (E2E_KEEP_NAMESPACES=1)", ctx.ns));
        } else if let Err(e) = namespaces.delete(&ctx.ns, &DeleteParams::default()).await {
            ctx.log(format!("cannot delete namespace {}: {e}", ctx.ns));
        }
        match result {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => ctx.log(format!(
                "passed in {:.0?} (operator exit: {status:?})",
                ctx.started.elapsed()
            )),
        }
    });
}

/// What the operator logs at DEBUG on every cycle or reconcile, left out of failure dumps.
const ROUTINE: [&str; 2] = ["read error budgets from Prometheus", "reconciled object="];

/// The message of a panic (`panic!` with a literal or with a format).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

impl Ctx {
    pub fn log(&self, msg: impl AsRef<str>) {
        let t = self.started.elapsed().as_secs_f64();
        for line in msg.as_ref().lines() {
            eprintln!("[e2e {} {:>6.1}s {}] {line}", timestamp(), t, self.tag);
        }
    }

    pub fn slos(&self) -> Api<ServiceLevelObjective> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn rules(&self) -> Api<PrometheusRule> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn events(&self) -> Api<Event> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Changes this test's traffic service, e.g. `errors=0.5`.
    pub fn traffic(&self, params: &str) -> Result<(), String> {
        http_ok(
            "POST",
            &format!(
                "{}/control?service={}&{params}",
                self.env.traffic_url,
                urlencode(&self.service)
            ),
        )
        .map(drop)
    }

    pub fn query(&self, q: &str) -> Result<Vec<Sample>, String> {
        let url = self
            .own_prometheus
            .as_ref()
            .map_or(&self.env.prometheus_url, |p| &p.url);
        prom_query(url, q)
    }

    /// `{slo="<name>",namespace="<ns>"}`
    pub fn sel(&self, slo: &str) -> String {
        format!("{{slo=\"{slo}\",namespace=\"{}\"}}", self.ns)
    }

    /// Rule groups of this namespace loaded in Prometheus, by name.
    pub fn loaded_groups(&self) -> Result<BTreeMap<String, Value>, String> {
        let prefix = format!("{}/", self.ns);
        Ok(prom_rule_groups(&self.env.prometheus_url)?
            .into_iter()
            .filter_map(|g| {
                g["name"]
                    .as_str()
                    .filter(|n| n.starts_with(&prefix))
                    .map(|n| (n.to_string(), g.clone()))
            })
            .collect())
    }

    /// Starts the operator (watching only this namespace) and waits for /readyz.
    pub async fn start_operator(&self) {
        let op = Operator::start(&self.ns, &self.dir.join("operator.log"), &self.operator_args);
        let (ready, health) = (op.url("/readyz"), op.url("/healthz"));
        self.log(format!("operator started (pid {}, {})", op.child.id(), op.addr));
        let previous = self.operator.lock().unwrap().replace(op);
        assert!(previous.is_none(), "the operator was already running");
        self.eventually("operator /healthz and /readyz", K8S, async || {
            http_ok("GET", &health)?;
            http_ok("GET", &ready).map(drop)
        })
        .await;
    }

    /// Runs `cleanup` at the end of the test whatever happens, once the operator has stopped.
    pub fn on_cleanup(&self, cleanup: impl FnOnce() + Send + 'static) {
        self.cleanups.lock().unwrap().push(Box::new(cleanup));
    }

    /// Makes a process the test started this test's operator: watched for an early exit,
    /// kept running until the test's policies are released, then stopped.
    pub fn adopt_operator(&self, op: Operator) {
        let previous = self.operator.lock().unwrap().replace(op);
        assert!(previous.is_none(), "the operator was already running");
    }

    /// Deletes the webhook configurations the operator serves in this test, if any.
    async fn delete_webhooks(&self) {
        let Some(hook) = &self.webhook else {
            return;
        };
        for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
            let gvk = kube::core::GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
            let api: Api<kube::api::DynamicObject> =
                Api::all_with(self.client.clone(), &kube::api::ApiResource::from_gvk(&gvk));
            let _ = api.delete(&hook.configuration, &DeleteParams::default()).await;
        }
    }

    /// Deletes this namespace's ErrorBudgetPolicies and waits (a little) until they are gone.
    async fn delete_policies(&self) {
        let api: Api<slo_warden::api::ErrorBudgetPolicy> = Api::namespaced(self.client.clone(), &self.ns);
        if api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .is_err()
        {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            match api.list(&ListParams::default()).await {
                Ok(l) if !l.items.is_empty() && self.operator.lock().unwrap().is_some() => {
                    tokio::time::sleep(POLL).await
                }
                _ => return,
            }
        }
        self.log("ErrorBudgetPolicies still there after 15s");
    }

    /// Cuts (`false`) or restores (`true`) the operator's way to Prometheus.
    pub fn prometheus_reachable(&self, up: bool) {
        let proxy = self.proxy.as_ref().expect("the test runs without a cuttable proxy");
        proxy.set_up(up);
        self.log(if up {
            "Prometheus reachable again"
        } else {
            "Prometheus cut off"
        });
    }

    /// A second operator process with the same flags (its own log), ready.
    pub async fn start_standby(&self) -> Operator {
        self.start_standby_with_env(&[]).await
    }

    /// [`Ctx::start_standby`] with `env` on top of the operator's environment.
    pub async fn start_standby_with_env(&self, env: &[(&str, &str)]) -> Operator {
        let op = Operator::start_with_env(&self.ns, &self.dir.join("operator-2.log"), &self.operator_args, env);
        self.log(format!("second operator started (pid {}, {})", op.child.id(), op.addr));
        let ready = op.url("/readyz");
        self.eventually("second operator /readyz", K8S, async || {
            http_ok("GET", &ready).map(drop)
        })
        .await;
        op
    }

    pub fn take_operator(&self) -> Operator {
        self.operator
            .lock()
            .unwrap()
            .take()
            .expect("the operator is not running")
    }

    /// Kills the operator (SIGKILL).
    pub fn kill_operator(&self) {
        let mut op = self.take_operator();
        op.kill();
        self.log("operator killed (SIGKILL)");
    }

    /// Stops the operator; returns its exit status.
    pub fn stop_operator(&self) -> ExitStatus {
        let mut op = self.take_operator();
        let status = op.stop();
        self.log(format!("operator stopped: {status}"));
        status
    }

    /// The operator's /metrics.
    pub fn operator_metrics(&self) -> String {
        let url = self
            .operator
            .lock()
            .unwrap()
            .as_ref()
            .expect("the operator is not running")
            .url("/metrics");
        http_ok("GET", &url).unwrap_or_else(|e| panic!("operator /metrics: {e}"))
    }

    /// Panics (with the log) when the operator was started and has exited on its own.
    fn check_operator(&self) {
        if let Some(op) = self.operator.lock().unwrap().as_mut()
            && let Some(status) = op.exited()
        {
            panic!("the operator exited unexpectedly ({status}); log: {}", op.log.display());
        }
    }

    /// Polls `check` every [`POLL`] until it returns `Ok`, or panics at the deadline with its
    /// last complaint. Also fails as soon as the operator dies.
    pub async fn eventually<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl AsyncFnMut() -> Result<T, String>,
    ) -> T {
        let start = Instant::now();
        loop {
            match check().await {
                Ok(v) => {
                    self.log(format!("ok: {what} ({:.1}s)", start.elapsed().as_secs_f64()));
                    return v;
                }
                Err(e) if start.elapsed() >= timeout => {
                    panic!("timed out after {timeout:?} waiting for {what}; last: {e}")
                }
                Err(_) => {}
            }
            self.check_operator();
            tokio::time::sleep(POLL).await;
        }
    }

    /// Prints what helps to understand a failure: the failure itself, the operator's log, this
    /// namespace's objects and events, and the rule groups Prometheus has for it; then the
    /// failure again, so that the first and the last lines of the dump both say what failed.
    async fn dump(&self, failure: &str) {
        let mut out = format!("FAILED: {failure}\n");
        let mut logs: Vec<PathBuf> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("operator") && n.ends_with(".log"))
            })
            .collect();
        logs.sort();
        for logpath in logs {
            let log = fs::read_to_string(&logpath).unwrap_or_default();
            // The per-cycle DEBUG lines (a poll read, an object reconciled) say only that the
            // operator ran; the full log is in the file.
            let routine = |l: &&str| l.contains(" DEBUG ") && ROUTINE.iter().any(|r| l.contains(r));
            let all = log.lines().count();
            let lines: Vec<&str> = log.lines().filter(|l| !routine(l)).collect();
            out.push_str(&format!(
                "---- operator log {} (last {} of {} lines, without {} routine DEBUG lines)\n",
                logpath.display(),
                lines.len().min(150),
                lines.len(),
                all - lines.len()
            ));
            for l in &lines[lines.len().saturating_sub(150)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        match self.slos().list(&ListParams::default()).await {
            Ok(list) => {
                for slo in list {
                    out.push_str(&format!("---- ServiceLevelObjective {}\n", slo.name_any()));
                    let summary = json!({"metadata": {"generation": slo.metadata.generation, "resourceVersion": slo.metadata.resource_version}, "spec": slo.spec, "status": slo.status});
                    out.push_str(&serde_yaml::to_string(&summary).unwrap_or_default());
                }
            }
            Err(e) => out.push_str(&format!("cannot list ServiceLevelObjectives: {e}\n")),
        }
        match self.rules().list(&ListParams::default()).await {
            Ok(list) => {
                for r in list {
                    let groups: Vec<String> = r
                        .spec
                        .groups
                        .iter()
                        .map(|g| format!("{} ({} rules)", g.name, g.rules.len()))
                        .collect();
                    out.push_str(&format!(
                        "---- PrometheusRule {} rv={} labels={:?} owners={:?} groups={groups:?}\n",
                        r.name_any(),
                        r.resource_version().unwrap_or_default(),
                        r.labels(),
                        r.owner_references()
                            .iter()
                            .map(|o| format!("{}/{} controller={:?}", o.kind, o.name, o.controller))
                            .collect::<Vec<_>>()
                    ));
                }
            }
            Err(e) => out.push_str(&format!("cannot list PrometheusRules: {e}\n")),
        }
        match self.events().list(&ListParams::default()).await {
            Ok(list) => {
                out.push_str("---- events\n");
                for e in list {
                    out.push_str(&format!(
                        "{} {} {} {}: {}\n",
                        e.type_.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.regarding.as_ref().and_then(|r| r.kind.clone()).unwrap_or_default(),
                        e.regarding.as_ref().and_then(|r| r.name.clone()).unwrap_or_default(),
                        e.note.unwrap_or_default()
                    ));
                }
            }
            Err(e) => out.push_str(&format!("cannot list events: {e}\n")),
        }
        match self.loaded_groups() {
            Ok(groups) => out.push_str(&format!(
                "---- Prometheus rule groups of {}: {:?}\n",
                self.ns,
                groups.keys().collect::<Vec<_>>()
            )),
            Err(e) => out.push_str(&format!("---- Prometheus rule groups: {e}\n")),
        }
        out.push_str(&format!("---- end of the dump; FAILED: {failure}\n"));
        fs::write(self.dir.join("failure.txt"), &out).ok();
        self.log(out);
    }
}

// ---- kubectl and helm -----------------------------------------------------------------------

/// Runs a command of the cluster's tools (`KUBECTL`, `HELM` from cluster-up.sh's env, else
/// from PATH) with `stdin`; its stdout, or its stderr as the error.
pub fn tool(var: &str, default: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let bin = std::env::var(var).unwrap_or_else(|_| default.to_string());
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())
            .map_err(|e| format!("{bin}: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{bin}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `kubectl ARGS` against the test cluster (KUBECONFIG).
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    tool("KUBECTL", "kubectl", args, stdin)
}

/// `helm ARGS` against the test cluster (KUBECONFIG).
pub fn helm(args: &[&str]) -> Result<String, String> {
    tool("HELM", "helm", args, None)
}

// ---- Objects ------------------------------------------------------------------------------

/// A ServiceLevelObjective from its spec as JSON.
pub fn slo(name: &str, spec: Value) -> ServiceLevelObjective {
    serde_json::from_value(json!({
        "apiVersion": "slo.warden.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("test SLO {name}: {e}"))
}

/// The `Ready` condition, if any.
pub fn ready(slo: &ServiceLevelObjective) -> Option<Condition> {
    slo.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
}

/// Warning events with `reason` about the object named `name`.
pub async fn warnings(events: &Api<Event>, name: &str, reason: &str) -> Result<Vec<Event>, String> {
    let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .collect())
}

/// Writes a file of the test's directory (for things worth keeping, e.g. rule snapshots).
pub fn keep(ctx: &Ctx, name: &str, contents: &str) {
    if let Ok(mut f) = File::create(ctx.dir.join(name)) {
        let _ = f.write_all(contents.as_bytes());
    }
}
