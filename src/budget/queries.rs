//! The instant queries of one poll cycle, and how their answers become per-SLO samples.
//!
//! Every query selects by record name across all SLOs and the answers are split by the
//! `namespace`/`slo` labels, so a cycle costs the same few queries for 1 SLO or 10,000.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prometheus_http_query::response::{InstantVector, RangeVector};

use super::{SloKey, SloSamples};
use crate::duration::Duration;
use crate::rules::{BUDGET, BUDGET_REMAINING, TILE};

/// Record names of the error ratios are this prefix and the window (`error_ratio_record`).
pub const RATIO_PREFIX: &str = "slo:sli_error:ratio_rate";

/// One query of the cycle: what it reads (for error messages) and its PromQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub what: &'static str,
    pub promql: String,
}

/// Error ratios over the windows shorter than a day, recorded at the default evaluation
/// interval. `Duration`'s spelling of those never contains `d`, and of the longer ones always
/// starts with `<n>d`, which is what tells the two record groups apart. `slo!=""` leaves out
/// same-named series of other tools (Sloth records `slo:sli_error:ratio_rate5m` too, with
/// `sloth_*` labels).
pub fn short_ratios() -> Query {
    Query {
        what: "reading the short-window error ratios",
        promql: format!(r#"{{__name__=~"{RATIO_PREFIX}[0-9]+[hms].*",slo!=""}}"#),
    }
}

/// Error ratios over a day or more, the budget and what is left of it. Their group is
/// evaluated every 5 minutes, exactly Prometheus' instant look-back, so an instant read may
/// land between two samples and see nothing: this reads a range two evaluations long and keeps
/// each series' last sample. A plain range selector (rather than `last_over_time`) keeps
/// `__name__`, without which the series of one SLO would collide in Prometheus 2.
pub fn window_ratios_and_budgets() -> Query {
    let look_back = Duration::from_millis(2 * TILE.as_millis());
    Query {
        what: "reading the error budgets and long-window error ratios",
        promql: format!(r#"{{__name__=~"{RATIO_PREFIX}[0-9]+d.*|{BUDGET_REMAINING}|{BUDGET}",slo!=""}}[{look_back}]"#),
    }
}

/// Firing burn-rate alerts, whatever their configured name: only they carry `long`.
pub fn firing_burn_alerts() -> Query {
    Query {
        what: "reading the firing burn-rate alerts",
        promql: r#"ALERTS{alertstate="firing",slo!="",long!=""}"#.to_string(),
    }
}

/// Everything the three queries found about one SLO, before burn rates are computed.
#[derive(Default)]
struct Found {
    ratios: BTreeMap<Duration, f64>,
    budget: Option<f64>,
    remaining: Option<f64>,
    firing: BTreeSet<String>,
}

/// Splits the answers of the three queries by SLO. NaN and infinite values are left out (a
/// window without traffic has a NaN ratio). A burn rate needs the SLO's budget; without it the
/// SLO has no burn rates. When a series comes twice (rules loaded twice, replicas not
/// deduplicated) the worse value wins, so the result does not depend on the answers' order.
pub fn split(short: &[InstantVector], long: &[RangeVector], alerts: &[InstantVector]) -> BTreeMap<SloKey, SloSamples> {
    let mut found: BTreeMap<SloKey, Found> = BTreeMap::new();
    let mut record = |labels: &HashMap<String, String>, value: f64| {
        let (Some(key), Some(name)) = (key(labels), labels.get("__name__")) else {
            return;
        };
        let f = found.entry(key).or_default();
        if !value.is_finite() {
            return;
        }
        match name.as_str() {
            BUDGET => f.budget = Some(f.budget.map_or(value, |b| b.min(value))),
            BUDGET_REMAINING => f.remaining = Some(f.remaining.map_or(value, |r| r.min(value))),
            _ => {
                if let Some(window) = name.strip_prefix(RATIO_PREFIX).and_then(|w| Duration::parse(w).ok()) {
                    let ratio = f.ratios.entry(window).or_insert(value);
                    *ratio = ratio.max(value);
                }
            }
        }
    };
    for series in short {
        record(series.metric(), series.sample().value());
    }
    for series in long {
        // Samples come oldest first; the last one is the current value, NaN included.
        if let Some(last) = series
            .samples()
            .iter()
            .max_by(|a, b| a.timestamp().total_cmp(&b.timestamp()))
        {
            record(series.metric(), last.value());
        }
    }
    for alert in alerts {
        if let Some(key) = key(alert.metric()) {
            let f = found.entry(key).or_default();
            if let Some(severity) = alert.metric().get("severity") {
                f.firing.insert(severity.clone());
            }
        }
    }
    found
        .into_iter()
        .map(|(key, f)| {
            let error_ratios: BTreeMap<_, _> = f
                .ratios
                .iter()
                .filter(|(_, r)| r.is_finite())
                .map(|(w, r)| (*w, *r))
                .collect();
            let burn_rates = match f.budget.filter(|b| *b > 0.0) {
                Some(budget) => f
                    .ratios
                    .into_iter()
                    .map(|(w, ratio)| (w, ratio / budget))
                    .filter(|(_, burn)| burn.is_finite())
                    .collect(),
                None => BTreeMap::new(),
            };
            let samples = SloSamples {
                remaining: f.remaining,
                burn_rates,
                error_ratios,
                firing_severities: f.firing,
            };
            (key, samples)
        })
        .collect()
}

/// `(namespace, slo)`; rule files for a plain Prometheus have no `namespace` label.
fn key(labels: &HashMap<String, String>) -> Option<SloKey> {
    let slo = labels.get("slo").filter(|s| !s.is_empty())?;
    let namespace = labels.get("namespace").cloned().unwrap_or_default();
    Some((namespace, slo.clone()))
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use prometheus_http_query::response::Data;

    use super::*;
    use crate::api::BudgetState;
    use crate::budget::budget_status;
    use crate::rules::error_ratio_record;

    fn data(json: &str) -> Data {
        serde_json::from_str(json).unwrap()
    }

    fn w(s: &str) -> Duration {
        Duration::parse(s).unwrap()
    }

    #[test]
    fn queries_select_what_the_rules_record() {
        // What follows the digits: h, m or s below a day (`[0-9]+[hms].*`), d from a day on.
        let unit_after_digits = |window: &str| {
            let name = error_ratio_record(w(window));
            let spelled = name.strip_prefix(RATIO_PREFIX).unwrap();
            let digits = spelled.bytes().take_while(u8::is_ascii_digit).count();
            assert!(digits > 0, "{name}");
            spelled[digits..].chars().next().unwrap()
        };
        for window in ["1m", "5m", "30m", "1h", "2h", "6h", "90m", "90s", "500ms", "23h59m"] {
            assert!("hms".contains(unit_after_digits(window)), "{window}");
        }
        for window in ["1d", "3d", "4w", "28d", "30d", "1y", "36h"] {
            assert_eq!(unit_after_digits(window), 'd', "{window}");
        }
        assert_eq!(
            short_ratios().promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+[hms].*",slo!=""}"#
        );
        assert_eq!(
            window_ratios_and_budgets().promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+d.*|slo:error_budget_remaining:ratio|slo:error_budget:ratio",slo!=""}[10m]"#
        );
        assert_eq!(
            firing_burn_alerts().promql,
            r#"ALERTS{alertstate="firing",slo!="",long!=""}"#
        );
        for q in [short_ratios(), window_ratios_and_budgets(), firing_burn_alerts()] {
            crate::sli::parse_promql(&q.promql).unwrap();
        }
    }

    /// Answers shaped as Prometheus 2.42 gives them for the rules of `examples/` (one SLO in a
    /// namespace, one from a plain rule file without one).
    const SHORT: &str = r#"{"resultType":"vector","result":[
        {"metric":{"__name__":"slo:sli_error:ratio_rate5m","namespace":"shop","slo":"checkout-availability"},"value":[1700000000,"0.0288"]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate1h","namespace":"shop","slo":"checkout-availability"},"value":[1700000000,"0.0144"]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate6h","namespace":"shop","slo":"checkout-availability"},"value":[1700000000,"NaN"]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate1m","namespace":"shop","slo":"checkout-availability"},"value":[1700000000,"+Inf"]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate5m","slo":"search"},"value":[1700000000,"0.005"]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate5m","sloth_slo":"other"},"value":[1700000000,"0.5"]}
    ]}"#;
    const LONG: &str = r#"{"resultType":"matrix","result":[
        {"metric":{"__name__":"slo:error_budget:ratio","namespace":"shop","slo":"checkout-availability"},"values":[[1699999500,"0.001"],[1699999800,"0.001"]]},
        {"metric":{"__name__":"slo:error_budget_remaining:ratio","namespace":"shop","slo":"checkout-availability"},"values":[[1699999500,"0.8801"],[1699999800,"0.87314159"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate30d","namespace":"shop","slo":"checkout-availability"},"values":[[1699999500,"0.000126"],[1699999800,"0.00012685841"]]},
        {"metric":{"__name__":"slo:sli_error:ratio_rate1d","namespace":"shop","slo":"checkout-availability"},"values":[[1699999800,"0.0025"]]},
        {"metric":{"__name__":"slo:error_budget_remaining:ratio","slo":"search"},"values":[[1699999500,"0.5"],[1699999800,"NaN"]]}
    ]}"#;
    const ALERTS: &str = r#"{"resultType":"vector","result":[
        {"metric":{"__name__":"ALERTS","alertname":"ErrorBudgetBurn","alertstate":"firing","long":"1h","short":"5m","namespace":"shop","service":"checkout","severity":"critical","slo":"checkout-availability"},"value":[1700000000,"1"]},
        {"metric":{"__name__":"ALERTS","alertname":"CheckoutBurn","alertstate":"firing","long":"6h","short":"30m","namespace":"shop","service":"checkout","severity":"critical","slo":"checkout-availability"},"value":[1700000000,"1"]},
        {"metric":{"__name__":"ALERTS","alertname":"ErrorBudgetBurn","alertstate":"firing","long":"3d","short":"6h","namespace":"shop","service":"checkout","severity":"warning","slo":"checkout-availability"},"value":[1700000000,"1"]}
    ]}"#;

    fn split_json(short: &str, long: &str, alerts: &str) -> BTreeMap<SloKey, SloSamples> {
        split(
            &data(short).into_vector().unwrap(),
            &data(long).into_matrix().unwrap(),
            &data(alerts).into_vector().unwrap(),
        )
    }

    #[test]
    fn splits_by_namespace_and_slo() {
        let slos = split_json(SHORT, LONG, ALERTS);
        let checkout = &slos[&("shop".to_string(), "checkout-availability".to_string())];
        assert_eq!(checkout.remaining, Some(0.87314159));
        // 6h is NaN and 1m infinite: left out.
        assert_eq!(
            checkout
                .burn_rates
                .iter()
                .map(|(w, b)| (w.to_string(), crate::budget::round4(*b)))
                .collect::<Vec<_>>(),
            [("5m", 28.8), ("1h", 14.4), ("1d", 2.5), ("30d", 0.1269)].map(|(w, b)| (w.to_string(), b))
        );
        assert_eq!(
            checkout.firing_severities,
            BTreeSet::from(["critical".into(), "warning".into()])
        );
        assert_eq!(checkout.state(), BudgetState::Burning);

        // No namespace label; budget absent, so no burn rate; remaining NaN now.
        let search = &slos[&(String::new(), "search".to_string())];
        assert_eq!((search.remaining, search.burn_rates.len()), (None, 0));
        assert!(search.firing_severities.is_empty());
        assert_eq!(
            search.error_ratios.len(),
            1,
            "the raw ratio is kept for the spec's budget: {search:?}"
        );
        assert_eq!(search.state(), BudgetState::NoData);
        assert_eq!(slos.len(), 2, "series without an `slo` label are not an SLO: {slos:?}");
    }

    #[test]
    fn status_rounds_and_reports_no_data() {
        let slos = split_json(SHORT, LONG, ALERTS);
        let at = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let status = budget_status(slos.get(&("shop".to_string(), "checkout-availability".to_string())), at);
        assert_eq!(status.remaining, Some(0.8731));
        assert_eq!(status.burn_rates["5m"], 28.8);
        assert_eq!(status.burn_rates["30d"], 0.1269);
        assert_eq!(status.state, BudgetState::Burning);

        let status = budget_status(slos.get(&(String::new(), "search".to_string())), at);
        assert_eq!((status.remaining, status.burn_rates.len()), (None, 0));
        assert_eq!(status.state, BudgetState::NoData);
        assert_eq!(budget_status(None, at).state, BudgetState::NoData);
    }

    #[test]
    fn exhausted_and_healthy() {
        let long = r#"{"resultType":"matrix","result":[
            {"metric":{"__name__":"slo:error_budget:ratio","namespace":"a","slo":"x"},"values":[[1,"0.01"]]},
            {"metric":{"__name__":"slo:error_budget_remaining:ratio","namespace":"a","slo":"x"},"values":[[1,"-0.25"]]},
            {"metric":{"__name__":"slo:error_budget_remaining:ratio","namespace":"b","slo":"x"},"values":[[1,"1"]]}
        ]}"#;
        let empty = r#"{"resultType":"vector","result":[]}"#;
        let slos = split_json(empty, long, empty);
        assert_eq!(slos[&("a".into(), "x".into())].state(), BudgetState::Exhausted);
        assert_eq!(slos[&("b".into(), "x".into())].state(), BudgetState::Healthy);
    }

    #[test]
    fn duplicate_series_resolve_to_the_worse_value_in_any_order() {
        let short = r#"{"resultType":"vector","result":[
            {"metric":{"__name__":"slo:sli_error:ratio_rate5m","slo":"x","replica":"a"},"value":[1,"0.02"]},
            {"metric":{"__name__":"slo:sli_error:ratio_rate5m","slo":"x","replica":"b"},"value":[1,"0.03"]}
        ]}"#;
        let long = r#"{"resultType":"matrix","result":[
            {"metric":{"__name__":"slo:error_budget:ratio","slo":"x","replica":"a"},"values":[[1,"0.01"]]},
            {"metric":{"__name__":"slo:error_budget:ratio","slo":"x","replica":"b"},"values":[[1,"0.01"]]},
            {"metric":{"__name__":"slo:error_budget_remaining:ratio","slo":"x","replica":"a"},"values":[[1,"0.4"]]},
            {"metric":{"__name__":"slo:error_budget_remaining:ratio","slo":"x","replica":"b"},"values":[[1,"0.3"]]}
        ]}"#;
        let empty = r#"{"resultType":"vector","result":[]}"#;
        let mut short_series = data(short).into_vector().unwrap();
        let mut long_series = data(long).into_matrix().unwrap();
        let forward = split(&short_series, &long_series, &[]);
        short_series.reverse();
        long_series.reverse();
        assert_eq!(split(&short_series, &long_series, &[]), forward);
        let x = &forward[&(String::new(), "x".to_string())];
        assert_eq!(x.remaining, Some(0.3));
        assert_eq!(x.burn_rates[&w("5m")], 3.0);
        assert!(split_json(empty, r#"{"resultType":"matrix","result":[]}"#, empty).is_empty());
    }
}
