//! Which SLOs a policy selects (by name or label selector, from the watch cache of its
//! namespace), and whether they record every window the policy reads. Used by the policy
//! reconciler and by the webhook, which refuses at apply what the reconciler would report.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use kube::api::DynamicObject;

use crate::api::{Action, ErrorBudgetPolicy, ServiceLevelObjective};
use crate::cache::{CachedSlo, Stores};
use crate::duration::Duration;
use crate::enforce::Kind;
use crate::validate::Problem;

use super::ValidPolicy;

/// The SLOs the policy selects, or the problems that keep it from selecting them.
pub fn selected_slos(policy: &ErrorBudgetPolicy, stores: &Stores) -> (Vec<CachedSlo>, Vec<Problem>) {
    let ns = policy.namespace().unwrap_or_default();
    // Only the SLOs the policy may select are copied out of the cache.
    let wanted: Option<BTreeSet<&str>> = policy
        .spec
        .slos
        .names
        .as_ref()
        .map(|n| n.iter().map(String::as_str).collect());
    let in_ns = stores.slos_in(&ns, |name| wanted.as_ref().is_none_or(|w| w.contains(name)));
    let mut problems = Vec::new();
    let mut found = Vec::new();
    if let Some(names) = &policy.spec.slos.names {
        for (i, name) in names.iter().enumerate() {
            match in_ns.iter().find(|s| s.name_any() == *name) {
                Some(s) => found.push(s.clone()),
                None => problems.push(Problem {
                    field: format!("spec.slos.names[{i}]"),
                    message: format!(
                        "ServiceLevelObjective {name} does not exist in namespace {ns}; create it or remove it from the list"
                    ),
                }),
            }
        }
    } else if let Some(sel) = &policy.spec.slos.selector {
        match Selector::try_from(sel.clone()) {
            Ok(sel) => {
                found.extend(in_ns.iter().filter(|s| sel.matches(s.labels())).cloned());
                if found.is_empty() {
                    problems.push(Problem {
                        field: "spec.slos.selector".into(),
                        message: format!(
                            "matches no ServiceLevelObjective in namespace {ns}; check the labels of your SLOs"
                        ),
                    });
                }
            }
            Err(e) => problems.push(Problem {
                field: "spec.slos.selector".into(),
                message: format!("not a valid label selector: {e}"),
            }),
        }
    }
    (found, problems)
}

/// Whether a policy selects an SLO of its namespace, as [`selected_slos`] does (an invalid
/// selector selects nothing).
pub fn selects(policy: &ErrorBudgetPolicy, slo: &ServiceLevelObjective) -> bool {
    if policy.namespace() != slo.namespace() {
        return false;
    }
    if let Some(names) = &policy.spec.slos.names {
        return names.iter().any(|n| *n == slo.name_any());
    }
    policy
        .spec
        .slos
        .selector
        .as_ref()
        .and_then(|s| Selector::try_from(s.clone()).ok())
        .is_some_and(|s| s.matches(slo.labels()))
}

/// The workloads whose releases matter to a policy, of those in its namespace: what its
/// targets select, and every one when a stage freezes the namespace (a freeze holds every
/// release in it). An invalid selector selects nothing.
pub fn release_targets<'a>(
    policy: &ErrorBudgetPolicy,
    workloads: impl IntoIterator<Item = (Kind, &'a DynamicObject)>,
) -> BTreeSet<(Kind, String)> {
    let whole_namespace = policy
        .spec
        .stages
        .iter()
        .any(|s| s.actions.contains(&Action::FreezeNamespace));
    let selector = |s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
        s.as_ref().and_then(|s| Selector::try_from(s.clone()).ok())
    };
    let (deployments, rollouts) = (
        selector(&policy.spec.targets.deployments),
        selector(&policy.spec.targets.rollouts),
    );
    workloads
        .into_iter()
        .filter(|(kind, w)| {
            whole_namespace
                || match kind {
                    Kind::Deployment => deployments.as_ref(),
                    Kind::Rollout => rollouts.as_ref(),
                    Kind::Namespace => None,
                }
                .is_some_and(|s| s.matches(w.labels()))
        })
        .map(|(kind, w)| (kind, w.name_any()))
        .collect()
}

/// Every burn-rate window the policy reads must be recorded by each of its (valid) SLOs.
pub fn unrecorded_windows(valid: &ValidPolicy, slos: &[CachedSlo]) -> Vec<Problem> {
    unrecorded_windows_with(valid, slos, crate::rules::windows_recorded_by)
}

pub fn unrecorded_windows_with(
    valid: &ValidPolicy,
    slos: &[CachedSlo],
    windows: impl Fn(&ServiceLevelObjective) -> Option<BTreeSet<Duration>>,
) -> Vec<Problem> {
    let recorded: BTreeMap<String, BTreeSet<Duration>> = slos
        .iter()
        .filter_map(|s| windows(s).map(|w| (s.name_any(), w)))
        .collect();
    let raw: Vec<String> = slos
        .iter()
        .filter(|s| s.spec.indicator.raw.is_some())
        .map(|s| s.name_any())
        .collect();
    let mut problems = super::check_windows(valid, &recorded);
    problems.extend(super::check_min_requests(valid, &raw));
    problems
}
