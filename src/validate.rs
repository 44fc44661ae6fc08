//! Everything a ServiceLevelObjective must satisfy beyond its CRD schema, turned into a
//! [`ValidSlo`] the rule generator can rely on. The CLI and the controller run the same checks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::api::bounds::{self, quote};
use crate::api::{BurnRateTier, ServiceLevelObjective, ServiceLevelObjectiveSpec};
use crate::burn_rate::{self, Tier};
use crate::decimal::Decimal;
use crate::duration::Duration;
use crate::sli::{Bad, Events, Sli, Source, WINDOW_PLACEHOLDER, parse_sli_template};

/// One thing wrong with a spec: the field (`spec.objective`) and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The label every series and alert of our rules carries, set by the rule itself: the poller
/// reads only series that carry it with the value their `namespace` and `slo` labels imply, so
/// a series another tool records under the same name is not taken for ours, and one whose
/// `namespace` Prometheus Operator rewrote (enforcedNamespaceLabel) no longer matches.
pub const MARKER_LABEL: &str = "slo_warden";

/// Labels slo-warden sets on every alert; users may not override them.
pub const RESERVED_LABELS: [&str; 7] = ["slo", "namespace", "service", "severity", "long", "short", MARKER_LABEL];

/// The smallest alert window: rates need a few scrapes inside the range.
const MIN_ALERT_WINDOW: Duration = Duration::minutes(1);
const DEFAULT_NO_TRAFFIC_FOR: Duration = Duration::minutes(10);

/// A spec that passed every check, with its inputs parsed.
#[derive(Clone, Debug)]
pub struct ValidSlo {
    pub name: String,
    pub namespace: Option<String>,
    pub service: String,
    pub description: Option<String>,
    /// Percent, as written (99.95).
    pub objective: Decimal,
    /// Allowed error ratio (0.0005 for 99.95).
    pub budget: Decimal,
    pub window: Duration,
    pub sli: Sli,
    /// `spec.scrapeInterval`; the operator's `--scrape-interval` when `None`.
    pub scrape_interval: Option<Duration>,
    /// `spec.partialWindows`.
    pub partial_windows: bool,
    /// `spec.alerting.minRequests`; 0 for no minimum.
    pub min_requests: u64,
    pub alert_name: String,
    pub page_severity: String,
    pub ticket_severity: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub tiers: Vec<Tier>,
    /// `for` of the no-traffic alert; `None` when disabled.
    pub no_traffic_for: Option<Duration>,
    /// The calibration tickets; `None` when disabled.
    pub calibration: Option<Calibration>,
}

/// When the long-run burn rate says the objective needs another look.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub too_tight_alert: String,
    /// The long-run burn rate stays above this (more than 1).
    pub above: f64,
    pub too_loose_alert: String,
    /// The long-run burn rate stays below this (0 to 1).
    pub below: f64,
}

pub const TOO_TIGHT_ALERT: &str = "SLOTargetTooTight";
pub const TOO_LOOSE_ALERT: &str = "SLOTargetTooLoose";
pub const DEFAULT_TOO_TIGHT_ABOVE: f64 = 1.5;
pub const DEFAULT_TOO_LOOSE_BELOW: f64 = 0.3;

pub fn validate(slo: &ServiceLevelObjective) -> Result<ValidSlo, Vec<Problem>> {
    let name = slo.metadata.name.clone().unwrap_or_default();
    let mut v = Checker::default();
    if name.is_empty() {
        v.problem("metadata.name", "must be set");
    }
    v.bounded("metadata.name", bounds::length(&name, bounds::NAME_LEN));
    let spec = &slo.spec;
    let objective = v.objective(spec.objective);
    let window = v.field(
        "spec.window",
        bounds::duration(&spec.window, bounds::MIN_SLO_WINDOW, bounds::MAX_SLO_WINDOW, "30d"),
    );
    let scrape_interval = spec.scrape_interval.as_deref().and_then(|d| {
        v.field(
            "spec.scrapeInterval",
            bounds::duration(d, bounds::MIN_SCRAPE_INTERVAL, bounds::MAX_SCRAPE_INTERVAL, "1m"),
        )
    });
    v.strings(spec);
    let sli = v.indicator(spec);
    let alert_name = spec.alerting.name.clone().unwrap_or_else(|| "ErrorBudgetBurn".into());
    if !is_metric_name(&alert_name) {
        v.problem(
            "spec.alerting.name",
            format!(
                "{} is not a valid alert name; use letters, digits and underscores, e.g. ErrorBudgetBurn",
                quote(&alert_name)
            ),
        );
    }
    // Keys past the bound are reported once by `strings`, and never put into a field path.
    let short = |k: &&String| k.chars().count() <= bounds::PROMETHEUS_NAME_LEN;
    for key in spec.alerting.labels.keys().filter(short) {
        if RESERVED_LABELS.contains(&key.as_str()) {
            v.problem(
                format!("spec.alerting.labels.{key}"),
                format!(
                    "is set by slo-warden; remove it (reserved: {})",
                    RESERVED_LABELS.join(", ")
                ),
            );
        } else if !is_label_name(key) {
            v.problem(
                format!("spec.alerting.labels.{key}"),
                "is not a valid Prometheus label name; use letters, digits and underscores",
            );
        }
    }
    for key in spec.alerting.annotations.keys().filter(short) {
        if !is_label_name(key) {
            v.problem(
                format!("spec.alerting.annotations.{key}"),
                "is not a valid annotation name; use letters, digits and underscores",
            );
        }
    }
    let tiers = window.map(|w| v.tiers(spec.alerting.burn_rates.as_deref(), w));
    let no_traffic_for = match &spec.alerting.no_traffic {
        Some(nt) if !nt.enabled => None,
        Some(nt) => match &nt.for_ {
            Some(f) => v.field(
                "spec.alerting.noTraffic.for",
                bounds::duration(f, bounds::MIN_NO_TRAFFIC_FOR, bounds::MAX_NO_TRAFFIC_FOR, "15m").map_err(|e| {
                    format!(
                        "{e}: it watches 5-minute request rates, and shorter would ticket the ordinary lulls of a quiet service"
                    )
                }),
            ),
            None => Some(DEFAULT_NO_TRAFFIC_FOR),
        },
        None => Some(DEFAULT_NO_TRAFFIC_FOR),
    };
    let calibration = v.calibration(spec.alerting.calibration.as_deref());
    let min_requests = spec.alerting.min_requests.unwrap_or(0);
    if min_requests > bounds::MAX_MIN_REQUESTS {
        v.problem(
            "spec.alerting.minRequests",
            format!("must be at most {}, e.g. 100", bounds::MAX_MIN_REQUESTS),
        );
    } else if min_requests > 0 && spec.indicator.raw.is_some() {
        v.problem(
            "spec.alerting.minRequests",
            "does not apply to a raw indicator, which counts no requests: remove it, or count the requests with indicator.ratio",
        );
    }
    if !v.problems.is_empty() {
        return Err(v.problems);
    }
    let (Some((objective, budget)), Some(window), Some(sli), Some(tiers)) = (objective, window, sli, tiers) else {
        return Err(vec![Problem {
            field: "spec".into(),
            message: "is incomplete".into(),
        }]);
    };
    Ok(ValidSlo {
        service: spec.service_or(&name).to_string(),
        name,
        namespace: slo.metadata.namespace.clone(),
        description: spec.description.clone(),
        objective,
        budget,
        window,
        sli,
        scrape_interval,
        partial_windows: spec.partial_windows,
        min_requests,
        alert_name,
        page_severity: spec.alerting.page_severity.clone().unwrap_or_else(|| "critical".into()),
        ticket_severity: spec
            .alerting
            .ticket_severity
            .clone()
            .unwrap_or_else(|| "warning".into()),
        labels: spec.alerting.labels.clone(),
        annotations: spec.alerting.annotations.clone(),
        tiers,
        no_traffic_for,
        calibration,
    })
}

/// An SLI reads its own namespace: each `namespace` matcher of an indicator input that can
/// select another namespace than the SLO's (`namespace`, the request's, or its own) is a
/// problem, unless the operator runs with `--allow-cross-namespace-sli`. An SLO without a
/// namespace (a rule file for a plain Prometheus) has none to keep to.
pub fn foreign_namespaces(slo: &ServiceLevelObjective, namespace: Option<&str>) -> Vec<Problem> {
    let Some(own) = namespace.or(slo.metadata.namespace.as_deref()) else {
        return Vec::new();
    };
    let ind = &slo.spec.indicator;
    let ratio = ind.ratio.as_ref();
    let inputs = [
        ("spec.indicator.ratio.errors", ratio.and_then(|r| r.errors.as_deref())),
        ("spec.indicator.ratio.good", ratio.and_then(|r| r.good.as_deref())),
        ("spec.indicator.ratio.total", ratio.map(|r| r.total.as_str())),
        (
            "spec.indicator.latency.histogram",
            ind.latency.as_ref().map(|l| l.histogram.as_str()),
        ),
        (
            "spec.indicator.raw.errorRatio",
            ind.raw.as_ref().map(|r| r.error_ratio.as_str()),
        ),
    ];
    inputs
        .into_iter()
        .filter_map(|(field, text)| Some((field, text?)))
        .flat_map(|(field, text)| {
            crate::sli::foreign_namespace_matchers(text, own)
                .into_iter()
                .map(move |matcher| Problem {
                    field: field.to_string(),
                    message: format!(
                        "{matcher} can read another namespace than the SLO's own ({own}); match namespace=\"{own}\" \
                         or leave namespace out (slo-warden runs with --allow-cross-namespace-sli where SLIs may read \
                         other namespaces)"
                    ),
                })
        })
        .collect()
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    fn field<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.problem(field, e)).ok()
    }

    fn bounded(&mut self, field: &str, result: Result<(), String>) {
        self.field(field, result);
    }

    /// The length of every free-form string and the size of every map, as the CRD bounds
    /// them (the PromQL fields and burn-rate tiers are bounded with their own checks).
    fn strings(&mut self, spec: &ServiceLevelObjectiveSpec) {
        let a = &spec.alerting;
        let optional = [
            ("spec.service", &spec.service, bounds::SERVICE_LEN),
            ("spec.description", &spec.description, bounds::TEXT_LEN),
            ("spec.alerting.name", &a.name, bounds::PROMETHEUS_NAME_LEN),
            ("spec.alerting.pageSeverity", &a.page_severity, bounds::SEVERITY_LEN),
            ("spec.alerting.ticketSeverity", &a.ticket_severity, bounds::SEVERITY_LEN),
        ];
        for (field, value, max) in optional {
            if let Some(value) = value {
                self.bounded(field, bounds::length(value, max));
            }
        }
        if let Some(c) = &a.calibration {
            for (which, alert) in [("tooTight", &c.too_tight), ("tooLoose", &c.too_loose)] {
                if let Some(name) = alert.as_ref().and_then(|a| a.name.as_ref()) {
                    self.bounded(
                        &format!("spec.alerting.calibration.{which}.name"),
                        bounds::length(name, bounds::PROMETHEUS_NAME_LEN),
                    );
                }
            }
        }
        let maps = [
            ("spec.alerting.labels", &a.labels, bounds::ALERT_LABEL_VALUE_LEN),
            (
                "spec.alerting.annotations",
                &a.annotations,
                bounds::ANNOTATION_VALUE_LEN,
            ),
        ];
        for (field, map, value_len) in maps {
            self.bounded(field, bounds::count(map.len(), bounds::ALERT_LABELS));
            for (k, v) in map.iter().take(bounds::ALERT_LABELS + 1) {
                if let Err(e) = bounds::length(k, bounds::PROMETHEUS_NAME_LEN) {
                    self.problem(field, format!("key {}: {e}", quote(k)));
                } else {
                    self.bounded(&format!("{field}.{k}"), bounds::length(v, value_len));
                }
            }
        }
    }

    fn objective(&mut self, objective: f64) -> Option<(Decimal, Decimal)> {
        let field = "spec.objective";
        if !objective.is_finite() || objective <= 0.0 {
            self.problem(field, "must be a percentage above 0, e.g. 99.9");
            return None;
        }
        if objective >= 100.0 {
            self.problem(field, "must be below 100 (100% leaves no error budget); use e.g. 99.9");
            return None;
        }
        let Some(percent) = Decimal::from_f64(objective) else {
            self.problem(field, "has too many decimals; use at most 30");
            return None;
        };
        let budget = Decimal::new(100, 0).checked_sub(percent).map(|b| b.shift_left(2));
        match budget {
            Some(b) if b.is_positive() => Some((percent, b)),
            _ => {
                self.problem(field, "leaves no error budget; use a value below 100, e.g. 99.9");
                None
            }
        }
    }

    fn indicator(&mut self, spec: &ServiceLevelObjectiveSpec) -> Option<Sli> {
        let ind = &spec.indicator;
        let set = [ind.ratio.is_some(), ind.latency.is_some(), ind.raw.is_some()]
            .iter()
            .filter(|s| **s)
            .count();
        if set != 1 {
            self.problem("spec.indicator", "set exactly one of ratio, latency or raw");
            return None;
        }
        if let Some(ratio) = &ind.ratio {
            let total = self.field("spec.indicator.ratio.total", Source::parse(&ratio.total));
            let bad = match (&ratio.errors, &ratio.good) {
                (Some(e), None) => self
                    .field("spec.indicator.ratio.errors", Source::parse(e))
                    .map(Bad::Errors),
                (None, Some(g)) => self.field("spec.indicator.ratio.good", Source::parse(g)).map(Bad::Good),
                (Some(_), Some(_)) => {
                    self.problem("spec.indicator.ratio", "set either errors or good, not both");
                    None
                }
                (None, None) => {
                    self.problem("spec.indicator.ratio", "set errors (bad events) or good (good events)");
                    None
                }
            };
            return Some(Sli::Events(Events {
                bad: bad?,
                total: total?,
            }));
        }
        if let Some(lat) = &ind.latency {
            let threshold = self.field(
                "spec.indicator.latency.threshold",
                bounds::duration(&lat.threshold, bounds::POSITIVE, bounds::MAX_LATENCY_THRESHOLD, "300ms")
                    .map_err(|e| format!("{e}; it must equal one of the histogram's bucket bounds")),
            );
            return self.field(
                "spec.indicator.latency.histogram",
                Sli::latency(&lat.histogram, threshold?),
            );
        }
        let raw = ind.raw.as_ref()?;
        let field = "spec.indicator.raw.errorRatio";
        if !raw.error_ratio.contains(WINDOW_PLACEHOLDER) {
            self.problem(field, format!("must use {WINDOW_PLACEHOLDER} as its range, e.g. sum(rate(errors[{WINDOW_PLACEHOLDER}])) / sum(rate(total[{WINDOW_PLACEHOLDER}]))"));
            return None;
        }
        self.field(field, parse_sli_template(&raw.error_ratio))?;
        Some(Sli::Raw(raw.error_ratio.trim().to_string()))
    }

    fn calibration(&mut self, spec: Option<&crate::api::Calibration>) -> Option<Calibration> {
        let default = crate::api::CalibrationAlert::default();
        let (tight, loose) = match spec {
            Some(c) if !c.enabled => return None,
            Some(c) => (
                c.too_tight.as_ref().unwrap_or(&default),
                c.too_loose.as_ref().unwrap_or(&default),
            ),
            None => (&default, &default),
        };
        let field = "spec.alerting.calibration";
        let mut name = |which: &str, alert: &crate::api::CalibrationAlert, default: &str| {
            let name = alert.name.clone().unwrap_or_else(|| default.to_string());
            if !is_metric_name(&name) {
                self.problem(
                    format!("{field}.{which}.name"),
                    format!(
                        "{} is not a valid alert name; use letters, digits and underscores, e.g. {default}",
                        quote(&name)
                    ),
                );
            }
            name
        };
        let too_tight_alert = name("tooTight", tight, TOO_TIGHT_ALERT);
        let too_loose_alert = name("tooLoose", loose, TOO_LOOSE_ALERT);
        if tight.below.is_some() {
            self.problem(
                format!("{field}.tooTight.below"),
                "is not used; tooTight takes `above` (e.g. 1.5)",
            );
        }
        if loose.above.is_some() {
            self.problem(
                format!("{field}.tooLoose.above"),
                "is not used; tooLoose takes `below` (e.g. 0.3)",
            );
        }
        let above = tight.above.unwrap_or(DEFAULT_TOO_TIGHT_ABOVE);
        if !(above.is_finite() && above > 1.0) {
            self.problem(
                format!("{field}.tooTight.above"),
                format!("must be more than 1 (got {above}): a long-run burn rate of 1 spends exactly the budget"),
            );
        }
        let below = loose.below.unwrap_or(DEFAULT_TOO_LOOSE_BELOW);
        if !(below.is_finite() && below > 0.0 && below < 1.0) {
            self.problem(
                format!("{field}.tooLoose.below"),
                format!("must be between 0 and 1 (got {below}): a long-run burn rate of 1 spends exactly the budget"),
            );
        }
        Some(Calibration {
            too_tight_alert,
            above,
            too_loose_alert,
            below,
        })
    }

    fn tiers(&mut self, custom: Option<&[BurnRateTier]>, window: Duration) -> Vec<Tier> {
        let Some(custom) = custom else {
            return burn_rate::default_tiers(window);
        };
        if custom.is_empty() {
            self.problem(
                "spec.alerting.burnRates",
                "must list at least one tier, or be left out for the defaults",
            );
        }
        if custom.len() > burn_rate::MAX_TIERS {
            self.problem(
                "spec.alerting.burnRates",
                format!(
                    "has {} tiers; at most {} are allowed (the defaults are 4), since each adds an alert and windows read every minute",
                    custom.len(),
                    burn_rate::MAX_TIERS
                ),
            );
            return Vec::new();
        }
        let mut seen = BTreeSet::new();
        let mut tiers = Vec::new();
        for (i, t) in custom.iter().enumerate() {
            let at = |f: &str| format!("spec.alerting.burnRates[{i}].{f}");
            let long = self.field(&at("long"), Duration::parse(&t.long));
            let short = self.field(&at("short"), Duration::parse(&t.short));
            let for_ = match &t.for_ {
                Some(f) => self.field(&at("for"), Duration::parse(f)).map(Some),
                None => Some(None),
            };
            let factor = match Decimal::from_f64(t.factor) {
                Some(f) if f.is_positive() => Some(f),
                _ => {
                    self.problem(at("factor"), "must be a positive number, e.g. 14.4");
                    None
                }
            };
            let (Some(long), Some(short), Some(for_), Some(factor)) = (long, short, for_, factor) else {
                continue;
            };
            if short >= long {
                self.problem(at("short"), format!("must be shorter than long ({long})"));
            }
            if short < MIN_ALERT_WINDOW {
                self.problem(at("short"), format!("must be at least {MIN_ALERT_WINDOW}"));
            }
            for (f, w) in [("long", long), ("short", short)] {
                if !w.as_millis().is_multiple_of(burn_rate::WINDOW_UNIT.as_millis()) {
                    self.problem(
                        at(f),
                        format!("must be whole minutes (got {w}): windows are sums of one-minute tiles"),
                    );
                }
            }
            if long > window {
                self.problem(at("long"), format!("must not exceed the SLO window ({window})"));
            }
            if !seen.insert((long, short)) {
                self.problem(
                    at("long"),
                    format!("another tier already uses {long}/{short}; each pair of windows may appear once"),
                );
            }
            tiers.push(Tier {
                long,
                short,
                factor: factor.to_string(),
                severity: t.severity,
                for_,
            });
        }
        tiers
    }
}

pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_metric_name(s: &str) -> bool {
    is_label_name(&s.replace(':', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo(yaml: &str) -> ServiceLevelObjective {
        let mut doc: ServiceLevelObjective = serde_yaml::from_str(&format!(
            "apiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {{name: checkout, namespace: shop}}\nspec:\n{}",
            yaml.lines().map(|l| format!("  {l}\n")).collect::<String>()
        ))
        .unwrap();
        doc.metadata.generation = Some(1);
        doc
    }

    const GOOD: &str = "objective: 99.9\nwindow: 30d\nindicator:\n  ratio:\n    errors: http_requests_total{code=~\"5..\"}\n    total: http_requests_total\n";

    fn problems(yaml: &str) -> Vec<String> {
        validate(&slo(yaml))
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn accepts_a_good_spec() {
        let v = validate(&slo(GOOD)).unwrap();
        assert_eq!(v.budget.to_string(), "0.001");
        assert_eq!(v.service, "checkout");
        assert_eq!(v.tiers.len(), 4);
    }

    #[test]
    fn calibration_thresholds_and_names_are_checked() {
        let with = |calibration: &str| problems(&format!("{GOOD}alerting:\n  calibration: {calibration}\n"));
        assert_eq!(
            with("{tooTight: {above: 0.9, name: too-tight}, tooLoose: {below: 1.2}}"),
            [
                "spec.alerting.calibration.tooTight.name: \"too-tight\" is not a valid alert name; use letters, digits and underscores, e.g. SLOTargetTooTight",
                "spec.alerting.calibration.tooTight.above: must be more than 1 (got 0.9): a long-run burn rate of 1 spends exactly the budget",
                "spec.alerting.calibration.tooLoose.below: must be between 0 and 1 (got 1.2): a long-run burn rate of 1 spends exactly the budget",
            ]
        );
        assert_eq!(
            with("{tooTight: {below: 2}}"),
            ["spec.alerting.calibration.tooTight.below: is not used; tooTight takes `above` (e.g. 1.5)"]
        );
        let defaults = validate(&slo(GOOD)).unwrap().calibration.unwrap();
        assert_eq!(
            (
                defaults.too_tight_alert.as_str(),
                defaults.above,
                defaults.too_loose_alert.as_str(),
                defaults.below
            ),
            ("SLOTargetTooTight", 1.5, "SLOTargetTooLoose", 0.3)
        );
        let off = format!("{GOOD}alerting:\n  calibration: {{enabled: false, tooTight: {{above: 0}}}}\n");
        assert_eq!(validate(&slo(&off)).unwrap().calibration, None);
    }

    #[test]
    fn objective_100_names_the_fix() {
        let p = problems(&GOOD.replace("99.9", "100"));
        assert_eq!(
            p,
            ["spec.objective: must be below 100 (100% leaves no error budget); use e.g. 99.9"]
        );
    }

    #[test]
    fn bad_promql_reports_the_parser_message() {
        let p = problems(&GOOD.replace("http_requests_total{code=~\"5..\"}", "sum(rate(x[$window])"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("spec.indicator.ratio.errors: is not valid PromQL"),
            "{p:?}"
        );
    }

    #[test]
    fn both_errors_and_good() {
        let p = problems(&GOOD.replace("    total:", "    good: http_requests_total{code!~\"5..\"}\n    total:"));
        assert_eq!(p, ["spec.indicator.ratio: set either errors or good, not both"]);
    }

    #[test]
    fn threshold_must_be_a_duration() {
        let p = problems(
            "objective: 99\nwindow: 7d\nindicator:\n  latency:\n    histogram: h_seconds\n    threshold: fast\n",
        );
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with(
                "spec.indicator.latency.threshold: must be a Prometheus duration of at most 1d, e.g. 300ms (got \"fast\")"
            ),
            "{p:?}"
        );
    }

    #[test]
    fn scrape_interval_from_a_second_to_five_minutes() {
        let with = |interval: &str| problems(&format!("{GOOD}scrapeInterval: {interval}\n"));
        for ok in ["1s", "15s", "1m", "2m", "5m"] {
            assert!(with(ok).is_empty(), "{ok}: {:?}", with(ok));
        }
        for bad in ["999ms", "5m1ms", "1h", "often"] {
            assert_eq!(
                with(bad),
                [format!(
                    "spec.scrapeInterval: must be a Prometheus duration from 1s to 5m, e.g. 1m (got {bad:?})"
                )],
                "{bad}"
            );
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let p = problems(
            "objective: 0\nwindow: 1h\nindicator: {}\nalerting:\n  name: 'bad name'\n  labels: {severity: x}\n",
        );
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p.iter().any(|l| {
            l.starts_with("spec.window: must be a Prometheus duration from 1d to 365d, e.g. 30d (got \"1h\")")
        }));
        assert!(
            p.iter()
                .any(|l| l.starts_with("spec.alerting.labels.severity: is set by slo-warden"))
        );
    }

    #[test]
    fn strings_and_maps_at_their_bound_and_just_past_it() {
        let with = |alerting: &str| problems(&format!("{GOOD}alerting: {alerting}\n"));
        let labels = |n: usize| -> String { (0..n).map(|i| format!("l{i}: v")).collect::<Vec<_>>().join(", ") };
        assert!(with(&format!("{{labels: {{{}}}}}", labels(32))).is_empty());
        assert_eq!(
            with(&format!("{{labels: {{{}}}}}", labels(33))),
            ["spec.alerting.labels: must have at most 32 entries (got 33)"]
        );
        let key = "k".repeat(129);
        assert_eq!(
            with(&format!("{{annotations: {{{key}: v}}}}")),
            [format!(
                "spec.alerting.annotations: key \"{}\"…: must be at most 128 characters (got 129)",
                "k".repeat(100)
            )]
        );
        assert!(with(&format!("{{annotations: {{runbook_url: {}}}}}", "u".repeat(1024))).is_empty());
        assert_eq!(
            with(&format!("{{annotations: {{runbook_url: {}}}}}", "u".repeat(1025))),
            ["spec.alerting.annotations.runbook_url: must be at most 1024 characters (got 1025)"]
        );
        assert!(with(&format!("{{labels: {{team: {}}}}}", "t".repeat(256))).is_empty());
        assert_eq!(
            with(&format!("{{labels: {{team: {}}}}}", "t".repeat(257))),
            ["spec.alerting.labels.team: must be at most 256 characters (got 257)"]
        );
        assert!(with(&format!("{{pageSeverity: {}}}", "p".repeat(63))).is_empty());
        assert_eq!(
            with(&format!("{{pageSeverity: {}}}", "p".repeat(64))),
            ["spec.alerting.pageSeverity: must be at most 63 characters (got 64)"]
        );
        assert!(problems(&format!("{GOOD}description: {}\n", "d".repeat(1024))).is_empty());
        assert!(problems(&format!("{GOOD}service: {}\n", "s".repeat(253))).is_empty());
        assert_eq!(
            problems(&format!("{GOOD}service: {}\n", "s".repeat(254))),
            ["spec.service: must be at most 253 characters (got 254)"]
        );
        let latency = |threshold: &str| {
            problems(&format!(
                "objective: 99\nwindow: 7d\nindicator:\n  latency:\n    histogram: h_seconds\n    threshold: {threshold}\n"
            ))
        };
        assert!(latency("1d").is_empty());
        assert_eq!(
            latency("1d1ms"),
            [
                "spec.indicator.latency.threshold: must be a Prometheus duration of at most 1d, e.g. 300ms (got \"1d1ms\"); it must equal one of the histogram's bucket bounds"
            ]
        );
        let p = problems(&format!("{GOOD}description: {}\n", "d".repeat(1025)));
        assert_eq!(p, ["spec.description: must be at most 1024 characters (got 1025)"]);
        let p = problems(&format!("{GOOD}alerting: {{name: '{}'}}\n", "A-".repeat(5_000)));
        assert_eq!(p[0], "spec.alerting.name: must be at most 128 characters (got 10000)");
        assert!(p[1].len() < 250, "the value is quoted short: {}", p[1]);
    }

    #[test]
    fn no_traffic_for_has_a_floor() {
        let p = problems(&format!("{GOOD}alerting:\n  noTraffic: {{for: 30s}}\n"));
        assert_eq!(
            p,
            [
                "spec.alerting.noTraffic.for: must be a Prometheus duration from 10m to 1d, e.g. 15m (got \"30s\"): it watches 5-minute request rates, and shorter would ticket the ordinary lulls of a quiet service"
            ]
        );
        assert!(problems(&format!("{GOOD}alerting:\n  noTraffic: {{for: 15m}}\n")).is_empty());
        assert!(problems(&format!("{GOOD}alerting:\n  noTraffic: {{for: 1d}}\n")).is_empty());
        assert_eq!(
            problems(&format!("{GOOD}alerting:\n  noTraffic: {{for: 1d1ms}}\n")).len(),
            1,
            "1d at most"
        );
        assert!(
            validate(&slo(&format!("{GOOD}alerting:\n  noTraffic: {{enabled: false}}\n")))
                .unwrap()
                .no_traffic_for
                .is_none()
        );
    }

    #[test]
    fn custom_tiers_are_checked() {
        let p = problems(&format!(
            "{GOOD}alerting:\n  burnRates:\n  - {{long: 5m, short: 1h, factor: 10, severity: page}}\n  - {{long: 1h, short: 5m, factor: 0, severity: ticket}}\n"
        ));
        assert_eq!(
            p,
            [
                "spec.alerting.burnRates[0].short: must be shorter than long (5m)",
                "spec.alerting.burnRates[1].factor: must be a positive number, e.g. 14.4"
            ]
        );
    }

    #[test]
    fn sli_cost_refusals_name_the_field() {
        let raw = |expr: &str| {
            problems(&format!(
                "objective: 99\nwindow: 30d\nindicator:\n  raw:\n    errorRatio: '{expr}'\n"
            ))
        };
        let p = raw("sum(rate(e[$window])) / sum(max_over_time(rate(t[$window])[30d:1s]))");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "spec.indicator.raw.errorRatio: has the subquery [30d:1s] in \"rate(t[$window])[30d:1s]\"; subqueries are not allowed"
            ),
            "{p:?}"
        );
        let p = raw("sum(rate(e[1d])) / sum(rate(t[$window]))");
        assert_eq!(
            p,
            [
                "spec.indicator.raw.errorRatio: sets its own range [1d] in \"e[1d]\"; only $window may set a range, so that each window reads exactly itself: write e[$window]"
            ]
        );
        let p = problems(&GOOD.replace("http_requests_total{code=~\"5..\"}", "'{__name__=~\".+\"}'"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("spec.indicator.ratio.errors: matches the metric name with \"__name__=~\\\".+\\\"\""),
            "{p:?}"
        );
        let long = format!("x{{a=\"{}\"}}", "b".repeat(5000));
        let p = problems(&GOOD.replace("total: http_requests_total", &format!("total: '{long}'")));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("spec.indicator.ratio.total: must be at most 4096 characters (got 5007)"),
            "{p:?}"
        );
        assert!(p[0].len() < 250, "{p:?}");
        let p = problems(
            "objective: 99\nwindow: 7d\nindicator:\n  latency:\n    histogram: '{job=\"a\"}'\n    threshold: 1s\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("spec.indicator.latency.histogram: has a selector without a metric name"),
            "{p:?}"
        );
    }

    #[test]
    fn tiers_are_few_and_whole_minutes() {
        let tier =
            |long: &str, short: &str| format!("  - {{long: {long}, short: {short}, factor: 2, severity: page}}\n");
        let tiers = |n: usize| -> String { (1..=n).map(|i| tier(&format!("{i}h"), "5m")).collect() };
        assert!(
            problems(&format!(
                "{GOOD}alerting:\n  burnRates:\n{}",
                tiers(burn_rate::MAX_TIERS)
            ))
            .is_empty()
        );
        assert_eq!(
            problems(&format!("{GOOD}alerting:\n  burnRates:\n{}", tiers(400))),
            [
                "spec.alerting.burnRates: has 400 tiers; at most 8 are allowed (the defaults are 4), since each adds an alert and windows read every minute"
            ]
        );
        assert_eq!(
            problems(&format!(
                "{GOOD}alerting:\n  burnRates:\n{}{}",
                tier("1h", "90s"),
                tier("1h30s", "5m")
            )),
            [
                "spec.alerting.burnRates[0].short: must be whole minutes (got 1m30s): windows are sums of one-minute tiles",
                "spec.alerting.burnRates[1].long: must be whole minutes (got 1h30s): windows are sums of one-minute tiles",
            ]
        );
    }

    #[test]
    fn an_sli_reading_another_namespace_is_refused_with_its_field() {
        let cross = slo(
            "objective: 99.9\nwindow: 30d\nindicator:\n  ratio:\n    errors: 'e_total{namespace=\"pay\"}'\n    total: 't_total{namespace=~\"shop|pay\"}'",
        );
        assert!(validate(&cross).is_ok(), "the spec itself is fine");
        let problems = foreign_namespaces(&cross, None);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["spec.indicator.ratio.errors", "spec.indicator.ratio.total"]);
        assert!(
            problems[0].message.starts_with(
                "namespace=\"pay\" can read another namespace than the SLO's own (shop); match namespace=\"shop\""
            ),
            "{}",
            problems[0].message
        );
        assert!(problems[1].message.contains("--allow-cross-namespace-sli"));
        // The request's namespace when the object names none; none at all: nothing to keep to.
        assert_eq!(foreign_namespaces(&cross, Some("pay")).len(), 1);
        let mut plain = cross.clone();
        plain.metadata.namespace = None;
        assert!(foreign_namespaces(&plain, None).is_empty());
        let own = slo(
            "objective: 99\nwindow: 7d\nindicator:\n  raw:\n    errorRatio: 'sum(rate(e{namespace=\"shop\"}[$window]))'",
        );
        assert!(foreign_namespaces(&own, None).is_empty());
        let latency = slo(
            "objective: 99\nwindow: 7d\nindicator:\n  latency:\n    histogram: 'h_seconds{namespace!=\"shop\"}'\n    threshold: 300ms",
        );
        assert_eq!(
            foreign_namespaces(&latency, None)[0].field,
            "spec.indicator.latency.histogram"
        );
    }
}
