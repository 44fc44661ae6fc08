//! The policy reconciler's part of `rollbackRelease` and of a burn with no release behind it:
//! which releases are suspect (from the ledgers of the policy's SLOs), the plans made before
//! the freezes run (a workload being rolled back is not held paused), and what is reported.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::{Selector, SelectorExt};
use kube::runtime::events::EventType;

use super::context::PolicyContext;
use crate::api::{Action as PolicyAction, ErrorBudgetPolicy, ErrorBudgetPolicyStatus, ReleaseStatus, Rollback};
use crate::cache::CachedSlo;
use crate::enforce::rollback::{self, Planned};
use crate::enforce::{Actor, Kind};
use crate::error::Error;
use crate::metrics::ActionLabels;
use crate::policy::{Decision, ValidPolicy};
use crate::release::{Revision, Suspect};

/// When the burn a stage answers began: when the policy last entered a stage from none (this
/// reconcile, or as its history says), else when the stage in force was entered.
pub fn burn_began(previous: &ErrorBudgetPolicyStatus, decision: &Decision, now: Timestamp) -> Option<Timestamp> {
    decision.stage?;
    if let Some((from, _)) = &decision.transition
        && from.is_empty()
    {
        return Some(now);
    }
    previous
        .history
        .iter()
        .find(|t| t.from.is_empty())
        .map(|t| t.time.0)
        .filter(|t| decision.since.is_none_or(|since| *t <= since))
        .or(decision.since)
}

/// The ledgers of the policy's SLOs.
fn ledgers(slos: &[CachedSlo]) -> Vec<&[ReleaseStatus]> {
    slos.iter()
        .filter_map(|s| s.status.as_ref().map(|st| st.releases.as_slice()))
        .collect()
}

/// Whether the policy's targets select the workload `kind`/`name` (from the caches; a workload
/// not cached is not selected: its release could not be in a ledger either).
fn targeted(policy: &ErrorBudgetPolicy, ctx: &PolicyContext, kind: Kind, name: &str) -> bool {
    let selector = match kind {
        Kind::Deployment => policy.spec.targets.deployments.as_ref(),
        Kind::Rollout => policy.spec.targets.rollouts.as_ref(),
        Kind::Namespace => None,
    };
    let Some(selector) = selector.and_then(|s| Selector::try_from(s.clone()).ok()) else {
        return false;
    };
    let mut found = false;
    ctx.stores
        .for_each_workload(&policy.namespace().unwrap_or_default(), kind, |w| {
            found |= w.name_any() == name && selector.matches(w.labels());
        });
    found
}

/// What the reconciler knows of the releases behind the burn in force.
pub struct Releases {
    pub began: Option<Timestamp>,
    pub suspects: Vec<Suspect>,
    /// Said after the stage's reason when no workload of the namespace released in the window.
    pub note: Option<String>,
}

/// The suspect releases of the burn in force, and whether any release at all (a target's or
/// another workload's of the namespace) started in the window before it.
pub fn releases(
    policy: &ErrorBudgetPolicy,
    valid: &ValidPolicy,
    decision: &Decision,
    slos: &[CachedSlo],
    previous: &ErrorBudgetPolicyStatus,
    ctx: &PolicyContext,
    now: Timestamp,
) -> Releases {
    let window = SignedDuration::from_millis(i64::try_from(valid.suspect_window.as_millis()).unwrap_or(i64::MAX));
    let Some(began) = burn_began(previous, decision, now) else {
        return Releases {
            began: None,
            suspects: vec![],
            note: None,
        };
    };
    let ledgers = ledgers(slos);
    // A workload taken back during this burn is not suspect again: the revision its rollback
    // made (recorded when first seen, after a restart maybe after the burn began) is ours.
    let taken_back = taken_back_since(&previous.rollbacks, Some(began));
    let suspects = crate::release::suspects(ledgers.iter().copied(), began, window, |kind, name| {
        !taken_back.contains(&(kind, name.to_string())) && targeted(policy, ctx, kind, name)
    });
    let from = began.checked_sub(window).unwrap_or(began);
    let in_window = |t: Timestamp| t >= from && t <= began;
    let any_release = !suspects.is_empty()
        || ledgers.iter().flat_map(|l| l.iter()).any(|r| in_window(r.started_at.0))
        || ctx
            .stores
            .revisions_in(&policy.namespace().unwrap_or_default())
            .is_none_or(|revisions| revisions.iter().filter_map(Revision::started).any(in_window));
    let note = (!any_release).then(|| {
        format!(
            "no release in the {} before the burn: look at dependencies, traffic and security",
            valid.suspect_window
        )
    });
    Releases {
        began: Some(began),
        suspects,
        note,
    }
}

/// Whether the revision a suspect would go back to is older than the suspect window: one that
/// started in it may be part of the same bad change.
pub fn earlier_ok<'a>(
    slos: &'a [CachedSlo],
    began: Timestamp,
    window: SignedDuration,
) -> impl Fn(&Suspect, &crate::release::undo::Version, &DynamicObject) -> Result<(), String> + Sync + 'a {
    move |suspect, to, rs| {
        let from = began.checked_sub(window).unwrap_or(began);
        let started = crate::release::started(ledgers(slos), suspect.kind, &suspect.name, to.revision)
            .or_else(|| Revision::of(rs).and_then(|r| r.started()));
        match started {
            Some(t) if t >= from => Err(format!(
                "the revision before, {to}, started at {} within the suspect window too: roll back by hand to a revision you trust",
                crate::api::rfc3339(t)
            )),
            _ => Ok(()),
        }
    }
}

/// Plans the rollback of each suspect. Only while the stage holds on data (not on missing or
/// disputed data, nor while it waits out `releaseAfter`): a rollback is never decided on a
/// guess.
pub async fn plan(
    suspects: &[Suspect],
    decision: &Decision,
    actor: &Actor<'_>,
    earlier_ok: rollback::EarlierOk<'_>,
) -> (Vec<Planned>, Vec<Error>) {
    let (mut plans, mut errors) = (Vec::new(), Vec::new());
    if !decision.demanded.contains(&PolicyAction::RollbackRelease) || !decision.holds_on_data {
        return (plans, errors);
    }
    for s in suspects {
        match rollback::plan(actor, s, earlier_ok).await {
            Ok(Some(p)) => plans.push(p),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (plans, errors)
}

/// The workloads the freezes must not hold paused: those being rolled back, and those rolled
/// back since the burn began (`previous` records): a pause would stop their rollout halfway.
/// The namespace freeze keeps refusing new releases of them.
pub fn spared(
    plans: &[Planned],
    enforcing: bool,
    previous: &[Rollback],
    began: Option<Timestamp>,
) -> BTreeSet<(Kind, String)> {
    if !enforcing {
        return BTreeSet::new();
    }
    plans
        .iter()
        .filter(|p| p.spares())
        .map(|p| (p.suspect.kind, p.suspect.name.clone()))
        .chain(taken_back_since(previous, began))
        .collect()
}

/// The workloads `previous` records say were rolled back (or aborted) since the burn `began`.
fn taken_back_since(previous: &[Rollback], began: Option<Timestamp>) -> BTreeSet<(Kind, String)> {
    let kind = |k: &str| {
        if k == "Rollout" {
            Kind::Rollout
        } else {
            Kind::Deployment
        }
    };
    previous
        .iter()
        .filter(|r| matches!(r.result.as_str(), "RolledBack" | "Aborted"))
        .filter(|r| began.is_some_and(|b| r.time.0 >= b))
        .map(|r| (kind(&r.kind), r.name.clone()))
        .collect()
}

/// Carries out the plans (or, in a dry run or under an override, only reports them).
///
/// A release the workload says was rolled back already gets a record only when the status has
/// none (the operator stopped between the rollback and its status write).
pub async fn carry_out(
    plans: &[Planned],
    enforcing: bool,
    previous: &[Rollback],
    actor: &Actor<'_>,
    earlier_ok: rollback::EarlierOk<'_>,
) -> (Vec<Rollback>, Vec<Error>) {
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    for p in plans {
        let recorded = previous.iter().any(|r| {
            (r.kind.as_str(), r.name.as_str(), r.revision)
                == (p.suspect.kind.as_str(), p.suspect.name.as_str(), p.suspect.revision)
        });
        if matches!(p.undo, crate::release::undo::Undo::Done) && recorded {
            continue;
        }
        if !enforcing {
            records.push(rollback::dry_run(p, actor.now));
            continue;
        }
        match rollback::carry_out(actor, p, earlier_ok).await {
            Ok(r) => records.push(r),
            Err(e) => errors.push(e),
        }
    }
    (records, errors)
}

/// Events on the policy and the workload for each record that says something new, and the
/// action counter.
pub async fn report(fresh: &[&Rollback], policy: &ErrorBudgetPolicy, actor: &Actor<'_>, ctx: &PolicyContext) {
    use kube::Resource;
    for r in fresh {
        let (type_, reason) = match r.result.as_str() {
            "RolledBack" | "Aborted" | "DryRun" => (EventType::Normal, "RollbackRelease"),
            _ => (EventType::Warning, "RollbackRefused"),
        };
        let kind = if r.kind == "Rollout" {
            Kind::Rollout
        } else {
            Kind::Deployment
        };
        let workload = crate::policy::status::reference(kind, &r.name, actor.namespace);
        super::events::publish(
            &ctx.recorder,
            &workload,
            type_,
            reason,
            "rollbackRelease",
            r.message.clone(),
        )
        .await;
        super::events::publish(
            &ctx.recorder,
            &policy.object_ref(&()),
            type_,
            reason,
            "rollbackRelease",
            format!("{} {}: {}", r.kind, r.name, r.message),
        )
        .await;
        let result = match r.result.as_str() {
            "RolledBack" => "rolled_back",
            "Aborted" => "aborted",
            "DryRun" => "dry_run",
            "GitOps" => "gitops",
            _ => "refused",
        };
        ctx.metrics
            .enforcement_actions
            .get_or_create(&ActionLabels {
                action: PolicyAction::RollbackRelease.as_str(),
                result,
            })
            .inc();
        if result == "rolled_back" || result == "aborted" {
            ctx.metrics.write("policy", kind.as_str());
        }
    }
}
