//! Reconciles an ErrorBudgetPolicy: check the spec and its SLOs → evaluate overrides (pure) →
//! decide (pure) → make the workloads and the namespace match (actuators) → status, Events,
//! metrics. Runs after every poll of Prometheus and whenever the policy or one of its
//! overrides changes.
//!
//! Everything needed to decide again is in the cluster: the stage, `since` and `quietSince` in
//! the status, the claims on the objects. A restart or another replica reads them back and
//! writes nothing when nothing changed. A finalizer releases what the policy holds when it is
//! deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::instrument;

use super::budget::{CachedSlo, Reading, Shared, Stores};
use crate::api::condition::{self, FALSE, READY, TRUE};
use crate::api::policy::{Enforced, Transition};
use crate::api::{
    Action as PolicyAction, ErrorBudgetOverride, ErrorBudgetPolicy, ErrorBudgetPolicyStatus, OverrideState,
    ServiceLevelObjective,
};
use crate::enforce::{self, Change, Outcome, namespace, rollout, workload};
use crate::error::{Error, Result};
use crate::metrics::{ActionLabels, StageLabels};
use crate::policy::{self, Decision, Previous, SloView, ValidPolicy, When};
use crate::validate::Problem;

const CONTROLLER: &str = "policy";
pub const FINALIZER: &str = "slo.warden.dev/release";

pub const ENFORCING: &str = "Enforcing";
pub const DATA_AVAILABLE: &str = "DataAvailable";
pub const OVERRIDDEN: &str = "Overridden";
/// `DataAvailable=False` reason while a selected SLO's series have a second writer.
const DISPUTED_DATA: &str = "DisputedData";
/// `Ready=False` reason while a selected SLO is gone but the policy goes on without it.
const SLO_DELETED: &str = "SLODeleted";

fn key(p: &ErrorBudgetPolicy) -> (String, String) {
    (p.namespace().unwrap_or_default(), p.name_any())
}

#[instrument(skip_all, fields(namespace = %policy.namespace().unwrap_or_default(), name = %policy.name_any()))]
pub async fn reconcile(policy: Arc<ErrorBudgetPolicy>, ctx: Arc<Shared>) -> Result<Action> {
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
async fn report_failure(policy: &ErrorBudgetPolicy, e: &Error, ctx: &Shared) -> Result<bool> {
    let previous = policy.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let generation = policy.metadata.generation;
    let message = e.to_string();
    set_condition(
        &mut status,
        &previous,
        READY,
        FALSE,
        e.reason(),
        &message,
        generation,
        Timestamp::now(),
    );
    write_status(policy, &previous, &status, ctx).await
}

pub fn error_policy(policy: Arc<ErrorBudgetPolicy>, error: &Error, ctx: Arc<Shared>) -> Action {
    let delay = ctx.backoff.failed(key(&policy));
    tracing::debug!(reason = error.reason(), ?delay, "requeue after failure");
    Action::requeue(delay)
}

/// The SLOs the policy selects, or the problems that keep it from selecting them.
pub fn selected_slos(policy: &ErrorBudgetPolicy, stores: &Stores) -> (Vec<CachedSlo>, Vec<Problem>) {
    let ns = policy.namespace().unwrap_or_default();
    // Only the SLOs the policy may select are copied out of the cache.
    let wanted: Option<BTreeSet<&str>> = policy
        .spec
        .slos
        .names
        .as_ref()
        .map(|n| n.iter().map(String::as_str).collect());
    let in_ns = stores.slos_in(&ns, |name| wanted.as_ref().is_none_or(|w| w.contains(name)));
    let mut problems = Vec::new();
    let mut found = Vec::new();
    if let Some(names) = &policy.spec.slos.names {
        for (i, name) in names.iter().enumerate() {
            match in_ns.iter().find(|s| s.name_any() == *name) {
                Some(s) => found.push(s.clone()),
                None => problems.push(Problem {
                    field: format!("spec.slos.names[{i}]"),
                    message: format!(
                        "ServiceLevelObjective {name} does not exist in namespace {ns}; create it or remove it from the list"
                    ),
                }),
            }
        }
    } else if let Some(sel) = &policy.spec.slos.selector {
        match Selector::try_from(sel.clone()) {
            Ok(sel) => {
                found.extend(in_ns.iter().filter(|s| sel.matches(s.labels())).cloned());
                if found.is_empty() {
                    problems.push(Problem {
                        field: "spec.slos.selector".into(),
                        message: format!(
                            "matches no ServiceLevelObjective in namespace {ns}; check the labels of your SLOs"
                        ),
                    });
                }
            }
            Err(e) => problems.push(Problem {
                field: "spec.slos.selector".into(),
                message: format!("not a valid label selector: {e}"),
            }),
        }
    }
    (found, problems)
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
fn check(policy: &ErrorBudgetPolicy, ctx: &Shared) -> Result<Checked, Rejection> {
    let valid = policy::validate(&policy.spec).map_err(|p| ("InvalidSpec", p))?;
    let (slos, problems) = selected_slos(policy, &ctx.stores);
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
    let problems = unrecorded_windows_with(&valid, &slos, |s| ctx.recorded_windows(s));
    if !problems.is_empty() {
        return Err(("InvalidSpec", problems));
    }
    Ok(Checked { valid, slos, deleted })
}

/// The windows an SLO records; `None` when its spec is invalid (it then reports itself).
pub fn recorded_windows(slo: &ServiceLevelObjective) -> Option<BTreeSet<crate::duration::Duration>> {
    crate::validate::validate(slo)
        .ok()
        .map(|v| crate::rules::recorded_windows(&v))
}

/// Every burn-rate window the policy reads must be recorded by each of its (valid) SLOs.
pub fn unrecorded_windows(valid: &ValidPolicy, slos: &[CachedSlo]) -> Vec<Problem> {
    unrecorded_windows_with(valid, slos, recorded_windows)
}

fn unrecorded_windows_with(
    valid: &ValidPolicy,
    slos: &[CachedSlo],
    windows: impl Fn(&ServiceLevelObjective) -> Option<BTreeSet<crate::duration::Duration>>,
) -> Vec<Problem> {
    let recorded: BTreeMap<String, BTreeSet<crate::duration::Duration>> = slos
        .iter()
        .filter_map(|s| windows(s).map(|w| (s.name_any(), w)))
        .collect();
    let raw: Vec<String> = slos
        .iter()
        .filter(|s| s.spec.indicator.raw.is_some())
        .map(|s| s.name_any())
        .collect();
    let mut problems = policy::check_windows(valid, &recorded);
    problems.extend(policy::check_min_requests(valid, &raw));
    problems
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
    /// (name, "by whom: reason", expires at) of the active ones.
    active: Vec<(String, String, Timestamp)>,
    /// Earliest expiry among the active ones.
    next_expiry: Option<Timestamp>,
}

/// Evaluates this policy's overrides and writes their status where it changed.
async fn overrides(policy: &ErrorBudgetPolicy, valid: &ValidPolicy, now: Timestamp, ctx: &Shared) -> Result<Overrides> {
    let ns = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let mut out = Overrides {
        active: vec![],
        next_expiry: None,
    };
    for o in ctx.stores.overrides_in(&ns).iter().filter(|o| o.spec.policy == name) {
        let Some(created) = o.metadata.creation_timestamp.as_ref().map(|t| t.0) else {
            continue;
        };
        let e = policy::overrides::evaluate(&o.spec, created, valid.max_override, now);
        if e.state == OverrideState::Active
            && let Some(at) = e.expires_at
        {
            let why = format!("by {}: {}", policy::overrides::requester(&o.spec), o.spec.reason);
            out.active.push((o.name_any(), why, at));
            out.next_expiry = Some(out.next_expiry.map_or(at, |n| n.min(at)));
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
            &PatchParams::default(),
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
            super::publish(
                &ctx.recorder,
                &o.object_ref(&()),
                type_,
                reason,
                "Override",
                note.clone(),
            )
            .await;
            super::publish(&ctx.recorder, &policy.object_ref(&()), type_, reason, "Override", note).await;
        }
    }
    Ok(out)
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
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

async fn apply(policy: &ErrorBudgetPolicy, ctx: &Shared) -> Result<Action> {
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
            set_condition(&mut status, &previous, READY, FALSE, reason, &message, generation, now);
            let changed = write_status(policy, &previous, &status, ctx).await?;
            if changed {
                super::publish(
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
        .map(|s| snapshot.as_ref().and_then(|snap| super::budget::samples_for(s, snap)))
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
    let (outcomes, errors) = actuate(policy, &decision.enforce, &me, &annotation_reason, now, ctx).await;

    // ---- status
    let mut status = ErrorBudgetPolicyStatus {
        observed_generation: generation,
        stage: decision.stage_name.clone(),
        since: decision.since.map(Time),
        reason: decision.reason.clone(),
        quiet_since: decision.quiet_since.map(Time),
        enforced: enforced_list(&outcomes, &previous.enforced),
        history: previous.history.clone(),
        conditions: previous.conditions.clone(),
    };
    if let Some((from, to)) = &decision.transition {
        status.history.insert(
            0,
            Transition {
                time: Time(now),
                from: from.clone(),
                to: to.clone(),
                reason: decision.reason.clone(),
            },
        );
        status.history.truncate(policy::HISTORY);
    }
    let (ready, ready_reason, ready_message) = match (errors.first(), deleted.is_empty()) {
        (Some(e), _) => (FALSE, e.reason(), e.to_string()),
        (None, false) => {
            let list: Vec<String> = deleted.iter().map(ToString::to_string).collect();
            (
                FALSE,
                SLO_DELETED,
                format!(
                    "{}. It was deleted and no longer drives the policy; {} SLO(s) evaluated",
                    list.join("; "),
                    slos.len()
                ),
            )
        }
        (None, true) => (TRUE, "Evaluated", format!("{} SLO(s) evaluated", slos.len())),
    };
    set_condition(
        &mut status,
        &previous,
        READY,
        ready,
        ready_reason,
        &ready_message,
        generation,
        now,
    );
    let (enforcing, enforcing_reason, enforcing_message) =
        enforcing_condition(&valid, &decision, &outcomes, &overrides);
    set_condition(
        &mut status,
        &previous,
        ENFORCING,
        enforcing,
        enforcing_reason,
        &enforcing_message,
        generation,
        now,
    );
    let (data, data_reason, data_message) = data_condition(&reading, &decision);
    set_condition(
        &mut status,
        &previous,
        DATA_AVAILABLE,
        data,
        data_reason,
        &data_message,
        generation,
        now,
    );
    let (overridden, o_reason, o_message) = match overrides.active.first() {
        Some((o, why, until)) => (
            TRUE,
            "OverrideActive",
            format!(
                "ErrorBudgetOverride {o} ({why}) lifts the policy until {}",
                time(*until)
            ),
        ),
        None => (FALSE, "NoOverride", "no active ErrorBudgetOverride".to_string()),
    };
    set_condition(
        &mut status,
        &previous,
        OVERRIDDEN,
        overridden,
        o_reason,
        &o_message,
        generation,
        now,
    );
    write_status(policy, &previous, &status, ctx).await?;

    // ---- Events and metrics
    let policy_ref = policy.object_ref(&());
    if let Some((from, to)) = &decision.transition {
        let (type_, reason, note) = transition_event(&valid, from, to, &decision, &outcomes);
        // The recorder folds Events with the same reason and action into one series whatever
        // the note says: each transition gets its own action.
        let action = format!("Stage:{}->{}", none_if_empty(from), none_if_empty(to));
        super::publish(&ctx.recorder, &policy_ref, type_, reason, &action, note).await;
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
        .set(i64::from(overridden == TRUE));
    let was_available = previous
        .conditions
        .iter()
        .any(|c| c.type_ == DATA_AVAILABLE && c.status == TRUE);
    let first_evaluation = !previous.conditions.iter().any(|c| c.type_ == DATA_AVAILABLE);
    let was_disputed = previous
        .conditions
        .iter()
        .any(|c| c.type_ == DATA_AVAILABLE && c.reason == DISPUTED_DATA);
    if data_reason == DISPUTED_DATA && !was_disputed {
        super::publish(
            &ctx.recorder,
            &policy_ref,
            EventType::Warning,
            DISPUTED_DATA,
            "Evaluate",
            data_message.clone(),
        )
        .await;
    } else if data == FALSE && (was_available || first_evaluation) {
        super::publish(
            &ctx.recorder,
            &policy_ref,
            EventType::Warning,
            "MissingData",
            "Evaluate",
            data_message.clone(),
        )
        .await;
    }
    report_outcomes(&outcomes, &ns, &me, &annotation_reason, ctx).await;
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
    me: &str,
    reason: &str,
    now: Timestamp,
    ctx: &Shared,
) -> (Vec<Outcome>, Vec<Error>) {
    if let Err(e) = ctx.still_leading() {
        return (vec![], vec![e]);
    }
    let ns = policy.namespace().unwrap_or_default();
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
    let spare_none = |_: &kube::api::DynamicObject| false;
    let spare_aborted = |o: &kube::api::DynamicObject| aborting && rollout::mid_update(o);
    let kinds: [(_, _, _, workload::Spared); 2] = [
        (
            workload::deployments(),
            &deployments,
            PolicyAction::FreezeDeployments,
            &spare_none,
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
        let cached = ctx.stores.workloads_in(&ns, kind.kind == "Rollout");
        match workload::reconcile(&ctx.client, &ns, &kind, cached, sel, spared, me, want, reason, now).await {
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
        match rollout::abort(&ctx.client, &ns, ctx.stores.workloads_in(&ns, true), sel).await {
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
    let key = (ns.clone(), policy.name_any());
    if want || freezes || ctx.may_hold_namespace(&key) {
        match namespace::reconcile(&ctx.client, &ns, me, want, reason, now).await {
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
                ctx.metrics.write(CONTROLLER, o.kind);
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

/// `status.enforced` from what the objects say now; entries keep their `since`.
fn enforced_list(outcomes: &[Outcome], previous: &[Enforced]) -> Vec<Enforced> {
    let mut list: Vec<Enforced> = outcomes
        .iter()
        .filter(|o| o.holding)
        .map(|o| {
            let action = o.action.as_str().to_string();
            let kept = previous
                .iter()
                .find(|e| e.kind == o.kind && e.name == o.name && e.action == action)
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

fn describe(outcomes: &[Outcome], filter: impl Fn(&Outcome) -> bool) -> String {
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

fn enforcing_condition(
    valid: &ValidPolicy,
    decision: &Decision,
    outcomes: &[Outcome],
    overrides: &Overrides,
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
    if let Some((o, why, until)) = overrides.active.first() {
        return (
            FALSE,
            "Overridden",
            format!(
                "ErrorBudgetOverride {o} ({why}) lifts stage {} until {}",
                decision.stage_name,
                time(*until)
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

fn data_condition(reading: &Reading, decision: &Decision) -> (&'static str, &'static str, String) {
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

fn none_if_empty(stage: &str) -> &str {
    if stage.is_empty() { "none" } else { stage }
}

fn transition_event(
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

/// An Event on every object acted upon.
async fn report_outcomes(outcomes: &[Outcome], namespace: &str, me: &str, reason: &str, ctx: &Shared) {
    for o in outcomes {
        let (type_, event_reason, note) = match o.change {
            Change::Claimed => (EventType::Warning, "Freeze", format!("{} by {reason}", verb(o))),
            Change::Reheld => (
                EventType::Warning,
                "Freeze",
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
            Change::NotClaimed | Change::Unchanged => continue,
        };
        let reference = object_reference(o, namespace);
        super::publish(&ctx.recorder, &reference, type_, event_reason, o.action.as_str(), note).await;
    }
}

fn verb(o: &Outcome) -> &'static str {
    match o.kind {
        "Namespace" => "frozen",
        _ => "paused",
    }
}

fn object_reference(o: &Outcome, namespace: &str) -> ObjectReference {
    let (api_version, namespace) = match o.kind {
        "Deployment" => ("apps/v1", Some(namespace.to_string())),
        "Rollout" => ("argoproj.io/v1alpha1", Some(namespace.to_string())),
        // Namespace Events go into the namespace itself, where its users look.
        _ => ("v1", Some(o.name.clone())),
    };
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(o.kind.into()),
        name: Some(o.name.clone()),
        namespace,
        ..ObjectReference::default()
    }
}

/// Releases everything the policy holds before it goes away.
async fn cleanup(policy: &ErrorBudgetPolicy, ctx: &Shared) -> Result<Action> {
    let ns = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let me = enforce::holder(&ns, &name);
    // Whatever this term saw, the Namespace is checked too.
    ctx.forget(&(ns.clone(), name.clone()));
    let (outcomes, errors) = actuate(policy, &BTreeSet::new(), &me, "", Timestamp::now(), ctx).await;
    report_outcomes(&outcomes, &ns, &me, "", ctx).await;
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let released = describe(&outcomes, |o| o.change == Change::Released);
    super::publish(
        &ctx.recorder,
        &policy.object_ref(&()),
        EventType::Normal,
        "Release",
        "Delete",
        format!("policy deleted; released {released}"),
    )
    .await;
    ctx.forget(&(ns.clone(), name.clone()));
    let stage = policy.status.as_ref().map(|s| s.stage.clone()).unwrap_or_default();
    ctx.metrics.policy_stage.remove(&StageLabels {
        namespace: ns,
        policy: name,
        stage,
    });
    Ok(Action::await_change())
}

#[allow(clippy::too_many_arguments)]
fn set_condition(
    status: &mut ErrorBudgetPolicyStatus,
    previous: &ErrorBudgetPolicyStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let c: Condition = condition::next_condition(&previous.conditions, type_, value, reason, message, generation, now);
    match status.conditions.iter_mut().find(|x| x.type_ == type_) {
        Some(slot) => *slot = c,
        None => status.conditions.push(c),
    }
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
    ctx: &Shared,
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
    api.patch_status(&policy.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| Error::api(e, || "update errorbudgetpolicies/status".into()))?;
    ctx.metrics.write(CONTROLLER, "status");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn enforced_entries_keep_their_since() {
        let t0 = Time(Timestamp::from_second(1_800_000_000).unwrap());
        let outcome = Outcome {
            kind: "Deployment",
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
}
