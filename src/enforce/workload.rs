//! `spec.paused` on Deployments (`freezeDeployments`) and Argo Rollouts (`pauseRollouts`):
//! a paused Deployment creates no new ReplicaSet for a new pod template, a paused Rollout stays
//! at its step. Both are what `kubectl rollout pause` / `kubectl argo rollouts pause` do.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::{Selector, SelectorExt};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::claim::PAUSE;
use super::{Change, Hold, Outcome, hold};
use crate::api::Action;
use crate::error::{Error, Result};

/// A kind of workload with `spec.paused`.
pub struct Workload {
    pub kind: &'static str,
    pub resource: ApiResource,
    pub action: Action,
}

pub fn deployments() -> Workload {
    Workload {
        kind: "Deployment",
        resource: ApiResource::erase::<Deployment>(&()),
        action: Action::FreezeDeployments,
    }
}

/// The label selector as kube's matcher; an invalid selector is a spec problem.
pub fn selector(s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector, field: &str) -> Result<Selector> {
    Selector::try_from(s.clone()).map_err(|e| Error::InvalidSpec(format!("{field}: not a valid label selector: {e}")))
}

pub fn is_paused(obj: &DynamicObject) -> bool {
    obj.data["spec"]["paused"].as_bool() == Some(true)
}

/// Objects of a kind that must not be held even when selected.
pub type Spared<'a> = &'a (dyn Fn(&DynamicObject) -> bool + Sync);

/// `spec.paused`, claimed in `slo.warden.dev/paused-by` and labelled `slo.warden.dev/held`.
pub const PAUSED: Hold = Hold {
    keys: PAUSE,
    is_held: is_paused,
    set_held: |patch, paused| patch["spec"] = json!({ "paused": paused }),
    labelled: true,
};

/// The workloads of a namespace: from the watch cache (`cached`), else listed. `None` when the
/// kind is not served (a cluster without Argo Rollouts).
pub async fn objects(
    api: &Api<DynamicObject>,
    cached: Option<Vec<DynamicObject>>,
) -> Result<Option<Vec<DynamicObject>>> {
    if let Some(objects) = cached {
        return Ok(Some(objects));
    }
    match api.list(&ListParams::default()).await {
        Ok(l) => Ok(Some(l.items)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(super::refused(e, api, "list", "")),
    }
}

/// Makes every workload of the namespace (all of them: one we hold may no longer match the
/// selector; `cached`, else listed) match: held by `me` when `want`, selected and not
/// `spared`, else not by `me`. `None` when the kind is not served (a cluster without Argo
/// Rollouts).
#[allow(clippy::too_many_arguments)]
pub async fn reconcile(
    client: &Client,
    namespace: &str,
    workload: &Workload,
    cached: Option<Vec<DynamicObject>>,
    selected: Option<&Selector>,
    spared: Spared<'_>,
    me: &str,
    want: bool,
    reason: &str,
    now: jiff::Timestamp,
) -> Result<Option<Vec<Outcome>>> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &workload.resource);
    let Some(objects) = objects(&api, cached).await? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for obj in objects {
        let is_selected = selected.is_some_and(|s| s.matches(obj.labels()));
        let chosen = want && is_selected && !spared(&obj);
        let (obj, change) = hold(&api, obj, &PAUSED, me, chosen, reason, now).await?;
        let holding = chosen && change != Change::NotClaimed;
        if change == Change::Unchanged && !holding && !is_selected {
            continue;
        }
        let since = if holding {
            obj.annotations()
                .get(PAUSE.at)
                .cloned()
                .or_else(|| Some(now.to_string()))
        } else {
            None
        };
        out.push(Outcome {
            kind: workload.kind,
            name: obj.name_any(),
            action: workload.action,
            change,
            holding,
            selected: is_selected,
            since,
        });
    }
    Ok(Some(out))
}
