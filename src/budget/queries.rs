//! The instant queries of one poll cycle, and how their answers become per-SLO samples.
//!
//! Every query selects by record name across all SLOs and the answers are split by the
//! `namespace`/`slo` labels, so a cycle costs the same few queries for 1 SLO or 10,000.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{SloKey, SloSamples};
use crate::duration::Duration;
use crate::rules::{BUDGET, BUDGET_REMAINING, CALIBRATION_INTERVAL, LONG_RUN_BURN, LONG_RUN_COVERED, TILE};

/// Record names of the error ratios are this prefix and the window (`error_ratio_record`).
pub const RATIO_PREFIX: &str = "slo:sli_error:ratio_rate";

/// The namespaces a cycle reads: those the operator watches. An operator limited to some
/// namespaces reads only their SLOs' series, however many other SLOs share the Prometheus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The matcher added to every selector (`,namespace="shop"`), empty for all namespaces.
    matcher: String,
}

impl Scope {
    /// The watched namespaces (the operator gives them checked, sorted and unique); all
    /// namespaces when empty. Namespace names are DNS labels, which hold no character a
    /// regular expression or a PromQL string would read specially.
    pub fn new(namespaces: &[String]) -> Self {
        let matcher = match namespaces {
            [] => String::new(),
            [one] => format!(r#",namespace="{one}""#),
            many => format!(r#",namespace=~"{}""#, many.join("|")),
        };
        Self { matcher }
    }
}

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
pub fn short_ratios(scope: &Scope) -> Query {
    Query {
        what: "reading the short-window error ratios",
        promql: format!(
            r#"{{__name__=~"{RATIO_PREFIX}[0-9]+[hms].*",slo!=""{}}}"#,
            scope.matcher
        ),
    }
}

/// Error ratios over a day or more, the budget and what is left of it. Their group is
/// evaluated every 5 minutes, exactly Prometheus' instant look-back, so an instant read may
/// land between two samples and see nothing: this reads a range two evaluations long and keeps
/// each series' last sample. A plain range selector (rather than `last_over_time`) keeps
/// `__name__`, without which the series of one SLO would collide in Prometheus 2.
pub fn window_ratios_and_budgets(scope: &Scope) -> Query {
    let look_back = Duration::from_millis(2 * TILE.as_millis());
    Query {
        what: "reading the error budgets and long-window error ratios",
        promql: format!(
            r#"{{__name__=~"{RATIO_PREFIX}[0-9]+d.*|{BUDGET_REMAINING}|{BUDGET}",slo!=""{}}}[{look_back}]"#,
            scope.matcher
        ),
    }
}

/// The long-run burn rates and their coverage, recorded hourly: read over two evaluations, as
/// the window ratios are.
pub fn long_run(scope: &Scope) -> Query {
    let look_back = Duration::from_millis(2 * CALIBRATION_INTERVAL.as_millis());
    Query {
        what: "reading the long-run burn rates",
        promql: format!(
            r#"{{__name__=~"{LONG_RUN_BURN}|{LONG_RUN_COVERED}",slo!=""{}}}[{look_back}]"#,
            scope.matcher
        ),
    }
}

/// Firing burn-rate alerts, whatever their configured name: only they carry `long`.
pub fn firing_burn_alerts(scope: &Scope) -> Query {
    Query {
        what: "reading the firing burn-rate alerts",
        promql: format!(r#"ALERTS{{alertstate="firing",slo!="",long!=""{}}}"#, scope.matcher),
    }
}

/// One series of an answer, as much of it as the split reads, borrowed from the body: an
/// answer for ten thousand SLOs holds about a hundred thousand series, and materialising each
/// one's label map cost more memory than everything else the operator keeps.
#[derive(Debug, Deserialize)]
pub struct Series<'a> {
    #[serde(borrow)]
    metric: Labels<'a>,
    /// An instant vector's sample.
    #[serde(default)]
    value: Option<Sample>,
    /// A range vector's newest sample.
    #[serde(default)]
    values: Option<Newest>,
}

impl Series<'_> {
    /// The sample that counts, NaN and infinities included; `None` for a series without one
    /// (a native histogram's).
    fn sample(&self) -> Option<f64> {
        self.value.or(self.values.and_then(|n| n.0)).map(|s| s.value)
    }
}

/// The labels the split reads; the others are skipped unread.
#[derive(Debug, Default, Deserialize)]
struct Labels<'a> {
    #[serde(rename = "__name__", borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    slo: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    severity: Option<Cow<'a, str>>,
}

/// `[<unix seconds>, "<value>"]`, the value spelled as Go's `strconv` spells it (`NaN`,
/// `+Inf`, `-Inf` included).
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: f64,
    value: f64,
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (at, Value(value)) = <(f64, Value)>::deserialize(deserializer)?;
        Ok(Sample { at, value })
    }
}

/// A sample's value, parsed from its string without copying it.
struct Value(f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sample value as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                v.parse()
                    .map(Value)
                    .map_err(|_| E::custom(format!("{v:?} is not a sample value")))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// The newest of a range vector's samples, without keeping the others.
#[derive(Clone, Copy, Debug)]
struct Newest(Option<Sample>);

impl<'de> Deserialize<'de> for Newest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Newest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of samples")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Newest, A::Error> {
                let mut newest: Option<Sample> = None;
                while let Some(s) = seq.next_element::<Sample>()? {
                    // Samples come oldest first; the order is not relied on.
                    if newest.is_none_or(|n| s.at >= n.at) {
                        newest = Some(s);
                    }
                }
                Ok(Newest(newest))
            }
        }
        deserializer.deserialize_seq(Visit)
    }
}

/// Everything the queries found about one SLO, before burn rates are computed.
#[derive(Default)]
struct Found {
    ratios: BTreeMap<Duration, f64>,
    budget: Option<f64>,
    remaining: Option<f64>,
    firing: BTreeSet<String>,
    long_run_burn: Option<f64>,
    long_run_covered: Option<f64>,
}

/// Gathers the answers of the queries by SLO, one series at a time, in any order. NaN and
/// infinite values are left out (a window without traffic has a NaN ratio). A burn rate needs
/// the SLO's budget; without it the SLO has no burn rates. When a series comes twice (rules
/// loaded twice, replicas not deduplicated) the worse value wins, so the result does not depend
/// on the answers' order.
#[derive(Default)]
pub struct Split {
    found: BTreeMap<SloKey, Found>,
}

impl Split {
    /// A series of the ratio and budget queries.
    pub fn record(&mut self, series: &Series) {
        let (Some(key), Some(name), Some(value)) = (key(&series.metric), &series.metric.name, series.sample()) else {
            return;
        };
        let f = self.found.entry(key).or_default();
        if !value.is_finite() {
            return;
        }
        match name.as_ref() {
            BUDGET => f.budget = Some(f.budget.map_or(value, |b| b.min(value))),
            BUDGET_REMAINING => f.remaining = Some(f.remaining.map_or(value, |r| r.min(value))),
            LONG_RUN_BURN => f.long_run_burn = Some(f.long_run_burn.map_or(value, |b| b.max(value))),
            LONG_RUN_COVERED => f.long_run_covered = Some(f.long_run_covered.map_or(value, |c| c.min(value))),
            name => {
                if let Some(window) = name.strip_prefix(RATIO_PREFIX).and_then(|w| Duration::parse(w).ok()) {
                    let ratio = f.ratios.entry(window).or_insert(value);
                    *ratio = ratio.max(value);
                }
            }
        }
    }

    /// A series of the firing-alerts query.
    pub fn alert(&mut self, series: &Series) {
        if let Some(key) = key(&series.metric) {
            let f = self.found.entry(key).or_default();
            if let Some(severity) = &series.metric.severity {
                f.firing.insert(severity.to_string());
            }
        }
    }

    /// Every SLO's samples.
    pub fn finish(self) -> BTreeMap<SloKey, SloSamples> {
        self.found
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
                    long_run_burn: f.long_run_burn,
                    long_run_covered: f.long_run_covered,
                };
                (key, samples)
            })
            .collect()
    }
}

/// `(namespace, slo)`; rule files for a plain Prometheus have no `namespace` label.
fn key(labels: &Labels) -> Option<SloKey> {
    let slo = labels.slo.as_deref().filter(|s| !s.is_empty())?;
    let namespace = labels.namespace.as_deref().unwrap_or_default();
    Some((namespace.to_string(), slo.to_string()))
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::api::BudgetState;
    use crate::budget::budget_status;
    use crate::rules::error_ratio_record;

    /// The series of an answer's `data`.
    fn series(json: &str) -> Vec<Series<'_>> {
        #[derive(Deserialize)]
        struct Data<'a> {
            #[serde(borrow)]
            result: Vec<Series<'a>>,
        }
        serde_json::from_str::<Data>(json).unwrap().result
    }

    fn split(short: &[Series], long: &[Series], alerts: &[Series]) -> BTreeMap<SloKey, SloSamples> {
        let mut split = Split::default();
        short.iter().chain(long).for_each(|s| split.record(s));
        alerts.iter().for_each(|s| split.alert(s));
        split.finish()
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
        let all = Scope::default();
        assert_eq!(
            short_ratios(&all).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+[hms].*",slo!=""}"#
        );
        assert_eq!(
            window_ratios_and_budgets(&all).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+d.*|slo:error_budget_remaining:ratio|slo:error_budget:ratio",slo!=""}[10m]"#
        );
        assert_eq!(
            firing_burn_alerts(&all).promql,
            r#"ALERTS{alertstate="firing",slo!="",long!=""}"#
        );
        for q in [
            short_ratios(&all),
            window_ratios_and_budgets(&all),
            firing_burn_alerts(&all),
        ] {
            crate::sli::parse_promql(&q.promql).unwrap();
        }
    }

    #[test]
    fn a_namespaced_operator_reads_only_its_namespaces() {
        let names = |v: &[&str]| Scope::new(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&[]), Scope::default());
        let one = names(&["shop"]);
        assert_eq!(
            short_ratios(&one).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+[hms].*",slo!="",namespace="shop"}"#
        );
        assert_eq!(
            firing_burn_alerts(&one).promql,
            r#"ALERTS{alertstate="firing",slo!="",long!="",namespace="shop"}"#
        );
        let two = names(&["shop", "web"]);
        assert_eq!(
            window_ratios_and_budgets(&two).promql,
            r#"{__name__=~"slo:sli_error:ratio_rate[0-9]+d.*|slo:error_budget_remaining:ratio|slo:error_budget:ratio",slo!="",namespace=~"shop|web"}[10m]"#
        );
        assert_eq!(
            long_run(&two).promql,
            r#"{__name__=~"slo:long_run_burn:ratio|slo:long_run_covered:seconds",slo!="",namespace=~"shop|web"}[2h]"#
        );
        for scope in [one, two] {
            for q in [
                short_ratios(&scope),
                window_ratios_and_budgets(&scope),
                long_run(&scope),
                firing_burn_alerts(&scope),
            ] {
                crate::sli::parse_promql(&q.promql).unwrap();
            }
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
        split(&series(short), &series(long), &series(alerts))
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
    fn series_keep_the_newest_sample_and_go_spelled_values() {
        let answer = r#"{"resultType":"matrix","result":[
            {"metric":{"__name__":"slo:sli_error:ratio_rate1d","job":"x","namespace":"a\"b","slo":"x"},"values":[[20,"-Inf"],[10,"0.5"]]},
            {"metric":{"slo":"x","__name__":"slo:error_budget:ratio"},"values":[[10,"NaN"],[20,"+Inf"],[15,"0.1"]]},
            {"metric":{"slo":"y","__name__":"slo:error_budget:ratio"},"values":[]},
            {"metric":{"slo":"z"},"histograms":[[1,{"count":"1","sum":"1"}]]}
        ]}"#;
        let read = series(answer);
        let samples: Vec<Option<f64>> = read.iter().map(Series::sample).collect();
        assert_eq!(samples[0], Some(f64::NEG_INFINITY), "the newest, whatever the order");
        assert_eq!(samples[1], Some(f64::INFINITY));
        assert_eq!(samples[2..], [None, None]);
        assert_eq!(read[0].metric.namespace.as_deref(), Some("a\"b"), "escapes are read");
        assert!(
            series(r#"{"result":[{"metric":{},"value":[1,"NaN"]}]}"#)[0]
                .sample()
                .unwrap()
                .is_nan()
        );
        // Infinite values are no value; a series without a sample is no SLO.
        let slos = split(&[], &read, &[]);
        assert_eq!(
            slos.keys().map(|(ns, n)| format!("{ns}/{n}")).collect::<Vec<_>>(),
            ["/x", "a\"b/x"]
        );
        assert!(
            slos.values()
                .all(|s| s.burn_rates.is_empty() && s.error_ratios.is_empty())
        );
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
        let mut short_series = series(short);
        let mut long_series = series(long);
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
