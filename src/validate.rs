//! Everything a ServiceLevelObjective must satisfy beyond its CRD schema, turned into a
//! [`ValidSlo`] the rule generator can rely on. The CLI and the controller run the same checks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::api::{BurnRateTier, ServiceLevelObjective, ServiceLevelObjectiveSpec};
use crate::burn_rate::{self, Tier};
use crate::decimal::Decimal;
use crate::duration::Duration;
use crate::sli::{Bad, Events, Sli, Source, WINDOW_PLACEHOLDER, parse_template};

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

/// Labels slo-warden sets on every alert; users may not override them.
pub const RESERVED_LABELS: [&str; 7] = [
    "slo",
    "namespace",
    "service",
    "severity",
    "long",
    "short",
    crate::rules::MARKER_LABEL,
];

const MIN_WINDOW: Duration = Duration::days(1);
const MAX_WINDOW: Duration = Duration::days(365);
/// The smallest alert window: rates need a few scrapes inside the range.
const MIN_ALERT_WINDOW: Duration = Duration::minutes(1);
const DEFAULT_NO_TRAFFIC_FOR: Duration = Duration::minutes(10);
/// The no-traffic alert watches 5-minute request rates; a shorter `for` would ticket the ordinary
/// lulls of a quiet service.
const MIN_NO_TRAFFIC_FOR: Duration = Duration::minutes(10);

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
const DEFAULT_TOO_TIGHT_ABOVE: f64 = 1.5;
const DEFAULT_TOO_LOOSE_BELOW: f64 = 0.3;

pub fn validate(slo: &ServiceLevelObjective) -> Result<ValidSlo, Vec<Problem>> {
    let name = slo.metadata.name.clone().unwrap_or_default();
    let mut v = Checker::default();
    if name.is_empty() {
        v.problem("metadata.name", "must be set");
    }
    let spec = &slo.spec;
    let objective = v.objective(spec.objective);
    let window = v.field(
        "spec.window",
        Duration::parse(&spec.window).map_err(|e| format!("{e}; the window is the rolling period of the objective")),
    );
    if let Some(w) = window.filter(|w| *w < MIN_WINDOW || *w > MAX_WINDOW) {
        v.problem(
            "spec.window",
            format!("must be between {MIN_WINDOW} and {MAX_WINDOW} (got {w})"),
        );
    }
    let sli = v.indicator(spec);
    let alert_name = spec.alerting.name.clone().unwrap_or_else(|| "ErrorBudgetBurn".into());
    if !is_metric_name(&alert_name) {
        v.problem(
            "spec.alerting.name",
            format!(
                "{alert_name:?} is not a valid alert name; use letters, digits and underscores, e.g. ErrorBudgetBurn"
            ),
        );
    }
    for key in spec.alerting.labels.keys() {
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
    for key in spec.alerting.annotations.keys() {
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
                Duration::parse(f).and_then(|d| {
                    if d < MIN_NO_TRAFFIC_FOR {
                        Err(format!(
                            "must be at least {MIN_NO_TRAFFIC_FOR}: it watches 5-minute request rates, and shorter would ticket the ordinary lulls of a quiet service"
                        ))
                    } else {
                        Ok(d)
                    }
                }),
            ),
            None => Some(DEFAULT_NO_TRAFFIC_FOR),
        },
        None => Some(DEFAULT_NO_TRAFFIC_FOR),
    };
    let calibration = v.calibration(spec.alerting.calibration.as_ref());
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
                Duration::parse(&lat.threshold)
                    .map_err(|e| format!("{e}; it must equal one of the histogram's bucket bounds, e.g. 300ms")),
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
        self.field(field, parse_template(&raw.error_ratio))?;
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
                    format!("{name:?} is not a valid alert name; use letters, digits and underscores, e.g. {default}"),
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

fn is_label_name(s: &str) -> bool {
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
            p[0].starts_with("spec.indicator.latency.threshold: \"fast\" is not a Prometheus duration"),
            "{p:?}"
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let p = problems(
            "objective: 0\nwindow: 1h\nindicator: {}\nalerting:\n  name: 'bad name'\n  labels: {severity: x}\n",
        );
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(
            p.iter()
                .any(|l| l.starts_with("spec.window: must be between 1d and 365d"))
        );
        assert!(
            p.iter()
                .any(|l| l.starts_with("spec.alerting.labels.severity: is set by slo-warden"))
        );
    }

    #[test]
    fn no_traffic_for_has_a_floor() {
        let p = problems(&format!("{GOOD}alerting:\n  noTraffic: {{for: 30s}}\n"));
        assert_eq!(
            p,
            [
                "spec.alerting.noTraffic.for: must be at least 10m: it watches 5-minute request rates, and shorter would ticket the ordinary lulls of a quiet service"
            ]
        );
        assert!(problems(&format!("{GOOD}alerting:\n  noTraffic: {{for: 15m}}\n")).is_empty());
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
