//! Which admission requests are releases, and whether a frozen namespace lets them through.
//!
//! A release is the creation of a Deployment, StatefulSet, DaemonSet or Argo Rollout, or a
//! change of its pod template (`spec.template`, or a Rollout's `spec.workloadRef`). Scaling,
//! metadata, `spec.paused` and deletions are not releases. The freeze is read from the
//! Namespace the policy froze (`slo.warden.dev/frozen`, `frozen-by`, `frozen-at`,
//! `freeze-reason`), so any replica answers the same.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::enforce::claim::{FREEZE, FROZEN_LABEL, Observed};

/// The kinds whose pod template is a release.
pub const KINDS: [(&str, &str); 4] = [
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("argoproj.io", "Rollout"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Other,
}

/// What the Namespace says about its freeze.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Freeze {
    pub namespace: String,
    /// `namespace/policy` of the policies holding it; empty when frozen by hand.
    pub holders: Vec<String>,
    pub since: Option<String>,
    pub reason: Option<String>,
}

impl Freeze {
    /// `None` when the namespace is not frozen.
    pub fn of(
        namespace: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Option<Self> {
        if labels.get(FROZEN_LABEL).map(String::as_str) != Some("true") {
            return None;
        }
        Some(Self {
            namespace: namespace.to_string(),
            holders: Observed::new(true, annotations, FREEZE).holders,
            since: annotations.get(FREEZE.at).cloned(),
            reason: annotations.get(FREEZE.reason).cloned(),
        })
    }
}

/// An active override of one of the freezing policies.
#[derive(Clone, Debug, PartialEq)]
pub struct Lifted {
    pub policy: String,
    pub name: String,
    pub reason: String,
    pub until: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Allow,
    /// Allowed under an override: the person is told so.
    AllowWithWarning(String),
    Deny(String),
}

fn template(object: Option<&Value>) -> (Option<&Value>, Option<&Value>) {
    let spec = object.map(|o| &o["spec"]);
    (
        spec.map(|s| &s["template"]).filter(|v| !v.is_null()),
        spec.map(|s| &s["workloadRef"]).filter(|v| !v.is_null()),
    )
}

pub fn is_release(operation: Operation, object: Option<&Value>, old: Option<&Value>) -> bool {
    match operation {
        Operation::Create => true,
        Operation::Update => template(object) != template(old),
        Operation::Other => false,
    }
}

/// The verdict on a request for `kind`/`name`. `lifted` lists the active overrides of the
/// policies holding the freeze.
pub fn review(
    kind: &str,
    name: &str,
    operation: Operation,
    object: Option<&Value>,
    old: Option<&Value>,
    freeze: Option<&Freeze>,
    lifted: &[Lifted],
) -> Verdict {
    let Some(freeze) = freeze else {
        return Verdict::Allow;
    };
    if !is_release(operation, object, old) {
        return Verdict::Allow;
    }
    let ns = &freeze.namespace;
    let what = match operation {
        Operation::Create => format!("creating {kind} {name}"),
        _ => format!("changing the pod template of {kind} {name}"),
    };
    if freeze.holders.is_empty() {
        return Verdict::Deny(format!(
            "{what} is refused: namespace {ns} is labelled {FROZEN_LABEL}=true by hand (no ErrorBudgetPolicy holds it). \
             Remove the label to release: kubectl label namespace {ns} {FROZEN_LABEL}-"
        ));
    }
    let holding: Vec<&String> = freeze
        .holders
        .iter()
        .filter(|h| !lifted.iter().any(|l| &l.policy == *h))
        .collect();
    if holding.is_empty() {
        let overrides: Vec<String> = lifted
            .iter()
            .map(|l| format!("ErrorBudgetOverride {} ({}) until {}", l.name, l.reason, l.until))
            .collect();
        return Verdict::AllowWithWarning(format!(
            "namespace {ns} is frozen; {what} is let through by {}",
            overrides.join(", ")
        ));
    }
    let since = freeze
        .since
        .as_deref()
        .map(|s| format!(" since {s}"))
        .unwrap_or_default();
    let why = freeze.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    let policies: Vec<String> = holding.iter().map(|h| format!("ErrorBudgetPolicy {h}")).collect();
    let first = holding[0].rsplit('/').next().unwrap_or_default();
    Verdict::Deny(format!(
        "{what} is refused: releases in namespace {ns} are frozen{since} by {}{why}. \
         Scaling, pausing and deleting are still allowed. To release anyway, get an override: \
         slo-warden override {first} -n {ns} --for 1h --reason \"<why, e.g. the incident>\" \
         (or kubectl create an ErrorBudgetOverride with spec.policy: {first})",
        policies.join(" and ")
    ))
}

/// A pod template that goes back to an earlier revision of the workload, as `kubectl rollout
/// undo` (or `kubectl argo rollouts undo`, or `rollbackRelease`) sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    pub revision: u64,
    pub images: Vec<String>,
}

/// The earlier revision `template` restores, when it may go through the freeze: the template
/// of one of the workload's own ReplicaSets (not the one in force now, `current`) whose
/// revision started before `trusted_before` (the suspect window before the burn: a revision
/// that started in it may be what burned the budget). `started` says when a revision started
/// (`None`: not known, and not trusted).
pub fn restored(
    kind: &str,
    uid: Option<&str>,
    template: &Value,
    current: &Value,
    replica_sets: &[kube::api::DynamicObject],
    started: impl Fn(u64, &kube::api::DynamicObject) -> Option<jiff::Timestamp>,
    trusted_before: jiff::Timestamp,
) -> Option<Restored> {
    use kube::ResourceExt;
    let (hash, key) = match kind {
        "Rollout" => ("rollouts-pod-template-hash", "rollout.argoproj.io/revision"),
        "Deployment" => ("pod-template-hash", "deployment.kubernetes.io/revision"),
        _ => return None,
    };
    let comparable = |t: &Value| crate::release::undo::comparable(t, hash);
    let wanted = comparable(template);
    if wanted == comparable(current) {
        return None;
    }
    replica_sets
        .iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
        })
        .filter(|rs| {
            let theirs = &rs.data["spec"]["template"];
            // A Rollout keeps only what was written; its ReplicaSets have every default.
            comparable(theirs) == wanted
                || (kind == "Rollout" && crate::release::undo::derivative(template, theirs, hash))
        })
        .find_map(|rs| {
            let revision = rs.annotations().get(key)?.parse().ok()?;
            started(revision, rs).filter(|t| *t < trusted_before).map(|_| Restored {
                revision,
                images: rs.data["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["image"].as_str().map(String::from))
                    .collect(),
            })
        })
}

/// The verdict on a release whose freeze could not be checked: `unread` names what could not
/// be read. Refused, since the API server asks only about namespaces labelled frozen.
pub fn unchecked(kind: &str, name: &str, operation: Operation, namespace: &str, unread: &str) -> Verdict {
    let what = match operation {
        Operation::Create => format!("creating {kind} {name}"),
        _ => format!("changing the pod template of {kind} {name}"),
    };
    Verdict::Deny(format!(
        "{what} is refused: slo-warden could not read {unread}, so it cannot check the freeze of \
         namespace {namespace}; releases there are refused while the freeze cannot be checked. \
         Try again shortly; if this persists, check that slo-warden is running and may read it"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(image: &str, replicas: i64, paused: bool) -> Value {
        json!({"metadata": {"name": "web", "labels": {"a": image}},
               "spec": {"replicas": replicas, "paused": paused,
                        "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    }

    fn frozen() -> Freeze {
        Freeze {
            namespace: "shop".into(),
            holders: vec!["shop/checkout".into()],
            since: Some("2026-11-24T10:00:00Z".into()),
            reason: Some(
                "ErrorBudgetPolicy shop/checkout stage exhausted: checkout-availability: budget remaining -0.12 < 0"
                    .into(),
            ),
        }
    }

    #[test]
    fn only_pod_template_changes_and_creations_are_releases() {
        let old = deployment("web:1", 2, false);
        use Operation::*;
        assert!(is_release(Create, Some(&old), None));
        assert!(is_release(Update, Some(&deployment("web:2", 2, false)), Some(&old)));
        assert!(
            !is_release(Update, Some(&deployment("web:1", 5, true)), Some(&old)),
            "scaling, pausing and labels"
        );
        assert!(!is_release(Other, None, Some(&old)), "deletion");
        let rollout = |r: &str| json!({"spec": {"workloadRef": {"kind": "Deployment", "name": r}}});
        assert!(is_release(Update, Some(&rollout("b")), Some(&rollout("a"))));
    }

    #[test]
    fn a_frozen_namespace_refuses_releases_and_says_what_to_do() {
        let f = frozen();
        let old = deployment("web:1", 2, false);
        let new = deployment("web:2", 2, false);
        let Verdict::Deny(message) = review(
            "Deployment",
            "web",
            Operation::Update,
            Some(&new),
            Some(&old),
            Some(&f),
            &[],
        ) else {
            panic!("allowed")
        };
        assert!(message.starts_with("changing the pod template of Deployment web is refused: releases in namespace shop are frozen since 2026-11-24T10:00:00Z by ErrorBudgetPolicy shop/checkout (ErrorBudgetPolicy shop/checkout stage exhausted: checkout-availability: budget remaining -0.12 < 0)."), "{message}");
        assert!(
            message.contains("slo-warden override checkout -n shop --for 1h"),
            "{message}"
        );
        assert_eq!(
            review(
                "Deployment",
                "web",
                Operation::Update,
                Some(&deployment("web:1", 9, true)),
                Some(&old),
                Some(&f),
                &[]
            ),
            Verdict::Allow
        );
        assert_eq!(
            review(
                "Deployment",
                "web",
                Operation::Update,
                Some(&new),
                Some(&old),
                None,
                &[]
            ),
            Verdict::Allow
        );
    }

    #[test]
    fn an_override_of_every_freezing_policy_lets_releases_through() {
        let mut f = frozen();
        let lifted = [Lifted {
            policy: "shop/checkout".into(),
            name: "checkout-x7k2p".into(),
            reason: "hotfix for INC-123".into(),
            until: "2026-11-24T12:00:00Z".into(),
        }];
        let v = review(
            "Rollout",
            "web",
            Operation::Create,
            Some(&json!({})),
            None,
            Some(&f),
            &lifted,
        );
        assert!(
            matches!(&v, Verdict::AllowWithWarning(w) if w.contains("checkout-x7k2p (hotfix for INC-123)")),
            "{v:?}"
        );
        f.holders.push("shop/payments".into());
        let v = review(
            "Rollout",
            "web",
            Operation::Create,
            Some(&json!({})),
            None,
            Some(&f),
            &lifted,
        );
        assert!(
            matches!(&v, Verdict::Deny(m) if m.contains("frozen since 2026-11-24T10:00:00Z by ErrorBudgetPolicy shop/payments")),
            "{v:?}"
        );
        f.holders.clear();
        let v = review(
            "Rollout",
            "web",
            Operation::Create,
            Some(&json!({})),
            None,
            Some(&f),
            &lifted,
        );
        assert!(matches!(&v, Verdict::Deny(m) if m.contains("by hand")), "{v:?}");
    }

    #[test]
    fn a_freeze_that_cannot_be_read_refuses_the_release() {
        let v = unchecked(
            "Deployment",
            "web",
            Operation::Update,
            "shop",
            "Namespace shop (ServiceUnavailable: etcdserver: request timed out)",
        );
        let Verdict::Deny(m) = v else { panic!("{v:?}") };
        assert!(
            m.starts_with("changing the pod template of Deployment web is refused: slo-warden could not read Namespace shop (ServiceUnavailable"),
            "{m}"
        );
        assert!(
            m.contains("releases there are refused while the freeze cannot be checked"),
            "{m}"
        );
    }

    #[test]
    fn reads_the_freeze_from_the_namespace() {
        let labels = BTreeMap::from([(FROZEN_LABEL.to_string(), "true".to_string())]);
        let annotations = BTreeMap::from([(FREEZE.by.to_string(), "shop/checkout".to_string())]);
        assert_eq!(
            Freeze::of("shop", &labels, &annotations).unwrap().holders,
            ["shop/checkout"]
        );
        assert!(Freeze::of("shop", &BTreeMap::new(), &annotations).is_none());
    }

    fn rs(hash: &str, revision: &str, image: &str, owner: &str) -> kube::api::DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("web-{hash}"), "namespace": "shop",
                         "annotations": {"deployment.kubernetes.io/revision": revision},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                              "uid": owner, "controller": true}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": hash}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}},
        }))
        .unwrap()
    }

    fn template(image: &str) -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": image}]}})
    }

    #[test]
    fn going_back_to_a_revision_from_before_the_burn_is_a_restore() {
        let freeze: jiff::Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        let trusted_before = freeze - jiff::SignedDuration::from_mins(30);
        let sets = [
            rs("a1", "1", "web:1", "d1"),
            rs("b2", "2", "web:2", "d1"),
            rs("z9", "9", "web:0", "other"),
        ];
        // Revision 1 ran for days; revision 2 started 5 minutes before the freeze.
        let started = |revision: u64, _: &kube::api::DynamicObject| match revision {
            1 => Some(freeze - jiff::SignedDuration::from_hours(48)),
            2 => Some(freeze - jiff::SignedDuration::from_mins(5)),
            _ => None,
        };
        let restore = |to: &str, from: &str| {
            restored(
                "Deployment",
                Some("d1"),
                &template(to),
                &template(from),
                &sets,
                started,
                trusted_before,
            )
        };
        assert_eq!(
            restore("web:1", "web:2"),
            Some(Restored {
                revision: 1,
                images: vec!["web:1".into()]
            }),
            "kubectl rollout undo"
        );
        assert_eq!(restore("web:2", "web:1"), None, "shipping the suspect release again");
        assert_eq!(restore("web:3", "web:2"), None, "a new release");
        assert_eq!(restore("web:0", "web:2"), None, "another Deployment's ReplicaSet");
        assert_eq!(restore("web:2", "web:2"), None, "no change of template");
        // A revision whose start is not known is not trusted.
        let unknown = restored(
            "Deployment",
            Some("d1"),
            &template("web:1"),
            &template("web:2"),
            &sets,
            |_, _| None,
            trusted_before,
        );
        assert_eq!(unknown, None);
        assert_eq!(
            restored(
                "StatefulSet",
                Some("d1"),
                &template("web:1"),
                &template("web:2"),
                &sets,
                started,
                trusted_before
            ),
            None
        );
    }
}
