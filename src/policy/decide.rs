//! The decision: which stage is in force, what it demands, and why.
//!
//! - A stage holds when any of its `when` entries holds for any selected SLO; the last (most
//!   severe) stage that holds is the one wanted now.
//! - Moving to a more severe stage is immediate. Moving to a milder one (or to none) happens only
//!   after the stage in force has not held for `releaseAfter` (`quietSince` in the status), so a
//!   signal flapping around a threshold releases at most once per `releaseAfter`.
//! - An entry whose input is missing (no samples, NaN, an unrecorded window) is unknown, never
//!   true or false: `hold` keeps the stage in force (and restarts the quiet period), `release`
//!   treats it as false, `enforce` puts the most severe stage in force.
//! - An SLO whose data is disputed (a second writer of its records, see `budget::queries`)
//!   holds the stage in force whatever `onMissingData` says: neither a forged burn nor a forged
//!   recovery moves it.
//! - An active override or `dryRun` keeps the stage (status shows it) but demands nothing.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::spec::{ValidPolicy, When};
use crate::api::{Action, MissingData};
use crate::budget::{SloSamples, round4};

/// One selected SLO and what Prometheus said about it (`None`: nothing, or unreadable).
#[derive(Clone, Copy, Debug)]
pub struct SloView<'a> {
    pub name: &'a str,
    pub samples: Option<&'a SloSamples>,
}

/// What the decision remembers between evaluations, read back from `status`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Previous {
    /// Name of the stage in force ("" or `None`: none).
    pub stage: Option<String>,
    pub since: Option<Timestamp>,
    pub quiet_since: Option<Timestamp>,
    /// The reason recorded with the stage; kept while the same SLO and entry hold, so a value
    /// drifting inside a stage is not a status write every poll.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Index into the policy's stages.
    pub stage: Option<usize>,
    pub stage_name: String,
    pub since: Option<Timestamp>,
    pub quiet_since: Option<Timestamp>,
    pub reason: String,
    /// `(from, to)` stage names when the stage changed.
    pub transition: Option<(String, String)>,
    /// Inputs that could not be read, e.g. `checkout: no budget data`.
    pub missing: Vec<String>,
    /// Selected SLOs whose data is disputed, and why, e.g. `checkout: <series> is recorded twice`.
    pub disputed: Vec<String>,
    /// Entries that would hold but for their `minRequests`, e.g. `checkout: burn rate over 1h
    /// 20 > 14.4 on 12 requests, below minRequests 100`.
    pub too_few_requests: Vec<String>,
    /// The actions of the stage in force.
    pub demanded: BTreeSet<Action>,
    /// What must be held now: `demanded`, or nothing under dry run or an active override.
    pub enforce: BTreeSet<Action>,
    /// The stage in force holds on what the data says now (its `when`, or a more severe
    /// stage's, is true, and no data is disputed): not only on missing data, nor while it waits
    /// out `releaseAfter`. A one-off action (`rollbackRelease`) is taken only then.
    pub holds_on_data: bool,
}

enum Truth {
    /// What holds without its current value (`burn rate over 1h`), and with it.
    True(String, String),
    False,
    Unknown(String),
    /// Would hold, but the window saw fewer requests than the entry's `minRequests`.
    TooFewRequests(String),
}

fn evaluate(when: &When, samples: Option<&SloSamples>) -> Truth {
    let Some(s) = samples else {
        return Truth::Unknown("no data".into());
    };
    match when {
        When::BurnRate { window, .. } if !s.covers(*window) => Truth::Unknown(format!(
            "no {window} burn rate: {}",
            s.history.as_ref().map(|h| h.describe()).unwrap_or_default()
        )),
        When::BurnRate {
            window,
            above,
            min_requests,
        } => match s.burn_rates.get(window) {
            None => Truth::Unknown(format!("no {window} burn rate")),
            Some(v) if v > above => {
                let what = format!("burn rate over {window}");
                let full = format!("{what} {} > {above}", round4(*v));
                match (*min_requests, s.requests.get(window)) {
                    (0, _) => Truth::True(what, full),
                    (min, None) => Truth::Unknown(format!(
                        "no {window} request count for minRequests {min} (an SLO with a raw indicator counts none)"
                    )),
                    (min, Some(n)) if *n < min as f64 => {
                        Truth::TooFewRequests(format!("{full} on {} requests, below minRequests {min}", n.round()))
                    }
                    (_, Some(_)) => Truth::True(what, full),
                }
            }
            Some(_) => Truth::False,
        },
        When::BudgetBelow(_) if s.history.is_some() => Truth::Unknown(format!(
            "no budget: {}",
            s.history.as_ref().map(|h| h.describe()).unwrap_or_default()
        )),
        When::BudgetBelow(below) => match s.remaining {
            None => Truth::Unknown("no budget data".into()),
            Some(r) if r < *below => Truth::True(
                "budget remaining".into(),
                format!("budget remaining {} < {below}", round4(r)),
            ),
            Some(_) => Truth::False,
        },
        When::AlertFiring(severity) if s.firing_severities.contains(severity) => {
            let what = format!("burn alert with severity {severity} firing");
            Truth::True(what.clone(), what)
        }
        // An alert that cannot fire is not "not firing".
        When::AlertFiring(_) if s.blind.is_some() => {
            Truth::Unknown("burn alerts blind (request series sampled too seldom)".into())
        }
        // Nor is one whose rules Prometheus has not evaluated lately.
        When::AlertFiring(_) if s.alerts_unevaluated => Truth::Unknown(
            "burn alerts unknown: no recent evaluation of the SLO's alert rules (Prometheus restarting, or the rules not loaded)"
                .into(),
        ),
        // Nor is one Prometheus has not confirmed: it may be restoring a firing alert after a
        // restart (pending until its `for` and the grace period pass).
        When::AlertFiring(severity) if s.pending_severities.contains(severity) => Truth::Unknown(format!(
            "burn alert with severity {severity} pending (not confirmed yet, or Prometheus restarted)"
        )),
        When::AlertFiring(_) => Truth::False,
    }
}

/// The stage in force before, if it still exists (a stage renamed or removed by a spec change
/// does not: decide afresh).
fn current_of(policy: &ValidPolicy, previous: &Previous) -> Option<usize> {
    let name = previous.stage.as_deref().filter(|s| !s.is_empty())?;
    policy.stages.iter().position(|s| s.name == name)
}

fn name_of(policy: &ValidPolicy, stage: Option<usize>) -> String {
    stage.map(|i| policy.stages[i].name.clone()).unwrap_or_default()
}

pub fn decide(
    policy: &ValidPolicy,
    slos: &[SloView],
    now: Timestamp,
    previous: &Previous,
    override_active: bool,
) -> Decision {
    // Why each stage holds (the first SLO and entry that do: what, and with its value), and
    // what could not be read.
    let mut holds: Vec<Option<(String, String)>> = vec![None; policy.stages.len()];
    let mut missing = BTreeSet::new();
    let mut too_few = BTreeSet::new();
    for (i, stage) in policy.stages.iter().enumerate() {
        for slo in slos {
            for when in &stage.when {
                match evaluate(when, slo.samples) {
                    Truth::True(what, full) => {
                        holds[i]
                            .get_or_insert_with(|| (format!("{}: {what}", slo.name), format!("{}: {full}", slo.name)));
                    }
                    Truth::Unknown(what) => {
                        missing.insert(format!("{}: {what}", slo.name));
                    }
                    Truth::TooFewRequests(what) => {
                        too_few.insert(format!("{}: {what}", slo.name));
                    }
                    Truth::False => {}
                }
            }
        }
    }
    let missing: Vec<String> = missing.into_iter().collect();
    let disputed: Vec<String> = slos
        .iter()
        .flat_map(|slo| {
            let why = slo.samples.map_or(&[][..], |s| s.disputed.as_slice());
            why.iter().map(move |w| format!("{}: {w}", slo.name))
        })
        .collect();
    let holding = holds.iter().rposition(Option::is_some);
    let mut wanted = holding;
    let mut wanted_reason = holding
        .and_then(|i| holds[i].clone())
        .map(|(what, full)| {
            // Same stage, same SLO and entry: keep the value it was entered with.
            if holding == current_of(policy, previous)
                && previous.quiet_since.is_none()
                && previous.reason.starts_with(&what)
            {
                previous.reason.clone()
            } else {
                full
            }
        })
        .unwrap_or_default();
    let mut hold_on_missing = false;
    if !missing.is_empty() {
        match policy.on_missing_data {
            MissingData::Enforce if !policy.stages.is_empty() => {
                let last = policy.stages.len() - 1;
                if wanted != Some(last) {
                    wanted = Some(last);
                    wanted_reason = format!("no data ({}); onMissingData is enforce", missing.join(", "));
                }
            }
            MissingData::Hold => hold_on_missing = true,
            _ => {}
        }
    }

    let previous_name = previous.stage.clone().filter(|s| !s.is_empty());
    let current = current_of(policy, previous);

    let (stage, quiet_since, reason) = match current {
        _ if !disputed.is_empty() => (
            current,
            None,
            match current {
                Some(c) => format!(
                    "{} held: disputed data ({})",
                    policy.stages[c].name,
                    disputed.join("; ")
                ),
                None => format!("no stage entered: disputed data ({})", disputed.join("; ")),
            },
        ),
        Some(c) if wanted < Some(c) && hold_on_missing => (
            Some(c),
            None,
            format!(
                "{} held: no data ({}); onMissingData is hold",
                policy.stages[c].name,
                missing.join(", ")
            ),
        ),
        Some(c) if wanted < Some(c) => {
            let quiet = previous.quiet_since.unwrap_or(now);
            // Saturating: a release too far out to represent never comes, and never panics.
            let release_at = policy.release_after.after(quiet);
            if now >= release_at {
                (wanted, None, wanted_reason)
            } else {
                (
                    Some(c),
                    Some(quiet),
                    format!(
                        "{} has not held since {}; it is left at {} (releaseAfter {}) unless it holds again",
                        policy.stages[c].name,
                        crate::api::rfc3339(quiet),
                        crate::api::rfc3339(release_at),
                        policy.release_after
                    ),
                )
            }
        }
        _ => (wanted, None, wanted_reason),
    };

    let changed = stage != current || (current.is_none() && previous_name.is_some());
    let transition = changed.then(|| (previous_name.clone().unwrap_or_default(), name_of(policy, stage)));
    let since = if changed { Some(now) } else { previous.since };
    let demanded: BTreeSet<Action> = stage.map(|i| policy.stages[i].actions.clone()).unwrap_or_default();
    let enforce = if policy.dry_run || override_active {
        BTreeSet::new()
    } else {
        demanded.clone()
    };
    let holds_on_data = stage.is_some() && holding.is_some_and(|h| Some(h) >= stage) && disputed.is_empty();
    Decision {
        holds_on_data,
        stage,
        stage_name: name_of(policy, stage),
        since,
        quiet_since,
        reason,
        transition,
        missing,
        disputed,
        too_few_requests: too_few.into_iter().collect(),
        demanded,
        enforce,
    }
}

#[cfg(test)]
mod tests {

    use crate::budget::Windows;
    use proptest::prelude::*;

    use super::*;
    use crate::duration::Duration;

    fn policy(extra: &str) -> ValidPolicy {
        let yaml = format!(
            "{{slos: {{names: [a, b]}}, releaseAfter: 10m, {extra} stages: [
               {{name: fast-burn, when: [{{burnRate: {{window: 1h, above: 14.4}}}}], actions: [pauseRollouts]}},
               {{name: exhausted, when: [{{budgetRemaining: {{below: 0}}}}, {{alertFiring: {{severity: critical}}}}],
                 actions: [freezeDeployments, pauseRollouts, freezeNamespace]}}]}}"
        );
        super::super::validate(&serde_yaml::from_str(&yaml).unwrap()).unwrap()
    }

    fn samples(remaining: f64, burn_1h: f64, firing: &[&str]) -> SloSamples {
        SloSamples {
            remaining: Some(remaining),
            burn_rates: Windows::from([(Duration::hours(1), burn_1h), (Duration::minutes(5), burn_1h)]),
            error_ratios: Windows::default(),
            firing_severities: firing.iter().map(|s| s.to_string()).collect(),
            ..SloSamples::default()
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn step(p: &ValidPolicy, a: Option<&SloSamples>, now: Timestamp, prev: &Previous) -> (Decision, Previous) {
        let views = [SloView { name: "a", samples: a }];
        let d = decide(p, &views, now, prev, false);
        let next = Previous {
            stage: Some(d.stage_name.clone()),
            since: d.since,
            quiet_since: d.quiet_since,
            reason: d.reason.clone(),
        };
        (d, next)
    }

    /// A fresh decision over SLOs `a` and `b`.
    fn two(p: &ValidPolicy, a: &SloSamples, b: &SloSamples) -> Decision {
        let views = [
            SloView {
                name: "a",
                samples: Some(a),
            },
            SloView {
                name: "b",
                samples: Some(b),
            },
        ];
        decide(p, &views, t(0), &Previous::default(), false)
    }

    #[test]
    fn a_stage_holds_on_data_only_while_a_when_is_true() {
        let burning = samples(0.5, 20.0, &[]);
        let (d, entered) = step(&policy(""), Some(&burning), t(0), &Previous::default());
        assert!(d.stage.is_some() && d.holds_on_data);
        // Entered on missing data alone: held, not on data.
        let (d, _) = step(&policy("onMissingData: enforce,"), None, t(0), &Previous::default());
        assert!(d.stage.is_some());
        assert!(!d.holds_on_data);
        // Waiting out releaseAfter: held, not on data.
        let quiet = samples(0.5, 1.0, &[]);
        let (d, _) = step(&policy(""), Some(&quiet), t(60), &entered);
        assert!(d.stage.is_some() && d.quiet_since.is_some());
        assert!(!d.holds_on_data);
    }

    #[test]
    fn the_last_stage_that_holds_wins_and_any_slo_can_make_it_hold() {
        let p = policy("");
        let healthy = samples(0.9, 1.0, &[]);
        let burning = samples(0.5, 20.0, &[]);
        let spent = samples(-0.12, 20.0, &[]);
        let d = two(&p, &healthy, &burning);
        assert_eq!(d.stage_name, "fast-burn");
        assert_eq!(d.reason, "b: burn rate over 1h 20 > 14.4");
        assert_eq!(d.transition, Some(("".into(), "fast-burn".into())));
        assert_eq!(d.enforce, BTreeSet::from([Action::PauseRollouts]));

        // The worst SLO wins: exhausted is later in the list than fast-burn.
        let d = two(&p, &spent, &burning);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.reason, "a: budget remaining -0.12 < 0");
        assert_eq!(d.enforce.len(), 3);

        // Any entry of the list: a firing critical alert alone is enough.
        let alerting = samples(0.5, 1.0, &["critical"]);
        let (d, _) = step(&p, Some(&alerting), t(0), &Previous::default());
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.reason, "a: burn alert with severity critical firing");
        let (d, _) = step(&p, Some(&samples(0.5, 1.0, &["warning"])), t(0), &Previous::default());
        assert_eq!(d.stage, None);
        assert!(d.transition.is_none());
    }

    #[test]
    fn escalation_is_immediate_and_release_waits_release_after() {
        let p = policy("");
        let (d, prev) = step(&p, Some(&samples(0.5, 20.0, &[])), t(0), &Previous::default());
        assert_eq!(d.stage_name, "fast-burn");
        let (d, prev) = step(&p, Some(&samples(-0.1, 20.0, &[])), t(30), &prev);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.since, Some(t(30)));
        assert_eq!(d.transition, Some(("fast-burn".into(), "exhausted".into())));
        // Recovered: held for 10 minutes, then straight to none.
        let good = samples(0.2, 0.5, &[]);
        let (d, prev) = step(&p, Some(&good), t(60), &prev);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.quiet_since, Some(t(60)));
        assert_eq!(d.since, Some(t(30)));
        assert!(d.reason.contains("has not held since"), "{}", d.reason);
        let (d, prev) = step(&p, Some(&good), t(60 + 599), &prev);
        assert_eq!(d.stage_name, "exhausted");
        let (d, prev) = step(&p, Some(&good), t(660), &prev);
        assert_eq!(d.stage, None);
        assert_eq!(d.transition, Some(("exhausted".into(), "".into())));
        assert_eq!(d.since, Some(t(660)));
        assert!(d.enforce.is_empty());
        let (d, _) = step(&p, Some(&good), t(690), &prev);
        assert!(d.transition.is_none());
        assert_eq!(d.since, Some(t(660)));
    }

    #[test]
    fn the_reason_keeps_the_value_the_stage_was_entered_with() {
        let p = policy("");
        let (d, prev) = step(&p, Some(&samples(0.5, 20.0, &[])), t(0), &Previous::default());
        assert_eq!(d.reason, "a: burn rate over 1h 20 > 14.4");
        let (d, prev) = step(&p, Some(&samples(0.5, 31.0, &[])), t(30), &prev);
        assert_eq!(
            d.reason, "a: burn rate over 1h 20 > 14.4",
            "a drifting value is no status write"
        );
        let (d, prev) = step(&p, Some(&samples(-0.5, 31.0, &[])), t(60), &prev);
        assert_eq!(d.reason, "a: budget remaining -0.5 < 0");
        let (d, prev) = step(&p, Some(&samples(0.5, 1.0, &[])), t(90), &prev);
        assert!(d.reason.contains("has not held since"), "{}", d.reason);
        let (d, _) = step(&p, Some(&samples(-0.7, 31.0, &[])), t(120), &prev);
        assert_eq!(
            d.reason, "a: budget remaining -0.7 < 0",
            "holding again after a quiet spell says why anew"
        );
    }

    #[test]
    fn holding_again_restarts_the_quiet_period() {
        let p = policy("");
        let (_, prev) = step(&p, Some(&samples(0.5, 20.0, &[])), t(0), &Previous::default());
        let (d, prev) = step(&p, Some(&samples(0.5, 1.0, &[])), t(100), &prev);
        assert_eq!(d.quiet_since, Some(t(100)));
        let (d, prev) = step(&p, Some(&samples(0.5, 20.0, &[])), t(500), &prev);
        assert_eq!(d.quiet_since, None);
        let (d, _) = step(&p, Some(&samples(0.5, 1.0, &[])), t(800), &prev);
        assert_eq!(d.stage_name, "fast-burn", "quiet only since 800");
    }

    #[test]
    fn stepping_down_goes_to_the_stage_that_still_holds() {
        let p = policy("");
        let (_, prev) = step(&p, Some(&samples(-0.1, 20.0, &[])), t(0), &Previous::default());
        let (_, prev) = step(&p, Some(&samples(0.1, 20.0, &[])), t(30), &prev);
        let (d, _) = step(&p, Some(&samples(0.1, 20.0, &[])), t(630), &prev);
        assert_eq!(d.stage_name, "fast-burn");
        assert_eq!(d.quiet_since, None);
        assert_eq!(d.enforce, BTreeSet::from([Action::PauseRollouts]));
    }

    #[test]
    fn missing_data_modes() {
        let burning = samples(-0.1, 20.0, &[]);
        // hold: the stage stays, however long the data is missing, and the quiet period only
        // starts once data is back.
        let p = policy("");
        let (_, prev) = step(&p, Some(&burning), t(0), &Previous::default());
        let (d, prev) = step(&p, None, t(5_000), &prev);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.missing, ["a: no data"]);
        assert!(d.reason.contains("onMissingData is hold"), "{}", d.reason);
        assert_eq!(d.quiet_since, None);
        let (d, _) = step(&p, Some(&samples(0.5, 1.0, &[])), t(5_030), &prev);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.quiet_since, Some(t(5_030)));
        // ... and with no stage in force, missing data starts nothing.
        let (d, _) = step(&p, None, t(0), &Previous::default());
        assert_eq!(d.stage, None);

        // release: missing counts as not holding (releaseAfter still applies).
        let p = policy("onMissingData: release,");
        let (_, prev) = step(&p, Some(&burning), t(0), &Previous::default());
        let (d, prev) = step(&p, None, t(30), &prev);
        assert_eq!(d.quiet_since, Some(t(30)));
        let (d, _) = step(&p, None, t(630), &prev);
        assert_eq!(d.stage, None);

        // enforce: the most severe stage.
        let p = policy("onMissingData: enforce,");
        let (d, _) = step(&p, None, t(0), &Previous::default());
        assert_eq!(d.stage_name, "exhausted");
        assert!(d.reason.starts_with("no data (a: no data)"), "{}", d.reason);
        // A missing window is missing data too.
        let partial = SloSamples {
            remaining: Some(0.5),
            ..SloSamples::default()
        };
        let (d, _) = step(&p, Some(&partial), t(0), &Previous::default());
        assert_eq!(d.missing, ["a: no 1h burn rate"]);
        assert_eq!(d.stage_name, "exhausted");
    }

    #[test]
    fn a_burn_alert_that_cannot_fire_is_unknown_not_quiet() {
        // Paged into `exhausted` by a firing alert; then the request series are sampled too
        // seldom for the tiles, and no alert can fire: that is missing data, not a recovery.
        let p = policy("");
        let (_, prev) = step(&p, Some(&samples(0.5, 1.0, &["critical"])), t(0), &Previous::default());
        let blind = SloSamples {
            burn_rates: Windows::default(),
            blind: Some("its request series are sampled about every 120s".into()),
            ..samples(0.5, 1.0, &[])
        };
        let (d, prev) = step(&p, Some(&blind), t(30), &prev);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.quiet_since, None);
        assert!(
            d.missing
                .contains(&"a: burn alerts blind (request series sampled too seldom)".to_string()),
            "{:?}",
            d.missing
        );
        let (d, _) = step(&p, Some(&blind), t(5_000), &prev);
        assert_eq!(d.stage_name, "exhausted", "held while blind, however long");
        // Seeing again and quiet: the quiet period starts.
        let (d, _) = step(&p, Some(&samples(0.5, 1.0, &[])), t(5_030), &prev);
        assert_eq!(d.quiet_since, Some(t(5_030)));
    }

    #[test]
    fn a_pending_alert_after_a_restart_holds_the_page_stage() {
        // Paged into `exhausted`; Prometheus restarts and restores the alert as pending: not
        // "not firing", so the stage holds and no quiet period starts.
        let p = policy("");
        let (_, prev) = step(&p, Some(&samples(0.5, 1.0, &["critical"])), t(0), &Previous::default());
        let restored = SloSamples {
            pending_severities: ["critical".to_string()].into(),
            ..samples(0.5, 1.0, &[])
        };
        let (d, prev) = step(&p, Some(&restored), t(30), &prev);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.quiet_since, None);
        assert_eq!(
            d.missing,
            ["a: burn alert with severity critical pending (not confirmed yet, or Prometheus restarted)"]
        );
        // Firing again: still the same stage, entered at 0.
        let (d, _) = step(&p, Some(&samples(0.5, 1.0, &["critical"])), t(60), &prev);
        assert_eq!((d.stage_name.as_str(), d.since), ("exhausted", Some(t(0))));
        // Right after the restart, before the first evaluation: nothing of the SLO's sli group
        // is read, and an absent alert is not a quiet one.
        let unevaluated = SloSamples {
            burn_rates: Windows::default(),
            alerts_unevaluated: true,
            ..samples(0.5, 1.0, &[])
        };
        let (d, _) = step(&p, Some(&unevaluated), t(45), &prev);
        assert_eq!((d.stage_name.as_str(), d.quiet_since), ("exhausted", None));
        assert!(
            d.missing.iter().any(|m| m.contains("no recent evaluation")),
            "{:?}",
            d.missing
        );
        // A pending alert of another severity says nothing of this one.
        let other = SloSamples {
            pending_severities: ["warning".to_string()].into(),
            ..samples(0.5, 1.0, &[])
        };
        let (d, _) = step(&p, Some(&other), t(90), &prev);
        assert!(d.missing.is_empty(), "{:?}", d.missing);
        assert_eq!(d.quiet_since, Some(t(90)));
    }

    #[test]
    fn too_few_requests_do_not_hold_and_say_so() {
        let yaml = "{slos: {names: [a]}, stages: [{name: fast-burn, when: [{burnRate: {window: 1h, above: 14.4, minRequests: 100}}], actions: [pauseRollouts]}]}";
        let p = super::super::validate(&serde_yaml::from_str(yaml).unwrap()).unwrap();
        let with = |requests: Option<f64>| SloSamples {
            requests: requests.map(|n| (Duration::hours(1), n)).into_iter().collect(),
            ..samples(0.5, 20.0, &[])
        };
        // Two errors in twelve requests: a 20x burn that freezes nothing.
        let (d, _) = step(&p, Some(&with(Some(12.0))), t(0), &Previous::default());
        assert_eq!(d.stage, None);
        assert!(d.missing.is_empty());
        assert_eq!(
            d.too_few_requests,
            ["a: burn rate over 1h 20 > 14.4 on 12 requests, below minRequests 100"]
        );
        // Enough requests: it holds.
        let (d, _) = step(&p, Some(&with(Some(100.0))), t(0), &Previous::default());
        assert_eq!(d.stage_name, "fast-burn");
        assert!(d.too_few_requests.is_empty());
        // No count read (a raw indicator): unknown, never "not holding" in silence.
        let (d, _) = step(&p, Some(&with(None)), t(0), &Previous::default());
        assert_eq!(d.stage, None);
        assert_eq!(
            d.missing,
            ["a: no 1h request count for minRequests 100 (an SLO with a raw indicator counts none)"]
        );
        // No burn: the count is not even needed.
        let quiet = SloSamples {
            burn_rates: Windows::from([(Duration::hours(1), 1.0)]),
            ..with(None)
        };
        let (d, _) = step(&p, Some(&quiet), t(0), &Previous::default());
        assert!(d.missing.is_empty() && d.too_few_requests.is_empty());
    }

    #[test]
    fn a_window_the_data_does_not_cover_is_missing_not_healthy() {
        let yaml = "{slos: {names: [a]}, onMissingData: hold, releaseAfter: 10m, stages: [
            {name: slow-burn, when: [{burnRate: {window: 3d, above: 1}}], actions: [pauseRollouts]},
            {name: exhausted, when: [{budgetRemaining: {below: 0}}], actions: [freezeNamespace]}]}";
        let p = super::super::validate(&serde_yaml::from_str(yaml).unwrap()).unwrap();
        let day = 86_400.0;
        let held = |days: f64| {
            SloSamples {
                covered: Some(days * day),
                burn_rates: Windows::from([(Duration::days(3), 0.5)]),
                ..samples(0.2, 0.5, &[])
            }
            .with_history(Duration::days(30), false)
        };
        // Exhausted over 30 full days.
        let (d, prev) = step(
            &p,
            Some(&SloSamples {
                remaining: Some(-0.1),
                ..held(30.0)
            }),
            t(0),
            &Previous::default(),
        );
        assert_eq!(d.stage_name, "exhausted");
        // Retention drops to 9 days and the old burn falls out: the budget "recovers", but
        // that is missing data, and the stage holds.
        let nine = held(9.0);
        assert_eq!(nine.state(), crate::api::BudgetState::NoData);
        let (d, _) = step(&p, Some(&nine), t(3_600), &prev);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.quiet_since, None);
        assert_eq!(d.missing.len(), 1, "{:?}", d.missing);
        assert!(
            d.missing[0].starts_with("a: no budget: Prometheus holds 9d of the 30d window"),
            "{:?}",
            d.missing
        );
        // The 3d window is covered by those 9 days; 2 days do not cover it.
        assert!(nine.covers(Duration::days(3)));
        let two_days = held(2.0);
        assert!(!two_days.covers(Duration::days(3)) && two_days.covers(Duration::hours(6)));
        let (d, _) = step(&p, Some(&two_days), t(0), &Previous::default());
        assert_eq!(d.stage, None);
        assert!(
            d.missing
                .iter()
                .any(|m| m.starts_with("a: no 3d burn rate: Prometheus holds 2d of")),
            "{:?}",
            d.missing
        );
        // 99% is enough (a Prometheus restart loses a tile or two); partial windows take any.
        assert_eq!(held(29.75).history, None);
        assert_eq!(
            SloSamples {
                covered: Some(day),
                ..samples(0.2, 0.5, &[])
            }
            .with_history(Duration::days(30), true)
            .history,
            None
        );
        // No record of coverage yet: missing too.
        let unknown = samples(0.2, 0.5, &[]).with_history(Duration::days(30), false);
        assert!(
            unknown
                .history
                .as_ref()
                .unwrap()
                .describe()
                .starts_with("Prometheus holds no record yet of the 30d window")
        );
    }

    #[test]
    fn disputed_data_neither_enters_nor_releases_whatever_on_missing_data_says() {
        let disputed = SloSamples {
            disputed: vec!["slo:error_budget_remaining:ratio is recorded twice".into()],
            ..SloSamples::default()
        };
        for mode in ["", "onMissingData: release,", "onMissingData: enforce,"] {
            let p = policy(mode);
            // No stage: a forged spent budget next to ours enters none.
            let (d, prev) = step(&p, Some(&disputed), t(0), &Previous::default());
            assert_eq!((d.stage, &d.transition), (None, &None), "{mode}");
            assert!(
                d.reason.starts_with("no stage entered: disputed data (a: "),
                "{}",
                d.reason
            );
            assert_eq!(d.disputed.len(), 1);
            // A stage in force: held past releaseAfter, and the quiet period starts over.
            let (_, prev) = step(&p, Some(&samples(-0.1, 20.0, &[])), t(10), &prev);
            let (d, prev) = step(&p, Some(&samples(0.5, 1.0, &[])), t(40), &prev);
            assert_eq!(
                (d.stage_name.as_str(), d.quiet_since),
                ("exhausted", Some(t(40))),
                "{mode}"
            );
            let (d, prev) = step(&p, Some(&disputed), t(5_000), &prev);
            assert_eq!(d.stage_name, "exhausted", "{mode}");
            assert_eq!(d.quiet_since, None);
            assert!(d.reason.starts_with("exhausted held: disputed data"), "{}", d.reason);
            assert_eq!(d.enforce.len(), 3);
            let (d, _) = step(&p, Some(&samples(0.5, 1.0, &[])), t(5_030), &prev);
            assert_eq!((d.stage_name.as_str(), d.quiet_since), ("exhausted", Some(t(5_030))));
        }
    }

    #[test]
    fn dry_run_and_overrides_demand_but_enforce_nothing() {
        let spent = samples(-0.1, 20.0, &[]);
        let p = policy("dryRun: true,");
        let (d, _) = step(&p, Some(&spent), t(0), &Previous::default());
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.demanded.len(), 3);
        assert!(d.enforce.is_empty());

        let p = policy("");
        let views = [SloView {
            name: "a",
            samples: Some(&spent),
        }];
        let d = decide(&p, &views, t(0), &Previous::default(), true);
        assert_eq!(d.stage_name, "exhausted");
        assert_eq!(d.demanded.len(), 3);
        assert!(d.enforce.is_empty(), "an active override releases everything");
        let d = decide(&p, &views, t(0), &Previous::default(), false);
        assert_eq!(d.enforce.len(), 3, "once it expires, the stage is enforced again");
    }

    #[test]
    fn a_stage_removed_from_the_spec_is_left() {
        let p = policy("");
        let prev = Previous {
            stage: Some("gone".into()),
            since: Some(t(0)),
            quiet_since: None,
            reason: String::new(),
        };
        let (d, _) = step(&p, Some(&samples(0.5, 1.0, &[])), t(10), &prev);
        assert_eq!(d.stage, None);
        assert_eq!(d.transition, Some(("gone".into(), "".into())));
    }

    #[test]
    fn a_quiet_period_at_the_end_of_time_holds_and_does_not_panic() {
        let mut p = policy("");
        p.release_after = crate::api::bounds::MAX_RELEASE_AFTER;
        let near_max = Timestamp::MAX - jiff::SignedDuration::from_hours(1);
        let (_, prev) = step(&p, Some(&samples(0.5, 20.0, &[])), near_max, &Previous::default());
        let (d, prev) = step(&p, Some(&samples(0.5, 1.0, &[])), near_max, &prev);
        assert_eq!(d.stage_name, "fast-burn");
        assert!(
            d.reason.contains("it is left at 9999-12-30T22:00:00Z"),
            "saturated at jiff's latest time: {}",
            d.reason
        );
        let almost = Timestamp::MAX - jiff::SignedDuration::from_secs(1);
        let (d, _) = step(&p, Some(&samples(0.5, 1.0, &[])), almost, &prev);
        assert_eq!(d.stage_name, "fast-burn", "a release past the end of time waits for it");

        // A releaseAfter no spec can have (the bound is 7d): still no panic.
        p.release_after = Duration::from_millis(u64::MAX);
        let (_, prev) = step(&p, Some(&samples(0.5, 20.0, &[])), t(0), &Previous::default());
        let (d, _) = step(&p, Some(&samples(0.5, 1.0, &[])), t(60), &prev);
        assert_eq!(d.stage_name, "fast-burn");
    }

    /// Extreme samples: infinities, NaN, the largest and smallest numbers.
    fn extreme() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            Just(f64::MIN),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(-0.0),
            any::<f64>(),
        ]
    }

    /// One poll: `None` is missing data, else (remaining, 1h burn rate).
    fn sample_strategy() -> impl Strategy<Value = Option<(f64, f64)>> {
        prop_oneof![
            1 => Just(None),
            6 => (-0.2f64..1.0, 10.0f64..20.0).prop_map(Some),
        ]
    }

    fn run(p: &ValidPolicy, seq: &[Option<(f64, f64)>], poll: i64) -> Vec<(Timestamp, Decision)> {
        let mut prev = Previous::default();
        let mut out = Vec::new();
        for (i, s) in seq.iter().enumerate() {
            let now = t(i as i64 * poll);
            let samples = s.map(|(r, b)| samples(r, b, &[]));
            let (d, next) = step(p, samples.as_ref(), now, &prev);
            prev = next;
            out.push((now, d));
        }
        out
    }

    fn severity(d: &Decision) -> i64 {
        d.stage.map_or(-1, |i| i as i64)
    }

    proptest! {
        /// A signal flapping around the thresholds releases (moves to a milder stage) at most
        /// once per releaseAfter.
        #[test]
        fn at_most_one_release_per_release_after(seq in prop::collection::vec(sample_strategy(), 1..200), poll in 10i64..120) {
            for mode in ["", "onMissingData: release,", "onMissingData: enforce,"] {
                let p = policy(mode);
                let mut last_release: Option<Timestamp> = None;
                let mut prev = -1;
                for (now, d) in run(&p, &seq, poll) {
                    if severity(&d) < prev {
                        if let Some(last) = last_release {
                            prop_assert!(now.duration_since(last).as_secs() >= 600, "releases at {last} and {now}");
                        }
                        last_release = Some(now);
                    }
                    prev = severity(&d);
                }
            }
        }

        /// Under `hold`, a poll with missing data never lowers the stage.
        #[test]
        fn no_data_never_releases_under_hold(seq in prop::collection::vec(sample_strategy(), 1..200), poll in 10i64..120) {
            let p = policy("");
            let mut prev = -1;
            for ((_, d), s) in run(&p, &seq, poll).iter().zip(&seq) {
                if s.is_none() {
                    prop_assert!(severity(d) >= prev);
                }
                prev = severity(d);
            }
        }

        /// Any time jiff can represent, any releaseAfter (even past the bound), any previous
        /// status and extreme samples: a decision, never a panic.
        #[test]
        fn extreme_values_decide_without_panicking(
            now in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
            quiet in prop::option::of(Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()),
            release_after in any::<u64>(),
            remaining in extreme(),
            burn in extreme(),
            stage in prop::option::of(prop::sample::select(vec!["fast-burn", "exhausted", "gone", ""])),
            mode in prop::sample::select(vec!["", "onMissingData: release,", "onMissingData: enforce,"]),
        ) {
            let mut p = policy(mode);
            p.release_after = Duration::from_millis(release_after);
            let now = Timestamp::from_second(now).unwrap();
            let previous = Previous {
                stage: stage.map(String::from),
                since: Some(Timestamp::MIN),
                quiet_since: quiet.map(|q| Timestamp::from_second(q).unwrap()),
                reason: "x".repeat(3),
            };
            let s = samples(remaining, burn, &["critical"]);
            let d = decide(&p, &[SloView { name: "a", samples: Some(&s) }], now, &previous, false);
            if let Some(q) = d.quiet_since {
                prop_assert!(q <= now || Some(q) == previous.quiet_since);
            }
        }

        /// Same inputs, same decision.
        #[test]
        fn deterministic(seq in prop::collection::vec(sample_strategy(), 1..50), poll in 10i64..120) {
            let p = policy("");
            prop_assert_eq!(run(&p, &seq, poll), run(&p, &seq, poll));
        }
    }
}
