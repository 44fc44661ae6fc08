//! `freezeNamespace`: the label `slo.warden.dev/frozen: "true"` on the policy's own Namespace
//! (admission refuses releases in namespaces carrying it), with the same claim list as paused
//! workloads in `slo.warden.dev/frozen-by`.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ApiResource, DynamicObject};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::claim::{FREEZE, FROZEN_LABEL};
use super::{Actor, Change, Hold, Kind, Outcome, hold};
use crate::api::Action;
use crate::error::Result;

pub fn is_frozen(ns: &DynamicObject) -> bool {
    ns.labels().get(FROZEN_LABEL).map(String::as_str) == Some("true")
}

/// The frozen label, claimed in `slo.warden.dev/frozen-by`.
pub const FROZEN: Hold = Hold {
    keys: FREEZE,
    is_held: is_frozen,
    set_held: |patch, frozen| {
        patch["metadata"]["labels"] = json!({ FROZEN_LABEL: if frozen { json!("true") } else { json!(null) } })
    },
    // The frozen label is the Namespace's own marker; editors cannot change Namespaces.
    labelled: false,
};

pub async fn reconcile(actor: &Actor<'_>, want: bool) -> Result<Outcome> {
    let (namespace, now) = (actor.namespace, actor.now);
    let api: Api<DynamicObject> = Api::all_with(actor.client.clone(), &ApiResource::erase::<Namespace>(&()));
    let ns = api
        .get(namespace)
        .await
        .map_err(|e| super::refused(e, &api, "get", namespace))?;
    let (ns, change) = hold(&api, ns, &FROZEN, actor, want).await?;
    let holding = want && change != Change::NotClaimed;
    Ok(Outcome {
        kind: Kind::Namespace,
        name: namespace.to_string(),
        action: Action::FreezeNamespace,
        change,
        holding,
        selected: true,
        since: holding.then(|| {
            ns.annotations()
                .get(FREEZE.at)
                .cloned()
                .unwrap_or_else(|| now.to_string())
        }),
    })
}
