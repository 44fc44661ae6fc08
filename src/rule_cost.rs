//! What one SLO's rules cost the Prometheus that evaluates them, counted from the generated
//! rules: the selectors of source series (the SLI's own metrics) each evaluation reads and the
//! longest range they read, the same for the series slo-warden records, the rule count and the
//! PrometheusRule's size. [`WORST_CASE`] is the bound the README states for one SLO; a test
//! generates the costliest SLOs validate accepts ([`worst_case_slos`]) and holds them to it.

use std::collections::BTreeSet;

use promql_parser::label::METRIC_NAME;
use promql_parser::parser::{Expr, VectorSelector};

use crate::api::{PrometheusRule, ServiceLevelObjective};
use crate::burn_rate::MAX_TIERS;
use crate::duration::Duration;
use crate::sli::{MAX_PROMQL_CHARS, MAX_SELECTORS, parse_promql};

/// Reads counted per hour: every group interval divides an hour, so the counts are whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Selectors of source series read by one evaluation of the `sli` group.
    pub source_reads_per_sli_evaluation: u64,
    /// Selectors of source series read by one evaluation of the `window` group.
    pub source_reads_per_window_evaluation: u64,
    /// Selectors of source series read per hour, all groups.
    pub source_reads_per_hour: u64,
    /// The longest range over source series.
    pub max_source_range: Duration,
    /// Selectors of recorded series read per hour (a subquery's every step counts).
    pub recorded_reads_per_hour: u64,
    /// The longest range over recorded series.
    pub max_recorded_range: Duration,
    pub rules: usize,
    /// The PrometheusRule as YAML.
    pub bytes: usize,
}

impl Default for Cost {
    fn default() -> Self {
        let zero = Duration::from_millis(0);
        Self {
            source_reads_per_sli_evaluation: 0,
            source_reads_per_window_evaluation: 0,
            source_reads_per_hour: 0,
            max_source_range: zero,
            recorded_reads_per_hour: 0,
            max_recorded_range: zero,
            rules: 0,
            bytes: 0,
        }
    }
}

/// The most one SLO may cost, at the default `--alert-interval` (1m) and `--scrape-interval`
/// (30s), with no `description`, `alerting.labels` or `alerting.annotations` (every alert
/// copies those). The README's "Rule cost" table states these figures.
/// The largest PrometheusRule one SLO may make, with every label, annotation and description
/// at its bound (the README's "Rule cost" states it).
pub const MAX_RULE_BYTES: usize = 832 * 1024;

pub const WORST_CASE: Cost = Cost {
    source_reads_per_sli_evaluation: 176,
    source_reads_per_window_evaluation: 24,
    source_reads_per_hour: 10_752,
    // 23h59m: a raw SLI's longest window under a day.
    max_source_range: Duration::from_millis(86_340_000),
    recorded_reads_per_hour: 5_364,
    max_recorded_range: Duration::days(365),
    rules: 73,
    bytes: 182 * 1024,
};

/// Counts what `rule` costs: every group's reads times its evaluations per hour.
pub fn cost(rule: &PrometheusRule) -> Result<Cost, String> {
    let recorded: BTreeSet<&str> = rule
        .spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.record.as_deref())
        .collect();
    let mut total = Cost {
        rules: rule.spec.groups.iter().map(|g| g.rules.len()).sum(),
        bytes: serde_yaml::to_string(rule).map_err(|e| e.to_string())?.len(),
        ..Cost::default()
    };
    for group in &rule.spec.groups {
        let interval = group
            .interval
            .as_deref()
            .map(Duration::parse)
            .transpose()?
            .ok_or_else(|| format!("group {} has no interval", group.name))?;
        let per_hour = Duration::hours(1).as_millis() / interval.as_millis();
        let mut source = 0;
        for r in &group.rules {
            let reads = reads(&parse_promql(&r.expr)?, interval);
            for read in reads {
                if read.name.as_deref().is_some_and(|n| recorded.contains(n)) {
                    total.recorded_reads_per_hour += read.times * per_hour;
                    total.max_recorded_range = total.max_recorded_range.max(read.range);
                } else {
                    source += read.times;
                    total.max_source_range = total.max_source_range.max(read.range);
                }
            }
        }
        total.source_reads_per_hour += source * per_hour;
        if group.name.ends_with(":sli") {
            total.source_reads_per_sli_evaluation = source;
        } else if group.name.ends_with(":window") {
            total.source_reads_per_window_evaluation = source;
        }
    }
    Ok(total)
}

/// One selector in an expression: its metric, how many times one evaluation reads it, and over
/// what range (zero for an instant read).
struct Read {
    name: Option<String>,
    times: u64,
    range: Duration,
}

fn reads(expr: &Expr, interval: Duration) -> Vec<Read> {
    let name = |vs: &VectorSelector| {
        vs.name.clone().or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == METRIC_NAME)
                .map(|m| m.value.clone())
        })
    };
    let millis = |d: &std::time::Duration| Duration::from_millis(d.as_millis() as u64);
    let mut out = Vec::new();
    // (expression, evaluations per evaluation of the rule, range of an enclosing subquery)
    let mut stack = vec![(expr, 1, Duration::from_millis(0))];
    while let Some((e, times, outer)) = stack.pop() {
        match e {
            Expr::VectorSelector(vs) => out.push(Read {
                name: name(vs),
                times,
                range: outer,
            }),
            Expr::MatrixSelector(ms) => out.push(Read {
                name: name(&ms.vs),
                times,
                range: outer.max(millis(&ms.range)),
            }),
            Expr::Subquery(sq) => {
                let range = millis(&sq.range);
                let step = sq.step.as_ref().map(millis).unwrap_or(interval);
                let steps = range.as_millis().div_ceil(step.as_millis().max(1));
                stack.push((&sq.expr, times * steps, outer.max(range)));
            }
            Expr::Aggregate(a) => {
                stack.push((&a.expr, times, outer));
                if let Some(p) = &a.param {
                    stack.push((p, times, outer));
                }
            }
            Expr::Unary(u) => stack.push((&u.expr, times, outer)),
            Expr::Binary(b) => {
                stack.push((&b.lhs, times, outer));
                stack.push((&b.rhs, times, outer));
            }
            Expr::Paren(p) => stack.push((&p.expr, times, outer)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (&**a, times, outer))),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    out
}

/// The costliest SLOs validate accepts, one per way of counting events:
/// - `raw`: a raw SLI runs its own expression for every window under a day, so the most
///   selectors ([`MAX_SELECTORS`]) in the longest expression ([`MAX_PROMQL_CHARS`]), and
///   [`MAX_TIERS`] tiers whose 16 windows are all distinct, under a day (as long as possible)
///   and none of the standard ones (each adds a window read every minute);
/// - `events`: a ratio of `good` over `total`, both expressions of the most selectors, since
///   the error tile reads both, with the same tiers.
///
/// Both have the longest window (365d, the longest range over recorded series) and the longest
/// names Kubernetes allows (253 for the SLO, 63 for the namespace).
pub fn worst_case_slos() -> Result<Vec<ServiceLevelObjective>, serde_yaml::Error> {
    let namespace = "n".repeat(63);
    // The most selectors, each padded with a label matcher to fill the field to its bound.
    let fill = |build: &dyn Fn(&str) -> String| {
        let spare = MAX_PROMQL_CHARS - build("").chars().count();
        build(&"j".repeat(spare / MAX_SELECTORS))
    };
    let rates = |metric: &str, pad: &str, range: std::ops::Range<usize>| {
        range
            .map(|i| format!("sum(rate({metric}_{i}{{job=\"{pad}\"}}[$window]))"))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let half = MAX_SELECTORS / 2;
    let raw = fill(&|pad| {
        format!(
            "({}) / ({})",
            rates("errors_total", pad, 0..half),
            rates("requests_total", pad, half..MAX_SELECTORS)
        )
    });
    let good = fill(&|pad| rates("good_total", pad, 0..MAX_SELECTORS));
    let total = fill(&|pad| rates("requests_total", pad, 0..MAX_SELECTORS));
    let raw = format!("raw: {{errorRatio: '{raw}'}}");
    let events = format!("ratio: {{good: '{good}', total: '{total}'}}");
    // Requests counted by a selector add the measured sampling interval and its alert.
    let selector = |metric: &str| {
        let build = |pad: &str| format!("{metric}{{job=\"{pad}\"}}");
        build(&"j".repeat(MAX_PROMQL_CHARS - build("").chars().count()))
    };
    let selectors = format!(
        "ratio: {{errors: '{}', total: '{}'}}",
        selector("errors_total"),
        selector("requests_total")
    );
    // 23h59m/22h59m, 23h58m/22h58m, ...: distinct, under a day, none standard.
    let tiers: String = (0..MAX_TIERS)
        .map(|i| {
            format!(
                "{{long: 23h{}m, short: 22h{}m, factor: 1, severity: ticket}},",
                59 - i,
                59 - i
            )
        })
        .collect();
    [("raw", raw), ("events", events), ("selectors", selectors)]
        .into_iter()
        .map(|(kind, indicator)| {
            let name = format!("{kind}-{}", "s".repeat(253 - kind.len() - 1));
            let yaml = format!(
                "apiVersion: slo.warden.dev/v1alpha1\nkind: ServiceLevelObjective\n\
                 metadata: {{name: {name}, namespace: {namespace}}}\n\
                 spec: {{objective: 99.9, window: 365d, indicator: {{{indicator}}}, alerting: {{burnRates: [{tiers}]}}}}\n"
            );
            serde_yaml::from_str(&yaml)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Settings, prometheus_rule};
    use crate::validate::validate;

    #[test]
    fn the_worst_slos_validate_accepts_cost_at_most_what_the_readme_states() {
        let settings = Settings::default();
        let costs: Vec<Cost> = worst_case_slos()
            .unwrap()
            .iter()
            .map(|slo| {
                let valid = validate(slo).unwrap_or_else(|p| panic!("validate refuses the worst case: {p:?}"));
                cost(&prometheus_rule(&valid, &settings)).unwrap()
            })
            .collect();
        let max = |f: fn(&Cost) -> u64| costs.iter().map(f).max().unwrap_or(0);
        let w = &WORST_CASE;
        let measured = [
            (
                "source reads per sli evaluation",
                max(|c| c.source_reads_per_sli_evaluation),
                w.source_reads_per_sli_evaluation,
            ),
            (
                "source reads per window evaluation",
                max(|c| c.source_reads_per_window_evaluation),
                w.source_reads_per_window_evaluation,
            ),
            (
                "source reads per hour",
                max(|c| c.source_reads_per_hour),
                w.source_reads_per_hour,
            ),
            (
                "longest source range",
                max(|c| c.max_source_range.as_millis()),
                w.max_source_range.as_millis(),
            ),
            (
                "recorded reads per hour",
                max(|c| c.recorded_reads_per_hour),
                w.recorded_reads_per_hour,
            ),
            (
                "longest recorded range",
                max(|c| c.max_recorded_range.as_millis()),
                w.max_recorded_range.as_millis(),
            ),
            ("rules", max(|c| c.rules as u64), w.rules as u64),
            ("bytes", max(|c| c.bytes as u64), w.bytes as u64),
        ];
        for (what, got, bound) in measured {
            eprintln!("{what}: {got} (stated {bound})");
            assert!(got <= bound, "{what}: {got} is over the stated {bound}");
        }
        // The counts are exact: a rule change that makes them cheaper updates the README too.
        assert_eq!(
            measured[..7].iter().map(|m| m.1).collect::<Vec<_>>(),
            measured[..7].iter().map(|m| m.2).collect::<Vec<_>>()
        );

        let readme = include_str!("../README.md");
        for row in readme_rows() {
            assert!(readme.contains(&row), "README.md lacks the row\n{row}");
        }
    }

    /// The costliest SLOs with every label, annotation and description at its bound (each
    /// alert copies them) still make a PrometheusRule the API server stores: etcd refuses
    /// requests over 1.5 MiB, and [`MAX_RULE_BYTES`] leaves room for managedFields.
    #[test]
    fn the_largest_slos_make_a_rule_the_api_server_stores() {
        use crate::api::bounds::{
            ALERT_LABEL_VALUE_LEN, ALERT_LABELS, ANNOTATION_VALUE_LEN, PROMETHEUS_NAME_LEN, TEXT_LEN,
        };
        let settings = Settings::default();
        for mut slo in worst_case_slos().unwrap() {
            slo.spec.description = Some("d".repeat(TEXT_LEN));
            let key = |i: usize| format!("k{i:02}{}", "k".repeat(PROMETHEUS_NAME_LEN - 3));
            slo.spec.alerting.labels = (0..ALERT_LABELS)
                .map(|i| (key(i), "v".repeat(ALERT_LABEL_VALUE_LEN)))
                .collect();
            slo.spec.alerting.annotations = (0..ALERT_LABELS)
                .map(|i| (key(i), "a".repeat(ANNOTATION_VALUE_LEN)))
                .collect();
            let valid = validate(&slo).unwrap_or_else(|p| panic!("validate refuses the largest case: {p:?}"));
            let bytes = cost(&prometheus_rule(&valid, &settings)).unwrap().bytes;
            assert!(bytes <= MAX_RULE_BYTES, "{bytes} bytes, over {MAX_RULE_BYTES}");
            eprintln!("largest rule: {bytes} bytes");
        }
    }

    /// The README's "Rule cost" rows, from [`WORST_CASE`].
    fn readme_rows() -> Vec<String> {
        let w = &WORST_CASE;
        let n = |v: u64| {
            let s = v.to_string();
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        vec![
            format!(
                "| source-series selectors read per `sli` evaluation (every minute) | {} |",
                n(w.source_reads_per_sli_evaluation)
            ),
            format!(
                "| source-series selectors read per `window` evaluation (every 5 minutes) | {} |",
                n(w.source_reads_per_window_evaluation)
            ),
            format!(
                "| source-series selectors read per hour, all groups | {} |",
                n(w.source_reads_per_hour)
            ),
            format!("| longest range over source series | {} |", w.max_source_range),
            format!(
                "| recorded-series selectors read per hour (a subquery's every step counted) | {} |",
                n(w.recorded_reads_per_hour)
            ),
            format!("| longest range over recorded series | {} |", w.max_recorded_range),
            format!("| rules | {} |", w.rules),
            format!("| PrometheusRule size (YAML) | {} KiB |", w.bytes / 1024),
        ]
    }

    #[test]
    fn reads_count_every_selector_and_subquery_step() {
        let expr = parse_promql("sum(rate(a[5m])) / b + min_over_time(timestamp(c)[1d:1h])").unwrap();
        let got: Vec<(Option<String>, u64, String)> = reads(&expr, Duration::minutes(1))
            .into_iter()
            .map(|r| (r.name, r.times, r.range.to_string()))
            .collect();
        let mut got = got;
        got.sort();
        let s = |n: &str| Some(n.to_string());
        assert_eq!(
            got,
            [
                (s("a"), 1, "5m".to_string()),
                (s("b"), 1, "0s".to_string()),
                (s("c"), 24, "1d".to_string()),
            ]
        );
    }
}
