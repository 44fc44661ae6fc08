//! Actuators: make the cluster's objects match what a policy demands. Each is idempotent,
//! patches exactly the fields it owns (`spec.paused`, the `slo.warden.dev/frozen` or
//! `slo.warden.dev/held` label, `slo.warden.dev/*` annotations; `status.abort` for an abort) with a JSON merge patch carrying the object's
//! `resourceVersion` (so two policies racing on one object cannot lose a claim), and reports
//! what it changed for Events, metrics and `status.enforced`.

pub mod claim;
pub mod namespace;
pub mod rollback;
pub mod rollout;
pub mod workload;

use kube::api::{DynamicObject, Patch};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::api::Action;
use crate::error::{Error, Result};
use claim::{Keys, Observed, Plan};

/// What happened to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// We started holding it.
    Claimed,
    /// We held it and let go.
    Released,
    /// We held it, someone undid the hold, we put it back.
    Reheld,
    /// A Rollout mid-update was aborted.
    Aborted,
    /// Wanted, but a person holds it already: left alone.
    NotClaimed,
    /// Nothing to do.
    Unchanged,
}

pub use crate::kind::Kind;

#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    pub change: Change,
    /// We hold it after this (for `status.enforced`).
    pub holding: bool,
    /// Matched by the policy's targets (held or not: dry run and overrides list these).
    pub selected: bool,
    /// When it was first held (`*-at`), if known.
    pub since: Option<String>,
}

impl Outcome {
    /// The `result` label of `slo_warden_enforcement_actions_total`.
    pub fn result(&self) -> Option<&'static str> {
        match self.change {
            Change::Claimed => Some("claimed"),
            Change::Released => Some("released"),
            Change::Reheld => Some("reheld"),
            Change::Aborted => Some("aborted"),
            Change::NotClaimed => Some("not_claimed"),
            Change::Unchanged => None,
        }
    }
}

/// The `namespace/policy` a claim names.
pub fn holder(namespace: &str, policy: &str) -> String {
    format!("{namespace}/{policy}")
}

/// How a kind shows that it is held: its claim annotations, whether it is held now, and the
/// patch fields that hold it or let it go; `labelled`: it carries [`claim::HELD_LABEL`] while
/// claimed.
pub struct Hold {
    pub keys: Keys,
    pub is_held: fn(&DynamicObject) -> bool,
    pub set_held: fn(&mut Value, bool),
    pub labelled: bool,
}

/// What every actuator call of one policy reconcile shares: the client, the policy's namespace
/// (its workloads and its Namespace), who claims (`me`: the `namespace/policy` the claims
/// name), why (the claim's reason; empty when letting go) and when.
pub struct Actor<'a> {
    pub client: &'a kube::Client,
    pub namespace: &'a str,
    pub me: &'a str,
    pub reason: &'a str,
    pub now: jiff::Timestamp,
}

/// How often a claim is planned again on a fresh copy after a conflict (another policy, a
/// person or a controller wrote the object in between).
pub const ATTEMPTS: usize = 4;

/// A failed call to `verb` the object `name` (empty for the collection) of `api`: `Forbidden`
/// naming the request when RBAC refuses it.
pub fn refused(e: kube::Error, api: &Api<DynamicObject>, verb: &str, name: &str) -> Error {
    Error::api(e, || {
        let url = api.resource_url();
        if name.is_empty() {
            format!("{verb} {url}")
        } else {
            format!("{verb} {url}/{name}")
        }
    })
}

/// Makes one object held by `me` or not (`chosen`), with a merge patch of exactly the claim
/// fields carrying the object's `resourceVersion`; on a conflict, reads it again and plans
/// again. Returns the object as it is now and what changed.
pub async fn hold(
    api: &Api<DynamicObject>,
    mut obj: DynamicObject,
    how: &Hold,
    actor: &Actor<'_>,
    chosen: bool,
) -> Result<(DynamicObject, Change)> {
    let (me, reason, now) = (actor.me, actor.reason, actor.now);
    let mut attempt = 1;
    loop {
        let mut observed = Observed::new((how.is_held)(&obj), obj.annotations(), how.keys);
        if how.labelled {
            observed = observed.with_label(obj.labels());
        }
        let planned = claim::plan(&observed, me, chosen);
        let mut patch = json!({"metadata": {"resourceVersion": obj.resource_version()}});
        let holders = match planned {
            Plan::Nothing => return Ok((obj, Change::Unchanged)),
            Plan::NotClaimed => return Ok((obj, Change::NotClaimed)),
            Plan::Relabel => observed.holders.clone(),
            Plan::Change {
                held,
                ref holders,
                stamp,
            } => {
                patch["metadata"]["annotations"] = claim::annotations_patch(how.keys, holders, stamp, reason, now);
                if let Some(held) = held {
                    (how.set_held)(&mut patch, held);
                }
                holders.clone()
            }
        };
        if how.labelled {
            patch["metadata"]["labels"][claim::HELD_LABEL] = claim::held_label(&holders);
        }
        let name = obj.name_any();
        match api
            .patch(&name, &crate::api::merge_params(), &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => {
                let change = match (&planned, chosen, observed.holds(me)) {
                    // Bookkeeping: nothing was held or let go.
                    (Plan::Relabel, ..) => Change::Unchanged,
                    (_, true, true) => Change::Reheld,
                    (_, true, false) => Change::Claimed,
                    _ => Change::Released,
                };
                return Ok((updated, change));
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < ATTEMPTS => {
                attempt += 1;
                obj = api.get(&name).await.map_err(|e| refused(e, api, "get", &name))?;
            }
            Err(e) => return Err(refused(e, api, "patch", &name)),
        }
    }
}
