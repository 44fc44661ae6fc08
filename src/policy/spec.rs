//! What an ErrorBudgetPolicy must satisfy beyond its CRD schema, and the parsed form the
//! decision works on. Checks that need the SLOs (does each record the windows the policy reads)
//! are in [`check_windows`].

use std::collections::{BTreeMap, BTreeSet};

use crate::api::bounds::{self, quote};
use crate::api::{Action, ErrorBudgetPolicySpec, MissingData};
use crate::duration::Duration;
use crate::validate::Problem;

#[derive(Clone, Debug, PartialEq)]
pub struct ValidPolicy {
    pub stages: Vec<ValidStage>,
    pub release_after: Duration,
    pub on_missing_data: MissingData,
    pub max_override: Duration,
    pub dry_run: bool,
    pub suspect_window: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ValidStage {
    pub name: String,
    pub when: Vec<When>,
    pub actions: BTreeSet<Action>,
}

/// One parsed `when` entry.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    /// `min_requests`: 0 for no minimum.
    BurnRate {
        window: Duration,
        above: f64,
        min_requests: u64,
    },
    BudgetBelow(f64),
    AlertFiring(String),
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

/// A stage name as the CRD allows it: a DNS label.
fn is_stage_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub fn validate(spec: &ErrorBudgetPolicySpec) -> Result<ValidPolicy, Vec<Problem>> {
    let mut problems = Vec::new();
    let duration = |field: &str, text: &str, max: Duration, example: &str, problems: &mut Vec<Problem>| {
        bounds::duration(text, bounds::POSITIVE, max, example)
            .map_err(|e| problems.push(problem(field, e)))
            .ok()
    };
    let bounded = |field: String, result: Result<(), String>, problems: &mut Vec<Problem>| {
        if let Err(e) = result {
            problems.push(problem(field, e));
        }
    };
    match (&spec.slos.names, &spec.slos.selector) {
        (Some(_), Some(_)) | (None, None) => problems.push(problem(
            "spec.slos",
            "set exactly one of names (a list of ServiceLevelObjective names) or selector (a label selector)",
        )),
        (Some(names), None) if names.is_empty() => {
            problems.push(problem("spec.slos.names", "name at least one ServiceLevelObjective"))
        }
        _ => {}
    }
    if let Some(names) = &spec.slos.names {
        bounded(
            "spec.slos.names".into(),
            bounds::count(names.len(), bounds::SLO_NAMES),
            &mut problems,
        );
        for (i, name) in names.iter().enumerate().take(bounds::SLO_NAMES + 1) {
            let field = format!("spec.slos.names[{i}]");
            if name.is_empty() {
                problems.push(problem(field, "must name a ServiceLevelObjective"));
            } else {
                bounded(field, bounds::length(name, bounds::NAME_LEN), &mut problems);
            }
        }
    }
    let selectors = [
        ("spec.slos.selector", &spec.slos.selector),
        ("spec.targets.deployments", &spec.targets.deployments),
        ("spec.targets.rollouts", &spec.targets.rollouts),
    ];
    for (field, selector) in selectors {
        if let Some(s) = selector {
            problems.extend(bounds::label_selector(field, s).into_iter().map(|(f, m)| problem(f, m)));
        }
    }
    if spec.stages.is_empty() {
        problems.push(problem(
            "spec.stages",
            "set at least one stage, e.g. {name: exhausted, when: [{budgetRemaining: {below: 0}}], actions: [freezeDeployments]}",
        ));
    }
    bounded(
        "spec.stages".into(),
        bounds::count(spec.stages.len(), bounds::STAGES),
        &mut problems,
    );
    let mut seen = BTreeSet::new();
    let mut stages = Vec::new();
    for (i, stage) in spec.stages.iter().enumerate().take(bounds::STAGES + 1) {
        let at = format!("spec.stages[{i}]");
        if let Err(e) = bounds::length(&stage.name, bounds::LABEL_VALUE_LEN) {
            problems.push(problem(format!("{at}.name"), e));
        } else if !is_stage_name(&stage.name) {
            problems.push(problem(
                format!("{at}.name"),
                format!(
                    "stage names are lowercase letters, digits and '-', e.g. fast-burn (got {})",
                    quote(&stage.name)
                ),
            ));
        } else if !seen.insert(stage.name.as_str()) {
            problems.push(problem(
                format!("{at}.name"),
                format!(
                    "{} is used by an earlier stage; stage names must be unique",
                    quote(&stage.name)
                ),
            ));
        }
        if stage.when.is_empty() {
            problems.push(problem(format!("{at}.when"), "set at least one entry"));
        }
        bounded(
            format!("{at}.when"),
            bounds::count(stage.when.len(), bounds::WHEN),
            &mut problems,
        );
        bounded(
            format!("{at}.actions"),
            bounds::count(stage.actions.len(), bounds::ACTIONS),
            &mut problems,
        );
        let mut when = Vec::new();
        for (j, w) in stage.when.iter().enumerate().take(bounds::WHEN + 1) {
            let field = format!("{at}.when[{j}]");
            let kinds = [
                w.burn_rate.is_some(),
                w.budget_remaining.is_some(),
                w.alert_firing.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                problems.push(problem(
                    field,
                    "set exactly one of burnRate, budgetRemaining or alertFiring",
                ));
                continue;
            }
            if let Some(b) = &w.burn_rate {
                let window = duration(
                    &format!("{field}.burnRate.window"),
                    &b.window,
                    bounds::MAX_BURN_RATE_WINDOW,
                    "1h",
                    &mut problems,
                );
                if !(b.above.is_finite() && b.above >= 0.0) {
                    problems.push(problem(
                        format!("{field}.burnRate.above"),
                        "must be a number of at least 0, e.g. 14.4",
                    ));
                } else if b.min_requests.is_some_and(|m| m > bounds::MAX_MIN_REQUESTS) {
                    problems.push(problem(
                        format!("{field}.burnRate.minRequests"),
                        format!("must be at most {}, e.g. 100", bounds::MAX_MIN_REQUESTS),
                    ));
                } else if let Some(window) = window {
                    when.push(When::BurnRate {
                        window,
                        above: b.above,
                        min_requests: b.min_requests.unwrap_or(0),
                    });
                }
            } else if let Some(b) = &w.budget_remaining {
                if b.below.is_finite() {
                    when.push(When::BudgetBelow(b.below));
                } else {
                    problems.push(problem(
                        format!("{field}.budgetRemaining.below"),
                        "must be a number, e.g. 0",
                    ));
                }
            } else if let Some(a) = &w.alert_firing {
                if a.severity.trim().is_empty() {
                    problems.push(problem(
                        format!("{field}.alertFiring.severity"),
                        "must name a severity label value, e.g. critical",
                    ));
                } else if let Err(e) = bounds::length(&a.severity, bounds::SEVERITY_LEN) {
                    problems.push(problem(format!("{field}.alertFiring.severity"), e));
                } else {
                    when.push(When::AlertFiring(a.severity.clone()));
                }
            }
        }
        stages.push(ValidStage {
            name: stage.name.clone(),
            when,
            actions: stage.actions.iter().copied().collect(),
        });
    }
    let release_after = duration(
        "spec.releaseAfter",
        &spec.release_after,
        bounds::MAX_RELEASE_AFTER,
        "15m",
        &mut problems,
    );
    let max_override = duration(
        "spec.maxOverride",
        &spec.max_override,
        bounds::MAX_OVERRIDE,
        "4h",
        &mut problems,
    );
    let suspect_window = bounds::duration(
        &spec.suspect_window,
        bounds::MIN_SUSPECT_WINDOW,
        bounds::MAX_SUSPECT_WINDOW,
        "30m",
    )
    .map_err(|e| problems.push(problem("spec.suspectWindow", e)))
    .ok();
    match (release_after, max_override, suspect_window, problems.is_empty()) {
        (Some(release_after), Some(max_override), Some(suspect_window), true) => Ok(ValidPolicy {
            stages,
            release_after,
            on_missing_data: spec.on_missing_data,
            max_override,
            dry_run: spec.dry_run,
            suspect_window,
        }),
        _ => Err(problems),
    }
}

/// A `burnRate.minRequests` needs request counts, which an SLO with a raw indicator does not
/// record (`raw`: the names of the selected SLOs that have one).
pub fn check_min_requests(policy: &ValidPolicy, raw: &[String]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, stage) in policy.stages.iter().enumerate() {
        for (j, w) in stage.when.iter().enumerate() {
            let When::BurnRate { min_requests, .. } = w else {
                continue;
            };
            for slo in raw.iter().filter(|_| *min_requests > 0) {
                problems.push(problem(
                    format!("spec.stages[{i}].when[{j}].burnRate.minRequests"),
                    format!(
                        "ServiceLevelObjective {slo} has a raw indicator, which counts no requests; remove minRequests, or select SLOs whose indicator is a ratio or latency"
                    ),
                ));
            }
        }
    }
    problems
}

/// Every `burnRate.window` must be recorded by every selected SLO (`recorded`: SLO name → its
/// recorded windows).
pub fn check_windows(policy: &ValidPolicy, recorded: &BTreeMap<String, BTreeSet<Duration>>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, stage) in policy.stages.iter().enumerate() {
        for (j, w) in stage.when.iter().enumerate() {
            let When::BurnRate { window, .. } = w else { continue };
            for (slo, windows) in recorded {
                if !windows.contains(window) {
                    let known: Vec<String> = windows.iter().map(ToString::to_string).collect();
                    problems.push(problem(
                        format!("spec.stages[{i}].when[{j}].burnRate.window"),
                        format!(
                            "ServiceLevelObjective {slo} does not record a {window} window; use one it records ({}) or add a burn-rate tier with that window to the SLO",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(yaml: &str) -> ErrorBudgetPolicySpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn min_requests_needs_slos_that_count_requests() {
        let p = validate(
            &serde_yaml::from_str(
                "{slos: {names: [a, b]}, stages: [{name: s, when: [{budgetRemaining: {below: 0}}, {burnRate: {window: 1h, above: 1, minRequests: 10}}], actions: [pauseRollouts]}]}",
            )
            .unwrap(),
        )
        .unwrap();
        let problems = check_min_requests(&p, &["b".to_string()]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "spec.stages[0].when[1].burnRate.minRequests");
        assert!(
            problems[0]
                .message
                .contains("ServiceLevelObjective b has a raw indicator")
        );
        assert!(check_min_requests(&p, &[]).is_empty());
    }

    #[test]
    fn defaults_and_parsing() {
        let p = validate(&spec(
            "{slos: {names: [a]}, stages: [{name: s, when: [{burnRate: {window: 1h, above: 14.4}}, {alertFiring: {severity: critical}}], actions: [pauseRollouts, freezeNamespace]}]}",
        ))
        .unwrap();
        assert_eq!(p.release_after, Duration::minutes(15));
        assert_eq!(p.max_override, Duration::hours(4));
        assert_eq!(p.on_missing_data, MissingData::Hold);
        assert_eq!(
            p.stages[0].when,
            [
                When::BurnRate {
                    window: Duration::hours(1),
                    above: 14.4,
                    min_requests: 0,
                },
                When::AlertFiring("critical".into())
            ]
        );
        assert!(p.stages[0].actions.contains(&Action::FreezeNamespace));
    }

    #[test]
    fn problems_name_the_field() {
        let err = validate(&spec(
            "{slos: {names: [a], selector: {}}, releaseAfter: soon, stages: [{name: s, when: [{}]}, {name: s, when: [{burnRate: {window: 1x, above: 1}}]}]}",
        ))
        .unwrap_err();
        let fields: Vec<&str> = err.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.slos",
                "spec.stages[0].when[0]",
                "spec.stages[1].name",
                "spec.stages[1].when[0].burnRate.window",
                "spec.releaseAfter"
            ]
        );
    }

    fn problems(yaml: &str) -> Vec<String> {
        validate(&spec(yaml))
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const STAGE: &str = "{name: s, when: [{budgetRemaining: {below: 0}}]}";

    #[test]
    fn durations_at_their_bound_and_just_past_it() {
        let with = |fields: &str| problems(&format!("{{slos: {{names: [a]}}, {fields} stages: [{STAGE}]}}"));
        assert!(with("releaseAfter: 7d, maxOverride: 30d,").is_empty());
        assert!(with("releaseAfter: 1w, maxOverride: 4w2d,").is_empty());
        assert_eq!(
            with("releaseAfter: 7d1ms, maxOverride: 30d1ms,"),
            [
                "spec.releaseAfter: must be a Prometheus duration of at most 7d, e.g. 15m (got \"7d1ms\")",
                "spec.maxOverride: must be a Prometheus duration of at most 30d, e.g. 4h (got \"30d1ms\")",
            ]
        );
        assert_eq!(
            with("releaseAfter: 10000y,"),
            ["spec.releaseAfter: must be a Prometheus duration of at most 7d, e.g. 15m (got \"10000y\")"]
        );
        let window = |w: &str| {
            problems(&format!(
                "{{slos: {{names: [a]}}, stages: [{{name: s, when: [{{burnRate: {{window: {w}, above: 1}}}}]}}]}}"
            ))
        };
        assert!(window("365d").is_empty());
        assert_eq!(
            window("365d1ms"),
            [
                "spec.stages[0].when[0].burnRate.window: must be a Prometheus duration of at most 365d, e.g. 1h (got \"365d1ms\")"
            ]
        );
    }

    #[test]
    fn lists_and_strings_at_their_bound_and_just_past_it() {
        let stages = |n: usize| {
            let list: Vec<String> = (0..n)
                .map(|i| format!("{{name: s{i}, when: [{{budgetRemaining: {{below: 0}}}}], actions: []}}"))
                .collect();
            problems(&format!("{{slos: {{names: [a]}}, stages: [{}]}}", list.join(", ")))
        };
        assert!(stages(16).is_empty());
        assert_eq!(stages(17), ["spec.stages: must have at most 16 entries (got 17)"]);
        let when = |n: usize| {
            let list = vec!["{budgetRemaining: {below: 0}}"; n].join(", ");
            problems(&format!(
                "{{slos: {{names: [a]}}, stages: [{{name: s, when: [{list}]}}]}}"
            ))
        };
        assert!(when(16).is_empty());
        assert_eq!(when(17), ["spec.stages[0].when: must have at most 16 entries (got 17)"]);
        let names = |n: usize, len: usize| {
            let list = vec!["x".repeat(len); n].join(", ");
            problems(&format!("{{slos: {{names: [{list}]}}, stages: [{STAGE}]}}"))
        };
        assert!(names(256, 253).is_empty());
        assert_eq!(
            names(257, 1),
            ["spec.slos.names: must have at most 256 entries (got 257)"]
        );
        assert_eq!(
            names(1, 254),
            ["spec.slos.names[0]: must be at most 253 characters (got 254)"]
        );
        let severity = |len: usize| {
            problems(&format!(
                "{{slos: {{names: [a]}}, stages: [{{name: s, when: [{{alertFiring: {{severity: {}}}}}]}}]}}",
                "c".repeat(len)
            ))
        };
        assert!(severity(63).is_empty());
        assert_eq!(
            severity(64),
            ["spec.stages[0].when[0].alertFiring.severity: must be at most 63 characters (got 64)"]
        );
        let name = |n: &str| {
            problems(&format!(
                "{{slos: {{names: [a]}}, stages: [{{name: '{n}', when: [{{budgetRemaining: {{below: 0}}}}]}}]}}"
            ))
        };
        assert!(name(&"s".repeat(63)).is_empty());
        assert_eq!(
            name(&"s".repeat(64)),
            ["spec.stages[0].name: must be at most 63 characters (got 64)"]
        );
        assert_eq!(
            name("Fast Burn"),
            [
                "spec.stages[0].name: stage names are lowercase letters, digits and '-', e.g. fast-burn (got \"Fast Burn\")"
            ]
        );
    }

    #[test]
    fn selectors_with_unknown_operators_are_refused() {
        let p = problems(&format!(
            "{{slos: {{selector: {{matchExpressions: [{{key: tier, operator: Bogus, values: [x]}}]}}}}, targets: {{deployments: {{matchExpressions: [{{key: app, operator: In}}]}}}}, stages: [{STAGE}]}}"
        ));
        assert_eq!(
            p,
            [
                "spec.slos.selector.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist (got \"Bogus\")",
                "spec.targets.deployments.matchExpressions[0].values: In and NotIn need values; Exists and DoesNotExist take none",
            ]
        );
    }

    #[test]
    fn windows_the_slo_does_not_record_are_named() {
        let p = validate(&spec(
            "{slos: {names: [a]}, stages: [{name: s, when: [{burnRate: {window: 2m, above: 1}}]}]}",
        ))
        .unwrap();
        let recorded = BTreeMap::from([
            (
                "a".to_string(),
                BTreeSet::from([Duration::minutes(5), Duration::hours(1)]),
            ),
            ("b".to_string(), BTreeSet::from([Duration::minutes(2)])),
        ]);
        let problems = check_windows(&p, &recorded);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "spec.stages[0].when[0].burnRate.window");
        assert!(
            problems[0]
                .message
                .starts_with("ServiceLevelObjective a does not record a 2m window; use one it records (5m, 1h)"),
            "{}",
            problems[0].message
        );
    }
}
