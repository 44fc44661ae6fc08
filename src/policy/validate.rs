//! What an ErrorBudgetPolicy must satisfy beyond its CRD schema, and the parsed form the
//! decision works on. Checks that need the SLOs (does each record the windows the policy reads)
//! are in [`check_windows`].

use std::collections::{BTreeMap, BTreeSet};

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
    BurnRate { window: Duration, above: f64 },
    BudgetBelow(f64),
    AlertFiring(String),
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

pub fn validate(spec: &ErrorBudgetPolicySpec) -> Result<ValidPolicy, Vec<Problem>> {
    let mut problems = Vec::new();
    let duration = |field: &str, text: &str, problems: &mut Vec<Problem>| match Duration::parse(text) {
        Ok(d) => Some(d),
        Err(e) => {
            problems.push(problem(field, e));
            None
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
    if spec.stages.is_empty() {
        problems.push(problem(
            "spec.stages",
            "set at least one stage, e.g. {name: exhausted, when: [{budgetRemaining: {below: 0}}], actions: [freezeDeployments]}",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut stages = Vec::new();
    for (i, stage) in spec.stages.iter().enumerate() {
        let at = format!("spec.stages[{i}]");
        if !seen.insert(stage.name.as_str()) {
            problems.push(problem(
                format!("{at}.name"),
                format!(
                    "{:?} is used by an earlier stage; stage names must be unique",
                    stage.name
                ),
            ));
        }
        if stage.when.is_empty() {
            problems.push(problem(format!("{at}.when"), "set at least one entry"));
        }
        let mut when = Vec::new();
        for (j, w) in stage.when.iter().enumerate() {
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
                let window = duration(&format!("{field}.burnRate.window"), &b.window, &mut problems);
                if !(b.above.is_finite() && b.above >= 0.0) {
                    problems.push(problem(
                        format!("{field}.burnRate.above"),
                        "must be a number of at least 0, e.g. 14.4",
                    ));
                } else if let Some(window) = window {
                    when.push(When::BurnRate { window, above: b.above });
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
    let release_after = duration("spec.releaseAfter", &spec.release_after, &mut problems);
    let max_override = duration("spec.maxOverride", &spec.max_override, &mut problems);
    match (release_after, max_override, problems.is_empty()) {
        (Some(release_after), Some(max_override), true) => Ok(ValidPolicy {
            stages,
            release_after,
            on_missing_data: spec.on_missing_data,
            max_override,
            dry_run: spec.dry_run,
        }),
        _ => Err(problems),
    }
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
                    above: 14.4
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
