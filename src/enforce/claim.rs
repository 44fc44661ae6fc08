//! Claims: who holds an object paused (or a namespace frozen), recorded on the object itself.
//!
//! `slo.warden.dev/paused-by` (or `frozen-by`) lists the `namespace/policy` of every policy
//! holding the object. A policy claims an object only when it is not held already, or when it is
//! held by other policies (then it adds itself to the list); an object held with no list was
//! held by a person and is never claimed, so it is never released by us. On release a policy
//! removes itself from the list and lets go only when the list becomes empty.
//!
//! Deployments and Rollouts held by any policy also carry the label [`HELD_LABEL`], so the
//! admission webhook that keeps holds from being lifted by hand is called for them only. It is
//! set and removed with the claim list, in the same patch; an object claimed before the label
//! existed gets it at the next reconcile ([`Plan::Relabel`]).
//!
//! The plan is pure: what the object says now, who we are, whether we want it held → the
//! change to make. The actuators turn it into a patch of exactly these fields.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The annotation keys of one kind of hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keys {
    pub by: &'static str,
    pub at: &'static str,
    pub reason: &'static str,
}

/// Deployments and Rollouts: `spec.paused`.
pub const PAUSE: Keys = Keys {
    by: "slo.warden.dev/paused-by",
    at: "slo.warden.dev/paused-at",
    reason: "slo.warden.dev/pause-reason",
};

/// Namespaces: the [`FROZEN_LABEL`] label.
pub const FREEZE: Keys = Keys {
    by: "slo.warden.dev/frozen-by",
    at: "slo.warden.dev/frozen-at",
    reason: "slo.warden.dev/freeze-reason",
};

/// The label admission keys on: `slo.warden.dev/frozen: "true"`.
pub const FROZEN_LABEL: &str = "slo.warden.dev/frozen";

/// `slo.warden.dev/held: "true"` on every Deployment and Rollout a policy holds: the
/// `objectSelector` of the webhook that refuses lifting a hold by hand.
pub const HELD_LABEL: &str = "slo.warden.dev/held";

/// What an object says about its holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Paused (or labelled frozen) right now, by anyone.
    pub held: bool,
    /// The `*-by` list.
    pub holders: Vec<String>,
    /// Whether it carries [`HELD_LABEL`]; `None` for kinds without it (Namespaces).
    pub labelled: Option<bool>,
}

impl Observed {
    pub fn new(held: bool, annotations: &BTreeMap<String, String>, keys: Keys) -> Self {
        let holders = annotations
            .get(keys.by)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            held,
            holders,
            labelled: None,
        }
    }

    /// Reads [`HELD_LABEL`] too (Deployments and Rollouts).
    pub fn with_label(mut self, labels: &BTreeMap<String, String>) -> Self {
        self.labelled = Some(labels.get(HELD_LABEL).map(String::as_str) == Some("true"));
        self
    }

    pub fn holds(&self, me: &str) -> bool {
        self.holders.iter().any(|h| h == me)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Already as wanted.
    Nothing,
    /// Held by a person (no holders list): not ours to claim, and never ours to release.
    NotClaimed,
    /// Make the object say this. `held: None` leaves `spec.paused` (or the label) alone;
    /// `stamp` sets `*-at`/`*-reason` (a first claim); an empty `holders` removes our
    /// annotations altogether (and [`HELD_LABEL`] where the kind has it).
    Change {
        held: Option<bool>,
        holders: Vec<String>,
        stamp: bool,
    },
    /// The claim is as wanted but [`HELD_LABEL`] is not: missing (claimed before the label
    /// existed) or left without a claim. Set it to match the holders list.
    Relabel,
}

/// What to change so that `me` holds the object (`want`) or does not.
pub fn plan(observed: &Observed, me: &str, want: bool) -> Plan {
    match claim(observed, me, want) {
        // Labelled exactly while some policy holds it.
        Plan::Nothing if observed.labelled == Some(observed.holders.is_empty()) => Plan::Relabel,
        plan => plan,
    }
}

fn claim(observed: &Observed, me: &str, want: bool) -> Plan {
    let mine = observed.holds(me);
    match (want, mine) {
        // Someone unpaused an object we hold: hold it again.
        (true, true) if !observed.held => Plan::Change {
            held: Some(true),
            holders: observed.holders.clone(),
            stamp: false,
        },
        (true, true) | (false, false) => Plan::Nothing,
        (true, false) if observed.held && observed.holders.is_empty() => Plan::NotClaimed,
        (true, false) => {
            let mut holders = observed.holders.clone();
            holders.push(me.to_string());
            Plan::Change {
                held: (!observed.held).then_some(true),
                holders,
                stamp: observed.holders.is_empty(),
            }
        }
        (false, true) => {
            let holders: Vec<String> = observed.holders.iter().filter(|h| *h != me).cloned().collect();
            Plan::Change {
                // The last holder lets go; if a person already unpaused it, leave it be.
                held: (holders.is_empty() && observed.held).then_some(false),
                holders,
                stamp: false,
            }
        }
    }
}

/// The `metadata.annotations` part of a merge patch for a [`Plan::Change`].
pub fn annotations_patch(keys: Keys, holders: &[String], stamp: bool, reason: &str, now: jiff::Timestamp) -> Value {
    let mut a = Map::new();
    if holders.is_empty() {
        for k in [keys.by, keys.at, keys.reason] {
            a.insert(k.into(), Value::Null);
        }
    } else {
        a.insert(keys.by.into(), json!(holders.join(",")));
        if stamp {
            a.insert(keys.at.into(), json!(crate::api::rfc3339(now)));
            a.insert(keys.reason.into(), json!(reason));
        }
    }
    Value::Object(a)
}

/// The [`HELD_LABEL`] value that goes with a holders list, for a merge patch.
pub fn held_label(holders: &[String]) -> Value {
    if holders.is_empty() { Value::Null } else { json!("true") }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn obs(held: bool, holders: &[&str]) -> Observed {
        Observed {
            held,
            holders: holders.iter().map(|s| s.to_string()).collect(),
            labelled: None,
        }
    }

    fn apply(o: &Observed, p: &Plan) -> Observed {
        match p {
            Plan::Change { held, holders, .. } => Observed {
                held: held.unwrap_or(o.held),
                labelled: o.labelled.map(|_| !holders.is_empty()),
                holders: holders.clone(),
            },
            Plan::Relabel => Observed {
                labelled: Some(!o.holders.is_empty()),
                ..o.clone()
            },
            _ => o.clone(),
        }
    }

    #[test]
    fn claims_releases_and_shares() {
        let change = |held: Option<bool>, holders: &[&str], stamp: bool| Plan::Change {
            held,
            holders: holders.iter().map(|s| s.to_string()).collect(),
            stamp,
        };
        assert_eq!(
            plan(&obs(false, &[]), "ns/a", true),
            change(Some(true), &["ns/a"], true)
        );
        assert_eq!(plan(&obs(true, &["ns/a"]), "ns/a", true), Plan::Nothing);
        assert_eq!(plan(&obs(true, &[]), "ns/a", true), Plan::NotClaimed);
        assert_eq!(plan(&obs(true, &[]), "ns/a", false), Plan::Nothing);
        assert_eq!(
            plan(&obs(true, &["ns/b"]), "ns/a", true),
            change(None, &["ns/b", "ns/a"], false)
        );
        assert_eq!(
            plan(&obs(true, &["ns/b", "ns/a"]), "ns/a", false),
            change(None, &["ns/b"], false)
        );
        assert_eq!(
            plan(&obs(true, &["ns/a"]), "ns/a", false),
            change(Some(false), &[], false)
        );
        assert_eq!(
            plan(&obs(false, &["ns/a"]), "ns/a", true),
            change(Some(true), &["ns/a"], false)
        );
        assert_eq!(plan(&obs(false, &["ns/a"]), "ns/a", false), change(None, &[], false));
    }

    #[test]
    fn the_held_label_follows_the_claim() {
        let labelled = |held: bool, holders: &[&str], label: bool| Observed {
            labelled: Some(label),
            ..obs(held, holders)
        };
        // Claimed before the label existed: only the label is added.
        assert_eq!(plan(&labelled(true, &["ns/a"], false), "ns/a", true), Plan::Relabel);
        assert_eq!(plan(&labelled(true, &["ns/a"], true), "ns/a", true), Plan::Nothing);
        // Held by another policy: still labelled, whatever this one wants.
        assert_eq!(plan(&labelled(true, &["ns/b"], false), "ns/a", false), Plan::Relabel);
        // Left without a claim: the label goes.
        assert_eq!(plan(&labelled(false, &[], true), "ns/a", false), Plan::Relabel);
        assert_eq!(plan(&labelled(false, &[], false), "ns/a", false), Plan::Nothing);
        // A person's pause is never claimed, labelled or not.
        assert_eq!(plan(&labelled(true, &[], false), "ns/a", true), Plan::NotClaimed);
        // Kinds without the label never relabel.
        assert_eq!(plan(&obs(true, &["ns/a"]), "ns/a", true), Plan::Nothing);
        assert_eq!(held_label(&["ns/a".into()]), json!("true"));
        assert_eq!(held_label(&[]), Value::Null);
        let labels = BTreeMap::from([(HELD_LABEL.to_string(), "true".to_string())]);
        assert_eq!(
            Observed::new(true, &BTreeMap::new(), PAUSE)
                .with_label(&labels)
                .labelled,
            Some(true)
        );
    }

    #[test]
    fn parses_and_writes_the_annotations() {
        let a = BTreeMap::from([(PAUSE.by.to_string(), "shop/x, shop/y,".to_string())]);
        assert_eq!(Observed::new(true, &a, PAUSE).holders, ["shop/x", "shop/y"]);
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(
            annotations_patch(PAUSE, &["shop/x".into()], true, "why", now),
            json!({"slo.warden.dev/paused-by": "shop/x", "slo.warden.dev/paused-at": "2027-01-15T08:00:00Z", "slo.warden.dev/pause-reason": "why"})
        );
        assert_eq!(
            annotations_patch(FREEZE, &[], false, "", now),
            json!({"slo.warden.dev/frozen-by": null, "slo.warden.dev/frozen-at": null, "slo.warden.dev/freeze-reason": null})
        );
    }

    proptest! {
        /// Whatever several policies want, in any order: an object a person paused is never
        /// claimed and never unpaused; an object stays held while any policy wants it; and
        /// once no policy wants it, an object we paused is unpaused; the held label is there
        /// exactly while some policy holds it.
        #[test]
        fn claims_are_safe(person_paused in any::<bool>(), steps in prop::collection::vec((0usize..3, any::<bool>()), 0..60)) {
            let policies = ["ns/a", "ns/b", "other/c"];
            let mut o = Observed { labelled: Some(false), ..obs(person_paused, &[]) };
            let mut wants = [false; 3];
            for (who, want) in steps {
                wants[who] = want;
                // Each policy reconciles in turn, as the controller does.
                for (i, me) in policies.iter().enumerate() {
                    let p = plan(&o, me, wants[i]);
                    o = apply(&o, &p);
                }
                prop_assert_eq!(o.labelled, Some(!o.holders.is_empty()), "labelled exactly while claimed");
                if person_paused {
                    prop_assert!(o.held, "a person's pause was lifted");
                    prop_assert!(o.holders.is_empty(), "a person's pause was claimed");
                } else {
                    prop_assert_eq!(o.held, wants.iter().any(|w| *w));
                    let holders: Vec<&str> = policies.iter().zip(wants).filter(|(_, w)| *w).map(|(p, _)| *p).collect();
                    let mut sorted = o.holders.clone();
                    sorted.sort();
                    prop_assert_eq!(sorted, holders);
                }
            }
        }
    }
}
