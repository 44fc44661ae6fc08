//! Pyrra: `pyrra.dev/v1alpha1` `ServiceLevelObjective`.
//!
//! Pyrra's metrics are plain selectors it wraps in `increase`/`rate`, as slo-warden wraps
//! selectors in `rate`, so they carry over as they are. Its `latency` indicator (a `_bucket`
//! selector with `le`, and `_count`) becomes slo-warden's `latency` indicator when the two
//! select the same histogram, else a `good`/`total` ratio of the same selectors. `grouping`
//! (one SLO per label value) has no equivalent: slo-warden measures the SLO over all series.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::{Document, Imported, drop_reserved, slo, string_map, text};
use crate::api::{Alerting, Indicator, LatencyIndicator, NoTraffic, RatioIndicator, ServiceLevelObjectiveSpec};
use crate::duration::Duration;
use crate::sli::parse_promql;

/// Pyrra's labels and annotations with this prefix go on its alerts, without it.
const ALERT_PREFIX: &str = "pyrra.dev/";

pub fn convert(doc: &Document) -> Vec<Imported> {
    let v = &doc.value;
    if !(text(v, &["apiVersion"]).is_some_and(|a| a.starts_with("pyrra.dev/"))
        && text(v, &["kind"]).as_deref() == Some("ServiceLevelObjective"))
    {
        return Vec::new();
    }
    let name = text(v, &["metadata", "name"]).unwrap_or_default();
    let mut imported = Imported::new(doc, &name);
    let spec = v.get("spec").cloned().unwrap_or_default();
    let indicator = spec.get("indicator").cloned().unwrap_or_default();

    let grouping = |ind: &Value| {
        ind.get("grouping")
            .and_then(Value::as_sequence)
            .map(|g| g.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
            .filter(|g| !g.is_empty())
    };
    let grouped;
    let indicator = if let Some(ratio) = indicator.get("ratio") {
        grouped = grouping(ratio);
        Indicator {
            ratio: Some(RatioIndicator {
                errors: text(ratio, &["errors", "metric"]),
                good: None,
                total: text(ratio, &["total", "metric"]).unwrap_or_default(),
            }),
            ..Indicator::default()
        }
    } else if let Some(latency) = indicator.get("latency") {
        grouped = grouping(latency);
        let success = text(latency, &["success", "metric"]).unwrap_or_default();
        let total = text(latency, &["total", "metric"]).unwrap_or_default();
        match as_histogram(&success, &total) {
            Some((histogram, threshold)) => Indicator {
                latency: Some(LatencyIndicator { histogram, threshold }),
                ..Indicator::default()
            },
            None => {
                imported.notes.push(
                    "latency: the success and total selectors do not select one histogram's bucket and count; imported as a good/total ratio of the same selectors"
                        .into(),
                );
                Indicator {
                    ratio: Some(RatioIndicator {
                        errors: None,
                        good: Some(success),
                        total,
                    }),
                    ..Indicator::default()
                }
            }
        }
    } else if let Some(native) = indicator.get("latencyNative") {
        grouped = grouping(native);
        let total = text(native, &["total", "metric"]).unwrap_or_default();
        let latency = text(native, &["latency"]).unwrap_or_default();
        let Ok(threshold) = Duration::parse(&latency) else {
            return vec![imported.refuse(format!("latencyNative.latency {latency:?} is not a duration"))];
        };
        // Pyrra: histogram_fraction(0, threshold, increase) * histogram_count(increase), over
        // histogram_count(increase); rates give the same ratio.
        let rate = format!("sum(rate({total}[$window]))");
        Indicator {
            ratio: Some(RatioIndicator {
                errors: None,
                good: Some(format!(
                    "histogram_fraction(0, {}, {rate}) * histogram_count({rate})",
                    threshold.as_secs_f64()
                )),
                total: format!("histogram_count({rate})"),
            }),
            ..Indicator::default()
        }
    } else if indicator.get("bool_gauge").is_some() {
        return vec![imported.refuse(
            "indicator.bool_gauge: a gauge of 0s and 1s counts probes, not events; slo-warden has no equivalent \
             (write the ratio of its sum to its count as indicator.raw if that is what you mean)",
        )];
    } else {
        return vec![imported.refuse("indicator: none of ratio, latency, latencyNative")];
    };
    if let Some(labels) = grouped {
        imported.lost.push(format!(
            "indicator grouping [{labels}]: Pyrra keeps one budget per value; slo-warden measures this SLO over all series \
             (create one SLO per value with a matcher if each needs its own)"
        ));
    }

    // Labels: `pyrra.dev/x` go on the alerts as `x`; the others stay on the object. Pyrra also
    // copies those onto its PrometheusRule, which slo-warden labels with --rule-label instead.
    let (metadata_labels, _) = string_map(v.get("metadata").and_then(|m| m.get("labels")));
    let (alert_labels, object_labels): (BTreeMap<_, _>, BTreeMap<_, _>) = metadata_labels
        .into_iter()
        .partition(|(k, _)| k.starts_with(ALERT_PREFIX));
    if !object_labels.is_empty() {
        imported.notes.push(format!(
            "metadata.labels {} stay on the SLO; Pyrra also put them on its PrometheusRule, where slo-warden puts the operator's --rule-label (chart value ruleLabels)",
            object_labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut labels = without_prefix(alert_labels);
    drop_reserved(&mut labels, "label", &mut imported);
    let (metadata_annotations, _) = string_map(v.get("metadata").and_then(|m| m.get("annotations")));
    let annotations = without_prefix(metadata_annotations);

    let alerting_spec = spec.get("alerting").cloned().unwrap_or_default();
    let flag = |key: &str| alerting_spec.get(key).and_then(Value::as_bool);
    if flag("disabled") == Some(true) || flag("burnrates") == Some(false) {
        imported.lost.push(
            "alerting: burn-rate alerts disabled; slo-warden always writes them (route them to a null receiver)".into(),
        );
    }
    let no_traffic = (flag("absent") == Some(false)).then(|| {
        Box::new(NoTraffic {
            enabled: false,
            for_: None,
        })
    });
    if let Some(absent) = text(&alerting_spec, &["absentName"]) {
        imported.lost.push(format!(
            "alerting.absentName {absent:?}: slo-warden's alert for an SLI without traffic is SLONoTraffic"
        ));
    }
    let severities = alerting_spec.get("severities").cloned().unwrap_or_default();
    let pair = |a: &str, b: &str, what: &str, imported: &mut Imported| {
        let (x, y) = (text(&severities, &[a]), text(&severities, &[b]));
        match (x, y) {
            (Some(x), Some(y)) if x != y => {
                imported.lost.push(format!(
                    "alerting.severities {a}={x:?}, {b}={y:?}: slo-warden gives all {what} tiers one severity; using {x:?}"
                ));
                Some(x)
            }
            (x, y) => x.or(y),
        }
    };
    let page_severity = pair("fastBurn", "mediumBurn", "page", &mut imported);
    let ticket_severity = pair("slowBurn", "longTermBurn", "ticket", &mut imported);
    if let Some(absent) = text(&severities, &["absent"]) {
        imported.lost.push(format!(
            "alerting.severities.absent {absent:?}: SLONoTraffic carries the ticket severity"
        ));
    }
    imported.notes.push(
        "burn-rate alerts: slo-warden's multiwindow tiers for the window (Pyrra's factors and windows differ slightly)"
            .into(),
    );

    let objective = match &spec.get("target") {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    };
    let spec_out = ServiceLevelObjectiveSpec {
        service: None,
        description: text(&spec, &["description"]).filter(|d| !d.trim().is_empty()),
        objective: objective.unwrap_or_default(),
        window: text(&spec, &["window"]).unwrap_or_default(),
        indicator,
        scrape_interval: None,
        partial_windows: false,
        alerting: Alerting {
            name: text(&alerting_spec, &["name"]),
            labels,
            annotations,
            page_severity,
            ticket_severity,
            no_traffic,
            ..Alerting::default()
        },
    };
    let mut out = slo(&name, text(v, &["metadata", "namespace"]), spec_out, &mut imported);
    if !object_labels.is_empty() {
        out.metadata.labels = Some(object_labels);
    }
    imported.slo = Some(out);
    vec![imported]
}

/// The entries named `pyrra.dev/<x>`, as `<x>`.
fn without_prefix(map: BTreeMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(ALERT_PREFIX)?.to_string(), v)))
        .collect()
}

/// `(histogram, threshold)` when `success` is `<h>_bucket{m..., le="x"}` and `total` is
/// `<h>_count{m...}` with the same other matchers, and `x` seconds is a whole number of
/// milliseconds.
fn as_histogram(success: &str, total: &str) -> Option<(String, String)> {
    let (Ok(promql_parser::parser::Expr::VectorSelector(s)), Ok(promql_parser::parser::Expr::VectorSelector(t))) =
        (parse_promql(success), parse_promql(total))
    else {
        return None;
    };
    let base = s.name.as_deref()?.strip_suffix("_bucket")?;
    if t.name.as_deref()?.strip_suffix("_count")? != base || base.ends_with("_milliseconds") || base.ends_with("_ms") {
        return None;
    }
    let others = |m: &promql_parser::label::Matchers| {
        let mut v: Vec<String> = m
            .matchers
            .iter()
            .filter(|m| m.name != "le" && m.name != "__name__")
            .map(|m| m.to_string())
            .collect();
        v.sort();
        v
    };
    let matchers = others(&s.matchers);
    if matchers != others(&t.matchers) || !s.matchers.or_matchers.is_empty() || !t.matchers.or_matchers.is_empty() {
        return None;
    }
    let le = s.matchers.matchers.iter().find(|m| m.name == "le")?;
    if !matches!(le.op, promql_parser::label::MatchOp::Equal) {
        return None;
    }
    let seconds: f64 = le.value.parse().ok()?;
    let millis = seconds * 1000.0;
    if !(millis > 0.0 && millis.fract() == 0.0) {
        return None;
    }
    let threshold = Duration::from_millis(millis as u64).to_string();
    Some((format!("{base}{{{}}}", matchers.join(",")), threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_selectors_become_a_histogram_when_they_select_one() {
        assert_eq!(
            as_histogram(
                r#"apiserver_request_sli_duration_seconds_bucket{component="apiserver",scope=~"cluster|",verb=~"LIST|GET",le="5.0"}"#,
                r#"apiserver_request_sli_duration_seconds_count{component="apiserver",scope=~"cluster|",verb=~"LIST|GET"}"#,
            ),
            Some((
                r#"apiserver_request_sli_duration_seconds{component="apiserver",scope=~"cluster|",verb=~"LIST|GET"}"#
                    .into(),
                "5s".into()
            ))
        );
        assert_eq!(
            as_histogram(r#"h_bucket{le="0.25",job="a"}"#, r#"h_count{job="a"}"#),
            Some((r#"h{job="a"}"#.into(), "250ms".into()))
        );
        // Other matchers, another histogram, a regex le, a bound finer than a millisecond.
        assert_eq!(as_histogram(r#"h_bucket{le="1",job="a"}"#, r#"h_count{job="b"}"#), None);
        assert_eq!(as_histogram(r#"h_bucket{le="1"}"#, r#"g_count"#), None);
        assert_eq!(as_histogram(r#"h_bucket{le=~"1|1.0"}"#, r#"h_count"#), None);
        assert_eq!(as_histogram(r#"h_bucket{le="0.0001"}"#, r#"h_count"#), None);
    }
}
