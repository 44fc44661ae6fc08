//! `/policies`: every ErrorBudgetPolicy, those in force first; `/policies/{cluster}/{namespace}/
//! {name}`: one policy, what it holds and since when, its history, its rollbacks and the
//! overrides of it (who, why, until when).

use std::collections::HashMap;
use std::sync::Arc;

use kube::ResourceExt;
use maud::{Markup, html};

use super::path;
use crate::api::{ErrorBudgetOverride, ErrorBudgetPolicy, OverrideState, ServiceLevelObjective};
use crate::ui::clusters::Cluster;
use crate::ui::format;
use crate::ui::list::Scope;
use crate::ui::paging::Paged;

/// One policy of the list.
pub struct Row {
    pub cluster: Arc<str>,
    pub policy: Arc<ErrorBudgetPolicy>,
    /// Overrides of it in force.
    pub active_overrides: usize,
}

fn stage(p: &ErrorBudgetPolicy) -> Option<&str> {
    p.status.as_ref().map(|s| s.stage.as_str()).filter(|s| !s.is_empty())
}

/// Whether a stage of the policy is in force.
pub fn in_force(p: &ErrorBudgetPolicy) -> bool {
    stage(p).is_some()
}

fn overrides_of(cluster: &Cluster, policy: &ErrorBudgetPolicy) -> Vec<Arc<ErrorBudgetOverride>> {
    let (ns, name) = (policy.namespace(), policy.name_any());
    crate::ui::clusters::readable(&cluster.overrides, |o| o.namespace() == ns && o.spec.policy == name)
}

/// Every readable policy of the clusters that `scope`'s cluster and namespace keep (those in
/// force only, with `in_force`), those in force first (latest first), then by name.
pub fn rows(clusters: &[Cluster], scope: &Scope, in_force: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    for c in clusters {
        // The overrides in force of each policy, in one pass over the cluster's overrides.
        let mut active: HashMap<(String, String), usize> = HashMap::new();
        for o in c.overrides.state() {
            if let Ok(o) = &o.0
                && o.status.as_ref().and_then(|s| s.state) == Some(OverrideState::Active)
            {
                *active
                    .entry((o.namespace().unwrap_or_default(), o.spec.policy.clone()))
                    .or_default() += 1;
            }
        }
        for p in c.policies.state() {
            let Ok(policy) = &p.0 else { continue };
            let ns = policy.namespace().unwrap_or_default();
            if !scope.keeps(&c.name, &ns) || (in_force && stage(policy).is_none()) {
                continue;
            }
            let active_overrides = active.get(&(ns, policy.name_any())).copied().unwrap_or(0);
            rows.push(Row {
                cluster: c.name.clone(),
                policy: Arc::new(policy.clone()),
                active_overrides,
            });
        }
    }
    let since = |p: &ErrorBudgetPolicy| p.status.as_ref().and_then(|s| s.since.as_ref()).map(|t| t.0);
    rows.sort_by(|a, b| {
        stage(&b.policy)
            .is_some()
            .cmp(&stage(&a.policy).is_some())
            .then_with(|| since(&b.policy).cmp(&since(&a.policy)))
            .then_with(|| {
                (&a.cluster, a.policy.namespace(), a.policy.name_any()).cmp(&(
                    &b.cluster,
                    b.policy.namespace(),
                    b.policy.name_any(),
                ))
            })
    });
    rows
}

/// What the policies list was asked for (its scope's words are read, not searched: the list has
/// no search box).
pub struct Filter<'a> {
    pub scope: &'a Scope,
    pub in_force: bool,
    /// Of the policies the filters keep (every page), how many are in force.
    pub in_force_count: usize,
    /// Every cluster's name, and every namespace with a policy, for the choices.
    pub clusters: Vec<&'a str>,
    pub namespaces: std::collections::BTreeSet<String>,
}

/// The list's link to page `page`.
fn link(filter: &Filter, page: usize) -> String {
    let extra = [("inForce", filter.in_force.then_some("true"))];
    filter.scope.link("/policies", &extra, page)
}

pub fn render_list(paged: &Paged<Row>, filter: &Filter, now: jiff::Timestamp) -> Markup {
    let in_force = filter.in_force;
    let rows = &paged.rows;
    let n = paged.matching;
    html! {
        h1 { "Error budget policies" }
        form.filters method="get" action="/policies" {
            (super::choice("Cluster", "cluster", filter.clusters.iter().copied(), filter.scope.cluster.as_deref()))
            (super::choice("Namespace", "namespace", filter.namespaces.iter().map(String::as_str), filter.scope.namespace.as_deref()))
            label { input type="checkbox" name="inForce" value="true" checked[in_force]; " Only those in force" }
            button type="submit" { "Show" }
        }
        p.counts { (n) " polic" (if n == 1 { "y" } else { "ies" }) ", " (filter.in_force_count) " in force"
            @if paged.pages > 1 { "; " (paged.first) "–" (paged.first + rows.len().saturating_sub(1)) " shown" } "." }
        (super::scrolling("Policies", html! { table {
            caption.visually-hidden { "Error budget policies, those in force first" }
            thead { tr {
                th scope="col" { "Cluster" } th scope="col" { "Namespace" } th scope="col" { "Name" }
                th scope="col" title="The stage in force; none when the budget is fine" { "Stage" }
                th scope="col" { "Since" }
                th scope="col" title="Which SLO and which value put the policy in its stage" { "Reason" }
                th scope="col" title="Objects the operator holds for this policy right now" { "Holding" }
                th scope="col" title="Break-glass overrides in force" { "Overrides" }
            } }
            tbody {
                @for r in rows {
                    @let p = &r.policy;
                    @let st = p.status.as_ref();
                    @let ns = p.namespace().unwrap_or_default();
                    tr {
                        td { (r.cluster) } td { (ns) }
                        td { a href=(path("policies", &r.cluster, &ns, &p.name_any())) { (p.name_any()) } @if p.spec.dry_run { " " span.badge.wait title="Decides and reports, holds nothing" { "dry run" } } }
                        td { @match stage(p) { Some(s) => span.badge.bad { (s) }, None => "none" } }
                        td { @if let Some(t) = st.and_then(|s| s.since.as_ref()) { time datetime=(format::time(t.0)) title=(format::time(t.0)) { (format::ago(t.0, now)) } } }
                        td { (st.map(|s| s.reason.as_str()).unwrap_or_default()) }
                        td.num { (st.map_or(0, |s| s.enforced.len())) }
                        td.num { @if r.active_overrides > 0 { strong { (r.active_overrides) " active" } } @else { "0" } }
                    }
                }
            }
        } }))
        (super::pager("Pages of policies", paged.page, paged.pages, |p| link(filter, p)))
    }
}

pub struct Page<'a> {
    pub cluster: &'a Cluster,
    pub policy: &'a ErrorBudgetPolicy,
    pub slos: Vec<Arc<ServiceLevelObjective>>,
    pub now: jiff::Timestamp,
}

pub fn render(page: &Page) -> Markup {
    let p = page.policy;
    let ns = p.namespace().unwrap_or_default();
    let st = p.status.as_ref();
    let now = page.now;
    let t = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| {
        html! { time datetime=(format::time(t.0)) title=(format::time(t.0)) { (format::ago(t.0, now)) } }
    };
    let mut overrides: Vec<Arc<ErrorBudgetOverride>> = overrides_of(page.cluster, p);
    overrides.sort_by_key(|o| std::cmp::Reverse(o.creation_timestamp().map(|t| t.0)));
    html! {
        p.crumbs { a href="/policies" { "Policies" } " / " (page.cluster.name) " / " (ns) }
        h1 { (p.name_any()) " "
            @match stage(p) { Some(s) => span.badge.bad { "in force: " (s) }, None => span.badge.ok { "no stage in force" } }
            @if p.spec.dry_run { " " span.badge.wait title="Decides and reports, holds nothing" { "dry run" } }
        }
        @if let Some(st) = st {
            dl.facts {
                dt { "Since" } dd { @if let Some(s) = &st.since { (t(s)) } @else { "—" } }
                dt { "Reason" } dd { (st.reason) }
                @if let Some(q) = &st.quiet_since { dt title="When the stage's condition stopped holding; it is left releaseAfter later unless it holds again" { "Quiet since" } dd { (t(q)) " (released " (p.spec.release_after) " after)" } }
            }
        }
        h2 { "Holding" }
        @match st.filter(|s| !s.enforced.is_empty()) {
            None => p { "Nothing is held for this policy." },
            Some(st) => (super::scrolling("Held objects", html! { table {
                caption.visually-hidden { "What the operator holds for this policy, and since when" }
                thead { tr { th scope="col" { "Kind" } th scope="col" { "Name" } th scope="col" { "Action" } th scope="col" { "Since" } } }
                tbody { @for e in &st.enforced { tr { td { (e.kind) } td { (e.name) } td { (e.action) } td { @if let Some(s) = &e.since { (t(s)) } } } } }
            } })),
        }
        h2 { "Overrides" }
        @if overrides.is_empty() {
            p { "No override of this policy. To lift it for a while (at most " (p.spec.max_override) "): "
                code { "slo-warden override " (p.name_any()) " -n " (ns) " --for 1h --reason \"INC-1234: why\"" } }
        } @else {
            (super::scrolling("Overrides", html! { table {
                caption.visually-hidden { "Break-glass overrides of this policy, newest first: who asked, why, for how long, and their state" }
                thead { tr { th scope="col" { "Requested by" } th scope="col" { "Why" } th scope="col" { "For" } th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { "Until" } } }
                tbody {
                    @for o in &overrides {
                        @let os = o.status.as_ref();
                        tr {
                            td { (o.spec.requested_by.as_deref().unwrap_or("—")) }
                            td { (o.spec.reason) }
                            td { (o.spec.duration) }
                            td { @if let Some(c) = o.creation_timestamp() { (t(&c)) } }
                            td { (os.and_then(|s| s.state).map_or("Pending", |s| match s { OverrideState::Active => "Active", OverrideState::Expired => "Expired", OverrideState::Rejected => "Rejected" }))
                                 @if let Some(m) = os.map(|s| s.message.as_str()).filter(|m| !m.is_empty()) { span.why title=(m) { " ⓘ" span.visually-hidden { (m) } } } }
                            td { @if let Some(e) = os.and_then(|s| s.expires_at.as_ref()) { (t(e)) } }
                        }
                    }
                }
            } }))
        }
        h2 { "SLOs it selects" }
        @if page.slos.is_empty() { p { "None: check spec.slos." } } @else {
            ul.slo-list { @for s in &page.slos { li { a href=(path("slos", &page.cluster.name, &ns, &s.name_any())) { (s.name_any()) } } } }
        }
        h2 { "Stages" }
        ol.stages {
            @for stage in &p.spec.stages {
                li { strong { (stage.name) } ": when "
                    (serde_json::to_string(&stage.when).unwrap_or_default())
                    " → " (stage.actions.iter().map(|a| serde_json::to_value(a).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()).collect::<Vec<_>>().join(", ")) }
            }
        }
        @if let Some(st) = st.filter(|s| !s.rollbacks.is_empty()) {
            h2 { "Rollbacks" }
            (super::scrolling("Rollbacks", html! { table {
                caption.visually-hidden { "What rollbackRelease did, would do or would not do about each suspect release, and why" }
                thead { tr { th scope="col" { "Workload" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Result" } th scope="col" { "Message" } th scope="col" { "When" } } }
                tbody { @for r in &st.rollbacks { tr { td { (r.kind) " " (r.name) } td { (r.from) } td { (r.to.as_deref().unwrap_or("—")) } td { (r.result) } td { (r.message) } td { (t(&r.time)) } } } }
            } }))
        }
        @if let Some(st) = st.filter(|s| !s.history.is_empty()) {
            h2 { "History" }
            (super::scrolling("History", html! { table {
                caption.visually-hidden { "The policy's changes of stage, newest first" }
                thead { tr { th scope="col" { "When" } th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Reason" } } }
                tbody { @for h in &st.history { tr { td { (t(&h.time)) } td { (h.from) } td { (h.to) } td { (h.reason) } } } }
            } }))
        }
    }
}
