//! Argo Rollouts (`argoproj.io/v1alpha1`): `pauseRollouts` goes through [`super::workload`]
//! (`spec.paused`, never the step pauses in `status.pauseConditions`); `abortRollouts` sets
//! `status.abort: true` through the status subresource, as `kubectl argo rollouts abort` does,
//! which scales the canary down and sends traffic back to the stable ReplicaSet. An abort is
//! not undone on release: retrying the update is the owner's call (`kubectl argo rollouts
//! retry rollout NAME`). The Rollouts controller ignores an abort while `spec.paused` is set, so
//! a stage that aborts does not hold a pause on the Rollouts it aborts.

use kube::api::{ApiResource, DynamicObject, Patch};
use kube::core::{GroupVersionKind, Selector, SelectorExt};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::workload::{Reconciled, Workload};
use super::{Actor, Change, Kind, Outcome};
use crate::api::Action;
use crate::error::{Error, Result};

pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"), "rollouts")
}

pub fn rollouts() -> Workload {
    Workload {
        kind: Kind::Rollout,
        resource: resource(),
        action: Action::PauseRollouts,
    }
}

/// An update is in progress: the pods of the current template are not the stable ones yet (an
/// aborted update counts too). Read only once the Rollouts controller has seen the current
/// generation.
pub fn mid_update(obj: &DynamicObject) -> bool {
    let status = &obj.data["status"];
    let observed = status["observedGeneration"]
        .as_str()
        .map(String::from)
        .or_else(|| status["observedGeneration"].as_i64().map(|g| g.to_string()));
    if observed.is_none() || observed != obj.metadata.generation.map(|g| g.to_string()) {
        return false;
    }
    match (status["currentPodHash"].as_str(), status["stableRS"].as_str()) {
        (Some(current), Some(stable)) => !current.is_empty() && !stable.is_empty() && current != stable,
        _ => false,
    }
}

/// Whether the Rollout `name` is aborted, read fresh.
pub async fn is_aborted_by_name(api: &Api<DynamicObject>, name: &str) -> Result<bool> {
    let obj = api.get(name).await.map_err(|e| super::refused(e, api, "get", name))?;
    Ok(is_aborted(&obj))
}

pub fn is_aborted(obj: &DynamicObject) -> bool {
    obj.data["status"]["abort"].as_bool() == Some(true)
}

/// Aborts the selected Rollouts (`cached`, else listed) that are mid-update and not aborted
/// yet; lists the aborted ones. One Rollout that cannot be aborted is reported with its error
/// and the others are still aborted.
pub async fn abort(actor: &Actor<'_>, cached: Option<Vec<DynamicObject>>, selected: &Selector) -> Result<Reconciled> {
    let namespace = actor.namespace;
    let api: Api<DynamicObject> = Api::namespaced_with(actor.client.clone(), namespace, &resource());
    let objects = super::workload::objects(&api, cached)
        .await?
        .ok_or(Error::RolloutCrdMissing)?;
    let mut out = Reconciled::default();
    for obj in objects.iter().filter(|o| selected.matches(o.labels())) {
        let change = if is_aborted(obj) {
            Change::Unchanged
        } else if mid_update(obj) {
            let patched = api
                .patch_status(
                    &obj.name_any(),
                    &crate::api::merge_params(),
                    &Patch::Merge(json!({"status": {"abort": true}})),
                )
                .await;
            if let Err(e) = patched {
                tracing::warn!(namespace, name = %obj.name_any(), error = %e, "cannot abort one Rollout; the others are still aborted");
                out.errors
                    .push(super::refused(e, &api, "patch", &format!("{}/status", obj.name_any())));
                continue;
            }
            Change::Aborted
        } else {
            continue;
        };
        out.outcomes.push(Outcome {
            kind: Kind::Rollout,
            name: obj.name_any(),
            action: Action::AbortRollouts,
            change,
            holding: true,
            selected: true,
            since: None,
        });
    }
    Ok(out)
}
