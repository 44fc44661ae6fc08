//! `/`: every SLO of every connected cluster, least budget left first.

use kube::ResourceExt;
use maud::{Markup, html};

use super::{budget_bar, path, state_badge};
use crate::ui::format;
use crate::ui::list::{Listed, Query, Sort};
use crate::ui::summary::State;

/// This list's link to page `page`.
fn link(query: &Query, page: usize) -> String {
    let extra = [
        ("state", query.state.map(State::as_str)),
        ("sort", (query.sort != Sort::default()).then_some(query.sort.key())),
    ];
    query.scope.link("/", &extra, page)
}

pub fn render(listed: &Listed, query: &Query, clusters: &[String]) -> Markup {
    let (first, last) = (
        listed.paged.first,
        listed.paged.first + listed.paged.rows.len().saturating_sub(1),
    );
    html! {
        h1 { "Service level objectives" }
        form.filters method="get" action="/" role="search" {
            (super::search_box(&query.scope.words, "name, namespace, service, label=value"))
            (super::choice("Cluster", "cluster", clusters.iter().map(String::as_str), query.scope.cluster.as_deref()))
            (super::choice("Namespace", "namespace", listed.namespaces.iter().map(String::as_str), query.scope.namespace.as_deref()))
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for (i, s) in State::ALL.iter().enumerate() {
                        option value=(s.as_str()) selected[query.state == Some(*s)] { (s.as_str()) " (" (listed.by_state[i]) ")" }
                    }
                }
            }
            label { "Sort by "
                select name="sort" {
                    @for (s, key, words) in Sort::ALL { option value=(key) selected[query.sort == s] { (words) } }
                }
            }
            button type="submit" { "Show" }
        }
        p.counts aria-live="polite" {
            @if listed.paged.matching == 0 {
                "No SLO matches (" (listed.total) " in all)."
            } @else {
                "SLOs " (first) "–" (last) " of " (listed.paged.matching)
                @if listed.paged.matching != listed.total { " matching (" (listed.total) " in all)" }
                ". "
                @for (i, s) in State::ALL.iter().enumerate() {
                    @if listed.by_state[i] > 0 { span class={ "count state-" (s.as_str().to_lowercase()) } { (listed.by_state[i]) " " (s.as_str()) } " " }
                }
            }
        }
        (super::scrolling("SLOs", html! { table.slos {
            caption.visually-hidden { "SLOs, " (crate::ui::list::named(&Sort::ALL, query.sort).1) }
            thead {
                tr {
                    th scope="col" { "Cluster" }
                    th scope="col" { "Namespace" }
                    th scope="col" { "Name" }
                    th scope="col" title="The share of requests that must succeed over the window" { "Objective" }
                    th scope="col" title="The rolling window the budget is counted over" { "Window" }
                    th scope="col" title="Share of the window's error budget left (100 % untouched, 0 or less: spent)" { "Budget left" }
                    th scope="col" title="Burn rate over the last hour: 1 spends the budget exactly over the window, 14.4 spends 2 % of a 30-day budget in an hour" { "Burn 1h" }
                    th scope="col" title="Burn rate over the long run (90 days, or the window if longer): about 1 when the objective fits the service" { "Long-run burn" }
                    th scope="col" title="Whether the objective fits the service, from the long-run burn rate (once 28 days and the window are recorded)" { "Calibration" }
                    th scope="col" { "State" }
                }
            }
            tbody {
                @for row in &listed.paged.rows {
                    @let ns = row.slo.namespace().unwrap_or_default();
                    @let name = row.slo.name_any();
                    @let spec = row.slo.0.as_ref().ok().map(|s| &s.spec);
                    tr {
                        td { (row.cluster) }
                        td { (ns) }
                        td { a href=(path("slos", &row.cluster, &ns, &name)) { (name) } }
                        td.num { (spec.map(|s| format::objective(s.objective)).unwrap_or_default()) }
                        td { (spec.map(|s| s.window.as_str()).unwrap_or_default()) }
                        td.num { (budget_bar(row.summary.remaining)) }
                        td.num { (format::burn(row.summary.burn_1h)) }
                        td.num { (format::burn(row.summary.long_run)) }
                        td { (row.summary.fit.as_str()) }
                        td {
                            (state_badge(row.summary.state))
                            @if let Some(why) = &row.summary.why { span.why title=(why) { " ⓘ" span.visually-hidden { (why) } } }
                        }
                    }
                }
            }
        } }))
        (super::pager("Pages of SLOs", listed.paged.page, listed.paged.pages, |n| link(query, n)))
    }
}
