//! Reconciles an ErrorBudgetPolicy: check the spec and its SLOs → evaluate overrides (pure) →
//! decide (pure) → make the workloads and the namespace match (actuators) → status, Events,
//! metrics. Runs after every poll of Prometheus and whenever the policy or one of its
//! overrides changes.
//!
//! Everything needed to decide again is in the cluster: the stage, `since` and `quietSince` in
//! the status, the claims on the objects. A restart or another replica reads them back and
//! writes nothing when nothing changed. A finalizer releases what the policy holds when it is
//! deleted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Patch;
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::instrument;

use super::context::PolicyContext;
use crate::api::condition::{self, FALSE, READY, TRUE};
use crate::api::{
    Action as PolicyAction, ErrorBudgetOverride, ErrorBudgetPolicy, ErrorBudgetPolicyStatus, OverrideState,
};
use crate::budget::Reading;
use crate::cache::CachedSlo;
use crate::enforce::{self, Actor, Change, Kind, Outcome, namespace, rollout, workload};
use crate::error::{Error, Result};
use crate::metrics::{ActionLabels, StageLabels};
use crate::policy::status::{self, SLO_DELETED};
use crate::policy::{self, Previous, SloView, ValidPolicy, When};
use crate::validate::Problem;

const CONTROLLER: &str = "policy";
pub const FINALIZER: &str = "slo.warden.dev/release";

fn key(p: &ErrorBudgetPolicy) -> (String, String) {
    (p.namespace().unwrap_or_default(), p.name_any())
}

#[instrument(skip_all, fields(namespace = %policy.namespace().unwrap_or_default(), name = %policy.name_any()))]
pub async fn reconcile(policy: Arc<ErrorBudgetPolicy>, ctx: Arc<PolicyContext>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = policy
        .namespace()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let api: Api<ErrorBudgetPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let finalized = super::unwind::contained(async {
        Ok(finalizer(&api, FINALIZER, policy.clone(), |event| async {
            match event {
                finalizer::Event::Apply(p) => apply(&p, &ctx).await,
                finalizer::Event::Cleanup(p) => cleanup(&p, &ctx).await,
            }
        })
        .await)
    })
    .await;
    let result = finalized.and_then(|r| {
        r.map_err(|e| match e {
            finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
            finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e) => Error::api(e, || {
                format!("patch errorbudgetpolicies {ns}/{} (its finalizer)", policy.name_any())
            }),
            finalizer::Error::UnnamedObject => Error::MissingObjectKey("metadata.name"),
            finalizer::Error::InvalidFinalizer => Error::InvalidSpec(format!("invalid finalizer {FINALIZER}")),
        })
    });
    match &result {
        Ok(_) => ctx.backoff.succeeded(&key(&policy)),
        Err(e) => {
            ctx.metrics.failure(CONTROLLER, e.reason());
            tracing::warn!(reason = e.reason(), error = %e, "reconcile failed");
            // A panic left no status behind: say it on the object (what it holds stays held).
            if let Error::Panicked(_) = e
                && let Err(status_err) = report_failure(&policy, e, &ctx).await
            {
                tracing::warn!(error = %status_err, "cannot record the failure in status");
            }
        }
    }
    result
}

/// `Ready=False` with the error's reason, the rest of the status as it was.
async fn report_failure(policy: &ErrorBudgetPolicy, e: &Error, ctx: &PolicyContext) -> Result<bool> {
    let previous = policy.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let generation = policy.metadata.generation;
    let message = e.to_string();
    let conditions = condition::Setter {
        previous: &previous.conditions,
        generation,
        now: Timestamp::now(),
    };
    conditions.set(&mut status.conditions, READY, (FALSE, e.reason(), message));
    write_status(policy, &previous, &status, ctx).await
}

pub fn error_policy(policy: Arc<ErrorBudgetPolicy>, error: &Error, ctx: Arc<PolicyContext>) -> Action {
    let delay = ctx.backoff.failed(key(&policy));
    tracing::debug!(reason = error.reason(), ?delay, "requeue after failure");
    Action::requeue(delay)
}

/// Why a spec cannot be acted on: a condition reason and the problems.
type Rejection = (&'static str, Vec<Problem>);

/// What the policy acts on: the spec, its SLOs, and the selected SLOs that were deleted.
struct Checked {
    valid: ValidPolicy,
    slos: Vec<CachedSlo>,
    deleted: Vec<Problem>,
}

/// The spec checked against the cluster: valid, its SLOs found, their windows recorded.
///
/// An SLO that cannot be found is a typo when the spec just changed: nothing is decided until
/// it is fixed (a typo releases nothing). When the same spec was evaluated fine before, the SLO
/// was deleted: the policy goes on without it, so what it alone caused is released.
fn check(policy: &ErrorBudgetPolicy, ctx: &PolicyContext) -> Result<Checked, Rejection> {
    let valid = policy::validate(&policy.spec).map_err(|p| ("InvalidSpec", p))?;
    let (slos, problems) = policy::select::selected_slos(policy, &ctx.stores);
    let mut deleted = Vec::new();
    if !problems.is_empty() {
        let status = policy.status.clone().unwrap_or_default();
        let evaluated_before = status.conditions.iter().any(|c| {
            c.type_ == READY
                && c.observed_generation == policy.metadata.generation
                && (c.status == TRUE || c.reason == SLO_DELETED)
        });
        if !evaluated_before {
            return Err(("SLONotFound", problems));
        }
        deleted = problems;
    }
    // Validating an SLO parses its PromQL: once per generation, not once per poll and policy.
    let problems = policy::select::unrecorded_windows_with(&valid, &slos, |s| ctx.recorded_windows(s));
    if !problems.is_empty() {
        return Err(("InvalidSpec", problems));
    }
    Ok(Checked { valid, slos, deleted })
}

fn previous_of(status: &ErrorBudgetPolicyStatus) -> Previous {
    Previous {
        stage: Some(status.stage.clone()).filter(|s| !s.is_empty()),
        since: status.since.as_ref().map(|t| t.0),
        quiet_since: status.quiet_since.as_ref().map(|t| t.0),
        reason: status.reason.clone(),
    }
}

struct Overrides {
    active: Vec<policy::overrides::Active>,
    /// Earliest expiry among the active ones.
    next_expiry: Option<Timestamp>,
}

/// Evaluates this policy's overrides and writes their status where it changed.
async fn overrides(
    policy: &ErrorBudgetPolicy,
    valid: &ValidPolicy,
    now: Timestamp,
    ctx: &PolicyContext,
) -> Result<Overrides> {
    let ns = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let mut out = Overrides {
        active: vec![],
        next_expiry: None,
    };
    for o in ctx.stores.overrides_in(&ns).iter().filter(|o| o.spec.policy == name) {
        let Some(e) = policy::overrides::evaluate_object(o, valid.max_override, now) else {
            continue;
        };
        if let Some(active) = e.active(o) {
            out.next_expiry = Some(out.next_expiry.map_or(active.until, |n| n.min(active.until)));
            out.active.push(active);
        }
        let before = o.status.clone().unwrap_or_default();
        let status = crate::api::ErrorBudgetOverrideStatus {
            state: Some(e.state),
            expires_at: e.expires_at.map(Time),
            message: e.message.clone(),
        };
        if before == status {
            continue;
        }
        let api: Api<ErrorBudgetOverride> = Api::namespaced(ctx.client.clone(), &ns);
        api.patch_status(
            &o.name_any(),
            &crate::api::merge_params(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .map_err(|e| Error::api(e, || "update errorbudgetoverrides/status".into()))?;
        ctx.metrics.write(CONTROLLER, "override-status");
        let (type_, reason) = match e.state {
            OverrideState::Active => (EventType::Normal, "OverrideActive"),
            OverrideState::Expired => (EventType::Normal, "OverrideExpired"),
            OverrideState::Rejected => (EventType::Warning, "OverrideRejected"),
        };
        // Only transitions someone lived through are news; an override that expired while
        // nobody watched is just recorded.
        let news = match e.state {
            OverrideState::Expired => before.state == Some(OverrideState::Active),
            _ => true,
        };
        if news {
            let note = format!("ErrorBudgetOverride {}: {}", o.name_any(), e.message);
            super::events::publish(
                &ctx.recorder,
                &o.object_ref(&()),
                type_,
                reason,
                "Override",
                note.clone(),
            )
            .await;
            super::events::publish(&ctx.recorder, &policy.object_ref(&()), type_, reason, "Override", note).await;
        }
    }
    Ok(out)
}

/// Whether the reading asked for every request count the policy's `minRequests` entries need.
fn counts_read(valid: &ValidPolicy, reading: &Reading) -> bool {
    let Reading::Ok(snapshot) = reading else {
        return true;
    };
    valid.stages.iter().flat_map(|s| &s.when).all(|w| match w {
        When::BurnRate {
            window, min_requests, ..
        } if *min_requests > 0 => snapshot.requests.contains(window),
        _ => true,
    })
}

async fn apply(policy: &ErrorBudgetPolicy, ctx: &PolicyContext) -> Result<Action> {
    ctx.still_leading()?;
    let Some(reading) = ctx.reading() else {
        // Nothing read yet (start-up): deciding now would read every SLO as missing data.
        return Ok(Action::requeue(StdDuration::from_secs(2)));
    };
    let ns = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let now = Timestamp::now();
    let previous = policy.status.clone().unwrap_or_default();
    let generation = policy.metadata.generation;

    let Checked { valid, slos, deleted } = match check(policy, ctx) {
        // A request count its minRequests needs was not asked for yet (the policy is newer
        // than the last poll, or the poll ran before the policies were listed): the next poll
        // reads it. Deciding now would take it for missing.
        Ok(v) if !counts_read(&v.valid, &reading) => return Ok(Action::requeue(StdDuration::from_secs(2))),
        Ok(v) => v,
        Err((reason, problems)) => {
            // Keep holding what was held for the last good spec: a typo releases nothing.
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let message = format!(
                "{}. Until this is fixed the policy stays in stage {:?} and keeps what it holds.",
                list.join("; "),
                previous.stage
            );
            let mut status = previous.clone();
            status.observed_generation = generation;
            let conditions = condition::Setter {
                previous: &previous.conditions,
                generation,
                now,
            };
            conditions.set(&mut status.conditions, READY, (FALSE, reason, message.clone()));
            let changed = write_status(policy, &previous, &status, ctx).await?;
            if changed {
                super::events::publish(
                    &ctx.recorder,
                    &policy.object_ref(&()),
                    EventType::Warning,
                    reason,
                    "Validate",
                    message,
                )
                .await;
            }
            return Ok(Action::requeue(ctx.poll_interval));
        }
    };

    let overrides = overrides(policy, &valid, now, ctx).await?;
    let snapshot = match &reading {
        Reading::Ok(s) => Some(s.clone()),
        _ => None,
    };
    let samples: Vec<Option<crate::budget::SloSamples>> = slos
        .iter()
        .map(|s| snapshot.as_ref().and_then(|snap| crate::budget::samples_for(s, snap)))
        .collect();
    let views: Vec<SloView> = slos
        .iter()
        .zip(&samples)
        .map(|(s, samples)| SloView {
            name: s.metadata.name.as_deref().unwrap_or_default(),
            samples: samples.as_ref(),
        })
        .collect();
    let decision = policy::decide(
        &valid,
        &views,
        now,
        &previous_of(&previous),
        !overrides.active.is_empty(),
    );

    let me = enforce::holder(&ns, &name);
    let annotation_reason = format!(
        "ErrorBudgetPolicy {me} stage {}: {}",
        decision.stage_name, decision.reason
    );
    let actor = Actor {
        client: &ctx.client,
        namespace: &ns,
        me: &me,
        reason: &annotation_reason,
        now,
    };
    // Releases behind the burn: planned before the freezes, which must not pause a workload
    // being rolled back, and carried out after them.
    let releases = super::rollbacks::releases(policy, &valid, &decision, &slos, &previous, ctx, now);
    let window = jiff::SignedDuration::from_millis(i64::try_from(valid.suspect_window.as_millis()).unwrap_or(i64::MAX));
    let earlier_ok = super::rollbacks::earlier_ok(&slos, releases.began.unwrap_or(now), window);
    let rolling_back = decision.enforce.contains(&PolicyAction::RollbackRelease);
    let (plans, mut errors) = super::rollbacks::plan(&releases.suspects, &decision, &actor, &earlier_ok).await;
    let spared = super::rollbacks::spared(&plans, rolling_back, &previous.rollbacks, releases.began);
    let (outcomes, actuated) = actuate(policy, &decision.enforce, &spared, &actor, ctx).await;
    errors.extend(actuated);
    let (rollbacks, failed) =
        super::rollbacks::carry_out(&plans, rolling_back, &previous.rollbacks, &actor, &earlier_ok).await;
    errors.extend(failed);

    // ---- render, write
    let next = status::next_status(
        &previous,
        &status::Evaluation {
            valid: &valid,
            decision: &decision,
            outcomes: &outcomes,
            active: &overrides.active,
            reading: &reading,
            error: errors.first(),
            deleted: &deleted,
            evaluated: slos.len(),
            rollbacks: &rollbacks,
            note: releases.note.as_deref(),
            generation,
            now,
        },
    );
    write_status(policy, &previous, &next, ctx).await?;

    // ---- Events and metrics
    let policy_ref = policy.object_ref(&());
    if let Some((from, to)) = &decision.transition {
        let (type_, reason, note) = status::transition_event(&valid, from, to, &decision, &outcomes);
        // The recorder folds Events with the same reason and action into one series whatever
        // the note says: each transition gets its own action.
        let action = format!("Stage:{}->{}", status::none_if_empty(from), status::none_if_empty(to));
        super::events::publish(&ctx.recorder, &policy_ref, type_, reason, &action, note).await;
        ctx.metrics.policy_stage.remove(&StageLabels {
            namespace: ns.clone(),
            policy: name.clone(),
            stage: from.clone(),
        });
    }
    ctx.metrics
        .policy_stage
        .get_or_create(&StageLabels {
            namespace: ns.clone(),
            policy: name.clone(),
            stage: decision.stage_name.clone(),
        })
        .set(1);
    ctx.metrics
        .policy_overridden
        .get_or_create(&crate::metrics::PolicyLabels {
            namespace: ns.clone(),
            policy: name.clone(),
        })
        .set(i64::from(!overrides.active.is_empty()));
    if let Some((reason, message)) = status::data_event(&previous.conditions, &next.conditions) {
        super::events::publish(
            &ctx.recorder,
            &policy_ref,
            EventType::Warning,
            reason,
            "Evaluate",
            message,
        )
        .await;
    }
    report_outcomes(&outcomes, &actor, ctx).await;
    super::rollbacks::report(
        &status::new_rollbacks(&previous.rollbacks, &rollbacks),
        policy,
        &actor,
        ctx,
    )
    .await;
    if let Some((_, to)) = &decision.transition
        && !to.is_empty()
        && let Some(note) = &releases.note
    {
        super::events::publish(
            &ctx.recorder,
            &policy_ref,
            EventType::Warning,
            "BurnWithoutRelease",
            "Evaluate",
            format!("stage {to}: {note}"),
        )
        .await;
        ctx.metrics
            .burns_without_release
            .get_or_create(&crate::metrics::PolicyLabels {
                namespace: ns.clone(),
                policy: name.clone(),
            })
            .inc();
    }
    ctx.record_holds(
        (ns.clone(), name.clone()),
        slos.iter().map(|s| s.name_any()).collect(),
        &outcomes,
    );

    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    // Come back when a release or an override expiry is due; polls trigger the rest.
    let next = ctx.poll_interval.saturating_mul(2);
    let due = [
        decision.quiet_since.map(|q| valid.release_after.after(q)),
        overrides.next_expiry,
    ];
    Ok(Action::requeue(requeue_after(next, now, due.into_iter().flatten())))
}

/// The wait before the next reconcile: `poll`, or until just after the first of `due`, for
/// any times at all (a due time in the past is now; one centuries away is `poll`).
fn requeue_after(poll: StdDuration, now: Timestamp, due: impl Iterator<Item = Timestamp>) -> StdDuration {
    due.fold(poll, |next, at| {
        let wait = u64::try_from(at.duration_since(now).as_millis().max(0)).unwrap_or(u64::MAX);
        next.min(StdDuration::from_millis(wait).saturating_add(StdDuration::from_millis(500)))
    })
}

/// Runs every actuator, each on its own: one that fails (say, no Rollout CRD) must not keep
/// the others from holding or releasing.
async fn actuate(
    policy: &ErrorBudgetPolicy,
    enforce: &BTreeSet<PolicyAction>,
    rolled_back: &BTreeSet<(Kind, String)>,
    actor: &Actor<'_>,
    ctx: &PolicyContext,
) -> (Vec<Outcome>, Vec<Error>) {
    if let Err(e) = ctx.still_leading() {
        return (vec![], vec![e]);
    }
    let ns = actor.namespace;
    let targets = &policy.spec.targets;
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    let selector = |s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>, field: &str| {
        s.as_ref().map(|s| workload::selector(s, field)).transpose()
    };
    let deployments = selector(&targets.deployments, "spec.targets.deployments");
    let rollouts = selector(&targets.rollouts, "spec.targets.rollouts");

    // Rollouts being aborted are not held paused: the abort would wait for the pause.
    let aborting = enforce.contains(&PolicyAction::AbortRollouts);
    // Nor are workloads being rolled back: a paused Deployment would not roll the undo out.
    let spare_rolled_back = |o: &kube::api::DynamicObject| rolled_back.contains(&(Kind::Deployment, o.name_any()));
    let spare_aborted = |o: &kube::api::DynamicObject| {
        (aborting && rollout::mid_update(o)) || rolled_back.contains(&(Kind::Rollout, o.name_any()))
    };
    let kinds: [(_, _, _, workload::Spared); 2] = [
        (
            workload::deployments(),
            &deployments,
            PolicyAction::FreezeDeployments,
            &spare_rolled_back,
        ),
        (
            rollout::rollouts(),
            &rollouts,
            PolicyAction::PauseRollouts,
            &spare_aborted,
        ),
    ];
    for (kind, sel, action, spared) in kinds {
        let sel = usable(sel, enforce.is_empty(), &mut errors);
        let want = enforce.contains(&action);
        let cached = ctx.stores.workloads_in(ns, kind.kind);
        match workload::reconcile(actor, &kind, cached, sel, spared, want).await {
            Ok(Some(r)) => {
                outcomes.extend(r.outcomes);
                errors.extend(r.errors);
            }
            Ok(None) if want && sel.is_some() => errors.push(Error::RolloutCrdMissing),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if enforce.contains(&PolicyAction::AbortRollouts)
        && let Ok(Some(sel)) = &rollouts
    {
        match rollout::abort(actor, ctx.stores.workloads_in(ns, Kind::Rollout), sel).await {
            Ok(r) => {
                outcomes.extend(r.outcomes);
                errors.extend(r.errors);
            }
            Err(e) => errors.push(e),
        }
    }
    // The Namespace is read only when the policy may freeze it or may hold it: a policy that
    // never freezes its namespace costs no request per poll once it is known not to hold it.
    let want = enforce.contains(&PolicyAction::FreezeNamespace);
    let freezes = policy
        .spec
        .stages
        .iter()
        .any(|s| s.actions.contains(&PolicyAction::FreezeNamespace));
    let key = (ns.to_string(), policy.name_any());
    if want || freezes || ctx.may_hold_namespace(&key) {
        match namespace::reconcile(actor, want).await {
            Ok(o) => outcomes.push(o),
            Err(e) => errors.push(e),
        }
    }
    for o in &outcomes {
        if let Some(result) = o.result() {
            ctx.metrics
                .enforcement_actions
                .get_or_create(&ActionLabels {
                    action: o.action.as_str(),
                    result,
                })
                .inc();
            if o.change != Change::NotClaimed {
                ctx.metrics.write(CONTROLLER, o.kind.as_str());
            }
        }
    }
    (outcomes, errors)
}

/// The selector an actuator matches with. One the policy cannot use is a spec problem while it
/// holds something; letting go needs none (the claims on the objects say what the policy
/// holds), so such a selector never keeps it from releasing, nor its finalizer (and with it the
/// namespace's deletion) from completing.
fn usable<'a>(sel: &'a Result<Option<Selector>>, releasing: bool, errors: &mut Vec<Error>) -> Option<&'a Selector> {
    match sel {
        Ok(s) => s.as_ref(),
        Err(_) if releasing => None,
        Err(e) => {
            errors.push(Error::InvalidSpec(e.to_string()));
            None
        }
    }
}

/// An Event on every object acted upon.
async fn report_outcomes(outcomes: &[Outcome], actor: &Actor<'_>, ctx: &PolicyContext) {
    for o in outcomes {
        let Some((type_, event_reason, note)) = status::outcome_event(o, actor.me, actor.reason) else {
            continue;
        };
        let reference = status::object_reference(o, actor.namespace);
        super::events::publish(&ctx.recorder, &reference, type_, event_reason, o.action.as_str(), note).await;
    }
}

/// Releases everything the policy holds before it goes away.
async fn cleanup(policy: &ErrorBudgetPolicy, ctx: &PolicyContext) -> Result<Action> {
    let ns = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let me = enforce::holder(&ns, &name);
    // Whatever this term saw, the Namespace is checked too.
    ctx.forget(&(ns.clone(), name.clone()));
    let actor = Actor {
        client: &ctx.client,
        namespace: &ns,
        me: &me,
        reason: "",
        now: Timestamp::now(),
    };
    let (outcomes, errors) = actuate(policy, &BTreeSet::new(), &BTreeSet::new(), &actor, ctx).await;
    report_outcomes(&outcomes, &actor, ctx).await;
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let released = status::describe(&outcomes, |o| o.change == Change::Released);
    super::events::publish(
        &ctx.recorder,
        &policy.object_ref(&()),
        EventType::Normal,
        "Release",
        "Delete",
        format!("policy deleted; released {released}"),
    )
    .await;
    let stage = policy.status.as_ref().map(|s| s.stage.clone()).unwrap_or_default();
    ctx.metrics.policy_stage.remove(&StageLabels {
        namespace: ns,
        policy: name,
        stage,
    });
    Ok(Action::await_change())
}

/// The merge patch from `previous` to `next`: fields that became empty (`quietSince` after a
/// release, `enforced`, `reason`) are sent as `null`, or the API server would keep them.
fn status_patch(previous: &ErrorBudgetPolicyStatus, next: &ErrorBudgetPolicyStatus) -> Result<serde_json::Value> {
    let diff = crate::merge_patch::diff(&serde_json::to_value(previous)?, &serde_json::to_value(next)?);
    Ok(json!({ "status": diff }))
}

/// Writes the status when it differs; returns whether it wrote.
async fn write_status(
    policy: &ErrorBudgetPolicy,
    previous: &ErrorBudgetPolicyStatus,
    next: &ErrorBudgetPolicyStatus,
    ctx: &PolicyContext,
) -> Result<bool> {
    if previous == next {
        return Ok(false);
    }
    ctx.still_leading()?;
    let api: Api<ErrorBudgetPolicy> = Api::namespaced(ctx.client.clone(), &policy.namespace().unwrap_or_default());
    // Written over the version it was computed from: should another replica have written
    // since (a takeover this replica has not seen yet), the write conflicts and the next
    // reconcile starts from the cluster, instead of the last writer winning.
    let mut patch = status_patch(previous, next)?;
    patch["metadata"] = json!({ "resourceVersion": policy.resource_version() });
    api.patch_status(&policy.name_any(), &crate::api::merge_params(), &Patch::Merge(patch))
        .await
        .map_err(|e| Error::api(e, || "update errorbudgetpolicies/status".into()))?;
    ctx.metrics.write(CONTROLLER, "status");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::policy::Enforced;

    #[test]
    fn a_release_clears_what_the_stage_left_in_status() {
        let t = Time(Timestamp::from_second(1_800_000_000).unwrap());
        let held = ErrorBudgetPolicyStatus {
            stage: "page".into(),
            reason: "page has not held since ...".into(),
            quiet_since: Some(t.clone()),
            enforced: vec![Enforced {
                kind: "Deployment".into(),
                name: "web".into(),
                action: "freezeDeployments".into(),
                since: Some(t.clone()),
            }],
            ..ErrorBudgetPolicyStatus::default()
        };
        let released = ErrorBudgetPolicyStatus {
            since: Some(t),
            ..ErrorBudgetPolicyStatus::default()
        };
        let patch = status_patch(&held, &released).unwrap();
        assert_eq!(patch["status"]["quietSince"], serde_json::Value::Null);
        assert_eq!(patch["status"]["reason"], serde_json::Value::Null);
        assert_eq!(patch["status"]["enforced"], serde_json::Value::Null);
        assert!(
            patch["status"].as_object().unwrap().contains_key("quietSince"),
            "sent as null, not left out"
        );
        assert_eq!(patch["status"]["stage"], "");
    }

    #[test]
    fn a_selector_it_cannot_use_never_keeps_a_policy_from_letting_go() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
        let bogus = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "Bogus".into(),
                values: Some(vec!["web".into()]),
            }]),
            match_labels: None,
        };
        let sel = Some(workload::selector(&bogus, "spec.targets.deployments")).transpose();
        let mut errors = Vec::new();
        assert!(usable(&sel, true, &mut errors).is_none());
        assert!(errors.is_empty(), "releasing (the finalizer) goes on");
        assert!(usable(&sel, false, &mut errors).is_none());
        assert_eq!(errors.len(), 1, "holding with it is a spec problem");
        assert_eq!(errors[0].reason(), "InvalidSpec");
        assert!(
            errors[0]
                .to_string()
                .starts_with("spec.targets.deployments: not a valid label selector")
        );
    }

    #[test]
    fn the_next_reconcile_is_due_for_any_times() {
        let poll = StdDuration::from_secs(60);
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let at = |secs: i64| now + jiff::SignedDuration::from_secs(secs);
        assert_eq!(requeue_after(poll, now, std::iter::empty()), poll);
        assert_eq!(
            requeue_after(poll, now, [at(10)].into_iter()),
            StdDuration::from_millis(10_500)
        );
        assert_eq!(
            requeue_after(poll, now, [at(-10)].into_iter()),
            StdDuration::from_millis(500)
        );
        // A releaseAfter at its bound from a quiet period at the end of time, and times at
        // both ends of what jiff represents: no panic, a sane wait.
        let release = crate::api::bounds::MAX_RELEASE_AFTER.after(Timestamp::MAX);
        let extremes = [release, Timestamp::MAX, Timestamp::MIN];
        assert_eq!(
            requeue_after(poll, now, extremes.into_iter()),
            StdDuration::from_millis(500)
        );
        assert_eq!(requeue_after(poll, Timestamp::MIN, [Timestamp::MAX].into_iter()), poll);
        assert_eq!(
            requeue_after(StdDuration::MAX, Timestamp::MIN, [Timestamp::MAX].into_iter()),
            StdDuration::from_millis(Timestamp::MAX.duration_since(Timestamp::MIN).as_millis() as u64 + 500)
        );
    }
}

/// The reconciler against an API server that keeps what it is sent ([`crate::fake_api`]): what
/// a reconcile writes, and what the cluster holds after it.
#[cfg(test)]
mod reconciler_tests {
    use crate::budget::Windows;
    use std::collections::BTreeMap;

    use kube::runtime::events::{Recorder, Reporter};
    use serde_json::{Value, json};

    use super::*;
    use crate::api::ServiceLevelObjective;
    use crate::budget::{SloSamples, Snapshot};
    use crate::cache::{ScopeCaches, Stores};
    use crate::duration::Duration;
    use crate::fake_api::FakeApi;
    use crate::metrics::Metrics;
    use crate::policy::status::{DATA_AVAILABLE, ENFORCING};

    const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
    const NAMESPACE: &str = "/api/v1/namespaces/shop";
    const POLICY: &str = "/apis/slo.warden.dev/v1alpha1/namespaces/shop/errorbudgetpolicies/checkout";
    const ME: &str = "shop/checkout";

    fn slo() -> ServiceLevelObjective {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u1", "generation": 1},
            "spec": {"objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}", "total": "http_requests_total"}}},
        }))
        .unwrap()
    }

    /// A cluster with the policy (its finalizer already added), its Deployment and Namespace.
    fn cluster() -> (kube::Client, FakeApi) {
        let (client, api) = FakeApi::start();
        api.put(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
            "metadata": {"name": "checkout", "namespace": "shop", "generation": 1, "finalizers": [FINALIZER]},
            "spec": {
                "slos": {"names": ["checkout"]},
                "stages": [{"name": "page", "when": [{"burnRate": {"window": "1h", "above": 14.4}}],
                            "actions": ["freezeDeployments", "freezeNamespace"]}],
                "targets": {"deployments": {"matchLabels": {"app": "web"}}},
                "releaseAfter": "2m",
            },
        }));
        api.put(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 1},
        }));
        api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
        (client, api)
    }

    /// The policy reconciler's context after a poll that read `burn` over the last hour.
    fn context(client: kube::Client, burn: f64) -> Arc<PolicyContext> {
        let reporter = Reporter {
            controller: crate::api::MANAGER.into(),
            instance: None,
        };
        let ctx = PolicyContext::new(
            client.clone(),
            Recorder::new(client, reporter),
            Metrics::default(),
            StdDuration::from_secs(30),
            Stores(vec![ScopeCaches::holding(vec![slo()], vec![])]),
            vec![],
            tokio::sync::watch::channel(true).1,
        );
        let samples = SloSamples {
            remaining: Some(0.5),
            burn_rates: Windows::from([(Duration::hours(1), burn)]),
            covered: Some(30.0 * 86_400.0),
            ..SloSamples::default()
        };
        ctx.set_reading(Reading::Ok(Arc::new(Snapshot {
            slos: BTreeMap::from([(("shop".to_string(), "checkout".to_string()), samples)]),
            at: Some(Timestamp::now()),
            ..Snapshot::default()
        })));
        Arc::new(ctx)
    }

    /// One reconcile of the policy as the cluster holds it now.
    pub(super) async fn reconcile_now(api: &FakeApi, ctx: &Arc<PolicyContext>) -> Result<Action> {
        let policy: ErrorBudgetPolicy = serde_json::from_value(api.get(POLICY).unwrap()).unwrap();
        tokio::time::timeout(StdDuration::from_secs(10), reconcile(Arc::new(policy), ctx.clone()))
            .await
            .expect("the reconcile finished")
    }

    fn paused_by(obj: &Value) -> (bool, Option<&str>) {
        (
            obj["spec"]["paused"].as_bool() == Some(true),
            obj["metadata"]["annotations"]["slo.warden.dev/paused-by"].as_str(),
        )
    }

    fn frozen(ns: &Value) -> bool {
        ns["metadata"]["labels"]["slo.warden.dev/frozen"] == "true"
    }

    fn condition<'a>(policy: &'a Value, type_: &str) -> &'a Value {
        policy["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == type_))
            .unwrap_or(&Value::Null)
    }

    #[tokio::test]
    async fn a_burn_freezes_the_targets_and_says_so_everywhere() {
        let (client, api) = cluster();
        let ctx = context(client, 20.0);
        reconcile_now(&api, &ctx).await.unwrap();

        assert_eq!(paused_by(&api.get(DEPLOYMENT).unwrap()), (true, Some(ME)));
        assert!(frozen(&api.get(NAMESPACE).unwrap()));
        let policy = api.get(POLICY).unwrap();
        assert_eq!(policy["status"]["stage"], "page");
        assert_eq!(condition(&policy, ENFORCING)["status"], "True");
        assert_eq!(condition(&policy, READY)["status"], "True");
        assert_eq!(condition(&policy, DATA_AVAILABLE)["status"], "True");
        let enforced: Vec<&str> = policy["status"]["enforced"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(enforced, ["Deployment", "Namespace"]);
        // Every write names slo-warden as its field manager.
        for write in api.writes() {
            assert!(write.query.contains("fieldManager=slo-warden"), "{write:?}");
        }
        // The freeze on the policy, and on each object held.
        assert_eq!(api.event_reasons(), ["Freeze", "Freeze", "Freeze"]);

        // Nothing changed: the next reconcile writes nothing.
        let before = api.writes().len();
        reconcile_now(&api, &ctx).await.unwrap();
        assert_eq!(api.writes().len(), before, "{:?}", &api.writes()[before..]);
    }

    #[tokio::test]
    async fn a_pause_a_person_undoes_is_put_back() {
        let (client, api) = cluster();
        let ctx = context(client, 20.0);
        reconcile_now(&api, &ctx).await.unwrap();
        // `kubectl rollout resume` (past the webhook, say while it was down).
        let mut resumed = api.get(DEPLOYMENT).unwrap();
        resumed["spec"]["paused"] = json!(false);
        api.put(resumed);

        reconcile_now(&api, &ctx).await.unwrap();
        assert_eq!(paused_by(&api.get(DEPLOYMENT).unwrap()), (true, Some(ME)));
        let reasons = api.event_reasons();
        assert_eq!(reasons.last().map(String::as_str), Some("Refreeze"));
        let last_event = api
            .seen()
            .into_iter()
            .rev()
            .find(|s| s.path.contains("/events"))
            .unwrap();
        assert!(
            last_event.body["note"]
                .as_str()
                .unwrap()
                .starts_with("paused again: it was undone while shop/checkout holds it"),
            "{:?}",
            last_event.body
        );
    }

    #[tokio::test]
    async fn a_quiet_service_is_released_after_release_after() {
        let (client, api) = cluster();
        reconcile_now(&api, &context(client.clone(), 20.0)).await.unwrap();
        // The burn stops: held for releaseAfter (2m) from now.
        let quiet = context(client, 1.0);
        reconcile_now(&api, &quiet).await.unwrap();
        let policy = api.get(POLICY).unwrap();
        assert_eq!(policy["status"]["stage"], "page");
        assert!(policy["status"]["quietSince"].is_string(), "{}", policy["status"]);
        assert!(paused_by(&api.get(DEPLOYMENT).unwrap()).0, "still held");

        // Ten minutes later, as the status says.
        let mut policy = api.get(POLICY).unwrap();
        let earlier = Timestamp::now() - jiff::SignedDuration::from_mins(10);
        policy["status"]["quietSince"] = json!(crate::api::rfc3339(earlier));
        api.put(policy);
        reconcile_now(&api, &quiet).await.unwrap();

        assert_eq!(paused_by(&api.get(DEPLOYMENT).unwrap()), (false, None));
        assert!(!frozen(&api.get(NAMESPACE).unwrap()));
        let policy = api.get(POLICY).unwrap();
        assert_eq!(policy["status"]["stage"], "");
        assert_eq!(policy["status"].get("enforced"), None, "{}", policy["status"]);
        assert_eq!(policy["status"]["history"][0]["from"], "page");
        assert!(api.event_reasons().iter().any(|r| r == "Release"));
    }

    #[tokio::test]
    async fn a_deleted_policy_releases_everything_before_it_goes() {
        let (client, api) = cluster();
        let ctx = context(client, 20.0);
        reconcile_now(&api, &ctx).await.unwrap();
        let mut policy = api.get(POLICY).unwrap();
        policy["metadata"]["deletionTimestamp"] = json!(crate::api::rfc3339(Timestamp::now()));
        api.put(policy);

        reconcile_now(&api, &ctx).await.unwrap();
        assert_eq!(paused_by(&api.get(DEPLOYMENT).unwrap()), (false, None));
        assert!(!frozen(&api.get(NAMESPACE).unwrap()));
        let policy = api.get(POLICY).unwrap();
        assert_eq!(
            policy["metadata"]["finalizers"].as_array().map_or(0, Vec::len),
            0,
            "the finalizer goes last: {}",
            policy["metadata"]
        );
        assert_eq!(api.event_reasons().last().map(String::as_str), Some("Release"));
    }

    #[tokio::test]
    async fn a_write_that_conflicts_is_planned_again_on_what_the_other_writer_left() {
        let (client, api) = cluster();
        // Another policy claims the Deployment just before us.
        api.conflict_next_patch(
            DEPLOYMENT,
            json!({"spec": {"paused": true}, "metadata": {"annotations": {"slo.warden.dev/paused-by": "shop/other"}}}),
        );
        reconcile_now(&api, &context(client, 20.0)).await.unwrap();

        let deployment = api.get(DEPLOYMENT).unwrap();
        let holders = deployment["metadata"]["annotations"]["slo.warden.dev/paused-by"]
            .as_str()
            .unwrap();
        assert!(
            holders.contains("shop/other") && holders.contains(ME),
            "both claims kept: {holders}"
        );
        assert!(paused_by(&deployment).0);
        let patches: Vec<String> = api
            .seen()
            .into_iter()
            .filter(|s| s.path == DEPLOYMENT)
            .map(|s| s.method.to_string())
            .collect();
        assert_eq!(patches, ["PATCH", "GET", "PATCH"], "refused, read again, planned again");
    }
}

/// `rollbackRelease` and a burn without a release, through the whole reconcile against a
/// stateful API server: what is written to the workload, the policy's status and Events.
#[cfg(test)]
mod rollback_tests {
    use crate::budget::Windows;
    use std::collections::BTreeMap;

    use kube::runtime::events::{Recorder, Reporter};
    use serde_json::{Value, json};

    use super::*;
    use crate::api::ServiceLevelObjective;
    use crate::budget::{SloSamples, Snapshot};
    use crate::cache::{ScopeCaches, Stores};
    use crate::duration::Duration;
    use crate::fake_api::FakeApi;
    use crate::metrics::Metrics;

    const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
    const NAMESPACE: &str = "/api/v1/namespaces/shop";
    const POLICY: &str = "/apis/slo.warden.dev/v1alpha1/namespaces/shop/errorbudgetpolicies/checkout";

    fn ago(minutes: i64) -> String {
        crate::api::rfc3339(Timestamp::now() - jiff::SignedDuration::from_mins(minutes))
    }

    /// The SLO, its ledger saying web 2 started `started` minutes ago (web 1 two days ago).
    fn slo(started: i64) -> ServiceLevelObjective {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u1", "generation": 1},
            "spec": {"objective": 99.9, "window": "30d",
                     "indicator": {"ratio": {"errors": "http_requests_total{code=~\"5..\"}", "total": "http_requests_total"}}},
            "status": {"releases": [
                {"kind": "Deployment", "workload": "web", "revision": 2, "images": ["web:2"], "startedAt": ago(started),
                 "errors": 900.0, "requests": 10000.0},
                {"kind": "Deployment", "workload": "web", "revision": 1, "images": ["web:1"], "startedAt": ago(2880),
                 "errors": 10.0, "requests": 900000.0},
            ]},
        }))
        .unwrap()
    }

    fn deployment(image: &str, revision: &str, metadata: Value) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "d1", "labels": {"app": "web"},
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}},
        });
        json_patch::merge(&mut d["metadata"], &metadata);
        d
    }

    fn replica_set(hash: &str, revision: &str, image: &str, created: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("web-{hash}"), "namespace": "shop", "creationTimestamp": created,
                         "labels": {"app": "web", "pod-template-hash": hash},
                         "annotations": {"deployment.kubernetes.io/revision": revision},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                              "uid": "d1", "controller": true}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": hash}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}},
        })
    }

    /// The cluster: policy checkout (`spec` merged in), web at revision 2 (`metadata` merged
    /// into the Deployment's), its ReplicaSets, the Namespace; and a context whose caches hold
    /// them and whose last poll read a burn of `burn` (none of the SLO when `None`).
    fn setup(spec: Value, metadata: Value, started: i64, burn: Option<f64>) -> (FakeApi, Arc<PolicyContext>) {
        let (client, api) = FakeApi::start();
        let mut policy = json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
            "metadata": {"name": "checkout", "namespace": "shop", "generation": 1, "finalizers": [FINALIZER]},
            "spec": {
                "slos": {"names": ["checkout"]},
                "stages": [{"name": "page", "when": [{"burnRate": {"window": "1h", "above": 14.4}}],
                            "actions": ["rollbackRelease", "freezeDeployments", "freezeNamespace"]}],
                "targets": {"deployments": {"matchLabels": {"app": "web"}}},
                "releaseAfter": "2m",
            },
        });
        json_patch::merge(&mut policy["spec"], &spec);
        api.put(policy);
        let web = deployment("web:2", "2", metadata);
        let rs = [
            replica_set("a1", "1", "web:1", &ago(2880)),
            replica_set("b2", "2", "web:2", &ago(started)),
        ];
        api.put(web.clone());
        for r in &rs {
            api.put(r.clone());
        }
        api.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}));
        let objects = |v: Vec<Value>| -> Vec<kube::api::DynamicObject> {
            v.into_iter().map(|o| serde_json::from_value(o).unwrap()).collect()
        };
        let caches = ScopeCaches::holding_workloads(vec![slo(started)], objects(vec![web]), objects(rs.to_vec()));
        let reporter = Reporter {
            controller: crate::api::MANAGER.into(),
            instance: None,
        };
        let ctx = PolicyContext::new(
            client.clone(),
            Recorder::new(client, reporter),
            Metrics::default(),
            StdDuration::from_secs(30),
            Stores(vec![caches]),
            vec![],
            tokio::sync::watch::channel(true).1,
        );
        let slos = match burn {
            Some(burn) => BTreeMap::from([(
                ("shop".to_string(), "checkout".to_string()),
                SloSamples {
                    remaining: Some(0.5),
                    burn_rates: Windows::from([(Duration::hours(1), burn)]),
                    covered: Some(30.0 * 86_400.0),
                    ..SloSamples::default()
                },
            )]),
            None => BTreeMap::new(),
        };
        ctx.set_reading(Reading::Ok(Arc::new(Snapshot {
            slos,
            at: Some(Timestamp::now()),
            ..Snapshot::default()
        })));
        (api, Arc::new(ctx))
    }

    use super::reconciler_tests::reconcile_now;

    fn image(d: &Value) -> &str {
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
    }

    fn rollbacks(api: &FakeApi) -> Vec<Value> {
        api.get(POLICY).unwrap()["status"]["rollbacks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_release_that_burned_the_budget_is_rolled_back_once_and_left_to_roll_out() {
        let (api, ctx) = setup(json!({}), json!({}), 5, Some(20.0));
        reconcile_now(&api, &ctx).await.unwrap();

        let web = api.get(DEPLOYMENT).unwrap();
        assert_eq!(image(&web), "web:1", "back to revision 1's template");
        assert_eq!(
            web["spec"]["template"]["metadata"]["labels"],
            json!({"app": "web"}),
            "without its hash"
        );
        assert_eq!(
            web["metadata"]["annotations"]["slo.warden.dev/rolled-back-from"],
            "2: web:2"
        );
        assert_ne!(web["spec"]["paused"], true, "not paused: the undo must roll out");
        assert_eq!(
            api.get(NAMESPACE).unwrap()["metadata"]["labels"]["slo.warden.dev/frozen"],
            "true",
            "further releases are refused at admission"
        );
        let json_patches: Vec<_> = api
            .writes()
            .into_iter()
            .filter(|w| w.path == DEPLOYMENT && w.body.is_array())
            .collect();
        assert_eq!(json_patches.len(), 1);
        assert_eq!(
            json_patches[0].body[0]["op"], "test",
            "over the version it was planned on"
        );
        assert!(json_patches[0].query.contains("fieldManager=slo-warden"));
        let records = rollbacks(&api);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["result"], "RolledBack");
        assert_eq!(records[0]["from"], "revision 2 (web:2)");
        assert_eq!(records[0]["to"], "revision 1 (web:1)");
        assert!(
            records[0]["message"]
                .as_str()
                .unwrap()
                .starts_with("rolled Deployment web back from revision 2 (web:2) to revision 1 (web:1)"),
            "{}",
            records[0]["message"]
        );
        let reasons = api.event_reasons();
        assert_eq!(
            reasons.iter().filter(|r| *r == "RollbackRelease").count(),
            2,
            "{reasons:?}"
        );

        // The next poll, the ledger not updated yet: the mark says it was done.
        let before = api.writes().len();
        let events = api.event_reasons().len();
        reconcile_now(&api, &ctx).await.unwrap();
        let again: Vec<_> = api.writes()[before..]
            .iter()
            .filter(|w| w.path == DEPLOYMENT)
            .cloned()
            .collect();
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(rollbacks(&api).len(), 1);
        assert_eq!(api.event_reasons().len(), events, "told once");

        // The ledger has seen the rollback (revision 3, revision 1's ReplicaSet, from now):
        // nothing is suspect any more, and web is still not paused while it rolls out.
        let mut moved_on = slo(5);
        let status = moved_on.status.as_mut().unwrap();
        let mut three = status.releases[1].clone();
        three.revision = 3;
        three.started_at = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now());
        status.releases.insert(0, three);
        let web: kube::api::DynamicObject = serde_json::from_value(api.get(DEPLOYMENT).unwrap()).unwrap();
        let later = Arc::new(PolicyContext::new(
            ctx.client.clone(),
            ctx.recorder.clone(),
            Metrics::default(),
            StdDuration::from_secs(30),
            Stores(vec![ScopeCaches::holding_workloads(vec![moved_on], vec![web], vec![])]),
            vec![],
            tokio::sync::watch::channel(true).1,
        ));
        later.set_reading(ctx.reading().unwrap());
        reconcile_now(&api, &later).await.unwrap();
        let web = api.get(DEPLOYMENT).unwrap();
        assert_ne!(web["spec"]["paused"], true, "a pause would stop the rollback halfway");
        assert_eq!(image(&web), "web:1");
        assert_eq!(rollbacks(&api).len(), 1);
    }

    #[tokio::test]
    async fn a_dry_run_reports_the_rollback_it_would_make() {
        let (api, ctx) = setup(json!({"dryRun": true}), json!({}), 5, Some(20.0));
        reconcile_now(&api, &ctx).await.unwrap();
        assert_eq!(image(&api.get(DEPLOYMENT).unwrap()), "web:2");
        let records = rollbacks(&api);
        assert_eq!(records[0]["result"], "DryRun");
        assert_eq!(
            records[0]["message"],
            "would roll Deployment web back from revision 2 (web:2) to revision 1 (web:1) (dry run)"
        );
    }

    #[tokio::test]
    async fn missing_data_never_rolls_back() {
        // A policy that enters its stage on missing data: it freezes, and rolls nothing back.
        let (api, ctx) = setup(json!({"onMissingData": "enforce"}), json!({}), 5, None);
        reconcile_now(&api, &ctx).await.unwrap();
        let policy = api.get(POLICY).unwrap();
        assert_eq!(policy["status"]["stage"], "page");
        let web = api.get(DEPLOYMENT).unwrap();
        assert_eq!(image(&web), "web:2");
        assert_eq!(web["spec"]["paused"], true, "frozen instead");
        assert!(rollbacks(&api).is_empty());
    }

    #[tokio::test]
    async fn a_workload_argo_cd_manages_is_frozen_and_the_revision_to_revert_in_git_named() {
        let tracking = json!({"annotations": {"argocd.argoproj.io/tracking-id": "shop-web:apps/Deployment:shop/web"}});
        let (api, ctx) = setup(json!({}), tracking, 5, Some(20.0));
        reconcile_now(&api, &ctx).await.unwrap();
        let web = api.get(DEPLOYMENT).unwrap();
        assert_eq!(image(&web), "web:2", "self-heal would put it back");
        assert_eq!(web["spec"]["paused"], true, "held paused like any target");
        let records = rollbacks(&api);
        assert_eq!(records[0]["result"], "GitOps");
        assert!(
            records[0]["message"]
                .as_str()
                .unwrap()
                .contains("managed by Argo CD application shop-web, whose self-heal would put revision 2 (web:2) back"),
            "{}",
            records[0]["message"]
        );
        assert!(
            records[0]["message"]
                .as_str()
                .unwrap()
                .ends_with("Revert it in Git to revision 1 (web:1)")
        );
        assert!(api.event_reasons().iter().any(|r| r == "RollbackRefused"));
    }

    #[tokio::test]
    async fn a_release_older_than_the_suspect_window_is_not_blamed_and_the_burn_says_so() {
        // web 2 started two hours ago; suspectWindow is 30m: no release behind this burn.
        let (api, ctx) = setup(json!({}), json!({}), 120, Some(20.0));
        reconcile_now(&api, &ctx).await.unwrap();
        let web = api.get(DEPLOYMENT).unwrap();
        assert_eq!(image(&web), "web:2");
        assert_eq!(web["spec"]["paused"], true);
        assert!(rollbacks(&api).is_empty());
        let policy = api.get(POLICY).unwrap();
        assert!(
            policy["status"]["reason"]
                .as_str()
                .unwrap()
                .ends_with("; no release in the 30m before the burn: look at dependencies, traffic and security"),
            "{}",
            policy["status"]["reason"]
        );
        assert_eq!(
            api.event_reasons()
                .iter()
                .filter(|r| *r == "BurnWithoutRelease")
                .count(),
            1
        );
        let metrics = {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &ctx.metrics.registry).unwrap();
            out
        };
        assert!(
            metrics.contains(r#"slo_warden_burns_without_release_total{namespace="shop",policy="checkout"} 1"#),
            "{metrics}"
        );
        // The next poll: the reason stays, and is told once.
        reconcile_now(&api, &ctx).await.unwrap();
        assert_eq!(
            api.event_reasons()
                .iter()
                .filter(|r| *r == "BurnWithoutRelease")
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn a_revision_before_that_is_itself_suspect_is_not_gone_back_to() {
        // web 1 started 20 minutes ago too: both are within the window.
        let (api, ctx) = setup(json!({}), json!({}), 5, Some(20.0));
        let mut slo = slo(5);
        slo.status.as_mut().unwrap().releases[1].started_at = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::now() - jiff::SignedDuration::from_mins(20),
        );
        let caches = ScopeCaches::holding_workloads(
            vec![slo],
            vec![serde_json::from_value(api.get(DEPLOYMENT).unwrap()).unwrap()],
            vec![
                serde_json::from_value(api.get("/apis/apps/v1/namespaces/shop/replicasets/web-a1").unwrap()).unwrap(),
                serde_json::from_value(api.get("/apis/apps/v1/namespaces/shop/replicasets/web-b2").unwrap()).unwrap(),
            ],
        );
        let ctx = {
            let c = PolicyContext::new(
                ctx.client.clone(),
                ctx.recorder.clone(),
                Metrics::default(),
                StdDuration::from_secs(30),
                Stores(vec![caches]),
                vec![],
                tokio::sync::watch::channel(true).1,
            );
            c.set_reading(ctx.reading().unwrap());
            Arc::new(c)
        };
        reconcile_now(&api, &ctx).await.unwrap();
        assert_eq!(image(&api.get(DEPLOYMENT).unwrap()), "web:2");
        let records = rollbacks(&api);
        assert_eq!(records[0]["result"], "Refused");
        assert!(
            records[0]["message"]
                .as_str()
                .unwrap()
                .contains("the revision before, revision 1 (web:1), started at"),
            "{}",
            records[0]["message"]
        );
    }
}
