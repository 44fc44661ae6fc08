//! Holds only the override path lifts. While a policy holds a Deployment or Rollout (its
//! `slo.warden.dev/paused-by` claim), a namespace editor could otherwise lift the hold by hand:
//! `kubectl rollout resume` lets a pending template roll out until the next poll pauses it
//! again, and an edit of the policy (deleting it, `dryRun: true`, other targets, a longer
//! `maxOverride`) releases at once. Both are refused here, naming the override command; an
//! active ErrorBudgetOverride of every holding policy lets them through.
//!
//! - Held objects ([`review_held`]): unpausing (`spec.paused` true → false or removed) and any
//!   change of our claim annotations or of the `slo.warden.dev/held` label are refused, unless
//!   the operator itself asks (it releases what it holds). Everything else (scaling, labels, pod
//!   templates: the release webhook's business in frozen namespaces) is not this webhook's.
//! - Policies ([`review_policy`]): while a stage with actions is in force (the status' `stage`
//!   and `enforced`), deleting the policy or an edit that demands less ([`reductions`]) is
//!   refused; a deletion while its Namespace is being deleted goes through, or namespace
//!   deletion would wedge. A policy that holds nothing, or under an active override, is free to
//!   change.
//! - ServiceLevelObjectives ([`review_slo`]): what drives a holding policy's stage is refused
//!   too, or a lower objective (more budget) or another SLI would release as surely as a policy
//!   edit: deleting a selected SLO, a lower `objective`, another `window` or `indicator`, other
//!   alert tiers, severities or alert name, and labels that its policy's selector no longer
//!   matches ([`slo_reductions`]).
//!
//! Pure: the request's objects and what the shell read (active overrides, which holding
//! policies still exist, whether the namespace is terminating) → a [`Verdict`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::release::{Lifted, Verdict};
use crate::api::bounds::quote;
use crate::api::{ErrorBudgetPolicy, ErrorBudgetPolicySpec, MissingData, ServiceLevelObjective};
use crate::duration::Duration;
use crate::enforce::claim::{HELD_LABEL, Observed, PAUSE};
use crate::validate::Problem;

/// Held objects named in a refusal; the rest are counted.
const NAMED: usize = 5;

/// The way out every refusal names.
pub fn override_hint(namespace: &str, policy: &str) -> String {
    format!(
        "To lift the freeze, get an override: slo-warden override {policy} -n {namespace} --for 1h \
         --reason \"<why, e.g. the incident>\" (or kubectl create an ErrorBudgetOverride with spec.policy: {policy})"
    )
}

/// The policies (`namespace/name`) an object's claim names.
pub fn claimed_by(object: &Value) -> Vec<String> {
    let annotations: BTreeMap<String, String> = object["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Observed::new(true, &annotations, PAUSE).holders
}

/// The fields of a hold an update changes: `spec.paused` when it unpauses, our claim
/// annotations, our label.
pub fn lifts(old: &Value, new: &Value) -> Vec<String> {
    let paused = |o: &Value| o["spec"]["paused"].as_bool() == Some(true);
    let mut fields = Vec::new();
    if paused(old) && !paused(new) {
        fields.push("spec.paused".to_string());
    }
    for key in [PAUSE.by, PAUSE.at, PAUSE.reason] {
        if old["metadata"]["annotations"][key] != new["metadata"]["annotations"][key] {
            fields.push(format!("metadata.annotations[{key}]"));
        }
    }
    if old["metadata"]["labels"][HELD_LABEL] != new["metadata"]["labels"][HELD_LABEL] {
        fields.push(format!("metadata.labels[{HELD_LABEL}]"));
    }
    fields
}

/// What the shell read about the policies a claim names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Holders {
    /// Active overrides of the holding policies.
    pub lifted: Vec<Lifted>,
    /// Holders whose policy does not exist: a stale claim holds nothing.
    pub gone: Vec<String>,
}

/// The verdict on an update of a held Deployment or Rollout (`old` → `new`).
pub fn review_held(kind: &str, name: &str, old: &Value, new: &Value, by_operator: bool, holders: &Holders) -> Verdict {
    let claimed = claimed_by(old);
    let fields = lifts(old, new);
    if by_operator || claimed.is_empty() || fields.is_empty() {
        return Verdict::Allow;
    }
    let holding: Vec<&String> = claimed
        .iter()
        .filter(|h| !holders.gone.contains(h) && !holders.lifted.iter().any(|l| &l.policy == *h))
        .collect();
    let what = if fields == ["spec.paused"] {
        format!("unpausing {kind} {name} (spec.paused)")
    } else {
        format!("changing {} of {kind} {name}", fields.join(", "))
    };
    if holding.is_empty() {
        if holders.lifted.is_empty() {
            return Verdict::Allow;
        }
        let overrides: Vec<String> = holders
            .lifted
            .iter()
            .map(|l| format!("ErrorBudgetOverride {} ({}) until {}", l.name, l.reason, l.until))
            .collect();
        return Verdict::AllowWithWarning(format!("{what} is let through by {}", overrides.join(", ")));
    }
    let policies: Vec<String> = holding.iter().map(|h| format!("ErrorBudgetPolicy {h}")).collect();
    let at = old["metadata"]["annotations"][PAUSE.at]
        .as_str()
        .map(|t| format!(" since {}", quote(t)))
        .unwrap_or_default();
    let why = old["metadata"]["annotations"][PAUSE.reason]
        .as_str()
        .map(|r| format!(" ({})", quote(r)))
        .unwrap_or_default();
    let (namespace, policy) = holding[0].split_once('/').unwrap_or(("", holding[0]));
    Verdict::Deny(format!(
        "{what} is refused: it is held by {}{at}{why}, and only the policy lets it go. Scaling, \
         labels and pod template changes are not affected. {}; the policy then resumes it.",
        policies.join(" and "),
        override_hint(namespace, policy)
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    Update,
    Delete,
}

/// What a policy holds, from its status: the stage in force, when it demands actions and is
/// not a dry run, and the objects in `status.enforced`. `None` when it holds nothing or an
/// override lifts it.
#[derive(Clone, Debug, PartialEq)]
pub struct Holding {
    /// The stage in force (with actions), if any.
    pub stage: Option<String>,
    /// `Kind name (action)` of the objects held.
    pub objects: Vec<String>,
}

pub fn holding(policy: &ErrorBudgetPolicy, lifted: &[Lifted]) -> Option<Holding> {
    if !lifted.is_empty() {
        return None;
    }
    let status = policy.status.as_ref()?;
    let stage = policy
        .spec
        .stages
        .iter()
        .find(|s| !status.stage.is_empty() && s.name == status.stage)
        .filter(|s| !s.actions.is_empty() && !policy.spec.dry_run)
        .map(|s| s.name.clone());
    let objects: Vec<String> = status
        .enforced
        .iter()
        .map(|e| format!("{} {} ({})", e.kind, e.name, e.action))
        .collect();
    (stage.is_some() || !objects.is_empty()).then_some(Holding { stage, objects })
}

impl Holding {
    fn describe(&self) -> String {
        let mut named = self.objects.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
        if self.objects.len() > NAMED {
            named.push_str(&format!(" and {} more", self.objects.len() - NAMED));
        }
        match (&self.stage, named.is_empty()) {
            (Some(s), true) => format!("stage {s} is in force"),
            (Some(s), false) => format!("stage {s} is in force, holding {named}"),
            (None, _) => format!("it holds {named}"),
        }
    }
}

/// The edits from `old` to `new` that could release what `stage` (the stage in force) holds:
/// anything that demands less, or could. Conservative: a change whose effect cannot be told
/// (other targets, another SLO selector, other conditions of the stage in force) counts.
pub fn reductions(old: &ErrorBudgetPolicySpec, new: &ErrorBudgetPolicySpec, stage: Option<&str>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut refuse = |field: String, message: String| out.push(Problem { field, message });
    if new.dry_run && !old.dry_run {
        refuse(
            "spec.dryRun".into(),
            "true would release everything the policy holds".into(),
        );
    }
    if new.targets != old.targets {
        refuse(
            "spec.targets".into(),
            "changed; a workload it no longer selects would be released".into(),
        );
    }
    if new.slos != old.slos {
        let added_only = match (&old.slos.names, &new.slos.names) {
            (Some(o), Some(n)) => o.iter().all(|s| n.contains(s)),
            _ => false,
        };
        if !added_only {
            refuse(
                "spec.slos".into(),
                "changed; an SLO no longer selected would stop driving the stage".into(),
            );
        }
    }
    let durations = |o: &str, n: &str| match (Duration::parse(o), Duration::parse(n)) {
        (Ok(o), Ok(n)) => Some((o, n)),
        _ => None,
    };
    if new.max_override != old.max_override {
        match durations(&old.max_override, &new.max_override) {
            Some((o, n)) if n <= o => {}
            _ => refuse(
                "spec.maxOverride".into(),
                format!(
                    "{} would let overrides lift the freeze for longer than {}",
                    quote(&new.max_override),
                    quote(&old.max_override)
                ),
            ),
        }
    }
    if new.release_after != old.release_after {
        match durations(&old.release_after, &new.release_after) {
            Some((o, n)) if n >= o => {}
            _ => refuse(
                "spec.releaseAfter".into(),
                format!(
                    "{} would leave the stage sooner than {}",
                    quote(&new.release_after),
                    quote(&old.release_after)
                ),
            ),
        }
    }
    if new.on_missing_data == MissingData::Release && old.on_missing_data != MissingData::Release {
        refuse(
            "spec.onMissingData".into(),
            "release would treat missing data as healthy and release".into(),
        );
    }
    let Some(stage) = stage else {
        return out;
    };
    let Some(before) = old.stages.iter().find(|s| s.name == stage) else {
        return out;
    };
    match new.stages.iter().enumerate().find(|(_, s)| s.name == stage) {
        None => refuse(
            "spec.stages".into(),
            format!("stage {stage} is in force; removing or renaming it releases what it holds"),
        ),
        Some((i, after)) => {
            if after.when != before.when {
                refuse(
                    format!("spec.stages[{i}].when"),
                    format!("changed; it decides when stage {stage}, in force, is left"),
                );
            }
            let dropped: Vec<&str> = before
                .actions
                .iter()
                .filter(|a| !after.actions.contains(a))
                .map(|a| a.as_str())
                .collect();
            if !dropped.is_empty() {
                refuse(
                    format!("spec.stages[{i}].actions"),
                    format!("drops {} that stage {stage}, in force, demands", dropped.join(", ")),
                );
            }
        }
    }
    out
}

/// The verdict on an update (`new`) or deletion of the policy `old`, given the active
/// overrides of it and whether its Namespace is being deleted.
pub fn review_policy(
    edit: Edit,
    old: &ErrorBudgetPolicy,
    new: Option<&ErrorBudgetPolicy>,
    lifted: &[Lifted],
    namespace_terminating: bool,
) -> Verdict {
    let Some(holding) = holding(old, lifted) else {
        return Verdict::Allow;
    };
    let namespace = old.metadata.namespace.as_deref().unwrap_or_default();
    let name = old.metadata.name.as_deref().unwrap_or_default();
    let hint = override_hint(namespace, name);
    match (edit, new) {
        (Edit::Delete, _) if namespace_terminating => Verdict::Allow,
        (Edit::Delete, _) => Verdict::Deny(format!(
            "deleting ErrorBudgetPolicy {namespace}/{name} is refused: {}; deleting it would release \
             that. {hint}; while the override is active, or once the stage is left, the policy may be deleted.",
            holding.describe()
        )),
        (Edit::Update, Some(new)) => {
            let problems = reductions(&old.spec, &new.spec, holding.stage.as_deref());
            if problems.is_empty() {
                return Verdict::Allow;
            }
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Verdict::Deny(format!(
                "changing ErrorBudgetPolicy {namespace}/{name} is refused: {}, and these edits could \
                 release it: {}. Edits that keep or add to what the stage demands are allowed. {hint}; \
                 while the override is active the policy may be changed.",
                holding.describe(),
                list.join("; ")
            ))
        }
        (Edit::Update, None) => Verdict::Allow,
    }
}

/// Whether `policy` selects an SLO named `name` with `labels`: by name, else by its selector
/// (one that is not a valid selector selects nothing, as the controller reads it).
pub fn selects(policy: &ErrorBudgetPolicySpec, name: &str, labels: &BTreeMap<String, String>) -> bool {
    use kube::core::{Selector, SelectorExt};
    if let Some(names) = &policy.slos.names {
        return names.iter().any(|n| n == name);
    }
    policy
        .slos
        .selector
        .as_ref()
        .and_then(|s| Selector::try_from(s.clone()).ok())
        .is_some_and(|s| s.matches(labels))
}

/// A policy that selects the SLO under review and holds something.
#[derive(Clone, Debug, PartialEq)]
pub struct SloHolder {
    /// The policy's name (in the SLO's namespace).
    pub policy: String,
    pub holding: Holding,
    /// Whether it still selects the SLO as edited (`false` for a deletion).
    pub still_selects: bool,
}

/// The edits from `old` to `new` of an SLO that could release what a policy it drives holds:
/// whatever could lower its burn rates, give it more budget or quiet its alerts. A higher
/// objective, descriptions, alert labels and annotations, the no-traffic and calibration
/// alerts are free.
pub fn slo_reductions(old: &ServiceLevelObjective, new: &ServiceLevelObjective) -> Vec<Problem> {
    let (o, n) = (&old.spec, &new.spec);
    let mut out = Vec::new();
    let mut refuse = |field: &str, message: String| {
        out.push(Problem {
            field: field.into(),
            message,
        })
    };
    if n.objective < o.objective {
        refuse(
            "spec.objective",
            format!(
                "{} is lower than {}: a lower objective has more budget and lower burn rates",
                n.objective, o.objective
            ),
        );
    }
    if n.window != o.window {
        refuse(
            "spec.window",
            format!(
                "{} instead of {}: the budget is counted over the window",
                quote(&n.window),
                quote(&o.window)
            ),
        );
    }
    if n.indicator != o.indicator {
        refuse(
            "spec.indicator",
            "changed; another SLI measures something else than what burned the budget".into(),
        );
    }
    if n.partial_windows && !o.partial_windows {
        refuse(
            "spec.partialWindows",
            "true would count the budget over the part of the window Prometheus holds, which may no longer hold the burn".into(),
        );
    }
    let (oa, na) = (&o.alerting, &n.alerting);
    if na.min_requests.unwrap_or(0) > oa.min_requests.unwrap_or(0) {
        refuse(
            "spec.alerting.minRequests",
            format!(
                "{} is higher than {}: a burn alert would need more requests to fire",
                na.min_requests.unwrap_or(0),
                oa.min_requests.unwrap_or(0)
            ),
        );
    }
    let alerts = [
        ("spec.alerting.name", oa.name != na.name),
        ("spec.alerting.pageSeverity", oa.page_severity != na.page_severity),
        ("spec.alerting.ticketSeverity", oa.ticket_severity != na.ticket_severity),
        ("spec.alerting.burnRates", oa.burn_rates != na.burn_rates),
    ];
    for (field, changed) in alerts {
        if changed {
            refuse(
                field,
                "changed; a stage may be held by the burn alerts this decides".into(),
            );
        }
    }
    out
}

/// The verdict on an update (`new`) or deletion of the SLO `old`, given the policies that
/// select it and hold something (without an active override) and whether its Namespace is
/// being deleted.
pub fn review_slo(
    old: &ServiceLevelObjective,
    new: Option<&ServiceLevelObjective>,
    holders: &[SloHolder],
    namespace_terminating: bool,
) -> Verdict {
    let Some(first) = holders.first() else {
        return Verdict::Allow;
    };
    let namespace = old.metadata.namespace.as_deref().unwrap_or_default();
    let name = old.metadata.name.as_deref().unwrap_or_default();
    let held_by = holders
        .iter()
        .map(|h| format!("ErrorBudgetPolicy {namespace}/{} ({})", h.policy, h.holding.describe()))
        .collect::<Vec<_>>()
        .join(" and ");
    let hint = override_hint(namespace, &first.policy);
    let Some(new) = new else {
        if namespace_terminating {
            return Verdict::Allow;
        }
        return Verdict::Deny(format!(
            "deleting ServiceLevelObjective {namespace}/{name} is refused: it drives {held_by}; \
             deleting it would release that. {hint}; while the override is active, or once the stage \
             is left, the SLO may be deleted."
        ));
    };
    let mut problems = slo_reductions(old, new);
    for h in holders.iter().filter(|h| !h.still_selects) {
        problems.push(Problem {
            field: "metadata.labels".into(),
            message: format!(
                "ErrorBudgetPolicy {} selects this SLO by spec.slos.selector and would no longer select it",
                h.policy
            ),
        });
    }
    if problems.is_empty() {
        return Verdict::Allow;
    }
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    Verdict::Deny(format!(
        "changing ServiceLevelObjective {namespace}/{name} is refused: it drives {held_by}, and these \
         edits could release it: {}. A higher objective, descriptions, alert labels and annotations \
         are allowed. {hint}; while the override is active the SLO may be changed.",
        list.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::ErrorBudgetPolicyStatus;
    use crate::api::policy::Enforced;

    fn deployment(paused: Option<bool>, holders: Option<&str>, labelled: bool) -> Value {
        let mut d = json!({"metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {}},
                           "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "web:2"}]}}}});
        if let Some(p) = paused {
            d["spec"]["paused"] = json!(p);
        }
        if let Some(h) = holders {
            d["metadata"]["annotations"][PAUSE.by] = json!(h);
            d["metadata"]["annotations"][PAUSE.at] = json!("2026-11-24T10:00:00Z");
            d["metadata"]["annotations"][PAUSE.reason] = json!("ErrorBudgetPolicy shop/checkout stage exhausted");
        }
        if labelled {
            d["metadata"]["labels"][HELD_LABEL] = json!("true");
        }
        d
    }

    fn lifted(policy: &str) -> Lifted {
        Lifted {
            policy: policy.into(),
            name: "checkout-x7k2p".into(),
            reason: "by alice: hotfix for INC-123".into(),
            until: "2026-11-24T12:00:00Z".into(),
        }
    }

    #[test]
    fn unpausing_a_held_object_is_refused_with_the_way_out() {
        let held = deployment(Some(true), Some("shop/checkout"), true);
        let none = Holders::default();
        for resumed in [
            deployment(Some(false), Some("shop/checkout"), true),
            deployment(None, Some("shop/checkout"), true),
        ] {
            let Verdict::Deny(m) = review_held("Deployment", "web", &held, &resumed, false, &none) else {
                panic!("allowed")
            };
            assert!(
                m.starts_with(
                    "unpausing Deployment web (spec.paused) is refused: it is held by ErrorBudgetPolicy shop/checkout since \"2026-11-24T10:00:00Z\" (\"ErrorBudgetPolicy shop/checkout stage exhausted\")"
                ),
                "{m}"
            );
            assert!(m.contains("slo-warden override checkout -n shop --for 1h"), "{m}");
        }
        // The operator's own release, and a stale claim of a policy that is gone.
        let released = deployment(Some(false), None, false);
        assert_eq!(
            review_held("Deployment", "web", &held, &released, true, &none),
            Verdict::Allow
        );
        let gone = Holders {
            gone: vec!["shop/checkout".into()],
            ..Holders::default()
        };
        assert_eq!(
            review_held("Deployment", "web", &held, &released, false, &gone),
            Verdict::Allow
        );
    }

    #[test]
    fn the_claim_and_the_label_are_ours_while_held() {
        let held = deployment(Some(true), Some("shop/checkout"), true);
        let none = Holders::default();
        let mut unlabelled = held.clone();
        unlabelled["metadata"]["labels"][HELD_LABEL] = Value::Null;
        let mut unclaimed = held.clone();
        unclaimed["metadata"]["annotations"][PAUSE.by] = json!("shop/other");
        for (edited, field) in [
            (unlabelled, "metadata.labels[slo.warden.dev/held]"),
            (unclaimed, "metadata.annotations[slo.warden.dev/paused-by]"),
            (
                deployment(Some(false), None, false),
                "spec.paused, metadata.annotations[slo.warden.dev/paused-by], metadata.annotations[slo.warden.dev/paused-at], metadata.annotations[slo.warden.dev/pause-reason], metadata.labels[slo.warden.dev/held]",
            ),
        ] {
            let v = review_held("Deployment", "web", &held, &edited, false, &none);
            assert!(
                matches!(&v, Verdict::Deny(m) if m.starts_with(&format!("changing {field} of Deployment web is refused"))),
                "{v:?}"
            );
        }
    }

    #[test]
    fn everything_else_on_a_held_object_goes_through() {
        let held = deployment(Some(true), Some("shop/checkout"), true);
        let none = Holders::default();
        let mut scaled = held.clone();
        scaled["spec"]["replicas"] = json!(5);
        scaled["metadata"]["labels"]["team"] = json!("a");
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:1");
        assert_eq!(
            review_held("Rollout", "web", &held, &scaled, false, &none),
            Verdict::Allow
        );
        // Not held by a policy: a person's pause is theirs to lift.
        let by_hand = deployment(Some(true), None, false);
        assert_eq!(
            review_held(
                "Deployment",
                "web",
                &by_hand,
                &deployment(Some(false), None, false),
                false,
                &none
            ),
            Verdict::Allow
        );
    }

    #[test]
    fn an_override_of_every_holder_lets_the_unpause_through() {
        let held = deployment(Some(true), Some("shop/checkout,shop/payments"), true);
        let resumed = deployment(Some(false), Some("shop/checkout,shop/payments"), true);
        let one = Holders {
            lifted: vec![lifted("shop/checkout")],
            ..Holders::default()
        };
        let v = review_held("Rollout", "web", &held, &resumed, false, &one);
        assert!(
            matches!(&v, Verdict::Deny(m) if m.contains("held by ErrorBudgetPolicy shop/payments since") && m.contains("slo-warden override payments -n shop")),
            "{v:?}"
        );
        let both = Holders {
            lifted: vec![lifted("shop/checkout")],
            gone: vec!["shop/payments".into()],
        };
        let v = review_held("Rollout", "web", &held, &resumed, false, &both);
        assert!(
            matches!(&v, Verdict::AllowWithWarning(w) if w.contains("unpausing Rollout web (spec.paused) is let through by ErrorBudgetOverride checkout-x7k2p")),
            "{v:?}"
        );
    }

    fn policy(stage: &str, enforced: &[&str]) -> ErrorBudgetPolicy {
        let mut p: ErrorBudgetPolicy = serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {
                "slos": {"names": ["checkout"]},
                "stages": [
                    {"name": "warn", "when": [{"burnRate": {"window": "1h", "above": 2}}], "actions": []},
                    {"name": "exhausted", "when": [{"budgetRemaining": {"below": 0}}],
                     "actions": ["freezeDeployments", "freezeNamespace"]},
                ],
                "targets": {"deployments": {"matchLabels": {"tier": "web"}}},
                "releaseAfter": "15m", "maxOverride": "4h",
            },
        }))
        .unwrap();
        p.status = Some(ErrorBudgetPolicyStatus {
            stage: stage.into(),
            enforced: enforced
                .iter()
                .map(|n| Enforced {
                    kind: "Deployment".into(),
                    name: n.to_string(),
                    action: "freezeDeployments".into(),
                    since: None,
                })
                .collect(),
            ..ErrorBudgetPolicyStatus::default()
        });
        p
    }

    fn edited(p: &ErrorBudgetPolicy, patch: Value) -> ErrorBudgetPolicy {
        let mut v = serde_json::to_value(p).unwrap();
        json_patch::merge(&mut v, &json!({ "spec": patch }));
        serde_json::from_value(v).unwrap()
    }

    fn refused(v: Verdict) -> String {
        match v {
            Verdict::Deny(m) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn deleting_a_holding_policy_is_refused_unless_its_namespace_goes() {
        let p = policy("exhausted", &["web"]);
        let m = refused(review_policy(Edit::Delete, &p, None, &[], false));
        assert!(
            m.starts_with(
                "deleting ErrorBudgetPolicy shop/checkout is refused: stage exhausted is in force, holding Deployment web (freezeDeployments); deleting it would release that."
            ),
            "{m}"
        );
        assert!(m.contains("slo-warden override checkout -n shop --for 1h"), "{m}");
        assert_eq!(review_policy(Edit::Delete, &p, None, &[], true), Verdict::Allow);
        assert_eq!(
            review_policy(Edit::Delete, &p, None, &[lifted("shop/checkout")], false),
            Verdict::Allow,
            "the override path"
        );
        for free in [
            policy("", &[]),
            policy("warn", &[]),
            edited(&policy("exhausted", &[]), json!({"dryRun": true})),
        ] {
            assert_eq!(
                review_policy(Edit::Delete, &free, None, &[], false),
                Verdict::Allow,
                "holds nothing"
            );
        }
        // Released but not yet written back: still holding per status.
        assert!(matches!(
            review_policy(Edit::Delete, &policy("", &["web"]), None, &[], false),
            Verdict::Deny(_)
        ));
    }

    #[test]
    fn edits_that_demand_less_are_refused_while_held() {
        let p = policy("exhausted", &["web"]);
        for (patch, field) in [
            (json!({"dryRun": true}), "spec.dryRun: true would release everything"),
            (
                json!({"targets": {"deployments": {"matchLabels": {"tier": "none"}}}}),
                "spec.targets: changed",
            ),
            (json!({"targets": null}), "spec.targets: changed"),
            (
                json!({"maxOverride": "30d"}),
                "spec.maxOverride: \"30d\" would let overrides lift the freeze for longer than \"4h\"",
            ),
            (json!({"maxOverride": "forever"}), "spec.maxOverride"),
            (
                json!({"releaseAfter": "1s"}),
                "spec.releaseAfter: \"1s\" would leave the stage sooner",
            ),
            (json!({"onMissingData": "release"}), "spec.onMissingData"),
            (json!({"slos": {"names": ["other"]}}), "spec.slos: changed"),
            (
                json!({"slos": {"names": null, "selector": {"matchLabels": {"a": "b"}}}}),
                "spec.slos: changed",
            ),
            (
                json!({"stages": [{"name": "exhausted", "when": [{"budgetRemaining": {"below": -1}}], "actions": ["freezeDeployments", "freezeNamespace"]}]}),
                "spec.stages[0].when: changed",
            ),
            (
                json!({"stages": [{"name": "exhausted", "when": [{"budgetRemaining": {"below": 0}}], "actions": ["freezeDeployments"]}]}),
                "spec.stages[0].actions: drops freezeNamespace",
            ),
            (
                json!({"stages": [{"name": "spent", "when": [{"budgetRemaining": {"below": 0}}], "actions": ["freezeDeployments", "freezeNamespace"]}]}),
                "spec.stages: stage exhausted is in force; removing or renaming it",
            ),
        ] {
            let m = refused(review_policy(
                Edit::Update,
                &p,
                Some(&edited(&p, patch.clone())),
                &[],
                false,
            ));
            assert!(
                m.starts_with("changing ErrorBudgetPolicy shop/checkout is refused: stage exhausted is in force, holding Deployment web (freezeDeployments), and these edits could release it: "),
                "{patch}: {m}"
            );
            assert!(m.contains(field), "{patch}: {m}");
            assert!(m.contains("slo-warden override checkout -n shop"), "{m}");
        }
        let m = refused(review_policy(
            Edit::Update,
            &p,
            Some(&edited(&p, json!({"dryRun": true, "maxOverride": "5h"}))),
            &[],
            false,
        ));
        assert!(
            m.contains("spec.dryRun") && m.contains("spec.maxOverride"),
            "every problem: {m}"
        );
    }

    #[test]
    fn edits_that_keep_or_add_go_through() {
        let p = policy("exhausted", &["web"]);
        for patch in [
            json!({}),
            json!({"maxOverride": "1h", "releaseAfter": "1h", "onMissingData": "enforce"}),
            json!({"slos": {"names": ["checkout", "payments"]}}),
            json!({"stages": [
                {"name": "warn", "when": [{"burnRate": {"window": "6h", "above": 1}}], "actions": ["freezeNamespace"]},
                {"name": "exhausted", "when": [{"budgetRemaining": {"below": 0}}],
                 "actions": ["freezeDeployments", "freezeNamespace", "pauseRollouts"]},
                {"name": "worse", "when": [{"budgetRemaining": {"below": -1}}], "actions": ["abortRollouts"]},
            ]}),
        ] {
            assert_eq!(
                review_policy(Edit::Update, &p, Some(&edited(&p, patch.clone())), &[], false),
                Verdict::Allow,
                "{patch}"
            );
        }
        // Holding nothing, or under an override: anything goes.
        let anything = json!({"dryRun": true, "targets": null, "maxOverride": "30d"});
        let idle = policy("", &[]);
        assert_eq!(
            review_policy(Edit::Update, &idle, Some(&edited(&idle, anything.clone())), &[], false),
            Verdict::Allow
        );
        assert_eq!(
            review_policy(
                Edit::Update,
                &p,
                Some(&edited(&p, anything)),
                &[lifted("shop/checkout")],
                false
            ),
            Verdict::Allow
        );
    }

    #[test]
    fn messages_stay_short() {
        let held = policy("exhausted", &["a", "b", "c", "d", "e", "f", "g"]);
        let m = refused(review_policy(Edit::Delete, &held, None, &[], false));
        assert!(m.contains("Deployment e (freezeDeployments) and 2 more"), "{m}");
        let long = "9".repeat(5000) + "h";
        let m = refused(review_policy(
            Edit::Update,
            &held,
            Some(&edited(&held, json!({ "maxOverride": long }))),
            &[],
            false,
        ));
        assert!(m.len() < 1500, "{} characters", m.len());
        assert!(m.contains(&format!("{:?}…", "9".repeat(100))), "{m}");
    }

    fn slo(objective: f64, labels: serde_json::Value) -> ServiceLevelObjective {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop", "labels": labels},
            "spec": {"objective": objective, "window": "30d",
                     "indicator": {"ratio": {"errors": "e_total", "total": "t_total"}}},
        }))
        .unwrap()
    }

    fn slo_holder(still_selects: bool) -> SloHolder {
        SloHolder {
            policy: "checkout".into(),
            holding: holding(&policy("exhausted", &["web"]), &[]).unwrap(),
            still_selects,
        }
    }

    #[test]
    fn an_slo_driving_a_hold_cannot_be_loosened_or_deleted() {
        let old = slo(99.9, json!({"team": "shop"}));
        let deny = |v: Verdict| match v {
            Verdict::Deny(m) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        // Nothing holds: anything goes.
        assert_eq!(review_slo(&old, None, &[], false), Verdict::Allow);
        assert_eq!(
            review_slo(&old, Some(&slo(50.0, json!({}))), &[], false),
            Verdict::Allow
        );

        let holders = [slo_holder(true)];
        let m = deny(review_slo(&old, None, &holders, false));
        assert!(
            m.starts_with("deleting ServiceLevelObjective shop/checkout is refused: it drives ErrorBudgetPolicy shop/checkout (stage exhausted is in force, holding Deployment web (freezeDeployments))"),
            "{m}"
        );
        assert!(m.contains("slo-warden override checkout -n shop"), "{m}");
        assert_eq!(
            review_slo(&old, None, &holders, true),
            Verdict::Allow,
            "namespace deletion"
        );

        let mut lower = slo(99.0, json!({"team": "shop"}));
        lower.spec.window = "7d".into();
        lower.spec.alerting.page_severity = Some("info".into());
        let m = deny(review_slo(&old, Some(&lower), &holders, false));
        for part in [
            "spec.objective: 99 is lower than 99.9",
            "spec.window: \"7d\" instead of \"30d\"",
            "spec.alerting.pageSeverity: changed",
        ] {
            assert!(m.contains(part), "{part} in {m}");
        }

        // What the data is read over, and how much traffic a burn alert needs.
        let mut partial = old.clone();
        partial.spec.partial_windows = true;
        partial.spec.alerting.min_requests = Some(100);
        let m = deny(review_slo(&old, Some(&partial), &holders, false));
        assert!(m.contains("spec.partialWindows: true would count the budget"), "{m}");
        assert!(m.contains("spec.alerting.minRequests: 100 is higher than 0"), "{m}");
        let mut fewer = old.clone();
        fewer.spec.alerting.min_requests = Some(100);
        let mut none = fewer.clone();
        none.spec.alerting.min_requests = None;
        assert_eq!(review_slo(&fewer, Some(&none), &holders, false), Verdict::Allow);

        let mut other_sli = old.clone();
        other_sli.spec.indicator.ratio.as_mut().unwrap().errors = Some("e2_total".into());
        assert!(deny(review_slo(&old, Some(&other_sli), &holders, false)).contains("spec.indicator: changed"));

        // Demanding more, or what no burn reads: allowed.
        let mut stricter = slo(99.95, json!({"team": "shop", "tier": "1"}));
        stricter.spec.description = Some("checkout".into());
        stricter
            .spec
            .alerting
            .annotations
            .insert("runbook".into(), "https://runbooks/x".into());
        assert_eq!(review_slo(&old, Some(&stricter), &holders, false), Verdict::Allow);

        // Labels its policy's selector no longer matches.
        let m = deny(review_slo(
            &old,
            Some(&slo(99.9, json!({}))),
            &[slo_holder(false)],
            false,
        ));
        assert!(
            m.contains("metadata.labels: ErrorBudgetPolicy checkout selects this SLO by spec.slos.selector and would no longer select it"),
            "{m}"
        );
    }

    #[test]
    fn a_policy_selects_an_slo_by_name_or_by_its_labels() {
        let labels: BTreeMap<String, String> = [("team".to_string(), "shop".to_string())].into();
        let mut p = policy("", &[]).spec;
        assert!(selects(&p, "checkout", &labels));
        assert!(!selects(&p, "cart", &labels));
        p.slos.names = None;
        p.slos.selector = Some(serde_json::from_value(json!({"matchLabels": {"team": "shop"}})).unwrap());
        assert!(selects(&p, "cart", &labels));
        assert!(!selects(&p, "cart", &BTreeMap::new()));
        p.slos.selector =
            Some(serde_json::from_value(json!({"matchExpressions": [{"key": "team", "operator": "Bogus"}]})).unwrap());
        assert!(!selects(&p, "cart", &labels), "an invalid selector selects nothing");
    }
}
