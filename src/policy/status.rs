//! What a policy's status and Events say, from the decision, what the actuators did, the
//! overrides in force and the last poll: the conditions, `status.enforced` and the Event
//! texts. Pure, so every sentence a person reads is tested here.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::events::EventType;

use super::overrides::Active;
use super::{Decision, ValidPolicy};
use crate::api::Action as PolicyAction;
use crate::api::ErrorBudgetPolicyStatus;
use crate::api::condition::{FALSE, READY, Setter, TRUE};
use crate::api::policy::{Enforced, Rollback, Transition};
use crate::budget::Reading;
use crate::enforce::{Change, Kind, Outcome};
use crate::validate::Problem;

pub const ENFORCING: &str = "Enforcing";
pub const DATA_AVAILABLE: &str = "DataAvailable";
pub const OVERRIDDEN: &str = "Overridden";
/// `DataAvailable=False` reason while a selected SLO's series have a second writer.
pub const DISPUTED_DATA: &str = "DisputedData";
/// `Ready=False` reason while a selected SLO is gone but the policy goes on without it.
pub const SLO_DELETED: &str = "SLODeleted";

/// What one reconcile found: everything the status is rendered from.
pub struct Evaluation<'a> {
    pub valid: &'a ValidPolicy,
    pub decision: &'a Decision,
    /// What the actuators did.
    pub outcomes: &'a [Outcome],
    /// The overrides in force.
    pub active: &'a [Active],
    pub reading: &'a Reading,
    /// The first error of the actuators.
    pub error: Option<&'a crate::error::Error>,
    /// Selected SLOs that were deleted (the policy goes on without them).
    pub deleted: &'a [Problem],
    /// How many SLOs were evaluated.
    pub evaluated: usize,
    /// What `rollbackRelease` did about each suspect release this time.
    pub rollbacks: &'a [Rollback],
    /// Said after the decision's reason (a burn with no release behind it).
    pub note: Option<&'a str>,
    pub generation: Option<i64>,
    pub now: Timestamp,
}

/// The status after a reconcile: the decision, what is held, the history (newest first, a
/// transition added) and the four conditions, each keeping its `lastTransitionTime` while its
/// status holds.
pub fn next_status(previous: &ErrorBudgetPolicyStatus, e: &Evaluation) -> ErrorBudgetPolicyStatus {
    let d = e.decision;
    let mut next = ErrorBudgetPolicyStatus {
        observed_generation: e.generation,
        stage: d.stage_name.clone(),
        since: d.since.map(Time),
        reason: match e.note {
            Some(note) => format!("{}; {note}", d.reason),
            None => d.reason.clone(),
        },
        quiet_since: d.quiet_since.map(Time),
        enforced: enforced_list(e.outcomes, &previous.enforced),
        history: previous.history.clone(),
        rollbacks: merged_rollbacks(&previous.rollbacks, e.rollbacks),
        conditions: previous.conditions.clone(),
    };
    if let Some((from, to)) = &d.transition {
        next.history.insert(
            0,
            Transition {
                time: Time(e.now),
                from: from.clone(),
                to: to.clone(),
                reason: d.reason.clone(),
            },
        );
        next.history.truncate(super::HISTORY);
    }
    let conditions = Setter {
        previous: &previous.conditions,
        generation: e.generation,
        now: e.now,
    };
    let ready = ready_condition(e.error, e.deleted, e.evaluated);
    conditions.set(&mut next.conditions, READY, ready);
    let enforcing = enforcing_condition(e.valid, d, e.outcomes, e.active);
    conditions.set(&mut next.conditions, ENFORCING, enforcing);
    conditions.set(&mut next.conditions, DATA_AVAILABLE, data_condition(e.reading, d));
    conditions.set(&mut next.conditions, OVERRIDDEN, overridden_condition(e.active));
    next
}

/// `status.rollbacks` with this reconcile's records: a record that says what its release's
/// record already said is kept as it was (its time too); one that says something new goes
/// first. Newest first, bounded.
pub fn merged_rollbacks(previous: &[Rollback], now: &[Rollback]) -> Vec<Rollback> {
    let same_release = |a: &Rollback, b: &Rollback| (&a.kind, &a.name, a.revision) == (&b.kind, &b.name, b.revision);
    let mut out: Vec<Rollback> = Vec::new();
    for r in now {
        match previous.iter().find(|p| same_release(p, r)) {
            Some(p) if (&p.result, &p.to, &p.message) == (&r.result, &r.to, &r.message) => {}
            _ => out.push(r.clone()),
        }
    }
    let kept: Vec<Rollback> = previous
        .iter()
        .filter(|p| !out.iter().any(|r| same_release(p, r)))
        .cloned()
        .collect();
    out.extend(kept);
    out.truncate(crate::api::bounds::ROLLBACKS);
    out
}

/// The records of `now` that say something `previous` did not: each is told in an Event.
pub fn new_rollbacks<'a>(previous: &[Rollback], now: &'a [Rollback]) -> Vec<&'a Rollback> {
    now.iter()
        .filter(|r| {
            !previous.iter().any(|p| {
                (&p.kind, &p.name, p.revision, &p.result, &p.message)
                    == (&r.kind, &r.name, r.revision, &r.result, &r.message)
            })
        })
        .collect()
}

/// The Event about the policy's data, when it turned worse: a second writer of a selected SLO's
/// series appeared (`DisputedData`), or data went missing (`MissingData`, also at the first
/// evaluation). Told once, when it starts.
pub fn data_event(previous: &[Condition], next: &[Condition]) -> Option<(&'static str, String)> {
    let data = |conditions: &[Condition]| conditions.iter().find(|c| c.type_ == DATA_AVAILABLE).cloned();
    let now = data(next)?;
    let before = data(previous);
    if now.reason == DISPUTED_DATA {
        let was_disputed = before.is_some_and(|c| c.reason == DISPUTED_DATA);
        return (!was_disputed).then_some((DISPUTED_DATA, now.message));
    }
    let was_available = before.as_ref().is_none_or(|c| c.status == TRUE);
    (now.status == FALSE && was_available).then_some(("MissingData", now.message))
}

/// `status.enforced` from what the objects say now; entries keep their `since`.
pub fn enforced_list(outcomes: &[Outcome], previous: &[Enforced]) -> Vec<Enforced> {
    let mut list: Vec<Enforced> = outcomes
        .iter()
        .filter(|o| o.holding)
        .map(|o| {
            let action = o.action.as_str().to_string();
            let kept = previous
                .iter()
                .find(|e| e.kind == o.kind.as_str() && e.name == o.name && e.action == action)
                .and_then(|e| e.since.clone());
            let since = kept.or_else(|| o.since.as_deref().and_then(|s| s.parse::<Timestamp>().ok()).map(Time));
            Enforced {
                kind: o.kind.to_string(),
                name: o.name.clone(),
                action,
                since,
            }
        })
        .collect();
    list.sort_by(|a, b| (&a.kind, &a.name, &a.action).cmp(&(&b.kind, &b.name, &b.action)));
    list
}

/// The objects of `outcomes` that `filter` keeps, as `Deployment web (freezeDeployments), …`,
/// or `nothing`.
pub fn describe(outcomes: &[Outcome], filter: impl Fn(&Outcome) -> bool) -> String {
    let items: Vec<String> = outcomes
        .iter()
        .filter(|o| filter(o))
        .map(|o| format!("{} {} ({})", o.kind, o.name, o.action.as_str()))
        .collect();
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// What a stage would hold if it were enforced (dry run): the selected objects of its actions.
fn would_act_on(decision: &Decision, outcomes: &[Outcome]) -> String {
    let held = describe(outcomes, |o| o.selected && decision.demanded.contains(&o.action));
    if decision.demanded.contains(&PolicyAction::AbortRollouts) {
        format!("{held}; abort Rollouts mid-update")
    } else {
        held
    }
}

/// The `Enforcing` condition: whether the stage in force holds anything, and what.
pub fn enforcing_condition(
    valid: &ValidPolicy,
    decision: &Decision,
    outcomes: &[Outcome],
    active: &[Active],
) -> (&'static str, &'static str, String) {
    let holding = outcomes.iter().any(|o| o.holding);
    let not_claimed = describe(outcomes, |o| o.change == Change::NotClaimed);
    if decision.stage.is_none() {
        return (FALSE, "NoStage", "no stage is in force".into());
    }
    if valid.dry_run {
        return (
            FALSE,
            "DryRun",
            format!(
                "dry run: stage {} would hold {}",
                decision.stage_name,
                would_act_on(decision, outcomes)
            ),
        );
    }
    if let Some(o) = active.first() {
        return (
            FALSE,
            "Overridden",
            format!(
                "ErrorBudgetOverride {} ({}) lifts stage {} until {}",
                o.name,
                o.why,
                decision.stage_name,
                crate::api::rfc3339(o.until)
            ),
        );
    }
    let mut message = format!(
        "stage {} holds {}",
        decision.stage_name,
        describe(outcomes, |o| o.holding)
    );
    if not_claimed != "nothing" {
        message.push_str(&format!("; already paused by someone else, left alone: {not_claimed}"));
    }
    if holding {
        (TRUE, "Enforcing", message)
    } else {
        (FALSE, "NothingToHold", message)
    }
}

/// The `DataAvailable` condition: whether every selected SLO had data in the last poll.
pub fn data_condition(reading: &Reading, decision: &Decision) -> (&'static str, &'static str, String) {
    match reading {
        Reading::Disabled => (
            FALSE,
            "PrometheusNotConfigured",
            "the operator runs without --prometheus-url: budgets cannot be read".into(),
        ),
        Reading::Failed(e) => (FALSE, "PrometheusUnavailable", e.clone()),
        // Before missing data: a disputed SLO has no values, and that is not the news.
        Reading::Ok(_) if !decision.disputed.is_empty() => (
            FALSE,
            DISPUTED_DATA,
            format!(
                "a second writer records the series of a selected SLO, so none of its values are used and the \
                 stage in force is held until it is removed: {}",
                decision.disputed.join("; ")
            ),
        ),
        Reading::Ok(_) if !decision.missing.is_empty() => (
            FALSE,
            "NoData",
            format!("missing from Prometheus: {}", decision.missing.join(", ")),
        ),
        Reading::Ok(_) if !decision.too_few_requests.is_empty() => (
            TRUE,
            "TooFewRequests",
            format!(
                "every selected SLO has data; entries not holding for want of requests (minRequests): {}",
                decision.too_few_requests.join(", ")
            ),
        ),
        Reading::Ok(_) => (TRUE, "DataAvailable", "every selected SLO has data".into()),
    }
}

/// A stage name for people: `none` for no stage.
pub fn none_if_empty(stage: &str) -> &str {
    if stage.is_empty() { "none" } else { stage }
}

/// The Event of a change of stage: a freeze, a dry run, or a release.
pub fn transition_event(
    valid: &ValidPolicy,
    from: &str,
    to: &str,
    decision: &Decision,
    outcomes: &[Outcome],
) -> (EventType, &'static str, String) {
    let from = if from.is_empty() { "none" } else { from };
    if to.is_empty() {
        return (
            EventType::Normal,
            "Release",
            format!(
                "stage {from} left: its conditions have not held for {}; released everything",
                valid.release_after
            ),
        );
    }
    if valid.dry_run {
        return (
            EventType::Normal,
            "DryRun",
            format!(
                "stage {from} → {to} ({}); dry run, would hold {}",
                decision.reason,
                would_act_on(decision, outcomes)
            ),
        );
    }
    (
        EventType::Warning,
        "Freeze",
        format!(
            "stage {from} → {to} ({}); holding {}",
            decision.reason,
            describe(outcomes, |o| o.holding)
        ),
    )
}

/// The `Ready` condition after a reconcile: the first error of the actuators, else the SLOs
/// that were deleted (the policy goes on without them), else how many SLOs it evaluated.
pub fn ready_condition(
    first_error: Option<&crate::error::Error>,
    deleted: &[Problem],
    evaluated: usize,
) -> (&'static str, &'static str, String) {
    match (first_error, deleted.is_empty()) {
        (Some(e), _) => (FALSE, e.reason(), e.to_string()),
        (None, false) => {
            let list: Vec<String> = deleted.iter().map(ToString::to_string).collect();
            (
                FALSE,
                SLO_DELETED,
                format!(
                    "{}. It was deleted and no longer drives the policy; {evaluated} SLO(s) evaluated",
                    list.join("; ")
                ),
            )
        }
        (None, true) => (TRUE, "Evaluated", format!("{evaluated} SLO(s) evaluated")),
    }
}

/// The `Overridden` condition: the first override in force, if any.
pub fn overridden_condition(active: &[Active]) -> (&'static str, &'static str, String) {
    match active.first() {
        Some(o) => (
            TRUE,
            "OverrideActive",
            format!(
                "ErrorBudgetOverride {} ({}) lifts the policy until {}",
                o.name,
                o.why,
                crate::api::rfc3339(o.until)
            ),
        ),
        None => (FALSE, "NoOverride", "no active ErrorBudgetOverride".to_string()),
    }
}

/// The Event on an object the policy `me` acted upon (`reason`: the policy's stage and why),
/// or `None` when nothing happened to it.
pub fn outcome_event(o: &Outcome, me: &str, reason: &str) -> Option<(EventType, &'static str, String)> {
    Some(match o.change {
        Change::Claimed => (EventType::Warning, "Freeze", format!("{} by {reason}", verb(o))),
        // Its own reason: the recorder folds Events of one reason and action into a series
        // whatever the note says, and this one must be read.
        Change::Reheld => (
            EventType::Warning,
            "Refreeze",
            format!(
                "{} again: it was undone while {me} holds it ({reason}); use an ErrorBudgetOverride to lift a freeze",
                verb(o)
            ),
        ),
        Change::Aborted => (EventType::Warning, "Abort", format!("update aborted by {reason}")),
        Change::Released => (
            EventType::Normal,
            "Release",
            format!("released by ErrorBudgetPolicy {me}"),
        ),
        Change::NotClaimed | Change::Unchanged => return None,
    })
}

fn verb(o: &Outcome) -> &'static str {
    match o.kind {
        Kind::Namespace => "frozen",
        Kind::Deployment | Kind::Rollout => "paused",
    }
}

/// Where the Event about an object acted upon goes.
pub fn object_reference(o: &Outcome, namespace: &str) -> ObjectReference {
    reference(o.kind, &o.name, namespace)
}

/// The reference of the object `kind`/`name` of the policy's `namespace`, for its Events.
pub fn reference(kind: Kind, name: &str, namespace: &str) -> ObjectReference {
    let namespace = match kind {
        // Namespace Events go into the namespace itself, where its users look.
        Kind::Namespace => name.to_string(),
        Kind::Deployment | Kind::Rollout => namespace.to_string(),
    };
    ObjectReference {
        api_version: Some(kind.api_version().into()),
        kind: Some(kind.as_str().into()),
        name: Some(name.to_string()),
        namespace: Some(namespace),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::api::MissingData;
    use crate::duration::Duration;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn outcome(kind: Kind, name: &str, action: PolicyAction, change: Change, holding: bool) -> Outcome {
        Outcome {
            kind,
            name: name.into(),
            action,
            change,
            holding,
            selected: true,
            since: None,
        }
    }

    fn policy(dry_run: bool) -> ValidPolicy {
        ValidPolicy {
            stages: vec![],
            release_after: Duration::hours(1),
            on_missing_data: MissingData::default(),
            max_override: Duration::hours(4),
            dry_run,
            suspect_window: Duration::minutes(30),
        }
    }

    fn decision(stage: Option<&str>, demanded: &[PolicyAction]) -> Decision {
        let demanded: BTreeSet<PolicyAction> = demanded.iter().copied().collect();
        Decision {
            stage: stage.map(|_| 0),
            stage_name: stage.unwrap_or_default().into(),
            since: None,
            quiet_since: None,
            reason: "burn rate over 1h 20 > 14.4".into(),
            transition: None,
            missing: vec![],
            disputed: vec![],
            too_few_requests: vec![],
            enforce: demanded.clone(),
            demanded,
            holds_on_data: stage.is_some(),
        }
    }

    fn override_until(s: i64) -> Active {
        Active {
            name: "hotfix".into(),
            why: "by alice: INC-1".into(),
            until: at(s),
        }
    }

    #[test]
    fn enforced_entries_keep_their_since() {
        let t0 = Time(Timestamp::from_second(1_800_000_000).unwrap());
        let outcome = Outcome {
            kind: Kind::Deployment,
            name: "checkout".into(),
            action: PolicyAction::FreezeDeployments,
            change: Change::Unchanged,
            holding: true,
            selected: true,
            since: Some("2027-02-02T00:00:00Z".into()),
        };
        let previous = vec![Enforced {
            kind: "Deployment".into(),
            name: "checkout".into(),
            action: "freezeDeployments".into(),
            since: Some(t0.clone()),
        }];
        assert_eq!(
            enforced_list(std::slice::from_ref(&outcome), &previous)[0].since,
            Some(t0)
        );
        let fresh = enforced_list(&[outcome], &[]);
        assert_eq!(fresh[0].since, Some(Time("2027-02-02T00:00:00Z".parse().unwrap())));
    }

    #[test]
    fn enforcing_says_what_the_stage_holds_and_what_it_left_alone() {
        let frozen = [
            outcome(
                Kind::Deployment,
                "web",
                PolicyAction::FreezeDeployments,
                Change::Claimed,
                true,
            ),
            outcome(
                Kind::Deployment,
                "api",
                PolicyAction::FreezeDeployments,
                Change::NotClaimed,
                false,
            ),
        ];
        let d = decision(Some("page"), &[PolicyAction::FreezeDeployments]);
        let (status, reason, message) = enforcing_condition(&policy(false), &d, &frozen, &[]);
        assert_eq!((status, reason), (TRUE, "Enforcing"));
        assert_eq!(
            message,
            "stage page holds Deployment web (freezeDeployments); already paused by someone else, left alone: \
             Deployment api (freezeDeployments)"
        );
        assert_eq!(
            enforcing_condition(&policy(false), &decision(None, &[]), &frozen, &[]),
            (FALSE, "NoStage", "no stage is in force".into())
        );
        // A stage whose targets select nothing holds nothing, and says so.
        let (status, reason, message) = enforcing_condition(&policy(false), &d, &[], &[]);
        assert_eq!(
            (status, reason, message.as_str()),
            (FALSE, "NothingToHold", "stage page holds nothing")
        );
    }

    #[test]
    fn a_dry_run_and_an_override_say_what_would_be_held_and_until_when() {
        let selected = [outcome(
            Kind::Rollout,
            "web",
            PolicyAction::PauseRollouts,
            Change::Unchanged,
            false,
        )];
        let d = decision(
            Some("page"),
            &[PolicyAction::PauseRollouts, PolicyAction::AbortRollouts],
        );
        let (status, reason, message) = enforcing_condition(&policy(true), &d, &selected, &[]);
        assert_eq!((status, reason), (FALSE, "DryRun"));
        assert_eq!(
            message,
            "dry run: stage page would hold Rollout web (pauseRollouts); abort Rollouts mid-update"
        );
        let (status, reason, message) =
            enforcing_condition(&policy(false), &d, &selected, &[override_until(1_800_000_000)]);
        assert_eq!((status, reason), (FALSE, "Overridden"));
        assert_eq!(
            message,
            "ErrorBudgetOverride hotfix (by alice: INC-1) lifts stage page until 2027-01-15T08:00:00Z"
        );
        assert_eq!(
            overridden_condition(&[override_until(1_800_000_000)]),
            (
                TRUE,
                "OverrideActive",
                "ErrorBudgetOverride hotfix (by alice: INC-1) lifts the policy until 2027-01-15T08:00:00Z".into()
            )
        );
        assert_eq!(overridden_condition(&[]).1, "NoOverride");
    }

    #[test]
    fn data_available_names_what_is_missing_and_a_dispute_first() {
        let ok = Reading::Ok(std::sync::Arc::new(crate::budget::Snapshot::default()));
        let mut d = decision(Some("page"), &[]);
        assert_eq!(data_condition(&ok, &d).1, "DataAvailable");
        d.too_few_requests = vec!["checkout: 12 requests".into()];
        assert_eq!(
            data_condition(&ok, &d),
            (
                TRUE,
                "TooFewRequests",
                "every selected SLO has data; entries not holding for want of requests (minRequests): checkout: 12 requests"
                    .into()
            )
        );
        d.missing = vec!["search: no budget data".into()];
        assert_eq!(
            data_condition(&ok, &d),
            (
                FALSE,
                "NoData",
                "missing from Prometheus: search: no budget data".into()
            )
        );
        d.disputed = vec!["search: recorded twice".into()];
        let (status, reason, message) = data_condition(&ok, &d);
        assert_eq!((status, reason), (FALSE, DISPUTED_DATA));
        assert!(message.ends_with(": search: recorded twice"), "{message}");
        assert_eq!(
            data_condition(&Reading::Failed("no answer within 10s".into()), &d),
            (FALSE, "PrometheusUnavailable", "no answer within 10s".into())
        );
        assert_eq!(data_condition(&Reading::Disabled, &d).1, "PrometheusNotConfigured");
    }

    #[test]
    fn ready_says_the_first_error_then_deleted_slos_then_the_count() {
        let deleted = [Problem {
            field: "spec.slos.names[1]".into(),
            message: "ServiceLevelObjective gone does not exist in namespace shop".into(),
        }];
        let e = crate::error::Error::RolloutCrdMissing;
        assert_eq!(ready_condition(Some(&e), &deleted, 2).1, e.reason());
        assert_eq!(
            ready_condition(None, &deleted, 2),
            (
                FALSE,
                SLO_DELETED,
                "spec.slos.names[1]: ServiceLevelObjective gone does not exist in namespace shop. It was deleted and no \
                 longer drives the policy; 2 SLO(s) evaluated"
                    .into()
            )
        );
        assert_eq!(
            ready_condition(None, &[], 3),
            (TRUE, "Evaluated", "3 SLO(s) evaluated".into())
        );
    }

    #[test]
    fn a_change_of_stage_is_a_freeze_a_dry_run_or_a_release() {
        let held = [outcome(
            Kind::Namespace,
            "shop",
            PolicyAction::FreezeNamespace,
            Change::Claimed,
            true,
        )];
        let d = decision(Some("page"), &[PolicyAction::FreezeNamespace]);
        assert_eq!(
            transition_event(&policy(false), "", "page", &d, &held),
            (
                EventType::Warning,
                "Freeze",
                "stage none → page (burn rate over 1h 20 > 14.4); holding Namespace shop (freezeNamespace)".into()
            )
        );
        assert_eq!(transition_event(&policy(true), "ticket", "page", &d, &held).1, "DryRun");
        assert_eq!(
            transition_event(&policy(false), "page", "", &decision(None, &[]), &[]),
            (
                EventType::Normal,
                "Release",
                "stage page left: its conditions have not held for 1h; released everything".into()
            )
        );
        assert_eq!((none_if_empty(""), none_if_empty("page")), ("none", "page"));
    }

    #[test]
    fn every_object_acted_upon_is_told_why_in_its_own_namespace() {
        let me = "shop/checkout";
        let claimed = outcome(
            Kind::Deployment,
            "web",
            PolicyAction::FreezeDeployments,
            Change::Claimed,
            true,
        );
        assert_eq!(
            outcome_event(&claimed, me, "stage page"),
            Some((EventType::Warning, "Freeze", "paused by stage page".into()))
        );
        let reheld = outcome(
            Kind::Namespace,
            "shop",
            PolicyAction::FreezeNamespace,
            Change::Reheld,
            true,
        );
        let (_, reason, note) = outcome_event(&reheld, me, "stage page").unwrap();
        assert_eq!(reason, "Refreeze");
        assert!(
            note.starts_with("frozen again: it was undone while shop/checkout holds it"),
            "{note}"
        );
        let released = outcome(
            Kind::Rollout,
            "web",
            PolicyAction::PauseRollouts,
            Change::Released,
            false,
        );
        assert_eq!(
            outcome_event(&released, me, ""),
            Some((
                EventType::Normal,
                "Release",
                "released by ErrorBudgetPolicy shop/checkout".into()
            ))
        );
        for quiet in [Change::Unchanged, Change::NotClaimed] {
            assert_eq!(
                outcome_event(
                    &outcome(Kind::Deployment, "web", PolicyAction::FreezeDeployments, quiet, false),
                    me,
                    ""
                ),
                None
            );
        }
        let r = object_reference(&claimed, "shop");
        assert_eq!(
            (r.api_version.as_deref(), r.namespace.as_deref()),
            (Some("apps/v1"), Some("shop"))
        );
        let r = object_reference(&released, "shop");
        assert_eq!(r.api_version.as_deref(), Some("argoproj.io/v1alpha1"));
        // A Namespace's Events go into the namespace itself.
        let r = object_reference(&reheld, "ignored");
        assert_eq!(
            (r.api_version.as_deref(), r.namespace.as_deref()),
            (Some("v1"), Some("shop"))
        );
    }

    fn data(status: &str, reason: &str) -> Vec<Condition> {
        vec![crate::api::condition::next_condition(
            &[],
            DATA_AVAILABLE,
            status,
            reason,
            "why",
            Some(1),
            at(0),
        )]
    }

    #[test]
    fn bad_data_is_told_when_it_starts() {
        let ok = data(TRUE, "DataAvailable");
        let missing = data(FALSE, "NoData");
        let disputed = data(FALSE, DISPUTED_DATA);
        assert_eq!(data_event(&ok, &missing), Some(("MissingData", "why".into())));
        assert_eq!(
            data_event(&[], &missing).map(|e| e.0),
            Some("MissingData"),
            "a first evaluation"
        );
        assert_eq!(data_event(&missing, &missing), None, "told once");
        assert_eq!(data_event(&ok, &disputed).map(|e| e.0), Some(DISPUTED_DATA));
        assert_eq!(data_event(&missing, &disputed).map(|e| e.0), Some(DISPUTED_DATA));
        assert_eq!(data_event(&disputed, &disputed), None);
        assert_eq!(data_event(&disputed, &missing), None, "still no data");
        assert_eq!(data_event(&missing, &ok), None);
    }

    #[test]
    fn a_transition_is_recorded_newest_first_and_the_history_stays_bounded() {
        let ok = Reading::Ok(std::sync::Arc::new(crate::budget::Snapshot::default()));
        let held = [outcome(
            Kind::Deployment,
            "web",
            PolicyAction::FreezeDeployments,
            Change::Claimed,
            true,
        )];
        let mut d = decision(Some("page"), &[PolicyAction::FreezeDeployments]);
        d.transition = Some((String::new(), "page".into()));
        d.since = Some(at(1_800_000_000));
        let previous = ErrorBudgetPolicyStatus {
            history: (0..super::super::HISTORY)
                .map(|i| Transition {
                    time: Time(at(i as i64)),
                    from: "page".into(),
                    to: String::new(),
                    reason: format!("old {i}"),
                })
                .collect(),
            ..ErrorBudgetPolicyStatus::default()
        };
        let policy = policy(false);
        let e = Evaluation {
            valid: &policy,
            decision: &d,
            outcomes: &held,
            active: &[],
            reading: &ok,
            error: None,
            deleted: &[],
            evaluated: 1,
            rollbacks: &[],
            note: None,
            generation: Some(7),
            now: at(1_800_000_000),
        };
        let next = next_status(&previous, &e);
        assert_eq!(next.stage, "page");
        assert_eq!(next.observed_generation, Some(7));
        assert_eq!(next.history.len(), super::super::HISTORY);
        assert_eq!(
            (next.history[0].from.as_str(), next.history[0].to.as_str()),
            ("", "page")
        );
        assert_eq!(next.history[1].reason, "old 0");
        let types: Vec<&str> = next.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, ENFORCING, DATA_AVAILABLE, OVERRIDDEN]);
        assert!(next.conditions.iter().all(|c| c.observed_generation == Some(7)));
        assert_eq!(next.enforced.len(), 1);
        // The same again a minute later: only the transition is not repeated.
        let mut again = d.clone();
        again.transition = None;
        let later = Evaluation {
            decision: &again,
            now: at(1_800_000_060),
            ..e
        };
        let after = next_status(&next, &later);
        assert_eq!(after.history, next.history);
        assert_eq!(after, next, "nothing to write");
    }
}
