//! Actuators: make the cluster's objects match what a policy demands. Each is idempotent,
//! patches exactly the fields it owns (`spec.paused`, one label, `slo.warden.dev/*`
//! annotations; `status.abort` for an abort) with a JSON merge patch carrying the object's
//! `resourceVersion` (so two policies racing on one object cannot lose a claim), and reports
//! what it changed for Events, metrics and `status.enforced`.

pub mod claim;
pub mod namespace;
pub mod rollout;
pub mod workload;

use crate::api::Action;

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

#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub kind: &'static str,
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
