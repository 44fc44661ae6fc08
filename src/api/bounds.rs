//! The bounds on what our kinds accept, in one place. The CRD schema states each one (so the
//! API server refuses the absurd before any controller reads it) and `validate` states the same
//! bound in the same words, so CI and `kubectl apply` agree. Every duration that meets a
//! timestamp is bounded here, far from where jiff's arithmetic would overflow.

use kube::core::{Message, Rule};
use schemars::{Schema, SchemaGenerator, json_schema};

use crate::duration::Duration;

/// `releaseAfter`: a stage left a week after it stopped holding is as good as never left.
pub const MAX_RELEASE_AFTER: Duration = Duration::days(7);
/// The most tiers an SLO may list: the workbook's defaults are 4, and each tier adds an alert
/// and up to two windows recorded every minute.
pub const MAX_TIERS: usize = 8;
/// `suspectWindow`: how long before a burn a release is suspected of causing it. A release a
/// day before a burn is no longer its likely cause.
pub const MIN_SUSPECT_WINDOW: Duration = Duration::minutes(1);
pub const MAX_SUSPECT_WINDOW: Duration = Duration::days(1);
/// Entries in a policy's `status.rollbacks`.
pub const ROLLBACKS: usize = 10;
/// `maxOverride`, and an override's `duration`: a month-long break-glass is a policy change.
pub const MAX_OVERRIDE: Duration = Duration::days(30);
/// An SLO's `window`.
pub const MIN_SLO_WINDOW: Duration = Duration::days(1);
pub const MAX_SLO_WINDOW: Duration = Duration::days(365);
/// A policy's `burnRate.window`: a window some SLO can record.
pub const MAX_BURN_RATE_WINDOW: Duration = MAX_SLO_WINDOW;
/// `indicator.latency.threshold`: a histogram bucket bound.
pub const MAX_LATENCY_THRESHOLD: Duration = Duration::days(1);
/// `alerting.noTraffic.for`. The floor: it watches 5-minute request rates, and shorter would
/// ticket the ordinary lulls of a quiet service.
pub const MIN_NO_TRAFFIC_FOR: Duration = Duration::minutes(10);
pub const MAX_NO_TRAFFIC_FOR: Duration = Duration::days(1);
/// An SLO's `scrapeInterval` (and `--scrape-interval`): from a second to the `window` group's
/// 5-minute tile, the longest interval its tiles can read twice in one range.
pub const MIN_SCRAPE_INTERVAL: Duration = Duration::from_millis(1_000);
pub const MAX_SCRAPE_INTERVAL: Duration = Duration::minutes(5);
/// The shortest duration there is: durations must be positive.
/// The largest `minRequests` (SLO alerting and policy burn-rate entries): a trillion requests.
pub const MAX_MIN_REQUESTS: u64 = 1_000_000_000_000;
pub const POSITIVE: Duration = Duration::from_millis(1);

/// A duration string (`1h30m`).
pub const DURATION_LEN: usize = 32;
/// Object names (an SLO, a policy), as Kubernetes bounds them.
pub const NAME_LEN: usize = 253;
/// A stage name, and a label value in a selector.
pub const LABEL_VALUE_LEN: usize = 63;
/// A label key in a selector: a 253-character prefix, `/`, a 63-character name.
pub const LABEL_KEY_LEN: usize = 317;
/// `alertFiring.severity`, and an SLO's page and ticket severities.
pub const SEVERITY_LEN: usize = 63;
/// An override's `reason` and `requestedBy`; an SLO's `description`.
pub const TEXT_LEN: usize = 1024;
/// An SLO's `service`.
pub const SERVICE_LEN: usize = 253;
/// Alert names and Prometheus label names (`alerting.name`, `alerting.labels` keys ...).
pub const PROMETHEUS_NAME_LEN: usize = 128;
/// A value of `alerting.labels`.
pub const ALERT_LABEL_VALUE_LEN: usize = 256;
/// A value of `alerting.annotations` (a runbook URL, a sentence or two).
pub const ANNOTATION_VALUE_LEN: usize = 1024;

/// Entries in `stages`, in a stage's `when`, and in its `actions`.
pub const STAGES: usize = 16;
pub const WHEN: usize = 16;
pub const ACTIONS: usize = 4;
/// Names in `slos.names`.
pub const SLO_NAMES: usize = 256;
/// `matchLabels` entries and `matchExpressions` terms of a selector, and `values` of a term.
pub const MATCH_LABELS: usize = 32;
pub const MATCH_EXPRESSIONS: usize = 16;
pub const MATCH_VALUES: usize = 64;
/// Entries in an SLO's `alerting.labels` and `alerting.annotations`.
pub const ALERT_LABELS: usize = 32;

/// The operators a label selector may use, as Kubernetes spells them.
pub const SELECTOR_OPERATORS: [&str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];

/// A Prometheus duration: units in descending order, each at most once.
const DURATION_RE: &str = "^([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$";

/// CEL: the duration in `self`, in milliseconds (past int64 it is a runtime error, which
/// rejects the object too).
const MILLIS_CEL: &str = "self.findAll('[0-9]+(ms|s|m|h|d|w|y)').map(t, int(t.find('^[0-9]+')) * (t.endsWith('ms') ? 1 : t.endsWith('s') ? 1000 : t.endsWith('m') ? 60000 : t.endsWith('h') ? 3600000 : t.endsWith('d') ? 86400000 : t.endsWith('w') ? 604800000 : 31536000000)).sum()";

/// What a bounded duration must be, e.g. `must be a Prometheus duration of at most 7d, e.g.
/// 15m`: the message of the CRD rule and of `validate`.
pub fn duration_bound(min: Duration, max: Duration, example: &str) -> String {
    if min == POSITIVE {
        format!("must be a Prometheus duration of at most {max}, e.g. {example}")
    } else {
        format!("must be a Prometheus duration from {min} to {max}, e.g. {example}")
    }
}

/// The CRD rule for a duration field named `field` (as the message names it).
pub fn duration_rule(field: &str, min: Duration, max: Duration, example: &str) -> Rule {
    Rule::new(format!(
        "self.size() > 0 && self.matches('{DURATION_RE}') && {MILLIS_CEL} >= {} && {MILLIS_CEL} <= {}",
        min.as_millis(),
        max.as_millis()
    ))
    .message(Message::Message(format!(
        "{field} {}",
        duration_bound(min, max, example)
    )))
}

/// Parses a bounded duration the way the CRD rule checks it: the message is the rule's, with
/// the value quoted.
pub fn duration(text: &str, min: Duration, max: Duration, example: &str) -> Result<Duration, String> {
    match Duration::parse(text) {
        Ok(d) if (min..=max).contains(&d) => Ok(d),
        _ => Err(format!("{} (got {})", duration_bound(min, max, example), quote(text))),
    }
}

/// The most characters of a user's value a message quotes.
pub const QUOTE_LEN: usize = 100;

/// A user's value as a message quotes it: in double quotes, escaped, at most [`QUOTE_LEN`]
/// characters of it, an ellipsis marking the cut.
pub fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTE_LEN) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
    }
}

/// Shortens a message built by someone else (a parser's) that may echo a user's value: at
/// most 4 × [`QUOTE_LEN`] characters, an ellipsis marking the cut.
pub fn shorten(message: &str) -> String {
    cut(message, 4 * QUOTE_LEN)
}

/// At most `max` characters of `text`, an ellipsis marking the cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// At most `max` bytes of `text` (cut at a character boundary), an ellipsis marking the cut:
/// for the API server's limits that count bytes, such as an Event's note (1,024).
pub fn cut_bytes(text: &str, max: usize) -> String {
    const MARK: &str = "…";
    if text.len() <= max {
        return text.to_string();
    }
    let mut at = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}{MARK}", &text[..at])
}

/// `must be at most N characters` when `value` is longer.
pub fn length(value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max {
        Err(format!("must be at most {max} characters (got {n})"))
    } else {
        Ok(())
    }
}

/// `must have at most N entries` when `n` is more.
pub fn count(n: usize, max: usize) -> Result<(), String> {
    if n > max {
        Err(format!("must have at most {max} entries (got {n})"))
    } else {
        Ok(())
    }
}

/// A map of strings with bounded entries, keys and values.
fn string_map(entries: usize, key_len: usize, value_len: usize) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": entries,
        "additionalProperties": {"type": "string", "maxLength": value_len},
        "x-kubernetes-validations": [{
            "rule": format!("self.all(k, k.size() <= {key_len})"),
            "message": format!("keys must be at most {key_len} characters"),
        }],
    })
}

/// `alerting.labels` of an SLO.
pub fn alert_labels_schema(_: &mut SchemaGenerator) -> Schema {
    string_map(ALERT_LABELS, PROMETHEUS_NAME_LEN, ALERT_LABEL_VALUE_LEN)
}

/// `alerting.annotations` of an SLO.
pub fn annotations_schema(_: &mut SchemaGenerator) -> Schema {
    string_map(ALERT_LABELS, PROMETHEUS_NAME_LEN, ANNOTATION_VALUE_LEN)
}

/// A label selector (`metav1.LabelSelector`) with every list, key and value bounded and only
/// the operators Kubernetes knows.
pub fn label_selector_schema(_: &mut SchemaGenerator) -> Schema {
    let mut labels = string_map(MATCH_LABELS, LABEL_KEY_LEN, LABEL_VALUE_LEN);
    labels.insert(
        "description".into(),
        "Labels an object must have, with these values.".into(),
    );
    json_schema!({
        "type": "object",
        "nullable": true,
        "properties": {
            "matchLabels": labels,
            "matchExpressions": {
                "description": "Requirements on label keys and values (operator In, NotIn, Exists or DoesNotExist), ANDed with matchLabels.",
                "type": "array",
                "maxItems": MATCH_EXPRESSIONS,
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string", "minLength": 1, "maxLength": LABEL_KEY_LEN},
                        "operator": {"type": "string", "enum": SELECTOR_OPERATORS},
                        "values": {
                            "type": "array",
                            "maxItems": MATCH_VALUES,
                            "items": {"type": "string", "maxLength": LABEL_VALUE_LEN},
                        },
                    },
                    "x-kubernetes-validations": [{
                        "rule": "self.operator in ['In', 'NotIn'] ? has(self.values) && self.values.size() > 0 : !has(self.values) || self.values.size() == 0",
                        "message": "In and NotIn need values; Exists and DoesNotExist take none",
                    }],
                },
            },
        },
    })
}

/// The problems of a label selector at `field`, in the words of its schema.
pub fn label_selector(
    field: &str,
    s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if let Some(labels) = &s.match_labels {
        if let Err(e) = count(labels.len(), MATCH_LABELS) {
            problems.push((format!("{field}.matchLabels"), e));
        }
        for (k, v) in labels.iter().take(MATCH_LABELS + 1) {
            if let Err(e) = length(k, LABEL_KEY_LEN) {
                problems.push((format!("{field}.matchLabels"), format!("key {}: {e}", quote(k))));
            }
            if let Err(e) = length(v, LABEL_VALUE_LEN) {
                problems.push((format!("{field}.matchLabels[{}]", quote(k)), e));
            }
        }
    }
    if let Some(exprs) = &s.match_expressions {
        if let Err(e) = count(exprs.len(), MATCH_EXPRESSIONS) {
            problems.push((format!("{field}.matchExpressions"), e));
        }
        for (i, x) in exprs.iter().enumerate().take(MATCH_EXPRESSIONS + 1) {
            let at = format!("{field}.matchExpressions[{i}]");
            if x.key.is_empty() {
                problems.push((format!("{at}.key"), "must name a label key".into()));
            }
            if let Err(e) = length(&x.key, LABEL_KEY_LEN) {
                problems.push((format!("{at}.key"), e));
            }
            let values = x.values.as_deref().unwrap_or_default();
            if !SELECTOR_OPERATORS.contains(&x.operator.as_str()) {
                problems.push((
                    format!("{at}.operator"),
                    format!(
                        "must be one of {} (got {})",
                        SELECTOR_OPERATORS.join(", "),
                        quote(&x.operator)
                    ),
                ));
            } else if matches!(x.operator.as_str(), "In" | "NotIn") == values.is_empty() {
                problems.push((
                    format!("{at}.values"),
                    "In and NotIn need values; Exists and DoesNotExist take none".into(),
                ));
            }
            if let Err(e) = count(values.len(), MATCH_VALUES) {
                problems.push((format!("{at}.values"), e));
            }
            for (j, v) in values.iter().enumerate().take(MATCH_VALUES + 1) {
                if let Err(e) = length(v, LABEL_VALUE_LEN) {
                    problems.push((format!("{at}.values[{j}]"), e));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_at_the_bound_pass_and_just_past_it_fail() {
        let bound = |s: &str| duration(s, POSITIVE, MAX_RELEASE_AFTER, "15m");
        assert_eq!(bound("7d"), Ok(Duration::days(7)));
        assert_eq!(bound("1ms"), Ok(POSITIVE));
        assert_eq!(bound("1w"), Ok(Duration::days(7)));
        for past in ["7d1ms", "1w1ms", "10000y", "0s"] {
            assert_eq!(
                bound(past),
                Err(format!(
                    "must be a Prometheus duration of at most 7d, e.g. 15m (got {past:?})"
                )),
                "{past}"
            );
        }
        let window = |s: &str| duration(s, MIN_SLO_WINDOW, MAX_SLO_WINDOW, "30d");
        assert!(window("1d").is_ok() && window("365d").is_ok() && window("1y").is_ok());
        assert!(window("23h59m59s999ms").is_err() && window("365d1ms").is_err());
        assert_eq!(
            window("1h").unwrap_err(),
            "must be a Prometheus duration from 1d to 365d, e.g. 30d (got \"1h\")"
        );
    }

    #[test]
    fn cut_bytes_keeps_within_the_bytes_and_whole_characters() {
        assert_eq!(cut_bytes("short", 1024), "short");
        let exact = "a".repeat(1024);
        assert_eq!(cut_bytes(&exact, 1024), exact);
        let long = "a".repeat(5000);
        let cut = cut_bytes(&long, 1024);
        assert_eq!(cut.len(), 1024);
        assert!(cut.ends_with('…') && cut.starts_with("aaa"));
        // Every cut of a text of 2- and 3-byte characters stays within the limit and valid.
        let wide = "→é".repeat(600);
        for max in 3..40 {
            let cut = cut_bytes(&wide, max);
            assert!(cut.len() <= max, "{max}: {} bytes", cut.len());
            assert!(cut.ends_with('…'), "{max}");
        }
        assert!((1020..=1024).contains(&cut_bytes(&wide, 1024).len()));
    }

    #[test]
    fn the_crd_rule_says_what_validate_says() {
        let rule = duration_rule("releaseAfter", POSITIVE, MAX_RELEASE_AFTER, "15m");
        assert_eq!(
            rule.message,
            Some(Message::Message(
                "releaseAfter must be a Prometheus duration of at most 7d, e.g. 15m".into()
            ))
        );
        assert!(rule.rule.contains(".sum() >= 1 && "), "{}", rule.rule);
        assert!(rule.rule.ends_with(".sum() <= 604800000"), "{}", rule.rule);
    }

    #[test]
    fn quotes_are_short() {
        assert_eq!(quote("soon"), "\"soon\"");
        let long = "é".repeat(10_000_000);
        let q = quote(&long);
        assert_eq!(q.chars().count(), QUOTE_LEN + 3);
        assert!(q.ends_with("\"…"));
        assert_eq!(quote(&"x".repeat(QUOTE_LEN)), format!("\"{}\"", "x".repeat(QUOTE_LEN)));
        assert!(shorten(&long).chars().count() <= 4 * QUOTE_LEN + 1);
    }

    #[test]
    fn lengths_and_counts_at_the_bound() {
        assert!(length(&"a".repeat(63), 63).is_ok());
        assert_eq!(
            length(&"a".repeat(64), 63),
            Err("must be at most 63 characters (got 64)".into())
        );
        assert!(count(16, 16).is_ok());
        assert_eq!(count(17, 16), Err("must have at most 16 entries (got 17)".into()));
    }

    #[test]
    fn selectors_use_known_operators_and_bounded_lists() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
        let term = |op: &str, values: Option<Vec<String>>| LabelSelectorRequirement {
            key: "app".into(),
            operator: op.into(),
            values,
        };
        let fields = |s: &LabelSelector| -> Vec<String> {
            label_selector("spec.targets.deployments", s)
                .into_iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect()
        };
        let ok = LabelSelector {
            match_expressions: Some(vec![
                term("In", Some(vec!["a".into()])),
                term("Exists", None),
                term("DoesNotExist", Some(vec![])),
            ]),
            match_labels: Some([("app".to_string(), "x".repeat(LABEL_VALUE_LEN))].into()),
        };
        assert!(fields(&ok).is_empty(), "{:?}", fields(&ok));
        let bad = LabelSelector {
            match_expressions: Some(vec![
                term("Bogus", Some(vec!["a".into()])),
                term("In", None),
                term("Exists", Some(vec!["a".into()])),
                term("In", Some(vec!["v".into(); MATCH_VALUES + 1])),
            ]),
            match_labels: Some([("app".to_string(), "x".repeat(LABEL_VALUE_LEN + 1))].into()),
        };
        assert_eq!(
            fields(&bad),
            [
                "spec.targets.deployments.matchLabels[\"app\"]: must be at most 63 characters (got 64)",
                "spec.targets.deployments.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist (got \"Bogus\")",
                "spec.targets.deployments.matchExpressions[1].values: In and NotIn need values; Exists and DoesNotExist take none",
                "spec.targets.deployments.matchExpressions[2].values: In and NotIn need values; Exists and DoesNotExist take none",
                "spec.targets.deployments.matchExpressions[3].values: must have at most 64 entries (got 65)",
            ]
        );
        let labels = |n: usize| -> std::collections::BTreeMap<String, String> {
            (0..n).map(|i| (format!("l{i}"), "v".into())).collect()
        };
        let at_bound = LabelSelector {
            match_expressions: Some(vec![term("Exists", None); MATCH_EXPRESSIONS]),
            match_labels: Some(labels(MATCH_LABELS)),
        };
        assert!(fields(&at_bound).is_empty());
        let many = LabelSelector {
            match_expressions: Some(vec![term("Exists", None); MATCH_EXPRESSIONS + 1]),
            match_labels: Some(labels(MATCH_LABELS + 1)),
        };
        assert_eq!(
            fields(&many),
            [
                "spec.targets.deployments.matchLabels: must have at most 32 entries (got 33)",
                "spec.targets.deployments.matchExpressions: must have at most 16 entries (got 17)"
            ]
        );
    }
}
