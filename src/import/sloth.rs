//! Sloth: `version: prometheus/v1` specs (snake_case keys) and the `sloth.slok.dev/v1`
//! `PrometheusServiceLevel` CRD (camelCase keys, the same fields under `spec`).
//!
//! A Sloth SLO is named `<service>-<name>` (Sloth's `sloth_id`). Sloth puts the spec's and the
//! SLO's labels on its recorded series and alerts; slo-warden's series carry `slo` and
//! `namespace`, so the labels go on the alerts. Sloth's page and ticket alerts share one name
//! and tell themselves apart by their own labels; slo-warden's tiers share every label but
//! `severity`, so a page or ticket label other than `severity` has no place unless both carry it.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::{Document, Imported, Options, drop_reserved, either, slo, string_map, text, window_placeholder};
use crate::api::{
    Alerting, BurnRateTier, Indicator, RatioIndicator, RawIndicator, ServiceLevelObjectiveSpec, Severity,
};

pub fn convert(doc: &Document, options: &Options) -> Vec<Imported> {
    let v = &doc.value;
    let (spec, namespace) = if text(v, &["version"]).as_deref() == Some("prometheus/v1") {
        (v, None)
    } else if text(v, &["apiVersion"]).is_some_and(|a| a.starts_with("sloth.slok.dev/"))
        && text(v, &["kind"]).as_deref() == Some("PrometheusServiceLevel")
    {
        let Some(spec) = v.get("spec") else {
            return vec![Imported::new(doc, "?").refuse("a PrometheusServiceLevel without spec")];
        };
        (spec, text(v, &["metadata", "namespace"]))
    } else {
        return Vec::new();
    };
    let service = text(spec, &["service"]).unwrap_or_default();
    let (group_labels, _) = string_map(spec.get("labels"));
    let slos = spec
        .get("slos")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    slos.iter()
        .map(|s| one(doc, s, &service, &group_labels, namespace.clone(), options))
        .collect()
}

fn one(
    doc: &Document,
    s: &Value,
    service: &str,
    group_labels: &BTreeMap<String, String>,
    namespace: Option<String>,
    options: &Options,
) -> Imported {
    let name = text(s, &["name"]).unwrap_or_default();
    let id = format!("{service}-{name}");
    let mut imported = Imported::new(doc, &id);

    let sli = s.get("sli").cloned().unwrap_or_default();
    let indicator = if let Some(events) = sli.get("events") {
        let query = |keys: &[&str]| either(events, keys).and_then(Value::as_str).map(window_placeholder);
        Indicator {
            ratio: Some(RatioIndicator {
                errors: query(&["error_query", "errorQuery"]),
                good: None,
                total: query(&["total_query", "totalQuery"]).unwrap_or_default(),
            }),
            ..Indicator::default()
        }
    } else if let Some(raw) = sli.get("raw") {
        let query = either(raw, &["error_ratio_query", "errorRatioQuery"])
            .and_then(Value::as_str)
            .map(window_placeholder);
        Indicator {
            raw: Some(RawIndicator {
                error_ratio: query.unwrap_or_default(),
            }),
            ..Indicator::default()
        }
    } else if let Some(plugin) = sli.get("plugin") {
        let id = text(plugin, &["id"]).unwrap_or_default();
        return imported.refuse(format!(
            "sli.plugin {id:?}: a plugin SLI is Go code Sloth runs; write the query it produces as sli.raw or sli.events and import again"
        ));
    } else {
        return imported.refuse("sli: neither events, raw nor plugin");
    };

    // Labels of the spec, then the SLO's, then the alerts': all on every alert.
    let mut labels = group_labels.clone();
    labels.extend(string_map(s.get("labels")).0);
    if !labels.is_empty() {
        imported.notes.push(format!(
            "labels {} go on the alerts (alerting.labels); slo-warden's recorded series carry slo and namespace instead",
            keys(&labels)
        ));
    }
    let alerting_spec = s.get("alerting").cloned().unwrap_or_default();
    labels.extend(string_map(alerting_spec.get("labels")).0);
    let (mut annotations, _) = string_map(alerting_spec.get("annotations"));

    let page = either(&alerting_spec, &["page_alert", "pageAlert"])
        .cloned()
        .unwrap_or_default();
    let ticket = either(&alerting_spec, &["ticket_alert", "ticketAlert"])
        .cloned()
        .unwrap_or_default();
    let disabled = |a: &Value| a.get("disable").and_then(Value::as_bool).unwrap_or(false);
    let (mut page_labels, _) = string_map(page.get("labels"));
    let (mut ticket_labels, _) = string_map(ticket.get("labels"));
    let page_severity = page_labels.remove("severity");
    let ticket_severity = ticket_labels.remove("severity");
    merge_tier_maps("label", &mut labels, page_labels, ticket_labels, &mut imported);
    let (page_annotations, _) = string_map(page.get("annotations"));
    let (ticket_annotations, _) = string_map(ticket.get("annotations"));
    merge_tier_maps(
        "annotation",
        &mut annotations,
        page_annotations,
        ticket_annotations,
        &mut imported,
    );
    drop_reserved(&mut labels, "label", &mut imported);

    let window = options.window;
    imported.notes.push(format!(
        "window {window}: Sloth specs have none (Sloth's --default-slo-period, 30d unless set); pass --window to change it"
    ));
    let burn_rates = match (disabled(&page), disabled(&ticket)) {
        (false, false) => None,
        (true, true) => {
            imported.lost.push(
                "alerting: page and ticket alerts disabled; slo-warden always writes burn-rate alerts (route them to a null receiver)"
                    .into(),
            );
            None
        }
        (page_off, _) => {
            let keep = if page_off { Severity::Ticket } else { Severity::Page };
            Some(
                crate::burn_rate::default_tiers(window)
                    .into_iter()
                    .filter(|t| t.severity == keep)
                    .map(|t| BurnRateTier {
                        long: t.long.to_string(),
                        short: t.short.to_string(),
                        factor: t.factor.parse().unwrap_or(1.0),
                        severity: t.severity,
                        for_: None,
                    })
                    .collect(),
            )
        }
    };

    let spec = ServiceLevelObjectiveSpec {
        service: Some(service.to_string()),
        description: text(s, &["description"]).filter(|d| !d.is_empty()),
        objective: s.get("objective").and_then(Value::as_f64).unwrap_or_default(),
        window: window.to_string(),
        indicator,
        scrape_interval: None,
        partial_windows: false,
        alerting: Alerting {
            name: text(&alerting_spec, &["name"]),
            labels,
            annotations,
            page_severity,
            ticket_severity,
            burn_rates,
            ..Alerting::default()
        },
    };
    imported.slo = Some(slo(&id, namespace, spec, &mut imported));
    imported
}

/// What page and ticket alerts both carry goes on every alert; what only one carries is lost.
fn merge_tier_maps(
    what: &str,
    common: &mut BTreeMap<String, String>,
    page: BTreeMap<String, String>,
    mut ticket: BTreeMap<String, String>,
    imported: &mut Imported,
) {
    for (key, value) in page {
        if ticket.get(&key) == Some(&value) {
            ticket.remove(&key);
            common.insert(key, value);
        } else {
            imported.lost.push(format!(
                "page alert {what} {key}={value:?}: slo-warden's page and ticket alerts carry the same {what}s (they differ in severity only)"
            ));
        }
    }
    for (key, value) in ticket {
        imported.lost.push(format!(
            "ticket alert {what} {key}={value:?}: slo-warden's page and ticket alerts carry the same {what}s (they differ in severity only)"
        ));
    }
}

fn keys(map: &BTreeMap<String, String>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}
