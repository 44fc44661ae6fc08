//! The UI's HTTP server: GET pages rendered from the caches, the embedded stylesheet and script,
//! bounded like every server of the operator, with a content security policy that allows
//! nothing from elsewhere and nothing inline.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use maud::Markup;

use super::clusters::{Cluster, GuardedPolicy, readable};
use super::{list, pages};
use crate::cache::Guarded;
use crate::serving::{self, Limits};

/// GETs of pages: each rendered from memory in milliseconds.
pub const LIMITS: Limits = Limits {
    headers: Duration::from_secs(5),
    body: Duration::from_secs(5),
    request: Duration::from_secs(15),
    concurrent: 32,
    body_bytes: 16 * 1024,
};

#[derive(Clone)]
pub struct Ui {
    pub clusters: Arc<Vec<Cluster>>,
    /// Grafana's base URL, for links to the dashboards.
    pub grafana: Option<Arc<str>>,
    pub series: Arc<super::series::Series>,
}

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");
const CHART_CSS: &str = include_str!("assets/chart.css");
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; object-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// A chart's SVG document: its stylesheet only, shown within this origin's pages only.
const CHART_CSP: &str = "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'self'";

pub fn router(ui: Ui) -> Router {
    let app = Router::new()
        .route("/", get(slos))
        .route("/slos/{cluster}/{namespace}/{name}", get(slo))
        .route("/charts/{cluster}/{namespace}/{name}/{which}", get(chart))
        .route("/releases", get(releases))
        .route("/policies", get(policies))
        .route("/policies/{cluster}/{namespace}/{name}", get(policy))
        .route(
            "/assets/ui.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/assets/ui.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .route(
            super::chart::STYLESHEET,
            get(|| async { asset("text/css; charset=utf-8", CHART_CSS) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(ui)
        .layer(axum::middleware::map_response(secure));
    serving::limit(app, &LIMITS, Some(LIMITS.body_bytes))
}

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A chart is embedded by the SLO page (`<object>`); nothing else may frame anything.
    let chart = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"image/svg+xml"));
    let (csp, framing) = if chart {
        (CHART_CSP, "SAMEORIGIN")
    } else {
        (CSP, "DENY")
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static(framing));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn problem(ui: &Ui, status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        pages::problem(title, message, &ui.clusters, jiff::Timestamp::now()),
    )
}

/// Ready once every cluster's caches hold a complete list, or its watch failed (its badge on
/// every page then says since when): before that a page would show a partial picture as if it
/// were whole, and after it one unreachable cluster must not take the others' view away.
async fn readyz(State(ui): State<Ui>) -> Response {
    let listing: Vec<&str> = ui
        .clusters
        .iter()
        .filter(|c| !c.health.synced() && c.health.error().is_none())
        .map(|c| &*c.name)
        .collect();
    if listing.is_empty() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("still listing: {}", listing.join(", ")),
        )
            .into_response()
    }
}

async fn not_found(State(ui): State<Ui>) -> Response {
    problem(&ui, StatusCode::NOT_FOUND, "Not found", "There is no page here.")
}

fn params(query: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .take(32)
        .collect()
}

async fn slos(State(ui): State<Ui>, RawQuery(query): RawQuery) -> Response {
    let pairs = params(&query);
    let query = match list::Query::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(q) => q,
        Err(e) => return problem(&ui, StatusCode::BAD_REQUEST, "Bad search", &e),
    };
    let listed = list::list(&ui.clusters, &query);
    let names: Vec<String> = ui.clusters.iter().map(|c| c.name.to_string()).collect();
    page(
        StatusCode::OK,
        pages::layout(
            "SLOs",
            "slos",
            &ui.clusters,
            jiff::Timestamp::now(),
            pages::list::render(&listed, &query, &names),
        ),
    )
}

fn cluster<'a>(ui: &'a Ui, name: &str) -> Option<&'a Cluster> {
    ui.clusters.iter().find(|c| *c.name == *name)
}

async fn slo(
    State(ui): State<Ui>,
    Path((cluster_name, namespace, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = params(&query);
    let range = match super::series::range(pairs.iter().find(|(k, _)| k == "range").map(|(_, v)| v.as_str())) {
        Ok(r) => r.0,
        Err(e) => return problem(&ui, StatusCode::BAD_REQUEST, "Bad range", &e),
    };
    let Some(cluster) = cluster(&ui, &cluster_name) else {
        return problem(
            &ui,
            StatusCode::NOT_FOUND,
            "No such cluster",
            &format!("No cluster is named {cluster_name:?}."),
        );
    };
    let Some(cached) = cluster.slos.get(&ObjectRef::<Guarded>::new(&name).within(&namespace)) else {
        return problem(
            &ui,
            StatusCode::NOT_FOUND,
            "No such SLO",
            &format!(
                "Cluster {cluster_name} has no ServiceLevelObjective {namespace}/{name} (or it is not listed yet)."
            ),
        );
    };
    let slo = match &cached.0 {
        Ok(slo) => slo,
        Err(e) => {
            return problem(
                &ui,
                StatusCode::OK,
                &format!("{namespace}/{name}"),
                &format!(
                    "This ServiceLevelObjective cannot be read: {e}. Its status says more: kubectl get slo -n {namespace} {name} -o yaml"
                ),
            );
        }
    };
    let policies = readable(&cluster.policies, |p| crate::policy::select::selects(p, slo));
    let now = jiff::Timestamp::now();
    let body = pages::slo::render(&pages::slo::Page {
        cluster: &cluster.name,
        slo,
        policies,
        grafana: ui.grafana.as_deref(),
        charts: ui.series.sources.contains_key(&*cluster.name),
        range,
        now,
    });
    page(
        StatusCode::OK,
        pages::layout(&format!("{namespace}/{name}"), "slos", &ui.clusters, now, body),
    )
}

async fn chart(
    State(ui): State<Ui>,
    Path((cluster_name, namespace, name, which)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(which) = super::series::Which::parse(&which) else {
        return not_found(State(ui)).await;
    };
    let pairs = params(&query);
    let range = match super::series::range(pairs.iter().find(|(k, _)| k == "range").map(|(_, v)| v.as_str())) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    // Only an SLO the cache holds gets a query: a made-up name costs Prometheus nothing.
    let window = cluster(&ui, &cluster_name)
        .and_then(|c| c.slos.get(&ObjectRef::<Guarded>::new(&name).within(&namespace)))
        .and_then(|s| s.0.as_ref().ok().map(|s| s.spec.window.clone()))
        .and_then(|w| crate::duration::Duration::parse(&w).ok());
    let Some(window) = window else {
        return not_found(State(ui)).await;
    };
    let svg = ui
        .series
        .chart(&cluster_name, &namespace, &name, window, which, range)
        .await;
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=30"),
        ],
        svg.to_string(),
    )
        .into_response()
}

async fn releases(State(ui): State<Ui>, RawQuery(query): RawQuery) -> Response {
    let pairs = params(&query);
    let query = match super::releases::Query::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(q) => q,
        Err(e) => return problem(&ui, StatusCode::BAD_REQUEST, "Bad search", &e),
    };
    let ledger = super::releases::ledger(&ui.clusters, &query);
    let names: Vec<String> = ui.clusters.iter().map(|c| c.name.to_string()).collect();
    let now = jiff::Timestamp::now();
    page(
        StatusCode::OK,
        pages::layout(
            "Releases",
            "releases",
            &ui.clusters,
            now,
            pages::releases::render(&ledger, &query, &names, now),
        ),
    )
}

async fn policies(State(ui): State<Ui>, RawQuery(query): RawQuery) -> Response {
    // The lists' common parameters (an empty choice is no filter), and `inForce`.
    let mut scope = list::Scope::default();
    let mut in_force = false;
    for (key, value) in params(&query) {
        match scope.read(&key, value.trim()) {
            Ok(true) => {}
            Ok(false) if key == "inForce" => in_force = value.trim() == "true",
            Ok(false) => {}
            Err(e) => return problem(&ui, StatusCode::BAD_REQUEST, "Bad request", &e),
        }
    }
    let rows = pages::policies::rows(&ui.clusters, &scope, in_force);
    let in_force_count = rows.iter().filter(|r| pages::policies::in_force(&r.policy)).count();
    let rows = scope.paging.slice(rows);
    let filter = pages::policies::Filter {
        scope: &scope,
        in_force,
        in_force_count,
        clusters: ui.clusters.iter().map(|c| &*c.name).collect(),
        namespaces: ui
            .clusters
            .iter()
            .flat_map(|c| c.policies.state())
            .filter_map(|p| p.namespace())
            .collect(),
    };
    let now = jiff::Timestamp::now();
    page(
        StatusCode::OK,
        pages::layout(
            "Policies",
            "policies",
            &ui.clusters,
            now,
            pages::policies::render_list(&rows, &filter, now),
        ),
    )
}

async fn policy(
    State(ui): State<Ui>,
    Path((cluster_name, namespace, name)): Path<(String, String, String)>,
) -> Response {
    let Some(cluster) = cluster(&ui, &cluster_name) else {
        return problem(
            &ui,
            StatusCode::NOT_FOUND,
            "No such cluster",
            &format!("No cluster is named {cluster_name:?}."),
        );
    };
    let Some(cached) = cluster
        .policies
        .get(&ObjectRef::<GuardedPolicy>::new(&name).within(&namespace))
    else {
        return problem(
            &ui,
            StatusCode::NOT_FOUND,
            "No such policy",
            &format!("Cluster {cluster_name} has no ErrorBudgetPolicy {namespace}/{name} (or it is not listed yet)."),
        );
    };
    let Ok(policy) = &cached.0 else {
        return problem(
            &ui,
            StatusCode::OK,
            &format!("{namespace}/{name}"),
            &format!(
                "This ErrorBudgetPolicy cannot be read: kubectl get errorbudgetpolicy -n {namespace} {name} -o yaml"
            ),
        );
    };
    let slos = readable(&cluster.slos, |s| crate::policy::select::selects(policy, s));
    let now = jiff::Timestamp::now();
    let body = pages::policies::render(&pages::policies::Page {
        cluster,
        policy,
        slos,
        now,
    });
    page(
        StatusCode::OK,
        pages::layout(&format!("{namespace}/{name}"), "policies", &ui.clusters, now, body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    fn ui() -> Ui {
        let slo = |name: &str, remaining: f64, state: &str| -> crate::api::ServiceLevelObjective {
            serde_json::from_value(json!({
                "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ServiceLevelObjective",
                "metadata": {"name": name, "namespace": "shop", "labels": {"tier": "web"}},
                "spec": {"objective": 99.9, "window": "30d", "indicator": {"raw": {"errorRatio": "x"}},
                         "description": "<script>alert(1)</script>"},
                "status": {"budget": {"state": state, "remaining": remaining, "burnRates": {"1h": 20.0, "5m": 30.0}},
                           "releases": [{"kind": "Deployment", "workload": "web", "revision": 7, "images": ["web:<1.7>"],
                                         "changedBy": "kubectl-set", "startedAt": "2027-01-15T09:00:00Z",
                                         "budgetBurned": remaining / 2.0, "burnRateSince": 12.0}]},
            }))
            .unwrap()
        };
        let policy: crate::api::ErrorBudgetPolicy = serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetPolicy",
            "metadata": {"name": "freeze", "namespace": "shop"},
            "spec": {"slos": {"selector": {"matchLabels": {"tier": "web"}}},
                     "stages": [{"name": "fast-burn", "when": [{"burnRate": {"window": "1h", "above": 14.4}}], "actions": ["freezeDeployments"]}]},
            "status": {"stage": "fast-burn", "since": "2027-01-15T08:00:00Z", "reason": "checkout burns 20x over 1h",
                       "enforced": [{"kind": "Deployment", "name": "web", "action": "freezeDeployments", "since": "2027-01-15T08:00:00Z"}]},
        }))
        .unwrap();
        let override_: crate::api::ErrorBudgetOverride = serde_json::from_value(json!({
            "apiVersion": "slo.warden.dev/v1alpha1", "kind": "ErrorBudgetOverride",
            "metadata": {"name": "freeze-abc", "namespace": "shop", "creationTimestamp": "2027-01-15T09:00:00Z"},
            "spec": {"policy": "freeze", "duration": "1h", "reason": "INC-42: hotfix", "requestedBy": "alice@example.com"},
            "status": {"state": "Active", "expiresAt": "2027-01-15T10:00:00Z"},
        }))
        .unwrap();
        Ui {
            clusters: Arc::new(vec![Cluster::holding(
                "prod",
                vec![slo("checkout", 0.25, "Burning"), slo("cart", 0.9, "Healthy")],
                vec![policy],
                vec![override_],
            )]),
            grafana: Some("https://grafana.example.com".into()),
            series: Arc::new(super::super::series::Series::new(Default::default())),
        }
    }

    async fn get(uri: &str) -> (StatusCode, String, http::HeaderMap) {
        let r = router(ui())
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (status, body, headers)
    }

    #[tokio::test]
    async fn the_list_shows_every_slo_least_budget_first() {
        let (status, body, headers) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP);
        let (checkout, cart) = (
            body.find("/slos/prod/shop/checkout").unwrap(),
            body.find("/slos/prod/shop/cart").unwrap(),
        );
        assert!(checkout < cart, "least budget first");
        assert!(body.contains("25.0 %") && body.contains("90.0 %"));
        assert!(body.contains(">Burning<"));
        let (_, filtered, _) = get("/?state=Healthy").await;
        assert!(!filtered.contains("/slos/prod/shop/checkout") && filtered.contains("/slos/prod/shop/cart"));
    }

    #[tokio::test]
    async fn a_bad_parameter_is_a_400_that_names_it() {
        let (status, body, _) = get("/?sort=sideways").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("sort: one of budget, burn, longrun, state, calibration, name"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_slo_page_shows_its_tiers_policies_and_escapes_what_tenants_write() {
        let (status, body, _) = get("/slos/prod/shop/checkout").await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body.contains("<script>alert(1)</script>"), "escaped");
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(
            body.contains("web:&lt;1.7&gt;") && body.contains(r#"href="/releases?cluster=prod&amp;namespace=shop""#)
        );
        assert!(
            body.contains("above: firing once held"),
            "1h at 20 and 5m at 30 are over 14.4"
        );
        assert!(body.contains("/policies/prod/shop/freeze"));
        assert!(body.contains("slo-warden override freeze -n shop"));
        assert!(
            body.contains("https://grafana.example.com/d/slo-warden-detail?var-namespace=shop&amp;var-slo=checkout")
        );
    }

    #[tokio::test]
    async fn the_policy_pages_show_the_stage_what_is_held_and_who_overrode_it() {
        let (_, list, _) = get("/policies?inForce=true").await;
        assert!(list.contains("/policies/prod/shop/freeze") && list.contains("fast-burn") && list.contains("1 active"));
        let (_, all, _) = get("/policies?cluster=&namespace=shop").await;
        assert!(
            all.contains("/policies/prod/shop/freeze"),
            "an empty choice filters nothing"
        );
        let (_, other, _) = get("/policies?namespace=search").await;
        assert!(!other.contains("/policies/prod/shop/freeze") && other.contains("0 policies"));
        assert!(
            other.contains(r#"<option value="shop">shop</option>"#),
            "the namespaces with policies to choose from"
        );
        let (status, body, _) = get("/policies/prod/shop/freeze").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("in force: fast-burn"));
        assert!(body.contains("checkout burns 20x over 1h"));
        assert!(body.contains("alice@example.com") && body.contains("INC-42: hotfix") && body.contains(">Active<"));
        assert!(body.contains("/slos/prod/shop/cart") && body.contains("/slos/prod/shop/checkout"));
    }

    #[tokio::test]
    async fn the_policies_list_is_paged() {
        let template = serde_json::to_value(ui().clusters[0].policies.state()[0].0.as_ref().unwrap()).unwrap();
        let policies: Vec<crate::api::ErrorBudgetPolicy> = (0..25)
            .map(|i| {
                let mut p = template.clone();
                p["metadata"]["name"] = json!(format!("p{i:02}"));
                serde_json::from_value(p).unwrap()
            })
            .collect();
        let many = Ui {
            clusters: Arc::new(vec![Cluster::holding("prod", vec![], policies, vec![])]),
            ..ui()
        };
        let get = async |uri: &str| {
            let r = router(many.clone())
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = r.status();
            (
                status,
                String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap(),
            )
        };
        let (status, second) = get("/policies?namespace=shop&per=10&page=2").await;
        assert_eq!(status, StatusCode::OK);
        let shown: Vec<&str> = second
            .split("href=\"/policies/prod/shop/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(shown, (10..20).map(|i| format!("p{i}")).collect::<Vec<_>>());
        assert!(second.contains("25 policies, 25 in force; 11–20 shown."), "{second}");
        assert!(second.contains("Page 2 of 3"));
        assert!(
            second.contains(r#"href="/policies?namespace=shop&amp;page=3&amp;per=10""#),
            "{second}"
        );
        assert!(
            second.contains(r#"href="/policies?namespace=shop&amp;per=10""#),
            "the first page's link"
        );
        let (_, past) = get("/policies?per=10&page=9").await;
        assert!(past.contains("Page 3 of 3") && past.contains("/policies/prod/shop/p24"));
        let (status, bad) = get("/policies?per=5").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(bad.contains("per: a whole number from 10 to 500"));
    }

    #[tokio::test]
    async fn the_release_ledger_spans_the_slos_and_escapes_what_tenants_write() {
        let (status, body, _) = get("/releases").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("2 of 2 releases."), "{body}");
        assert!(body.contains("/slos/prod/shop/checkout") && body.contains("/slos/prod/shop/cart"));
        assert!(body.contains("web:&lt;1.7&gt;") && !body.contains("web:<1.7>"));
        assert!(body.contains("kubectl-set") && body.contains("12.5 %") && body.contains("45.0 %"));
        assert!(body.contains(r#"aria-current="page">Releases<"#));
        // The costliest first: cart's release burned 45 % of its budget, checkout's 12.5 %.
        let (_, burned, _) = get("/releases?sort=burned").await;
        assert!(burned.find("/slos/prod/shop/cart").unwrap() < burned.find("/slos/prod/shop/checkout").unwrap());
        let (_, none, _) = get("/releases?q=nothing-like-it").await;
        assert!(none.contains("0 of 2 releases.") && none.contains("matches these filters"));
        let (status, bad, _) = get("/releases?sort=oldest").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(bad.contains("sort: one of newest, burned"));
    }

    #[tokio::test]
    async fn unknown_objects_and_pages_are_404s() {
        for uri in [
            "/slos/prod/shop/nope",
            "/slos/staging/shop/checkout",
            "/policies/prod/shop/nope",
            "/nothing",
        ] {
            assert_eq!(get(uri).await.0, StatusCode::NOT_FOUND, "{uri}");
        }
    }

    #[tokio::test]
    async fn ready_once_every_cluster_is_listed() {
        assert_eq!(get("/readyz").await.0, StatusCode::OK);
        let mut listing = ui();
        let mut clusters = (*listing.clusters).clone();
        clusters.push(Cluster {
            health: Arc::new(super::super::clusters::Health::default()),
            ..clusters[0].clone()
        });
        listing.clusters = Arc::new(clusters);
        let r = router(listing.clone())
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "one cluster still listing");
        // A cluster that cannot be watched says so on every page; the others stay in view.
        listing.clusters[1]
            .health
            .fail("watch of ServiceLevelObjectives: connection refused");
        let r = router(listing.clone())
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = router(listing)
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(
            body.contains("watch failing since") && body.contains("connection refused"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn assets_are_served_from_the_binary() {
        let (status, css, headers) = get("/assets/ui.css").await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
        assert!(!css.is_empty());
        assert_eq!(get("/assets/ui.js").await.0, StatusCode::OK);
        let (status, css, _) = get(super::super::chart::STYLESHEET).await;
        assert_eq!(status, StatusCode::OK);
        assert!(css.contains("rect.at:hover"));
    }

    #[tokio::test]
    async fn a_chart_may_be_framed_by_the_ui_only_and_loads_its_stylesheet_only() {
        let (status, svg, headers) = get("/charts/prod/shop/checkout/budget.svg").await;
        assert_eq!(status, StatusCode::OK);
        assert!(svg.contains("no Prometheus is configured for this cluster"), "{svg}");
        assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CHART_CSP);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        // The pages embed charts as documents, and may not be framed themselves.
        let (_, page, headers) = get("/slos/prod/shop/checkout").await;
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("object-src 'self'; frame-src 'self'")
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(!page.contains("/charts/"), "no charts without a Prometheus: {page}");
        // No chart of an SLO the cache does not hold, nor of an unknown kind.
        assert_eq!(get("/charts/prod/shop/nope/budget.svg").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get("/charts/prod/shop/checkout/x.svg").await.0, StatusCode::NOT_FOUND);
    }
}
