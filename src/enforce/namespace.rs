//! `freezeNamespace`: the label `slo.warden.dev/frozen: "true"` on the policy's own Namespace
//! (admission refuses releases in namespaces carrying it), with the same claim list as paused
//! workloads in `slo.warden.dev/frozen-by`.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::claim::{self, FREEZE, FROZEN_LABEL, Observed, Plan};
use super::workload::ATTEMPTS;
use super::{Change, Outcome};
use crate::api::Action;
use crate::error::{Error, Result};
use crate::rules::MANAGER;

pub fn is_frozen(ns: &Namespace) -> bool {
    ns.labels().get(FROZEN_LABEL).map(String::as_str) == Some("true")
}

pub async fn reconcile(
    client: &Client,
    namespace: &str,
    me: &str,
    want: bool,
    reason: &str,
    now: jiff::Timestamp,
) -> Result<Outcome> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut ns = api.get(namespace).await.map_err(Error::Kube)?;
    let mut attempt = 1;
    let change = loop {
        let observed = Observed::new(is_frozen(&ns), ns.annotations(), FREEZE);
        let (held, holders, stamp) = match claim::plan(&observed, me, want) {
            Plan::Nothing => break Change::Unchanged,
            Plan::NotClaimed => break Change::NotClaimed,
            Plan::Change { held, holders, stamp } => (held, holders, stamp),
        };
        let mut meta = json!({
            "resourceVersion": ns.resource_version(),
            "annotations": claim::annotations_patch(FREEZE, &holders, stamp, reason, now),
        });
        match held {
            Some(true) => meta["labels"] = json!({FROZEN_LABEL: "true"}),
            Some(false) => meta["labels"] = json!({FROZEN_LABEL: null}),
            None => {}
        }
        match api
            .patch(
                namespace,
                &PatchParams::apply(MANAGER),
                &Patch::Merge(json!({"metadata": meta})),
            )
            .await
        {
            Ok(updated) => {
                let change = match (want, observed.holds(me)) {
                    (true, true) => Change::Reheld,
                    (true, false) => Change::Claimed,
                    _ => Change::Released,
                };
                ns = updated;
                break change;
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < ATTEMPTS => {
                attempt += 1;
                ns = api.get(namespace).await.map_err(Error::Kube)?;
            }
            Err(e) => return Err(Error::Kube(e)),
        }
    };
    let holding = want && change != Change::NotClaimed;
    Ok(Outcome {
        kind: "Namespace",
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
