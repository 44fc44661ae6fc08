//! The pages, rendered on the server from what the caches hold (maud: every value escaped by
//! construction). No page waits on anything but the caches, except the series of an SLO's
//! page, read from Prometheus with a bounded time.

pub mod list;
pub mod policies;
pub mod releases;
pub mod slo;

use maud::{DOCTYPE, Markup, html};

use super::clusters::Cluster;
use super::format;

/// What every page shows at its top: where you are and whether each cluster is connected.
pub fn layout(title: &str, current: &str, clusters: &[Cluster], now: jiff::Timestamp, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · slo-warden" }
                link rel="stylesheet" href="/assets/ui.css";
                script src="/assets/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Pages" {
                        span.brand { "slo-warden" }
                        a href="/" aria-current=[(current == "slos").then_some("page")] { "SLOs" }
                        a href="/policies" aria-current=[(current == "policies").then_some("page")] { "Policies" }
                        a href="/releases" aria-current=[(current == "releases").then_some("page")] { "Releases" }
                    }
                    ul.clusters aria-label="Clusters" {
                        @for c in clusters {
                            @let error = c.health.error();
                            @let synced = c.health.synced();
                            li {
                                @if let Some((at, message)) = &error {
                                    span.badge.bad title=(message) { (c.name) ": watch failing since " (format::ago(*at, now)) }
                                } @else if synced {
                                    span.badge.ok title="Every SLO, policy and override of this cluster is listed and watched" { (c.name) }
                                } @else {
                                    span.badge.wait title="Listing this cluster's SLOs, policies and overrides" { (c.name) ": listing" }
                                }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A filter's choice of one of `options` ("all" first: no filter), `chosen` selected.
pub fn choice<'a>(label: &str, name: &str, options: impl IntoIterator<Item = &'a str>, chosen: Option<&str>) -> Markup {
    html! {
        label { (label) " "
            select name=(name) {
                option value="" { "all" }
                @for o in options { option value=(o) selected[chosen == Some(o)] { (o) } }
            }
        }
    }
}

/// The search box of a list: the words searched, what they may name.
pub fn search_box(words: &[String], placeholder: &str) -> Markup {
    html! {
        label { "Search " input type="search" name="q" value=(words.join(" ")) placeholder=(placeholder) maxlength=(crate::ui::list::MAX_SEARCH); }
    }
}

/// A table in a labelled region of its own that scrolls sideways on a narrow screen (or zoomed
/// in), so the page does not; focusable, so the keyboard can scroll it.
pub fn scrolling(label: &str, table: Markup) -> Markup {
    html! { div.scroll role="region" aria-label=(label) tabindex="0" { (table) } }
}

/// Previous / next links of a paged list (nothing when it fits one page); `link(n)` is page n's.
pub fn pager(label: &str, page: usize, pages: usize, link: impl Fn(usize) -> String) -> Markup {
    html! {
        @if pages > 1 {
            nav.pager aria-label=(label) {
                @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a rel="next" href=(link(page + 1)) { "Next →" } }
            }
        }
    }
}

/// A page that says what went wrong with the request (a bad parameter, an unknown object).
pub fn problem(title: &str, message: &str, clusters: &[Cluster], now: jiff::Timestamp) -> Markup {
    layout(
        title,
        "",
        clusters,
        now,
        html! {
            h1 { (title) }
            p.problem role="alert" { (message) }
            p { a href="/" { "Back to the SLOs" } }
        },
    )
}

/// A state as a badge: its name in words (never color alone), its meaning on hover.
pub fn state_badge(state: super::summary::State) -> Markup {
    html! {
        span class={ "badge state-" (state.as_str().to_lowercase()) } title=(state.explained()) { (state.as_str()) }
    }
}

/// How much budget is left, as a bar beside the number (drawn as SVG: the page's content
/// security policy allows no inline styles).
pub fn budget_bar(remaining: Option<f64>) -> Markup {
    let width = 80.0;
    let filled = remaining
        .filter(|r| r.is_finite())
        .map_or(0.0, |r| r.clamp(0.0, 1.0) * width);
    html! {
        span.budget {
            svg width="80" height="8" viewBox="0 0 80 8" aria-hidden="true" focusable="false" {
                rect.track width="80" height="8" rx="2" {}
                rect.fill width=(format!("{filled:.1}")) height="8" rx="2" {}
            }
            " " (format::percent(remaining))
        }
    }
}

/// The path of an object's page.
pub fn path(kind: &str, cluster: &str, namespace: &str, name: &str) -> String {
    let seg = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("/{kind}/{}/{}/{}", seg(cluster), seg(namespace), seg(name))
}
