//! `/releases`: the release ledger across SLOs, newest (or costliest) first.

use kube::ResourceExt;
use maud::{Markup, html};

use super::path;
use crate::ui::format;
use crate::ui::releases::{Ledger, Query, Sort};

/// The ledger's link to page `page`.
fn link(query: &Query, page: usize) -> String {
    let extra = [("sort", (query.sort != Sort::default()).then_some(query.sort.key()))];
    query.scope.link("/releases", &extra, page)
}

pub fn render(ledger: &Ledger, query: &Query, clusters: &[String], now: jiff::Timestamp) -> Markup {
    let paged = &ledger.paged;
    html! {
        h1 { "Releases" }
        p.description { "Each release of a workload that an SLO's policies follow, as the operator's ledger records it in the SLO's status: who changed it, and how much of the SLO's error budget it burned from its start to the next release (or now)." }
        form.filters method="get" action="/releases" role="search" {
            (super::search_box(&query.scope.words, "workload, image, who, SLO"))
            (super::choice("Cluster", "cluster", clusters.iter().map(String::as_str), query.scope.cluster.as_deref()))
            (super::choice("Namespace", "namespace", ledger.namespaces.iter().map(String::as_str), query.scope.namespace.as_deref()))
            label { "Sort by "
                select name="sort" {
                    @for (s, key, label) in Sort::ALL { option value=(key) selected[query.sort == s] { (label) } }
                }
            }
            button type="submit" { "Show" }
        }
        p.counts {
            (paged.matching) " of " (ledger.total) " release" (if ledger.total == 1 { "" } else { "s" })
            @if paged.pages > 1 { "; " (paged.first) "–" (paged.first + paged.rows.len().saturating_sub(1)) " shown" } "."
        }
        @if paged.rows.is_empty() {
            p { "No release recorded" @if ledger.total > 0 { " matches these filters" } ". An SLO records the releases of the Deployments and Rollouts its policies follow." }
        } @else {
            (super::scrolling("Releases", html! { table.releases {
                caption.visually-hidden { "Releases and the error budget each burned, " (if query.sort == Sort::Burned { "most burned first" } else { "latest first" }) }
                thead { tr {
                    th scope="col" { "Cluster" } th scope="col" { "SLO" } th scope="col" { "Workload" } th scope="col" { "Revision" }
                    th scope="col" { "Images" }
                    th scope="col" title="The field manager that last wrote the pod template when the release was recorded" { "By" }
                    th scope="col" { "Started" }
                    th scope="col" title="The SLO's errors from the release's start to the next release (or now), as a share of the window's error budget" { "Budget burned" }
                    th scope="col" title="The burn rate over the same time (1 spends the budget exactly over the window)" { "Burn since" }
                } }
                tbody {
                    @for row in &paged.rows {
                        @if let (Some(slo), Some(r)) = (row.slo(), row.release()) {
                            @let ns = slo.namespace().unwrap_or_default();
                            tr {
                                td { (row.cluster) }
                                td { a href=(path("slos", &row.cluster, &ns, &slo.name_any())) { (ns) "/" (slo.name_any()) } }
                                td { (r.kind) " " (r.workload) }
                                td.num { (r.revision) }
                                td { (r.images.join(", ")) }
                                td { (r.changed_by.as_deref().unwrap_or("—")) }
                                td { time datetime=(format::time(r.started_at.0)) title=(format::time(r.started_at.0)) { (format::ago(r.started_at.0, now)) } }
                                td.num { (format::percent(r.budget_burned)) }
                                td.num { (format::burn(r.burn_rate_since)) }
                            }
                        }
                    }
                }
            } }))
        }
        (super::pager("Pages of releases", paged.page, paged.pages, |p| link(query, p)))
    }
}
