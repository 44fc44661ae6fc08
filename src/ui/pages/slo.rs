//! `/slos/{cluster}/{namespace}/{name}`: one SLO, its budget and burn, each alert tier against
//! its threshold, the signal-health facts, its releases, and the policies acting on it (with
//! how to get an override).

use kube::ResourceExt;
use maud::{Markup, html};

use super::{budget_bar, path, state_badge};
use crate::api::{ErrorBudgetPolicy, ServiceLevelObjective, Severity};
use crate::duration::Duration;
use crate::ui::format;
use crate::ui::summary::{self, Summary};

/// One alert tier of an SLO and what its windows burn now.
#[derive(Debug, PartialEq)]
pub struct TierNow {
    pub severity: &'static str,
    pub long: String,
    pub short: String,
    pub threshold: f64,
    pub long_burn: Option<f64>,
    pub short_burn: Option<f64>,
}

impl TierNow {
    /// Both windows above the threshold: the alert's condition holds (it fires once it has
    /// held for its `for`).
    pub fn over(&self) -> bool {
        matches!((self.long_burn, self.short_burn), (Some(l), Some(s)) if l > self.threshold && s > self.threshold)
    }
}

/// The SLO's alert tiers (its own, or the defaults for its window) with the burn rates its
/// status holds for their windows.
pub fn tiers(slo: &ServiceLevelObjective) -> Vec<TierNow> {
    let burn_rates = slo
        .status
        .as_ref()
        .and_then(|s| s.budget.as_ref())
        .map(|b| &b.burn_rates);
    let burn = |w: &str| burn_rates.and_then(|b| b.get(w).copied());
    let severity = |s: &Severity| match s {
        Severity::Page => "page",
        Severity::Ticket => "ticket",
    };
    // Windows as the status keys them: durations written back in their shortest form.
    let key = |w: &str| Duration::parse(w).map_or_else(|_| w.to_string(), |d| d.to_string());
    match &slo.spec.alerting.burn_rates {
        Some(custom) => custom
            .iter()
            .map(|t| TierNow {
                severity: severity(&t.severity),
                long: key(&t.long),
                short: key(&t.short),
                threshold: t.factor,
                long_burn: burn(&key(&t.long)),
                short_burn: burn(&key(&t.short)),
            })
            .collect(),
        None => Duration::parse(&slo.spec.window)
            .map(crate::burn_rate::default_tiers)
            .unwrap_or_default()
            .into_iter()
            .map(|t| TierNow {
                severity: severity(&t.severity),
                long: t.long.to_string(),
                short: t.short.to_string(),
                threshold: t.factor.parse().unwrap_or(f64::INFINITY),
                long_burn: burn(&t.long.to_string()),
                short_burn: burn(&t.short.to_string()),
            })
            .collect(),
    }
}

pub struct Page<'a> {
    pub cluster: &'a str,
    pub slo: &'a ServiceLevelObjective,
    pub policies: Vec<std::sync::Arc<ErrorBudgetPolicy>>,
    pub grafana: Option<&'a str>,
    /// Whether a Prometheus is configured for the cluster (else no charts are offered).
    pub charts: bool,
    /// The time range of the error and request charts (one of [`crate::ui::series::RANGES`]).
    pub range: &'a str,
    pub now: jiff::Timestamp,
}

pub fn render(page: &Page) -> Markup {
    let slo = page.slo;
    let ns = slo.namespace().unwrap_or_default();
    let name = slo.name_any();
    let s: Summary = summary::of(slo);
    let status = slo.status.as_ref();
    let budget = status.and_then(|s| s.budget.as_ref());
    let runbook = slo.spec.alerting.annotations.get("runbook_url");
    let history_short = status.is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == crate::api::condition::SIGNAL_HEALTHY && c.reason == crate::api::condition::HISTORY_SHORT
        })
    });
    html! {
        p.crumbs { a href="/" { "SLOs" } " / " (page.cluster) " / " (ns) }
        h1 { (name) " " (state_badge(s.state)) }
        @if let Some(d) = &slo.spec.description { p.description { (d) } }
        @if let Some(why) = &s.why { p.why role="status" { (why) } }
        section.tiles aria-label="Budget" {
            div.tile title="The share of requests that must succeed over the window" {
                span.label { "Objective" } span.value { (format::objective(slo.spec.objective)) } span.sub { "over " (slo.spec.window) }
            }
            div.tile title="Share of the window's error budget left (100 % untouched, 0 or less: spent)" {
                span.label { "Budget left" } span.value { (budget_bar(s.remaining)) }
            }
            div.tile title="Burn rate over the last hour: 1 spends the budget exactly over the window" {
                span.label { "Burn 1h" } span.value { (format::burn(s.burn_1h)) }
            }
            div.tile title="Burn rate over the long run (90 days, or the window if longer): about 1 when the objective fits the service" {
                span.label { "Long-run burn" } span.value { (format::burn(s.long_run)) } span.sub { "calibration: " (s.fit.as_str()) }
            }
        }
        @if page.grafana.is_some() || runbook.is_some() {
            p.links {
                @if let Some(g) = page.grafana {
                    a href=(format!("{}/d/slo-warden-detail?var-namespace={}&var-slo={}", g.trim_end_matches('/'), enc(&ns), enc(&name))) { "Grafana dashboard" }
                    " "
                }
                @if let Some(r) = runbook.filter(|r| r.starts_with("https://") || r.starts_with("http://")) { a href=(r) rel="noreferrer" { "Runbook" } }
            }
        }
        @if page.charts {
            @let base = path("charts", page.cluster, &ns, &name);
            @let range = format!("?range={}", page.range);
            h2 { "Over time" }
            p.hint { "Point at a chart for the time and value of each point." }
            (chart(&format!("{base}/budget.svg"), &format!("The budget left of {ns}/{name} over its {} window, from Prometheus", slo.spec.window), &format!("Budget left over the {} window", slo.spec.window)))
            nav.ranges aria-label="Time range of the charts below" {
                "Last: "
                @for (key, _) in crate::ui::series::RANGES {
                    @if key == page.range { strong aria-current="true" { (key) } } @else { a href=(format!("?range={key}")) { (key) } }
                    " "
                }
            }
            (chart(&format!("{base}/errors.svg{range}"), &format!("The error ratio (errors over requests) of {ns}/{name} over the last {}, per 5-minute tile", page.range), "Error ratio, per 5-minute tile"))
            (chart(&format!("{base}/requests.svg{range}"), &format!("The requests per second of {ns}/{name} over the last {}, per 5-minute tile", page.range), "Requests per second, per 5-minute tile"))
        }
        h2 { "Alert tiers" }
        (super::scrolling("Alert tiers", html! { table {
            caption.visually-hidden { "Each multiwindow burn-rate alert: both windows must burn faster than the threshold" }
            thead { tr {
                th scope="col" { "Severity" }
                th scope="col" title="The long window: sees a burn that lasts" { "Long window" }
                th scope="col" title="The long window's burn rate now" { "Long burn" }
                th scope="col" title="The short window: stops the alert soon after the burn stops" { "Short window" }
                th scope="col" title="The short window's burn rate now" { "Short burn" }
                th scope="col" title="The burn rate both windows must exceed" { "Threshold" }
                th scope="col" { "Now" }
            } }
            tbody {
                @for t in tiers(slo) {
                    tr class=[t.over().then_some("over")] {
                        td { (t.severity) }
                        td { (t.long) }
                        td.num { (format::burn(t.long_burn)) }
                        td { (t.short) }
                        td.num { (format::burn(t.short_burn)) }
                        td.num { (format::burn(Some(t.threshold))) }
                        td { @if t.over() { strong { "above: firing once held" } } @else { "below" } }
                    }
                }
            }
        } }))
        h2 { "Signal" }
        dl.facts {
            dt title="How often the indicator's request series are sampled, as measured" { "Sampled every" } dd { (budget.and_then(|b| b.scrape_interval.as_deref()).unwrap_or("—")) }
            dt title="How much of the window Prometheus holds, while less than the window" { "Window covered" } dd { (budget.and_then(|b| b.covered.as_deref()).unwrap_or(if history_short { "—" } else { "all of it" })) }
            dt title="How much of the long run the data covers" { "Long run covered" } dd { (budget.and_then(|b| b.long_run_covered.as_deref()).unwrap_or("—")) }
            dt title="When the operator last wrote a new budget to the status: it writes only when a value moves" { "Budget last changed" } dd {
                @if let Some(t) = budget.and_then(|b| b.evaluated_at.as_ref()) { time datetime=(format::time(t.0)) title=(format::time(t.0)) { (format::ago(t.0, page.now)) } } @else { "never" }
            }
        }
        @if let Some(status) = status.filter(|s| !s.conditions.is_empty()) {
            (super::scrolling("Conditions", html! { table {
                caption { "Conditions" }
                thead { tr { th scope="col" { "Type" } th scope="col" { "Status" } th scope="col" { "Reason" } th scope="col" { "Message" } th scope="col" { "Since" } } }
                tbody {
                    @for c in &status.conditions {
                        tr { td { (c.type_) } td { (c.status) } td { (c.reason) } td { (c.message) }
                             td { time datetime=(format::time(c.last_transition_time.0)) title=(format::time(c.last_transition_time.0)) { (format::ago(c.last_transition_time.0, page.now)) } } }
                    }
                }
            } }))
        }
        h2 { "Policies acting on it" }
        @if page.policies.is_empty() {
            p { "No ErrorBudgetPolicy selects this SLO: its budget is shown, nothing is enforced." }
        } @else {
            (super::scrolling("Policies selecting it", html! { table {
                caption.visually-hidden { "The error budget policies that select this SLO, their stage and why" }
                thead { tr { th scope="col" { "Policy" } th scope="col" { "Stage" } th scope="col" { "Since" } th scope="col" { "Reason" } } }
                tbody {
                    @for p in &page.policies {
                        @let st = p.status.as_ref();
                        tr {
                            td { a href=(path("policies", page.cluster, &ns, &p.name_any())) { (p.name_any()) } }
                            td { @match st.map(|s| s.stage.as_str()).filter(|s| !s.is_empty()) { Some(stage) => strong { (stage) }, None => "none" } }
                            td { @if let Some(t) = st.and_then(|s| s.since.as_ref()) { time datetime=(format::time(t.0)) title=(format::time(t.0)) { (format::ago(t.0, page.now)) } } }
                            td { (st.map(|s| s.reason.as_str()).unwrap_or_default()) }
                        }
                    }
                }
            } }))
            details.override {
                summary { "How to get an override (break-glass)" }
                p { "An override lifts a policy for a while, at most its maxOverride, and is recorded with who asked and why. With access to create ErrorBudgetOverrides in " code { (ns) } ":" }
                @for p in &page.policies {
                    pre { code { "slo-warden override " (p.name_any()) " -n " (ns) " --for 1h --reason \"INC-1234: why the release must go now\"" } }
                }
                p { "Or commit the object that " code { "--print" } " writes, for Argo CD or Flux." }
            }
        }
        @if let Some(status) = status.filter(|s| !s.releases.is_empty()) {
            h2 { "Releases" }
            p { a href=(format!("/releases?cluster={}&namespace={}", enc(page.cluster), enc(&ns))) { "The release ledger of every SLO in " (ns) } }
            (super::scrolling("Releases", html! { table {
                caption.visually-hidden { "The last releases of the workloads its policies follow, newest first, and the budget each burned" }
                thead { tr {
                    th scope="col" { "Workload" } th scope="col" { "Revision" } th scope="col" { "Images" } th scope="col" { "By" }
                    th scope="col" { "Started" }
                    th scope="col" title="The errors from its start to the next release (or now), as a share of the window's error budget" { "Budget burned" }
                    th scope="col" title="The burn rate over the same time" { "Burn since" }
                } }
                tbody {
                    @for r in &status.releases {
                        tr {
                            td { (r.kind) " " (r.workload) } td.num { (r.revision) } td { (r.images.join(", ")) }
                            td { (r.changed_by.as_deref().unwrap_or("—")) }
                            td { time datetime=(format::time(r.started_at.0)) title=(format::time(r.started_at.0)) { (format::ago(r.started_at.0, page.now)) } }
                            td.num { (format::percent(r.budget_burned)) }
                            td.num { (format::burn(r.burn_rate_since)) }
                        }
                    }
                }
            } }))
        }
    }
}

/// A chart: its SVG document (drawn by `/charts/...`, its points named on hover), what it shows
/// in words for whoever cannot see it, and its caption.
fn chart(src: &str, alt: &str, caption: &str) -> Markup {
    html! {
        figure {
            object type="image/svg+xml" data=(src) width="720" height="200" aria-label=(alt) { (alt) }
            figcaption { (caption) }
        }
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slo(alerting: serde_json::Value) -> ServiceLevelObjective {
        serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"objective": 99.9, "window": "30d", "indicator": {"raw": {"errorRatio": "x"}}, "alerting": alerting},
            "status": {"budget": {"state": "Burning", "remaining": 0.5,
                                   "burnRates": {"5m": 20.0, "1h": 15.0, "30m": 3.0, "6h": 4.0, "2h": 1.0, "1d": 1.0, "3d": 0.5}}},
        }))
        .unwrap()
    }

    #[test]
    fn with_a_prometheus_the_page_embeds_three_charts_said_in_words() {
        let slo = slo(json!({}));
        let page = |charts| {
            render(&Page {
                cluster: "prod eu",
                slo: &slo,
                policies: vec![],
                grafana: None,
                charts,
                range: "6h",
                now: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            })
            .into_string()
        };
        let html = page(true);
        let objects: Vec<&str> = html
            .split("<object type=\"image/svg+xml\" data=\"")
            .skip(1)
            .map(|o| o.split('"').next().unwrap())
            .collect();
        assert_eq!(
            objects,
            [
                "/charts/prod+eu/shop/checkout/budget.svg",
                "/charts/prod+eu/shop/checkout/errors.svg?range=6h",
                "/charts/prod+eu/shop/checkout/requests.svg?range=6h"
            ]
        );
        assert!(html.contains(r#"aria-label="The requests per second of shop/checkout over the last 6h, per 5-minute tile">The requests per second of shop/checkout over the last 6h, per 5-minute tile</object><figcaption>Requests per second, per 5-minute tile</figcaption>"#), "{html}");
        assert!(html.contains("<figcaption>Budget left over the 30d window</figcaption>"));
        assert!(!page(false).contains("<object"), "no charts without a Prometheus");
    }

    #[test]
    fn default_tiers_read_their_windows_burn_rates() {
        let tiers = tiers(&slo(json!({})));
        let first = &tiers[0];
        assert_eq!(
            (
                first.severity,
                first.long.as_str(),
                first.short.as_str(),
                first.threshold
            ),
            ("page", "1h", "5m", 14.4)
        );
        assert_eq!((first.long_burn, first.short_burn), (Some(15.0), Some(20.0)));
        assert!(first.over());
        assert!(!tiers[1].over(), "6h at 4 is below 6");
    }

    #[test]
    fn custom_tiers_are_keyed_as_the_status_writes_windows() {
        let tiers = tiers(&slo(
            json!({"burnRates": [{"long": "60m", "short": "5m", "factor": 10, "severity": "ticket"}]}),
        ));
        assert_eq!(tiers.len(), 1);
        assert_eq!((tiers[0].long.as_str(), tiers[0].long_burn), ("1h", Some(15.0)));
        assert!(tiers[0].over());
    }
}
