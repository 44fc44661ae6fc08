//! The shell that talks to Prometheus: builds the HTTP client from the flags, sends the cycle's
//! queries at one evaluation time, and records how they went.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::Snapshot;
use super::answer;
use super::args::PrometheusArgs;
use super::queries::{self, Expect, Group, Query, Rejected, Scope};
use crate::error::Error;
use crate::metrics::{Metrics, ResultLabels};

/// The most of a range answer read: one series of a few hundred points is a few KiB.
pub const RANGE_BODY: usize = 1024 * 1024;

/// Queries sent per cycle, whatever the number of SLOs.
pub const QUERIES_PER_CYCLE: i64 = 4;

/// Reads every SLO's budget from one Prometheus API.
#[derive(Clone)]
pub struct Poller {
    client: prometheus_http_query::Client,
    bearer_token_file: Option<PathBuf>,
    timeout: std::time::Duration,
    scope: Scope,
    expect: Expect,
    assumed: super::Assumed,
    /// When series that our rules did not write were last reported in the log.
    warned: Arc<Mutex<Option<Instant>>>,
    /// How many SLOs the last cycle read: the next one's split is sized for them.
    last_read: Arc<std::sync::atomic::AtomicUsize>,
}

/// Series our rules did not write are reported in the log at most this often (they are
/// counted in a metric every cycle).
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry credentials.
        f.debug_struct("Poller")
            .field("bearer_token_file", &self.bearer_token_file)
            .field("timeout", &self.timeout)
            .field("scope", &self.scope)
            .field("expect", &self.expect)
            .finish_non_exhaustive()
    }
}

impl Poller {
    /// `None` when no Prometheus URL is configured: budgets are then not read at all.
    pub fn new(args: &PrometheusArgs) -> Result<Option<Self>, Error> {
        let Some(url) = &args.prometheus_url else {
            return Ok(None);
        };
        let url = base_url(url)?;
        let timeout = std::time::Duration::from_millis(args.prometheus_timeout.as_millis());
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("slo-warden/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers(&args.prometheus_headers)?);
        if let Some(path) = &args.prometheus_ca_file {
            builder = builder.tls_certs_merge(ca_certificates(path)?);
        }
        if let Some(path) = &args.prometheus_bearer_token_file {
            if args
                .prometheus_headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            {
                return Err(Error::Config(
                    "--prometheus-bearer-token-file and an Authorization --prometheus-header both set the \
                     Authorization header; keep one"
                        .into(),
                ));
            }
            // Fail at startup rather than on the first cycle.
            bearer(path)?;
        }
        let http = builder.build().map_err(|e| {
            Error::Config(format!(
                "cannot set up the HTTP client for Prometheus: {} (without system CA certificates, \
                 set --prometheus-ca-file)",
                chain(&e)
            ))
        })?;
        let client = prometheus_http_query::Client::from(http, &url)
            .map_err(|e| Error::Config(format!("--prometheus-url: {}", chain(&e))))?;
        Ok(Some(Self {
            client,
            bearer_token_file: args.prometheus_bearer_token_file.clone(),
            timeout,
            scope: Scope::default(),
            expect: Expect {
                external_labels: args.prometheus_external_labels.iter().cloned().collect(),
                ..Expect::default()
            },
            assumed: super::Assumed::default(),
            warned: Arc::default(),
            last_read: Arc::default(),
        }))
    }

    /// The `sli` rule group's interval (`--alert-interval`): the schedule its records and
    /// alerts must be on.
    pub fn alert_interval(self, alert_interval: crate::duration::Duration) -> Self {
        Self {
            expect: Expect {
                alert_interval,
                ..self.expect
            },
            assumed: super::Assumed {
                alert_interval,
                ..self.assumed
            },
            ..self
        }
    }

    /// The source series' scrape interval the rules assume where an SLO does not say
    /// (`--scrape-interval`): what a measured interval is held against.
    pub fn scrape_interval(self, scrape_interval: crate::duration::Duration) -> Self {
        Self {
            assumed: super::Assumed {
                scrape_interval,
                ..self.assumed
            },
            ..self
        }
    }

    /// Reads only the SLOs of `namespaces` (the watched ones); all when empty.
    pub fn scoped(self, namespaces: &[String]) -> Self {
        Self {
            scope: Scope::new(namespaces),
            ..self
        }
    }

    /// The API's base URL without any user name or password, for logs.
    pub fn url(&self) -> reqwest::Url {
        let mut url = self.client.base_url().clone();
        // Only fails for URLs that cannot have credentials, which then have none to remove.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url
    }

    /// One cycle: every SLO's samples at the current second, with the request counts over the
    /// `requests` windows. Fails as a whole when any query fails, so nothing ever acts on a
    /// partial picture.
    pub async fn poll(
        &self,
        metrics: &Metrics,
        requests: &std::collections::BTreeSet<crate::duration::Duration>,
    ) -> Result<Snapshot, Error> {
        let now = jiff::Timestamp::now();
        // The API takes whole seconds; report the instant actually evaluated.
        let at = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        self.poll_at(metrics, at, requests).await
    }

    /// One cycle evaluated at `at` (whole seconds).
    pub async fn poll_at(
        &self,
        metrics: &Metrics,
        at: jiff::Timestamp,
        requests: &std::collections::BTreeSet<crate::duration::Duration>,
    ) -> Result<Snapshot, Error> {
        let authorization = match &self.bearer_token_file {
            Some(path) => Some(bearer(path)?),
            None => None,
        };
        let auth = authorization.as_ref();
        let interval = self.expect.alert_interval;
        let (short, long, long_run, alerts) = (
            queries::short_ratios(&self.scope, interval, requests),
            queries::window_ratios_and_budgets(&self.scope, requests),
            queries::long_run(&self.scope),
            queries::firing_burn_alerts(&self.scope, interval),
        );
        metrics.prometheus_queries_per_cycle.set(QUERIES_PER_CYCLE);
        let t = at.as_second();
        // The four queries are sent at once, so Prometheus answers them in parallel; their
        // bodies are read one at a time, each series into the split as it arrives, so that no
        // answer is ever held whole (at 10,000 SLOs the largest is 25 MiB of JSON).
        let split = Mutex::new(queries::Split::with_capacity(
            self.expect.clone(),
            self.last_read.load(std::sync::atomic::Ordering::Relaxed),
        ));
        let one_body = tokio::sync::Semaphore::new(1);
        let (split, one_body) = (&split, &one_body);
        let (short_read, long_read, long_run_read, alerts_read) = futures::join!(
            timed(
                metrics,
                &short,
                self.read(&short, t, auth, one_body, split, Some(Group::Sli))
            ),
            timed(
                metrics,
                &long,
                self.read(&long, t, auth, one_body, split, Some(Group::Window))
            ),
            timed(
                metrics,
                &long_run,
                self.read(&long_run, t, auth, one_body, split, Some(Group::Calibration))
            ),
            timed(metrics, &alerts, self.read(&alerts, t, auth, one_body, split, None)),
        );
        short_read?;
        long_read?;
        long_run_read?;
        alerts_read?;
        let finished = std::mem::take(&mut *split.lock().unwrap_or_else(PoisonError::into_inner)).finish();
        self.last_read
            .store(finished.slos.len(), std::sync::atomic::Ordering::Relaxed);
        let disputed = finished.slos.values().filter(|s| !s.disputed.is_empty()).count();
        metrics
            .budget_disputed_slos
            .set(i64::try_from(disputed).unwrap_or(i64::MAX));
        self.report(metrics, &finished.rejected);
        tracing::debug!(
            slos = finished.slos.len(),
            disputed,
            "read error budgets from Prometheus"
        );
        Ok(Snapshot {
            slos: finished.slos,
            at: Some(at),
            assumed: self.assumed,
            requests: requests.clone(),
        })
    }

    /// Counts the series our rules did not write, and names one in the log now and then.
    fn report(&self, metrics: &Metrics, rejected: &Rejected) {
        metrics.budget_series_rejected.inc_by(rejected.count);
        let Some(example) = &rejected.example else {
            return;
        };
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        if warned.is_none_or(|w| w.elapsed() >= WARN_EVERY) {
            *warned = Some(Instant::now());
            tracing::warn!(
                series = rejected.count,
                example = %example,
                "ignored series that slo-warden's rules did not write (a rule of another tool or tenant records under our names)"
            );
        }
    }

    /// Sends one query and reads its answer into `split` (its series recorded by `group`, or
    /// the firing alerts when `None`), once `one_body` lets it read.
    async fn read(
        &self,
        query: &Query,
        time: i64,
        auth: Option<&HeaderValue>,
        one_body: &tokio::sync::Semaphore,
        split: &Mutex<queries::Split>,
        group: Option<Group>,
    ) -> Result<(), String> {
        let mut request = self
            .client
            .query(&query.promql)
            .at(time)
            // Prometheus gives up when we do, instead of finishing a query nobody waits for.
            .timeout(self.timeout.as_millis().try_into().unwrap_or(i64::MAX))
            // Thanos Querier: an error rather than a silently partial answer when a store is down.
            .query("partial_response", "false");
        if let Some(value) = auth {
            request = request.header(AUTHORIZATION, value.clone());
        }
        let mut response = request.get_raw().await.map_err(|e| self.describe(&e))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let _reading = one_body.acquire().await.map_err(|e| e.to_string())?;
        let mut reading = answer::Reading::new(status, content_type.as_deref())?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.describe_reqwest(&e.without_url()))?
        {
            let mut split = split.lock().unwrap_or_else(PoisonError::into_inner);
            reading.push(&chunk, &mut answer::into(&mut split, group))?;
        }
        let mut split = split.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = reading.finish(&mut answer::into(&mut split, group));
        for warning in taken? {
            tracing::warn!(query = query.what, %warning, "Prometheus warned");
        }
        Ok(())
    }

    /// One series over time, for the UI's charts: `promql` (from the UI's fixed templates)
    /// from `start` to `end` (Unix seconds) every `step` seconds. At most [`RANGE_BODY`] bytes
    /// of the answer are read; an answer of more than one series is refused (see
    /// [`answer::range`]). The error is a sentence without the URL.
    pub async fn range(&self, promql: &str, start: i64, end: i64, step: i64) -> Result<Vec<(i64, f64)>, String> {
        let mut request = self
            .client
            .query_range(promql, start, end, step as f64)
            .timeout(self.timeout.as_millis().try_into().unwrap_or(i64::MAX))
            .query("partial_response", "false");
        if let Some(path) = &self.bearer_token_file {
            request = request.header(AUTHORIZATION, bearer(path).map_err(|e| e.to_string())?);
        }
        let mut response = request.get_raw().await.map_err(|e| self.describe(&e))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.describe_reqwest(&e.without_url()))?
        {
            if body.len() + chunk.len() > RANGE_BODY {
                return Err(format!(
                    "the answer is over {} KiB; expected one series",
                    RANGE_BODY / 1024
                ));
            }
            body.extend_from_slice(&chunk);
        }
        answer::range(status, &body)
    }

    /// A sentence without the URL (it may carry credentials, and says nothing new).
    fn describe(&self, e: &prometheus_http_query::Error) -> String {
        match e {
            prometheus_http_query::Error::Client(c) => match c.inner() {
                Some(inner) => self.describe_reqwest(inner),
                None => c.to_string(),
            },
            other => chain(other),
        }
    }

    fn describe_reqwest(&self, e: &reqwest::Error) -> String {
        use std::error::Error as _;
        // reqwest's own message names the URL; its causes do not.
        if e.is_timeout() {
            format!("no answer within {:?}", self.timeout)
        } else if e.is_connect() {
            // The innermost cause says it best: "Connection refused", a DNS or TLS failure.
            let root = std::iter::successors(e.source(), |s| (*s).source()).last();
            format!("cannot connect: {}", root.map(|r| r.to_string()).unwrap_or_default())
        } else {
            match e.source() {
                Some(cause) => format!("request failed: {}", chain(cause)),
                None => "request failed".to_string(),
            }
        }
    }
}

/// Times one query, counts its result and names it in the error.
async fn timed<T>(metrics: &Metrics, query: &Query, run: impl Future<Output = Result<T, String>>) -> Result<T, Error> {
    let start = Instant::now();
    let result = run.await;
    metrics.prometheus_query_duration.observe(start.elapsed().as_secs_f64());
    let label = if result.is_ok() { "success" } else { "error" };
    metrics
        .prometheus_queries
        .get_or_create(&ResultLabels { result: label })
        .inc();
    result.map_err(|e| Error::Prometheus(format!("{}: {e}", query.what)))
}

/// prometheus-http-query appends `api/v1/query` to the URL's path as given: a trailing slash
/// would double it (`/prometheus//api/v1/query`).
fn base_url(raw: &str) -> Result<String, Error> {
    let bad = |why: String| {
        Error::Config(format!(
            "--prometheus-url: {why} (expected e.g. http://prometheus-operated.monitoring:9090 or \
             https://mimir.example.com/prometheus)"
        ))
    };
    let raw = raw.trim();
    // `prometheus:9090` parses as a URL with the scheme `prometheus`.
    if !raw.contains("://") {
        return Err(bad("it must start with http:// or https://".into()));
    }
    let mut url = reqwest::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("the scheme must be http or https, not {}", url.scheme())));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query string or fragment cannot be used".into()));
    }
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url.to_string())
}

fn headers(pairs: &[(String, String)]) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::Config(format!("--prometheus-header: {name:?} is not a valid header name")))?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            Error::Config(format!(
                "--prometheus-header: the value of {name} is not a valid header value"
            ))
        })?;
        // Tenant IDs and API keys alike: keep them out of debug output.
        value.set_sensitive(true);
        map.append(header, value);
    }
    Ok(map)
}

fn ca_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read --prometheus-ca-file {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::Config(format!(
            "--prometheus-ca-file {} is not a PEM certificate bundle: {}",
            path.display(),
            chain(&e)
        ))
    })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "--prometheus-ca-file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// `Bearer <token>` from the token file. Read with std: a few bytes from a mounted secret, and
/// the runtime has no async file support enabled.
fn bearer(path: &std::path::Path) -> Result<HeaderValue, Error> {
    let token = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "cannot read --prometheus-bearer-token-file {}: {e}",
            path.display()
        ))
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "--prometheus-bearer-token-file {} is empty",
            path.display()
        )));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        Error::Config(format!(
            "--prometheus-bearer-token-file {} holds characters a header cannot carry",
            path.display()
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// An error and its causes, `: `-separated, without repeats.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in std::iter::successors(Some(e), |c| c.source()) {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::duration::Duration;

    /// One request as the fake Prometheus saw it.
    #[derive(Clone, Debug)]
    struct Seen {
        path: String,
        params: Vec<(String, String)>,
        headers: HeaderMap,
    }

    impl Seen {
        fn param(&self, name: &str) -> &str {
            self.params
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        }
    }

    /// A Prometheus API answering for `slos` SLOs, or with `fail` for queries containing its
    /// first field.
    #[derive(Default)]
    struct Fake {
        slos: usize,
        fail: Option<(&'static str, StatusCode, &'static str, &'static str)>,
        /// Series added to the answer of the budget query, as another tenant's rules record them.
        forged: Vec<serde_json::Value>,
        seen: Mutex<Vec<Seen>>,
    }

    impl Fake {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn labels(i: usize, name: &str) -> serde_json::Value {
        json!({
            "__name__": name,
            "namespace": format!("ns{}", i % 10),
            "slo": format!("slo-{i}"),
            "slo_warden": format!("ns{}/slo-{i}", i % 10),
        })
    }

    async fn answer(State(fake): State<Arc<Fake>>, uri: Uri, headers: HeaderMap) -> Response {
        let seen = Seen {
            path: uri.path().to_string(),
            params: form_decode(uri.query().unwrap_or("")),
            headers,
        };
        let query = seen.param("query").to_string();
        let time: f64 = seen.param("time").parse().unwrap();
        fake.seen.lock().unwrap().push(seen);
        if let Some((matching, status, content_type, body)) = fake.fail
            && query.contains(matching)
        {
            return (status, [(CONTENT_TYPE, content_type)], body).into_response();
        }
        let result: Vec<serde_json::Value> = if query.starts_with("ALERTS") {
            (0..fake.slos)
                .step_by(2)
                .map(|i| {
                    let mut metric = labels(i, "ALERTS");
                    for (k, v) in [
                        ("alertname", "ErrorBudgetBurn"),
                        ("alertstate", "firing"),
                        ("long", "1h"),
                        ("short", "5m"),
                        ("severity", "critical"),
                    ] {
                        metric[k] = json!(v);
                    }
                    json!({"metric": metric, "values": [[time - 10.0, "1"]]})
                })
                .collect()
        } else if query.ends_with("[2h1m]") {
            (0..fake.slos)
                .flat_map(|i| {
                    [("slo:long_run_burn:ratio", "0.25"), ("slo:long_run_covered:seconds", "3553200")].map(|(name, value)| {
                        json!({"metric": labels(i, name), "values": [[time - 4200.0, "9"], [time - 600.0, value]]})
                    })
                })
                .collect()
        } else if query.ends_with("[11m]") {
            fake.forged
                .iter()
                .cloned()
                .chain((0..fake.slos).flat_map(|i| {
                    [
                        ("slo:sli_error:ratio_rate1d", "0.0005"),
                        ("slo:sli_error:ratio_rate3d", "0.00025"),
                        ("slo:sli_error:ratio_rate30d", "0.0005"),
                        ("slo:error_budget:ratio", "0.001"),
                        ("slo:error_budget_remaining:ratio", "0.5"),
                    ]
                    .map(|(name, value)| {
                        json!({"metric": labels(i, name), "values": [[time - 301.0, "0.9"], [time - 1.0, value]]})
                    })
                }))
                .collect()
        } else {
            (0..fake.slos)
                .flat_map(|i| {
                    ["5m", "30m", "1h", "2h", "6h"].map(|w| {
                        json!({"metric": labels(i, &format!("slo:sli_error:ratio_rate{w}")), "values": [[time - 70.0, "0.1"], [time - 10.0, "0.002"]]})
                    })
                })
                .collect()
        };
        let body = json!({"status": "success", "data": {"resultType": "matrix", "result": result}});
        ([(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }

    async fn serve(fake: Arc<Fake>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(answer).with_state(fake);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn form_decode(query: &str) -> Vec<(String, String)> {
        let unescape = |s: &str| {
            let bytes = s.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'+' => out.push(b' '),
                    b'%' => {
                        out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                        i += 2;
                    }
                    b => out.push(b),
                }
                i += 1;
            }
            String::from_utf8(out).unwrap()
        };
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (unescape(k), unescape(v))
            })
            .collect()
    }

    fn args(url: &str) -> PrometheusArgs {
        PrometheusArgs {
            prometheus_url: Some(url.to_string()),
            prometheus_bearer_token_file: None,
            prometheus_ca_file: None,
            prometheus_headers: Vec::new(),
            prometheus_external_labels: Vec::new(),
            prometheus_timeout: Duration::parse("5s").unwrap(),
        }
    }

    fn poller(args: &PrometheusArgs) -> Poller {
        Poller::new(args).unwrap().unwrap()
    }

    fn at() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000).unwrap()
    }

    fn queries_count(metrics: &Metrics, result: &'static str) -> u64 {
        metrics.prometheus_queries.get_or_create(&ResultLabels { result }).get()
    }

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("slo-warden-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[tokio::test]
    async fn four_queries_at_one_instant_for_1_or_1000_slos() {
        let expected = [
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+[hms].*|slo:sli_errors:tile_rate1m|slo:sli_total:tile_rate1m",slo!=""}[3m]"#,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+d.*|slo:error_budget_remaining:ratio|slo:error_budget:ratio|slo:sli_scrape_interval:seconds",slo!=""}[11m]"#,
            r#"{__name__=~"slo:long_run_burn:ratio|slo:long_run_covered:seconds|slo:window_covered:seconds",slo!=""}[2h1m]"#,
            r#"ALERTS{alertstate=~"firing|pending",slo!="",long!=""}[3m]"#,
        ];
        let metrics = Metrics::default();
        for (cycle, slos) in [1, 1000].into_iter().enumerate() {
            let fake = Arc::new(Fake {
                slos,
                ..Fake::default()
            });
            // A path prefix, with a trailing slash that must not double up.
            let url = format!("{}/prometheus/", serve(fake.clone()).await);
            let snapshot = poller(&args(&url))
                .poll_at(&metrics, at(), &Default::default())
                .await
                .unwrap();

            let seen = fake.seen();
            let mut sent: Vec<&str> = seen.iter().map(|s| s.param("query")).collect();
            sent.sort();
            let mut want = expected.to_vec();
            want.sort();
            assert_eq!(sent, want, "{slos} SLOs");
            for s in &seen {
                assert_eq!(s.path, "/prometheus/api/v1/query");
                assert_eq!(s.param("time"), "1700000000");
                assert_eq!(s.param("timeout"), "5000ms");
                assert_eq!(s.param("partial_response"), "false");
                assert!(s.headers.get(AUTHORIZATION).is_none());
            }

            assert_eq!(snapshot.at, Some(at()));
            assert_eq!(snapshot.slos.len(), slos);
            let first = &snapshot.slos[&("ns0".to_string(), "slo-0".to_string())];
            assert_eq!(first.remaining, Some(0.5));
            let burn: Vec<(String, f64)> = first
                .burn_rates
                .iter()
                .map(|(w, b)| (w.to_string(), crate::budget::round4(*b)))
                .collect();
            assert_eq!(
                burn,
                [
                    ("5m", 2.0),
                    ("30m", 2.0),
                    ("1h", 2.0),
                    ("2h", 2.0),
                    ("6h", 2.0),
                    ("1d", 0.5),
                    ("3d", 0.25),
                    ("30d", 0.5)
                ]
                .map(|(w, b)| (w.to_string(), b))
            );
            assert_eq!(first.state(), crate::api::BudgetState::Burning);
            assert_eq!(
                (first.long_run_burn, first.long_run_covered),
                (Some(0.25), Some(3_553_200.0))
            );
            let status = crate::budget::budget_status(Some(first), at());
            assert_eq!(
                (status.long_run_burn_rate, status.long_run_covered.as_deref()),
                (Some(0.25), Some("41d3h"))
            );
            let last = &snapshot.slos[&(format!("ns{}", (slos - 1) % 10), format!("slo-{}", slos - 1))];
            assert_eq!(last.firing_severities.is_empty(), (slos - 1) % 2 == 1);

            assert_eq!(metrics.prometheus_queries_per_cycle.get(), QUERIES_PER_CYCLE);
            assert_eq!(queries_count(&metrics, "success"), 4 * (cycle as u64 + 1));
            // Every series is what the SLO's own rules write, on their schedules.
            assert_eq!(
                (metrics.budget_series_rejected.get(), metrics.budget_disputed_slos.get()),
                (0, 0)
            );
        }
        assert!(
            metrics
                .encode()
                .contains("slo_warden_prometheus_query_duration_seconds_count 8"),
            "{}",
            metrics.encode()
        );
    }

    #[tokio::test]
    async fn forged_series_are_counted_and_a_second_writer_disputes() {
        let budget = |labels: serde_json::Value, values: serde_json::Value| {
            let mut metric = labels;
            metric["__name__"] = json!("slo:error_budget_remaining:ratio");
            json!({"metric": metric, "values": values})
        };
        let fake = Arc::new(Fake {
            slos: 2,
            forged: vec![
                // Another namespace's rule, without our marker.
                budget(
                    json!({"namespace": "ns0", "slo": "slo-0"}),
                    json!([[1_699_999_990.0, "-1"]]),
                ),
                // A copy of slo-1's series with exactly its labels, on another schedule.
                budget(labels(1, "x"), json!([[1_699_999_800.0, "-1"]])),
            ],
            ..Fake::default()
        });
        let url = serve(fake).await;
        let metrics = Metrics::default();
        let snapshot = poller(&args(&url))
            .poll_at(&metrics, at(), &Default::default())
            .await
            .unwrap();
        let first = &snapshot.slos[&("ns0".to_string(), "slo-0".to_string())];
        assert_eq!((first.remaining, first.disputed.len()), (Some(0.5), 0));
        let second = &snapshot.slos[&("ns1".to_string(), "slo-1".to_string())];
        assert_eq!(second.remaining, None);
        assert!(
            second.disputed[0].starts_with("slo:error_budget_remaining:ratio{namespace=\"ns1\""),
            "{:?}",
            second.disputed
        );
        assert_eq!(metrics.budget_series_rejected.get(), 1);
        assert_eq!(metrics.budget_disputed_slos.get(), 1);
        let text = metrics.encode();
        assert!(text.contains("slo_warden_budget_series_rejected_total 1"), "{text}");
        assert!(text.contains("slo_warden_budget_disputed_slos 1"), "{text}");
    }

    #[tokio::test]
    async fn bearer_token_is_read_every_cycle_and_headers_arrive() {
        let fake = Arc::new(Fake {
            slos: 2,
            ..Fake::default()
        });
        let url = serve(fake.clone()).await;
        let token = temp_file("token", "first-token\n");
        let mut args = args(&url);
        args.prometheus_bearer_token_file = Some(token.clone());
        args.prometheus_headers = vec![
            ("X-Scope-OrgID".into(), "team-a".into()),
            ("X-Extra".into(), "a=b".into()),
        ];
        let poller = poller(&args);
        let metrics = Metrics::default();
        poller.poll_at(&metrics, at(), &Default::default()).await.unwrap();
        // The kubelet rotates a projected service-account token in place.
        std::fs::write(&token, "second-token").unwrap();
        poller.poll_at(&metrics, at(), &Default::default()).await.unwrap();
        std::fs::remove_file(&token).unwrap();

        let seen = fake.seen();
        assert_eq!(seen.len(), 8);
        for (i, s) in seen.iter().enumerate() {
            let want = if i < 4 {
                "Bearer first-token"
            } else {
                "Bearer second-token"
            };
            assert_eq!(s.headers.get_all(AUTHORIZATION).iter().collect::<Vec<_>>(), [want]);
            assert_eq!(s.headers["x-scope-orgid"], "team-a");
            assert_eq!(s.headers["x-extra"], "a=b");
            assert!(s.headers["user-agent"].to_str().unwrap().starts_with("slo-warden/"));
        }

        // A token that disappears fails the cycle without sending anything.
        let err = poller.poll_at(&metrics, at(), &Default::default()).await.unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert_eq!(fake.seen().len(), 8);
    }

    async fn failing(fail: (&'static str, StatusCode, &'static str, &'static str)) -> (String, Metrics) {
        let fake = Arc::new(Fake {
            slos: 3,
            fail: Some(fail),
            ..Fake::default()
        });
        let url = serve(fake).await;
        let metrics = Metrics::default();
        let err = poller(&args(&url))
            .poll_at(&metrics, at(), &Default::default())
            .await
            .unwrap_err();
        let Error::Prometheus(message) = &err else {
            panic!("not a Prometheus error: {err:?}");
        };
        assert!(!message.contains("127.0.0.1"), "{message}");
        (err.to_string(), metrics)
    }

    #[tokio::test]
    async fn one_failing_query_fails_the_whole_poll() {
        let (message, metrics) = failing((
            "ALERTS",
            StatusCode::UNPROCESSABLE_ENTITY,
            "application/json",
            r#"{"status":"error","errorType":"execution","error":"query timed out in expression evaluation"}"#,
        ))
        .await;
        assert_eq!(
            message,
            "cannot query Prometheus: reading the firing burn-rate alerts: HTTP 422 Unprocessable Entity: \
             execution: query timed out in expression evaluation"
        );
        assert_eq!(
            (queries_count(&metrics, "success"), queries_count(&metrics, "error")),
            (3, 1)
        );
        assert_eq!(metrics.prometheus_queries_per_cycle.get(), QUERIES_PER_CYCLE);

        // Mimir without a tenant header answers in plain text.
        let (message, _) = failing((
            "[11m]",
            StatusCode::UNAUTHORIZED,
            "text/plain; charset=utf-8",
            "no org id\n",
        ))
        .await;
        assert_eq!(
            message,
            "cannot query Prometheus: reading the error budgets and long-window error ratios: HTTP 401 Unauthorized: no org id"
        );

        // A URL without the API's path prefix lands on a web UI, or on nothing.
        let (message, _) = failing(("ratio_rate[0-9]+[hms]", StatusCode::OK, "text/html", "<html></html>")).await;
        assert!(
            message.contains("not the Prometheus API's (Content-Type text/html)"),
            "{message}"
        );
        let (message, _) = failing((
            "ratio_rate[0-9]+[hms]",
            StatusCode::NOT_FOUND,
            "text/plain",
            "404 page not found\n",
        ))
        .await;
        assert!(
            message.ends_with("HTTP 404 Not Found: 404 page not found; does the URL have the API's path prefix, if any (e.g. /prometheus)?"),
            "{message}"
        );

        // A scalar where a vector belongs, and a sample that is not a number.
        let (message, _) = failing((
            "ALERTS",
            StatusCode::OK,
            "application/json",
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}"#,
        ))
        .await;
        assert_eq!(
            message,
            "cannot query Prometheus: reading the firing burn-rate alerts: unexpected answer: a scalar"
        );
        let (message, _) = failing((
            "[11m]",
            StatusCode::OK,
            "application/json",
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"slo":"x"},"values":[[1,"fast"]]}]}}"#,
        ))
        .await;
        assert!(
            message.contains("long-window error ratios: cannot read the answer: \"fast\" is not a sample value"),
            "{message}"
        );
    }

    /// The error of a poll of the API at `addr` with a `timeout`.
    async fn poll_with_timeout(addr: std::net::SocketAddr, timeout: &str, metrics: &Metrics) -> String {
        let mut slow = args(&format!("http://{addr}"));
        slow.prometheus_timeout = Duration::parse(timeout).unwrap();
        poller(&slow)
            .poll_at(metrics, at(), &Default::default())
            .await
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn unreachable_and_silent_servers_give_url_free_errors() {
        // Bound but not listening: connections are refused, and no other process can take
        // the port in between (as it could once a listener is dropped).
        let closed = tokio::net::TcpSocket::new_v4().unwrap();
        closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = closed.local_addr().unwrap();
        let metrics = Metrics::default();
        let err = poller(&args(&format!("http://{addr}")))
            .poll_at(&metrics, at(), &Default::default())
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains(": cannot connect: "), "{message}");
        assert!(!message.contains(&addr.to_string()), "{message}");
        assert_eq!(queries_count(&metrics, "error"), 4);
        drop(closed);

        // Accepts connections, never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let err = poll_with_timeout(addr, "200ms", &metrics).await;
        assert!(err.ends_with(": no answer within 200ms"), "{err}");
        held.abort();

        // Answers, then stalls halfway through the body: a timeout, not a JSON error.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalling = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
                let part = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{}"#;
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, format!("{head}{part}").as_bytes()).await;
                open.push(stream);
            }
        });
        let err = poll_with_timeout(addr, "300ms", &metrics).await;
        assert!(err.ends_with(": no answer within 300ms"), "{err}");
        stalling.abort();
    }

    /// ISRG Root X1, a public root certificate.
    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIFazCCA1OgAwIBAgIRAIIQz7DSQONZRGPgu2OCiwAwDQYJKoZIhvcNAQELBQAw
TzELMAkGA1UEBhMCVVMxKTAnBgNVBAoTIEludGVybmV0IFNlY3VyaXR5IFJlc2Vh
cmNoIEdyb3VwMRUwEwYDVQQDEwxJU1JHIFJvb3QgWDEwHhcNMTUwNjA0MTEwNDM4
WhcNMzUwNjA0MTEwNDM4WjBPMQswCQYDVQQGEwJVUzEpMCcGA1UEChMgSW50ZXJu
ZXQgU2VjdXJpdHkgUmVzZWFyY2ggR3JvdXAxFTATBgNVBAMTDElTUkcgUm9vdCBY
MTCCAiIwDQYJKoZIhvcNAQEBBQADggIPADCCAgoCggIBAK3oJHP0FDfzm54rVygc
h77ct984kIxuPOZXoHj3dcKi/vVqbvYATyjb3miGbESTtrFj/RQSa78f0uoxmyF+
0TM8ukj13Xnfs7j/EvEhmkvBioZxaUpmZmyPfjxwv60pIgbz5MDmgK7iS4+3mX6U
A5/TR5d8mUgjU+g4rk8Kb4Mu0UlXjIB0ttov0DiNewNwIRt18jA8+o+u3dpjq+sW
T8KOEUt+zwvo/7V3LvSye0rgTBIlDHCNAymg4VMk7BPZ7hm/ELNKjD+Jo2FR3qyH
B5T0Y3HsLuJvW5iB4YlcNHlsdu87kGJ55tukmi8mxdAQ4Q7e2RCOFvu396j3x+UC
B5iPNgiV5+I3lg02dZ77DnKxHZu8A/lJBdiB3QW0KtZB6awBdpUKD9jf1b0SHzUv
KBds0pjBqAlkd25HN7rOrFleaJ1/ctaJxQZBKT5ZPt0m9STJEadao0xAH0ahmbWn
OlFuhjuefXKnEgV4We0+UXgVCwOPjdAvBbI+e0ocS3MFEvzG6uBQE3xDk3SzynTn
jh8BCNAw1FtxNrQHusEwMFxIt4I7mKZ9YIqioymCzLq9gwQbooMDQaHWBfEbwrbw
qHyGO0aoSCqI3Haadr8faqU9GY/rOPNk3sgrDQoo//fb4hVC1CLQJ13hef4Y53CI
rU7m2Ys6xt0nUW7/vGT1M0NPAgMBAAGjQjBAMA4GA1UdDwEB/wQEAwIBBjAPBgNV
HRMBAf8EBTADAQH/MB0GA1UdDgQWBBR5tFnme7bl5AFzgAiIyBpY9umbbjANBgkq
hkiG9w0BAQsFAAOCAgEAVR9YqbyyqFDQDLHYGmkgJykIrGF1XIpu+ILlaS/V9lZL
ubhzEFnTIZd+50xx+7LSYK05qAvqFyFWhfFQDlnrzuBZ6brJFe+GnY+EgPbk6ZGQ
3BebYhtF8GaV0nxvwuo77x/Py9auJ/GpsMiu/X1+mvoiBOv/2X/qkSsisRcOj/KK
NFtY2PwByVS5uCbMiogziUwthDyC3+6WVwW6LLv3xLfHTjuCvjHIInNzktHCgKQ5
ORAzI4JMPJ+GslWYHb4phowim57iaztXOoJwTdwJx4nLCgdNbOhdjsnvzqvHu7Ur
TkXWStAmzOVyyghqpZXjFaH3pO3JLF+l+/+sKAIuvtd7u+Nxe5AW0wdeRlN8NwdC
jNPElpzVmbUq4JUagEiuTDkHzsxHpFKVK7q4+63SM1N95R1NbdWhscdCb+ZAJzVc
oyi3B43njTOQ5yOf+1CceWxG1bQVs5ZufpsMljq4Ui0/1lvh+wjChP4kqKOJ2qxq
4RgqsahDYVvTH9w7jXbyLeiNdd8XM2w9U/t7y0Ff/9yi0GE44Za4rF2LN9d11TPA
mRGunUHBcnWEvgJBQl9nJEiU0Zsnvgc/ubhPgXRR4Xq37Z0j4r7g1SgEEzwxA57d
emyPxgcYxn/eR44/KJ4EBs+lVDR3veyJm+kXQ99b21/+jh5Xos1AnX5iItreGCc=
-----END CERTIFICATE-----
";

    #[test]
    fn configuration_errors_are_clear() {
        assert!(
            Poller::new(&PrometheusArgs {
                prometheus_url: None,
                ..args("")
            })
            .unwrap()
            .is_none()
        );

        let config_error = |args: PrometheusArgs| match Poller::new(&args) {
            Err(Error::Config(message)) => message,
            other => panic!("expected a configuration error, got {:?}", other.map(|_| ())),
        };
        assert!(config_error(args("prometheus:9090")).contains("must start with http:// or https://"));
        assert!(config_error(args("ftp://prometheus:9090")).contains("the scheme must be http or https"));
        assert!(config_error(args("http://prometheus:99999")).contains("invalid port number"));
        assert!(config_error(args("http://prometheus:9090/?x=1")).contains("query string"));

        let mut bad_header = args("http://prometheus:9090");
        bad_header.prometheus_headers = vec![("X Bad".into(), "1".into())];
        assert!(config_error(bad_header).contains("\"X Bad\" is not a valid header name"));

        let mut missing = args("http://prometheus:9090");
        missing.prometheus_ca_file = Some("/nonexistent/ca.pem".into());
        assert!(config_error(missing).starts_with("cannot read --prometheus-ca-file /nonexistent/ca.pem"));
        let not_pem = temp_file("not-pem", "hello");
        let mut garbage = args("https://prometheus:9090");
        garbage.prometheus_ca_file = Some(not_pem.clone());
        assert!(config_error(garbage).contains("holds no PEM certificate"));
        std::fs::remove_file(not_pem).unwrap();

        let ca = temp_file("ca", CA);
        let mut with_ca = args("https://prometheus.example.com/prometheus");
        with_ca.prometheus_ca_file = Some(ca.clone());
        assert!(Poller::new(&with_ca).unwrap().is_some());
        std::fs::remove_file(ca).unwrap();

        let token = temp_file("conflict-token", "t");
        let mut both = args("http://prometheus:9090");
        both.prometheus_bearer_token_file = Some(token.clone());
        both.prometheus_headers = vec![("authorization".into(), "Basic eDp5".into())];
        assert!(config_error(both).contains("keep one"));
        let empty = temp_file("empty-token", " \n");
        let mut blank = args("http://prometheus:9090");
        blank.prometheus_bearer_token_file = Some(empty.clone());
        assert!(config_error(blank).ends_with("is empty"));
        let mut absent = args("http://prometheus:9090");
        absent.prometheus_bearer_token_file = Some("/nonexistent/token".into());
        assert!(config_error(absent).starts_with("cannot read --prometheus-bearer-token-file"));
        std::fs::remove_file(token).unwrap();
        std::fs::remove_file(empty).unwrap();
    }

    #[test]
    fn base_urls_keep_their_path_prefix() {
        for (given, want) in [
            ("http://prometheus:9090", "http://prometheus:9090/"),
            ("http://prometheus:9090/", "http://prometheus:9090/"),
            (
                "https://mimir.example.com/prometheus/",
                "https://mimir.example.com/prometheus",
            ),
            (" http://thanos-query:10902 ", "http://thanos-query:10902/"),
        ] {
            assert_eq!(base_url(given).unwrap(), want, "{given}");
        }
        let with_credentials = poller(&args("https://user:secret@mimir.example.com/prometheus"));
        assert_eq!(with_credentials.url().as_str(), "https://mimir.example.com/prometheus");
    }
}
