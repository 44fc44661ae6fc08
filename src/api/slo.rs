//! `ServiceLevelObjective` (slo.warden.dev/v1alpha1): an SLI, an objective and a window.
//!
//! The schema carries CEL rules for the mistakes `kubectl apply` should refuse outright; the
//! checks that need a PromQL parser live in `crate::validate` and run in the CLI and controller.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bounds::{self, duration_rule};
use super::burn_rates::BurnRates;

/// A Prometheus duration: one or more `<number><unit>` with units ms, s, m, h, d, w, y.
pub const DURATION_CEL: &str = "self.matches('^([0-9]+(ms|s|m|h|d|w|y))+$')";

#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "slo.warden.dev",
    version = "v1alpha1",
    kind = "ServiceLevelObjective",
    plural = "servicelevelobjectives",
    shortname = "slo",
    category = "slo-warden",
    namespaced,
    status = "ServiceLevelObjectiveStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Objective","type":"number","jsonPath":".spec.objective"}"#,
    printcolumn = r#"{"name":"Window","type":"string","jsonPath":".spec.window"}"#,
    printcolumn = r#"{"name":"Budget","type":"number","description":"Fraction of the error budget left over the window","jsonPath":".status.budget.remaining"}"#,
    printcolumn = r#"{"name":"Burn-1h","type":"number","description":"Burn rate over the last hour (1 = exactly on budget)","jsonPath":".status.budget.burnRates.1h"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.budget.state"}"#,
    printcolumn = r#"{"name":"Burn-long-run","type":"number","priority":1,"description":"Burn rate over the long run (90 days or the window): about 1 when the objective fits the service","jsonPath":".status.budget.longRunBurnRate"}"#,
    printcolumn = r#"{"name":"Sampled","type":"string","priority":1,"description":"How often the indicator's request series are sampled, as measured","jsonPath":".status.budget.scrapeInterval"}"#,
    printcolumn = r#"{"name":"Signal","type":"string","priority":1,"description":"Whether the budget can be trusted: SignalHealthy, or why not (ScrapeIntervalLonger, HistoryShort, TooFewRequests, NoSeries)","jsonPath":".status.conditions[?(@.type==\"SignalHealthy\")].reason"}"#,
    printcolumn = r#"{"name":"Covered","type":"string","priority":1,"description":"How much of the window Prometheus holds data for, while short of it (the budget counts as missing until then)","jsonPath":".status.budget.covered"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("!has(self.indicator.raw) || !has(self.alerting) || !has(self.alerting.minRequests) || self.alerting.minRequests == 0").message("alerting.minRequests does not apply to a raw indicator, which counts no requests: remove it, or count the requests with indicator.ratio"))]
#[serde(rename_all = "camelCase")]
pub struct ServiceLevelObjectiveSpec {
    /// The service this objective is about; defaults to the object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::SERVICE_LEN))]
    pub service: Option<String>,

    /// Free text shown in alert descriptions and dashboards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::TEXT_LEN))]
    pub description: Option<String>,

    /// Target percentage of good events, strictly between 0 and 100 (e.g. 99.9).
    #[x_kube(validation = Rule::new("self > 0.0 && self < 100.0").message("objective must be a percentage strictly between 0 and 100, e.g. 99.9"))]
    pub objective: f64,

    /// Rolling window the objective is measured over, as a Prometheus duration from 1d to 365d
    /// (e.g. 30d, 28d, 7d).
    #[x_kube(validation = duration_rule("window", bounds::MIN_SLO_WINDOW, bounds::MAX_SLO_WINDOW, "30d"))]
    #[schemars(length(max = bounds::DURATION_LEN))]
    pub window: String,

    /// How good and bad events are counted: exactly one of ratio, latency or raw.
    pub indicator: Indicator,

    /// How often Prometheus scrapes the indicator's source series, from 1s to 5m (e.g. 1m);
    /// defaults to the operator's `--scrape-interval` (the chart's `scrapeInterval`, 30s).
    /// Each tile reads its series over the tile plus this interval, so that every increase is
    /// counted once: set below the real interval, one-minute tiles hold fewer than two samples
    /// and stay empty, and the short windows and burn alerts go silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = duration_rule("scrapeInterval", bounds::MIN_SCRAPE_INTERVAL, bounds::MAX_SCRAPE_INTERVAL, "1m"))]
    #[schemars(length(max = bounds::DURATION_LEN))]
    pub scrape_interval: Option<String>,

    /// Use the budget and the windows of a day or more before Prometheus holds data covering
    /// them (a new SLO, retention shorter than the window, data lost). By default they count as
    /// missing (state `NoData`, `status.budget.signal` says how much is held) until the data
    /// covers 99% of them: a budget over part of the window forgets the burns before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial_windows: bool,

    /// Alert naming, labels and burn-rate tiers; every field has a sensible default.
    #[serde(default, skip_serializing_if = "Alerting::is_default")]
    pub alerting: Alerting,
}

/// Exactly one of `ratio`, `latency` or `raw`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("[has(self.ratio), has(self.latency), has(self.raw)].filter(x, x).size() == 1").message("set exactly one of indicator.ratio, indicator.latency or indicator.raw"))]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<RatioIndicator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyIndicator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawIndicator>,
}

/// Bad (or good) events over all events, each a series selector of counters or a PromQL
/// expression using `$window` (e.g. `sum(rate(x[$window]))`).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.errors) != has(self.good)").message("set exactly one of indicator.ratio.errors or indicator.ratio.good"))]
#[serde(rename_all = "camelCase")]
pub struct RatioIndicator {
    /// Counter(s) of failed events, e.g. `http_requests_total{job="checkout",code=~"5.."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::sli::MAX_PROMQL_CHARS))]
    pub errors: Option<String>,
    /// Counter(s) of successful events; use instead of `errors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = crate::sli::MAX_PROMQL_CHARS))]
    pub good: Option<String>,
    /// Counter(s) of all events, e.g. `http_requests_total{job="checkout"}`.
    #[schemars(length(max = crate::sli::MAX_PROMQL_CHARS))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("indicator.ratio.total must not be empty"))]
    pub total: String,
}

/// Requests slower than `threshold` are bad, read from a classic histogram.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencyIndicator {
    /// Series selector of the histogram without the `_bucket` suffix, e.g.
    /// `http_request_duration_seconds{job="checkout"}`; its `_bucket` and `_count` series are used.
    #[schemars(length(max = crate::sli::MAX_PROMQL_CHARS))]
    #[x_kube(validation = Rule::new("self.size() > 0").message("indicator.latency.histogram must not be empty"))]
    pub histogram: String,
    /// Latency a good request stays within (a Prometheus duration, at most 1d); must equal one
    /// of the histogram's bucket bounds.
    #[x_kube(validation = duration_rule("threshold", bounds::POSITIVE, bounds::MAX_LATENCY_THRESHOLD, "300ms"))]
    #[schemars(length(max = bounds::DURATION_LEN))]
    pub threshold: String,
}

/// Any error ratio PromQL can express, using `$window` for the range.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RawIndicator {
    /// An expression returning the error ratio (0..1) over `$window` as a single series.
    #[schemars(length(max = crate::sli::MAX_PROMQL_CHARS))]
    #[x_kube(validation = Rule::new("self.contains('$window')").message("indicator.raw.errorRatio must use $window as its range, e.g. rate(x[$window])"))]
    pub error_ratio: String,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alerting {
    /// Name of the burn-rate alerts (default `ErrorBudgetBurn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::PROMETHEUS_NAME_LEN))]
    pub name: Option<String>,
    /// Extra labels on every alert (e.g. `team`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "bounds::alert_labels_schema")]
    pub labels: BTreeMap<String, String>,
    /// Extra annotations on every alert (e.g. `runbook_url`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "bounds::annotations_schema")]
    pub annotations: BTreeMap<String, String>,
    /// `severity` label of page tiers (default `critical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::SEVERITY_LEN))]
    pub page_severity: Option<String>,
    /// `severity` label of ticket tiers (default `warning`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::SEVERITY_LEN))]
    pub ticket_severity: Option<String>,
    /// Replaces the default multiwindow tiers (14.4x 1h/5m, 6x 6h/30m, 3x 1d/2h, 1x 3d/6h for 30d); at most 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = super::bounds::MAX_TIERS))]
    pub burn_rates: Option<Vec<BurnRateTier>>,
    /// The alert for an SLI that sees no traffic at all.
    // Boxed, as `calibration`: rarely set, and inline they would make every cached SLO a size
    // class larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_traffic: Option<Box<NoTraffic>>,
    /// A burn-rate tier fires only when its long window saw at least this many requests
    /// (observations, for a latency indicator), so a quiet service does not page on a handful
    /// of errors; 0 or absent: no minimum. Not for a `raw` indicator, which counts no requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = bounds::MAX_MIN_REQUESTS))]
    pub min_requests: Option<u64>,
    /// Tickets saying the objective itself needs another look, from the long-run burn rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Box<Calibration>>,
}

impl Alerting {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BurnRateTier {
    /// Long window, a Prometheus duration (e.g. 1h).
    pub long: String,
    /// Short window confirming the burn is still going on (e.g. 5m); shorter than `long`.
    pub short: String,
    /// Burn-rate factor: 1 spends exactly the budget over the SLO window.
    #[x_kube(validation = Rule::new("self > 0.0").message("factor must be positive"))]
    pub factor: f64,
    /// `page` or `ticket`.
    pub severity: Severity,
    /// How long the condition must hold before firing (default: half the short window, rounded
    /// down to whole alert evaluations, e.g. 2m for a 5m short window at one-minute evaluations).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    Page,
    Ticket,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NoTraffic {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long the SLI must see no traffic before alerting (default 10m; from 10m to 1d).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = duration_rule("noTraffic.for", bounds::MIN_NO_TRAFFIC_FOR, bounds::MAX_NO_TRAFFIC_FOR, "15m"))]
    #[schemars(length(max = bounds::DURATION_LEN))]
    pub for_: Option<String>,
}

/// Whether the objective fits the service, judged from the burn rate over the long run (90
/// days, or the window if longer), once the data covers at least the window and 28 days.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The ticket for an objective the service keeps missing: the long-run burn rate stays
    /// above `above` (default `SLOTargetTooTight` above 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_tight: Option<CalibrationAlert>,
    /// The ticket for an objective the service beats by far: the long-run burn rate stays below
    /// `below` (default `SLOTargetTooLoose` below 0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_loose: Option<CalibrationAlert>,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CalibrationAlert {
    /// Alert name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::PROMETHEUS_NAME_LEN))]
    pub name: Option<String>,
    /// Long-run burn rate above which the objective is too tight (more than 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Long-run burn rate below which the objective is too loose (between 0 and 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
}

fn default_true() -> bool {
    true
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLevelObjectiveStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::api::condition::conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Name of the generated PrometheusRule (same namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_rule: Option<String>,
    /// The generation whose rules are in place; behind `metadata.generation` while the current
    /// spec is invalid and the last good rules are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_generation: Option<i64>,
    /// Digest of the rules last applied (or found in place): while it and
    /// `prometheusRuleVersion` still match, a reconcile need not read the rule back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub rules_digest: Option<String>,
    /// The `resourceVersion` of the PrometheusRule after the last apply (or check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub prometheus_rule_version: Option<String>,
    /// Error budget as last read from Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetStatus>,
    /// The last releases of the workloads that the policies selecting this SLO target, newest
    /// first, and the budget each one burned from its start to the next release (or now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub releases: Vec<ReleaseStatus>,
    /// Where the counting of `releases` began: a release that started earlier has its errors
    /// and requests from here on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases_counted_from: Option<Time>,
    /// How far the errors of `releases` are counted (the end of the last tile read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases_counted_through: Option<Time>,
    /// Time since `releasesCountedFrom` that no tile read covered (the operator was down for
    /// longer than a poll reads back): errors then are counted for no release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = bounds::DURATION_LEN))]
    pub releases_missed: Option<String>,
}

/// One release of a workload, and what it cost this SLO.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatus {
    /// `Deployment` or `Rollout`.
    #[schemars(length(max = 16))]
    pub kind: String,
    #[schemars(length(max = 253))]
    pub workload: String,
    /// Its revision (`deployment.kubernetes.io/revision`, `rollout.argoproj.io/revision`).
    pub revision: u64,
    /// The images of its containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 512)))]
    pub images: Vec<String>,
    /// Who changed the pod template, as far as the cluster says: the field manager that last
    /// wrote it when the release was recorded (`kubectl-set`, `argocd-controller`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub changed_by: Option<String>,
    /// When it started: its ReplicaSet's creation, or when the operator first saw it (a
    /// rollback brings an old ReplicaSet back without a new creation time).
    pub started_at: Time,
    /// The SLO's errors from its start to the next release (or now), counted from the tiles of
    /// its `sli` rule group (one minute by default).
    #[serde(default)]
    pub errors: f64,
    /// The SLO's requests over the same time.
    #[serde(default)]
    pub requests: f64,
    /// Those errors as a share of the error budget the SLO's window allows (0.1 = a tenth);
    /// absent while the window's requests are unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_burned: Option<f64>,
    /// The burn rate over the same time (error ratio / budget); absent without requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn_rate_since: Option<f64>,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BudgetStatus {
    /// Fraction of the error budget left over the window (1 = untouched, 0 or less = spent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<f64>,
    /// Burn rate per alert window, keyed by window (e.g. `1h`).
    #[serde(default, skip_serializing_if = "BurnRates::is_empty")]
    pub burn_rates: BurnRates,
    pub state: BudgetState,
    /// Burn rate over the long run (90 days, or the window if longer), recorded hourly: about
    /// 1 for an objective that fits, well above for one the service keeps missing, well below
    /// for one it beats by far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_run_burn_rate: Option<f64>,
    /// How much of the long run the data covers (e.g. `41d6h`); the calibration alerts wait
    /// until it is at least the window and 28 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_run_covered: Option<String>,
    /// How often the indicator's request series are sampled, as measured over 10 minutes
    /// (e.g. `30s`); absent for a raw indicator or requests counted by an expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<String>,
    /// Why the short windows and burn alerts cannot see a burn (the request series are sampled
    /// too seldom for the interval the rules assume); absent while they can. The state is
    /// `NoData` meanwhile, and policies treat the SLO's burn alerts as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// How much of the window Prometheus holds data for (e.g. `9d`), while it is less than the
    /// window; absent once it covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<Time>,
}

#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BudgetState {
    Healthy,
    Burning,
    Exhausted,
    #[default]
    NoData,
}

impl ServiceLevelObjectiveSpec {
    /// The `service` label value: `spec.service`, else the object's name.
    pub fn service_or<'a>(&'a self, name: &'a str) -> &'a str {
        self.service.as_deref().unwrap_or(name)
    }
}
