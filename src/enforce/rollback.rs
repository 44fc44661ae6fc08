//! `rollbackRelease`: each suspect release of a target workload rolled back to the revision
//! before, as [`crate::release::undo`] plans it from fresh copies (never from a cache: kubectl
//! reads them fresh too), once. A workload being rolled back is not held paused by the same
//! policy (a paused Deployment would not roll out the undo): the caller plans first, lets its
//! own pauses of those go, and then carries the plans out on copies read again.

use jiff::Timestamp;
use kube::Api;
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::Selector;
use serde_json::json;

use super::claim::{Observed, PAUSE};
use super::{Actor, Kind};
use crate::api::Rollback;
use crate::error::Result;
pub use crate::release::Suspect;
use crate::release::undo::{self, ROLLED_BACK_FROM, Undo, Version};

/// Whether the revision a suspect would go back to may be gone back to, or why not.
pub type EarlierOk<'a> = &'a (dyn Fn(&Suspect, &Version, &DynamicObject) -> std::result::Result<(), String> + Sync);

/// A suspect and what was planned for it.
#[derive(Clone, Debug)]
pub struct Planned {
    pub suspect: Suspect,
    pub undo: Undo,
}

impl Planned {
    /// Whether the policy must not hold the workload paused: it is being (or was) rolled back.
    pub fn spares(&self) -> bool {
        matches!(self.undo, Undo::Patch { .. } | Undo::Done | Undo::Abort { .. })
    }
}

fn resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Rollout => super::rollout::resource(),
        _ => super::workload::deployments().resource,
    }
}

/// Reads the workload and its ReplicaSets and plans its rollback; `None` when the workload is
/// gone.
pub async fn plan(actor: &Actor<'_>, suspect: &Suspect, earlier_ok: EarlierOk<'_>) -> Result<Option<Planned>> {
    let api: Api<DynamicObject> = Api::namespaced_with(actor.client.clone(), actor.namespace, &resource(suspect.kind));
    let workload = match api.get_opt(&suspect.name).await {
        Ok(Some(w)) => w,
        Ok(None) => return Ok(None),
        Err(e) => return Err(super::refused(e, &api, "get", &suspect.name)),
    };
    let selector = workload.data["spec"]["selector"].clone();
    let replica_sets =
        match serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(selector)
            .ok()
            .and_then(|s| Selector::try_from(s).ok())
        {
            Some(selector) => {
                let rs_api: Api<DynamicObject> = Api::namespaced_with(
                    actor.client.clone(),
                    actor.namespace,
                    &ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()),
                );
                rs_api
                    .list(&ListParams::default().labels(&selector.to_string()))
                    .await
                    .map_err(|e| super::refused(e, &rs_api, "list", ""))?
                    .items
            }
            None => Vec::new(),
        };
    // A pause this policy alone holds is its own, and is let go before the rollback is sent.
    let mut seen = workload.clone();
    let ours = Observed::new(true, workload.annotations(), PAUSE).holders == [actor.me.to_string()];
    if ours && suspect.kind == Kind::Deployment {
        seen.data["spec"]["paused"] = json!(false);
    }
    let mid_update = suspect.kind == Kind::Rollout && super::rollout::mid_update(&workload);
    let undo = undo::plan(
        suspect.kind,
        &seen,
        &replica_sets,
        suspect.revision,
        mid_update,
        |to, rs| earlier_ok(suspect, to, rs),
    );
    Ok(Some(Planned {
        suspect: suspect.clone(),
        undo,
    }))
}

/// Carries out a plan (read again first: the pause this policy held may have been let go since
/// it was made). Returns what the policy's status says of it.
pub async fn carry_out(actor: &Actor<'_>, planned: &Planned, earlier_ok: EarlierOk<'_>) -> Result<Rollback> {
    let s = &planned.suspect;
    let record = |result: &str, to: Option<&Version>, message: String| Rollback {
        kind: s.kind.as_str().to_string(),
        name: s.name.clone(),
        revision: s.revision,
        from: s.version().to_string(),
        to: to.map(ToString::to_string),
        result: result.to_string(),
        message,
        time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(actor.now),
    };
    let planned = match &planned.undo {
        Undo::Patch { .. } => match plan(actor, s, earlier_ok).await? {
            Some(p) => p,
            None => return Ok(record("Refused", None, format!("{} {} is gone", s.kind, s.name))),
        },
        _ => planned.clone(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(actor.client.clone(), actor.namespace, &resource(s.kind));
    Ok(match planned.undo {
        Undo::Patch { from, to, patch } => {
            let ops: json_patch::Patch = serde_json::from_value(patch)?;
            let params = PatchParams {
                field_manager: Some(crate::api::MANAGER.to_string()),
                ..PatchParams::default()
            };
            api.patch(&s.name, &params, &Patch::Json::<()>(ops))
                .await
                .map_err(|e| super::refused(e, &api, "patch", &s.name))?;
            record(
                "RolledBack",
                Some(&to),
                format!(
                    "rolled {} {} back from {from} to {to}: {from} started at {}, within the suspect window before the burn",
                    s.kind,
                    s.name,
                    crate::api::rfc3339(s.started_at)
                ),
            )
        }
        Undo::Abort { from } => {
            if !super::rollout::is_aborted_by_name(&api, &s.name).await? {
                api.patch_status(
                    &s.name,
                    &crate::api::merge_params(),
                    &Patch::Merge(json!({"status": {"abort": true}})),
                )
                .await
                .map_err(|e| super::refused(e, &api, "patch", &format!("{}/status", s.name)))?;
            }
            api.patch(
                &s.name,
                &crate::api::merge_params(),
                &Patch::Merge(json!({"metadata": {"annotations": {ROLLED_BACK_FROM: format!("{}: {}", from.revision, from.images.join(", "))}}})),
            )
            .await
            .map_err(|e| super::refused(e, &api, "patch", &s.name))?;
            record(
                "Aborted",
                None,
                format!(
                    "aborted Rollout {} mid-update: its stable ReplicaSet takes the traffic back from {from}",
                    s.name
                ),
            )
        }
        Undo::Done => record(
            "RolledBack",
            None,
            format!("{} {} was rolled back from {} already", s.kind, s.name, s.version()),
        ),
        Undo::GitOps { manager, from, to } => record(
            "GitOps",
            Some(&to),
            format!(
                "{} {} is managed by {manager}, whose self-heal would put {from} back: not rolled back here; it stays frozen. Revert it in Git to {to}",
                s.kind, s.name
            ),
        ),
        Undo::Refused(why) => record("Refused", None, format!("not rolled back: {why}")),
    })
}

/// What a dry run reports of a plan.
pub fn dry_run(planned: &Planned, now: Timestamp) -> Rollback {
    let s = &planned.suspect;
    let (result, to, message) = match &planned.undo {
        Undo::Patch { from, to, .. } => (
            "DryRun",
            Some(to.to_string()),
            format!("would roll {} {} back from {from} to {to} (dry run)", s.kind, s.name),
        ),
        Undo::Abort { from } => (
            "DryRun",
            None,
            format!("would abort Rollout {} mid-update, away from {from} (dry run)", s.name),
        ),
        Undo::Done => (
            "RolledBack",
            None,
            format!("{} {} was rolled back already", s.kind, s.name),
        ),
        Undo::GitOps { manager, from, to } => (
            "GitOps",
            Some(to.to_string()),
            format!(
                "{} {} is managed by {manager}: would not roll back {from}; revert it in Git to {to}",
                s.kind, s.name
            ),
        ),
        Undo::Refused(why) => ("Refused", None, format!("would not roll back: {why}")),
    };
    Rollback {
        kind: s.kind.as_str().to_string(),
        name: s.name.clone(),
        revision: s.revision,
        from: s.version().to_string(),
        to,
        result: result.to_string(),
        message,
        time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
    }
}
