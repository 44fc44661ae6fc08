//! OpenSLO `openslo/v1`: `SLO` documents with an inline `indicator` or an `indicatorRef` to an
//! `SLI` document (in any of the input files), one slo-warden SLO per objective.
//!
//! A Prometheus `metricSource` query of a counter reads the counter's value (often summed,
//! `sum(x{...})`); slo-warden takes a selector and rates it, so `x{...}` and `sum(x{...})` both
//! become `x{...}` rated over each window. Other queries carry over only when they say where
//! the window goes (`{{.window}}`, as OpenSLO examples write it).

use std::collections::BTreeMap;

use promql_parser::parser::{AggregateExpr, Expr, token};
use serde_yaml::Value;

use super::{Document, Imported, Options, slo, text, window_placeholder};
use crate::api::{Indicator, RatioIndicator, RawIndicator, ServiceLevelObjectiveSpec};
use crate::duration::Duration;
use crate::sli::{WINDOW_PLACEHOLDER, parse_promql};

pub fn convert(doc: &Document, all: &[Document], options: &Options) -> Vec<Imported> {
    let v = &doc.value;
    if !(text(v, &["apiVersion"]).as_deref() == Some("openslo/v1") && text(v, &["kind"]).as_deref() == Some("SLO")) {
        return Vec::new();
    }
    let name = text(v, &["metadata", "name"]).unwrap_or_default();
    let spec = v.get("spec").cloned().unwrap_or_default();
    let objectives = spec
        .get("objectives")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    if objectives.is_empty() {
        return vec![Imported::new(doc, &name).refuse("spec.objectives: none")];
    }
    let several = objectives.len() > 1;
    objectives
        .iter()
        .enumerate()
        .map(|(i, objective)| {
            let slo_name = if several {
                let label = text(objective, &["displayName"])
                    .or_else(|| text(objective, &["name"]))
                    .unwrap_or_else(|| (i + 1).to_string());
                format!("{name}-{label}")
            } else {
                name.clone()
            };
            let mut imported = Imported::new(doc, &slo_name);
            if several {
                imported.notes.push(format!(
                    "objective {} of {}: slo-warden has one objective per SLO",
                    i + 1,
                    objectives.len()
                ));
            }
            match one(&spec, objective, all, options, &mut imported) {
                Ok(spec) => {
                    let mut out = slo(&slo_name, text(v, &["metadata", "namespace"]), spec, &mut imported);
                    out.metadata.labels = labels(v, &mut imported);
                    imported.slo = Some(out);
                    imported
                }
                Err(why) => imported.refuse(why),
            }
        })
        .collect()
}

fn one(
    spec: &Value,
    objective: &Value,
    all: &[Document],
    options: &Options,
    imported: &mut Imported,
) -> Result<ServiceLevelObjectiveSpec, String> {
    let sli = match (spec.get("indicator"), text(spec, &["indicatorRef"])) {
        (Some(inline), _) => inline.get("spec").cloned().unwrap_or_default(),
        (None, Some(reference)) => all
            .iter()
            .find(|d| {
                text(&d.value, &["kind"]).as_deref() == Some("SLI")
                    && text(&d.value, &["metadata", "name"]).as_deref() == Some(&reference)
            })
            .and_then(|d| d.value.get("spec").cloned())
            .ok_or(format!(
                "spec.indicatorRef {reference:?}: no SLI of that name in the input; pass its file too"
            ))?,
        (None, None) => return Err("spec: neither indicator nor indicatorRef".into()),
    };
    if sli.get("thresholdMetric").is_some() {
        return Err(
            "thresholdMetric: a threshold on one value per time slice; slo-warden counts good and bad events (a ratioMetric)"
                .into(),
        );
    }
    let ratio = sli.get("ratioMetric").ok_or("indicator: no ratioMetric")?;
    let indicator = indicator(ratio, all)?;

    let percent = match (
        objective.get("target").and_then(Value::as_f64),
        objective.get("targetPercent").and_then(Value::as_f64),
    ) {
        (Some(t), _) => (t * 100.0 * 1e9).round() / 1e9,
        (None, Some(p)) => p,
        (None, None) => return Err("objective: neither target nor targetPercent".into()),
    };
    if objective.get("op").is_some() || objective.get("value").is_some() {
        imported
            .notes
            .push("objective op/value: apply to threshold metrics only, not to a ratio; left out".into());
    }
    match text(spec, &["budgetingMethod"]).as_deref() {
        None | Some("Occurrences") => {}
        Some(method) => imported.lost.push(format!(
            "budgetingMethod {method}: slo-warden counts events (Occurrences); the objective now applies to the ratio of good events, not of good time slices"
        )),
    }
    let window = window(spec, options, imported)?;
    if let Some(policies) = spec
        .get("alertPolicies")
        .and_then(Value::as_sequence)
        .filter(|p| !p.is_empty())
    {
        let names: Vec<String> = policies
            .iter()
            .map(|p| {
                text(p, &["alertPolicyRef"])
                    .or_else(|| text(p, &["metadata", "name"]))
                    .unwrap_or_else(|| "?".into())
            })
            .collect();
        imported.lost.push(format!(
            "alertPolicies [{}]: slo-warden writes multiwindow burn-rate alerts instead (alerting.burnRates to tune them)",
            names.join(", ")
        ));
    }
    Ok(ServiceLevelObjectiveSpec {
        service: text(spec, &["service"]),
        description: text(spec, &["description"]).filter(|d| !d.trim().is_empty()),
        objective: percent,
        window: window.to_string(),
        indicator,
        scrape_interval: None,
        partial_windows: false,
        alerting: Default::default(),
    })
}

fn indicator(ratio: &Value, all: &[Document]) -> Result<Indicator, String> {
    if let Some(raw) = ratio.get("raw") {
        let query = prometheus_query(raw, "ratioMetric.raw", all)?;
        let query = window_placeholder(&query);
        if !query.contains(WINDOW_PLACEHOLDER) {
            return Err(format!(
                "ratioMetric.raw query {query:?} has no {{{{.window}}}} range: it cannot be evaluated over each window"
            ));
        }
        let error_ratio = match text(ratio, &["rawType"]).as_deref() {
            Some("failure") => query,
            Some("success") => format!("1 - ({query})"),
            other => return Err(format!("ratioMetric.rawType {other:?}: must be success or failure")),
        };
        return Ok(Indicator {
            raw: Some(RawIndicator { error_ratio }),
            ..Indicator::default()
        });
    }
    // Where the data comes from first: a counter of another system is no use either.
    for key in ["total", "good", "bad"] {
        if let Some(m) = ratio.get(key) {
            prometheus_query(m, &format!("ratioMetric.{key}"), all)?;
        }
    }
    if ratio.get("counter").and_then(Value::as_bool) != Some(true) {
        return Err(
            "ratioMetric.counter is not true: slo-warden counts events from counters (the values of a gauge are not events)"
                .into(),
        );
    }
    let source = |key: &str| -> Result<Option<String>, String> {
        match ratio.get(key) {
            None => Ok(None),
            Some(m) => counter(&prometheus_query(m, &format!("ratioMetric.{key}"), all)?)
                .map(Some)
                .map_err(|e| format!("ratioMetric.{key}: {e}")),
        }
    };
    let total = source("total")?.ok_or("ratioMetric: no total")?;
    let (good, bad) = (source("good")?, source("bad")?);
    if good.is_some() == bad.is_some() {
        return Err("ratioMetric: needs exactly one of good and bad".into());
    }
    Ok(Indicator {
        ratio: Some(RatioIndicator {
            errors: bad,
            good,
            total,
        }),
        ..Indicator::default()
    })
}

/// The query of a `metricSource` whose type (its own, or its DataSource's) is Prometheus.
fn prometheus_query(metric: &Value, what: &str, all: &[Document]) -> Result<String, String> {
    let source = metric.get("metricSource").ok_or(format!("{what}: no metricSource"))?;
    let kind = text(source, &["type"]).or_else(|| {
        let reference = text(source, &["metricSourceRef"])?;
        all.iter()
            .find(|d| {
                text(&d.value, &["kind"]).as_deref() == Some("DataSource")
                    && text(&d.value, &["metadata", "name"]).as_deref() == Some(&reference)
            })
            .and_then(|d| text(&d.value, &["spec", "type"]))
    });
    match kind.as_deref() {
        Some(k) if k.eq_ignore_ascii_case("prometheus") => {}
        Some(k) => {
            return Err(format!(
                "{what}.metricSource type {k}: slo-warden reads Prometheus only (write the SLI as PromQL over the same data)"
            ));
        }
        None => {
            return Err(format!(
                "{what}.metricSource: no type, and no DataSource of its metricSourceRef in the input"
            ));
        }
    }
    text(source, &["spec", "query"]).ok_or(format!("{what}.metricSource.spec.query: missing"))
}

/// A counter query as slo-warden takes it: a selector, a `sum` of one, or an expression using
/// `{{.window}}`.
fn counter(query: &str) -> Result<String, String> {
    let query = window_placeholder(query);
    if query.contains(WINDOW_PLACEHOLDER) {
        return Ok(query);
    }
    match parse_promql(&query)? {
        Expr::VectorSelector(_) => Ok(query),
        Expr::Aggregate(AggregateExpr { op, expr, .. }) if op.id() == token::T_SUM => match *expr {
            Expr::VectorSelector(vs) => Ok(vs.to_string()),
            Expr::Paren(p) if matches!(*p.expr, Expr::VectorSelector(_)) => Ok(p.expr.to_string()),
            _ => Err(format!(
                "{query:?} is not a counter selector or a sum of one; write it with {{{{.window}}}} as the range"
            )),
        },
        _ => Err(format!(
            "{query:?} is not a counter selector or a sum of one; write it with {{{{.window}}}} as the range"
        )),
    }
}

/// The rolling window: `timeWindow[0].duration`, else the default. A calendar window becomes a
/// rolling one of the same length, and says so.
fn window(spec: &Value, options: &Options, imported: &mut Imported) -> Result<Duration, String> {
    let Some(tw) = spec
        .get("timeWindow")
        .and_then(Value::as_sequence)
        .and_then(|t| t.first())
    else {
        imported.notes.push(format!(
            "window {}: the SLO has no timeWindow; pass --window to change it",
            options.window
        ));
        return Ok(options.window);
    };
    let text_duration = text(tw, &["duration"]).ok_or("timeWindow[0].duration: missing")?;
    let window = openslo_duration(&text_duration, imported)?;
    if tw.get("isRolling").and_then(Value::as_bool) != Some(true) {
        imported.lost.push(format!(
            "timeWindow: a calendar window ({text_duration} from its startTime); slo-warden's windows roll, imported as a rolling {window}"
        ));
    }
    Ok(window)
}

/// OpenSLO durations: a number and one of m, h, d, w, M (month), Q (quarter), Y (year).
fn openslo_duration(text: &str, imported: &mut Imported) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("timeWindow duration {text:?}: not a number and a unit"))?;
    let days = match unit {
        "M" => Some(30),
        "Q" => Some(90),
        "Y" => Some(365),
        _ => None,
    };
    match days {
        Some(d) => {
            let w = Duration::days(n * d);
            imported.notes.push(format!(
                "timeWindow duration {text}: read as {w} (months as 30 days, quarters 90, years 365)"
            ));
            Ok(w)
        }
        None => Duration::parse(t).map_err(|e| format!("timeWindow duration {text:?}: {e}")),
    }
}

/// `metadata.labels` that are Kubernetes labels: OpenSLO values may be lists, which are not.
fn labels(v: &Value, imported: &mut Imported) -> Option<BTreeMap<String, String>> {
    let Some(Value::Mapping(m)) = v.get("metadata").and_then(|m| m.get("labels")) else {
        return None;
    };
    let mut out = BTreeMap::new();
    for (k, value) in m {
        let Some(k) = k.as_str() else { continue };
        let single = match value {
            Value::String(s) => Some(s.clone()),
            Value::Sequence(items) if items.len() == 1 => items[0].as_str().map(str::to_string),
            _ => None,
        };
        match single.filter(|s| is_label_value(s)) {
            Some(s) => {
                out.insert(k.to_string(), s);
            }
            None => imported.lost.push(format!(
                "metadata.labels.{k}: {} is not a Kubernetes label value",
                match value {
                    Value::Sequence(items) => format!(
                        "[{}]",
                        items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                    ),
                    other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
                }
            )),
        }
    }
    (!out.is_empty()).then_some(out)
}

fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_selectors_or_sums_of_one() {
        assert_eq!(
            counter(r#"sum(http_requests{k8s_cluster="prod",component="web",code=~"2xx|4xx"})"#).unwrap(),
            // The parser's spelling: matchers in order of name.
            r#"http_requests{code=~"2xx|4xx",component="web",k8s_cluster="prod"}"#
        );
        assert_eq!(counter("http_requests_total{}").unwrap(), "http_requests_total{}");
        assert_eq!(counter("sum(rate(x[{{.window}}]))").unwrap(), "sum(rate(x[$window]))");
        let e = counter("sum(a) / sum(b)").unwrap_err();
        assert!(e.contains("not a counter selector"), "{e}");
    }

    #[test]
    fn durations_with_months() {
        let mut i = Imported::default();
        assert_eq!(openslo_duration("28d", &mut i).unwrap(), Duration::days(28));
        assert_eq!(openslo_duration("1M", &mut i).unwrap(), Duration::days(30));
        assert_eq!(openslo_duration("1Q", &mut i).unwrap(), Duration::days(90));
        assert!(openslo_duration("month", &mut i).is_err());
        assert_eq!(i.notes.len(), 2);
    }
}
